"""The ``spark`` engine: auto-labelling as a PySpark job, in local mode or on a cluster.

The job (:func:`run_spark_job`) has the paper's three phases (Table II):

``load``
    Spark's own ``binaryFile`` source reads the input files (path and bytes per row). Every file
    is one row of exactly one partition (binary files are not split); the partitions are sized
    by bytes so that there are about ``tasks_per_slot`` tasks per task slot. With ``cache=True``
    the bytes are read into Spark's memory here (``cache`` + ``count``), as the paper timed it;
    otherwise this phase only plans the scan and the reading happens in the next action.
``map``
    ``mapInPandas`` labels each Arrow batch of ``batch_size`` files in a Python worker, with the
    same per-image code as the local engines (:func:`seaice_utils.pipeline.scene_from_bytes`,
    ``label_scene``, ``encode_outputs``). It is lazy: defining it costs next to nothing, as the
    paper's 0.2-0.4 s map times show.
``reduce``
    The action. ``output="executors"``: each executor writes its outputs itself (atomically,
    sidecar last; needs an output folder every executor can reach, e.g. a shared file system)
    and only (name, status, error) rows travel back. ``output="driver"``: the encoded outputs are
    collected to the driver, which writes them (the paper's reduce).

The package reaches the executors the standard way: :func:`spark_session` zips ``seaice_utils``
and ships it with ``SparkContext.addPyFile`` (it lands on the executors' ``sys.path``). Spark
retries failed tasks (``spark.task.maxFailures``; in local mode give it in the master,
``local[N,F]``); a retried task rewrites the same files atomically, so the result is complete and
identical. ``fail_once_marker`` makes one task fail on its first attempt, to test exactly that.

:class:`LocalStandaloneCluster` starts a standalone master and workers on 127.0.0.1 from the
installed pyspark (``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``,
``SPARK_HOME`` = the pyspark package folder) and stops them again: for tests, and to emulate
executors x cores on one machine (notebook 03).

Spark and pandas are imported inside the functions: ``import seaice_utils.engines.spark`` works
without them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Sequence

from seaice_utils.errors import ParamsError, SeaIceError
from seaice_utils.labelling.pipeline import LabelOptions, is_done

__all__ = ["spark_home", "package_zip", "spark_session", "run_spark_job", "warm_up",
           "LocalStandaloneCluster", "OUTPUT_MODES", "RESULT_SCHEMA"]

OUTPUT_MODES = ("executors", "driver")
RESULT_SCHEMA = ("input string, name string, status string, error string, "
                 "classes binary, labels binary, sidecar binary")
_GLOB_SPECIAL = "\\*?[]{}"


def spark_home() -> Path:
    """``$SPARK_HOME`` if set, else the installed pyspark package folder (it holds bin/, jars/)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def package_zip(dest_dir: str | os.PathLike) -> Path:
    """Zip the ``seaice_utils`` package (its .py files) into ``dest_dir/seaice_utils.zip``."""
    pkg = Path(__file__).resolve().parent
    out = Path(dest_dir) / "seaice_utils.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(pkg.glob("*.py")):
            zf.write(p, f"seaice_utils/{p.name}")
    return out


def _is_local_master(master: str) -> bool:
    return master.startswith("local") or master.startswith(("spark://127.0.0.1",
                                                            "spark://localhost"))


def spark_session(master: str = "local[2]", *, app_name: str = "seaice-autolabel",
                  conf: dict[str, Any] | None = None, progress: bool = True,
                  driver_memory: str = "2g", batch_size: int = 64, ship_package: bool = True,
                  quick_jit: bool = True):
    """Start (or join) a SparkSession set up for auto-labelling.

    Parameters
    ----------
    master : str
        ``local[N]``, ``local[N,F]`` (F = attempts per task) or ``spark://host:port``.
    conf : dict, optional
        Extra Spark settings (they win over the defaults set here).
    progress : bool
        Spark's console progress bar.
    driver_memory : str
        Driver JVM heap (takes effect only when this call starts the JVM).
    batch_size : int
        Files per Arrow batch handed to a Python worker.
    ship_package : bool
        Zip ``seaice_utils`` and ``addPyFile`` it, so executors can import it.
    quick_jit : bool
        Run the driver and executor JVMs with ``-XX:TieredStopAtLevel=1`` (the client JIT
        only). The JVM's share of this job is moving bytes (file -> Arrow -> Python); the
        optimising compiler's threads cost more CPU than they save over a job of seconds to
        minutes (measured: about 2.5x less JVM CPU time on 2112 tiles).

    Returns
    -------
    pyspark.sql.SparkSession
    """
    from pyspark.sql import SparkSession

    settings: dict[str, Any] = {
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.driver.memory": driver_memory,
        "spark.ui.showConsoleProgress": "true" if progress else "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_size),
        "spark.python.worker.reuse": "true",
        "spark.sql.files.openCostInBytes": "1",   # size partitions by bytes, not by file count
    }
    if quick_jit:
        settings["spark.driver.extraJavaOptions"] = "-XX:TieredStopAtLevel=1"
        settings["spark.executor.extraJavaOptions"] = "-XX:TieredStopAtLevel=1"
    if _is_local_master(master):
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                         "spark.ui.enabled": "false"})
    settings.update(conf or {})
    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master != master:
        raise ParamsError(f"a Spark session with master {active.sparkContext.master} is already "
                          f"running in this process; stop it before asking for {master}, or "
                          "pass it as spark=")
    builder = SparkSession.builder.master(master).appName(app_name)
    for k, v in settings.items():
        builder = builder.config(k, str(v))
    # PySpark takes the workers' Python from PYSPARK_PYTHON when it makes the context
    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = str(settings["spark.pyspark.python"])
    try:
        spark = builder.getOrCreate()
    finally:
        if before is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = before
    spark.sparkContext.setLogLevel("ERROR")
    if ship_package:
        spark.sparkContext.addPyFile(str(package_zip(_zip_dir())))
    return spark


_ZIP_DIR: list[Path] = []


def _zip_dir() -> Path:
    """A folder for the package zip, one per process, removed when the process exits."""
    if not _ZIP_DIR:
        import atexit

        _ZIP_DIR.append(Path(tempfile.mkdtemp(prefix="seaice-spark-")))
        atexit.register(shutil.rmtree, _ZIP_DIR[0], True)
    return _ZIP_DIR[0]


def _norm(f: Path) -> str:
    """A file's path as Spark lists it: its folder resolved, its own name kept."""
    return str(f.resolve().parent / f.name)


def _slots(spark) -> int:
    return max(1, int(spark.sparkContext.defaultParallelism))


def warm_up(spark, files: Sequence[str | os.PathLike] = (), opts: LabelOptions | None = None,
            *, output: str = "executors") -> float:
    """Start the Python workers (and warm the JVM) before a timed job; return seconds.

    Spark starts its Python workers on first use and then reuses them, and the JVM compiles its
    hot paths during the first jobs. With ``files``, the real job (binaryFile source,
    ``mapInPandas``, the same mapper) runs on them into a scratch folder that is then deleted;
    without, a trivial ``mapInPandas`` job runs on every task slot. Timing a job after this
    excludes those one-off costs, like the session start-up.
    """
    import pandas as pd

    t0 = time.perf_counter()
    n = _slots(spark)
    files = [Path(f) for f in files]
    if files:
        from seaice_utils.engines.base import JobSummary

        with tempfile.TemporaryDirectory(prefix="seaice-warmup-") as tmp:
            _run(spark, files, Path(tmp), opts or LabelOptions(), output=output,
                 batch_size=max(1, -(-len(files) // n)), tasks_per_slot=1, cache=False,
                 cv_threads=1, fail_once_marker=None, summary=JobSummary())
    else:
        def touch(batches):
            import seaice_utils.labelling.pipeline  # noqa: F401  (import once per worker)

            for b in batches:
                yield pd.DataFrame({"n": [len(b)]})

        spark.range(0, n, 1, n).mapInPandas(touch, "n long").collect()
    return time.perf_counter() - t0


def _local_path(uri: str) -> str:
    """Spark's path column (``file:/a/b.png``, maybe %-quoted) -> local path string."""
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.unquote(parsed.path) if parsed.scheme in ("file", "") else uri


def _make_mapper(out_dir: str, opts: LabelOptions, output: str, cv_threads: int | None,
                 fail_once_marker: str | None, wanted: frozenset[str]):
    """The function mapInPandas runs on each partition's Arrow batches (shipped by cloudpickle)."""

    def mapper(batches):
        import os as _os

        import pandas as pd

        from seaice_utils.labelling.pipeline import (INPUT_ERRORS, encode_outputs, label_scene,
                                                     scene_from_bytes, write_outputs)

        if cv_threads is not None:
            import cv2

            cv2.setNumThreads(int(cv_threads))
        for i, pdf in enumerate(batches):
            if i == 1 and fail_once_marker:
                try:   # the first task to get here fails once, after writing its first batch
                    fd = _os.open(fail_once_marker, _os.O_CREAT | _os.O_EXCL | _os.O_WRONLY)
                    _os.close(fd)
                    raise RuntimeError("seaice: injected task failure (first attempt)")
                except FileExistsError:
                    pass
            rows: dict[str, list] = {k: [] for k in ("input", "name", "status", "error",
                                                     "classes", "labels", "sidecar")}
            for uri, content in zip(pdf["path"], pdf["content"]):
                local = _local_path(uri)
                if local not in wanted:
                    continue                    # same name in a subfolder: not an input
                filename = _os.path.basename(local)
                res = dict(input=filename, name=_os.path.splitext(filename)[0], status="done",
                           error=None, classes=None, labels=None, sidecar=None)
                try:
                    scene = scene_from_bytes(bytes(content), filename, opts)
                    classes, _ = label_scene(scene, opts)
                    outputs = encode_outputs(scene, classes, opts, input_name=filename)
                    res["name"] = scene.name
                    if output == "executors":
                        write_outputs(out_dir, scene.name, outputs)
                    else:
                        res.update(outputs)
                except INPUT_ERRORS as exc:
                    res.update(status="failed", error=str(exc) or type(exc).__name__)
                for k, v in res.items():
                    rows[k].append(v)
            yield pd.DataFrame(rows)

    return mapper


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def _whole_folders(files: Sequence[Path]) -> bool:
    """True when ``files`` are all the files of their suffixes directly in their folders."""
    chosen = {_norm(f) for f in files}
    suffixes = {f.suffix for f in files}
    for folder in {f.resolve().parent for f in files}:
        with os.scandir(folder) as it:
            for e in it:
                if (e.is_file() and os.path.splitext(e.name)[1] in suffixes
                        and str(Path(folder) / e.name) not in chosen):
                    return False
    return True


def _source(spark, files: Sequence[Path]):
    """binaryFile DataFrame over the folders of ``files``, only their suffixes.

    The folders themselves are the source's root paths, so Spark lists each folder once on the
    driver (a glob naming thousands of files would make Spark start a listing job over them);
    ``pathGlobFilter`` keeps the suffixes asked for, and the caller keeps the files asked for
    (subfolders are listed too, but their files are dropped).
    """
    folders = sorted({str(f.resolve().parent) for f in files})
    suffixes = sorted({_glob_escape(f.suffix) for f in files})
    pattern = "*" + (suffixes[0] if len(suffixes) == 1 else "{" + ",".join(suffixes) + "}")
    return (spark.read.format("binaryFile").option("pathGlobFilter", pattern)
            .option("recursiveFileLookup", "true")   # no partition discovery on subfolders
            .load(folders if len(folders) > 1 else folders[0]))


def run_spark_job(files: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                  opts: LabelOptions = LabelOptions(), *, workers: int = 2,
                  master: str | None = None, spark=None, output: str = "executors",
                  batch_size: int = 64, tasks_per_slot: int = 2, cache: bool = False,
                  resume: bool = False, progress: bool = True, cv_threads: int | None = 1,
                  conf: dict[str, Any] | None = None, warm: bool = True,
                  fail_once_marker: str | os.PathLike | None = None):
    """Label files with Spark; see the module docstring for the phases.

    Parameters
    ----------
    files : sequence of paths
        Input images (local paths every executor can read).
    out_dir : path
    opts : LabelOptions
    workers : int
        Task slots of the ``local[workers]`` session made when neither ``spark`` nor ``master``
        is given.
    master : str, optional
        ``local[N]``, ``local[N,F]`` or ``spark://host:port`` for a new session.
    spark : SparkSession, optional
        Use this session (and leave it running); otherwise one is made and stopped at the end.
    output : {"executors", "driver"}
        Who writes the outputs.
    batch_size : int
        Files per Arrow batch.
    tasks_per_slot : int
        Partitions per task slot (load balance).
    cache : bool
        Read all bytes into Spark's memory in the load phase (Table II timing).
    resume : bool
        Skip files whose outputs are complete (checked on the driver).
    conf : dict, optional
        Extra settings for a new session.
    warm : bool
        Start the Python workers before timing (:func:`warm_up`).
    fail_once_marker : path, optional
        Testing aid: the first task to reach its second batch creates this file and fails;
        Spark retries it.

    Returns
    -------
    seaice_utils.engines.JobSummary
        ``seconds`` holds ``startup`` (session, 0 when given one), ``warmup``, ``load``,
        ``map``, ``reduce`` and ``total`` (= load + map + reduce).
    """
    from seaice_utils.engines.base import JobSummary, check_unique_names

    if output not in OUTPUT_MODES:
        raise ParamsError(f"spark output must be one of {', '.join(OUTPUT_MODES)} "
                          f"(got {output!r})")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ParamsError(f"spark batch_size must be an integer >= 1 (got {batch_size!r})")
    files = [Path(f) for f in files]
    check_unique_names(files)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = JobSummary(engine="spark", n_inputs=len(files))
    todo = []
    for f in files:
        if resume and is_done(out_dir, f.stem):
            summary.skipped.append(f.stem)
        else:
            todo.append(f)
    if spark is None and master is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()      # join the session this process runs
    own = spark is None
    t0 = time.perf_counter()
    if own:
        spark = spark_session(master or f"local[{workers}]", conf=conf, progress=progress,
                              batch_size=batch_size)
    summary.seconds["startup"] = time.perf_counter() - t0 if own else 0.0
    try:
        summary.workers = _slots(spark)
        summary.seconds["warmup"] = (warm_up(spark, todo[:2 * summary.workers], opts,
                                             output=output) if warm and todo else 0.0)
        if todo:
            _run(spark, todo, out_dir, opts, output=output, batch_size=batch_size,
                 tasks_per_slot=tasks_per_slot, cache=cache, cv_threads=cv_threads,
                 fail_once_marker=None if fail_once_marker is None else str(fail_once_marker),
                 summary=summary)
        else:
            summary.seconds.update(load=0.0, map=0.0, reduce=0.0)
    finally:
        if own:
            spark.stop()
    s = summary.seconds
    s["total"] = s["load"] + s["map"] + s["reduce"]
    return summary


def _run(spark, todo: list[Path], out_dir: Path, opts: LabelOptions, *, output: str,
         batch_size: int, tasks_per_slot: int, cache: bool, cv_threads: int | None,
         fail_once_marker: str | None, summary) -> None:
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size))
    spark.conf.set("spark.sql.files.minPartitionNum",
                   str(max(1, min(len(todo), _slots(spark) * tasks_per_slot))))
    spark.conf.set("spark.sql.files.openCostInBytes", "1")
    names = sorted(f.name for f in todo)

    # load: Spark's binaryFile source; keep only the files asked for
    t0 = time.perf_counter()
    df = _source(spark, todo)
    if not _whole_folders(todo):
        # a join, not isin(): a literal per name costs a Py4J call each
        keep = spark.createDataFrame([(n,) for n in names], "_file string")
        df = (df.withColumn("_file", F.element_at(F.split(F.col("path"), "/"), -1))
              .join(F.broadcast(keep), "_file"))
    df = df.select("path", "content")
    if cache:
        df = df.cache()
        df.count()
    t1 = time.perf_counter()
    # map: lazy
    wanted = frozenset(_norm(f) for f in todo)
    mapped = df.mapInPandas(_make_mapper(str(out_dir), opts, output, cv_threads,
                                         fail_once_marker, wanted), RESULT_SCHEMA)
    if output == "executors":
        mapped = mapped.select("input", "name", "status", "error")
    t2 = time.perf_counter()
    # reduce: the action (and the driver's writes)
    rows = mapped.collect()
    if output == "driver":
        from seaice_utils.labelling.pipeline import write_outputs

        for r in rows:
            if r["status"] == "done":
                write_outputs(out_dir, r["name"], {"classes": bytes(r["classes"]),
                                                   "labels": bytes(r["labels"]),
                                                   "sidecar": bytes(r["sidecar"])})
    t3 = time.perf_counter()
    if cache:
        df.unpersist()
    summary.seconds.update(load=t1 - t0, map=t2 - t1, reduce=t3 - t2)

    got: dict[str, Any] = {}
    for r in rows:
        if r["input"] in got:
            raise SeaIceError(f"spark returned {r['input']} twice; every input must be labelled "
                              "exactly once")
        got[r["input"]] = r
    for f in todo:
        name = f.name
        r = got.get(name)
        if r is None:
            summary.failures.append((name, "not read by Spark (file vanished or unreadable)"))
        elif r["status"] == "failed":
            summary.failures.append((name, r["error"]))
        else:
            summary.done.append(r["name"])


# --- a standalone cluster on this machine ---------------------------------------------------

def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalStandaloneCluster:
    """A Spark standalone master and workers on 127.0.0.1, started from the installed pyspark.

    Parameters
    ----------
    workers : int
        Worker daemons.
    cores : int
        Cores each worker offers.
    memory : str
        Memory each worker offers (executors default to 1g; ask for less with
        ``spark.executor.memory``).
    host : str
    log_dir : path, optional
        Where the daemons' logs and work folders go (a temporary folder by default, removed
        on :meth:`stop` unless given).

    Examples
    --------
    ::

        with LocalStandaloneCluster(workers=1, cores=2) as cluster:
            summary = run_spark_job(files, out, master=cluster.url,
                                    conf={"spark.executor.memory": "512m"})
    """

    def __init__(self, *, workers: int = 1, cores: int = 1, memory: str = "1g",
                 host: str = "127.0.0.1", log_dir: str | os.PathLike | None = None,
                 timeout: float = 120.0) -> None:
        if workers < 1 or cores < 1:
            raise ParamsError(f"a cluster needs workers >= 1 and cores >= 1 (got {workers}, "
                              f"{cores})")
        self.workers, self.cores, self.memory, self.host = workers, cores, memory, host
        self.timeout = timeout
        self._own_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="seaice-cluster-"))
        self.procs: list[subprocess.Popen] = []
        self.port = self.webui_port = None
        self._logs: list[io.IOBase] = []

    @property
    def url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        home = spark_home()
        env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP=self.host,
                   SPARK_LOG_DIR=str(self.log_dir), SPARK_NO_DAEMONIZE="1",
                   PYSPARK_PYTHON=sys.executable)
        log = open(self.log_dir / log_name, "wb")
        self._logs.append(log)
        proc = subprocess.Popen([str(home / "bin" / "spark-class"), *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=self.log_dir,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def status(self) -> dict:
        """The master's JSON status (workers, cores, applications)."""
        url = f"http://{self.host}:{self.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read().decode())

    def _wait(self, what: str, ready) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise SeaIceError(f"spark {what}: a daemon exited with {p.returncode}; "
                                      f"see logs in {self.log_dir}")
            try:
                if ready():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise SeaIceError(f"spark {what} not ready after {self.timeout:.0f} s; logs in "
                          f"{self.log_dir}")

    def start(self) -> "LocalStandaloneCluster":
        """Start the master, then the workers; return once every worker is ALIVE."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port, self.webui_port = _free_port(self.host), _free_port(self.host)
        try:
            self._spawn(["org.apache.spark.deploy.master.Master", "--host", self.host,
                         "--port", str(self.port), "--webui-port", str(self.webui_port)],
                        "master.log")
            self._wait("master", lambda: self.status().get("status") == "ALIVE")
            for i in range(self.workers):
                work = self.log_dir / f"work-{i}"
                work.mkdir(exist_ok=True)
                self._spawn(["org.apache.spark.deploy.worker.Worker", "--host", self.host,
                             "--cores", str(self.cores), "--memory", self.memory,
                             "--work-dir", str(work), "--webui-port",
                             str(_free_port(self.host)), self.url], f"worker-{i}.log")
            self._wait("workers", lambda: sum(
                w.get("state") == "ALIVE" for w in self.status().get("workers", []))
                >= self.workers)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the daemons this object started (their process groups), workers first."""
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            # the group also holds what the daemon started (executors): wait until it is empty
            deadline, killed = time.monotonic() + 10, False
            while p.poll() is None or _group_alive(p.pid):   # poll() reaps the daemon
                if time.monotonic() > deadline:
                    if killed:
                        raise SeaIceError(f"spark daemon group {p.pid} survives SIGKILL")
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    deadline, killed = time.monotonic() + 10, True
                time.sleep(0.2)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._own_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> "LocalStandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
