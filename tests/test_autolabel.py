import cv2
import numpy as np
import pytest

from seaice_utils.core.classes import (NODATA, THICK, THIN, UNLABELLED, WATER, class_fractions,
                                       from_palette, to_palette)
from seaice_utils.labelling.autolabel import (HSVRange, Thresholds, auto_label, segment,
                                              threshold_problems)
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.errors import InputError

from conftest import grey_rgb


def test_paper_defaults_depend_on_v_only():
    v = np.arange(256)
    out = segment(grey_rgb(v[None, :]))[0]
    assert (out[:31] == WATER).all() and (out[31:205] == THIN).all() and (out[205:] == THICK).all()


def test_one_pixel_per_class_in_colour():
    img = np.array([[[0, 0, 30], [200, 10, 10], [10, 250, 10]]], np.uint8)  # V 30, 200, 250
    assert segment(img).tolist() == [[WATER, THIN, THICK]]


def test_lut_path_equals_hsv_inrange_path(rng):
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    fast = segment(img)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    ref = np.full(img.shape[:2], NODATA, np.uint8)
    for cls, (lo, hi) in [(WATER, ((0, 0, 0), (185, 255, 30))), (THIN, ((0, 0, 31), (185, 255, 204))),
                          (THICK, ((0, 0, 205), (185, 255, 255)))]:
        ref[cv2.inRange(hsv, np.array(lo), np.array(hi)) > 0] = cls
    assert np.array_equal(fast, ref)


def test_hue_constrained_ranges_use_hsv(rng):
    # thick ice only if bluish-white (H 90..130): a saturated red bright pixel becomes unlabelled
    thr = Thresholds(thick=HSVRange((90, 0, 205), (130, 255, 255)))
    img = np.array([[[255, 0, 0], [200, 220, 255]]], np.uint8)
    out = segment(img, thr)
    assert out[0, 0] == NODATA and out[0, 1] == THICK


def test_overlapping_ranges_thick_wins():
    thr = Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 230)))
    assert segment(grey_rgb([[220]]), thr)[0, 0] == THICK


def test_nodata_is_255_and_excluded_from_fractions():
    img = grey_rgb([[10, 100, 250, 0]])
    nd = np.array([[False, False, False, True]])
    out = segment(img, nodata=nd)
    assert out.tolist() == [[WATER, THIN, THICK, NODATA]]
    assert class_fractions(out) == pytest.approx({"open water": 1 / 3, "thin ice": 1 / 3,
                                                  "thick ice": 1 / 3})


def test_filtered_labels_equal_filter_levels():
    img = grey_rgb(np.tile(np.array([10, 120, 240], np.uint8), (60, 20)))
    classes, levels = auto_label(img, filter_params=FilterParams(median_kernel=15))
    assert np.array_equal(classes, np.select([levels == 0, levels == 155], [WATER, THIN], THICK))


def test_auto_label_without_filter_is_segment():
    img = grey_rgb(np.tile(np.array([10, 120, 240], np.uint8), (8, 8)))
    classes, levels = auto_label(img, filter_params=None)
    assert levels is None and np.array_equal(classes, segment(img))


def test_palette_roundtrip_and_colours():
    classes = np.array([[0, 1], [2, 255]], np.uint8)
    rgb = to_palette(classes)
    assert rgb[0, 0].tolist() == [0, 255, 0] and rgb[0, 1].tolist() == [0, 0, 255]
    assert rgb[1, 0].tolist() == [255, 0, 0] and rgb[1, 1].tolist() == [0, 0, 0]
    assert np.array_equal(from_palette(rgb), classes)


def test_from_palette_tolerates_antialiasing_but_rejects_photos():
    rgb = to_palette(np.array([[0, 1, 2]], np.uint8)).astype(int)
    rgb[0, 0] += [20, -30, 10]
    assert from_palette(np.clip(rgb, 0, 255).astype(np.uint8)).tolist() == [[0, 1, 2]]
    with pytest.raises(InputError, match="not palette colours"):
        from_palette(np.full((2, 2, 3), 128, np.uint8))


def test_to_palette_rejects_unknown_classes():
    with pytest.raises(InputError, match="other than"):
        to_palette(np.array([[7]], np.uint8))


def test_bad_ranges():
    with pytest.raises(InputError, match="lower"):
        HSVRange((0, 0, 100), (179, 255, 50))
    with pytest.raises(InputError, match="three"):
        HSVRange((0, 0), (179, 255, 50))


def test_class_fraction_figures_on_real_sample(ross_sea_path):
    """The real Ross Sea render: mostly bright ice, a dark polynya, a no-data wedge (not water)."""
    from seaice_utils.core.scenes import read_scene

    sc = read_scene(ross_sea_path)
    assert 0.05 < sc.nodata.mean() < 0.2          # the black wedge bottom right
    classes, _ = auto_label(sc.rgb, nodata=sc.nodata)
    fr = class_fractions(classes)
    assert fr["thick ice"] > 0.5
    assert 0.05 < fr["open water"] < 0.4
    assert classes[-5, -5] == NODATA               # the wedge is no-data, not open water


# ------------------------------------------------------------------ gaps, overlaps, order
def test_allowed_gap_pixels_are_unlabelled_not_nodata():
    gap = HSVRange((0, 0, 31), (179, 255, 150))                    # V 151..204 in no range
    v = np.tile(np.array([10, 100, 180, 240], np.uint8), (4, 1))   # 4 x 4 px
    nd = np.zeros(v.shape, bool)
    nd[0, 0] = True
    for thr in (Thresholds(thin=gap, allow_gaps=True),             # V-only: the LUT path
                Thresholds(thin=gap, thick=HSVRange((0, 0, 205), (179, 254, 255)),
                           allow_gaps=True)):                      # S constrained: HSV path
        out = segment(grey_rgb(v), thr, nodata=nd)
        assert (out[:, 2] == UNLABELLED).all() and out[0, 0] == NODATA
        assert (out[1:, 0] == WATER).all() and (out[:, 3] == THICK).all()
        fr = class_fractions(out)
        assert fr["unlabelled"] == pytest.approx(4 / 15) and sum(fr.values()) == pytest.approx(1)
    # without allow_gaps a directly built Thresholds keeps the published code's 255
    assert segment(grey_rgb([[180]]), Thresholds(thin=gap))[0, 0] == NODATA
    # with the filter: level 155 (thin) falls in the gap too
    classes, levels = auto_label(grey_rgb(np.tile(np.array([10, 120, 240], np.uint8), (60, 20))),
                                 filter_params=FilterParams(median_kernel=15),
                                 thresholds=Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 150)),
                                                       allow_gaps=True))
    assert (classes[levels == 155] == UNLABELLED).all() and (levels == 155).any()


def test_unlabelled_has_its_own_colour_and_manual_labels_never_hold_it():
    rgb = to_palette(np.array([[UNLABELLED, NODATA]], np.uint8))
    assert rgb[0, 0].tolist() == [255, 0, 255] and rgb[0, 1].tolist() == [0, 0, 0]
    with pytest.raises(InputError, match="not palette colours"):     # not a manual label colour
        from_palette(rgb)
    assert UNLABELLED not in from_palette(rgb, tolerance=441)
    assert class_fractions(np.array([[0, 1, 2, 255]], np.uint8)).keys() == {
        "open water", "thin ice", "thick ice"}                      # no unlabelled: no key


def test_threshold_problems_name_v_values_and_bounds():
    assert threshold_problems(Thresholds()) == []
    msgs = {p.kind: p.message for p in threshold_problems(
        Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 150))))}
    assert msgs == {"gap": "V 151..204 is in no class's range (autolabel.thin.upper.V = 150, "
                           "autolabel.thick.lower.V = 205)"}
    over = threshold_problems(Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 230))))
    assert [p.kind for p in over] == ["overlap"] and over[0].message.startswith(
        "V 205..230 is in both the thin ice and thick ice ranges")
    inverted = threshold_problems(Thresholds(water=HSVRange((0, 0, 205), (179, 255, 255)),
                                             thick=HSVRange((0, 0, 0), (179, 255, 30))))
    assert {p.kind for p in inverted} == {"order"}
    assert "thin ice must not be darker than open water" in inverted[0].message


def test_hue_constrained_gap_is_found_on_the_hsv_grid():
    # thick ice only if bluish: bright pixels of other hues are in no range
    thr = Thresholds(thick=HSVRange((90, 0, 205), (130, 255, 255)))
    (p,) = threshold_problems(thr)
    assert p.kind == "gap" and p.message.startswith("at V 205..255 only thick ice (H 90..130, "
                                                    "S 0..255) applies")
    assert "autolabel.thick.lower.H = 90, autolabel.thick.upper.H = 130" in p.message
    # the same hue split covered by a second range leaves no gap, but is an overlap-free split
    split = Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 204)),
                       thick=HSVRange((0, 0, 205), (179, 255, 255)))
    assert threshold_problems(split) == []
