"""One entry point for every engine: :func:`run_job` runs a task over files and summarises."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

from seaice_utils.engines.base import JobSummary, Task, check_engine, check_unique_names
from seaice_utils.engines.local import run_multiprocessing, run_sequential
from seaice_utils.core.ledger import claim
from seaice_utils.engines.outputs import (check_collisions, check_output_folder, own_outputs,
                                          remove_stale_temporaries)
from seaice_utils.engines.spark import run_spark_job
from seaice_utils.errors import ParamsError

__all__ = ["run_job", "prepare_outputs"]


def prepare_outputs(task: Task, inputs: Sequence[str | os.PathLike], *,
                    overwrite: bool = False) -> list[Path]:
    """Check the task's output folder before any work and return the inputs to run.

    The folder is created and must be writable; temporary files a killed run left there are
    removed; files the task wrote earlier (recorded in its sidecars) are not inputs, even when
    the output folder is the input folder; no output may overwrite an input; and no output may
    replace a file seaice did not write (:func:`~seaice_utils.core.ledger.claim`; ``overwrite``
    allows it).
    """
    files = [Path(f) for f in inputs]
    out = getattr(task, "out_dir", None)
    if out is not None:
        check_output_folder(out)
        remove_stale_temporaries(out)
        own = own_outputs(out)
        files = [f for f in files if f.resolve() not in own]
    check_unique_names(files)
    if out is not None:
        check_collisions(files, ((f, task.output_paths(f.stem)) for f in files))
        planned = [p for f in files for p in task.output_paths(f.stem).values()]
        claim(planned + list(task.job_outputs()), overwrite=overwrite)
    return files


def run_job(task: Task, inputs: Sequence[str | os.PathLike], *, engine: str = "sequential",
            workers: int = 1, resume: bool = False, progress: bool = True,
            chunk_size: int | None = None, start_method: str | None = None,
            overwrite: bool = False, **spark_options: Any) -> JobSummary:
    """Run ``task`` on every input file with the chosen engine; collect failures, don't raise.

    Parameters
    ----------
    task : Task
        What to do with one file (:class:`~seaice_utils.engines.base.Task`).
    inputs : sequence of paths
        The files, in the order the summary reports them.
    engine : {"sequential", "multiprocessing", "spark"}
    workers : int
        Worker processes (multiprocessing) or Spark task slots (``local[workers]`` unless a
        master or session is given). Ignored by ``sequential``.
    resume : bool
        Skip inputs whose outputs are complete (``task.is_done``).
    progress : bool
        tqdm bars for the local engines, Spark's console progress bar for Spark.
    chunk_size : int, optional
        Files per multiprocessing task (default
        :func:`~seaice_utils.engines.base.default_chunk_size`).
    start_method : str, optional
        Multiprocessing start method (default: the task's, else ``fork`` on Linux).
    overwrite : bool
        Let outputs replace files seaice did not write (else refused before any work).
    **spark_options
        Passed to :func:`seaice_utils.engines.spark.run_spark_job` (``master``, ``spark``,
        ``output``, ``batch_size``, ``tasks_per_slot``, ``cache``, ``conf``, ``warm``).

    Returns
    -------
    JobSummary
        ``done`` / ``skipped`` names, their payloads and ``failures``, in input order, plus
        timings.

    Raises
    ------
    ParamsError
        Unknown engine, ``workers`` < 1, Spark options for another engine.
    InputError
        Two inputs with the same name (they would write the same outputs), an output folder
        that is a file or cannot be written, outputs that would overwrite an input or a file
        seaice did not write (:func:`prepare_outputs`).
    """
    check_engine(engine, workers)
    if spark_options and engine != "spark":
        raise ParamsError(f"options {sorted(spark_options)} only apply to the spark engine")
    files = prepare_outputs(task, inputs, overwrite=overwrite)
    if engine == "spark":
        return run_spark_job(task, files, workers=workers, resume=resume, progress=progress,
                             **spark_options)
    summary = JobSummary(engine=engine, workers=1 if engine == "sequential" else workers,
                         n_inputs=len(files), verb=task.verb)
    t0 = time.perf_counter()
    if engine == "sequential":
        run_sequential(task, files, summary, resume=resume, progress=progress)
    else:
        run_multiprocessing(task, files, summary, workers=workers, resume=resume,
                            progress=progress, chunk_size=chunk_size, start_method=start_method)
    summary.seconds["total"] = time.perf_counter() - t0
    return summary
