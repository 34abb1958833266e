"""The literal reference implementation is the oracle: the production kernels match it bit for bit."""

import json

import cv2
import numpy as np
import pytest

from seaice_utils.core.classes import PALETTE, class_fractions, palette_unchecked, to_palette
from seaice_utils.core.scenes import write_png
from seaice_utils.core.tiling import split_tiles
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.labelling.autolabel import HSVRange, Thresholds, auto_label, segment
from seaice_utils.labelling.cloudfilter import FilterParams, filter_steps, thin_cloud_shadow_filter
from seaice_utils.labelling.kernels import median_blur
from seaice_utils.labelling.pipeline import LabelOptions, label_file, output_paths
from seaice_utils.labelling.reference import (reference_auto_label, reference_filter,
                                              reference_label_files, reference_segment)


@pytest.fixture(scope="module")
def tiles():
    """Tiles of a clear scene and of a cloudy scene with a no-data wedge (256 px)."""
    out = []
    for seed, cloud, wedge in ((11, 0.0, False), (12, 0.35, True)):
        sc = synthesize_scene(seed, size=512, cloud_cover=cloud, shadow_cover=cloud / 3,
                              nodata_wedge=wedge)
        t, m = split_tiles(sc.image, sc.name, 256, nodata=sc.nodata)
        out += [(t[k], m[k]) for k in t]
    assert any(m.any() for _, m in out), "fixture should hold no-data pixels"
    return out


def edge_images():
    rng = np.random.default_rng(5)
    grey = lambda v, shape=(40, 56): np.repeat(np.full(shape, v, np.uint8)[..., None], 3, 2)  # noqa: E731
    one_each = np.zeros((3, 4, 3), np.uint8)
    one_each[0, 0] = (30, 0, 0)        # water (V = 30)
    one_each[0, 1] = (31, 31, 31)      # thin
    one_each[0, 2] = (0, 204, 0)       # thin
    one_each[0, 3] = (0, 0, 205)       # thick
    return {"black": grey(0), "white": grey(255), "uniform grey": grey(120),
            "one pixel of each class": one_each,
            "noise, non-square": rng.integers(0, 256, (37, 91, 3), dtype=np.uint8),
            "single pixel": grey(200, (1, 1))}


def check_same(rgb, nodata, fp, thr=Thresholds()):
    c_ref, p_ref, l_ref = reference_auto_label(rgb, nodata=nodata, filter_params=fp,
                                               thresholds=thr)
    c, lv = auto_label(rgb, nodata=nodata, filter_params=fp, thresholds=thr)
    assert c.dtype == np.uint8 and c.shape == rgb.shape[:2]
    np.testing.assert_array_equal(c, c_ref)
    np.testing.assert_array_equal(to_palette(c), p_ref)
    np.testing.assert_array_equal(palette_unchecked(np.ascontiguousarray(c)), p_ref)
    if fp is None:
        assert lv is None and l_ref is None
    else:
        np.testing.assert_array_equal(lv, l_ref)


@pytest.mark.parametrize("fp", [FilterParams(), None, FilterParams(apply_to="tile", tile_size=128),
                                FilterParams(median_kernel=31, dilation=3, thick_threshold=190)],
                         ids=["filter", "no filter", "filter per 128 px tile", "other constants"])
def test_production_equals_reference_on_synthetic_tiles(tiles, fp):
    for rgb, nodata in tiles:
        check_same(rgb, nodata, fp)
        check_same(rgb, None, fp)


@pytest.mark.parametrize("name", list(edge_images()))
def test_production_equals_reference_on_edge_cases(name):
    rgb = edge_images()[name]
    for fp in (FilterParams(median_kernel=5), FilterParams(median_kernel=31), None):
        check_same(rgb, None, fp)
    nodata = np.zeros(rgb.shape[:2], bool)
    nodata[0, 0] = True
    check_same(rgb, nodata, FilterParams(median_kernel=31))


def test_hue_constrained_and_overlapping_thresholds_match(tiles):
    thr = Thresholds(thick=HSVRange((0, 0, 180), (179, 60, 255)),   # S matters: not V-only
                     thin=HSVRange((90, 0, 31), (140, 255, 220)),    # overlaps thick
                     water=HSVRange((0, 0, 0), (179, 255, 40)))
    for rgb, nodata in tiles[:3]:
        for fp in (None, FilterParams()):
            check_same(rgb, nodata, fp, thr)


def test_reference_filter_is_the_papers_steps(tiles):
    rgb, nodata = tiles[-1]
    levels = reference_filter(rgb, nodata=nodata)
    assert set(np.unique(levels).tolist()) <= {0, 155, 255}
    np.testing.assert_array_equal(levels, filter_steps(rgb, nodata=nodata)["levels"])
    assert (levels[nodata] == 0).all() and (levels[rgb.max(axis=2) <= 30] == 0).all()


def test_reference_segment_paints_palette_colours():
    rgb = edge_images()["one pixel of each class"]
    classes, palette = reference_segment(rgb)
    assert classes[0].tolist() == [0, 1, 1, 2]
    assert [tuple(p) for p in palette[0]] == [PALETTE[0], PALETTE[1], PALETTE[1], PALETTE[2]]
    nodata = np.zeros(rgb.shape[:2], bool)
    nodata[0, 3] = True
    classes, palette = reference_segment(rgb, nodata=nodata)
    assert classes[0, 3] == 255 and palette[0, 3].tolist() == [0, 0, 0]


@pytest.mark.parametrize("shape,ksize", [((256, 256), 155), ((64, 300), 31), ((20, 20), 155),
                                         ((50, 70), 7), ((33, 33), 3)])
def test_fast_median_blur_is_bit_identical(shape, ksize):
    rng = np.random.default_rng(ksize)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, shape, dtype=np.uint8), (0, 0), 3)
    for img in (smooth, 255 - smooth // 3, smooth // 4, rng.integers(0, 256, shape, dtype=np.uint8),
                np.full(shape, 255, np.uint8)):
        np.testing.assert_array_equal(median_blur(img, ksize), cv2.medianBlur(img, ksize))


def test_class_fractions_fast_path_equals_definition(tiles):
    for rgb, nodata in tiles[:4]:
        c = segment(rgb, nodata=nodata)
        valid = c != 255
        expect = {k: float((c == v).sum()) / int(valid.sum())
                  for v, k in ((0, "open water"), (1, "thin ice"), (2, "thick ice"))}
        assert class_fractions(c) == expect


def test_reference_run_writes_the_same_labels_as_the_pipeline(tmp_path, tiles):
    src = tmp_path / "in"
    for i, (rgb, _) in enumerate(tiles[:3]):
        write_png(src / f"t_{i:04d}_0000.png", rgb)
    files = sorted(src.glob("*.png"))
    opts = LabelOptions()
    ref = reference_label_files(files, tmp_path / "ref", opts)
    assert ref.ok and len(ref.done) == 3
    for f in files:
        label_file(f, tmp_path / "fast", opts)
        a, b = output_paths(tmp_path / "ref", f.stem), output_paths(tmp_path / "fast", f.stem)
        for key in ("classes", "labels"):
            np.testing.assert_array_equal(cv2.imread(str(a[key]), cv2.IMREAD_UNCHANGED),
                                          cv2.imread(str(b[key]), cv2.IMREAD_UNCHANGED))
        fast = json.loads(b["sidecar"].read_text())
        # the pipeline's sidecar also records its files' sizes and checksums (the PNG bytes
        # differ: the engines use their own encoder); everything else is equal
        assert set(fast.pop("outputs")) == {"classes", "labels"}
        assert json.loads(a["sidecar"].read_text()) == fast


def test_scene_mode_filter_equals_steps_on_whole_scene():
    sc = synthesize_scene(4, size=320, cloud_cover=0.3, shadow_cover=0.1, nodata_wedge=True)
    fp = FilterParams(median_kernel=61)
    np.testing.assert_array_equal(thin_cloud_shadow_filter(sc.image, fp, nodata=sc.nodata),
                                  reference_filter(sc.image, fp, nodata=sc.nodata))


def test_reference_stays_the_oracle_with_allowed_gaps():


    rgb = synthesize_scene(3, size=128).image
    t = Thresholds(water=HSVRange((0, 0, 0), (185, 255, 30)),
                   thin=HSVRange((0, 0, 31), (185, 255, 150)),
                   thick=HSVRange((0, 0, 205), (185, 255, 255)), allow_gaps=True)
    ref_classes, ref_palette = reference_segment(rgb, t)
    assert 254 in ref_classes and (ref_palette[ref_classes == 254] == (255, 0, 255)).all()
    np.testing.assert_array_equal(segment(rgb, t), ref_classes)
