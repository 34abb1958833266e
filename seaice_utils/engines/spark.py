"""The ``spark`` engine: a task over many files as a PySpark job, in local mode or on a cluster.

:func:`run_spark_job` has two paths.

Bytes tasks (``task.bytes_mode``, the labelling jobs) run in the paper's three phases (Table II):

``load``
    Spark's own ``binaryFile`` source reads the input files (path and bytes per row). Every file
    is one row of exactly one partition (binary files are not split); the partitions are sized
    by bytes so that there are about ``tasks_per_slot`` tasks per task slot. The source's roots
    are the input folders (Spark lists each folder once on the driver) with a ``pathGlobFilter``
    on the suffixes; when the inputs are not whole folders the wanted names are kept with a
    broadcast join (not ``isin``, which costs a Py4J call per name). With ``cache=True`` the
    bytes are read into Spark's memory here (``cache`` + ``count``), as the paper timed it;
    otherwise this phase only plans the scan and the reading happens in the next action.
``map``
    ``mapInPandas`` runs the task on each Arrow batch of ``batch_size`` files in a Python
    worker (``task.run_bytes``). It is lazy: defining it costs next to nothing, as the paper's
    0.2-0.4 s map times show.
``reduce``
    The action. ``output="executors"``: each executor publishes its outputs itself
    (``task.publish``: atomically, sidecar last; needs an output folder every executor can
    reach, e.g. a shared file system) and only (name, status, error) rows travel back.
    ``output="driver"``: the encoded outputs are collected to the driver, which publishes them
    (the paper's reduce).

Path tasks (the prediction jobs) run ``task.run(path)`` in ``mapPartitions`` over the file
paths (one partition per task slot, at most one per file); the files of ``task.ship()`` (a
model) are sent once per executor with ``SparkContext.addFile`` and found there with
``SparkFiles.get``. Every executor must be able to read the inputs and write the outputs.

Either way the task's ``setup`` runs once per Python worker process and job (the set-up task is
kept in the worker between partitions), and a file's outcome is the same as with the local
engines. :func:`spark_session` zips ``seaice_utils`` and ships it to the executors with
``SparkContext.addPyFile``. Spark retries failed tasks (``spark.task.maxFailures``; in local
mode give it in the master, ``local[N,F]``); a retried task rewrites the same files atomically,
so the result is complete and identical. :mod:`seaice_utils.engines.cluster` starts a standalone
cluster on this machine. Spark and pandas are imported inside the functions.
"""

from __future__ import annotations

import os
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

from seaice_utils.engines.base import JobSummary, Task, check_unique_names, describe_error
from seaice_utils.engines.session import package_zip, spark_home, spark_session
from seaice_utils.errors import ParamsError, SeaIceError

__all__ = ["spark_home", "package_zip", "spark_session", "run_spark_job", "warm_up",
           "result_schema", "OUTPUT_MODES"]

OUTPUT_MODES = ("executors", "driver")
_GLOB_SPECIAL = "\\*?[]{}"


def _norm(f: Path) -> str:
    """A file's path as Spark lists it: its folder resolved, its own name kept."""
    return str(f.resolve().parent / f.name)


def _slots(spark) -> int:
    return max(1, int(spark.sparkContext.defaultParallelism))


def result_schema(output_keys: Sequence[str]) -> str:
    """Schema of the rows the bytes path returns: input, name, status, error, one binary
    column per output."""
    return ", ".join(["input string", "name string", "status string", "error string"]
                     + [f"{k} binary" for k in output_keys])


# --- in the Python workers ------------------------------------------------------------------

#: The set-up task of the current job in this Python worker: (job token, task, setup result).
_READY: dict[str, Any] = {}


def _ready_task(token: str, task: Task, workers: int, shipped: dict[str, str]) -> tuple:
    """The task of job ``token``, set up once per worker process (kept between partitions)."""
    if _READY.get("token") != token:
        state = task.setup(engine="spark", workers=workers, shipped=shipped)
        _READY.update(token=token, task=task, state=state)
    return _READY["task"], _READY["state"]


def _local_path(uri: str) -> str:
    """Spark's path column (``file:/a/b.png``, maybe %-quoted) -> local path string."""
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.unquote(parsed.path) if parsed.scheme in ("file", "") else uri


def _make_mapper(task: Task, token: str, workers: int, output: str, wanted: frozenset[str]):
    """The function mapInPandas runs on each partition's Arrow batches (shipped by cloudpickle)."""
    keys = tuple(task.output_keys)

    def mapper(batches):
        import os as _os

        import pandas as pd

        run, _ = _ready_task(token, task, workers, {})
        for pdf in batches:
            rows: dict[str, list] = {k: [] for k in ("input", "name", "status", "error") + keys}
            for uri, content in zip(pdf["path"], pdf["content"]):
                local = _local_path(uri)
                if local not in wanted:
                    continue                    # same name in a subfolder: not an input
                filename = _os.path.basename(local)
                res: dict[str, Any] = dict(input=filename, name=_os.path.splitext(filename)[0],
                                           status="done", error=None)
                res.update({k: None for k in keys})
                try:
                    name, outputs = run.run_bytes(bytes(content), filename)
                    res["name"] = name
                    if output == "executors":
                        run.publish(name, outputs)
                    else:
                        res.update(outputs)
                except run.errors as exc:
                    res.update(status="failed", error=describe_error(exc))
                for k, v in res.items():
                    rows[k].append(v)
            yield pd.DataFrame(rows)

    return mapper


def _make_partition(task: Task, token: str, workers: int, names: list[str]):
    """The function mapPartitions runs on each partition of paths (shipped by cloudpickle)."""

    def run_partition(paths: Iterator[str]) -> Iterator[tuple]:
        import os as _os

        from pyspark import SparkFiles

        from seaice_utils.engines.base import run_one  # deferred: runs on the Spark executor

        shipped = {n: SparkFiles.get(n) for n in names}
        run, state = _ready_task(token, task, workers, shipped)
        for f in paths:
            yield run_one(run, f) + (_os.getpid(), state)

    return run_partition


# --- on the driver --------------------------------------------------------------------------

def warm_up(spark, files: Sequence[str | os.PathLike] = (), task: Task | None = None, *,
            output: str = "executors") -> float:
    """Start the Python workers (and warm the JVM) before a timed job; return seconds.

    Spark starts its Python workers on first use and then reuses them, and the JVM compiles its
    hot paths during the first jobs. With ``files`` and a bytes task that can write elsewhere
    (``task.scratch``), the real job (binaryFile source, ``mapInPandas``, the same mapper) runs
    on them into a scratch folder that is then deleted; otherwise a trivial ``mapInPandas`` job
    that unpickles the task (importing its modules) runs on every task slot. Timing a job after
    this excludes those one-off costs, like the session start-up.
    """
    import pandas as pd

    t0 = time.perf_counter()
    n = _slots(spark)
    files = [Path(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="seaice-warmup-") as tmp:
        scratch = task.scratch(tmp) if (task is not None and files and task.bytes_mode) else None
        if scratch is not None:
            _run_bytes(spark, scratch, files, output=output,
                       batch_size=max(1, -(-len(files) // n)), tasks_per_slot=1, cache=False,
                       summary=JobSummary())
        else:
            def touch(batches):
                import seaice_utils.engines.base  # noqa: F401  # deferred: once per Spark worker

                _ = task                          # unpickling it imports the task's modules
                for b in batches:
                    yield pd.DataFrame({"n": [len(b)]})

            spark.range(0, n, 1, n).mapInPandas(touch, "n long").collect()
    return time.perf_counter() - t0


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


#: Inputs larger than this (MB) are read by path on the executors, not sent as bytes through
#: Spark's ``binaryFile`` source and the JVM heap.
BYTES_MODE_MAX_MB = 64


def run_spark_job(task: Task, files: Sequence[str | os.PathLike], *, workers: int = 2,
                  master: str | None = None, spark=None, output: str = "executors",
                  batch_size: int = 64, tasks_per_slot: int = 2, cache: bool = False,
                  resume: bool = False, progress: bool = True,
                  conf: dict[str, Any] | None = None, warm: bool = True) -> JobSummary:
    """Run ``task`` over ``files`` with Spark; see the module docstring for the two paths.

    Parameters
    ----------
    task : Task
    files : sequence of paths
        Input files (local paths every executor can read).
    workers : int
        Task slots of the ``local[workers]`` session made when neither ``spark`` nor ``master``
        is given (and no session is running in this process).
    master : str, optional
        ``local[N]``, ``local[N,F]`` or ``spark://host:port`` for a new session.
    spark : SparkSession, optional
        Use this session (and leave it running); otherwise the running one, or one is made
        (named ``task.app_name``) and stopped at the end.
    output : {"executors", "driver"}
        Who publishes the outputs (bytes tasks; path tasks write on the executors).
    batch_size : int
        Files per Arrow batch (bytes tasks).
    tasks_per_slot : int
        Partitions per task slot (load balance; bytes tasks).
    cache : bool
        Read all bytes into Spark's memory in the load phase (Table II timing).
    resume : bool
        Skip files whose outputs are complete and made with the same settings from the same
        input (``task.state``, checked on the driver); redo the others.
    conf : dict, optional
        Extra settings for a new session.
    warm : bool
        Start the Python workers before timing (:func:`warm_up`).

    Returns
    -------
    JobSummary
        ``seconds`` holds ``startup`` (session, 0 when given one), ``warmup``, ``load``,
        ``map``, ``reduce`` and ``total`` (= load + map + reduce).
    """
    if output not in OUTPUT_MODES:
        raise ParamsError(f"spark output must be one of {', '.join(OUTPUT_MODES)} "
                          f"(got {output!r})")
    if output == "driver" and not task.bytes_mode:
        raise ParamsError("spark output 'driver' needs a task that works on bytes")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ParamsError(f"spark batch_size must be an integer >= 1 (got {batch_size!r})")
    files = [Path(f) for f in files]
    check_unique_names(files)
    summary = JobSummary(engine="spark", n_inputs=len(files), verb=task.verb)
    todo, changed = [], set()
    for f in files:
        state = task.state(f) if resume else "missing"
        if state == "done":
            summary.skipped.append(f.stem)
        else:
            todo.append(f)
            if state == "changed":
                changed.add(f.stem)
    if spark is None and master is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()      # join the session this process runs
    own = spark is None
    t0 = time.perf_counter()
    if own:
        spark = spark_session(master or f"local[{workers}]", app_name=task.app_name, conf=conf,
                              progress=progress, batch_size=batch_size)
    summary.seconds["startup"] = time.perf_counter() - t0 if own else 0.0
    # big files (a full Sentinel-2 tile: hundreds of MB) are not shipped as bytes through the
    # JVM: the executors read them by path, in bands (executors write the outputs)
    by_path = any(f.stat().st_size > BYTES_MODE_MAX_MB * 2**20 for f in todo if f.is_file())
    try:
        summary.workers = _slots(spark)
        summary.seconds["warmup"] = (
            warm_up(spark, [] if by_path else todo[:2 * summary.workers], task, output=output)
            if warm and todo else 0.0)
        if todo and task.bytes_mode and not by_path:
            _run_bytes(spark, task, todo, output=output, batch_size=batch_size,
                       tasks_per_slot=tasks_per_slot, cache=cache, summary=summary)
        elif todo:
            _run_paths(spark, task, todo, summary=summary)
        else:
            summary.seconds.update(load=0.0, map=0.0, reduce=0.0)
    finally:
        if own:
            spark.stop()
    summary.redone = [n for n in summary.done if n in changed]
    s = summary.seconds
    s["total"] = s["load"] + s["map"] + s["reduce"]
    return summary


def _run_bytes(spark, task: Task, todo: list[Path], *, output: str, batch_size: int,
               tasks_per_slot: int, cache: bool, summary: JobSummary) -> None:
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
    mapper = _make_mapper(task, uuid.uuid4().hex, _slots(spark), output, wanted)
    mapped = df.mapInPandas(mapper, result_schema(task.output_keys))
    if output == "executors":
        mapped = mapped.select("input", "name", "status", "error")
    t2 = time.perf_counter()
    # reduce: the action (and the driver's writes)
    rows = mapped.collect()
    if output == "driver":
        for r in rows:
            if r["status"] == "done":
                task.publish(r["name"], {k: None if r[k] is None else bytes(r[k])
                                         for k in task.output_keys})
    t3 = time.perf_counter()
    if cache:
        df.unpersist()
    summary.seconds.update(load=t1 - t0, map=t2 - t1, reduce=t3 - t2)

    got: dict[str, Any] = {}
    for r in rows:
        if r["input"] in got:
            raise SeaIceError(f"spark returned {r['input']} twice; every input must be run "
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
            summary.add(("done", r["name"], None))


def _run_paths(spark, task: Task, todo: list[Path], *, summary: JobSummary) -> None:
    sc = spark.sparkContext
    t0 = time.perf_counter()
    shipped = [Path(p) for p in task.ship()]
    for p in shipped:
        sc.addFile(str(p.resolve()), recursive=p.is_dir())
    n_parts = min(len(todo), sc.defaultParallelism)
    rdd = sc.parallelize([os.path.abspath(f) for f in todo], n_parts)   # links keep names
    t1 = time.perf_counter()
    mapped = rdd.mapPartitions(_make_partition(task, uuid.uuid4().hex, n_parts,
                                               [p.name for p in shipped]))
    t2 = time.perf_counter()
    results = mapped.collect()
    t3 = time.perf_counter()
    summary.seconds.update(load=t1 - t0, map=t2 - t1, reduce=t3 - t2)
    for status, name, payload, pid, state in results:
        summary.setups[pid] = state
        summary.add((status, name, payload))
