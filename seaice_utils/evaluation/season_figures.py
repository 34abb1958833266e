"""Figures of notebook 06 (a season of sea ice): area curves against the truth, observed and
cloudy shares per date, and the daily class maps.

Drawn without pyplot (:func:`seaice_utils.core.figures.new_figure`); each function returns a
figure. Colours are the paper's palette (red thick ice, blue thin ice, green open water; black
not observed, magenta cloud or unlabelled); hazy dates are marked ``h``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, to_palette
from seaice_utils.core.figures import CLASS_ORDER, class_colour, class_legend_handles, new_figure
from seaice_utils.core.mosaic import read_class_layer
from seaice_utils.evaluation.season import AREA_KEYS, has_truth

__all__ = ["season_areas_figure", "season_coverage_figure", "season_maps_figure"]

#: Half the width of the grey band that marks a flagged date on the area curves.
_BAND_HOURS = 30


def _curves():
    """(column stem, colour, label) of each curve: the classes, then total ice in black."""
    return [(AREA_KEYS[c], class_colour(c), CLASS_NAMES[c]) for c in CLASS_ORDER] + [
        ("ice", "k", "total ice")]


def season_areas_figure(errors, hazy: Mapping[str, bool]):
    """One panel per method of :func:`~seaice_utils.evaluation.season.season_error_table`:
    recovered (solid) and true (dashed) areas of each class and of total ice per date, flagged
    dates shaded grey, hazy dates marked ``h``. A table without truth
    (:func:`~seaice_utils.evaluation.season.season_area_table`) gives the recovered curves."""
    import pandas as pd
    from matplotlib.lines import Line2D

    methods = list(dict.fromkeys(errors["method"]))
    fig = new_figure((4.6 * len(methods), 3.8))
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    band = pd.Timedelta(hours=_BAND_HOURS)
    truth = "true_ice_km2" in errors
    for ax, name in zip(axes, methods):
        got = errors[errors["method"] == name]
        x = pd.to_datetime(got["date"])
        for key, colour, label in _curves():
            ax.plot(x, got[f"{key}_km2"], "-o", ms=3, color=colour, label=label)
            if truth:
                ax.plot(x, got[f"true_{key}_km2"], "--", color=colour, lw=1.2, alpha=0.8)
        for d, q in zip(got["date"], got["quality"]):
            if q != "ok":
                ax.axvspan(pd.Timestamp(d) - band, pd.Timestamp(d) + band, color="0.85", zorder=0)
        for d in (d for d, h in hazy.items() if h):
            ax.annotate("h", (pd.Timestamp(d), 0), xytext=(0, 2), textcoords="offset points",
                        xycoords=("data", "axes fraction"), ha="center", fontsize=8, color="0.3")
        ax.set_title(name, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes[0].set_ylabel("area over the classified pixels (km²)")
    handles, labels = axes[0].get_legend_handles_labels()
    if truth:
        handles.append(Line2D([], [], color="0.4", ls="--"))
        labels.append("truth (dashed)")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("A season of sea ice: recovered (solid) and true (dashed) areas per date"
                 if truth else "A season of sea ice: recovered areas per date (no truth)")
    fig.tight_layout()
    return fig


def season_coverage_figure(rows, *, min_observed_share: float):
    """Observed share of the region per date (blue ``ok``, red flagged, labelled ``low`` or
    ``cloudy``) with the cloud share on top (grey) and the ``min_observed_share`` line.

    ``rows``: the rows of a run's ``season_areas.csv`` (dicts or a DataFrame with ``date``,
    ``observed_share``, ``cloud_share`` and ``quality``).
    """
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = pd.DataFrame(rows)
    flagged = rows["quality"] != "ok"
    fig = new_figure((9.0, 3.2))
    ax = fig.subplots()
    x = pd.to_datetime(rows["date"])
    ax.bar(x, rows["observed_share"], width=3, color=np.where(flagged, "tab:red", "tab:blue"))
    ax.bar(x, rows["cloud_share"], width=3, bottom=rows["observed_share"], color="0.6")
    ax.axhline(min_observed_share, color="k", ls="--", lw=1)
    for xi, s, q in zip(x, rows["observed_share"], rows["quality"]):
        if q != "ok":
            ax.annotate("cloudy" if q == "cloudy" else "low", (xi, s), xytext=(0, -10),
                        textcoords="offset points", ha="center", fontsize=7, color="white")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of the region")
    ax.legend([Patch(color="tab:blue"), Patch(color="tab:red"), Patch(color="0.6"),
               Line2D([], [], color="k", ls="--", lw=1)],
              ["observed, ok", "observed, flagged", "cloud",
               f"{min_observed_share:g}: flagged below"],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.set_title(f"observed and cloudy shares per date ({int(flagged.sum())} of {len(rows)} "
                 f"dates flagged)", fontsize=10)
    fig.tight_layout()
    return fig


def season_maps_figure(season, run_dirs: Mapping[str, Path], hazy: Mapping[str, bool]):
    """Small multiples of the daily class maps: the truth of the whole region (first row, when
    the season has one), then one row per run (``<run>/dates/<date>_classes.tif``), one column
    per date (``MM-DD``, ``h`` when hazy)."""
    names = [d.isoformat() for d in season.dates]
    rows = [("truth", [Path(season.root) / "truth" / f"{d}.tif" for d in names])
            ] if has_truth(season) else []
    rows += [(name, [Path(out) / "dates" / f"{d}_classes.tif" for d in names])
             for name, out in run_dirs.items()]
    fig = new_figure((1.25 * len(names), 1.4 * len(rows) + 0.5))
    axes = fig.subplots(len(rows), len(names), squeeze=False)
    for r, (label, paths) in enumerate(rows):
        for c, (d, path) in enumerate(zip(names, paths)):
            axes[r, c].imshow(to_palette(read_class_layer(path).classes), interpolation="nearest")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(d[5:] + (" h" if hazy[d] else ""), fontsize=8)
        axes[r, 0].set_ylabel(label.replace(", ", ",\n"), fontsize=8)
    legend = class_legend_handles(unlabelled=True, nodata_label="not observed")
    legend[len(CLASS_ORDER)].set_label("cloud")
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("daily class maps (MM-DD; h: hazy)", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig
