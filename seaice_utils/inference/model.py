"""What a trained U-Net is fed: its settings (input kind, tile size), loading it, its input.

The input must be what the model was trained on (:data:`INPUT_KINDS`): ``filtered`` (the filter's
grey levels 0 / 155 / 255, one channel: the paper's), ``grey`` (grey of the original colours, one
channel) or ``rgb`` (three channels). It is read from the settings JSON that training saves beside
the model (:func:`read_model_settings`) or given explicitly. The thin-cloud and shadow filter runs
on the *whole scene* first (as the profile's ``filter`` section says) when the model was trained
on filtered images (:func:`model_input`); it can be skipped, in which case a one-channel model sees
the grey of the original colours (the "original images" rows of Table IV).

TensorFlow is imported only when a Keras model is loaded (:func:`load_model`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, N_CLASSES
from seaice_utils.errors import InputError
from seaice_utils.inference.runtime import register_cache
from seaice_utils.labelling.cloudfilter import (FilterParams, levels_to_rgb,
                                                thin_cloud_shadow_filter)
from seaice_utils.training.unet import load_unet

__all__ = ["INPUT_KINDS", "ModelSettings", "norm_input", "read_model_settings", "load_model",
           "input_from_layers", "model_input", "model_io", "check_model"]

#: Model inputs and their channel counts.
INPUT_KINDS = {"filtered": 1, "grey": 1, "rgb": 3}
_INPUT_ALIASES = {"filtered": "filtered", "grey": "grey", "gray": "grey", "rgb": "rgb",
                  "original": "rgb"}


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
        (:class:`~seaice_utils.labelling.cloudfilter.FilterParams` fields), when recorded.
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



def norm_input(v: Any, where: str) -> str:
    """The canonical input kind of ``v`` (``gray`` is ``grey``, ``original`` is ``rgb``)."""
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
                out["input"] = norm_input(holder[k], where)
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
    tj = model_path.parent / "training.json"          # seaice_utils.training.runs.train_models
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
    ``training.json`` of :func:`seaice_utils.training.runs.train_models` in the model's
    folder, a run's ``settings.json``. Without any, the model's channel count decides (1:
    ``filtered``, the paper's; 3: ``rgb``).

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
            source = path.name                 # no absolute path in shareable outputs
            break
    if input is not None:
        found["input"] = norm_input(input, "the input override")
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

register_cache(_MODELS)


def _keras_config(model_path: Path) -> dict | None:
    """The architecture of a ``.keras`` file (a zip with ``config.json``), read without Keras."""
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as z:
            return json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def model_io(model_path: str | os.PathLike) -> tuple[int | None, int | None]:
    """(input channels, output classes) of a saved ``.keras`` model, read from its
    architecture without TensorFlow; None for what cannot be told (another format)."""
    cfg = _keras_config(Path(model_path))
    try:
        graph = cfg["config"]
        layers = {lay["config"]["name"]: lay for lay in graph["layers"]}
        shape = layers[graph["input_layers"][0][0]]["config"].get("batch_input_shape")
        channels = int(shape[-1]) if shape and shape[-1] else None
    except (TypeError, KeyError, IndexError, ValueError):
        return None, None
    classes, name, seen = None, graph["output_layers"][0][0], set()
    while name in layers and name not in seen:          # back from the output to its last
        seen.add(name)                                  # layer with filters or units
        conf = layers[name]["config"]
        if conf.get("filters") or conf.get("units"):
            classes = int(conf.get("filters") or conf.get("units"))
            break
        try:
            name = layers[name]["inbound_nodes"][0][0][0]
        except (KeyError, IndexError, TypeError):
            break
    return channels, classes


def check_model(model_path: str | os.PathLike, *, input: str | None = None,
                n_classes: int = N_CLASSES) -> ModelSettings:
    """Check a saved model against what prediction needs, before any scene is read.

    Raises :class:`InputError` naming the model when it is missing, when its output has another
    number of classes than ``n_classes`` (thick ice, thin ice, open water) or when its input
    channels do not match its input kind. Returns its settings (without loading TensorFlow).
    """
    p = Path(model_path)
    if not p.is_file():
        raise InputError(f"model not found: {p}")
    channels, classes = model_io(p)
    if classes is not None and classes != n_classes:
        raise InputError(f"model {p.name} predicts {classes} classes; sea-ice maps need "
                         f"{n_classes} ({', '.join(CLASS_NAMES.values())})")
    return read_model_settings(p, input=input, channels=channels)


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
