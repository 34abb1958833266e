"""Evaluation as the paper does it (Iqrah et al. 2024, Evaluation), and a little further: notebook 05.

What is measured, on the held-out test tiles of notebook 04's split (``<outputs>/models``):

* **Table IV** — pixel accuracy of U-Net-Man (trained on the reference labels) and U-Net-Auto
  (trained on the auto-labels of the filtered image) when fed the *original* image (its grey, or
  RGB for RGB models) and the *filtered* image (the filter's levels, as in training); plus
  precision, recall, F1 and IoU per class, their **macro** mean (unweighted over the classes
  present in the reference) and their **weighted** mean (each class weighted by its reference
  pixel count, scikit-learn's ``average="weighted"``). Pixel accuracy is pooled over all valid
  pixels of all test tiles (no-data excluded).
* **Table V** — the same on two strata of tiles: cloud/shadow cover above ``cloud_threshold``
  (10 %) and at or below it. The "overall" row is the pixel-weighted mean of the two strata, as
  the paper computes its overall figures (for accuracy it equals the pooled accuracy of Table IV).
  The cover of a tile comes from the tile index (known for the synthetic data: share of valid
  pixels under haze or shadow), from a user's CSV (``evaluation.cloud_file``), or is *estimated*
  (:func:`~seaice_utils.evaluation.cloud.estimate_cloud_fraction`) as the share of valid pixels
  whose class the filter changes (colour segmentation of the original image vs of the filtered
  image) — a proxy that measures what Table V is about, where the filter matters, and is honest
  about being one: notebook 05 compares it with the known cover of the synthetic data.
* **Auto-label quality** — accuracy, macro F1 and SSIM
  (:func:`seaice_utils.core.metrics.label_ssim`, per tile, mean weighted by valid pixels) of the
  auto-labels of the original and of the filtered image against the reference (the paper: SSIM
  89 % and 99.64 %).
* Confusion matrices in the paper's orientation (row = predicted class, column = reference class,
  each column sums to 100 %).

Everything is computed from per-tile confusion counts
(:func:`seaice_utils.core.metrics.tile_confusions`), so strata are sums of tiles and no metric
needs the maps twice. The cloud cover and strata are :mod:`seaice_utils.evaluation.cloud`'s;
figures are in :mod:`seaice_utils.evaluation.figures`. TensorFlow is imported only when models are
loaded.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, NODATA
from seaice_utils.core.metrics import (N_CLASSES, confusion_percent, label_ssim, metrics_row,
                                       report_from_counts, tile_confusions, tile_confusions_by_key)
from seaice_utils.evaluation.cloud import estimate_cloud_fraction, strata
from seaice_utils.evaluation.models import CONDITIONS, EvalModels, ModelEntry, TileSet
from seaice_utils.inference.model import input_from_layers, load_model
from seaice_utils.inference.stitch import predict_tiles
from seaice_utils.paper import PAPER_AUTOLABEL_SSIM, PAPER_TABLE4, PAPER_TABLE5
from seaice_utils.training.data import load_tiles

__all__ = ["predict_conditions", "table4", "per_class_table", "table5", "autolabel_counts",
           "autolabel_quality", "confusion_table"]


def predict_conditions(models: EvalModels | Mapping[str, ModelEntry], tiles: TileSet, *,
                       batch_size: int = 2, progress: bool = False,
                       loaded: Mapping[str, Any] | None = None
                       ) -> dict[tuple[str, str], np.ndarray]:
    """Class maps of every test tile by every model, fed the original and the filtered image.

    The original image is fed as its grey (one-channel models) or RGB; the filtered image as the
    filter's levels (stacked to three channels for RGB models). ``loaded`` may map model names
    to already loaded models (or callables).

    Returns
    -------
    dict (model name, "original" | "filtered") -> (N, t, t) uint8 ndarray
    """
    entries = models.models if isinstance(models, EvalModels) else models
    out = {}
    for name, m in entries.items():
        model = loaded[name] if loaded and name in loaded else load_model(m.path)[0]
        for cond in CONDITIONS:
            x = (input_from_layers(m.settings.input, levels=tiles.filtered) if cond == "filtered"
                 else input_from_layers(m.settings.input, rgb=tiles.rgb))
            pred = predict_tiles(model, x, batch_size=batch_size, progress=progress,
                                 desc=f"{name}, {cond}")
            pred[tiles.reference == NODATA] = NODATA
            out[(name, cond)] = pred
    return out


def table4(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Table IV: one row per model and input, pooled over the test tiles (pandas DataFrame)."""
    import pandas as pd

    rows = []
    for (name, cond), c in tile_confusions_by_key(preds, reference).items():
        rep = report_from_counts(c.sum(axis=0))
        rows.append({"model": name, "input": cond, **metrics_row(rep),
                     "n_tiles": int((c.sum(axis=(1, 2)) > 0).sum()),
                     "paper_accuracy_pct": PAPER_TABLE4.get((name, cond), np.nan)})
    return pd.DataFrame(rows)


def per_class_table(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Precision, recall, F1, IoU (percent) and support of each class, per model and input."""
    import pandas as pd

    rows = []
    for (name, cond), c in tile_confusions_by_key(preds, reference).items():
        rep = report_from_counts(c.sum(axis=0))
        for cls, v in rep["per_class"].items():
            rows.append({"model": name, "input": cond, "class": cls,
                         "precision_pct": 100 * v["precision"], "recall_pct": 100 * v["recall"],
                         "f1_pct": 100 * v["f1"], "iou_pct": 100 * v["iou"],
                         "support_pixels": v["support"]})
    return pd.DataFrame(rows)


def _strata_rows(counts: np.ndarray, masks: Mapping[str, np.ndarray], base: dict,
                 paper: Mapping[str, float] | None = None) -> list[dict]:
    rows, parts = [], []
    for i, (label, m) in enumerate(masks.items()):
        c = counts[m]
        rep = report_from_counts(c.sum(axis=0))
        row = {**base, "stratum": label, "n_tiles": int((c.sum(axis=(1, 2)) > 0).sum()),
               **metrics_row(rep)}
        if paper is not None:
            row["paper_accuracy_pct"] = paper.get("above" if i == 0 else "below", np.nan)
        rows.append(row)
        parts.append(row)
    # overall: pixel-weighted mean of the strata (the paper's way)
    n = np.array([r["n_pixels"] for r in parts], float)
    overall = {**base, "stratum": "overall (pixel-weighted mean of strata)",
               "n_tiles": sum(r["n_tiles"] for r in parts)}
    for k in parts[0]:
        if k.endswith("_pct") and k != "paper_accuracy_pct":
            v = np.array([r[k] for r in parts], float)
            ok = (n > 0) & np.isfinite(v)
            overall[k] = float((v[ok] * n[ok]).sum() / n[ok].sum()) if ok.any() else np.nan
    overall["n_pixels"] = int(n.sum())
    if paper is not None:
        overall["paper_accuracy_pct"] = paper.get("overall", np.nan)
    rows.append(overall)
    return rows


def table5(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray,
           cloud: np.ndarray, *, threshold: float = 0.10):
    """Table V: Table IV per cloud/shadow stratum, plus the pixel-weighted overall row."""
    import pandas as pd

    masks = strata(cloud, threshold)
    rows = []
    for (name, cond), c in tile_confusions_by_key(preds, reference).items():
        paper = {s: PAPER_TABLE5.get((name, cond, s), np.nan) for s in ("above", "below")}
        paper["overall"] = PAPER_TABLE4.get((name, cond), np.nan)
        rows += _strata_rows(c, masks, {"model": name, "input": cond}, paper)
    return pd.DataFrame(rows)


def autolabel_counts(tiles_root: str | os.PathLike, names: Sequence[str], *,
                     reference: str = "truth", ssim_window: int = 7, chunk: int = 64,
                     progress: bool = False) -> dict[str, Any]:
    """Per-tile confusion counts and SSIM of the auto-labels against the reference, streamed
    (memory independent of the number of tiles).

    Returns
    -------
    dict
        ``counts``: {"original", "filtered"} -> (N, 3, 3); ``ssim``: same keys -> (N,) SSIM per
        tile (NaN without valid pixels); ``valid``: (N,) valid reference pixels; ``estimate``:
        (N,) :func:`estimate_cloud_fraction`.
    """
    from tqdm import tqdm

    names = list(names)
    counts = {c: [] for c in CONDITIONS}
    ssim = {c: [] for c in CONDITIONS}
    valid, est = [], []
    for i in tqdm(range(0, len(names), chunk), desc="auto-labels vs reference",
                  disable=not progress, leave=False):
        part = names[i:i + chunk]
        ref = load_tiles(tiles_root, part, reference)
        layers = {"original": load_tiles(tiles_root, part, "auto_original"),
                  "filtered": load_tiles(tiles_root, part, "auto_filtered")}
        for cond, lab in layers.items():
            counts[cond].append(tile_confusions(lab, ref))
            for a, b in zip(lab, ref):
                m = (a != NODATA) & (b != NODATA)
                ssim[cond].append(label_ssim(a, b, win_size=ssim_window) if m.any() else np.nan)
        valid.append((ref != NODATA).sum(axis=(1, 2)))
        est.append(estimate_cloud_fraction(layers["original"], layers["filtered"]))
    return {"counts": {c: np.concatenate(v) for c, v in counts.items()},
            "ssim": {c: np.array(v, float) for c, v in ssim.items()},
            "valid": np.concatenate(valid), "estimate": np.concatenate(est), "names": names}


def autolabel_quality(al: Mapping[str, Any], cloud: np.ndarray | None = None, *,
                      threshold: float = 0.10):
    """Auto-label quality table: accuracy, macro F1 and SSIM (percent) against the reference, on
    the original and the filtered image, for all tiles and per cloud stratum.

    ``al`` is :func:`autolabel_counts`'s result; ``cloud`` the cover of the same tiles.
    """
    import pandas as pd

    masks = {"all tiles": np.ones(len(al["valid"]), bool)}
    if cloud is not None:
        masks.update(strata(cloud, threshold))
    rows = []
    for cond in CONDITIONS:
        for label, m in masks.items():
            c = al["counts"][cond][m]
            rep = report_from_counts(c.sum(axis=0))
            s, w = al["ssim"][cond][m], al["valid"][m].astype(float)
            ok = np.isfinite(s) & (w > 0)
            rows.append({"labels": f"auto-labels of the {cond} image", "input": cond,
                         "stratum": label, "n_tiles": int(ok.sum()),
                         "accuracy_pct": 100 * rep["accuracy"],
                         "macro_f1_pct": 100 * rep["macro"]["f1"],
                         "weighted_f1_pct": 100 * rep["weighted"]["f1"],
                         "ssim_pct": 100 * float((s[ok] * w[ok]).sum() / w[ok].sum())
                         if ok.any() else np.nan,
                         "n_pixels": rep["n_pixels"],
                         "paper_ssim_pct": PAPER_AUTOLABEL_SSIM[cond] if label == "all tiles"
                         else np.nan})
    return pd.DataFrame(rows)


def confusion_table(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Confusion matrices in long form: model, input, predicted, reference, pixels, percent of
    the reference class (each reference column sums to 100 %)."""
    import pandas as pd

    rows = []
    for (name, cond), c in tile_confusions_by_key(preds, reference).items():
        tot = c.sum(axis=0)
        pct = confusion_percent(tot)
        for a in range(N_CLASSES):
            for b in range(N_CLASSES):
                rows.append({"model": name, "input": cond, "predicted": CLASS_NAMES[a],
                             "reference": CLASS_NAMES[b], "pixels": int(tot[a, b]),
                             "percent_of_reference": float(pct[a, b])})
    return pd.DataFrame(rows)
