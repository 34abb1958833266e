"""Shared plotting helpers: palette panels, legend, class-fraction bars, class histograms."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seaice_utils.core.classes import NODATA, THICK, THIN, WATER
from seaice_utils.errors import InputError
from seaice_utils.core.figures import (Panel, class_colour, class_fraction_bars, class_histograms,
                                       class_legend_handles, figure_to_png, new_figure,
                                       panel_figure)


def _decode(png: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert arr is not None
    return arr[..., ::-1]  # RGB


def _count(rgb: np.ndarray, colour) -> int:
    return int(np.all(rgb == np.array(colour, np.uint8), axis=-1).sum())


def test_class_colours_are_the_papers_palette():
    assert class_colour(THICK) == (1.0, 0.0, 0.0)
    assert class_colour(THIN) == (0.0, 0.0, 1.0)
    assert class_colour(WATER) == (0.0, 1.0, 0.0)
    assert class_colour(NODATA) == (0.0, 0.0, 0.0)
    with pytest.raises(InputError, match="no palette colour for class 7"):
        class_colour(7)


def test_label_panel_is_drawn_in_the_palette():
    classes = np.zeros((60, 90), np.uint8)
    classes[:, 30:60] = THIN
    classes[:, 60:] = THICK
    fig = panel_figure([[Panel(classes, "labels")]], panel_size=3.0, legend=False)
    rgb = _decode(figure_to_png(fig, dpi=100))
    red, blue, green = (_count(rgb, c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0)))
    assert min(red, blue, green) > 1000
    # three equal stripes -> equal areas, up to the edge pixels of the resampling
    assert max(red, blue, green) / min(red, blue, green) < 1.1


def test_rgb_and_grey_panels_keep_values():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 1] = 200
    grey = np.full((40, 40), 255, np.uint8)
    out = _decode(figure_to_png(panel_figure([[Panel(rgb), Panel(grey)]], legend=False)))
    assert _count(out, (0, 200, 0)) > 1000           # the RGB panel, unchanged colour
    assert _count(out, (255, 255, 255)) > 2000        # white grey panel (plus the background)


def test_legend_added_only_with_label_panels():
    classes = np.array([[0, 1], [2, 255]], np.uint8)
    fig = panel_figure([[Panel(classes, "labels", "a"), None]], row_titles=["row"])
    assert len(fig.legends) == 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["thick ice", "thin ice", "open water", "no data"]
    assert fig.axes[1].axison is False  # the None cell is left empty
    fig2 = panel_figure([[Panel(np.zeros((4, 4, 3), np.uint8))]])
    assert fig2.legends == []
    handles = class_legend_handles(nodata=False)
    assert [h.get_label() for h in handles] == ["thick ice", "thin ice", "open water"]
    gaps = np.array([[0, 254], [2, 255]], np.uint8)      # thresholds with an allowed gap
    fig3 = panel_figure([[Panel(gaps, "labels", "a")]])
    assert [t.get_text() for t in fig3.legends[0].get_texts()] == [
        "thick ice", "thin ice", "open water", "unlabelled", "no data"]


def test_panel_errors_name_the_problem():
    with pytest.raises(InputError, match=r"rgb panel needs an \(H, W, 3\) array"):
        panel_figure([[Panel(np.zeros((4, 4), np.uint8), "rgb")]])
    with pytest.raises(InputError, match="panel kind must be one of"):
        panel_figure([[Panel(np.zeros((4, 4), np.uint8), "colour")]])
    with pytest.raises(InputError, match="row_titles has 2 entries for 1 rows"):
        panel_figure([[Panel(np.zeros((4, 4), np.uint8))]], row_titles=["a", "b"])
    with pytest.raises(InputError, match="at least one panel"):
        panel_figure([[]])
    with pytest.raises(InputError, match="uint8 class map"):
        panel_figure([[Panel(np.zeros((4, 4), np.int32), "labels")]])


def test_fraction_bars_are_stacked_fractions():
    fr = {"a": {"thick ice": 0.5, "thin ice": 0.3, "open water": 0.2},
          "b": {"thick ice": 0.1, "thin ice": float("nan"), "open water": 0.6, "unlabelled": 0.3}}
    fig = class_fraction_bars(fr, title="t")
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    # 4 columns (3 classes + unlabelled) x 2 bars
    assert len(bars) == 8
    widths = np.array([b.get_width() for b in bars]).reshape(4, 2)
    lefts = np.array([b.get_x() for b in bars]).reshape(4, 2)
    np.testing.assert_allclose(widths[:, 0], [0.5, 0.3, 0.2, 0.0])   # bar "a"
    np.testing.assert_allclose(widths[:, 1], [0.1, 0.0, 0.6, 0.3])   # NaN drawn as 0
    np.testing.assert_allclose(lefts[:, 1], [0.0, 0.1, 0.1, 0.7])    # stacked
    assert bars[0].get_facecolor()[:3] == (1.0, 0.0, 0.0)
    assert bars[6].get_facecolor()[:3] == (1.0, 0.0, 1.0)            # unlabelled in magenta
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    with pytest.raises(InputError):
        class_fraction_bars({})


def test_class_histograms_counts_and_lines():
    values = np.array([10, 10, 20, 200, 210, 250, 5], np.uint8)
    classes = np.array([0, 0, 1, 1, 2, 2, 255], np.uint8)
    fig = class_histograms(values, classes, density=False, lines={"a": 30.5, "b": 30.5, "c": 204.5})
    ax = fig.axes[0]
    # one step histogram per class present (thick, thin, water), no-data left out
    heights = {}
    for patch in ax.patches:
        xy = patch.get_xy()
        heights[patch.get_label()] = xy[:, 1].max()
    assert set(heights) == {"thick ice (2 px)", "thin ice (2 px)", "open water (2 px)"}
    assert heights["open water (2 px)"] == 2   # both water pixels in the same bin
    xs = sorted(line.get_xdata()[0] for line in ax.get_lines())
    assert xs == [30.5, 204.5]                 # equal x merged into one line
    assert "a / b" in [t.get_text().strip() for t in ax.texts]
    with pytest.raises(InputError, match="shapes differ"):
        class_histograms(values, classes[:3])


def test_figures_are_not_registered_with_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = new_figure((2, 2))
    panel_figure([[Panel(np.zeros((4, 4, 3), np.uint8))]])
    assert plt.get_fignums() == before
    assert figure_to_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
