"""Full-scene inference of scene files: options, one file's outputs, many files on an engine.

A trained U-Net turns scenes of any size into sea-ice class maps (Iqrah et al. 2024, "Inference"): each
file is read, turned into the model's input (:mod:`seaice_utils.inference.model`), predicted in
blended windows (:mod:`seaice_utils.inference.stitch`) and written with its class areas
(:mod:`seaice_utils.engines.scene_outputs`) by :func:`predict_file`.

Many scenes (:func:`predict_inputs`) run as a :class:`PredictTask` on the engine layer
(:mod:`seaice_utils.engines`), as auto-labelling does: ``sequential``, ``multiprocessing`` (a
process pool; each process loads the model once) and ``spark`` (the model file is shipped once
per executor with ``SparkContext.addFile``; each Python worker loads the model once and keeps it
for all its partitions). On a cluster the output folder must be on storage every executor can
write to.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seaice_utils.core.areas import pixel_area_m2
from seaice_utils.core.blocks import WINDOWED_SUFFIXES, open_bands
from seaice_utils.core.budget import PREDICT_BYTES_PER_PIXEL, check_scene_size
from seaice_utils.core.headers import scene_header
from seaice_utils.core.classes import N_CLASSES, PREDICTED_CODES
from seaice_utils.core.scenes import Stretch, list_inputs, read_scene
from seaice_utils.engines.base import ENGINES, JobSummary, Task, check_engine, resolve_workers
from seaice_utils.engines.jobs import run_job
from seaice_utils.engines.scene_outputs import (class_summary, encode_scene, publish_scene,
                                                scene_output_paths, summarise_job)
from seaice_utils.report import sha256_file
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.inference.model import (ModelSettings, check_model, input_from_layers,
                                          load_model, model_input, norm_input,
                                          read_model_settings)
from seaice_utils.inference.runtime import RUNTIMES, make_predict_fn, register_cache
from seaice_utils.inference.stitch import BLENDS, BORDERS, predict_scene
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.labelling.settings import filter_params, memory_limit_bytes
from seaice_utils.labelling.windowed import BAND_SHARE, band_rows, filter_bands, halo_rows

#: Bytes every pixel of a scene predicted from bands keeps: the model input, the no-data mask,
#: their bordered copies for the windows, the class map, and slack.
PREDICT_KEPT_BYTES_PER_PIXEL = 8

_LOG = logging.getLogger("seaice")

__all__ = ["ENGINES", "PredictOptions", "predict_options", "PredictTask",
           "predict_file", "predict_inputs", "check_classes"]

#: The codes a predicted class map may hold: the classes and no-data.
KNOWN_CODES = np.array(sorted(PREDICTED_CODES), np.uint8)


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
    #: Memory one worker may use for a scene (bytes; None: no limit), checked before decoding.
    max_bytes: int | None = None
    #: Full-size PNGs: auto, always, never (:func:`~seaice_utils.engines.scene_outputs.full_pngs`).
    png_renders: str = "auto"

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
        d.pop("max_bytes")       # which scenes are refused, not what an accepted one gives
        d["stretch"] = self.stretch.describe()
        return d


def predict_options(params: dict, *, model: str | os.PathLike | None = None,
                    filter_from_model: bool = False, filter_on: str | None = None,
                    **overrides: Any) -> PredictOptions:
    """:class:`PredictOptions` from a loaded profile (``inference``, ``filter`` and the worker
    memory limit), for ``seaice predict``, ``seaice season --model`` and the notebooks alike.

    With ``filter_from_model`` (the user named no profile and set no filter constant), the filter
    constants the ``model`` was trained with, as its ``training.json`` records them, replace the
    profile's: the same model and scene then give the same map through every command.
    ``filter_on`` (``scene`` or ``tile``) replaces ``filter.apply_to`` last. ``overrides`` that
    are not None replace the built options' fields.
    """
    inf = params.get("inference", {})
    flt = dict(params["filter"])
    if model is not None and filter_from_model:
        try:
            recorded = read_model_settings(model).filter_params()
        except Exception:      # a missing or unreadable model is reported when it is loaded
            recorded = None
        if recorded is not None:
            constants = {k: v for k, v in recorded.to_dict().items() if k in flt}
            flt.update(constants)
            _LOG.info("filter constants: from the model's training settings (%s)",
                      ", ".join(f"{k}={v}" for k, v in constants.items()))
    if filter_on:
        flt["apply_to"] = filter_on
    kw: dict[str, Any] = {"filter_params": filter_params({**params, "filter": flt}),
                          "max_bytes": memory_limit_bytes(params),
                          "png_renders": params["global"]["png_renders"]}
    for k in ("overlap", "batch_size", "blend", "border", "geotiff", "runtime"):
        if k in inf:
            kw[k] = inf[k]
    if "pixel_size_m" in inf:
        kw["default_pixel_size_m"] = float(inf["pixel_size_m"])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return PredictOptions(**kw)


def check_classes(classes: np.ndarray, shape: tuple[int, int], name: str) -> None:
    """Raise :class:`SeaIceError` unless ``classes`` is a class map of the scene's shape
    holding only the known codes (checked before anything of the scene is written)."""
    if classes.shape != tuple(shape) or classes.dtype != np.uint8:
        raise SeaIceError(f"{name}: the prediction has shape {classes.shape} {classes.dtype}, "
                          f"expected {tuple(shape)} uint8; nothing written")
    bad = np.setdiff1d(np.unique(classes), KNOWN_CODES)
    if bad.size:
        raise SeaIceError(f"{name}: the model predicted unknown class codes {bad.tolist()}; "
                          "nothing written")


def predict_file(path: str | os.PathLike, out_dir: str | os.PathLike, predict,
                 settings: ModelSettings, opts: PredictOptions = PredictOptions(), *,
                 progress: bool = False, fingerprint: dict | None = None) -> dict:
    """Predict one scene file and publish its outputs as a set; return its summary row.

    Writes the scene output set (:mod:`seaice_utils.engines.scene_outputs`):
    ``<name>_classes.png`` (0/1/2/255), ``<name>_labels.png`` (palette),
    ``<name>_classes.tif`` (when the input has a CRS and transform) and ``<name>.json`` (last:
    settings, options, timings, the summary row, the files written with their checksums and the
    ``fingerprint`` for ``resume``). The class map is checked first (:func:`check_classes`):
    a bad prediction writes nothing and leaves earlier outputs as they were.
    """
    t0 = time.perf_counter()
    path = Path(path)
    kind = opts.input or settings.input
    applied = (kind == "filtered") if opts.apply_filter is None else opts.apply_filter
    name, scene_meta, x, nodata = _model_input_of(path, kind, applied, opts)
    shape = x.shape[:2]
    t1 = time.perf_counter()
    classes = predict_scene(predict, x, nodata=nodata, tile=settings.tile_size,
                            overlap=opts.overlap, batch_size=opts.batch_size, blend=opts.blend,
                            border=opts.border, progress=progress, desc=name)
    del x, nodata
    t2 = time.perf_counter()
    area, area_src = pixel_area_m2(scene_meta, shape, pixel_size_m=opts.pixel_size_m,
                                   default_pixel_size_m=opts.default_pixel_size_m)
    check_classes(classes, shape, path.name)
    row = class_summary(classes, pixel_area=area, name=name, area_source=area_src)
    paths = scene_output_paths(out_dir, name)
    geo = bool(opts.geotiff and scene_meta.get("crs") and scene_meta.get("transform"))
    meta = {k: v for k, v in scene_meta.items() if k not in ("path",)}
    meta.update(input=path.name, shape=list(classes.shape), model_input=kind,
                filter_applied=applied, model_settings=settings.to_dict(),
                options=opts.describe(), geotiff=paths["geotiff"].name if geo else None,
                seconds={"read_and_filter": t1 - t0, "predict": t2 - t1,
                         "total": time.perf_counter() - t0},
                summary=row, fingerprint=fingerprint)
    outputs = encode_scene(classes, meta, crs=scene_meta.get("crs"),
                           transform=scene_meta.get("transform"), geotiff=geo,
                           png_renders=opts.png_renders)
    publish_scene(out_dir, name, outputs)
    return row


def _model_input_of(path: Path, kind: str, applied: bool, opts: PredictOptions):
    """(name, scene metadata, model input, no-data mask) of a scene file. A TIFF or JPEG 2000
    file is read and filtered in bands of rows (:func:`~seaice_utils.labelling.windowed.
    filter_bands`, byte-identical to the whole scene's filter), anything else whole
    (:func:`~seaice_utils.inference.model.model_input`)."""
    fparams = opts.filter_params if applied else None
    if applied and fparams is None:
        raise InputError("apply_filter is set but filter_params is None")
    if path.suffix.lower() in WINDOWED_SUFFIXES and path.is_file():
        header = scene_header(path)
        check_scene_size(header, path.name, max_bytes=opts.max_bytes, whole=False,
                         bytes_per_pixel=PREDICT_KEPT_BYTES_PER_PIXEL / (1 - BAND_SHARE))
        sample = 0 if header is None else header.bands * np.dtype(header.dtype).itemsize
        src = open_bands(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch,
                         rows=256 if header is None else band_rows(
                             (header.height, header.width), sample, opts.max_bytes))
        if src is not None:
            with src:
                rows = band_rows(src.shape, sample, opts.max_bytes, halo=halo_rows(fparams))
                levels, nodata, rgb = filter_bands(src, fparams, rows=rows,
                                                   keep_rgb=fparams is None)
                x = input_from_layers(kind, rgb=rgb, levels=levels)
                del rgb, levels
                if nodata.any():
                    x = x.copy()
                    x[nodata] = 0
                return src.name, dict(src.meta), x, nodata
    scene = read_scene(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch,
                       max_bytes=opts.max_bytes, bytes_per_pixel=PREDICT_BYTES_PER_PIXEL)
    x = model_input(scene.rgb, kind=kind, nodata=scene.nodata, filter_params=opts.filter_params,
                    apply_filter=applied)
    return scene.name, scene.meta, x, scene.nodata


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
    #: SHA-256 of the model file and its settings (part of every output's fingerprint).
    model_sha256: str = ""
    model_settings: dict = field(default_factory=dict)

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

    def output_paths(self, name: str) -> dict[str, Path]:
        return scene_output_paths(self.out_dir, name)

    def job_outputs(self) -> list[Path]:
        return [self.out_dir / "summary.csv"]

    def settings(self) -> dict:
        return {"job": "predict", "model_sha256": self.model_sha256,
                "model_settings": self.model_settings, "options": self.opts.describe()}

    def run(self, path: str | os.PathLike) -> dict:
        predict, settings = self._predictor
        return predict_file(path, self.out_dir, predict, settings, self.opts,
                            progress=self.tile_progress, fingerprint=self.fingerprint(path))


def predict_inputs(model_path: str | os.PathLike, inputs, out_dir: str | os.PathLike,
                   opts: PredictOptions = PredictOptions(), *, engine: str = "sequential",
                   workers: int | None = None, resume: bool = False, progress: bool = True,
                   overwrite: bool = False, spark=None) -> JobSummary:
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
        Processes (multiprocessing) or local cores (spark, when no session is given); 0 or
        None: all cores (:func:`~seaice_utils.engines.base.resolve_workers`).
    resume : bool, keyword-only
        Skip scenes whose outputs are complete and were made from the same input with the same
        model and options (their summary rows are kept); redo the others.
    overwrite : bool, keyword-only
        Let outputs replace files seaice did not write (else refused before any work).
    spark : SparkSession, optional, keyword-only
        Use this session (e.g. a cluster's, from :func:`seaice_utils.engines.spark.spark_session`,
        which ships the package to the executors); default: the session running in this process,
        else a ``local[workers]`` session, stopped at the end.

    Returns
    -------
    JobSummary
        ``rows`` holds one summary row per scene (also in ``<out_dir>/summary.csv``);
        ``model_loads`` maps each worker process id to the number of times it loaded the model
        (1 each: once per process, not once per scene). A scene that cannot be read, decoded or
        written is listed in ``failures`` with its reason and the others go on.
    """
    workers = resolve_workers(workers)
    check_engine(engine, workers)
    out_dir = Path(out_dir)
    files = list_inputs(inputs)
    if not files:
        raise InputError("no inputs given")
    model_path = Path(model_path)
    settings = check_model(model_path, input=opts.input, n_classes=N_CLASSES)
    task = PredictTask(model_path.resolve(), out_dir.resolve(), opts,
                       tile_progress=engine == "sequential" and progress and len(files) == 1,
                       model_sha256=sha256_file(model_path), model_settings=settings.to_dict())
    spark_options = {"spark": spark, "warm": False} if engine == "spark" else {}
    job = run_job(task, files, engine=engine, workers=min(workers, len(files)), resume=resume,
                  progress=progress, chunk_size=1, overwrite=overwrite, **spark_options)
    summarise_job(job, out_dir, files)
    empty = [r["scene"] for r in job.rows if r.get("valid_pixels") == 0]
    if empty:
        warnings.warn(f"{len(empty)} scene(s) where every pixel is no-data, nothing predicted: "
                      f"{', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}", UserWarning,
                      stacklevel=2)
    return job
