"""Auto-labelling engines: ``sequential``, ``multiprocessing`` and ``spark`` behind one call.

:func:`run_label_job` labels a folder of scenes or tiles (or a list of files) and writes, for
every input ``<name>.<ext>``, the three outputs of :mod:`seaice_utils.pipeline`
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
``spark``            a Spark job (:mod:`seaice_utils.spark_engine`): ``binaryFile`` source,
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

from .errors import InputError, ParamsError
from .pipeline import LabelOptions, LabelSummary, label_path, list_inputs

__all__ = ["ENGINES", "JobSummary", "run_label_job", "chunk", "partition", "check_unique_names",
           "default_chunk_size"]

ENGINES = ("sequential", "multiprocessing", "spark")

T = TypeVar("T")


@dataclass
class JobSummary(LabelSummary):
    """Outcome of a labelling job: :class:`~seaice_utils.pipeline.LabelSummary` plus how it ran.

    Attributes
    ----------
    engine : str
    workers : int
        Processes (multiprocessing), 1 (sequential) or Spark task slots.
    n_inputs : int
        Files the job was given.
    seconds : dict of str to float
        Wall-clock phases. Local engines: ``startup`` (pool start), ``run``, ``total``.
        Spark: ``startup`` (session, when the job made it), ``load``, ``map``, ``reduce``,
        ``total`` (load + map + reduce).
    """

    engine: str = "sequential"
    workers: int = 1
    n_inputs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        head = (f"{self.engine} x{self.workers}: {self.n_inputs} inputs in "
                f"{self.seconds.get('total', float('nan')):.2f} s; ")
        return head + super().describe()


def chunk(items: Sequence[T], size: int) -> list[list[T]]:
    """Cut ``items`` into contiguous chunks of ``size`` (the last may be shorter).

    Every item is in exactly one chunk, in order: ``sum(chunks, []) == list(items)``.
    """
    if not isinstance(size, int) or size < 1:
        raise InputError(f"chunk size must be an integer >= 1 (got {size!r})")
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def partition(items: Sequence[T], n_parts: int) -> list[list[T]]:
    """Split ``items`` into ``n_parts`` contiguous parts whose sizes differ by at most one.

    Unlike the published script's slices, the parts do not overlap: every item is in exactly
    one part. Parts are empty when there are fewer items than parts.
    """
    if not isinstance(n_parts, int) or n_parts < 1:
        raise InputError(f"number of parts must be an integer >= 1 (got {n_parts!r})")
    items = list(items)
    q, r = divmod(len(items), n_parts)
    out, start = [], 0
    for i in range(n_parts):
        stop = start + q + (1 if i < r else 0)
        out.append(items[start:stop])
        start = stop
    return out


def default_chunk_size(n_items: int, workers: int) -> int:
    """About eight chunks per worker (load balance, progress), at most 64 items per chunk."""
    return max(1, min(64, -(-n_items // (8 * max(1, workers)))))


def check_unique_names(files: Sequence[Path]) -> None:
    """Raise :class:`InputError` when two inputs would write the same outputs (same stem)."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise InputError(f"two inputs would write the same outputs {f.stem!r}: {seen[f.stem]} "
                             f"and {f}")
        seen[f.stem] = f


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
        from .spark_engine import run_spark_job

        res = run_spark_job(files, out_dir, opts, workers=workers, resume=resume,
                            progress=progress, cv_threads=cv_threads, **spark_options)
        summary.done, summary.skipped, summary.failures = res.done, res.skipped, res.failures
        summary.workers, summary.seconds = res.workers, res.seconds
        return summary
    summary.seconds["total"] = time.perf_counter() - t0
    return summary
