"""Outputs you can trust: float reflectance is not silently water, threshold gaps are not
silently no-data, and sizes that OpenCV cannot take fail at validation (issue items 5, 6, 7)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from seaice_utils.cli import build_parser, main
from seaice_utils.core.classes import NODATA, THICK, UNLABELLED, WATER, class_fractions
from seaice_utils.labelling.pipeline import output_paths


def read(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def write_tif(path, bands: np.ndarray) -> None:
    """(H, W, C) array as a GeoTIFF of its dtype (as Earth Engine / SNAP / xarray write them)."""
    import warnings

    import rasterio

    h, w, c = bands.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c,
                           dtype=str(bands.dtype)) as dst:
            dst.write(np.moveaxis(bands, -1, 0))


def reflectance_scene(dtype=np.float32, scale: float = 1.0) -> np.ndarray:
    """Bright ice (reflectance 0.9, snow up to 1.1) with a dark lead (0.05) and a NaN corner."""
    refl = np.full((64, 64, 3), 0.9, np.float64)
    refl[:, :10] = 0.05
    refl[20:30, 40:50] = 1.1                  # bright snow: reflectance above 1 is common
    out = (refl * scale).astype(dtype)
    if np.issubdtype(out.dtype, np.floating):
        out[:4, -4:] = np.nan                  # masked pixels of an xarray export
    return out


# ------------------------------------------------------------------ 5: float reflectance
def test_float_reflectance_tiff_is_labelled_ice_not_all_water(tmp_path):
    write_tif(tmp_path / "refl.tif", reflectance_scene())
    assert main(["label", str(tmp_path / "refl.tif"), str(tmp_path / "out"), "--no-filter",
                 "--no-progress"]) == 0
    p = output_paths(tmp_path / "out", "refl")
    cls = read(p["classes"])
    assert (cls[4:, :10] == WATER).all() and (cls[4:, 10:] == THICK).all()
    assert (cls[:4, -4:] == NODATA).all()          # NaN is no-data, not water
    meta = json.loads(p["sidecar"].read_text())
    assert meta["dtype_in"] == "float32" and meta["reflectance_scale"] == 1.0
    assert meta["reflectance_scale_source"] == "detected: float values within -0.2..1.5"
    assert meta["class_fractions"]["thick ice"] > 0.8
    assert meta["nodata_fraction"] == pytest.approx(16 / 64 / 64)


def test_float_digital_numbers_need_an_explicit_scale(tmp_path, capsys):
    write_tif(tmp_path / "dn.tif", reflectance_scene(scale=10000.0))
    assert main(["label", str(tmp_path / "dn.tif"), str(tmp_path / "out"), "--no-filter",
                 "--no-progress"]) == 1                      # reported, not labelled
    out = capsys.readouterr().out
    assert "dn.tif" in out and "float values 500..11000 are not reflectance" in out
    assert "--scale" in out
    assert not output_paths(tmp_path / "out", "dn")["sidecar"].exists()
    assert main(["label", str(tmp_path / "dn.tif"), str(tmp_path / "out"), "--no-filter",
                 "--scale", "10000", "--no-progress"]) == 0
    p = output_paths(tmp_path / "out", "dn")
    meta = json.loads(p["sidecar"].read_text())
    assert meta["reflectance_scale"] == 10000.0 and meta["reflectance_scale_source"] == "given"
    assert (read(p["classes"])[4:, 10:] == THICK).all()


def test_integer_input_keeps_the_dn_stretch(tmp_path):
    write_tif(tmp_path / "dn16.tif", reflectance_scene(np.uint16, scale=10000.0))
    assert main(["label", str(tmp_path / "dn16.tif"), str(tmp_path / "out"), "--no-filter",
                 "--no-progress"]) == 0
    meta = json.loads(output_paths(tmp_path / "out", "dn16")["sidecar"].read_text())
    assert meta["stretch"] == "uint8 = clip(round(255 * (DN / 10000 + 0) / 1), 0, 255)"
    assert meta["reflectance_scale"] == 10000.0
    assert meta["reflectance_scale_source"] == "default for integer input"


@pytest.mark.parametrize("command", [["label", "in", "out"], ["predict", "m.keras", "in", "out"]])
def test_scale_option_defaults_to_detection(command):
    ap = build_parser()
    assert ap.parse_args(command).scale is None
    assert ap.parse_args(command + ["--scale", "1"]).scale == 1.0


# ------------------------------------------------------------------ 6: threshold gaps
GAP = "autolabel:\n  thin: {lower: [0, 0, 31], upper: [185, 255, 150]}\n"


def grey_png(path):
    from seaice_utils.core.scenes import write_png

    v = np.tile(np.array([10, 100, 180, 240], np.uint8), (8, 8))   # water, thin, gap, thick
    write_png(path, np.repeat(v[..., None], 3, axis=2))


def test_threshold_gap_is_an_error_naming_the_v_values(tmp_path, capsys):
    grey_png(tmp_path / "s.png")
    prof = tmp_path / "gap.yml"
    prof.write_text(GAP)
    assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "out"), "--no-filter",
                 "--params", str(prof), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert ("autolabel: V 151..204 is in no class's range (autolabel.thin.upper.V = 150, "
            "autolabel.thick.lower.V = 205)") in err
    assert "autolabel.allow_gaps: true" in err
    assert not (tmp_path / "out").exists()


def test_allowed_gap_is_unlabelled_not_nodata(tmp_path):
    grey_png(tmp_path / "s.png")
    prof = tmp_path / "gap.yml"
    prof.write_text(GAP + "  allow_gaps: true\n")
    with pytest.warns(UserWarning, match=r"V 151\.\.204 is in no class's range"):
        assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "out"), "--no-filter",
                     "--params", str(prof), "--no-progress"]) == 0
    p = output_paths(tmp_path / "out", "s")
    cls = read(p["classes"])
    assert set(np.unique(cls).tolist()) == {0, 1, 2, UNLABELLED}
    assert (cls[:, 2::4] == UNLABELLED).all()                 # V 180: in the gap
    assert read(p["labels"])[0, 2].tolist() == [255, 0, 255]  # magenta (BGR), not no-data black
    meta = json.loads(p["sidecar"].read_text())
    assert meta["nodata_fraction"] == 0.0
    assert meta["class_fractions"]["unlabelled"] == pytest.approx(0.25)
    assert sum(meta["class_fractions"].values()) == pytest.approx(1.0)
    assert meta["thresholds"]["allow_gaps"] is True
    assert class_fractions(cls) == meta["class_fractions"]


# ------------------------------------------------------------------ 7: sizes
def test_huge_median_kernel_fails_at_once(tmp_path, capsys):
    grey_png(tmp_path / "s.png")
    prof = tmp_path / "p.yml"
    prof.write_text("filter: {median_kernel: 100001}\n")
    t0 = time.perf_counter()
    assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "out"), "--params", str(prof),
                 "--no-progress"]) == 2
    assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert "filter.median_kernel: must be an integer in 3..255, odd (got 100001)" in err
