"""Starting Spark for the engine layer: the session (local, or a cluster with the package
shipped), quiet on this machine.

:func:`spark_session` starts or joins a SparkSession set up for jobs over many files; on this
machine (a ``local`` master or a cluster on 127.0.0.1) Spark binds to the loopback address, so
neither the machine's hostname nor its address shows in logs, and the JVM's start-up lines are
kept out of this process's stderr (and so out of executed notebooks). :func:`package_zip` makes
the zip of ``seaice_utils`` that executors import. Spark is imported inside the functions.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import seaice_utils
from seaice_utils.errors import ParamsError

__all__ = ["spark_home", "package_zip", "spark_session"]


def spark_home() -> Path:
    """``$SPARK_HOME`` if set, else the installed pyspark package folder (it holds bin/, jars/)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def package_zip(dest_dir: str | os.PathLike) -> Path:
    """Zip the ``seaice_utils`` package (its .py files, subpackages included) into
    ``dest_dir/seaice_utils.zip``."""
    pkg = Path(seaice_utils.__path__[0]).resolve()
    out = Path(dest_dir) / "seaice_utils.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(pkg.rglob("*.py")):
            zf.write(p, f"seaice_utils/{p.relative_to(pkg).as_posix()}")
    return out


def _is_local_master(master: str) -> bool:
    return master.startswith("local") or master.startswith(("spark://127.0.0.1",
                                                            "spark://localhost"))


def spark_session(master: str = "local[2]", *, app_name: str = "seaice",
                  conf: dict[str, Any] | None = None, progress: bool = True,
                  driver_memory: str = "2g", batch_size: int = 64, ship_package: bool = True,
                  quick_jit: bool = True):
    """Start (or join) a SparkSession set up for jobs over many files.

    On this machine (a ``local`` master or a cluster on 127.0.0.1) Spark binds to the loopback
    address, so neither the machine's hostname nor its address shows in logs; the JVM's start-up
    lines (log set-up, native-Hadoop notice) are kept out of this process's stderr (notebooks).

    Parameters
    ----------
    master : str
        ``local[N]``, ``local[N,F]`` (F = attempts per task) or ``spark://host:port``.
    app_name : str
        The application's name (the cluster's UI and status list it).
    conf : dict, optional
        Extra Spark settings (they win over the defaults set here).
    progress : bool
        Spark's console progress bar.
    driver_memory : str
        Driver JVM heap (takes effect only when this call starts the JVM), and each executor's
        on a cluster. The Python workers' memory is bounded by ``global.worker_memory_gb``: a
        TIFF scene is read in bands of a sixteenth of it.
    batch_size : int
        Files per Arrow batch handed to a Python worker.
    ship_package : bool
        Zip ``seaice_utils`` and ``addPyFile`` it, so executors can import it.
    quick_jit : bool
        Run the driver and executor JVMs with ``-XX:TieredStopAtLevel=1`` (the client JIT
        only). The JVM's share of these jobs is moving bytes (file -> Arrow -> Python); the
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
        "spark.executor.memory": driver_memory,   # a cluster's executors (local: the driver's)
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
    # PySpark takes the workers' Python from PYSPARK_PYTHON when it makes the context; on this
    # machine Spark binds to the loopback address by name, so it neither looks up nor prints the
    # machine's hostname and network address (unless the user set these variables)
    env = {"PYSPARK_PYTHON": str(settings["spark.pyspark.python"])}
    if _is_local_master(master):
        env.update({k: os.environ.get(k, v) for k, v in (("SPARK_LOCAL_IP", "127.0.0.1"),
                                                         ("SPARK_LOCAL_HOSTNAME", "localhost"))})
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        spark = _quiet_jvm_start(builder.getOrCreate)
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    spark.sparkContext.setLogLevel("ERROR")
    if ship_package:
        spark.sparkContext.addPyFile(str(package_zip(_zip_dir())))
    return spark


#: Lines the JVM prints while it starts (to its stderr, which a notebook records): the JVM's
#: incubator-module notice, Spark's log set-up, the native-Hadoop and network warnings.
_JVM_CHATTER = re.compile(rb"^(WARNING: Using incubator modules|Using Spark's default log4j "
                          rb"profile|Setting default log level|To adjust logging level use|"
                          rb"\S+ \S+ WARN (NativeCodeLoader: |Utils: Your hostname|Utils: Set "
                          rb"SPARK_LOCAL_IP))")


def _quiet_jvm_start(start):
    """``start()`` with the stderr of a JVM it launches filtered of :data:`_JVM_CHATTER`.

    The JVM inherits file descriptor 2 from this process; while ``start`` runs, that is a pipe
    whose reader (a daemon thread, for the JVM's whole life) drops the start-up lines and
    passes everything else (errors, progress bars, Python workers' output) to the real stderr;
    an unfinished line waits half a second at most for its end.
    """
    import select
    import threading

    sys.stderr.flush()
    try:
        real = os.dup(2)
    except OSError:                       # no stderr to protect
        return start()
    r, w = os.pipe()

    def forward():
        pending = b""
        with os.fdopen(r, "rb", buffering=0) as src, os.fdopen(real, "wb") as dst:
            while True:
                waited = not select.select([src], [], [], 0.5 if pending else None)[0]
                if not waited:
                    chunk = src.read(65536)
                    if not chunk:
                        break
                    pending += chunk
                lines = pending.splitlines(keepends=True)
                done = waited or not lines or lines[-1].endswith((b"\n", b"\r"))
                pending = b"" if done else lines.pop()
                dst.write(b"".join(ln for ln in lines if not _JVM_CHATTER.match(ln)))
                dst.flush()
            dst.write(pending)

    threading.Thread(target=forward, name="seaice-jvm-stderr", daemon=True).start()
    os.dup2(w, 2)
    os.close(w)
    try:
        return start()
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)                  # this process writes to the real stderr again


_ZIP_DIR: list[Path] = []


def _zip_dir() -> Path:
    """A folder for the package zip, one per process, removed when the process exits."""
    if not _ZIP_DIR:
        import atexit

        _ZIP_DIR.append(Path(tempfile.mkdtemp(prefix="seaice-spark-")))
        atexit.register(shutil.rmtree, _ZIP_DIR[0], True)
    return _ZIP_DIR[0]
