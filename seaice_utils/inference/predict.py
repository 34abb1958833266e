"""Full-scene inference of scene files: options, one file's outputs, many files on an engine.

A trained U-Net turns scenes of any size into sea-ice class maps (PAPER.md, "Inference"): each
file is read, turned into the model's input (:mod:`seaice_utils.inference.model`), predicted in
blended windows (:mod:`seaice_utils.inference.stitch`) and written with its class areas
(:mod:`seaice_utils.inference.outputs`) by :func:`predict_file`.

Many scenes (:func:`predict_inputs`) run as a :class:`PredictTask` on the engine layer
(:mod:`seaice_utils.engines`), as auto-labelling does: ``sequential``, ``multiprocessing`` (a
process pool; each process loads the model once) and ``spark`` (the model file is shipped once
per executor with ``SparkContext.addFile``; each Python worker loads the model once and keeps it
for all its partitions). On a cluster the output folder must be on storage every executor can
write to.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from seaice_utils.core.classes import to_palette
from seaice_utils.core.scenes import Stretch, list_inputs, read_scene, write_json, write_png
from seaice_utils.engines.base import ENGINES, Task, check_engine, check_unique_names
from seaice_utils.engines.jobs import run_job
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.inference.model import ModelSettings, load_model, model_input, norm_input
from seaice_utils.inference.outputs import (class_summary, output_paths, pixel_area_m2,
                                            write_geotiff, write_summary_csv)
from seaice_utils.inference.runtime import RUNTIMES, make_predict_fn, register_cache
from seaice_utils.inference.stitch import BLENDS, BORDERS, predict_scene
from seaice_utils.labelling.cloudfilter import FilterParams

__all__ = ["ENGINES", "PredictOptions", "predict_options", "PredictSummary", "PredictTask",
           "predict_file", "predict_inputs"]


@dataclass(frozen=True)
class PredictOptions:
    """How scenes are read, fed to the model, predicted and written.

    Attributes
    ----------
    input : str, optional
        Override of the model's input kind (default: from its settings JSON).
    apply_filter : bool, optional
        Run the thin-cloud/shadow filter first; default: when the model was trained on filtered
        images.
    filter_params : FilterParams
    overlap, batch_size : int
    blend, border : str
    bands, nodata, stretch
        How to read the files (see :func:`seaice_utils.core.scenes.read_scene`).
    pixel_size_m : float, optional
        Pixel side for the areas; default: from the transform, else ``default_pixel_size_m``.
    default_pixel_size_m : float
    geotiff : bool
        Write ``<name>_classes.tif`` when the input is georeferenced.
    """

    input: str | None = None
    apply_filter: bool | None = None
    filter_params: FilterParams = FilterParams()
    overlap: int = 32
    batch_size: int = 2
    blend: str = "linear"
    border: str = "reflect"
    bands: tuple[int, int, int] | None = None
    nodata: float | None = None
    stretch: Stretch = Stretch()
    pixel_size_m: float | None = None
    default_pixel_size_m: float = 10.0
    geotiff: bool = True
    runtime: str = "auto"

    def __post_init__(self) -> None:
        if self.input is not None:
            object.__setattr__(self, "input", norm_input(self.input, "PredictOptions"))
        if self.blend not in BLENDS:
            raise InputError(f"blend must be one of {', '.join(BLENDS)} (got {self.blend!r})")
        if self.border not in BORDERS:
            raise InputError(f"border must be one of {', '.join(BORDERS)} (got {self.border!r})")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch_size must be a positive integer (got {self.batch_size!r})")
        if not isinstance(self.overlap, int) or self.overlap < 0:
            raise InputError(f"overlap must be an integer >= 0 (got {self.overlap!r})")
        if self.runtime not in RUNTIMES:
            raise InputError(f"runtime must be one of {', '.join(RUNTIMES)} "
                             f"(got {self.runtime!r})")

    def describe(self) -> dict:
        d = asdict(self)
        d["stretch"] = self.stretch.describe()
        return d


def predict_options(params: dict, **overrides: Any) -> PredictOptions:
    """:class:`PredictOptions` from a loaded profile (``inference`` and ``filter`` sections)."""
    from seaice_utils.labelling.settings import filter_params

    inf = params.get("inference", {})
    kw: dict[str, Any] = {"filter_params": filter_params(params)}
    for k in ("overlap", "batch_size", "blend", "border", "geotiff", "runtime"):
        if k in inf:
            kw[k] = inf[k]
    if "pixel_size_m" in inf:
        kw["default_pixel_size_m"] = float(inf["pixel_size_m"])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return PredictOptions(**kw)


@dataclass
class PredictSummary:
    """Outcome of predicting many files."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    engine: str = "sequential"
    seconds: float = 0.0
    summary_csv: Path | None = None
    model_loads: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        s = (f"{len(self.done)} predicted, {len(self.skipped)} already done, "
             f"{len(self.failures)} failed ({self.engine}, {self.seconds:.1f} s)")
        if self.summary_csv:
            s += f"; summary: {self.summary_csv}"
        for name, err in self.failures:
            s += f"\n  FAILED {name}: {err}"
        return s



def _done_row(out_dir: Path, name: str) -> dict | None:
    paths = output_paths(out_dir, name)
    try:
        meta = json.loads(paths["sidecar"].read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not (paths["classes"].is_file() and paths["map"].is_file()):
        return None
    return meta.get("summary")


def predict_file(path: str | os.PathLike, out_dir: str | os.PathLike, predict,
                 settings: ModelSettings, opts: PredictOptions = PredictOptions(), *,
                 progress: bool = False) -> dict:
    """Predict one scene file and write its outputs; return its summary row.

    Writes ``<name>_classes.png`` (0/1/2/255), ``<name>_map.png`` (palette),
    ``<name>_classes.tif`` (when the input has a CRS and transform) and ``<name>.json`` (last:
    settings, options, timings, the summary row).
    """
    t0 = time.perf_counter()
    path = Path(path)
    scene = read_scene(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch)
    kind = opts.input or settings.input
    x = model_input(scene.rgb, kind=kind, nodata=scene.nodata, filter_params=opts.filter_params,
                    apply_filter=opts.apply_filter)
    t1 = time.perf_counter()
    classes = predict_scene(predict, x, nodata=scene.nodata, tile=settings.tile_size,
                            overlap=opts.overlap, batch_size=opts.batch_size, blend=opts.blend,
                            border=opts.border, progress=progress, desc=scene.name)
    t2 = time.perf_counter()
    area, area_src = pixel_area_m2(scene.meta, scene.shape, pixel_size_m=opts.pixel_size_m,
                                   default_pixel_size_m=opts.default_pixel_size_m)
    row = class_summary(classes, pixel_area=area, name=scene.name, area_source=area_src)
    paths = output_paths(out_dir, scene.name)
    write_png(paths["classes"], classes)
    write_png(paths["map"], to_palette(classes))
    geo = bool(opts.geotiff and scene.meta.get("crs") and scene.meta.get("transform"))
    if geo:
        write_geotiff(paths["geotiff"], classes, crs=scene.meta["crs"],
                      transform=scene.meta["transform"])
    applied = (kind == "filtered") if opts.apply_filter is None else opts.apply_filter
    meta = {k: v for k, v in scene.meta.items() if k not in ("path",)}
    meta.update(input=path.name, shape=list(classes.shape), model_input=kind,
                filter_applied=applied, model_settings=settings.to_dict(),
                options=opts.describe(), geotiff=paths["geotiff"].name if geo else None,
                seconds={"read_and_filter": t1 - t0, "predict": t2 - t1,
                         "total": time.perf_counter() - t0},
                summary=row)
    write_json(paths["sidecar"], meta)
    return row


# process-level state of pool workers and Spark Python workers: the model, loaded once
_WORKER: dict[str, Any] = {}

register_cache(_WORKER)


def _limit_tf_threads(threads: int | None) -> None:
    if not threads:
        return
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except (RuntimeError, ValueError):
        pass  # TensorFlow already running in this process: keep its pools


def _worker_predictor(model_path: str, opts: PredictOptions, threads: int | None):
    """(predict fn, settings) of this process, loading the model on first use only."""
    key = (model_path, opts.input, opts.runtime, opts.batch_size)
    if _WORKER.get("key") != key:
        _limit_tf_threads(threads)
        model, settings = load_model(model_path, input=opts.input)
        predict = make_predict_fn(model, runtime=opts.runtime, batch_size=opts.batch_size,
                                  threads=threads)
        _WORKER.update(key=key, predict=predict, settings=settings,
                       loads=_WORKER.get("loads", 0) + 1)
    return _WORKER["predict"], _WORKER["settings"]


@dataclass
class PredictTask(Task):
    """Predict one scene file into ``out_dir`` (the engine layer's task for prediction).

    The model is loaded once per worker process (``setup``): in this process for the
    ``sequential`` engine, in each pool process (started with ``spawn``: TensorFlow is not
    fork-safe) and in each Spark Python worker, which finds the model file shipped once per
    executor (``ship``). Worker processes split the machine's cores between them for
    TensorFlow's threads. ``setup`` returns how many times its process has loaded the model
    (:attr:`PredictSummary.model_loads`).
    """

    model_path: Path
    out_dir: Path
    opts: PredictOptions = PredictOptions()
    tile_progress: bool = False

    errors = (SeaIceError,)
    desc, unit, verb = "predicting scenes", "scene", "predicted"
    app_name = "seaice-predict"
    start_method = "spawn"

    def ship(self) -> list[str | os.PathLike]:
        return [self.model_path]

    def setup(self, *, engine: str, workers: int, shipped: Mapping[str, str]) -> Any:
        if engine == "sequential":
            model, settings = load_model(self.model_path, input=self.opts.input)
            self._predictor = (make_predict_fn(model, runtime=self.opts.runtime,
                                               batch_size=self.opts.batch_size), settings)
            return 1
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        self._predictor = _worker_predictor(shipped[self.model_path.name], self.opts, threads)
        return _WORKER["loads"]

    def teardown(self) -> None:
        self._predictor = None

    def is_done(self, path: str | os.PathLike) -> bool:
        return _done_row(self.out_dir, Path(path).stem) is not None

    def run(self, path: str | os.PathLike) -> dict:
        predict, settings = self._predictor
        return predict_file(path, self.out_dir, predict, settings, self.opts,
                            progress=self.tile_progress)


def predict_inputs(model_path: str | os.PathLike, inputs, out_dir: str | os.PathLike,
                   opts: PredictOptions = PredictOptions(), *, engine: str = "sequential",
                   workers: int | None = None, resume: bool = False, progress: bool = True,
                   spark=None) -> PredictSummary:
    """Predict a file, a folder of images or a list of files; write ``summary.csv``.

    Parameters
    ----------
    model_path : path
        Saved Keras model (``.keras``); its settings JSON is read from beside it.
    inputs : path or sequence of paths
    out_dir : path
    opts : PredictOptions
    engine : {"sequential", "multiprocessing", "spark"}, keyword-only
        Run by the engine layer (:func:`seaice_utils.engines.jobs.run_job`) with a
        :class:`PredictTask`.
    workers : int, optional, keyword-only
        Processes (multiprocessing) or local cores (spark, when no session is given); default:
        all cores.
    resume : bool, keyword-only
        Skip scenes whose outputs exist (their summary rows are kept).
    spark : SparkSession, optional, keyword-only
        Use this session (e.g. a cluster's, from :func:`seaice_utils.engines.spark.spark_session`,
        which ships the package to the executors); default: the session running in this process,
        else a ``local[workers]`` session, stopped at the end.

    Returns
    -------
    PredictSummary
        ``rows`` holds one summary row per scene (also in ``<out_dir>/summary.csv``);
        ``model_loads`` maps each worker process id to the number of times it loaded the model
        (1 each: once per process, not once per scene).
    """
    workers = int(workers or os.cpu_count() or 1)
    check_engine(engine, workers)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    files = list_inputs(inputs)
    if not files:
        raise InputError("no inputs given")
    check_unique_names(files)
    model_path = Path(model_path)
    if not model_path.exists():
        raise InputError(f"model not found: {model_path}")
    summary = PredictSummary(engine=engine)
    rows: dict[str, dict] = {}
    todo = []
    for f in files:
        row = _done_row(out_dir, f.stem) if resume else None
        if row is not None:
            summary.skipped.append(f.stem)
            rows[f.stem] = row
        else:
            todo.append(f)
    if todo:
        task = PredictTask(model_path.resolve(), out_dir.resolve(), opts,
                           tile_progress=engine == "sequential" and progress and len(todo) == 1)
        spark_options = {"spark": spark, "warm": False} if engine == "spark" else {}
        job = run_job(task, todo, engine=engine, workers=min(workers, len(todo)),
                      progress=progress, chunk_size=1, **spark_options)
        summary.done, summary.failures = job.done, job.failures
        rows.update(zip(job.done, job.results))
        summary.model_loads = dict(job.setups)
    order = {f.stem: i for i, f in enumerate(files)}
    summary.rows = sorted(rows.values(), key=lambda r: order.get(r["scene"], len(order)))
    summary.seconds = time.perf_counter() - t0
    if summary.rows:
        summary.summary_csv = write_summary_csv(out_dir / "summary.csv", summary.rows)
    return summary
