"""Previews of a profile on tuning samples: filtered image, auto-labels without and with the
filter, class fractions, agreement with the reference, and the class-fraction table.

Class fractions
---------------
Fractions are shares of the data pixels (not no-data) of a scene: ``open_water``, ``thin_ice``,
``thick_ice`` and ``unlabelled`` (pixels whose colour falls in no HSV range: code 254 with
``autolabel.allow_gaps``, 255 on a data pixel from thresholds built without it); they sum to 1.
*Agreement* is the share of pixels with a reference class whose auto-label equals it; unlabelled
pixels count as disagreeing.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_KEYS, NODATA, UNLABELLED, UNLABELLED_NAME
from seaice_utils.errors import InputError
from seaice_utils.labelling.autolabel import segment
from seaice_utils.labelling.cloudfilter import levels_to_rgb, thin_cloud_shadow_filter
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.params import defaults
from seaice_utils.tuning.samples import TuningSample
from seaice_utils.tuning.settings import threshold_warnings

__all__ = ["VARIANTS", "FRACTION_COLUMNS", "class_shares", "agreement", "preview",
           "preview_all", "class_fraction_table"]

#: The three label sets a preview compares.
VARIANTS = ("no filter", "filter", "reference")
#: Columns of the class-fraction table (in this order), and their class values.
FRACTION_COLUMNS = {**{key: c for c, key in CLASS_KEYS.items()}, UNLABELLED_NAME: UNLABELLED}


def class_shares(classes: np.ndarray, nodata: np.ndarray | None = None) -> dict[str, float]:
    """Shares of the data pixels in each class and unlabelled (see :data:`FRACTION_COLUMNS`).

    Parameters
    ----------
    classes : (H, W) uint8 ndarray
    nodata : (H, W) bool ndarray, optional
        Pixels left out; 254, and 255 elsewhere, count as ``unlabelled``.

    Returns
    -------
    dict
        ``open_water``, ``thin_ice``, ``thick_ice``, ``unlabelled`` (sum 1; NaN without data).

    >>> import numpy as np
    >>> s = class_shares(np.array([[0, 1, 1, 255]], np.uint8), np.array([[0, 0, 0, 1]], bool))
    >>> {k: round(v, 3) for k, v in s.items()}
    {'open_water': 0.333, 'thin_ice': 0.667, 'thick_ice': 0.0, 'unlabelled': 0.0}
    >>> s = class_shares(np.array([[0, 1, 254, 255]], np.uint8), np.array([[0, 0, 0, 1]], bool))
    >>> {k: round(v, 3) for k, v in s.items()}
    {'open_water': 0.333, 'thin_ice': 0.333, 'thick_ice': 0.0, 'unlabelled': 0.333}
    """
    data = np.ones(classes.shape, bool) if nodata is None else ~nodata
    n = int(data.sum())
    if n == 0:
        return {k: float("nan") for k in FRACTION_COLUMNS}
    counts = np.bincount(classes[data].ravel(), minlength=256)
    counts[UNLABELLED] += counts[NODATA]          # 255 on a data pixel: in no range
    return {k: float(counts[v]) / n for k, v in FRACTION_COLUMNS.items()}


def agreement(labels: np.ndarray, truth: np.ndarray, nodata: np.ndarray | None = None) -> float:
    """Share of pixels with a reference class (not 255, not no-data) whose label equals it.

    Unlike :func:`seaice_utils.core.metrics.pixel_accuracy`, a pixel the labeller leaves
    unlabelled (254) counts as a disagreement, so thresholds with gaps cannot look better than
    they are.

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
    >>> from seaice_utils.tuning.settings import apply_settings
    >>> img = np.full((64, 64, 3), 120, np.uint8); img[:, :16] = 10; img[:, 48:] = 240
    >>> truth = np.ones((64, 64), np.uint8); truth[:, :16] = 0; truth[:, 48:] = 2
    >>> p = apply_settings(defaults(), {"filter.median_kernel": 31})
    >>> out = preview(img, None, truth, p)
    >>> out["fractions"]["no filter"]["thin_ice"], out["agreement"]["no filter"]
    (0.5, 1.0)
    """
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
    from tqdm import tqdm   # text, not a notebook widget: nothing dead in a saved notebook

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

