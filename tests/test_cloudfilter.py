import numpy as np
import pytest

from seaice_utils.labelling.cloudfilter import (LEVEL_THICK, LEVEL_THIN, LEVEL_WATER,
                                                FilterParams, filter_steps,
                                                thin_cloud_shadow_filter)
from seaice_utils.errors import InputError

from conftest import grey_rgb


def pack_scene(size=128, haze=0, shadow=1.0):
    """Bright pack ice with small grey thin-ice patches and a dark lead, as in real S2 scenes.

    ``haze`` brightens the left half (added grey levels); ``shadow`` darkens the right half
    (multiplied). Returns the image and the true thin-ice mask.
    """
    img = np.full((size, size), 235, np.float64)
    thin = np.zeros((size, size), bool)
    for r in range(8, size - 12, 24):
        for c in range(4, size - 12, 24):
            thin[r:r + 10, c:c + 10] = True
    img[thin] = 120
    img[:, 62:66] = 12                       # lead (water)
    thin[:, 62:66] = False
    img[:, : size // 2] += haze
    img[:, size // 2:] *= shadow
    return grey_rgb(np.clip(np.rint(img), 0, 255).astype(np.uint8)), thin


def test_bright_pack_thick_and_grey_patches_thin():
    img, thin = pack_scene()
    out = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31))
    water = np.zeros_like(thin)
    water[:, 62:66] = True
    assert (out[thin] == LEVEL_THIN).mean() > 0.95
    assert (out[~thin & ~water] == LEVEL_THICK).mean() > 0.9


def test_filter_undoes_haze_and_shadow_where_plain_thresholds_fail():
    from seaice_utils.labelling.autolabel import segment

    img, thin = pack_scene(haze=90, shadow=0.7)
    water = np.zeros_like(thin)
    water[:, 62:66] = True
    plain = segment(img)
    filt = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31))
    left, right = np.zeros_like(thin), np.zeros_like(thin)
    left[:, :64], right[:, 66:] = True, True
    # plain thresholds: hazy grey ice looks thick, shadowed pack looks thin
    assert (plain[thin & left] == 2).mean() > 0.95
    assert (plain[~thin & ~water & right] == 1).mean() > 0.95
    # the filter compares each pixel with its local background and recovers both
    assert (filt[thin & left] == LEVEL_THIN).mean() > 0.95
    assert (filt[~thin & ~water & right] == LEVEL_THICK).mean() > 0.9


def test_large_uniform_grey_area_is_thick_after_filter():
    """Documented limit of the paper's filter: a grey sheet wider than the median kernel
    matches its own background and comes out thick."""
    img = grey_rgb(np.full((96, 96), 120, np.uint8))
    img[40:50, 40:50] = 240
    out = thin_cloud_shadow_filter(img, FilterParams(median_kernel=15))
    assert (out[:20, :20] == LEVEL_THICK).mean() > 0.9


def test_steps_are_the_papers():
    img = pack_scene()[0]
    st = filter_steps(img, FilterParams(median_kernel=31))
    # step 2: water painted white before grey conversion
    assert (st["grey"][st["water"]] == 255).all()
    # step 6: diff = 255 - |grey - background|
    expect = 255 - np.abs(st["grey"].astype(int) - st["background"].astype(int))
    assert np.array_equal(st["diff"], expect.astype(np.uint8))
    # step 7: Otsu mask is binary and diff2 = diff AND mask
    assert set(np.unique(st["otsu_mask"]).tolist()) <= {0, 255}
    assert np.array_equal(st["diff2"], st["diff"] & st["otsu_mask"])
    # step 9: truncated at 235; step 10 stretched to full range
    assert st["truncated"].max() <= 235
    assert st["norm2"].min() == 0 and st["norm2"].max() == 255
    # step 11
    lv = st["levels"]
    assert (lv[st["water"]] == 0).all()
    assert (lv[~st["water"] & (st["norm2"] >= 205)] == 255).all()
    assert (lv[~st["water"] & (st["norm2"] < 205)] == 155).all()


def test_all_black_is_all_water_and_all_white_is_uniform_thin():
    black = thin_cloud_shadow_filter(np.zeros((32, 32, 3), np.uint8), FilterParams(median_kernel=5))
    assert (black == LEVEL_WATER).all()
    white = thin_cloud_shadow_filter(np.full((32, 32, 3), 255, np.uint8), FilterParams(median_kernel=5))
    # no contrast to the background: min-max of a constant is 0 -> thin (documented)
    assert (white == LEVEL_THIN).all()


def test_nodata_comes_out_as_level_0():
    img = pack_scene()[0]
    nd = np.zeros(img.shape[:2], bool)
    nd[:10, :10] = True
    out = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31), nodata=nd)
    assert (out[nd] == 0).all()


def test_per_tile_mode_differs_from_scene_mode_but_same_levels():
    img = pack_scene(128, haze=60, shadow=0.8)[0]
    img[:64, :64] = 120  # a tile of uniform grey sheet: no context inside the tile
    scene = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31))
    tiled = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31, apply_to="tile", tile_size=64))
    assert tiled.shape == scene.shape
    assert set(np.unique(tiled).tolist()) <= {0, 155, 255}
    assert (tiled != scene).any()


def test_per_tile_mode_handles_non_multiple_sizes():
    img = pack_scene(100)[0]
    out = thin_cloud_shadow_filter(img, FilterParams(median_kernel=31, apply_to="tile", tile_size=64))
    assert out.shape == (100, 100)


@pytest.mark.parametrize("kw,match", [({"median_kernel": 154}, "odd"), ({"dilation": 0}, "dilation"),
                                      ({"truncation": 300}, "truncation"),
                                      ({"apply_to": "both"}, "apply_to"),
                                      ({"median_kernel": 257}, r"3\.\.255"),
                                      ({"dilation": 256}, r"1\.\.255"),
                                      ({"water_v_max": 250, "thick_threshold": 100},
                                       "must be below filter.thick_threshold")])
def test_bad_constants_raise(kw, match):
    with pytest.raises(InputError, match=match):
        FilterParams(**kw)


def test_wrong_input_dtype_and_shape():
    with pytest.raises(InputError, match="uint8"):
        thin_cloud_shadow_filter(np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(InputError, match="shape"):
        thin_cloud_shadow_filter(np.zeros((8, 8), np.uint8))


def test_median_blur_refuses_apertures_opencv_cannot_count():
    from seaice_utils.labelling.kernels import MEDIAN_KERNEL_MAX, median_blur

    img = np.full((300, 300), 200, np.uint8)
    assert (median_blur(img, MEDIAN_KERNEL_MAX) == 200).all()
    for bad in (MEDIAN_KERNEL_MAX + 2, 100001, 4):
        with pytest.raises(InputError, match="median aperture"):
            median_blur(img, bad)
