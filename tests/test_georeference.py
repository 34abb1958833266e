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


def test_a_local_polar_product_keeps_its_grid_through_collect_label_and_predict(tmp_path):
    """The issue's chain: a local product (EPSG:3031, 20 m) -> seaice collect --folder ->
    seaice label and seaice predict -> class-map COGs on the scene's grid, km^2 = px x 400 m^2."""
    tf = pytest.importorskip("tensorflow")
    import pandas as pd

    from seaice_utils.training.unet import build_unet

    products = tmp_path / "products"
    products.mkdir()
    sc = synthesize_scene(12, size=600, nodata_wedge=True)
    dn = (sc.image.astype(np.uint32) * 10000 // 255).astype(np.uint16)
    name = "S2B_MSIL2A_20191115T202851_N0213_R128_T01CDK_20191115T220119.tif"
    with rasterio.open(products / name, "w", driver="GTiff", width=600, height=600, count=3,
                       dtype="uint16", crs=CRS, transform=TRANSFORM, nodata=0) as dst:
        dst.write(np.moveaxis(dn, -1, 0))
    out = tmp_path / "out"
    assert main(["collect", "--params", "quick", "--folder", str(products), "--outputs",
                 str(out), "--set", "collect.scene_px=256", "--set", "collect.scale=20", "-q"]) == 0
    scenes = sorted((out / "data" / "local" / "scenes").glob("*.tif"))
    assert len(scenes) >= 2
    scene = scenes[1]                                   # a window to the right of the origin
    with rasterio.open(scene) as src:
        crs, transform = src.crs, src.transform
    assert crs.to_string() == CRS and transform.a == 20 and transform.c > TRANSFORM.c
    assert main(["label", str(scene), str(tmp_path / "labels"), "-q"]) == 0
    tf.keras.utils.set_random_seed(5)
    model = tmp_path / "unet.keras"
    build_unet(depth=2, base_filters=4, name="unet").save(model)
    assert main(["predict", str(model), str(scene), str(tmp_path / "maps"), "-q"]) == 0
    for cog in (tmp_path / "labels" / f"{scene.stem}_classes.tif",
                tmp_path / "maps" / f"{scene.stem}_classes.tif"):
        with rasterio.open(cog) as src:
            assert src.crs == crs and src.transform == transform
            band = src.read(1)
    row = pd.read_csv(tmp_path / "maps" / "summary.csv").iloc[0]
    assert row["pixel_area_m2"] == 400
    assert row["thick_ice_km2"] == pytest.approx((band == 2).sum() * 400 / 1e6)
    assert row["valid_km2"] == pytest.approx((band != 255).sum() * 400 / 1e6)
