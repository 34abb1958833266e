"""Figures of notebook 05: confusion matrices, example tiles, whole scenes, the real sample.

Drawn without pyplot (:mod:`seaice_utils.core.figures`); each function returns a figure.
Confusion matrices are in the paper's orientation (row = predicted class, column = reference
class, each column sums to 100 %).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES
from seaice_utils.core.figures import CLASS_ORDER, Panel, new_figure, panel_figure
from seaice_utils.core.metrics import (N_CLASSES, confusion_percent, pixel_accuracy,
                                       tile_confusions_by_key)
from seaice_utils.evaluation.models import MODEL_NAMES, TileSet

__all__ = ["confusion_figure", "pick_examples", "autolabel_examples_figure",
           "predictions_figure", "scene_figure", "real_sample_figure"]


def confusion_figure(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Confusion matrices of every model (rows of panels) and input (columns), in percent.

    Paper orientation: row = predicted class, column = reference class, each column sums to
    100 %. Classes in the order thick ice, thin ice, open water.
    """
    counts = {k: c.sum(axis=0) for k, c in tile_confusions_by_key(preds, reference).items()}
    names = list(dict.fromkeys(k[0] for k in counts))
    conds = list(dict.fromkeys(k[1] for k in counts))
    fig = new_figure((3.4 * len(conds) + 0.8, 2.9 * len(names) + 0.4))
    axes = fig.subplots(len(names), len(conds), squeeze=False)
    order = list(CLASS_ORDER)
    labels = [CLASS_NAMES[c].replace(" ", "\n") for c in order]
    im = None
    for i, name in enumerate(names):
        for j, cond in enumerate(conds):
            ax = axes[i][j]
            c = counts.get((name, cond))
            if c is None:
                ax.axis("off")
                continue
            pct = confusion_percent(c)[np.ix_(order, order)]
            im = ax.imshow(np.nan_to_num(pct), cmap="Blues", vmin=0, vmax=100)
            for a in range(N_CLASSES):
                for b in range(N_CLASSES):
                    v = pct[a, b]
                    ax.text(b, a, "n/a" if np.isnan(v) else f"{v:.1f}%", ha="center",
                            va="center", fontsize=8, color="white" if v > 60 else "black")
            ax.set_xticks(range(N_CLASSES))
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_yticks(range(N_CLASSES))
            ax.set_yticklabels(labels, fontsize=7)
            acc = 100 * np.trace(c) / c.sum() if c.sum() else np.nan
            ax.set_title(f"{name}, {cond} image\naccuracy {acc:.2f}%", fontsize=9)
            if i == len(names) - 1:
                ax.set_xlabel("reference class", fontsize=8)
            if j == 0:
                ax.set_ylabel("predicted class", fontsize=8)
    fig.subplots_adjust(hspace=0.3, wspace=0.35, left=0.12, right=0.84, bottom=0.1, top=0.92)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="% of reference class")
    return fig


# ------------------------------------------------------------------------------------------
# example figures
# ------------------------------------------------------------------------------------------

def pick_examples(cloud: np.ndarray, valid_fraction: np.ndarray, k: int = 3) -> list[int]:
    """Indices of ``k`` example tiles with at least 90 % valid pixels whose covers spread from
    the cloudiest to the clearest (deterministic): for ``k`` cover values evenly spaced between
    the largest and the smallest, the tile closest to each, cloudiest first.

    >>> pick_examples(np.array([0.1, 0.9, 0.5, 0.0]), np.ones(4), 3)
    [1, 2, 3]
    """
    c = np.nan_to_num(np.asarray(cloud, float), nan=0.0)
    good = np.flatnonzero(np.asarray(valid_fraction) >= 0.9)
    if good.size == 0:
        good = np.argsort(-np.asarray(valid_fraction), kind="stable")[:max(k, 1)]
    order = good[np.argsort(-c[good], kind="stable")]
    if len(order) <= k:
        return order.tolist()
    picked: list[int] = []
    for target in np.linspace(c[order[0]], c[order[-1]], k):
        free = [i for i in order if i not in picked]
        picked.append(int(min(free, key=lambda i: (abs(c[i] - target), -c[i]))))
    return sorted(picked, key=lambda i: -c[i])


def autolabel_examples_figure(tiles: TileSet, idx: Sequence[int], cloud: np.ndarray | None = None):
    """Rows of image | filtered | auto-label (original) | auto-label (filtered) | reference."""
    rows, titles = [], []
    for i in idx:
        ref = tiles.reference[i]
        ao, af = tiles.auto_original[i], tiles.auto_filtered[i]
        rows.append([Panel(tiles.rgb[i], "rgb", "image"),
                     Panel(tiles.filtered[i], "grey", "filtered"),
                     Panel(ao, "labels",
                           f"auto-label, original\n{100 * pixel_accuracy(ao, ref):.1f}% agree"),
                     Panel(af, "labels",
                           f"auto-label, filtered\n{100 * pixel_accuracy(af, ref):.1f}% agree"),
                     Panel(ref, "labels", "reference")])
        cov = "" if cloud is None or not np.isfinite(cloud[i]) else f"\n{100 * cloud[i]:.0f}% cloud"
        titles.append(f"{tiles.names[i]}{cov}")
    return panel_figure(rows, row_titles=titles, panel_size=2.3)


def predictions_figure(tiles: TileSet, preds: Mapping[tuple[str, str], np.ndarray],
                       idx: Sequence[int], cloud: np.ndarray | None = None):
    """Rows of image | filtered | reference | each model's prediction (filtered, then original)."""
    names = list(MODEL_NAMES.values())
    keys = sorted(preds, key=lambda k: (k[1] != "filtered",
                                        names.index(k[0]) if k[0] in names else 99, k[0]))
    rows, titles = [], []
    for i in idx:
        ref = tiles.reference[i]
        row = [Panel(tiles.rgb[i], "rgb", "image"), Panel(tiles.filtered[i], "grey", "filtered"),
               Panel(ref, "labels", "reference")]
        for name, cond in keys:
            p = preds[(name, cond)][i]
            row.append(Panel(p, "labels", f"{name}, {cond}\n{100 * pixel_accuracy(p, ref):.1f}%"))
        rows.append(row)
        cov = "" if cloud is None or not np.isfinite(cloud[i]) else f"\n{100 * cloud[i]:.0f}% cloud"
        titles.append(f"{tiles.names[i]}{cov}")
    return panel_figure(rows, row_titles=titles, panel_size=2.1)


def scene_figure(maps: Mapping[str, Any], scene: str, *, tile: int = 256, model_name: str = ""):
    """image | prediction per overlap | where the first two differ | reference.

    The plain tile grid (multiples of ``tile``) is marked by ticks on the axes: without overlap
    the differences line up on it (seams), with blended overlap they do not.
    """
    m = maps[scene]
    ovs = sorted(k for k in m if isinstance(k, int))
    row = [Panel(m["rgb"], "rgb", scene)]
    for ov in ovs:
        acc = f", {100 * pixel_accuracy(m[ov], m['truth']):.1f}%" if m["truth"] is not None else ""
        row.append(Panel(m[ov], "labels", f"{model_name}\noverlap {ov} px{acc}"))
    if len(ovs) >= 2:
        diff = (m[ovs[0]] != m[ovs[-1]])
        row.append(Panel(diff, "mask", f"differ: {100 * diff.mean():.2f}% of pixels"))
    if m["truth"] is not None:
        row.append(Panel(m["truth"], "labels", "reference"))
    fig = panel_figure([row], panel_size=3.3)
    h, w = m["rgb"].shape[:2]
    for ax in fig.axes[:len(row)]:
        ax.set_xticks(range(tile, w, tile))
        ax.set_yticks(range(tile, h, tile))
        ax.tick_params(length=4, labelbottom=False, labelleft=False)
    return fig


def real_sample_figure(rs: Mapping[str, Any], *, model_name: str = "U-Net-Auto"):
    """image | filtered | auto-labels | the model's map of a real scene."""
    return panel_figure([[Panel(rs["rgb"], "rgb", f"{rs['name']}"),
                          Panel(rs["levels"], "grey", "filtered"),
                          Panel(rs["auto"], "labels", "auto-labels (filter + HSV)"),
                          Panel(rs["pred"], "labels",
                                f"{model_name}\n{rs['agreement_pct']:.1f}% agree with "
                                "auto-labels")]],
                        panel_size=3.6, suptitle="real scene: no reference labels, agreement only")
