"""The tuning notebook's figures: preview panels, filter steps, value histograms and
class-fraction bars."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, UNLABELLED_NAME
from seaice_utils.core.figures import (Panel, add_class_legend, class_fraction_bars,
                                       class_histograms, draw_panel, new_figure, panel_figure)
from seaice_utils.core.tiling import iter_tiles, pad_to_multiple
from seaice_utils.errors import InputError
from seaice_utils.labelling.autolabel import segment
from seaice_utils.labelling.cloudfilter import filter_steps, levels_to_rgb
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.tuning.previews import FRACTION_COLUMNS
from seaice_utils.tuning.samples import TuningSample
from seaice_utils.tuning.settings import CLASS_KEYS

__all__ = ["fraction_bars", "panels_figure", "tuner_figure", "filter_steps_figure", "value_histogram_figure"]


def fraction_bars(table, *, title: str | None = None):
    """Stacked class-fraction bars of a :func:`class_fraction_table` (one bar per row)."""
    names = {col: CLASS_NAMES.get(c, UNLABELLED_NAME) for col, c in FRACTION_COLUMNS.items()}
    bars = {f"{r.scene}: {r.labels}": {names[c]: getattr(r, c) for c in FRACTION_COLUMNS}
            for r in table.itertuples()}
    return class_fraction_bars(bars, title=title)


def _pct(x: float | None) -> str:
    return "" if x is None or np.isnan(x) else f"{100 * x:.1f} % agree"


def _preview_panels(pv: Mapping[str, Any]) -> list:
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
    if not previews:
        raise InputError("panels_figure needs at least one preview")
    return panel_figure([_preview_panels(pv) for pv in previews],
                        row_titles=[_row_title(pv) for pv in previews], panel_size=panel_size,
                        legend=True, suptitle=suptitle)


def tuner_figure(pv: Mapping[str, Any], *, panel_size: float = 2.1, fontsize: float = 11.5):
    """The tuner's preview of one sample, compact: image | filtered grey | reference over
    auto-label without | with the filter | class legend (with unlabelled, magenta).

    At 72 dpi a point is a pixel: the default is 3 panels of 151 px side by side (a column
    beside the tuner's controls) with 11.5 px titles.

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = _preview_panels(pv)
    truth = panels.pop() if pv.get("truth") is not None else None
    grid = [panels[0], panels[1], truth, panels[2], panels[3], None]
    title_h = 2.9 * fontsize / 72     # two lines of title
    fig = new_figure((3 * panel_size + 0.1, 2 * (panel_size + title_h) + 0.05))
    axes = fig.subplots(2, 3)
    for ax, panel in zip(axes.ravel(), grid):
        if panel is None:
            ax.axis("off")
            continue
        draw_panel(ax, panel)
        ax.set_title(panel.title, fontsize=fontsize)
    add_class_legend(axes[1][2], unlabelled=True, loc="center", ncol=1, fontsize=fontsize,
                     frameon=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - title_h / fig.get_figheight(),
                        wspace=0.04, hspace=title_h / panel_size)
    return fig


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
    """The filter's intermediate steps
    (:func:`~seaice_utils.labelling.cloudfilter.filter_steps`) on one sample, whole image, with
    the image and (if known) the reference and cloud mask.

    Returns
    -------
    matplotlib.figure.Figure
    """
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

