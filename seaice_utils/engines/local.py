"""The local engines: ``sequential`` (a loop in this process) and ``multiprocessing`` (a pool).

Both run a :class:`~seaice_utils.engines.base.Task` over a list of files and record every file's
outcome in a :class:`~seaice_utils.engines.base.JobSummary`, in input order whatever finished
first. ``multiprocessing`` cuts the list into contiguous, disjoint chunks
(:func:`~seaice_utils.engines.base.chunk`; the published script let its slices overlap and
labelled some tiles twice), so every file is run by exactly one worker, exactly once. The task's
``setup`` runs once in each worker process (the pool's initializer), with the task's start
method: ``fork`` on Linux by default, ``spawn`` for tasks that need it (TensorFlow is not
fork-safe). ``resume`` is checked where the file runs, so the checks run in parallel too.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from seaice_utils.engines.base import JobSummary, Task, chunk, default_chunk_size, run_one

__all__ = ["run_sequential", "run_multiprocessing", "default_start_method"]


def _shipped(task: Task) -> dict[str, str]:
    """Local runs: the files a task ships, by base name, where they are."""
    return {Path(p).name: str(Path(p).resolve()) for p in task.ship()}


def default_start_method() -> str:
    """``fork`` on Linux (cheap, inherits the parent's imports), else ``spawn``."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def run_sequential(task: Task, files: Sequence[Path], summary: JobSummary, *,
                   resume: bool = False, progress: bool = True) -> None:
    """Run ``task`` over ``files`` in this process; fill ``summary`` (``startup``, ``run``)."""
    from tqdm import tqdm

    summary.setups[os.getpid()] = task.setup(engine="sequential", workers=1,
                                             shipped=_shipped(task))
    try:
        t0 = time.perf_counter()
        for f in tqdm(files, desc=task.desc, unit=task.unit, disable=not progress):
            summary.add(run_one(task, f, resume=resume))
        summary.seconds.update(startup=0.0, run=time.perf_counter() - t0)
    finally:
        task.teardown()


# --- multiprocessing workers (module level so that they pickle) -----------------------------

_WORKER: dict[str, Any] = {}


def _end_with_parent() -> None:
    """Make this pool worker end quietly when its parent does (killed, or gone): on Linux the
    kernel sends it SIGKILL when the parent exits; elsewhere, a write to the parent's closed
    result pipe ends it (SIGPIPE) instead of printing a BrokenPipeError traceback."""
    import signal

    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))          # PR_SET_PDEATHSIG
            if os.getppid() == 1:                       # the parent died before prctl
                os._exit(0)
        except (OSError, AttributeError):
            pass


def _init_worker(task: Task, workers: int, shipped: dict[str, str], resume: bool) -> None:
    _end_with_parent()
    state = task.setup(engine="multiprocessing", workers=workers, shipped=shipped)
    _WORKER.update(task=task, resume=resume, state=state)


def _run_chunk(job: tuple[int, list[str]]) -> tuple[int, list, int, Any]:
    index, files = job
    w = _WORKER
    return (index, [run_one(w["task"], f, resume=w["resume"]) for f in files], os.getpid(),
            w["state"])


def run_multiprocessing(task: Task, files: Sequence[Path], summary: JobSummary, *,
                        workers: int, resume: bool = False, progress: bool = True,
                        chunk_size: int | None = None, start_method: str | None = None) -> None:
    """Run ``task`` over ``files`` with a pool of ``workers`` processes; fill ``summary``.

    ``chunk_size`` files per pool task (default
    :func:`~seaice_utils.engines.base.default_chunk_size`); ``start_method`` overrides the
    task's (``fork`` on Linux unless the task says otherwise).
    """
    from tqdm import tqdm

    size = chunk_size or default_chunk_size(len(files), workers)
    jobs = list(enumerate(chunk([str(f) for f in files], size)))
    ctx = multiprocessing.get_context(start_method or task.start_method
                                      or default_start_method())
    t0 = time.perf_counter()
    forking = ctx.get_start_method() == "fork"
    state = task.before_fork() if forking else None
    try:
        pool = ctx.Pool(workers, initializer=_init_worker,
                        initargs=(task, workers, _shipped(task), resume))
    finally:
        if forking:
            task.after_fork(state)
    t1 = time.perf_counter()
    results: dict[int, list] = {}
    try:
        with tqdm(total=len(files), desc=f"{task.desc} x{workers}", unit=task.unit,
                  disable=not progress) as bar:
            for index, res, pid, state in pool.imap_unordered(_run_chunk, jobs):
                results[index] = res
                summary.setups[pid] = state
                bar.update(len(res))
        pool.close()
        pool.join()
    finally:
        pool.terminate()
    t2 = time.perf_counter()
    for index in sorted(results):              # report in input order, whatever finished first
        for r in results[index]:
            summary.add(r)
    summary.seconds.update(startup=t1 - t0, run=t2 - t1)
