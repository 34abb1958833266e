"""Full-scene inference: a trained U-Net turns scenes of any size into sea-ice class maps.

Steps (PAPER.md, "Inference": split big scenes into 256 px tiles, filter them, predict,
reassemble), done here so that the result has no seams and big scenes fit in memory:

1. **Model input.** The input must be what the model was trained on (:data:`INPUT_KINDS`):
   ``filtered`` (the filter's grey levels 0 / 155 / 255, one channel: the paper's), ``grey``
   (grey of the original colours, one channel) or ``rgb`` (three channels). It is read from the
   settings JSON that training saves beside the model (:func:`read_model_settings`) or given
   explicitly. The thin-cloud and shadow filter runs on the *whole scene* first (as the profile's
   ``filter`` section says) when the model was trained on filtered images; it can be skipped, in
   which case a one-channel model sees the grey of the original colours (the "original images"
   rows of Table IV).
2. **Windows.** Model-sized windows (``tile``) with ``overlap`` pixels shared between neighbours
   (:func:`tile_windows`); the last window of a row/column is aligned with the scene's edge, so
   no padding is fed to the model except for scenes smaller than one tile. With ``border=
   "reflect"`` the scene is first mirrored by ``overlap // 2`` pixels on every side, so that scene
   edges too are seen with context. Windows holding no valid pixel are not predicted.
3. **Batched prediction** of the windows (``batch_size`` per call to one compiled
   ``tf.function``, no per-call overhead of ``Model.predict``; on CPU small batches of 1-4 are
   fastest, larger ones spill the caches; on a GPU take 16-64).
4. **Blended stitching.** Each window's class probabilities are weighted by a window that ramps
   from ~0 at its edges to 1 at ``overlap`` pixels inside (:func:`blend_window`, linear or
   cosine), summed, and divided by the summed weights. Predictions near a window's edge, where
   the U-Net's zero padding lacks context, thus hand over smoothly to the neighbouring window:
   no grid artefact (``tests/test_infer.py`` checks that class changes are not concentrated on
   window borders, :func:`seam_statistics`). Rows are finished and released band by band, so
   memory grows with the scene's width, not its area.
5. **Outputs.** Class map (0 open water, 1 thin ice, 2 thick ice, 255 no-data), no-data stays
   no-data; a palette PNG (red thick, blue thin, green water); a GeoTIFF with the input's CRS and
   transform when it had them; and a per-scene summary of pixels, area (km^2) and fraction of each
   class (:func:`class_summary`), the number a polar scientist wants. The pixel area comes from the
   transform (metres for projected CRSs, an approximation at the scene's centre latitude for
   geographic ones) or ``pixel_size_m`` (10 m, Sentinel-2's visible bands) without one.

Many scenes (:func:`predict_inputs`) run on one of three engines, as auto-labelling does:
``sequential``, ``multiprocessing`` (a process pool; each process loads the model once) and
``spark`` (the model file is shipped with ``SparkContext.addFile`` and the options broadcast;
each Python worker loads the model once and keeps it for all its partitions). On a cluster the
output folder must be on storage every executor can write to.

TensorFlow is imported only when a Keras model is loaded or wrapped; a plain callable that maps a
float32 batch ``(N, t, t, C)`` in 0..1 to probabilities ``(N, t, t, K)`` works everywhere
(tests use one).

>>> import numpy as np
>>> fake = lambda x: np.stack([x[..., 0] < 0.5, x[..., 0] >= 0.5, 0 * x[..., 0]], -1)
>>> img = np.zeros((300, 200, 1), np.uint8); img[:, 100:] = 255
>>> classes = predict_scene(fake, img, tile=64, overlap=16)
>>> classes.shape, np.unique(classes[:, :100]).tolist(), np.unique(classes[:, 100:]).tolist()
((300, 200), [0], [1])
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import math
import os
import sys
import time
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, NODATA, PALETTE, to_palette
from seaice_utils.labelling.cloudfilter import (FilterParams, levels_to_rgb,
                                                thin_cloud_shadow_filter)
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.core.scenes import Stretch, atomic_write_bytes, read_scene, write_json, write_png

__all__ = ["INPUT_KINDS", "BLENDS", "BORDERS", "ENGINES", "RUNTIMES", "ModelSettings",
           "read_model_settings", "load_model", "make_predict_fn", "resolve_runtime",
           "model_input", "input_from_layers", "tile_windows",
           "blend_window", "predict_probabilities", "predict_scene", "predict_tiles",
           "window_edges", "seam_statistics", "pixel_area_m2", "class_summary", "SUMMARY_COLUMNS",
           "PredictOptions", "predict_options", "PredictSummary", "output_paths", "predict_file",
           "predict_inputs", "write_geotiff", "write_summary_csv"]

#: Model inputs and their channel counts.
INPUT_KINDS = {"filtered": 1, "grey": 1, "rgb": 3}
BLENDS = ("linear", "cosine", "none")
BORDERS = ("reflect", "none")
RUNTIMES = ("auto", "tensorflow", "tflite")
ENGINES = ("sequential", "multiprocessing", "spark")
_INPUT_ALIASES = {"filtered": "filtered", "grey": "grey", "gray": "grey", "rgb": "rgb",
                  "original": "rgb"}

PredictFn = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------------------------------------------
# model settings and loading
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSettings:
    """What a model expects as input.

    Attributes
    ----------
    input : {"filtered", "grey", "rgb"}
        What it was trained on.
    tile_size : int
        Side of its input windows.
    labels : str or None
        Label source it was trained on (``man``, ``auto``; informative).
    source : str
        Where these settings came from (a JSON file, the model's input shape, an override).
    filter : dict or None
        The thin-cloud/shadow filter constants its training inputs were made with
        (:class:`~seaice_utils.cloudfilter.FilterParams` fields), when recorded.
    """

    input: str = "filtered"
    tile_size: int = 256
    labels: str | None = None
    source: str = "default"
    filter: dict | None = None

    def filter_params(self) -> FilterParams | None:
        """The recorded filter constants as :class:`FilterParams` (None when not recorded)."""
        if not self.filter:
            return None
        known = set(FilterParams.__dataclass_fields__)
        try:
            return FilterParams(**{k: v for k, v in self.filter.items() if k in known})
        except (TypeError, InputError) as exc:
            raise InputError(f"bad filter constants in the model settings ({self.source}): "
                             f"{exc}") from exc

    @property
    def channels(self) -> int:
        return INPUT_KINDS[self.input]

    def to_dict(self) -> dict:
        return asdict(self)


def _norm_input(v: Any, where: str) -> str:
    key = str(v).lower()
    if key not in _INPUT_ALIASES:
        raise InputError(f"model input must be one of {', '.join(INPUT_KINDS)} (got {v!r} from "
                         f"{where})")
    return _INPUT_ALIASES[key]


def _settings_from_dict(d: dict, where: str) -> dict:
    """input / tile_size / labels from a training settings dict (several layouts accepted)."""
    out: dict[str, Any] = {}
    for holder in (d, d.get("settings") or {}, d.get("training") or {}):
        if not isinstance(holder, dict):
            continue
        for k in ("input", "input_kind", "input_layer"):
            if k in holder and "input" not in out and isinstance(holder[k], str):
                out["input"] = _norm_input(holder[k], where)
        model = holder.get("model") if isinstance(holder.get("model"), dict) else {}
        ts = model.get("tile_size", holder.get("tile_size"))
        if ts and "tile_size" not in out:
            out["tile_size"] = int(ts)
        if "input" not in out and model.get("input_channels") in (1, 3):
            out["channels"] = int(model["input_channels"])
        if holder.get("labels") and "labels" not in out and isinstance(holder["labels"], str):
            out["labels"] = holder["labels"]
        if isinstance(holder.get("filter"), dict) and "filter" not in out:
            out["filter"] = dict(holder["filter"])
    return out


def _candidate_settings(model_path: Path) -> Iterator[tuple[Path, dict]]:
    """(file, settings dict) of the JSON files that may describe ``model_path``, best first."""
    stem = model_path.name[:-len(model_path.suffix)] if model_path.suffix else model_path.name
    for p in (model_path.with_name(model_path.name + ".json"), model_path.with_name(stem + ".json"),
              model_path.with_name(stem + "_settings.json")):
        if p.is_file():
            yield p, json.loads(p.read_text())
    tj = model_path.parent / "training.json"          # seaice_utils.train.train_models
    if tj.is_file():
        info = json.loads(tj.read_text())
        for labels, entry in (info.get("models") or {}).items():
            if not isinstance(entry, dict) or "skipped" in entry:
                continue
            if Path(str(entry.get("path", ""))).name == model_path.name or stem == f"unet_{labels}":
                yield tj, {**entry, "labels": entry.get("labels", labels),
                           **({"filter": info["filter"]} if isinstance(info.get("filter"), dict)
                              and "filter" not in entry else {})}
    sj = model_path.parent / "settings.json"           # a training run folder
    if sj.is_file():
        s = json.loads(sj.read_text())
        if Path(str(s.get("model_path", ""))).name in ("", model_path.name):
            yield sj, s


def read_model_settings(model_path: str | os.PathLike, *, input: str | None = None,
                        channels: int | None = None,
                        tile_size: int | None = None) -> ModelSettings:
    """The input a saved model expects, from the settings JSON that training saved beside it.

    Looked for, in order: ``<model>.json``, ``<stem>.json``, ``<stem>_settings.json``, the
    ``training.json`` of :func:`seaice_utils.train.train_models` in the model's folder, a run's
    ``settings.json``. Without any, the model's channel count decides (1: ``filtered``, the
    paper's; 3: ``rgb``).

    Parameters
    ----------
    model_path : path
    input : {"filtered", "grey", "rgb"}, optional, keyword-only
        Override (e.g. the ``--input`` flag of ``seaice predict``).
    channels, tile_size : int, optional, keyword-only
        The loaded model's input channels and side, checked against the settings.

    Raises
    ------
    InputError
        When the settings contradict the model (e.g. ``rgb`` for a one-channel model).
    """
    model_path = Path(model_path)
    found: dict[str, Any] = {}
    source = "model input shape (no settings JSON beside the model)"
    for path, d in _candidate_settings(model_path):
        try:
            found = _settings_from_dict(d, str(path))
        except (AttributeError, TypeError, ValueError) as exc:
            raise InputError(f"unreadable model settings {path}: {exc}") from exc
        if found:
            source = str(path)
            break
    if input is not None:
        found["input"] = _norm_input(input, "the input override")
        source = f"override ({found['input']})"
    if "input" not in found:
        ch = channels or found.get("channels") or 1
        found["input"] = "rgb" if ch == 3 else "filtered"
    if channels is not None and INPUT_KINDS[found["input"]] != channels:
        raise InputError(f"model {model_path.name} takes {channels} channel(s) but its input is "
                         f"{found['input']!r} ({INPUT_KINDS[found['input']]} channel(s)) per "
                         f"{source}; pass the right --input")
    ts = tile_size or found.get("tile_size") or 256
    return ModelSettings(input=found["input"], tile_size=int(ts), labels=found.get("labels"),
                         source=source, filter=found.get("filter"))


_MODELS: dict[tuple, tuple[Any, ModelSettings]] = {}


def load_model(model_path: str | os.PathLike, *, input: str | None = None,
               cache: bool = True):
    """Load a saved Keras U-Net and its :class:`ModelSettings`.

    With ``cache=True`` a process keeps the models it loaded (keyed by path and modification
    time): pool processes and Spark Python workers load a model once, whatever the number of
    scenes or partitions they are given.

    Returns
    -------
    model : tf.keras.Model
    settings : ModelSettings
    """
    p = Path(model_path)
    if not p.exists():
        raise InputError(f"model not found: {p}")
    key = (str(p.resolve()), p.stat().st_mtime_ns, input)
    if cache and key in _MODELS:
        return _MODELS[key]
    from seaice_utils.training.unet import load_unet

    try:
        model = load_unet(p)
    except Exception as exc:  # Keras raises many types for a bad file
        raise InputError(f"cannot load model {p}: {exc}") from exc
    shape = model.input_shape
    settings = read_model_settings(p, input=input, channels=int(shape[-1]),
                                   tile_size=int(shape[1]) if shape[1] else None)
    if cache:
        _MODELS[key] = (model, settings)
    return model, settings


_PREDICT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_ATEXIT: list[bool] = []


def _clear_caches() -> None:
    _PREDICT_FNS.clear()
    _MODELS.clear()
    _WORKER.clear()


def _gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _default_threads() -> int:
    import tensorflow as tf

    n = tf.config.threading.get_intra_op_parallelism_threads()
    if n:
        return int(n)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def _stderr_to_log() -> Iterator[Path]:
    """Send file descriptor 2 (C++ logging included) to a temporary file inside the block."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="seaice-tflite-") as tmp:
        log = Path(tmp) / "stderr.log"
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):   # no real stderr (some notebook kernels): leave it
            yield log
            return
        with open(log, "wb") as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield log
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def _tflite_predict(model, batch_size: int, threads: int | None) -> PredictFn:
    """TensorFlow Lite (XNNPACK) interpreter of ``model`` for batches of exactly ``batch_size``
    windows; shorter batches are zero-padded and the padding dropped from the result."""
    import tensorflow as tf

    shape = [int(batch_size), *model.input_shape[1:]]
    if any(d is None for d in shape):
        raise InputError(f"the tflite runtime needs a fixed input size (model input "
                         f"{model.input_shape})")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    with _stderr_to_log() as log:   # the converter prints op summaries on the C++ stderr
        try:
            flat = conv.convert()
        except Exception as exc:
            raise SeaIceError(f"TensorFlow Lite conversion failed: {exc}\n"
                              f"{log.read_text(errors='replace')[-2000:]}") from exc
    interp = tf.lite.Interpreter(model_content=flat, num_threads=int(threads or _default_threads()))
    interp.allocate_tensors()
    i_in = interp.get_input_details()[0]["index"]
    i_out = interp.get_output_details()[0]["index"]
    b = int(batch_size)

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape[1:]):
            raise InputError(f"the model takes windows of shape {tuple(shape[1:])} "
                             f"(got a batch of shape {x.shape})")
        out = []
        for i in range(0, len(x), b):
            chunk = x[i:i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), np.float32)])
            interp.set_tensor(i_in, chunk)
            interp.invoke()
            out.append(interp.get_tensor(i_out)[:n].copy())
        return np.concatenate(out) if out else np.zeros((0, *shape[1:3], 0), np.float32)

    predict.runtime = "tflite"           # type: ignore[attr-defined]
    predict.tflite_bytes = len(flat)     # type: ignore[attr-defined]
    return predict


def resolve_runtime(model, runtime: str = "auto") -> str:
    """The runtime ``make_predict_fn`` will use: ``auto`` is ``tflite`` on a machine without a
    GPU for a float32 model of fixed input size, else ``tensorflow``."""
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(RUNTIMES)} (got {runtime!r})")
    if runtime != "auto":
        return runtime
    policy = getattr(getattr(model, "dtype_policy", None), "compute_dtype", "float32")
    fixed = all(d is not None for d in model.input_shape[1:])
    return "tflite" if (policy == "float32" and fixed and not _gpu_visible()) else "tensorflow"


def make_predict_fn(model, *, runtime: str = "tensorflow", batch_size: int | None = None,
                    threads: int | None = None) -> PredictFn:
    """A function ``x (N, t, t, C) float32 in 0..1 -> probabilities (N, t, t, K) ndarray``.

    Parameters
    ----------
    model : Keras model or callable
        Any other callable is returned as it is.
    runtime : {"tensorflow", "tflite", "auto"}, keyword-only
        ``tensorflow``: one ``tf.function`` traced once for any batch size (no per-call
        overhead of ``Model.predict``). ``tflite``: the model converted (float32, no
        quantisation) to TensorFlow Lite and run by its XNNPACK CPU kernels for batches of
        exactly ``batch_size`` windows: a 2048 px scene with the paper's U-Net took 2.99 s
        against 3.99 s with TensorFlow on a 2-core CPU (``python -m seaice_utils.bench_infer``,
        best batch sizes); probabilities agree with TensorFlow to
        about 1e-6, so a class can flip on an exact tie. The conversion takes a few seconds, once
        per model and batch size in a process. ``auto``: :func:`resolve_runtime`; if the
        conversion fails it falls back to ``tensorflow`` with a warning.
    batch_size : int, keyword-only
        Windows per call of the ``tflite`` interpreter (default 8).
    threads : int, keyword-only
        Threads of the ``tflite`` interpreter (default: TensorFlow's intra-op setting, else the
        cores this process may use).

    The function is kept for the model's lifetime (one per runtime and batch size).
    """
    if not hasattr(model, "input_shape") or not hasattr(model, "layers"):
        if not callable(model):
            raise InputError(f"model must be a Keras model or a callable (got "
                             f"{type(model).__name__})")
        return model
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    chosen = resolve_runtime(model, runtime)
    b = int(batch_size or 8)
    key = asked = (chosen, b if chosen == "tflite" else None,
                   threads if chosen == "tflite" else None)
    cached = _PREDICT_FNS.get(model, {})
    if key in cached:
        return cached[key]
    import tensorflow as tf

    if not _ATEXIT:
        atexit.register(_clear_caches)   # free graphs while TensorFlow is still alive
        _ATEXIT.append(True)

    predict = None
    if chosen == "tflite":
        try:
            predict = _tflite_predict(model, b, threads)
        except Exception as exc:  # the converter raises many types for unsupported graphs
            if runtime == "tflite":
                if isinstance(exc, SeaIceError):
                    raise
                raise SeaIceError(f"cannot run the model with TensorFlow Lite: {exc}") from exc
            import warnings

            warnings.warn(f"TensorFlow Lite conversion failed ({type(exc).__name__}: {exc}); "
                          "predicting with TensorFlow", RuntimeWarning, stacklevel=2)
        if predict is None:
            key = ("tensorflow", None, None)
            if key in cached:
                return cached[key]
    if predict is None:
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

        def predict(x: np.ndarray) -> np.ndarray:
            return fn(tf.convert_to_tensor(x, tf.float32)).numpy()

        predict.runtime = "tensorflow"   # type: ignore[attr-defined]
    _PREDICT_FNS.setdefault(model, {}).update({key: predict, asked: predict})
    return predict


# ------------------------------------------------------------------------------------------
# model input
# ------------------------------------------------------------------------------------------

def input_from_layers(kind: str, *, rgb: np.ndarray | None = None,
                      levels: np.ndarray | None = None) -> np.ndarray:
    """Model input from the original colours or the filtered levels.

    Parameters
    ----------
    kind : {"filtered", "grey", "rgb"}
        What the model takes (its channel count).
    rgb : (..., H, W, 3) uint8 ndarray, optional
        Original colours; used when ``levels`` is None.
    levels : (..., H, W) uint8 ndarray, optional
        Filtered grey levels 0 / 155 / 255; when given, they are the input (stacked to three
        channels for an ``rgb`` model).

    Returns
    -------
    (..., H, W, C) uint8 ndarray
    """
    if kind not in INPUT_KINDS:
        raise InputError(f"model input must be one of {', '.join(INPUT_KINDS)} (got {kind!r})")
    c = INPUT_KINDS[kind]
    if levels is not None:
        return levels[..., None] if c == 1 else levels_to_rgb(levels)
    if rgb is None or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise InputError("input_from_layers needs uint8 RGB (..., 3) colours or filtered levels")
    if c == 3:
        return rgb
    flat = rgb.reshape(-1, 1, 3)
    grey = cv2.cvtColor(np.ascontiguousarray(flat), cv2.COLOR_RGB2GRAY)
    return grey.reshape(rgb.shape[:-1] + (1,))


def model_input(rgb: np.ndarray, *, kind: str = "filtered", nodata: np.ndarray | None = None,
                filter_params: FilterParams | None = FilterParams(),
                apply_filter: bool | None = None) -> np.ndarray:
    """The image a model of input ``kind`` is fed for a scene.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    kind : {"filtered", "grey", "rgb"}, keyword-only
    nodata : (H, W) bool ndarray, optional, keyword-only
        Set to 0 in the result (as in the training tiles).
    filter_params : FilterParams, keyword-only
        The thin-cloud and shadow filter (whole scene or per tile, as ``apply_to`` says).
    apply_filter : bool, optional, keyword-only
        Run the filter and feed its levels; default: exactly when ``kind`` is ``filtered``.
        False feeds the original colours (grey for one-channel models).

    Returns
    -------
    (H, W, C) uint8 ndarray
    """
    if apply_filter is None:
        apply_filter = kind == "filtered"
    levels = None
    if apply_filter:
        if filter_params is None:
            raise InputError("apply_filter is set but filter_params is None")
        levels = thin_cloud_shadow_filter(rgb, filter_params, nodata=nodata)
    x = input_from_layers(kind, rgb=rgb, levels=levels)
    if nodata is not None and nodata.any():
        x = x.copy()
        x[nodata] = 0
    return x


# ------------------------------------------------------------------------------------------
# windows, blending, prediction
# ------------------------------------------------------------------------------------------

def _check_window(tile: int, overlap: int) -> None:
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise InputError(f"tile size must be a positive integer (got {tile!r})")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < tile:
        raise InputError(f"overlap must be an integer in 0..tile-1 = 0..{tile - 1} "
                         f"(got {overlap!r})")


def tile_windows(shape: tuple[int, int], tile: int = 256,
                 overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of the ``tile`` windows covering an image, ``overlap`` px shared.

    The stride is ``tile - overlap``; the last window of each row and column ends at the image's
    edge (it may overlap its neighbour by more). An axis shorter than ``tile`` has one window at
    0 (the caller pads).

    >>> tile_windows((512, 600), 256)
    [(0, 0), (0, 256), (0, 344), (256, 0), (256, 256), (256, 344)]
    >>> [c for r, c in tile_windows((256, 512), 256, 32)]
    [0, 224, 256]
    """
    _check_window(tile, overlap)
    stride = tile - overlap

    def axis(n: int) -> list[int]:
        if n <= tile:
            return [0]
        pos = list(range(0, n - tile + 1, stride))
        if pos[-1] != n - tile:
            pos.append(n - tile)
        return pos

    h, w = shape[:2]
    return [(r, c) for r in axis(h) for c in axis(w)]


def blend_window(tile: int, overlap: int, *, kind: str = "linear") -> np.ndarray:
    """Weights of one window's predictions in the blend, shape (tile, tile) float32.

    1 in the window's interior; within ``overlap`` px of an edge it falls to ``0.5 / overlap``
    (linear) or close to 0 (cosine), never 0, so that pixels seen by one window only keep their
    prediction. ``overlap`` 0 or ``kind="none"``: all ones (plain averaging where windows meet).

    >>> w = blend_window(8, 4)
    >>> [round(float(v), 3) for v in w[0]]
    [0.016, 0.047, 0.078, 0.109, 0.109, 0.078, 0.047, 0.016]
    """
    _check_window(tile, overlap)
    if kind not in BLENDS:
        raise InputError(f"blend must be one of {', '.join(BLENDS)} (got {kind!r})")
    if overlap == 0 or kind == "none":
        return np.ones((tile, tile), np.float32)
    i = np.arange(tile, dtype=np.float64)
    d = np.minimum(i, tile - 1 - i) + 0.5
    ramp = np.minimum(d / overlap, 1.0)
    if kind == "cosine":
        ramp = np.maximum(0.5 - 0.5 * np.cos(np.pi * ramp), 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.dtype != np.uint8:
        raise InputError(f"model input must be a uint8 (H, W) or (H, W, C) image (got "
                         f"{image.dtype} {image.shape})")
    return image


def _predict_batches(predict: PredictFn, image: np.ndarray, wins: Sequence[tuple[int, int]],
                     tile: int, batch_size: int, bar) -> Iterator[tuple[int, int, np.ndarray]]:
    for i in range(0, len(wins), batch_size):
        chunk = wins[i:i + batch_size]
        x = np.stack([image[r:r + tile, c:c + tile] for r, c in chunk]).astype(np.float32)
        x *= np.float32(1.0 / 255.0)
        p = np.asarray(predict(x), dtype=np.float32)
        if p.ndim != 4 or p.shape[:3] != x.shape[:3]:
            raise InputError(f"the model returned shape {p.shape} for a batch of shape {x.shape}; "
                             "expected (N, tile, tile, classes)")
        if bar is not None:
            bar.update(len(chunk))
        for (r, c), pi in zip(chunk, p):
            yield r, c, pi


def predict_probabilities(predict, image: np.ndarray, *, tile: int = 256, overlap: int = 0,
                          batch_size: int = 2, blend: str = "linear", border: str = "reflect",
                          nodata: np.ndarray | None = None, progress: bool = False,
                          desc: str = "predicting") -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Blended class probabilities of a whole image, yielded in bands of finished rows.

    Parameters
    ----------
    predict : Keras model or callable
        See :func:`make_predict_fn`.
    image : (H, W) or (H, W, C) uint8 ndarray
        Model input (:func:`model_input`), any size.
    tile, overlap : int, keyword-only
        Window side (the model's) and pixels shared by neighbouring windows.
    batch_size : int, keyword-only
    blend : {"linear", "cosine", "none"}, keyword-only
    border : {"reflect", "none"}, keyword-only
        ``reflect`` mirrors the image by ``overlap // 2`` px on each side before windowing.
    nodata : (H, W) bool ndarray, optional, keyword-only
        Windows with no valid pixel are not predicted.
    progress : bool, keyword-only
        tqdm bar over windows.

    Yields
    ------
    row0 : int
        First image row of the band.
    probs : (rows, W, K) float32 ndarray
        Blended probabilities (0 where no window was predicted).
    weight : (rows, W) float32 ndarray
        Summed blend weights (0 where no window was predicted).
    """
    image = _as_hwc(image)
    _check_window(tile, overlap)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    if border not in BORDERS:
        raise InputError(f"border must be one of {', '.join(BORDERS)} (got {border!r})")
    predict = make_predict_fn(predict)
    h, w = image.shape[:2]
    valid = np.ones((h, w), bool) if nodata is None else ~nodata
    if valid.shape != (h, w):
        raise InputError(f"no-data mask shape {valid.shape} does not match image {(h, w)}")
    pad = overlap // 2 if border == "reflect" else 0
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        valid = np.pad(valid, pad, mode="symmetric")
    ph, pw = max(image.shape[0], tile), max(image.shape[1], tile)
    if (ph, pw) != image.shape[:2]:   # smaller than one window: zero padding, no-data
        extra = ((0, ph - image.shape[0]), (0, pw - image.shape[1]))
        image = np.pad(image, extra + ((0, 0),))
        valid = np.pad(valid, extra)
    wins = tile_windows((ph, pw), tile, overlap)
    todo = [(r, c) for r, c in wins if valid[r:r + tile, c:c + tile].any()]
    rows = sorted({r for r, _ in wins})
    weight = blend_window(tile, overlap, kind=blend)
    flat = bool(np.all(weight == 1.0))

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=desc, unit="window", disable=not progress, leave=False)
    gen = _predict_batches(predict, image, todo, tile, batch_size, bar)
    pending = next(gen, None)
    k = pending[2].shape[-1] if pending is not None else 3
    acc = np.zeros((tile, pw, k), np.float32)
    wsum = np.zeros((tile, pw), np.float32)
    try:
        for i, r in enumerate(rows):
            while pending is not None and pending[0] == r:
                _, c, p = pending
                if flat:
                    acc[:, c:c + tile] += p
                else:
                    acc[:, c:c + tile] += p * weight[..., None]
                wsum[:, c:c + tile] += weight
                pending = next(gen, None)
            r_next = rows[i + 1] if i + 1 < len(rows) else r + tile
            d = r_next - r
            lo, hi = max(r, pad), min(r_next, pad + h)      # finished rows inside the image
            if hi > lo:
                a, b = lo - r, hi - r
                ws = wsum[a:b, pad:pad + w]
                probs = np.zeros((b - a, w, k), np.float32)
                np.divide(acc[a:b, pad:pad + w], ws[..., None], out=probs,
                          where=ws[..., None] > 0)
                yield lo - pad, probs.astype(np.float32), ws.copy()
            acc[:tile - d] = acc[d:]
            acc[tile - d:] = 0
            wsum[:tile - d] = wsum[d:]
            wsum[tile - d:] = 0
    finally:
        bar.close()


def predict_scene(predict, image: np.ndarray, *, nodata: np.ndarray | None = None,
                  tile: int = 256, overlap: int = 0, batch_size: int = 2, blend: str = "linear",
                  border: str = "reflect", return_probs: bool = False, progress: bool = False,
                  desc: str = "predicting"):
    """Class map of a whole image (see :func:`predict_probabilities` for the options).

    Returns
    -------
    classes : (H, W) uint8 ndarray
        0 water, 1 thin ice, 2 thick ice; 255 where ``nodata`` (or where nothing was predicted).
    probs : (H, W, K) float32 ndarray
        Only with ``return_probs=True``.
    """
    image = _as_hwc(image)
    h, w = image.shape[:2]
    classes = np.full((h, w), NODATA, np.uint8)
    probs_all = None
    for r0, probs, ws in predict_probabilities(
            predict, image, tile=tile, overlap=overlap, batch_size=batch_size, blend=blend,
            border=border, nodata=nodata, progress=progress, desc=desc):
        r1 = r0 + probs.shape[0]
        cl = np.argmax(probs, axis=-1).astype(np.uint8)
        cl[ws <= 0] = NODATA
        classes[r0:r1] = cl
        if return_probs:
            if probs_all is None:
                probs_all = np.zeros((h, w, probs.shape[-1]), np.float32)
            probs_all[r0:r1] = probs
    if nodata is not None:
        classes[nodata] = NODATA
    return (classes, probs_all) if return_probs else classes


def predict_tiles(predict, tiles: np.ndarray, *, batch_size: int = 2,
                  progress: bool = False, desc: str = "predicting tiles") -> np.ndarray:
    """Class maps of model-sized tiles, in batches (no stitching).

    Parameters
    ----------
    predict : Keras model or callable
    tiles : (N, t, t) or (N, t, t, C) uint8 ndarray
        Model input tiles (:func:`input_from_layers`).

    Returns
    -------
    (N, t, t) uint8 ndarray
    """
    from tqdm.auto import tqdm

    x = np.asarray(tiles)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8:
        raise InputError(f"predict_tiles takes uint8 (N, t, t[, C]) tiles (got {x.dtype} "
                         f"{x.shape})")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    predict = make_predict_fn(predict)
    out = np.empty(x.shape[:3], np.uint8)
    for i in tqdm(range(0, len(x), batch_size), desc=desc, disable=not progress, leave=False):
        b = x[i:i + batch_size].astype(np.float32) * np.float32(1.0 / 255.0)
        out[i:i + batch_size] = np.argmax(np.asarray(predict(b)), axis=-1)
    return out


def window_edges(shape: tuple[int, int], tile: int, overlap: int = 0, *,
                 border: str = "none") -> tuple[list[int], list[int]]:
    """Rows and columns (inside the image) where a window of :func:`predict_probabilities`
    starts or ends, for the same ``tile``, ``overlap`` and ``border``.

    >>> window_edges((512, 512), 256)
    ([256], [256])
    """
    h, w = shape[:2]
    pad = overlap // 2 if border == "reflect" else 0
    wins = tile_windows((max(h + 2 * pad, tile), max(w + 2 * pad, tile)), tile, overlap)
    rows = sorted({e - pad for r, _ in wins for e in (r, r + tile) if 0 < e - pad < h})
    cols = sorted({e - pad for _, c in wins for e in (c, c + tile) if 0 < e - pad < w})
    return rows, cols


def seam_statistics(classes: np.ndarray, *, tile: int, overlap: int = 0,
                    border: str = "none") -> dict[str, float]:
    """Are class changes concentrated on window borders? (a grid-artefact detector)

    Counts, between horizontally and vertically adjacent valid pixels, how often the class
    changes across the borders of the windows that :func:`predict_probabilities` places with
    these ``tile``, ``overlap`` and ``border`` (:func:`window_edges`), and across all other
    pixel boundaries.

    Returns
    -------
    dict
        ``border_rate`` and ``interior_rate`` (changes per adjacent pair), ``ratio``
        (border / interior; about 1 without seams, much larger with them), ``border_pairs``.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.zeros((64, 64), np.uint8); grid[:, 32:] = 1   # one change at a window border
    >>> seam_statistics(grid, tile=32)["ratio"] > 10
    True
    """
    if classes.ndim != 2:
        raise InputError(f"seam_statistics takes a (H, W) class map (got shape {classes.shape})")
    edges_r, edges_c = window_edges(classes.shape, tile, overlap, border=border)
    valid = classes != NODATA
    border_changes = border_pairs = all_changes = all_pairs = 0
    for axis, edges in ((1, edges_c), (0, edges_r)):
        a = classes if axis == 1 else classes.T
        v = valid if axis == 1 else valid.T
        pair_valid = v[:, 1:] & v[:, :-1]
        change = (a[:, 1:] != a[:, :-1]) & pair_valid
        idx = np.array(edges, int) - 1           # pair (e-1, e) is column e-1 of the diff
        all_changes += int(change.sum())
        all_pairs += int(pair_valid.sum())
        if idx.size:
            border_changes += int(change[:, idx].sum())
            border_pairs += int(pair_valid[:, idx].sum())
    inner_pairs = all_pairs - border_pairs
    br = border_changes / border_pairs if border_pairs else float("nan")
    ir = (all_changes - border_changes) / inner_pairs if inner_pairs else float("nan")
    ratio = br / ir if ir and ir > 0 else (float("inf") if br and br > 0 else float("nan"))
    return {"border_rate": br, "interior_rate": ir, "ratio": ratio, "border_pairs": border_pairs}


# ------------------------------------------------------------------------------------------
# areas and summaries
# ------------------------------------------------------------------------------------------

def pixel_area_m2(meta: dict | None, shape: tuple[int, int] | None = None, *,
                  pixel_size_m: float | None = None,
                  default_pixel_size_m: float = 10.0) -> tuple[float, str]:
    """Area of one pixel in m^2 and where it came from.

    ``pixel_size_m`` (given) wins; else the scene's transform (``meta["transform"]``, 6 floats,
    and ``meta["crs"]`` WKT, as :func:`seaice_utils.scenes.read_scene` keeps them): for a projected
    CRS the transform's determinant times the CRS unit in metres squared; for a geographic CRS
    (degrees) the degree lengths at the scene's centre latitude (spherical Earth, approximate);
    else ``default_pixel_size_m`` squared (10 m: Sentinel-2's visible bands).

    >>> pixel_area_m2({})
    (100.0, 'default pixel size 10 m')
    >>> pixel_area_m2({"transform": [20, 0, 500000, 0, -20, 8e6], "crs": "EPSG:3031"})[0]
    400.0
    """
    if pixel_size_m is not None:
        if not pixel_size_m > 0:
            raise InputError(f"pixel size must be > 0 m (got {pixel_size_m})")
        return float(pixel_size_m) ** 2, f"given pixel size {pixel_size_m:g} m"
    meta = meta or {}
    t, crs = meta.get("transform"), meta.get("crs")
    if t is not None and crs:
        a, b, _, d, e, f = (float(x) for x in list(t)[:6])
        det = abs(a * e - b * d)
        try:
            from rasterio.crs import CRS

            c = CRS.from_user_input(crs)
            if c.is_geographic:
                lat = f + e * (shape[0] / 2 if shape else 0.0)
                r = 6371008.8
                m_per_deg = math.pi * r / 180.0
                return (det * m_per_deg ** 2 * math.cos(math.radians(lat)),
                        "geographic CRS, approximate at the centre latitude")
            unit = float(c.linear_units_factor[1]) if c.is_projected else 1.0
            return det * unit ** 2, f"transform ({math.sqrt(det) * unit:g} m pixels)"
        except ImportError:
            return det, "transform (CRS units taken as metres: rasterio missing)"
        except Exception:  # unparsable CRS: the determinant, in its own units
            return det, "transform (unknown CRS units taken as metres)"
    return float(default_pixel_size_m) ** 2, f"default pixel size {default_pixel_size_m:g} m"


_CLASS_KEYS = {c: name.replace(" ", "_") for c, name in CLASS_NAMES.items()}
#: Columns of the per-scene summary (one row per scene).
SUMMARY_COLUMNS = (["scene", "height", "width", "pixel_area_m2", "pixel_area_source",
                    "valid_pixels", "nodata_pixels", "valid_km2"]
                   + [f"{_CLASS_KEYS[c]}_{k}" for c in sorted(CLASS_NAMES)
                      for k in ("pixels", "km2", "fraction")])


def class_summary(classes: np.ndarray, *, pixel_area: float = 100.0, name: str = "scene",
                  area_source: str = "") -> dict[str, Any]:
    """Pixels, area (km^2) and fraction of valid pixels of each class of one class map.

    >>> row = class_summary(np.array([[0, 1], [2, 255]], np.uint8), pixel_area=1e6)
    >>> row["thick_ice_km2"], row["open_water_fraction"], row["nodata_pixels"]
    (1.0, 0.3333333333333333, 1)
    """
    counts = np.bincount(classes.ravel(), minlength=256)
    valid = int(sum(counts[c] for c in CLASS_NAMES))
    row: dict[str, Any] = {"scene": name, "height": int(classes.shape[0]),
                           "width": int(classes.shape[1]), "pixel_area_m2": float(pixel_area),
                           "pixel_area_source": area_source, "valid_pixels": valid,
                           "nodata_pixels": int(classes.size - valid),
                           "valid_km2": valid * pixel_area / 1e6}
    for c in sorted(CLASS_NAMES):
        n = int(counts[c])
        key = _CLASS_KEYS[c]
        row[f"{key}_pixels"] = n
        row[f"{key}_km2"] = n * pixel_area / 1e6
        row[f"{key}_fraction"] = n / valid if valid else float("nan")
    return row


def write_summary_csv(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Write per-scene summary rows (:data:`SUMMARY_COLUMNS`) as CSV, atomically."""
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), extrasaction="ignore")
    wr.writeheader()
    wr.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
    return Path(path)


def write_geotiff(path: str | os.PathLike, classes: np.ndarray, *, crs: str,
                  transform: Sequence[float]) -> Path:
    """Write a class map as a single-band uint8 GeoTIFF (no-data 255, palette), atomically.

    Parameters
    ----------
    classes : (H, W) uint8 ndarray
    crs : str
        WKT or any string rasterio understands (e.g. ``EPSG:32701``).
    transform : 6 floats
        Affine ``a, b, c, d, e, f`` (GDAL order as rasterio lists it).
    """
    import rasterio
    from rasterio.transform import Affine

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.tif")
    try:
        with rasterio.open(tmp, "w", driver="GTiff", width=classes.shape[1],
                           height=classes.shape[0], count=1, dtype="uint8", nodata=NODATA,
                           crs=rasterio.crs.CRS.from_user_input(crs),
                           transform=Affine(*list(transform)[:6]), compress="deflate") as dst:
            dst.write(classes, 1)
            dst.write_colormap(1, {c: (*PALETTE[c], 0 if c == NODATA else 255) for c in PALETTE})
            dst.update_tags(1, classes="0 open water, 1 thin ice, 2 thick ice, 255 no data")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ------------------------------------------------------------------------------------------
# files and engines
# ------------------------------------------------------------------------------------------

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
        How to read the files (see :func:`seaice_utils.scenes.read_scene`).
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
            object.__setattr__(self, "input", _norm_input(self.input, "PredictOptions"))
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


def output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Files written for scene ``name``: class map, palette map, GeoTIFF, sidecar JSON."""
    out = Path(out_dir)
    return {"classes": out / f"{name}_classes.png", "map": out / f"{name}_map.png",
            "geotiff": out / f"{name}_classes.tif", "sidecar": out / f"{name}.json"}


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


# process-level state of pool workers and Spark Python workers
_WORKER: dict[str, Any] = {}


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


def _pool_init(model_path: str, opts: PredictOptions, threads: int | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _worker_predictor(model_path, opts, threads)


def _pool_task(args) -> tuple:
    f, out_dir, opts, model_path, threads = args
    try:
        predict, settings = _worker_predictor(model_path, opts, threads)
        return ("ok", Path(f).stem, predict_file(f, out_dir, predict, settings, opts),
                os.getpid(), _WORKER.get("loads"))
    except SeaIceError as exc:
        return ("failed", Path(f).name, str(exc), os.getpid(), _WORKER.get("loads"))


def _spark_partition(bc, paths: Iterator[str]) -> Iterator[tuple]:
    """Predict the files of one Spark partition with the executor's (cached) model."""
    from pyspark import SparkFiles

    cfg = bc.value
    predict, settings = _worker_predictor(SparkFiles.get(cfg["model_name"]), cfg["opts"],
                                          cfg["threads"])
    for f in paths:
        try:
            yield ("ok", Path(f).stem, predict_file(f, cfg["out_dir"], predict, settings,
                                                    cfg["opts"]), os.getpid(), _WORKER["loads"])
        except SeaIceError as exc:
            yield ("failed", Path(f).name, str(exc), os.getpid(), _WORKER["loads"])


def _spark_session(workers: int):
    """A local Spark session of ``workers`` cores from the shared helper
    (:func:`seaice_utils.spark_engine.spark_session`: ships the package to the executors)."""
    from seaice_utils.engines.spark import spark_session

    return spark_session(f"local[{workers}]", app_name="seaice-predict", progress=False)


def _collect(results, summary: PredictSummary, loads: dict) -> None:
    for status, name, payload, pid, n_loads in results:
        loads[pid] = n_loads
        if status == "ok":
            summary.done.append(name)
            summary.rows.append(payload)
        else:
            summary.failures.append((name, payload))


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
    workers : int, optional, keyword-only
        Processes (multiprocessing) or local cores (spark, when no session is given); default:
        all cores.
    resume : bool, keyword-only
        Skip scenes whose outputs exist (their summary rows are kept).
    spark : SparkSession, optional, keyword-only
        Use this session (e.g. a cluster's, from :func:`seaice_utils.spark_engine.spark_session`,
        which ships the package to the executors); default: a ``local[workers]`` session.

    Returns
    -------
    PredictSummary
        ``rows`` holds one summary row per scene (also in ``<out_dir>/summary.csv``);
        ``model_loads`` maps each worker process id to the number of times it loaded the model
        (1 each: once per process, not once per scene).
    """
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    from tqdm.auto import tqdm

    from seaice_utils.engines.base import check_unique_names
    from seaice_utils.labelling.pipeline import list_inputs

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
    todo = []
    for f in files:
        row = _done_row(out_dir, f.stem) if resume else None
        if row is not None:
            summary.skipped.append(f.stem)
            summary.rows.append(row)
        else:
            todo.append(f)
    workers = int(workers or os.cpu_count() or 1)
    loads: dict[int, int] = {}
    if todo and engine == "sequential":
        model, settings = load_model(model_path, input=opts.input)
        predict = make_predict_fn(model, runtime=opts.runtime, batch_size=opts.batch_size)
        for f in tqdm(todo, desc="predicting scenes", unit="scene", disable=not progress):
            try:
                summary.rows.append(predict_file(f, out_dir, predict, settings, opts,
                                                 progress=progress and len(todo) == 1))
                summary.done.append(f.stem)
            except SeaIceError as exc:
                summary.failures.append((f.name, str(exc)))
        loads[os.getpid()] = 1
    elif todo and engine == "multiprocessing":
        import multiprocessing as mp

        n = min(workers, len(todo))
        threads = max(1, (os.cpu_count() or 1) // n)
        ctx = mp.get_context("spawn")          # TensorFlow is not fork-safe
        with ctx.Pool(n, initializer=_pool_init,
                      initargs=(str(model_path.resolve()), opts, threads)) as pool:
            tasks = [(str(f), str(out_dir), opts, str(model_path.resolve()), threads)
                     for f in todo]
            res = list(tqdm(pool.imap_unordered(_pool_task, tasks), total=len(tasks),
                            desc="predicting scenes", unit="scene", disable=not progress))
        _collect(res, summary, loads)
    elif todo:
        session = spark or _spark_session(workers)
        sc = session.sparkContext
        sc.addFile(str(model_path.resolve()), recursive=model_path.is_dir())
        n_parts = min(len(todo), sc.defaultParallelism)
        bc = sc.broadcast({"model_name": model_path.name, "opts": opts, "out_dir": str(out_dir),
                           "threads": max(1, (os.cpu_count() or 1) // max(1, n_parts))})
        from functools import partial

        rdd = sc.parallelize([str(f.resolve()) for f in todo], n_parts)
        _collect(rdd.mapPartitions(partial(_spark_partition, bc)).collect(), summary, loads)
        bc.unpersist()
    order = {f.stem: i for i, f in enumerate(files)}
    summary.rows.sort(key=lambda r: order.get(r["scene"], len(order)))
    summary.seconds = time.perf_counter() - t0
    summary.model_loads = loads
    if summary.rows:
        summary.summary_csv = write_summary_csv(out_dir / "summary.csv", summary.rows)
    return summary
