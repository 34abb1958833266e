"""Georeferenced end to end, by default: a collected scene is an 8-bit GeoTIFF on its product's
grid, its labels and predictions are COGs on the same grid, and notebook 01's footprint figure is
drawn in polar stereographic km (EPSG:3031 for the Ross Sea)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from seaice_utils.cli import main  # noqa: E402
from seaice_utils.collect.figure import collection_figure  # noqa: E402
from seaice_utils.collect.products import Product, dn_to_rgb8  # noqa: E402
from seaice_utils.collect.sink import SceneSink, run_products  # noqa: E402
from seaice_utils.data.dataset import SceneRecord, load_scene, read_catalogue  # noqa: E402
from seaice_utils.data.synthetic import synthesize_scene  # noqa: E402
from seaice_utils.params import load_params_dict  # noqa: E402

ROSS_SEA = {"west": -180.0, "south": -78.0, "east": -140.0, "north": -70.0}
PX = 256


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A 600 px product on a polar stereographic grid (EPSG:3031, 10 m, inside the Ross Sea box)
    collected through the shared loop with the default profile: (root, rows, product DNs)."""
    root = tmp_path_factory.mktemp("geo") / "data" / "stac"
    sc = synthesize_scene(11, size=600, nodata_wedge=True)
    dn = (sc.image.astype(np.uint32) * 10000 // 255).astype(np.uint16)
    dn[sc.truth == 255] = 0
    product = Product(id="S2B_MSIL1C_20191115T202851_N0208_R128_T01CDK_20191115T220119",
                      crs="EPSG:3031", transform=(10.0, 0.0, -400000.0, 0.0, -10.0, -1300000.0),
                      height=600, width=600, datetime="2019-11-15T20:28:51Z", tile="01CDK",
                      offset=0.0, offset_source="test", baseline="02.08")
    params = load_params_dict({"global": {"progress": False},
                               "collect": {"scene_px": PX, "max_scenes": 2,
                                           "scenes_per_product": 2}})
    sink = SceneSink(root, source="stac", query={"collection": "test"}, params=params)

    def fetch(p, row, col):
        win = np.zeros((PX, PX, 3), np.uint16)
        part = dn[row:row + PX, col:col + PX]
        win[:part.shape[0], :part.shape[1]] = part
        return win

    rows = run_products(sink, [product], fetch, region=ROSS_SEA, progress=False)
    assert len(rows) == 2
    return root, rows, fetch


def test_default_scene_is_an_8bit_geotiff_on_the_window_grid(collected):
    root, rows, fetch = collected
    for r in rows:
        assert r["format"] == "geotiff8" and r["file"] == f"scenes/{r['name']}.tif"
        ro, co = int(r["row_off"]), int(r["col_off"])
        with rasterio.open(root / r["file"]) as ds:
            assert ds.crs.to_epsg() == 3031 and ds.nodata == 0 and ds.dtypes == ("uint8",) * 3
            assert tuple(ds.transform)[:6] == (10.0, 0.0, -400000.0 + 10 * co, 0.0, -10.0,
                                               -1300000.0 - 10 * ro)
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert [c.name for c in ds.colorinterp] == ["red", "green", "blue"]
            assert "Copernicus Sentinel" in ds.tags()["ATTRIBUTION"]
            rgb = np.moveaxis(ds.read(), 0, -1)
        np.testing.assert_array_equal(rgb, dn_to_rgb8(fetch(None, ro, co)))   # png8's pixels
    # the later notebooks read it through the catalogue, with its georeference
    recs = read_catalogue(root)
    sc = load_scene(recs[0])
    assert sc.meta["crs"] and len(sc.meta["transform"]) == 6 and sc.meta["stretch"].startswith(
        "none (8-bit")
    # a scenes/ folder of GeoTIFFs without its catalogue is still read
    bare = root.parent / "bare"
    (bare / "scenes").mkdir(parents=True)
    for r in rows:
        (bare / r["file"]).write_bytes((root / r["file"]).read_bytes())
    assert sorted(r.name for r in read_catalogue(bare)) == sorted(r["name"] for r in rows)
    assert all(r.scene_path.suffix == ".tif" and r.scene_path.is_file()
               for r in read_catalogue(bare))


def _same_grid(classes: Path, scene: Path) -> None:
    with rasterio.open(classes) as c, rasterio.open(scene) as s:
        assert c.crs == s.crs and c.crs.to_epsg() == 3031
        assert c.transform == s.transform and c.shape == s.shape
        assert c.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_label_of_a_collected_scene_is_a_cog_on_its_grid(collected, tmp_path):
    root, rows, _ = collected
    scene = root / rows[0]["file"]
    assert main(["label", str(scene), str(tmp_path / "labels"), "--no-progress"]) == 0
    _same_grid(tmp_path / "labels" / f"{scene.stem}_classes.tif", scene)


def test_predict_on_a_collected_scene_is_a_cog_on_its_grid(collected, tmp_path):
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.training.unet import build_unet

    root, rows, _ = collected
    scene = root / rows[0]["file"]
    tf.keras.utils.set_random_seed(5)
    model = tmp_path / "unet.keras"
    build_unet(depth=2, base_filters=4, name="unet").save(model)
    assert main(["predict", str(model), str(scene), str(tmp_path / "maps"), "--no-progress"]) == 0
    _same_grid(tmp_path / "maps" / f"{scene.stem}_classes.tif", scene)


# --------------------------------------------------------------------------------------------
# notebook 01's footprint figure
# --------------------------------------------------------------------------------------------

def _wkt(points) -> str:
    return "POLYGON ((" + ", ".join(f"{a:.5f} {b:.5f}" for a, b in [*points, points[0]]) + "))"


def _box(lon, lat, dlon=1.0, dlat=0.3):
    return [(lon, lat), (lon + dlon, lat), (lon + dlon, lat + dlat), (lon, lat + dlat)]


ROSS_FEET = [_box(-170, -76.5), _box(-150, -77.5, 1.5, 0.25), _box(-145, -71, 0.8),
             [(179.6, -75.0), (-179.4, -75.0), (-179.4, -74.7), (179.6, -74.7)]]  # antimeridian


def _records(feet):
    return [SceneRecord(Path("."), f"s{i}", {"footprint": _wkt(f)}) for i, f in enumerate(feet)]


def test_figure_is_polar_stereographic_km(tmp_path):
    fig = collection_figure(_records(ROSS_FEET), region=ROSS_SEA, n_thumbs=0)
    ax = fig.axes[0]
    assert "km" in ax.get_xlabel() and "km" in ax.get_ylabel()
    assert "EPSG:3031" in ax.get_xlabel() + ax.get_title()
    assert ax.get_aspect() == 1.0
    patches = [p.get_xy() for p in ax.patches]
    assert len(patches) == len(ROSS_FEET)
    for xy in patches:
        # the Ross Sea sector of EPSG:3031, in km: x -1500..0 (lon -180..-140 west of the
        # antimeridian, a little past it), y -2300..-1000 (lat -78..-70)
        assert np.all((xy[:, 0] > -1500) & (xy[:, 0] < 50)), xy
        assert np.all((xy[:, 1] > -2300) & (xy[:, 1] < -1000)), xy
        # footprints of ~30 km stay small: no polygon spans the globe at the antimeridian
        assert np.ptp(xy[:, 0]) < 60 and np.ptp(xy[:, 1]) < 60
    # the antimeridian footprint straddles x = 0 (lon 180 in EPSG:3031)
    cross = patches[-1]
    assert cross[:, 0].min() < 0 < cross[:, 0].max()
    # the query region: projected the same way, its edges densified (parallels are arcs)
    (region,) = [ln for ln in ax.lines if ln.get_label() == "query region"]
    rxy = region.get_xydata()
    assert len(rxy) > 100
    radius = np.hypot(rxy[:, 0], rxy[:, 1])
    assert radius.min() == pytest.approx(1300, abs=60) and radius.max() == pytest.approx(2190,
                                                                                          abs=60)
    fig.savefig(tmp_path / "footprints.png")
    assert (tmp_path / "footprints.png").stat().st_size > 0


def test_figure_picks_the_hemisphere():
    arctic = [_box(-40, 75), _box(-30, 78)]
    fig = collection_figure(_records(arctic), region=[-50, 70, -20, 80], n_thumbs=0)
    ax = fig.axes[0]
    assert "EPSG:3413" in ax.get_xlabel() and "km" in ax.get_ylabel()
    for p in ax.patches:
        xy = p.get_xy()     # EPSG:3413 (lon 0 at -45): Greenland Sea sector, km
        assert np.all(np.abs(xy) < 2000)
    assert re.search(r"EPSG:3413", ax.get_title())


def test_notebook_01_catalogue_footprints_plot(collected, tmp_path):
    """The footprints the sink writes (catalogue.csv) are what the figure projects."""
    root, rows, _ = collected
    with (root / "catalogue.csv").open(newline="") as fh:
        recs = [SceneRecord(root, r["name"], r) for r in csv.DictReader(fh)]
    fig = collection_figure(recs, region=ROSS_SEA, n_thumbs=2)
    ax = fig.axes[0]
    with rasterio.open(root / rows[0]["file"]) as ds:
        x0, y0 = ds.transform.c / 1e3, ds.transform.f / 1e3     # grid corner, km
    xy = ax.patches[0].get_xy()
    # the product grid is EPSG:3031 itself, so the footprint lands on its own corner
    assert np.min(np.hypot(xy[:, 0] - x0, xy[:, 1] - y0)) < 0.01


def test_season_reads_the_collected_catalogue(collected, tmp_path):
    """notebook 01's catalogue.csv (date and file columns) is a season input as it is: its two
    windows of one product are one date, mosaicked on the product's grid."""
    root, rows, _ = collected
    out = tmp_path / "season"
    assert main(["season", str(root / "catalogue.csv"), str(out), "--no-progress", "-q"]) == 0
    with (out / "season_areas.csv").open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["date"] for r in got] == ["2019-11-15"] and got[0]["n_scenes"] == "2"
    assert got[0]["cloud_masks"] == "0" and float(got[0]["observed_km2"]) > 0
    from seaice_utils.core.areas import ground_pixel_areas

    labelled = 0.0
    for r in rows:
        with rasterio.open(out / "scenes" / f"{r['name']}_classes.tif") as c:
            ground = ground_pixel_areas(c.transform, c.crs.to_string(), c.shape)
            labelled += float(ground[c.read(1) <= 2].sum()) / 1e6
    # the windows do not overlap: the date's observed area is both windows' class pixels', on
    # the ground (at 78 S a 10 m pixel of EPSG:3031 covers about 3.5 % more than 100 m²)
    assert float(got[0]["observed_km2"]) == pytest.approx(labelled, abs=2e-6)
    with rasterio.open(out / "dates" / "2019-11-15_classes.tif") as d:
        assert d.crs.to_epsg() == 3031 and d.transform.a == 10.0
