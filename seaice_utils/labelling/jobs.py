"""Auto-labelling jobs: many scenes or tiles, on any engine, with the same bytes out.

:func:`run_label_job` labels a folder of scenes or tiles (or a list of files) and writes, for
every input ``<name>.<ext>``, the three outputs of :mod:`seaice_utils.labelling.pipeline`
(``<name>_classes.png``, ``<name>_labels.png``, ``<name>.json``; atomic, sidecar last). It runs
a :class:`LabelTask` on the engine layer (:func:`seaice_utils.engines.jobs.run_job`): every
engine runs the same per-image code (:func:`~seaice_utils.labelling.pipeline.label_file`, or
its pieces on bytes for Spark's ``binaryFile`` source), so the engines write byte-identical files
for the same input and parameters.

===================  ========================================================================
engine               how the work is spread
===================  ========================================================================
``sequential``       one loop in this process (the paper's baseline)
``multiprocessing``  a pool of ``workers`` processes (forked on Linux); the sorted file list
                     is cut into contiguous, disjoint chunks, each chunk is labelled by
                     exactly one worker, exactly once (the published script let slices
                     overlap and labelled some tiles twice)
``spark``            a Spark job: ``binaryFile`` source, ``mapInPandas`` over Arrow batches,
                     outputs written by the executors or collected to the driver;
                     ``local[N]`` or a ``spark://`` cluster
===================  ========================================================================

Bad inputs (missing, corrupt, truncated, wrong size, too large for the worker memory limit,
a full disk) are reported by name in
:attr:`JobSummary.failures` and the rest of the job completes. ``resume=True`` skips inputs whose
outputs are complete and were made from the same input with the same settings; it redoes the
others and says how many it redid because settings changed
(:mod:`seaice_utils.engines.outputs`). Each worker runs OpenCV
on one thread (``cv_threads``), so ``workers`` is the number of cores the job uses.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import seaice_utils.labelling.pipeline as pipeline
from seaice_utils.core.blocks import WINDOWED_SUFFIXES
from seaice_utils.core.scenes import list_inputs
from seaice_utils.engines.base import JobSummary, Task, check_engine, resolve_workers
from seaice_utils.engines.jobs import run_job
from seaice_utils.engines.scene_outputs import summarise_job
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.labelling.pipeline import INPUT_ERRORS, OUTPUT_KEYS, LabelOptions

__all__ = ["LabelTask", "run_label_job"]


def _set_cv_threads(n: int | None) -> int | None:
    import cv2

    if n is None:
        return None
    before = cv2.getNumThreads()
    cv2.setNumThreads(int(n))
    return before


@dataclass
class LabelTask(Task):
    """Auto-label one image file into ``out_dir`` (the engine layer's task for labelling).

    Attributes
    ----------
    out_dir : Path
        Output folder (absolute: Spark executors may run in another working directory).
    opts : LabelOptions
    cv_threads : int or None
        OpenCV threads in each worker (None leaves OpenCV's setting).
    summary_csv : bool
        The job writes ``summary.csv`` (one row per scene) beside the scenes' outputs.
    """

    out_dir: Path
    opts: LabelOptions = LabelOptions()
    cv_threads: int | None = 1
    summary_csv: bool = False

    errors = INPUT_ERRORS
    desc, unit, verb = "auto-labelling", "image", "labelled"
    app_name = "seaice-autolabel"
    bytes_mode = True
    output_keys = OUTPUT_KEYS

    def setup(self, *, engine: str, workers: int, shipped: Mapping[str, str]) -> Any:
        self._cv_before = _set_cv_threads(self.cv_threads)
        return None

    def teardown(self) -> None:
        _set_cv_threads(getattr(self, "_cv_before", None))

    def before_fork(self) -> int | None:
        # OpenCV's thread pool, once used in the parent with several threads, deadlocks a forked
        # child that reconfigures it: shrink it to the workers' setting before forking.
        return _set_cv_threads(self.cv_threads)

    def after_fork(self, state: int | None) -> None:
        _set_cv_threads(state)

    def output_paths(self, name: str) -> dict[str, Path]:
        return pipeline.output_paths(self.out_dir, name)

    def settings(self) -> dict:
        # expect_size and max_bytes only decide which inputs are refused, not what an accepted
        # one gives
        opts = {k: v for k, v in dataclasses.asdict(self.opts).items()
                if k not in ("expect_size", "max_bytes")}
        return {"job": "auto-label", "options": opts}

    def run(self, path: str | os.PathLike) -> tuple[dict, bool]:
        """Label one file; the payload is its summary row and whether it had no data pixel."""
        meta = pipeline.label_file(path, self.out_dir, self.opts,
                                   fingerprint=self.fingerprint(path))
        return meta["summary"], pipeline.NO_DATA_WARNING in (meta.get("warnings") or [])

    def job_outputs(self) -> list[Path]:
        return [self.out_dir / "summary.csv"] if self.summary_csv else []

    def run_bytes(self, content: bytes, filename: str) -> tuple[str, dict[str, bytes]]:
        fp = self.fingerprint(content=content, name=filename)
        if Path(filename).suffix.lower() in WINDOWED_SUFFIXES:   # read in bands, from a file
            with tempfile.TemporaryDirectory(prefix="seaice-") as tmp:
                path = Path(tmp) / Path(filename).name
                path.write_bytes(content)
                try:
                    return pipeline.label_outputs(path, self.opts, input_name=filename,
                                                  fingerprint=fp)
                except InputError as exc:         # name the input, not the temporary copy
                    raise InputError(str(exc).replace(str(path), filename)) from None
        scene = pipeline.scene_from_bytes(content, filename, self.opts)
        classes, _ = pipeline.label_scene(scene, self.opts)
        return scene.name, pipeline.encode_outputs(scene, classes, self.opts,
                                                   input_name=filename, fingerprint=fp)

    def publish(self, name: str, outputs: Mapping[str, bytes]) -> None:
        pipeline.write_outputs(self.out_dir, name, dict(outputs))

    def scratch(self, folder: str | os.PathLike) -> "LabelTask":
        return dataclasses.replace(self, out_dir=Path(folder))


def run_label_job(inputs: str | os.PathLike | Sequence[str | os.PathLike],
                  out_dir: str | os.PathLike, opts: LabelOptions = LabelOptions(), *,
                  engine: str = "sequential", workers: int = 1, resume: bool = False,
                  progress: bool = True, cv_threads: int | None = 1,
                  chunk_size: int | None = None, start_method: str | None = None,
                  overwrite: bool = False, summary_csv: bool = False,
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
        master is given); 0: all cores. Ignored by ``sequential``.
    resume : bool
        Skip inputs whose outputs are complete and made with the same settings from the same
        input; redo the others (counted in ``JobSummary.redone``).
    progress : bool
        tqdm bars for the local engines, Spark's console progress bar for Spark.
    cv_threads : int or None
        OpenCV threads per worker (1: one core per worker; None leaves OpenCV's setting).
    chunk_size : int, optional
        Files per multiprocessing task (default
        :func:`~seaice_utils.engines.base.default_chunk_size`).
    start_method : str, optional
        Multiprocessing start method (default ``fork`` on Linux, else ``spawn``).
    overwrite : bool
        Let outputs replace files seaice did not write (else refused before any work).
    summary_csv : bool
        Also write ``summary.csv``: pixels, km² and fraction of each class per scene, as
        ``seaice predict`` does (``seaice label`` and ``seaice season`` do); the rows are in
        ``JobSummary.rows`` either way.
    **spark_options
        Passed to :func:`seaice_utils.engines.spark.run_spark_job` (``master``, ``output``,
        ``batch_size``, ``cache``, ``spark``, ``conf``, ...).

    Returns
    -------
    JobSummary
        ``done`` / ``skipped`` names and ``failures`` in input order, plus timings.

    Raises
    ------
    InputError
        Input folder missing or without images, two inputs with the same name, an output
        folder that cannot be written or whose outputs would overwrite an input.
    ParamsError
        Unknown engine, or ``workers`` < 0.
    """
    workers = resolve_workers(workers)
    check_engine(engine, workers)
    if spark_options and engine != "spark":
        raise ParamsError(f"options {sorted(spark_options)} only apply to the spark engine")
    files = list_inputs(inputs)
    task = LabelTask(Path(out_dir).resolve(), opts, cv_threads, summary_csv)
    summary = run_job(task, files, engine=engine, workers=workers, resume=resume,
                      progress=progress, chunk_size=chunk_size, start_method=start_method,
                      overwrite=overwrite, **spark_options)
    _warn_no_data(task, summary)
    summarise_job(summary, task.out_dir, files, payload_row=lambda p: p[0], write=summary_csv)
    return summary


def _warn_no_data(task: LabelTask, summary: JobSummary) -> None:
    """One warning, from this process, for the inputs of this job without a data pixel (from
    the task's payload; Spark's bytes mode returns none, so its sidecars are read instead)."""
    empty = []
    for name, payload in zip(summary.done, summary.results):
        if payload is None:
            try:
                meta = json.loads(task.output_paths(name)["sidecar"].read_text())
            except (OSError, ValueError):
                continue
            payload = (None, pipeline.NO_DATA_WARNING in (meta.get("warnings") or []))
        if payload[1]:
            empty.append(name)
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        warnings.warn(f"{len(empty)} input(s) where every pixel is no-data, nothing labelled: "
                      f"{shown}", UserWarning, stacklevel=3)
