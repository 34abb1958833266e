"""Evaluation metrics for class maps; every function ignores no-data (255 in either map).

Confusion matrices follow the paper's orientation: element (row A, column B) is the share of
class-B reference pixels predicted as A, so each column sums to 100 %.

Averages: *macro* is the unweighted mean over classes present in the reference; *weighted* weights
each class by its reference pixel count (scikit-learn's ``average="weighted"``).

Stacks of tiles are counted per tile (:func:`tile_confusions`), so that strata of tiles are sums
of counts and no metric needs the maps twice (:func:`report_from_counts`, :func:`metrics_row`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from seaice_utils.core.classes import CLASS_CODES, CLASS_NAMES, N_CLASSES, NODATA, UNLABELLED
from seaice_utils.errors import InputError

__all__ = ["N_CLASSES", "valid_mask", "confusion_counts", "confusion_percent", "pixel_accuracy",
           "tile_confusions", "tile_confusions_by_key", "classification_report",
           "report_from_counts", "metrics_row", "label_ssim"]

#: Grey-level step between classes in :func:`label_ssim` (classes spread over 0..255).
_SSIM_STEP = 255.0 / (N_CLASSES - 1)


def _check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    if pred.shape != ref.shape:
        raise InputError(f"prediction and reference shapes differ: {pred.shape} vs {ref.shape}")
    for what, a in (("prediction", pred), ("reference", ref)):
        if not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"{what} must be an integer class map (got {a.dtype})")


def valid_mask(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Pixels that are data and labelled in both maps (no-data 255 and unlabelled 254, which
    auto-labels have only with ``autolabel.allow_gaps``, are left out of every metric; the
    sidecars count unlabelled pixels apart).

    >>> valid_mask(np.array([0, 254, 1, 255]), np.array([0, 1, 254, 2])).tolist()
    [True, False, False, False]
    """
    _check_pair(pred, ref)
    return (pred != NODATA) & (ref != NODATA) & (pred != UNLABELLED) & (ref != UNLABELLED)


def confusion_counts(pred: np.ndarray, ref: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Counts C[a, b] = number of pixels of reference class b predicted as a (no-data ignored).

    >>> import numpy as np
    >>> confusion_counts(np.array([0, 1, 1, 255]), np.array([0, 0, 1, 2])).tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    m = valid_mask(pred, ref)
    p = pred[m].astype(np.int64)
    r = ref[m].astype(np.int64)
    if p.size and (p.max() >= n_classes or r.max() >= n_classes):
        raise InputError(f"class maps hold values outside 0..{n_classes - 1} and {NODATA}")
    return np.bincount(p * n_classes + r, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def tile_confusions(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Confusion counts of every tile, paper orientation: C[i, a, b] = pixels of tile i with
    reference class b predicted as a (no-data in either map left out).

    Parameters
    ----------
    pred, ref : (N, H, W) uint8 ndarray

    Returns
    -------
    (N, 3, 3) int64 ndarray

    >>> tile_confusions(np.array([[[0, 1, 1, 255]]]), np.array([[[0, 0, 1, 2]]]))[0].tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise InputError(f"tile_confusions takes two (N, H, W) maps of one shape (got {pred.shape} "
                         f"and {ref.shape})")
    n = pred.shape[0]
    valid = (pred != NODATA) & (ref != NODATA)
    p = pred.astype(np.int64)
    r = ref.astype(np.int64)
    if (p[valid] >= N_CLASSES).any() or (r[valid] >= N_CLASSES).any():
        raise InputError(f"class maps hold values outside 0..{N_CLASSES - 1} and {NODATA}")
    tile = np.broadcast_to(np.arange(n)[:, None, None], pred.shape)
    idx = (tile * N_CLASSES * N_CLASSES + p * N_CLASSES + r)[valid]
    return np.bincount(idx, minlength=n * N_CLASSES ** 2).reshape(n, N_CLASSES, N_CLASSES)


def tile_confusions_by_key(preds: Mapping, ref: np.ndarray) -> dict:
    """:func:`tile_confusions` of every map of ``preds`` against ``ref``, under the same keys."""
    return {k: tile_confusions(p, ref) for k, p in preds.items()}


def confusion_percent(counts: np.ndarray) -> np.ndarray:
    """Column-normalised confusion matrix in percent (columns with no pixels are NaN)."""
    col = counts.sum(axis=0, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(col > 0, 100.0 * counts / col, np.nan)


def pixel_accuracy(pred: np.ndarray, ref: np.ndarray) -> float:
    """Share of valid pixels whose class agrees (NaN when no pixel is valid)."""
    m = valid_mask(pred, ref)
    n = int(m.sum())
    return float((pred[m] == ref[m]).sum()) / n if n else float("nan")


def classification_report(pred: np.ndarray, ref: np.ndarray) -> dict:
    """Accuracy, per-class / macro / weighted precision, recall, F1 and IoU.

    Returns
    -------
    dict
        ``accuracy``, ``n_pixels``, ``per_class`` {name: {precision, recall, f1, iou, support}},
        ``macro`` and ``weighted`` {precision, recall, f1, iou}, ``confusion`` (counts, list of
        lists, paper orientation).
    """
    return report_from_counts(confusion_counts(pred, ref))


def report_from_counts(counts: np.ndarray) -> dict:
    """:func:`classification_report` from confusion counts (paper orientation), e.g. summed
    over many tiles."""
    c = np.asarray(counts, np.int64)
    tp = np.diag(c).astype(float)
    predicted = c.sum(axis=1).astype(float)
    support = c.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(precision + np.nan_to_num(recall) > 0,
                      2 * precision * recall / (precision + recall), 0.0)
        union = predicted + support - tp
        iou = np.where(union > 0, tp / union, np.nan)
    present = support > 0
    per_class = {CLASS_NAMES[k]: {"precision": float(precision[k]), "recall": float(recall[k]),
                                  "f1": float(f1[k]), "iou": float(iou[k]),
                                  "support": int(support[k])} for k in CLASS_CODES}
    total = support.sum()

    def avg(v: np.ndarray, weighted: bool) -> float:
        if not present.any():
            return float("nan")
        if weighted:
            return float((v[present] * support[present]).sum() / total)
        return float(v[present].mean())

    metrics = {"precision": precision, "recall": recall, "f1": f1, "iou": iou}
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "n_pixels": int(total),
        "per_class": per_class,
        "macro": {k: avg(v, False) for k, v in metrics.items()},
        "weighted": {k: avg(v, True) for k, v in metrics.items()},
        "confusion": c.tolist(),
    }


def metrics_row(report: Mapping) -> dict[str, float]:
    """Flat table columns (percent) of a report: accuracy, macro and pixel-weighted P/R/F1/IoU."""
    row = {"accuracy_pct": 100 * report["accuracy"]}
    for avg in ("macro", "weighted"):
        for k in ("precision", "recall", "f1", "iou"):
            row[f"{avg}_{k}_pct"] = 100 * report[avg][k]
    row["n_pixels"] = report["n_pixels"]
    return row


def label_ssim(pred: np.ndarray, ref: np.ndarray, *, win_size: int = 7) -> float:
    """Structural similarity (SSIM) between two class maps, averaged over valid pixels.

    Classes are mapped to grey levels 0, 127.5, 255 (evenly over the data range 255) and
    scikit-image's SSIM map is computed with a ``win_size`` Gaussian-free uniform window; its mean
    over pixels valid in both maps is returned (no-data pixels are set equal in both maps so they
    add no structure).
    """
    from skimage.metrics import structural_similarity

    m = valid_mask(pred, ref)
    if not m.any():
        return float("nan")
    a = np.where(m, pred, 0).astype(np.float64) * _SSIM_STEP
    b = np.where(m, ref, 0).astype(np.float64) * _SSIM_STEP
    if min(a.shape) < win_size:
        raise InputError(f"SSIM needs maps of at least {win_size} px per side (got {a.shape})")
    _, smap = structural_similarity(a, b, data_range=255.0, win_size=win_size, full=True)
    return float(smap[m].mean())
