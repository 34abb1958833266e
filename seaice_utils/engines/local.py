"""Auto-labelling engines: ``sequential``, ``multiprocessing`` and ``spark`` behind one call.

:func:`run_label_job` labels a folder of scenes or tiles (or a list of files) and writes, for
every input ``<name>.<ext>``, the three outputs of :mod:`seaice_utils.labelling.pipeline`
(``<name>_classes.png``, ``<name>_labels.png``, ``<name>.json``; atomic, sidecar last). Every
engine runs the same per-image code (:func:`seaice_utils.pipeline.label_path`, or its pieces on
bytes for Spark), so the engines write byte-identical files for the same input and parameters.

===================  ========================================================================
engine               how the work is spread
===================  ========================================================================
``sequential``       one loop in this process (the paper's baseline)
``multiprocessing``  a pool of ``workers`` processes; the sorted file list is cut into
                     contiguous, disjoint chunks (:func:`chunk`), each chunk is labelled by
                     exactly one worker, exactly once (the published script let slices
                     overlap and labelled some tiles twice)
``spark``            a Spark job (:mod:`seaice_utils.engines.spark`): ``binaryFile`` source,
                     ``mapInPandas`` over Arrow batches, outputs written by the executors or
                     collected to the driver; ``local[N]`` or a ``spark://`` cluster
===================  ========================================================================

Bad inputs (missing, corrupt, truncated, wrong size) are reported by name in
:attr:`JobSummary.failures` and the rest of the job completes. ``resume=True`` skips inputs whose
outputs are complete (:func:`seaice_utils.pipeline.is_done`). Each worker runs OpenCV on one
thread (``cv_threads``), so ``workers`` is the number of cores the job uses.

Examples
--------
>>> chunk(list("abcdefg"), 3)
[['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
>>> partition(list("abcdefg"), 3)
[['a', 'b', 'c'], ['d', 'e'], ['f', 'g']]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.pipeline import LabelOptions, LabelSummary, label_path, list_inputs
from seaice_utils.engines.base import ENGINES, JobSummary, check_unique_names, chunk, default_chunk_size

__all__ = ["run_label_job"]


def _add(summary: LabelSummary, result: tuple[str, str, str | None]) -> None:
    status, name, err = result
    if status == "failed":
        summary.failures.append((name, err or "failed"))
    elif status == "skipped":
        summary.skipped.append(name)
    else:
        summary.done.append(name)


def _set_cv_threads(n: int | None) -> int | None:
    import cv2

    if n is None:
        return None
    before = cv2.getNumThreads()
    cv2.setNumThreads(int(n))
    return before


# --- multiprocessing workers (module level so that they pickle) -----------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(out_dir: str, opts: LabelOptions, resume: bool, cv_threads: int | None) -> None:
    _set_cv_threads(cv_threads)
    _WORKER.update(out_dir=out_dir, opts=opts, resume=resume)


def _label_chunk(job: tuple[int, list[str]]) -> tuple[int, list[tuple[str, str, str | None]]]:
    index, files = job
    w = _WORKER
    return index, [label_path(f, w["out_dir"], w["opts"], resume=w["resume"]) for f in files]


def _run_sequential(files: list[Path], out_dir: Path, opts: LabelOptions, *, resume: bool,
                    progress: bool, cv_threads: int | None, summary: JobSummary) -> None:
    from tqdm.auto import tqdm

    before = _set_cv_threads(cv_threads)
    try:
        t0 = time.perf_counter()
        for f in tqdm(files, desc="auto-labelling", unit="image", disable=not progress):
            _add(summary, label_path(f, out_dir, opts, resume=resume))
        summary.seconds.update(startup=0.0, run=time.perf_counter() - t0)
    finally:
        _set_cv_threads(before)


def _start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _run_multiprocessing(files: list[Path], out_dir: Path, opts: LabelOptions, *, workers: int,
                         resume: bool, progress: bool, cv_threads: int | None,
                         chunk_size: int | None, start_method: str | None,
                         summary: JobSummary) -> None:
    from tqdm.auto import tqdm

    size = chunk_size or default_chunk_size(len(files), workers)
    jobs = list(enumerate(chunk([str(f) for f in files], size)))
    ctx = multiprocessing.get_context(start_method or _start_method())
    t0 = time.perf_counter()
    pool = ctx.Pool(workers, initializer=_init_worker,
                    initargs=(str(out_dir), opts, resume, cv_threads))
    t1 = time.perf_counter()
    results: dict[int, list] = {}
    try:
        with tqdm(total=len(files), desc=f"auto-labelling x{workers}", unit="image",
                  disable=not progress) as bar:
            for index, res in pool.imap_unordered(_label_chunk, jobs):
                results[index] = res
                bar.update(len(res))
        pool.close()
        pool.join()
    finally:
        pool.terminate()
    t2 = time.perf_counter()
    for index in sorted(results):              # report in input order, whatever finished first
        for r in results[index]:
            _add(summary, r)
    summary.seconds.update(startup=t1 - t0, run=t2 - t1)


def run_label_job(inputs: str | os.PathLike | Sequence[str | os.PathLike],
                  out_dir: str | os.PathLike, opts: LabelOptions = LabelOptions(), *,
                  engine: str = "sequential", workers: int = 1, resume: bool = False,
                  progress: bool = True, cv_threads: int | None = 1,
                  chunk_size: int | None = None, start_method: str | None = None,
                  **spark_options: Any) -> JobSummary:
    """Auto-label every input with the chosen engine; collect failures instead of raising.

    Parameters
    ----------
    inputs : path or sequence of paths
        A folder (the images directly inside it: scenes or tiles), one file, or a list of files.
    out_dir : path
        Output folder (created).
    opts : LabelOptions
        Filter, thresholds, band order, expected size.
    engine : {"sequential", "multiprocessing", "spark"}
    workers : int
        Worker processes (multiprocessing) or Spark task slots (``local[workers]`` unless a
        master is given). Ignored by ``sequential``.
    resume : bool
        Skip inputs whose outputs are complete.
    progress : bool
        tqdm bars for the local engines, Spark's console progress bar for Spark.
    cv_threads : int or None
        OpenCV threads per worker (1: one core per worker; None leaves OpenCV's setting).
    chunk_size : int, optional
        Files per multiprocessing task (default :func:`default_chunk_size`).
    start_method : str, optional
        Multiprocessing start method (default ``fork`` on Linux, else ``spawn``).
    **spark_options
        Passed to :func:`seaice_utils.spark_engine.run_spark_job` (``master``, ``output``,
        ``batch_size``, ``cache``, ``spark``, ``conf``, ...).

    Returns
    -------
    JobSummary
        ``done`` / ``skipped`` names and ``failures`` in input order, plus timings.

    Raises
    ------
    InputError
        Input folder missing or without images, two inputs with the same name.
    ParamsError
        Unknown engine, or ``workers`` < 1.
    """
    if engine not in ENGINES:
        raise ParamsError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ParamsError(f"workers must be an integer >= 1 (got {workers!r})")
    if spark_options and engine != "spark":
        raise ParamsError(f"options {sorted(spark_options)} only apply to the spark engine")
    files = list_inputs(inputs)
    check_unique_names(files)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = JobSummary(engine=engine, workers=1 if engine == "sequential" else workers,
                         n_inputs=len(files))
    t0 = time.perf_counter()
    if engine == "sequential":
        _run_sequential(files, out_dir, opts, resume=resume, progress=progress,
                        cv_threads=cv_threads, summary=summary)
    elif engine == "multiprocessing":
        _run_multiprocessing(files, out_dir, opts, workers=workers, resume=resume,
                             progress=progress, cv_threads=cv_threads, chunk_size=chunk_size,
                             start_method=start_method, summary=summary)
    else:
        from seaice_utils.engines.spark import run_spark_job

        res = run_spark_job(files, out_dir, opts, workers=workers, resume=resume,
                            progress=progress, cv_threads=cv_threads, **spark_options)
        summary.done, summary.skipped, summary.failures = res.done, res.skipped, res.failures
        summary.workers, summary.seconds = res.workers, res.seconds
        return summary
    summary.seconds["total"] = time.perf_counter() - t0
    return summary
