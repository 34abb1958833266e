"""Georeference kept end to end: a polar-stereographic scene with 20 m pixels gives class maps
as Cloud-Optimised GeoTIFFs on the same grid (labelling and prediction alike), areas from the
transform."""

from __future__ import annotations

import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.data.synthetic import synthesize_scene

rasterio = pytest.importorskip("rasterio")

CRS = "EPSG:3031"
TRANSFORM = rasterio.transform.from_origin(-400000, -1300000, 20, 20)


@pytest.fixture()
def polar_scene(tmp_path):
    """A 16-bit reflectance GeoTIFF (DN = reflectance x 10000) in EPSG:3031, 20 m pixels."""
    d = tmp_path / "scenes"
    d.mkdir()
    sc = synthesize_scene(11, size=600, nodata_wedge=True)
    dn = (sc.image.astype(np.uint32) * 10000 // 255).astype(np.uint16)
    with rasterio.open(d / "polar.tif", "w", driver="GTiff", width=600, height=600, count=3,
                       dtype="uint16", crs=CRS, transform=TRANSFORM, nodata=0) as dst:
        dst.write(np.moveaxis(dn, -1, 0))
    return d / "polar.tif"


def _check_cog(path, classes_png):
    import cv2

    with rasterio.open(path) as src:
        assert src.crs.to_string() == CRS and src.transform == TRANSFORM
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.block_shapes == [(256, 256)] and src.overviews(1)[0] == 2
        assert src.nodata == 255 and src.colormap(1)[2][:3] == (255, 0, 0)    # thick ice red
        assert "thick ice" in src.descriptions[0]
        assert "Copernicus Sentinel" in src.tags()["ATTRIBUTION"]
        band = src.read(1)
    np.testing.assert_array_equal(band, cv2.imread(str(classes_png), cv2.IMREAD_UNCHANGED))
    return band


def test_label_writes_a_cog_on_the_scene_grid(polar_scene, tmp_path):
    out = tmp_path / "labels"
    assert main(["label", str(polar_scene), str(out), "--no-progress"]) == 0
    band = _check_cog(out / "polar_classes.tif", out / "polar_classes.png")
    assert (band == 255).any() and (band != 255).any()          # the wedge stays no-data


def test_predict_writes_a_cog_and_areas_from_the_transform(polar_scene, tmp_path):
    tf = pytest.importorskip("tensorflow")
    import pandas as pd

    from seaice_utils.training.unet import build_unet

    tf.keras.utils.set_random_seed(5)
    model = tmp_path / "unet.keras"
    build_unet(depth=2, base_filters=4, name="unet").save(model)
    out = tmp_path / "maps"
    assert main(["predict", str(model), str(polar_scene), str(out), "--no-progress"]) == 0
    band = _check_cog(out / "polar_classes.tif", out / "polar_classes.png")
    row = pd.read_csv(out / "summary.csv").iloc[0]
    for code, key in ((0, "water"), (1, "thin"), (2, "thick")):
        col = [c for c in row.index if c.endswith("_km2") and key in c]
        assert len(col) == 1
        assert row[col[0]] == pytest.approx((band == code).sum() * 400 / 1e6)
