import cv2
import numpy as np
import pytest

from seaice_utils.core.scenes import (Stretch, as_scene, atomic_write_bytes, list_inputs,
                                      nodata_mask, read_scene, stretch_reflectance, write_png)
from seaice_utils.errors import InputError


def test_stretch_maps_reflectance_0_1_to_0_255_and_clips():
    dn = np.array([[[0, 5000, 10000, 20000, 65535]]], np.uint16)
    assert stretch_reflectance(dn).tolist() == [[[0, 128, 255, 255, 255]]]


def test_stretch_thresholds_mean_reflectance_012_and_080():
    # the paper's V thresholds 30 and 205 sit at reflectance ~0.12 and ~0.80
    assert stretch_reflectance(np.array([[[1176]]], np.uint16))[0, 0, 0] == 30
    assert stretch_reflectance(np.array([[[8040]]], np.uint16))[0, 0, 0] == 205


def test_stretch_offset_for_l2a_baseline_04():
    # DN 2000 with BOA_ADD_OFFSET -1000 is reflectance 0.1
    out = stretch_reflectance(np.array([[[2000]]], np.uint16), Stretch(offset=-0.1))
    assert out[0, 0, 0] == round(0.1 * 255)


def test_stretch_rejects_bad_settings_and_dtypes():
    with pytest.raises(InputError, match="scale"):
        Stretch(scale=0)
    with pytest.raises(InputError, match="dtype"):
        stretch_reflectance(np.array([["a"]]))


def test_nodata_mask_all_bands_zero_or_given_value():
    b = np.array([[[0, 0, 0], [0, 5, 0], [7, 7, 7]]], np.uint16)
    assert nodata_mask(b).tolist() == [[True, False, False]]
    assert nodata_mask(b, 7).tolist() == [[False, False, True]]


def test_as_scene_16bit_band_order_and_nodata(tmp_path):
    # a B2,B3,B4 (blue, green, red) stack: red is band 3
    arr = np.zeros((4, 5, 3), np.uint16)
    arr[..., 2] = 10000   # red saturated
    arr[0, 0] = 0         # no-data pixel
    sc = as_scene(arr, bands_rgb=(3, 2, 1))
    assert sc.rgb[1, 1].tolist() == [255, 0, 0]
    assert sc.nodata[0, 0] and sc.nodata.sum() == 1
    assert sc.meta["bands_rgb"] == [3, 2, 1] and "10000" in sc.meta["stretch"]


def test_as_scene_requires_band_choice_for_many_bands():
    with pytest.raises(InputError, match="bands"):
        as_scene(np.ones((2, 2, 5), np.uint16))
    with pytest.raises(InputError, match="1-based"):
        as_scene(np.ones((2, 2, 5), np.uint16), bands_rgb=(0, 1, 2))


def test_rgba_alpha_zero_is_nodata():
    arr = np.full((2, 2, 4), 200, np.uint8)
    arr[0, 1, 3] = 0
    sc = as_scene(arr)
    assert sc.nodata.tolist() == [[False, True], [False, False]]
    assert sc.rgb[0, 1].tolist() == [0, 0, 0]


def test_read_png_roundtrip_keeps_rgb_order(tmp_path):
    img = np.zeros((3, 4, 3), np.uint8)
    img[..., 0] = 200  # red
    write_png(tmp_path / "a.png", img)
    sc = read_scene(tmp_path / "a.png")
    assert sc.name == "a" and sc.rgb[0, 0].tolist() == [200, 0, 0]


def test_read_16bit_tiff(tmp_path):
    arr = np.zeros((8, 8, 3), np.uint16)
    arr[..., 0] = 8040
    arr[..., 1] = 1176
    path = tmp_path / "refl.tif"
    cv2.imwrite(str(path), arr[..., ::-1])  # OpenCV stores BGR
    sc = read_scene(path)
    assert sc.rgb[0, 0].tolist() == [205, 30, 0]
    assert sc.meta["dtype_in"] == "uint16"


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_corrupt_or_empty_files_raise_clear_error(tmp_path, content):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match="bad.png"):
        read_scene(p)


def test_truncated_png_raises(tmp_path):
    write_png(tmp_path / "ok.png", np.full((64, 64, 3), 99, np.uint8))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png"):
        read_scene(tmp_path / "cut.png")


def test_missing_file_raises(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_scene(tmp_path / "nope.png")


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.bin"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_write_png_rejects_wrong_dtype(tmp_path):
    with pytest.raises(InputError, match="uint8"):
        write_png(tmp_path / "f.png", np.zeros((2, 2), np.float32))


def test_atomic_write_gives_normal_file_permissions(tmp_path):
    import os

    atomic_write_bytes(tmp_path / "p.bin", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_list_inputs_takes_a_folder_a_file_or_a_list(tmp_path):
    for name in ("b.png", "a.tif", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    assert list_inputs(tmp_path) == [tmp_path / "a.tif", tmp_path / "b.png"]
    assert list_inputs(str(tmp_path / "b.png")) == [tmp_path / "b.png"]
    assert list_inputs([str(tmp_path / "sub" / "c.png"), tmp_path / "x.png"]) == [
        tmp_path / "sub" / "c.png", tmp_path / "x.png"]       # a list is taken as given
    with pytest.raises(InputError, match="input not found"):
        list_inputs(tmp_path / "nope.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        list_inputs(tmp_path / "empty")


# ------------------------------------------------------------------ float input, the scale
def test_float_reflectance_is_detected_and_recorded():
    refl = np.array([[[0.0, 0.12, 0.8], [1.0, 1.2, 0.05]]], np.float32)
    sc = as_scene(refl)
    dn = as_scene(np.rint(refl.astype(np.float64) * 10000).astype(np.uint16))
    assert np.array_equal(sc.rgb, dn.rgb) and sc.rgb[0, 1].tolist() == [255, 255, 13]
    assert sc.meta["reflectance_scale"] == 1.0
    assert sc.meta["reflectance_scale_source"] == "detected: float values within -0.2..1.5"
    assert sc.meta["stretch"] == "uint8 = clip(round(255 * (DN / 1 + 0) / 1), 0, 255)"
    assert dn.meta["reflectance_scale"] == 10000.0
    assert dn.meta["reflectance_scale_source"] == "default for integer input"
    assert stretch_reflectance(refl).tolist() == sc.rgb.tolist()


def test_float_that_is_not_reflectance_needs_a_scale():
    dn = np.full((4, 4, 3), 8000.0, np.float32)
    dn[0, 0] = 0                                      # no-data is not part of the range
    with pytest.raises(InputError, match=r"scene: float values 8000\.\.8000 are not reflectance"
                       r".*--scale"):
        as_scene(dn)
    sc = as_scene(dn, stretch=Stretch(scale=10000))
    assert sc.rgb[1, 1].tolist() == [204, 204, 204] and sc.nodata[0, 0]
    assert sc.meta["reflectance_scale"] == 10000.0 and sc.meta["reflectance_scale_source"] == "given"
    eight = np.full((4, 4, 3), 200.0, np.float64)     # 8-bit values stored as float
    with pytest.raises(InputError, match="200..200"):
        as_scene(eight)
    assert as_scene(eight, stretch=Stretch(scale=255)).rgb[0, 0].tolist() == [200, 200, 200]


def test_float_nan_is_nodata_and_reflectance_margins():
    refl = np.full((3, 3, 3), 0.5, np.float32)
    refl[0, 0, 1] = np.nan
    refl[1, 1] = np.inf
    refl[2, 2] = -0.15                                # corrected dark water dips below 0
    sc = as_scene(refl)
    assert sc.nodata.tolist() == [[True, False, False], [False, True, False],
                                  [False, False, False]]
    assert sc.rgb[0, 0].tolist() == [0, 0, 0] and sc.rgb[2, 2].tolist() == [0, 0, 0]
    refl[2, 2] = 1.6                                  # above the snow margin: not reflectance
    with pytest.raises(InputError, match="0.5..1.6"):
        as_scene(refl)
    nan = np.full((2, 2, 3), np.nan, np.float32)      # nothing valid: nothing to detect
    assert as_scene(nan).nodata.all()


def test_stretch_scale_must_be_positive_and_finite():
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(InputError, match="scale"):
            Stretch(scale=bad)
    assert "10000 for integer input" in Stretch().describe()
