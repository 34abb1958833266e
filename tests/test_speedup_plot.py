"""The one speedup plot (``seaice_utils.core.speedup_plot``) and its three callers."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from seaice_utils.core.figures import figure_to_png, new_figure  # noqa: E402
from seaice_utils.core.speedup_plot import IDEAL_LABEL, draw_speedups  # noqa: E402


def _ax():
    return new_figure((4, 3)).subplots()


def test_ideal_reference_measured_notes_and_shading():
    ax = _ax()
    draw_speedups(ax, {"run": ([2, 1, 4], [1.8, 1.0, 2.5])},
                  reference={"paper": ([1, 2, 2, 4], [1, 2.2, 2.4, 4.8])}, xlabel="slots",
                  notes={"run": ["2x1", "1x1", "2x2"]}, cores=2, title="t")
    ideal, ref, run = ax.lines
    assert ideal.get_label() == IDEAL_LABEL and list(ideal.get_xdata()) == [1, 4]
    assert ref.get_linestyle() == "None"                   # two points at x = 2: not joined
    assert list(run.get_xdata()) == [1, 2, 4] and run.get_linestyle() == "-"   # sorted, joined
    assert [t.get_text() for t in ax.texts] == ["2x1", "1x1", "2x2"]
    assert ax.get_xlim() == (0.5, 4.5) and ax.get_ylim() == (0, 4.5)
    assert [t.get_text() for t in ax.get_legend().get_texts()][-1] == "oversubscribed (> 2 cores)"


def test_points_at_one_x_are_not_joined_and_styles_win():
    ax = _ax()
    draw_speedups(ax, {"a": ([1, 2, 2], [1, 1.5, 1.7]), "b": ([1, 2], [1, 1.9])},
                  reference={"paper": ([1, 2], [1, 2])}, styles={"b": "o:"}, xlabel="x",
                  limits=False)
    _, ref, a, b = ax.lines
    assert ref.get_linestyle() == "--" and a.get_linestyle() == "None"
    assert b.get_linestyle() == ":" and b.get_color() == "C1"
    draw_speedups(_ax(), {"a": ([1, 2, 2], [1, 1.5, 1.7])}, xlabel="x", lines=True)


def test_the_three_callers_draw_it():
    from seaice_utils import evaluation, timing, training

    fig = timing.speedup_figure([1, 2, 2], {"r": [1, 1.6, 1.7]}, xlabel="p", title="t", cores=1,
                                labels=["1x1", "1x2", "2x1"], lines=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["1x1", "1x2", "2x1"]
    rows = [{"workers": 1, "speedup": 1.0, "steady_speedup": 1.0, "efficiency": 1.0},
            {"workers": 2, "speedup": 1.6, "steady_speedup": 1.8, "efficiency": 0.8}]
    fig = training.plot_speedup(rows, label="cpu")
    ax = fig.axes[0]
    assert [x.get_label() for x in ax.lines] == ["ideal (linear)", "paper (DGX A100 GPUs)",
                                                 "cpu, all epochs", "cpu, steady state"]
    assert [t.get_text() for t in ax.texts] == ["100%", "80%"]
    assert list(ax.get_xticks()) == [1, 2, 4, 6, 8]
    import matplotlib.pyplot as plt
    plt.close(fig)
    tables = {"Table I": {"file": "03_t1.csv", "x": "processes", "speedup": "speedup",
                          "data": pd.DataFrame({"processes": [1, 2], "speedup": [1, 1.9]})},
              "Table II": {"missing": "notebook 03 did not run"},
              "Table III": {"missing": "notebook 04 did not run"}}
    fig = evaluation.speedup_figure(tables)
    assert [len(ax.lines) for ax in fig.axes] == [3, 2, 2]
    assert "not measured" in fig.axes[1].texts[0].get_text()
    assert figure_to_png(fig)[:4] == b"\x89PNG"


@pytest.mark.parametrize("table", ["Table I", "Table II", "Table III"])
def test_paper_points_of_each_table_are_drawn(table):
    from seaice_utils.paper import PAPER_SPEEDUPS

    ax = _ax()
    pts = PAPER_SPEEDUPS[table]["points"]
    draw_speedups(ax, {}, reference={"paper": tuple(zip(*pts))}, xlabel="x")
    assert sorted(ax.lines[1].get_xdata()) == sorted(p[0] for p in pts)
