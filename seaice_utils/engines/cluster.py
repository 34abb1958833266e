"""A Spark standalone cluster on this machine, for tests and to emulate executors x cores.

:class:`LocalStandaloneCluster` starts a standalone master and workers on 127.0.0.1 from the
installed pyspark (``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``,
``SPARK_HOME`` = the pyspark package folder, :func:`~seaice_utils.engines.spark.spark_home`) and
stops them again, with everything they started (executors): for tests, and to emulate
executors x cores on one machine (notebook 03, Table II).
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
import urllib.request
from pathlib import Path

from seaice_utils.engines.spark import spark_home
from seaice_utils.errors import ParamsError, SeaIceError

__all__ = ["LocalStandaloneCluster"]


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
            summary = run_label_job(files, out, engine="spark", master=cluster.url,
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
