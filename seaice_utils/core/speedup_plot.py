"""The one speedup plot of the compendium (Tables I-III): speedup against workers.

:func:`draw_speedups` draws, on one matplotlib Axes, the ideal line ``y = x`` (black, dashed),
published speedups in grey squares (joined when each x has one point; Table II's executors x
cores layouts share core counts and stay points), measured speedups as coloured circles (joined
when each x has one point, unless ``lines`` says otherwise), optional text beside the points of a
series (efficiencies, ``"2x4"`` layouts; stacked when points share an x) and optional shading of
the oversubscribed region ``x > cores``. Its callers make the figure: notebook 03
(:func:`seaice_utils.timing.tables.speedup_figure`), notebook 04
(:func:`seaice_utils.training.runs.plot_speedup`) and notebook 05, three panels
(:func:`seaice_utils.evaluation.speedups.speedup_figure`).

>>> from seaice_utils.core.figures import new_figure
>>> ax = new_figure((4, 3)).subplots()
>>> draw_speedups(ax, {"this run": ([1, 2], [1.0, 1.8])}, reference={"paper": ([1, 2], [1, 2])},
...               xlabel="processes")
>>> [line.get_label() for line in ax.lines]
['ideal (y = x)', 'paper', 'this run']
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["draw_speedups", "IDEAL_LABEL"]

IDEAL_LABEL = "ideal (y = x)"
_REFERENCE_COLOUR = "0.5"
_Points = tuple[Sequence[float], Sequence[float]]


def _distinct(x: np.ndarray) -> bool:
    return len(np.unique(x)) == len(x)


def draw_speedups(ax, measured: Mapping[str, _Points], *, xlabel: str,
                  reference: Mapping[str, _Points] | None = None, title: str | None = None,
                  ylabel: str = "speedup", lines: bool | None = None,
                  styles: Mapping[str, str] | None = None,
                  notes: Mapping[str, Sequence[str]] | None = None, cores: int | None = None,
                  xticks: Sequence[float] | None = None, top: float | None = None,
                  limits: bool = True, ideal_label: str = IDEAL_LABEL, fontsize: float = 8,
                  title_size: float = 10) -> None:
    """Draw measured (and published) speedups against workers on ``ax``.

    Parameters
    ----------
    ax : matplotlib Axes
    measured : mapping of label -> (x, y)
        Measured speedups, one series per entry, drawn in the colour cycle C0, C1, ... as
        circles; a series is sorted by x before it is joined.
    xlabel : str
    reference : mapping of label -> (x, y), optional
        Published speedups (the paper's), grey squares, joined by a dashed line when each x has
        one point.
    title, ylabel : str
    lines : bool, optional
        Join the points of each measured series; by default when its x values are distinct.
    styles : mapping of label -> str, optional
        A matplotlib format string for a measured series instead of ``"o-"`` (e.g. ``"o:"``).
    notes : mapping of label -> sequence of str, optional
        Text beside each point of a measured series (points at one x stacked downwards).
    cores : int, optional
        Cores of this machine: the region ``x > cores`` is shaded as oversubscribed.
    xticks : sequence of float, optional
    top : float, optional
        The ideal line and the axes' limits reach at least this far (e.g. the paper's 8 GPUs).
    limits : bool
        Set the limits to 0.5..top + 0.5 (x) and 0..top + 0.5 (y) and draw a grid.
    ideal_label : str
    fontsize, title_size : float
        Of the legend and notes, and of the title.
    """
    styles, notes = styles or {}, notes or {}
    reference = reference or {}
    series = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in measured.items()}
    refs = {k: (np.asarray(x, float), np.asarray(y, float)) for k, (x, y) in reference.items()}
    xs = [v for x, _ in (*series.values(), *refs.values()) for v in x]
    ys = [v for _, y in series.values() for v in y]
    top = max([1.0, *xs, *ys] + ([top] if top is not None else []))
    ax.plot([1, top], [1, top], "k--", lw=1, label=ideal_label)
    for name, (rx, ry) in refs.items():
        o = np.argsort(rx, kind="stable")
        ax.plot(rx[o], ry[o], "s--" if _distinct(rx) else "s", color=_REFERENCE_COLOUR, ms=4,
                lw=1, label=name)
    for i, (name, (x, y)) in enumerate(series.items()):
        o = np.argsort(x, kind="stable")
        join = _distinct(x) if lines is None else lines
        colour = f"C{i}"
        ax.plot(x[o], y[o], styles.get(name, "o-" if join else "o"), color=colour, ms=6,
                lw=2 if i == 0 else 1.5, label=name)
        seen: dict[float, int] = {}
        for xi, yi, text in zip(x, y, notes.get(name, ())):
            k = seen[xi] = seen.get(xi, -1) + 1
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(6, -12 - 10 * k),
                        fontsize=fontsize, color=colour)
    if cores is not None and top > cores:
        ax.axvspan(cores + 0.05, top + 0.5, color="tab:red", alpha=0.08,
                   label=f"oversubscribed (> {cores} cores)")
    if xticks is not None:
        ax.set_xticks(list(xticks))
    if limits:
        ax.set_xlim(0.5, top + 0.5)
        ax.set_ylim(0, top + 0.5)
        ax.grid(alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=title_size)
    ax.legend(fontsize=fontsize, loc="upper left")
