"""Launching a training run: its folder, its processes (``horovodrun`` or one Python), its log.

A run lives in ``<outputs>/training/<run>/``: ``settings.json`` (what was asked, with a
fingerprint), ``checkpoints/``, ``history.csv``, ``launch.log`` (all ranks' output, appended per
launch), ``model.keras`` and ``result.json`` (written last: its presence means the run is
complete). The paths in these files are relative to the run folder
(:func:`seaice_utils.training.settings.portable_settings`; ``launch.log`` shows each command
with ``python`` for this Python and ``settings.json`` for the settings file), so a run folder
names no user's folders and is still recognised as done after the outputs folder moved; the
dicts returned here hold absolute paths. :func:`launch` starts the ranks (:func:`seaice_utils.training.worker.rank_entry`, with
the Python running this) and waits for them. Launching a run whose ``result.json`` has the same
fingerprint returns it without training again; a run interrupted after some epochs resumes from
its last checkpoint; changed settings start afresh (:func:`prepare_run_dir`).

A failing rank prints a :data:`seaice_utils.training.worker.FAILURE_MARK` line; ``horovodrun``
then stops the other ranks and :func:`launch` raises
:class:`seaice_utils.training.settings.TrainingFailed` naming the rank. Checkpoints are only ever
replaced atomically, so the last one stays valid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from seaice_utils.core.scenes import write_json
from seaice_utils.training.settings import (TrainingFailed, absolute_paths, fingerprint,
                                            portable_paths, portable_settings)
from seaice_utils.training.worker import FAILURE_MARK

__all__ = ["horovodrun_path", "prepare_run_dir", "launch_env", "launch"]

#: The module each rank runs (``python -m``).
WORKER_MODULE = "seaice_utils.training.worker"


def horovodrun_path() -> str | None:
    """The ``horovodrun`` beside this Python, or on PATH (None if Horovod is not installed)."""
    here = Path(sys.executable).parent / "horovodrun"
    if here.is_file():
        return str(here)
    return shutil.which("horovodrun")


def _failure_message(log: str, rc: int) -> str:
    """What went wrong, from a failed run's log: the failing rank(s) first, their errors."""
    import re

    first = re.search(r"first process to do so was:\s*Process name:\s*(\d+)", log)
    ours = [ln.split(FAILURE_MARK, 1)[1].strip() for ln in log.splitlines() if FAILURE_MARK in ln]
    ours = list(dict.fromkeys(ours))
    if first:  # the rank that failed first (the others usually fail because it left)
        ours.sort(key=lambda m: not m.startswith(f"rank={first[1]} "))
    if ours:
        lead = f"rank {first[1]} failed first; " if first else ""
        return lead + "; ".join(ours)
    if first:
        return f"rank {first[1]} failed first (no error message; see the log)"

    procs = sorted(set(re.findall(r"Process (\d+) exit with status code (-?\d+)", log)))
    if procs:
        return "; ".join(f"rank={r}: exited with status {c}" for r, c in procs)
    tail = "\n".join(log.strip().splitlines()[-15:])
    return f"exit status {rc} (no rank reported an error); last lines:\n{tail}"


def prepare_run_dir(settings: dict) -> dict | None:
    """Get a run folder ready; return the finished result instead if there is one.

    A ``result.json`` with the same fingerprint and number of epochs (and its model) means the
    run is done: its result is returned with ``skipped: True`` (paths absolute). Otherwise
    ``settings.json`` is (re)written, its paths relative to the run folder; if it named other
    settings, the old checkpoints and history are removed (they do not fit), else they stay and
    the run resumes from them.
    """
    run_dir = Path(settings["run_dir"])
    fp = fingerprint(settings)
    res_path = run_dir / "result.json"
    if res_path.is_file():
        try:
            res = absolute_paths(json.loads(res_path.read_text()), run_dir)
            if (res.get("fingerprint") == fp and res.get("epochs") == settings["epochs"]
                    and Path(res["model_path"]).is_file()):
                return {**res, "skipped": True}
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    sj = run_dir / "settings.json"
    if sj.is_file():
        try:
            same = json.loads(sj.read_text()).get("fingerprint") == fp
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:  # different settings: the old checkpoints do not apply
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            (run_dir / "history.csv").unlink(missing_ok=True)
    res_path.unlink(missing_ok=True)
    write_json(sj, {**portable_settings(settings), "fingerprint": fp})
    return None


def launch_env(settings: dict, env: dict | None = None) -> dict[str, str]:
    """Environment of the launched workers: this one, plus quiet TensorFlow,
    ``OMP_NUM_THREADS`` = threads per worker, ``HOROVOD_CYCLE_TIME`` from ``cycle_time_ms``
    (unless already set), then ``env``. The workers import ``seaice_utils`` from the environment
    of the Python that launches them (where the package is installed)."""
    threads = str(settings.get("threads_per_worker") or "")
    penv = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
            **({"OMP_NUM_THREADS": threads} if threads else {})}
    cycle = settings.get("cycle_time_ms")
    if cycle and "HOROVOD_CYCLE_TIME" not in penv:
        penv["HOROVOD_CYCLE_TIME"] = f"{float(cycle):g}"
    penv.update(env or {})
    return penv


def launch(settings: dict, *, hosts: str | None = None, launcher: str = "auto",
           timeout: float | None = None, echo: bool = False,
           env: dict[str, str] | None = None) -> dict:
    """Run one training (``settings["workers"]`` processes) and return its result.

    Parameters
    ----------
    settings : dict
        From :func:`training_settings`.
    hosts : str, optional, keyword-only
        ``horovodrun -H`` value for multi-host runs (default ``localhost:<workers>``).
    launcher : {"auto", "horovodrun", "python"}, keyword-only
        ``auto``: horovodrun when Horovod is installed (also for one worker, so that timings of 1
        and N workers are taken the same way), else a plain Python process (one worker only).
    timeout : float, optional, keyword-only
        Seconds before the run is stopped (TrainingFailed).
    echo : bool, keyword-only
        Copy the workers' output to this process's stdout as it comes.
    env : dict, optional, keyword-only
        Extra environment variables for the workers.

    Returns
    -------
    dict
        The run's ``result.json`` plus ``wall_seconds`` (launch to exit) and ``skipped`` (True
        when a complete run with the same settings existed); its ``model_path`` (and a
        ``label_source`` folder) absolute.

    Raises
    ------
    TrainingFailed
        When the run exits non-zero or times out, naming the failing rank(s); the log is
        ``<run_dir>/launch.log``.
    """
    run_dir = Path(settings["run_dir"])
    done = prepare_run_dir(settings)
    if done is not None:
        return done
    res_path, old = run_dir / "result.json", run_dir / "settings.json"

    n = int(settings["workers"])
    hr = horovodrun_path()
    use_hr = launcher == "horovodrun" or (launcher == "auto" and hr is not None) or n > 1 or hosts
    worker = [sys.executable, "-m", WORKER_MODULE, "--settings", str(old)]
    # what launch.log shows: no path of this machine (this Python, the run folder)
    shown = ["python", "-m", WORKER_MODULE, "--settings", old.name]
    if use_hr:
        if hr is None:
            raise TrainingFailed(f"{n} workers need horovodrun, which is not installed "
                                 "(see requirements-horovod.txt)")
        opts = ["--gloo", "-np", str(n), "-H", hosts or f"localhost:{n}"]
        cmd, shown = [hr, *opts, *worker], ["horovodrun", *opts, *shown]
    else:
        cmd = worker
    penv = launch_env(settings, env)
    log_path = run_dir / "launch.log"
    t0 = time.perf_counter()
    lines: list[str] = []
    with log_path.open("a") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ " + " ".join(shown) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=penv, start_new_session=True, bufsize=1)
        import threading

        def pump():
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line)
                if echo and not _noise(line):
                    print(line, end="", flush=True)

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            th.join(10)
            raise TrainingFailed(f"training run {settings['run_name']} timed out after "
                                 f"{timeout:.0f} s and was stopped; log: {log_path}") from None
        except BaseException:
            _kill_group(proc)
            raise
        th.join(30)
    wall = time.perf_counter() - t0
    if rc != 0:
        msg = _failure_message("".join(lines), rc)
        raise TrainingFailed(f"training run {settings['run_name']} failed (exit status {rc}): "
                             f"{msg}\nlog: {log_path}; the last checkpoint is kept in "
                             f"{run_dir / 'checkpoints'} and a rerun resumes from it")
    if not res_path.is_file():
        raise TrainingFailed(f"training run {settings['run_name']} exited 0 but wrote no "
                             f"{res_path}; log: {log_path}")
    res = absolute_paths(json.loads(res_path.read_text()), run_dir)
    res.update(wall_seconds=wall, skipped=False)
    write_json(res_path, portable_paths(res, run_dir))
    return res


def _noise(line: str) -> bool:
    """TensorFlow and Python warnings not worth echoing (they stay in the log)."""
    return any(s in line for s in ("Warning", "warnings.warn", "cpu_feature_guard",
                                   "rebuild TensorFlow", "oneDNN"))


def _kill_group(proc: subprocess.Popen) -> None:
    """Stop a launched run and everything it started (TERM, then KILL after 10 s)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
