"""Tuning the thin-cloud/shadow filter and the HSV ranges (notebook 02).

What it offers
--------------
* :func:`load_samples` — a few scenes of a dataset, cropped (or resized) to a preview size, with
  their no-data mask, reference class map and cloud mask where the dataset has them.
* :func:`apply_settings` — a profile with some values changed (flat ``section.key`` settings such
  as ``"filter.thick_threshold"`` or ``"autolabel.thin.upper.V"``), validated like a params file.
* :func:`preview` — everything one setting produces on one image: the filtered grey image, the
  auto-labels without and with the filter, class fractions, and agreement with the reference.
* :func:`class_fraction_table`, :func:`panels_figure`, :func:`filter_steps_figure`,
  :func:`value_histogram_figure` — the notebook's table and figures.
* :func:`build_tuner` — an ipywidgets UI (sliders for the HSV ranges and the filter constants, a
  live before/after preview, a message area, a button that writes the tuned profile). The UI is
  plain Python objects and callbacks, so it is testable without a browser: change
  ``tuner.controls[key].value`` and read ``tuner.result`` / ``tuner.message.value``.

Settings
--------
A *setting* is a flat key naming one value of a profile:

``filter.<key>``
    a filter constant: ``water_v_max``, ``dilation``, ``median_kernel``, ``truncation``,
    ``thick_threshold``, ``apply_to``;
``autolabel.<class>.<lower|upper>.<H|S|V>``
    one bound of a class's HSV range (class ``thick``, ``thin`` or ``water``);
``<section>.<key>``
    any other key of the profile (the whole value).

Class fractions
---------------
Fractions are shares of the data pixels (not no-data) of a scene: ``open_water``, ``thin_ice``,
``thick_ice`` and ``unlabelled`` (pixels whose colour falls in no HSV range); they sum to 1.
*Agreement* is the share of pixels with a reference class whose auto-label equals it; unlabelled
pixels count as disagreeing.

Note on the filter: with the filter on, the colour segmentation sees only the grey levels 0, 155
and 255, so the HSV ranges matter there only through which class each level falls in; the filter
constants (``water_v_max``, ``thick_threshold``, ...) decide the classes. :func:`threshold_warnings`
says when the ranges leave V values unlabelled or map a level to an unexpected class.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, NODATA, THICK, THIN, WATER
from seaice_utils.labelling.autolabel import segment
from seaice_utils.labelling.cloudfilter import (LEVEL_THICK, LEVEL_THIN, LEVEL_WATER,
                                                filter_steps, levels_to_rgb,
                                                thin_cloud_shadow_filter)
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.params import SCHEMA, dump_params, load_params_dict
from seaice_utils.labelling.settings import filter_params, thresholds

__all__ = ["TuningSample", "FILTER_KEYS", "CLASS_KEYS", "VARIANTS", "FRACTION_COLUMNS", "V_LINKS",
           "crop_or_resize", "load_samples", "settings_of", "apply_settings", "threshold_warnings",
           "class_shares", "agreement", "preview", "preview_all", "class_fraction_table",
           "fraction_bars", "cloudiest", "panels_figure", "filter_steps_figure",
           "value_histogram_figure", "tuned_params_path", "write_tuned_params", "save_tuned_params",
           "Tuner", "build_tuner"]

#: Filter constants the tuner exposes, in display order.
FILTER_KEYS = ("water_v_max", "dilation", "median_kernel", "truncation", "thick_threshold",
               "apply_to")
#: Classes of the ``autolabel`` section, in display order.
CLASS_KEYS = ("thick", "thin", "water")
#: The three label sets a preview compares.
VARIANTS = ("no filter", "filter", "reference")
#: Columns of the class-fraction table (in this order), and their class values.
FRACTION_COLUMNS = {"open_water": WATER, "thin_ice": THIN, "thick_ice": THICK,
                    "unlabelled": NODATA}
_CHANNELS = "HSV"
_CLASS_VALUE = {"thick": THICK, "thin": THIN, "water": WATER}
#: V bounds the tuner keeps adjacent while "link adjacent V bounds" is ticked: moving one moves
#: its partner to the neighbouring value, so the V ranges stay disjoint and cover 0..255.
V_LINKS = {"autolabel.thin.upper.V": ("autolabel.thick.lower.V", 1),
           "autolabel.thick.lower.V": ("autolabel.thin.upper.V", -1),
           "autolabel.water.upper.V": ("autolabel.thin.lower.V", 1),
           "autolabel.thin.lower.V": ("autolabel.water.upper.V", -1)}


# ------------------------------------------------------------------------------------ samples
@dataclass(frozen=True)
class TuningSample:
    """One preview image with what is known about it.

    Attributes
    ----------
    name : str
    rgb : (H, W, 3) uint8 ndarray
    nodata : (H, W) bool ndarray
    truth : (H, W) uint8 ndarray or None
        Reference class map (0 water, 1 thin, 2 thick, 255 no-data).
    cloud : (H, W) uint8 ndarray or None
        Cloud mask (0 clear, 1 haze, 2 shadow).
    """

    name: str
    rgb: np.ndarray
    nodata: np.ndarray
    truth: np.ndarray | None = None
    cloud: np.ndarray | None = None

    def __post_init__(self) -> None:
        from seaice_utils.core.scenes import check_rgb

        check_rgb(self.rgb, what=f"sample {self.name!r}")
        shape = self.rgb.shape[:2]
        for what, arr in (("nodata", self.nodata), ("truth", self.truth), ("cloud", self.cloud)):
            if arr is not None and np.shape(arr) != shape:
                raise InputError(f"sample {self.name!r}: {what} shape {np.shape(arr)} does not "
                                 f"match the image {shape}")
        if self.nodata.dtype != bool:
            raise InputError(f"sample {self.name!r}: nodata must be bool (got {self.nodata.dtype})")
        if self.truth is not None and self.truth.dtype != np.uint8:
            raise InputError(f"sample {self.name!r}: truth must be a uint8 class map "
                             f"(got {self.truth.dtype})")

    @property
    def cloud_fraction(self) -> float:
        """Share of data pixels under haze or shadow (NaN without a cloud mask)."""
        if self.cloud is None:
            return float("nan")
        data = ~self.nodata
        n = int(data.sum())
        return float(((self.cloud > 0) & data).sum()) / n if n else float("nan")


def crop_or_resize(array: np.ndarray, size: int, *, mode: str = "crop",
                   nearest: bool = False) -> np.ndarray:
    """Fit an image into ``size`` x ``size`` pixels.

    Parameters
    ----------
    array : (H, W) or (H, W, C) ndarray
    size : int
        Largest side of the result.
    mode : {"crop", "resize"}
        ``crop`` keeps the centre ``size`` x ``size`` window at full resolution (the filter's
        kernels are in pixels, so this previews what the pipeline does); ``resize`` shrinks the
        whole image (area averaging, or nearest neighbour for masks and class maps).
    nearest : bool
        Resize with nearest neighbour (for masks and class maps).

    Returns
    -------
    ndarray
        Sides ``min(H, size)`` x ``min(W, size)`` for ``crop``; the longer side ``size`` (aspect
        kept) for ``resize`` of a larger image. Images already small enough come back unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> crop_or_resize(np.zeros((100, 60), np.uint8), 50).shape
    (50, 50)
    >>> crop_or_resize(np.zeros((100, 60), np.uint8), 50, mode="resize").shape
    (50, 30)
    """
    if mode not in ("crop", "resize"):
        raise InputError(f"preview mode must be 'crop' or 'resize' (got {mode!r})")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise InputError(f"preview size must be a positive integer (got {size!r})")
    h, w = array.shape[:2]
    if max(h, w) <= size and (mode == "resize" or (h <= size and w <= size)):
        return array
    if mode == "crop":
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        return np.ascontiguousarray(array[top:top + size, left:left + size])
    scale = size / max(h, w)
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    src = array.astype(np.uint8) if array.dtype == bool else array
    out = cv2.resize(src, new, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return out.astype(bool) if array.dtype == bool else out


def load_samples(records: Sequence, params: dict, *, n: int | None = None,
                 size: int | None = None, mode: str | None = None) -> list[TuningSample]:
    """Read the first ``n`` scenes of a dataset as preview samples.

    Parameters
    ----------
    records : sequence of :class:`~seaice_utils.dataset.SceneRecord`
        As returned by :func:`seaice_utils.dataset.ensure_dataset`.
    params : dict
        Loaded profile; ``tuning.scenes``, ``tuning.preview_size`` and ``tuning.preview_mode``
        give the defaults of ``n``, ``size`` and ``mode``.

    Returns
    -------
    list of TuningSample
        Images cropped (or resized) with :func:`crop_or_resize`; truth and cloud masks where the
        dataset has them.
    """
    from seaice_utils.data.dataset import load_cloud, load_scene, load_truth

    t = params["tuning"]
    n = t["scenes"] if n is None else n
    size = t["preview_size"] if size is None else size
    mode = t.get("preview_mode", "crop") if mode is None else mode
    records = list(records)
    if not records:
        raise InputError("no scenes to preview (the dataset is empty)")
    out = []
    for rec in records[:n]:
        scene = load_scene(rec)
        truth, cloud = load_truth(rec), load_cloud(rec)
        for what, arr in (("reference class map", truth), ("cloud mask", cloud)):
            if arr is not None and arr.shape != scene.shape:
                raise InputError(f"{what} of {rec.name} is {arr.shape[:2]}, the scene "
                                 f"{scene.shape}")
        out.append(TuningSample(
            name=rec.name,
            rgb=crop_or_resize(scene.rgb, size, mode=mode),
            nodata=crop_or_resize(scene.nodata, size, mode=mode, nearest=True),
            truth=None if truth is None else crop_or_resize(truth, size, mode=mode, nearest=True),
            cloud=None if cloud is None else crop_or_resize(cloud, size, mode=mode, nearest=True)))
    return out


# ----------------------------------------------------------------------------------- settings
def settings_of(params: dict) -> dict[str, Any]:
    """The tunable values of a profile as flat settings (filter constants and HSV bounds).

    >>> from seaice_utils.params import defaults
    >>> s = settings_of(defaults())
    >>> s["filter.median_kernel"], s["autolabel.thin.upper.V"], s["autolabel.thick.lower.V"]
    (155, 204, 205)
    """
    out: dict[str, Any] = {f"filter.{k}": params["filter"][k] for k in FILTER_KEYS}
    for cls in CLASS_KEYS:
        for bound in ("lower", "upper"):
            for i, ch in enumerate(_CHANNELS):
                out[f"autolabel.{cls}.{bound}.{ch}"] = params["autolabel"][cls][bound][i]
    return out


def _plain(value: Any) -> Any:
    """numpy scalars and tuples from widgets -> plain Python for YAML and validation."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def apply_settings(params: dict, settings: Mapping[str, Any]) -> dict:
    """A copy of a profile with settings applied, validated like a params file.

    Parameters
    ----------
    params : dict
        A loaded profile (left unchanged).
    settings : mapping of str to value
        Flat keys (see the module docstring): ``"filter.thick_threshold": 200``,
        ``"autolabel.thin.upper.V": 210``, ``"autolabel.water": {"lower": [...], "upper": [...]}``.

    Returns
    -------
    dict
        The validated profile (defaults filled in).

    Raises
    ------
    ParamsError
        For an unknown key, or values the profile's rules reject (the message names the key),
        e.g. a lower bound above the upper one or an even median kernel.

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> p = apply_settings(defaults(), {"autolabel.thin.upper.V": 220, "filter.dilation": 5})
    >>> p["autolabel"]["thin"]["upper"], p["filter"]["dilation"]
    ([185, 255, 220], 5)
    >>> apply_settings(defaults(), {"filter.median_kernel": 154})
    Traceback (most recent call last):
    ...
    seaice_utils.errors.ParamsError: filter.median_kernel: must be an integer >= 3, odd (got 154)
    """
    new = copy.deepcopy(load_params_dict(params))
    for key, value in settings.items():
        parts = str(key).split(".")
        section = parts[0]
        if section not in SCHEMA or len(parts) < 2 or parts[1] not in SCHEMA[section]:
            raise ParamsError(f"{key}: unknown setting (use section.key, e.g. "
                              f"'filter.thick_threshold' or 'autolabel.thin.upper.V')")
        value = _plain(value)
        if len(parts) == 2:
            new[section][parts[1]] = value
            continue
        if section != "autolabel" or len(parts) > 4 or parts[2] not in ("lower", "upper") or (
                len(parts) == 4 and parts[3] not in _CHANNELS):
            raise ParamsError(f"{key}: unknown setting (HSV bounds are "
                              f"'autolabel.<class>.<lower|upper>[.<H|S|V>]')")
        rng = new[section][parts[1]]
        if len(parts) == 3:
            rng[parts[2]] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamsError(f"{key}: must be an integer (got {value!r})")
            rng[parts[2]] = list(rng[parts[2]])
            rng[parts[2]][_CHANNELS.index(parts[3])] = value
    return load_params_dict(new, source="tuning settings")


def threshold_warnings(params: dict) -> list[str]:
    """Things about a valid profile's HSV ranges that are legal but likely unintended.

    * V values that fall in no class's range (their pixels come out unlabelled) — only checked
      when every range leaves H and S unconstrained;
    * ranges that overlap (the class painted last wins: water, then thin, then thick);
    * filter levels 0 / 155 / 255 that the ranges do not label water / thin / thick (then the
      filtered auto-label is not what the filter decided).

    >>> from seaice_utils.params import defaults
    >>> threshold_warnings(defaults())
    []
    >>> p = apply_settings(defaults(), {"autolabel.thin.upper.V": 150})
    >>> threshold_warnings(p)  # doctest: +NORMALIZE_WHITESPACE
    ['V 151..204 is in no class range (unlabelled)',
     'filter level 155 is labelled unlabelled, not thin ice']
    """
    th = thresholds(params)
    out = []
    lut = th.value_lut()
    if lut is not None:
        gaps = np.flatnonzero(lut == NODATA)
        if gaps.size:
            runs = np.split(gaps, np.flatnonzero(np.diff(gaps) > 1) + 1)
            spans = ", ".join(f"{r[0]}..{r[-1]}" if r.size > 1 else f"{r[0]}" for r in runs)
            out.append(f"V {spans} {'is' if len(runs) == 1 else 'are'} in no class range "
                       "(unlabelled)")
    ranges = {"water": th.water, "thin": th.thin, "thick": th.thick}
    order = ("water", "thin", "thick")  # paint order: the later class wins where ranges overlap
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            ra, rb = ranges[a], ranges[b]
            lo = [max(x, y) for x, y in zip(ra.lower, rb.lower)]
            hi = [min(x, y) for x, y in zip(ra.upper, rb.upper)]
            if all(x <= y for x, y in zip(lo, hi)):
                out.append(f"{a} and {b} ranges overlap at V {lo[2]}..{min(hi[2], 255)} "
                           f"({b} wins there)")
    levels = np.array([[LEVEL_WATER, LEVEL_THIN, LEVEL_THICK]], np.uint8)
    got = segment(levels_to_rgb(levels), th)[0]
    for level, want, have in zip(levels[0], (WATER, THIN, THICK), got):
        if have != want:
            name = CLASS_NAMES.get(int(have), "unlabelled")
            out.append(f"filter level {level} is labelled {name}, not {CLASS_NAMES[want]}")
    return out


# ----------------------------------------------------------------------------------- previews
def class_shares(classes: np.ndarray, nodata: np.ndarray | None = None) -> dict[str, float]:
    """Shares of the data pixels in each class and unlabelled (see :data:`FRACTION_COLUMNS`).

    Parameters
    ----------
    classes : (H, W) uint8 ndarray
    nodata : (H, W) bool ndarray, optional
        Pixels left out; 255 elsewhere counts as ``unlabelled``.

    Returns
    -------
    dict
        ``open_water``, ``thin_ice``, ``thick_ice``, ``unlabelled`` (sum 1; NaN without data).

    >>> import numpy as np
    >>> s = class_shares(np.array([[0, 1, 1, 255]], np.uint8), np.array([[0, 0, 0, 1]], bool))
    >>> {k: round(v, 3) for k, v in s.items()}
    {'open_water': 0.333, 'thin_ice': 0.667, 'thick_ice': 0.0, 'unlabelled': 0.0}
    """
    data = np.ones(classes.shape, bool) if nodata is None else ~nodata
    n = int(data.sum())
    if n == 0:
        return {k: float("nan") for k in FRACTION_COLUMNS}
    counts = np.bincount(classes[data].ravel(), minlength=256)
    return {k: float(counts[v]) / n for k, v in FRACTION_COLUMNS.items()}


def agreement(labels: np.ndarray, truth: np.ndarray, nodata: np.ndarray | None = None) -> float:
    """Share of pixels with a reference class (not 255, not no-data) whose label equals it.

    Unlike :func:`seaice_utils.metrics.pixel_accuracy`, a pixel the labeller leaves unlabelled
    (255) counts as a disagreement, so thresholds with gaps cannot look better than they are.

    >>> import numpy as np
    >>> agreement(np.array([0, 1, 255, 2]), np.array([0, 2, 1, 255]))
    0.3333333333333333
    """
    if labels.shape != truth.shape:
        raise InputError(f"labels and reference shapes differ: {labels.shape} vs {truth.shape}")
    ref = truth != NODATA
    if nodata is not None:
        ref &= ~nodata
    n = int(ref.sum())
    return float((labels[ref] == truth[ref]).sum()) / n if n else float("nan")


def preview(rgb: np.ndarray, nodata: np.ndarray | None = None, truth: np.ndarray | None = None,
            params: dict | None = None, *, levels: np.ndarray | None = None) -> dict[str, Any]:
    """Everything one profile produces on one image: filter, labels, fractions, agreement.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    nodata : (H, W) bool ndarray, optional
    truth : (H, W) uint8 ndarray, optional
        Reference class map; enables the ``reference`` fractions and the agreements.
    params : dict, optional
        Loaded profile (paper defaults when None); its ``filter`` and ``autolabel`` sections are
        used.
    levels : (H, W) uint8 ndarray, optional
        The filtered image for these filter constants, if already computed (the tuner caches it:
        it does not depend on the HSV ranges).

    Returns
    -------
    dict
        ``image`` (H, W, 3), ``nodata`` (H, W) bool, ``filtered`` (H, W) uint8 levels 0/155/255,
        ``labels_raw`` and ``labels_filtered`` (H, W) uint8 class maps without / with the filter,
        ``truth`` (or None), ``fractions`` {variant: class shares} for ``"no filter"``,
        ``"filter"`` and (with truth) ``"reference"``, ``agreement`` {variant: float} for the
        first two (empty without truth), ``n_pixels`` (data pixels) and ``n_reference`` (pixels
        with a reference class), ``warnings`` (:func:`threshold_warnings`).

    Examples
    --------
    >>> import numpy as np
    >>> from seaice_utils.params import defaults
    >>> img = np.full((64, 64, 3), 120, np.uint8); img[:, :16] = 10; img[:, 48:] = 240
    >>> truth = np.ones((64, 64), np.uint8); truth[:, :16] = 0; truth[:, 48:] = 2
    >>> p = apply_settings(defaults(), {"filter.median_kernel": 31})
    >>> out = preview(img, None, truth, p)
    >>> out["fractions"]["no filter"]["thin_ice"], out["agreement"]["no filter"]
    (0.5, 1.0)
    """
    from seaice_utils.params import defaults

    p = defaults() if params is None else params
    if nodata is None:
        nodata = np.zeros(rgb.shape[:2], bool)
    th = thresholds(p)
    raw = segment(rgb, th, nodata=nodata)
    if levels is None:
        levels = thin_cloud_shadow_filter(rgb, filter_params(p), nodata=nodata)
    elif levels.shape != rgb.shape[:2]:
        raise InputError(f"levels shape {levels.shape} does not match the image {rgb.shape[:2]}")
    filtered = segment(levels_to_rgb(levels), th, nodata=nodata)
    fractions = {"no filter": class_shares(raw, nodata), "filter": class_shares(filtered, nodata)}
    agree: dict[str, float] = {}
    n_ref = 0
    if truth is not None:
        if truth.shape != rgb.shape[:2]:
            raise InputError(f"reference shape {truth.shape} does not match the image "
                             f"{rgb.shape[:2]}")
        fractions["reference"] = class_shares(truth, nodata)
        agree = {"no filter": agreement(raw, truth, nodata),
                 "filter": agreement(filtered, truth, nodata)}
        n_ref = int(((truth != NODATA) & ~nodata).sum())
    return dict(image=rgb, nodata=nodata, filtered=levels, labels_raw=raw,
                labels_filtered=filtered, truth=truth, fractions=fractions, agreement=agree,
                n_pixels=int((~nodata).sum()), n_reference=n_ref,
                warnings=threshold_warnings(p))


def preview_all(samples: Sequence[TuningSample], params: dict, *,
                progress: bool | None = None) -> list[dict[str, Any]]:
    """:func:`preview` of every sample, each dict with ``name`` and ``cloud_fraction`` added."""
    from tqdm.auto import tqdm

    show = params["global"]["progress"] if progress is None else progress
    out = []
    for s in tqdm(samples, desc="previews", unit="scene", disable=not show):
        pv = preview(s.rgb, s.nodata, s.truth, params)
        pv.update(name=s.name, cloud_fraction=s.cloud_fraction)
        out.append(pv)
    return out


def _weighted_mean(values, weights: np.ndarray) -> float:
    """Mean of the non-NaN values weighted by ``weights`` (NaN when nothing has weight)."""
    v = np.asarray(values, float)
    ok = ~np.isnan(v) & (weights > 0)
    return float((v[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")


def class_fraction_table(previews: Sequence[Mapping[str, Any]]):
    """Class fractions without / with the filter (and of the reference), per scene and overall.

    Parameters
    ----------
    previews : sequence of dict
        From :func:`preview_all`.

    Returns
    -------
    pandas.DataFrame
        One row per scene and label set (``labels``: ``no filter``, ``filter``, ``reference``),
        then the pixel-weighted rows of scene ``all``. Columns: ``scene``, ``labels``,
        ``cloud_fraction`` (share of the scene's data under haze/shadow, NaN when unknown),
        ``open_water``, ``thin_ice``, ``thick_ice``, ``unlabelled`` (sum 1 per row), ``pixels``
        (data pixels) and ``agreement`` (with the reference; NaN where there is none and on the
        reference rows).
    """
    import pandas as pd

    if not previews:
        raise InputError("class_fraction_table needs at least one preview")
    rows = []
    for pv in previews:
        for variant in VARIANTS:
            if variant not in pv["fractions"]:
                continue
            rows.append({"scene": pv.get("name", "scene"), "labels": variant,
                         "cloud_fraction": pv.get("cloud_fraction", float("nan")),
                         **pv["fractions"][variant], "pixels": pv["n_pixels"],
                         "agreement": pv["agreement"].get(variant, float("nan"))})
    df = pd.DataFrame(rows)
    total = []
    for variant in VARIANTS:
        sub = df[df["labels"] == variant]
        if sub.empty:
            continue
        w = sub["pixels"].to_numpy(float)
        nref = np.array([pv["n_reference"] for pv in previews if variant in pv["fractions"]], float)
        row = {"scene": "all", "labels": variant,
               "cloud_fraction": _weighted_mean(sub["cloud_fraction"], w),
               **{col: _weighted_mean(sub[col], w) for col in FRACTION_COLUMNS},
               "pixels": int(w.sum()), "agreement": _weighted_mean(sub["agreement"], nref)}
        total.append(row)
    return pd.concat([df, pd.DataFrame(total)], ignore_index=True)[
        ["scene", "labels", "cloud_fraction", *FRACTION_COLUMNS, "pixels", "agreement"]]


def fraction_bars(table, *, title: str | None = None):
    """Stacked class-fraction bars of a :func:`class_fraction_table` (one bar per row)."""
    from seaice_utils.core.figures import class_fraction_bars

    names = {"open_water": CLASS_NAMES[WATER], "thin_ice": CLASS_NAMES[THIN],
             "thick_ice": CLASS_NAMES[THICK], "unlabelled": "unlabelled"}
    bars = {f"{r.scene}: {r.labels}": {names[c]: getattr(r, c) for c in FRACTION_COLUMNS}
            for r in table.itertuples()}
    return class_fraction_bars(bars, title=title)


def cloudiest(samples: Sequence[TuningSample]) -> TuningSample:
    """The sample with the largest cloud/shadow share (the first one if none has a cloud mask)."""
    if not samples:
        raise InputError("cloudiest needs at least one sample")
    cf = [s.cloud_fraction for s in samples]
    if all(np.isnan(cf)):
        return samples[0]
    return samples[int(np.nanargmax(cf))]


# ------------------------------------------------------------------------------------ figures
def _pct(x: float | None) -> str:
    return "" if x is None or np.isnan(x) else f"{100 * x:.1f} % agree"


def _preview_panels(pv: Mapping[str, Any]) -> list:
    from seaice_utils.core.figures import Panel

    agree = pv.get("agreement", {})
    panels = [Panel(pv["image"], "rgb", "image"),
              Panel(pv["filtered"], "grey", "filtered grey (0/155/255)"),
              Panel(pv["labels_raw"], "labels",
                    "auto-label, no filter\n" + _pct(agree.get("no filter"))),
              Panel(pv["labels_filtered"], "labels",
                    "auto-label, filter\n" + _pct(agree.get("filter")))]
    if pv.get("truth") is not None:
        panels.append(Panel(pv["truth"], "labels", "reference"))
    return panels


def _row_title(pv: Mapping[str, Any]) -> str:
    cf = pv.get("cloud_fraction", float("nan"))
    name = str(pv.get("name", ""))
    return name if cf is None or np.isnan(cf) else f"{name}\n{100 * cf:.0f} % cloud/shadow"


def panels_figure(previews: Sequence[Mapping[str, Any]], *, panel_size: float = 2.6,
                  suptitle: str | None = None):
    """Image | filtered grey | auto-label without filter | with filter | reference, one row per
    preview, agreement with the reference in the titles, class legend below.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from seaice_utils.core.figures import panel_figure

    if not previews:
        raise InputError("panels_figure needs at least one preview")
    return panel_figure([_preview_panels(pv) for pv in previews],
                        row_titles=[_row_title(pv) for pv in previews], panel_size=panel_size,
                        legend=True, suptitle=suptitle)


_STEP_TITLES = {
    "water": "1 water mask (V <= {water_v_max})",
    "grey": "2-3 water painted white, grey",
    "dilated": "4 dilated {dilation}x{dilation}",
    "background": "5 median {median_kernel} (background)",
    "diff": "6 255 - |grey - background|",
    "otsu_mask": "7 Otsu mask",
    "diff2": "7 diff AND mask",
    "norm1": "8 min-max to 0..255",
    "truncated": "9 truncated at {truncation}",
    "norm2": "10 min-max to 0..255",
    "levels": "11 levels (thick >= {thick_threshold})",
}


def filter_steps_figure(sample: TuningSample, params: dict, *, panel_size: float = 2.4):
    """The filter's intermediate steps (:func:`~seaice_utils.cloudfilter.filter_steps`) on one
    sample, whole image, with the image and (if known) the reference and cloud mask.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from seaice_utils.core.figures import Panel, panel_figure

    fp = filter_params(params)
    steps = filter_steps(sample.rgb, fp, nodata=sample.nodata)
    fmt = params["filter"]
    panels = [Panel(sample.rgb, "rgb", "image")]
    if sample.cloud is not None:
        panels.append(Panel(sample.cloud.astype(np.uint8) * np.uint8(127), "grey",
                            "cloud mask (haze grey, shadow white)"))
    panels += [Panel(steps[k], "mask" if k == "water" else "grey", t.format(**fmt))
               for k, t in _STEP_TITLES.items()]
    panels.append(Panel(segment(levels_to_rgb(steps["levels"]), thresholds(params),
                                nodata=sample.nodata), "labels", "auto-label, filter"))
    if sample.truth is not None:
        panels.append(Panel(sample.truth, "labels", "reference"))
    ncol = 4 if len(panels) <= 12 else 5
    rows = [panels[i:i + ncol] for i in range(0, len(panels), ncol)]
    note = "" if fp.apply_to == "scene" else " (apply_to=tile runs these steps per tile)"
    return panel_figure(rows, panel_size=panel_size, legend=True,
                        suptitle=f"thin-cloud/shadow filter steps on {sample.name}{note}")


def _filtered_values(rgb: np.ndarray, fp, nodata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-10 value and filter water mask, per scene or per tile as ``fp.apply_to`` says."""
    from seaice_utils.core.tiling import iter_tiles, pad_to_multiple

    if fp.apply_to == "scene":
        st = filter_steps(rgb, fp, nodata=nodata)
        return st["norm2"], st["water"]
    h, w = rgb.shape[:2]
    padded, mask = pad_to_multiple(rgb, fp.tile_size, nodata=nodata)
    norm2 = np.zeros(padded.shape[:2], np.uint8)
    water = np.ones(padded.shape[:2], bool)
    t = fp.tile_size
    for r, c, view in iter_tiles(padded, t):
        st = filter_steps(np.ascontiguousarray(view), fp, nodata=mask[r:r + t, c:c + t])
        norm2[r:r + t, c:c + t], water[r:r + t, c:c + t] = st["norm2"], st["water"]
    return norm2[:h, :w], water[:h, :w]


def _bound_lines(params: dict) -> dict[str, float]:
    lines: dict[str, float] = {}
    for cls in CLASS_KEYS:
        lo, hi = params["autolabel"][cls]["lower"][2], params["autolabel"][cls]["upper"][2]
        if lo > 0:
            lines[f"{cls} >= {lo}"] = lo - 0.5
        if hi < 255:
            lines[f"{cls} <= {hi}"] = hi + 0.5
    wv = params["filter"]["water_v_max"]
    lines[f"filter water <= {wv}"] = wv + 0.5
    return lines


def value_histogram_figure(samples: Sequence[TuningSample], params: dict):
    """Where thresholds are tuned: histograms per reference class of (left) the image's V =
    max(R, G, B) with the HSV V bounds and ``filter.water_v_max`` drawn, and (right) the
    filter's step-10 value of the pixels it does not call water, with ``thick_threshold`` drawn.

    Pixels of all samples are pooled (no-data left out); without a reference, one histogram of
    all pixels is drawn per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from seaice_utils.core.figures import class_histograms, new_figure

    if not samples:
        raise InputError("value_histogram_figure needs at least one sample")
    fp = filter_params(params)
    has_truth = all(s.truth is not None for s in samples)
    v_vals, v_cls, f_vals, f_cls = [], [], [], []
    for s in samples:
        data = ~s.nodata
        v_vals.append(s.rgb.max(axis=2)[data])
        norm2, water = _filtered_values(s.rgb, fp, s.nodata)
        keep = data & ~water
        f_vals.append(norm2[keep])
        if has_truth:
            v_cls.append(s.truth[data])
            f_cls.append(s.truth[keep])
    fig = new_figure((12.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    class_histograms(np.concatenate(v_vals), np.concatenate(v_cls) if has_truth else None,
                     ax=ax1, lines=_bound_lines(params), log=True,
                     xlabel="V = max(R, G, B) of the image",
                     title="image value per reference class; HSV V bounds" if has_truth
                     else "image value; HSV V bounds")
    thick = params["filter"]["thick_threshold"]
    class_histograms(np.concatenate(f_vals), np.concatenate(f_cls) if has_truth else None,
                     ax=ax2, lines={f"thick >= {thick}": thick - 0.5}, log=True,
                     xlabel="filtered value (step 10) of pixels not called water",
                     title="filtered value per reference class; thick threshold" if has_truth
                     else "filtered value; thick threshold")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- params output
def tuned_params_path(params: dict, params_file: str | os.PathLike | None = None, *,
                      default: str | os.PathLike | None = None) -> Path | None:
    """Where ``tuning.write_params`` says to write the tuned profile.

    A relative path is taken relative to the folder of ``params_file`` (the profile that names
    it), or the working directory when no file is given. When the profile names no file,
    ``default`` is returned (None by default: write nothing).

    >>> from seaice_utils.params import defaults
    >>> p = defaults(); p["tuning"]["write_params"] = "tuned.yml"
    >>> tuned_params_path(p, "/data/project/params/quick.yml").as_posix()
    '/data/project/params/tuned.yml'
    """
    target = params["tuning"]["write_params"]
    if not target:
        return None if default is None else Path(default)
    p = Path(os.path.expanduser(target))
    if not p.is_absolute():
        p = (Path(params_file).resolve().parent if params_file else Path.cwd()) / p
    return p


def write_tuned_params(params: dict, path: str | os.PathLike) -> Path:
    """Write a full, valid profile (atomically) with ``tuning.write_params`` cleared, so that
    running with the written profile does not overwrite it. Returns the path."""
    out = copy.deepcopy(load_params_dict(params))
    out["tuning"]["write_params"] = None
    path = Path(path)
    if path.suffix.lower() not in (".yml", ".yaml"):
        raise ParamsError(f"tuning.write_params: a params file must end in .yml or .yaml "
                          f"(got {str(path)!r})")
    dump_params(out, path)
    return path


def save_tuned_params(params: dict, params_file: str | os.PathLike | None = None) -> Path | None:
    """Write ``params`` to :func:`tuned_params_path` when ``tuning.write_params`` is set.

    Returns the path written, or None when the profile asks for no file.
    """
    target = tuned_params_path(params, params_file)
    return None if target is None else write_tuned_params(params, target)


# ---------------------------------------------------------------------------------- widget UI
def _metrics_html(pv: Mapping[str, Any], seconds: float) -> str:
    head = "".join(f"<th style='padding:0 8px'>{c.replace('_', ' ')}</th>"
                   for c in (*FRACTION_COLUMNS, "agreement"))
    body = []
    for variant in VARIANTS:
        if variant not in pv["fractions"]:
            continue
        f = pv["fractions"][variant]
        ag = pv["agreement"].get(variant)
        cells = [f"{100 * f[c]:.1f} %" for c in FRACTION_COLUMNS]
        cells.append("" if ag is None or np.isnan(ag) else f"{100 * ag:.1f} %")
        body.append(f"<tr><td style='padding:0 8px'><b>{variant}</b></td>" + "".join(
            f"<td style='padding:0 8px;text-align:right'>{c}</td>" for c in cells) + "</tr>")
    return (f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"
            f"<small>{pv['n_pixels']:,} data pixels; preview computed in {seconds:.2f} s</small>")


class Tuner:
    """Sliders for the HSV ranges and filter constants with a live preview (see
    :func:`build_tuner`, which builds one and returns its widget).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole UI (its ``tuner`` attribute points back here).
    controls : dict of str to ipywidgets widget
        One control per setting (keys as :func:`settings_of`).
    scene : ipywidgets.Dropdown
        Which sample is previewed.
    link : ipywidgets.Checkbox
        Keep adjacent V bounds adjacent (see :data:`V_LINKS`; on by default).
    image : ipywidgets.Image
        PNG of image | filtered grey | labels without / with filter | reference.
    metrics : ipywidgets.HTML
        Class fractions and agreement of the previewed sample.
    message : ipywidgets.HTML
        Validation errors, warnings and what the write button did.
    path : ipywidgets.Text
        Where the write button writes the profile.
    write_button, reset_button : ipywidgets.Button
    params : dict
        The last valid profile (the one previewed and written).
    error : str or None
        The current validation error, if the sliders hold an invalid combination.
    result : dict
        The last :func:`preview` of the selected sample.
    """

    def __init__(self, samples: Sequence[TuningSample], params: dict, *,
                 write_path: str | os.PathLike | None = None, panel_size: float = 2.3,
                 dpi: int = 72) -> None:
        import ipywidgets as w

        if not samples:
            raise InputError("the tuner needs at least one sample")
        self.samples = list(samples)
        self.base_params = load_params_dict(params)
        self.params = copy.deepcopy(self.base_params)
        self.error: str | None = None
        self.result: dict[str, Any] = {}
        self.panel_size, self.dpi = panel_size, dpi
        self._cache: dict[tuple, np.ndarray] = {}
        self._hold = False

        slider_style = {"description_width": "110px"}
        layout = w.Layout(width="360px")
        settings = settings_of(self.params)
        self.controls: dict[str, Any] = {}

        def islider(key: str, label: str, lo: int, hi: int, step: int = 1):
            v = settings[key]
            s = w.IntSlider(value=v, min=lo, max=max(hi, v), step=step, description=label,
                            continuous_update=False, style=slider_style, layout=layout)
            self.controls[key] = s
            return s

        class_boxes = []
        for cls in CLASS_KEYS:
            v_box = [islider(f"autolabel.{cls}.{b}.V", f"V {b}", 0, 255)
                     for b in ("lower", "upper")]
            hs_box = [islider(f"autolabel.{cls}.{b}.{ch}", f"{ch} {b}", 0,
                              185 if ch == "H" else 255)
                      for ch in "HS" for b in ("lower", "upper")]
            hs = w.Accordion(children=[w.VBox(hs_box)])
            hs.set_title(0, "H and S")
            hs.selected_index = None
            title = w.HTML(f"<b>{cls} ({CLASS_NAMES[_CLASS_VALUE[cls]]})</b>")
            class_boxes.append(w.VBox([title, *v_box, hs]))
        f = "filter."
        filt = [islider(f + "water_v_max", "water V max", 0, 255),
                islider(f + "dilation", "dilation", 1, 31),
                islider(f + "median_kernel", "median kernel", 3, 301, 2),
                islider(f + "truncation", "truncation", 0, 255),
                islider(f + "thick_threshold", "thick threshold", 0, 255)]
        self.controls[f + "apply_to"] = w.ToggleButtons(
            options=["scene", "tile"], value=settings[f + "apply_to"], description="apply to",
            style={"description_width": "110px", "button_width": "80px"})
        filt.append(self.controls[f + "apply_to"])

        self.link = w.Checkbox(value=True, description="link adjacent V bounds (thin upper = "
                               "thick lower - 1, water upper = thin lower - 1)", indent=False,
                               layout=w.Layout(width="560px"))
        self.scene = w.Dropdown(options=[(s.name, i) for i, s in enumerate(self.samples)], value=0,
                                description="scene", style=slider_style)
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.metrics = w.HTML()
        self.message = w.HTML()
        self.path = w.Text(value="" if write_path is None else str(write_path),
                           description="params file", style=slider_style,
                           layout=w.Layout(width="520px"),
                           placeholder="path of the profile to write, e.g. params/tuned.yml")
        self.write_button = w.Button(description="Write params", icon="save",
                                     button_style="primary")
        self.reset_button = w.Button(description="Reset", icon="undo")
        tabs = w.Tab(children=[w.VBox([self.link, w.HBox(class_boxes)]), w.VBox(filt)])
        tabs.set_title(0, "HSV ranges")
        tabs.set_title(1, "filter")
        self.widget = w.VBox([w.HBox([self.scene]), tabs, self.message, self.image, self.metrics,
                              w.HBox([self.path, self.write_button, self.reset_button])])
        self.widget.tuner = self

        for key, c in self.controls.items():
            c.observe(self._on_link if key in V_LINKS else self.update, names="value")
        self.scene.observe(self.update, names="value")
        self.write_button.on_click(lambda _b: self.write())
        self.reset_button.on_click(lambda _b: self.reset())
        self.update()

    # -- state
    def settings(self) -> dict[str, Any]:
        """Current control values as flat settings."""
        return {k: c.value for k, c in self.controls.items()}

    @property
    def sample(self) -> TuningSample:
        return self.samples[self.scene.value]

    def _levels(self, params: dict) -> np.ndarray:
        fp = filter_params(params)
        key = (self.scene.value, tuple(sorted(fp.to_dict().items())))
        if key not in self._cache:
            if len(self._cache) > 32:
                self._cache.clear()
            s = self.sample
            self._cache[key] = thin_cloud_shadow_filter(s.rgb, fp, nodata=s.nodata)
        return self._cache[key]

    def _on_link(self, change: Any) -> None:
        """A linked V bound moved: move its partner along (if linking is on), then update."""
        if self.link.value and not self._hold:
            key = next(k for k in V_LINKS if self.controls[k] is change["owner"])
            partner, offset = V_LINKS[key]
            self._hold = True
            try:
                self.controls[partner].value = int(np.clip(change["new"] + offset, 0, 255))
            finally:
                self._hold = False
        self.update()

    def _say(self, text: str, *, kind: str = "info") -> None:
        colour = {"error": "#b00020", "warning": "#a15c00", "info": "#1b5e20"}[kind]
        self.message.value = f"<span style='color:{colour}'>{text}</span>"

    def update(self, change: Any = None) -> bool:
        """Validate the controls and refresh the preview; an invalid combination is reported in
        :attr:`message` (the preview keeps the last valid settings). Returns True when valid."""
        if self._hold:
            return self.error is None
        import html

        from seaice_utils.core.figures import figure_to_png

        try:
            new = apply_settings(self.base_params, self.settings())
        except (ParamsError, InputError) as exc:
            self.error = str(exc)
            self._say(f"<b>invalid:</b> {html.escape(self.error)} &mdash; the preview shows the "
                      "last valid settings; nothing will be written", kind="error")
            return False
        self.error = None
        self.params = new
        t0 = time.perf_counter()
        s = self.sample
        pv = preview(s.rgb, s.nodata, s.truth, new, levels=self._levels(new))
        pv.update(name=s.name, cloud_fraction=s.cloud_fraction)
        seconds = time.perf_counter() - t0
        self.result = pv
        self.image.value = figure_to_png(panels_figure([pv], panel_size=self.panel_size),
                                         dpi=self.dpi)
        self.metrics.value = _metrics_html(pv, seconds)
        if pv["warnings"]:
            self._say("note: " + html.escape("; ".join(pv["warnings"])), kind="warning")
        else:
            self._say(f"settings valid; previewing {html.escape(s.name)}")
        return True

    def write(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write the current settings as a full profile to ``path`` (default: the path box).

        Reports the outcome in :attr:`message` and returns the path, or None when nothing was
        written (invalid settings, no path, or a write error)."""
        import html

        target = str(path) if path is not None else self.path.value.strip()
        if not target:
            self._say("<b>not written:</b> type the path of the params file to write",
                      kind="error")
            return None
        if not self.update():
            self._say(f"<b>not written:</b> {html.escape(self.error or '')}", kind="error")
            return None
        try:
            out = write_tuned_params(self.params, Path(os.path.expanduser(target)))
        except (ParamsError, InputError, OSError) as exc:
            self._say(f"<b>not written:</b> {html.escape(str(exc))}", kind="error")
            return None
        self._say(f"wrote {html.escape(str(out))}")
        return out

    def reset(self) -> None:
        """Put every control back to the loaded profile's value."""
        self._hold = True
        try:
            for k, v in settings_of(self.base_params).items():
                self.controls[k].value = v
        finally:
            self._hold = False
        self.update()


def build_tuner(records: Sequence, params: dict, *, write_path: str | os.PathLike | None = None,
                panel_size: float = 2.3, dpi: int = 72):
    """The interactive tuning UI: sliders, live preview, message area, write button.

    Parameters
    ----------
    records : sequence of TuningSample or SceneRecord
        Preview samples, or dataset records (read with :func:`load_samples`).
    params : dict
        The loaded profile: start values, and the base of the written profile.
    write_path : path, optional
        Initial content of the "params file" box (e.g. :func:`tuned_params_path`).
    panel_size, dpi : size of the preview panels (inches) and PNG resolution.

    Returns
    -------
    ipywidgets.VBox
        Display it in JupyterLab. ``widget.tuner`` is the :class:`Tuner` behind it: set
        ``widget.tuner.controls["autolabel.thin.upper.V"].value = 220`` and read
        ``widget.tuner.result``, ``widget.tuner.message.value``, or call
        ``widget.tuner.write(path)``.
    """
    records = list(records)
    if records and not isinstance(records[0], TuningSample):
        records = load_samples(records, params)
    return Tuner(records, params, write_path=write_path, panel_size=panel_size, dpi=dpi).widget
