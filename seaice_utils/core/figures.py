"""Shared plotting helpers: image / grey / class-map panels in the paper's palette, class-fraction
bars and per-class histograms.

Every function returns (or draws on) a :class:`matplotlib.figure.Figure` made without pyplot, so
no global figure state builds up in long notebook sessions or test runs; save it with
:func:`seaice_utils.report.save_figure` and display the saved PNG, or turn it into PNG bytes with
:func:`figure_to_png`. matplotlib is imported inside the functions, so ``import
seaice_utils.core.figures`` costs nothing.

Colours are the paper's label palette (:data:`seaice_utils.core.classes.PALETTE`): red thick ice,
blue thin ice, green open water, black no-data (and pixels in no HSV range).

>>> import numpy as np
>>> from seaice_utils.core.figures import Panel, panel_figure, figure_to_png
>>> classes = np.array([[0, 1], [2, 255]], np.uint8)
>>> fig = panel_figure([[Panel(classes, "labels", "a class map")]], panel_size=1.0)
>>> figure_to_png(fig)[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import (CLASS_NAMES, DISPLAY_ORDER, NODATA, NODATA_NAME, PALETTE,
                                       UNLABELLED, UNLABELLED_NAME, to_palette)
from seaice_utils.errors import InputError

__all__ = ["Panel", "PANEL_KINDS", "CLASS_ORDER", "class_colour", "class_legend_handles",
           "add_class_legend", "new_figure", "draw_panel", "panel_figure", "class_fraction_bars",
           "class_histograms", "figure_to_png"]

PANEL_KINDS = ("rgb", "grey", "labels", "mask")
#: Order in which classes are drawn (bars, histograms, legends): thick, thin, water.
CLASS_ORDER = DISPLAY_ORDER
_NODATA_LABEL = NODATA_NAME


@dataclass(frozen=True)
class Panel:
    """One image panel of a figure.

    Parameters
    ----------
    array : (H, W, 3) uint8 or (H, W) ndarray
        ``rgb``: an RGB image; ``grey``: a single-band image shown with a grey colour map (uint8
        on 0..255, other dtypes stretched to their min..max); ``labels``: a uint8 class map (0, 1,
        2, 255) shown in the paper's palette; ``mask``: a boolean (or 0/non-zero) mask in
        black/white.
    kind : {"rgb", "grey", "labels", "mask"}
        How to draw it; None picks ``rgb`` for 3-D arrays, ``mask`` for bool, ``grey`` otherwise
        (class maps must say ``labels``).
    title : str
    """

    array: np.ndarray
    kind: str | None = None
    title: str = ""

    def resolved_kind(self) -> str:
        a = np.asarray(self.array)
        kind = self.kind or ("rgb" if a.ndim == 3 else "mask" if a.dtype == bool else "grey")
        if kind not in PANEL_KINDS:
            raise InputError(f"panel kind must be one of {', '.join(PANEL_KINDS)} (got {kind!r})")
        if kind == "rgb" and (a.ndim != 3 or a.shape[2] != 3):
            raise InputError(f"an rgb panel needs an (H, W, 3) array (got shape {a.shape})")
        if kind != "rgb" and a.ndim != 2:
            raise InputError(f"a {kind} panel needs an (H, W) array (got shape {a.shape})")
        return kind


def class_colour(cls: int) -> tuple[float, float, float]:
    """Matplotlib colour (RGB in 0..1) of a class value (0, 1, 2 or 255) in the paper's palette.

    >>> class_colour(2)
    (1.0, 0.0, 0.0)
    """
    if cls not in PALETTE:
        raise InputError(f"no palette colour for class {cls!r} (known: {sorted(PALETTE)})")
    return tuple(c / 255.0 for c in PALETTE[cls])  # type: ignore[return-value]


def class_legend_handles(*, nodata: bool = True, nodata_label: str = _NODATA_LABEL,
                         unlabelled: bool = False) -> list:
    """Legend patches for thick ice, thin ice, open water (and unlabelled, no-data), in
    :data:`CLASS_ORDER`."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=class_colour(c), edgecolor="0.3", label=CLASS_NAMES[c])
               for c in CLASS_ORDER]
    if unlabelled:
        handles.append(Patch(facecolor=class_colour(UNLABELLED), edgecolor="0.3",
                             label=UNLABELLED_NAME))
    if nodata:
        handles.append(Patch(facecolor=class_colour(NODATA), edgecolor="0.3", label=nodata_label))
    return handles


def add_class_legend(target, *, nodata: bool = True, nodata_label: str = _NODATA_LABEL,
                     unlabelled: bool = False, loc: str = "lower center",
                     ncol: int | None = None, **kwargs: Any):
    """Add the class legend to a Figure (below the panels by default) or an Axes; with
    ``unlabelled``, also the unlabelled code's colour (thresholds with allowed gaps).

    Returns the :class:`matplotlib.legend.Legend`.
    """
    handles = class_legend_handles(nodata=nodata, nodata_label=nodata_label,
                                   unlabelled=unlabelled)
    ncol = ncol or len(handles)
    if hasattr(target, "add_subplot"):  # a Figure
        kwargs.setdefault("bbox_to_anchor", (0.5, 0.0))
        return target.legend(handles=handles, loc=loc, ncol=ncol, frameon=False, **kwargs)
    return target.legend(handles=handles, loc=loc, ncol=ncol, **kwargs)


def new_figure(figsize: tuple[float, float], **kwargs: Any):
    """A :class:`~matplotlib.figure.Figure` not registered with pyplot (nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, **kwargs)


def draw_panel(ax, panel: Panel) -> None:
    """Draw one :class:`Panel` on an Axes (no ticks, title on top)."""
    kind = panel.resolved_kind()
    a = np.asarray(panel.array)
    if kind == "rgb":
        if a.dtype != np.uint8:
            raise InputError(f"an rgb panel must be uint8 (got {a.dtype})")
        ax.imshow(a, interpolation="nearest")
    elif kind == "labels":
        if a.dtype != np.uint8:
            raise InputError(f"a labels panel must be a uint8 class map (got {a.dtype})")
        ax.imshow(to_palette(a), interpolation="nearest")
    elif kind == "mask":
        ax.imshow(a.astype(bool), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        if a.dtype == np.uint8:
            vmin, vmax = 0, 255
        else:
            finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
            vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0, 1)
        ax.imshow(a, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if panel.title:
        ax.set_title(panel.title, fontsize=9)


def panel_figure(rows: Sequence[Sequence[Panel | None]], *, row_titles: Sequence[str] | None = None,
                 panel_size: float = 2.6, legend: bool | None = None, suptitle: str | None = None):
    """A grid of image panels, one list of panels per row, with the class legend below.

    Parameters
    ----------
    rows : sequence of sequences of Panel or None
        Rows may differ in length; None (or a missing entry) leaves the cell empty.
    row_titles : sequence of str, optional
        Written to the left of each row.
    panel_size : float
        Side of one panel in inches.
    legend : bool, optional
        Add the class legend; by default when any panel is a ``labels`` panel.
    suptitle : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = [list(r) for r in rows]
    if not rows or not any(rows):
        raise InputError("panel_figure needs at least one panel")
    if row_titles is not None and len(row_titles) != len(rows):
        raise InputError(f"row_titles has {len(row_titles)} entries for {len(rows)} rows")
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    has_labels = any(p is not None and p.resolved_kind() == "labels" for r in rows for p in r)
    legend = has_labels if legend is None else legend
    extra = 0.45 if legend else 0.0
    fig = new_figure((panel_size * n_cols + (0.3 if row_titles else 0.0),
                      (panel_size + 0.35) * n_rows + extra + (0.3 if suptitle else 0.0)))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            panel = row[j] if j < len(row) else None
            if panel is None:
                ax.axis("off")
                continue
            draw_panel(ax, panel)
        if row_titles:
            axes[i][0].set_ylabel(row_titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    bottom = extra / fig.get_figheight() if legend else 0.02
    fig.subplots_adjust(left=0.03 if row_titles else 0.01, right=0.99, bottom=bottom + 0.01,
                        top=1 - (0.35 + (0.3 if suptitle else 0.0)) / fig.get_figheight(),
                        wspace=0.04, hspace=0.25)
    if legend:
        unlabelled = any(p is not None and p.resolved_kind() == "labels"
                         and bool(np.any(np.asarray(p.array) == UNLABELLED))
                         for r in rows for p in r)
        add_class_legend(fig, unlabelled=unlabelled)
    return fig


def _fraction_columns(fractions: Mapping[str, Mapping[str, float]]) -> list[str]:
    names = [CLASS_NAMES[c] for c in CLASS_ORDER]
    extra: list[str] = []
    for row in fractions.values():
        extra += [k for k in row if k not in names and k not in extra]
    return names + extra


def class_fraction_bars(fractions: Mapping[str, Mapping[str, float]], *, ax=None,
                        title: str | None = None, annotate: float = 0.06):
    """Stacked horizontal bars of class fractions, one bar per entry, in the paper's palette.

    Parameters
    ----------
    fractions : mapping of str to mapping of str to float
        ``{bar label: {class name: fraction}}``; class names as in
        :data:`seaice_utils.core.classes.CLASS_NAMES` (``"thick ice"``, ``"thin ice"``, ``"open
        water"``). ``"unlabelled"`` is stacked after them in its colour (magenta), any other key in
        black. NaN counts as 0. Bars are drawn top to bottom in the mapping's order.
    ax : matplotlib Axes, optional
        Draw into it; by default a new figure is made.
    title : str, optional
    annotate : float
        Write the percentage inside segments at least this wide (0 disables).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the bars (``ax.figure`` when an Axes was given).
    """
    if not fractions:
        raise InputError("class_fraction_bars needs at least one bar")
    labels = list(fractions)
    cols = _fraction_columns(fractions)
    by_name = {CLASS_NAMES[c]: c for c in CLASS_ORDER}
    by_name[UNLABELLED_NAME] = UNLABELLED
    if ax is None:
        fig = new_figure((8.0, 0.4 * len(labels) + 1.0))
        ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for col in cols:
        vals = np.array([float(fractions[lb].get(col, 0.0)) for lb in labels])
        vals = np.nan_to_num(vals, nan=0.0)
        colour = class_colour(by_name.get(col, NODATA))
        ax.barh(y, vals, left=left, color=colour, edgecolor="white", linewidth=0.5, label=col,
                height=0.7)
        if annotate:
            for yi, l0, v in zip(y, left, vals):
                if v >= annotate:
                    ax.text(l0 + v / 2, yi, f"{100 * v:.0f}%", ha="center", va="center",
                            fontsize=7, color="white")
        left += vals
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, max(1.0, float(left.max())))
    ax.set_xlabel("fraction of pixels")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig = ax.figure
    fig.tight_layout()
    return fig


def class_histograms(values: np.ndarray, classes: np.ndarray | None = None, *, ax=None,
                     bins: int = 256, value_range: tuple[float, float] = (0, 256),
                     lines: Mapping[str, float] | None = None, density: bool = True,
                     log: bool = False, title: str | None = None, xlabel: str | None = None):
    """Histogram of a value per class, in the paper's palette, with labelled vertical lines.

    Parameters
    ----------
    values : (N,) or (H, W) ndarray
        The value of each pixel (e.g. HSV V = max(R, G, B)).
    classes : same shape as ``values``, uint8, optional
        Class of each pixel (0, 1, 2; 255 and other values are left out). Without it one grey
        histogram of all values is drawn.
    ax : matplotlib Axes, optional
    bins, value_range : histogram bins over ``value_range`` (256 bins over 0..256 = one per level).
    lines : mapping of str to float, optional
        ``{label: x}``: dashed vertical lines (e.g. thresholds). Labels sharing an x are joined.
    density : bool
        Normalise each class separately (shapes comparable whatever the class sizes).
    log : bool
        Logarithmic y axis.
    title, xlabel : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(values)
    if classes is not None and np.shape(classes) != values.shape:
        raise InputError(f"values and classes shapes differ: {values.shape} vs {np.shape(classes)}")
    if ax is None:
        fig = new_figure((6.5, 3.2))
        ax = fig.add_subplot(1, 1, 1)
    flat = values.ravel()
    if classes is None:
        ax.hist(flat, bins=bins, range=value_range, density=density, histtype="stepfilled",
                color="0.5", alpha=0.7, label="all pixels")
    else:
        cl = np.asarray(classes).ravel()
        for c in CLASS_ORDER:
            v = flat[cl == c]
            if v.size == 0:
                continue
            ax.hist(v, bins=bins, range=value_range, density=density, histtype="step",
                    color=class_colour(c), linewidth=1.4, label=f"{CLASS_NAMES[c]} ({v.size:,} px)")
    if lines:
        merged: dict[float, list[str]] = {}
        for label, x in lines.items():
            merged.setdefault(float(x), []).append(label)
        for x, labels in sorted(merged.items()):
            ax.axvline(x, color="0.15", linestyle="--", linewidth=0.9)
            ax.text(x, 0.98, " / ".join(labels) + " ", rotation=90, fontsize=7, va="top",
                    ha="right", color="0.15", transform=ax.get_xaxis_transform())
    if log:
        ax.set_yscale("log")
    ax.set_xlim(*value_range)
    ax.set_ylabel("density" if density else "pixels")
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig = ax.figure
    fig.tight_layout()
    return fig


def figure_to_png(fig, *, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (for an ipywidgets Image, or to check a figure in a test)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
