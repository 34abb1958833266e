"""A season's outputs open in one line: STAC (pystac), NetCDF (xarray), dated COG tags.

The synthetic season (12 dates, 128 px) is run once; its STAC Collection and ``season.nc`` are
checked against ``season_areas.csv`` and the date COGs. The STAC core schemas are validated
offline (pystac ships them); the extension schemas (projection, raster, classification) are
fetched from the web by pystac, so their fields are checked here by structure instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pystac = pytest.importorskip("pystac")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")
rasterio = pytest.importorskip("rasterio")

from seaice_utils.cli import main  # noqa: E402
from seaice_utils.core.classes import CODE_DESCRIPTIONS, MAP_CODES, NODATA, PALETTE  # noqa: E402
from seaice_utils.core.geotiff import class_map_cog  # noqa: E402
from seaice_utils.errors import InputError  # noqa: E402
from seaice_utils.data.season import make_season  # noqa: E402
from seaice_utils.season import run_season  # noqa: E402
from seaice_utils.season.export import (ASSET_KEY, CLASS_FLAGS, date_platforms,  # noqa: E402
                                        scene_platform)


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("season_exports")
    make_season(root / "s", 0, n_dates=12, size=128)
    out = root / "out"
    assert main(["season", str(root / "s" / "season.csv"), str(out), "-q"]) == 0
    with open(out / "season_areas.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return root, out, rows


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _exports(folder: Path) -> dict:
    t = _tree(folder)
    return {k: v for k, v in t.items() if k.startswith("stac/") or k == "season.nc"}


# ------------------------------------------------------------------------------------------
# STAC
# ------------------------------------------------------------------------------------------

def test_stac_collection_loads_with_an_item_per_date(season):
    _, out, rows = season
    coll = pystac.Collection.from_file(str(out / "stac" / "collection.json"))
    items = sorted(coll.get_items(), key=lambda i: i.id)
    assert [i.id for i in items] == [r["date"] for r in rows]
    assert len(items) == len(rows) == 12
    first, last = coll.extent.temporal.intervals[0]
    assert first == dt.datetime(*map(int, rows[0]["date"].split("-")), tzinfo=dt.timezone.utc)
    assert last == dt.datetime(*map(int, rows[-1]["date"].split("-")), tzinfo=dt.timezone.utc)
    w, s, e, n = coll.extent.spatial.bboxes[0]
    assert -180 <= w < e <= 180 and -90 <= s < n < -60          # the Ross Sea, no crossing
    for item, row in zip(items, rows):
        assert item.datetime == dt.datetime.fromisoformat(row["date"]).replace(
            tzinfo=dt.timezone.utc)
        assert item.bbox == [w, s, e, n]
        for k, v in row.items():                                  # the CSV row, as numbers
            if k == "date":
                continue
            got = item.properties[f"seaice:{k}"]
            assert (got == v) if k == "quality" else got == pytest.approx(float(v), abs=1e-6)


def test_stac_assets_are_the_date_cogs_with_extensions(season):
    _, out, rows = season
    coll = pystac.Collection.from_file(str(out / "stac" / "collection.json"))
    classes = [{"value": c, "name": CLASS_FLAGS[c], "description": CODE_DESCRIPTIONS[c],
                "color_hint": "%02X%02X%02X" % PALETTE[c], **({"nodata": True}
                                                             if c == NODATA else {})}
               for c in MAP_CODES]
    for item in coll.get_items():
        asset = item.assets[ASSET_KEY]
        cog = out / "dates" / f"{item.id}_classes.tif"
        assert Path(asset.get_absolute_href()).resolve() == cog.resolve()
        assert asset.media_type == pystac.MediaType.COG and asset.roles == ["data"]
        d = item.to_dict()
        exts = " ".join(d["stac_extensions"])
        for name in ("projection", "raster", "classification"):
            assert f"stac-extensions.github.io/{name}/" in exts
        with rasterio.open(cog) as src:
            assert d["properties"]["proj:code"] == f"EPSG:{src.crs.to_epsg()}"
            assert d["properties"]["proj:shape"] == [src.height, src.width]
            assert d["properties"]["proj:transform"] == list(src.transform)[:6]
        band, = d["assets"][ASSET_KEY]["raster:bands"]
        assert band["data_type"] == "uint8" and band["nodata"] == 255
        got = d["assets"][ASSET_KEY]["classification:classes"]
        assert got == classes
        for c in got:                     # the classification schema's patterns
            assert re.fullmatch(r"[0-9A-Za-z\-_]+", c["name"])
            assert re.fullmatch(r"[0-9A-Fa-f]{6}", c["color_hint"])
        links = [ln for ln in item.links if ln.rel == "derived_from"]
        n = int(item.properties["seaice:n_scenes"])
        assert len(links) == 2 * n                    # each scene and its class map
        for ln in links:
            assert not ln.href.startswith("/")
            assert Path(ln.get_absolute_href()).is_file()


def test_stac_validates_and_is_relative(season):
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    _, out, _ = season
    v = JsonSchemaSTACValidator()
    texts = [p.read_text() for p in sorted((out / "stac").rglob("*.json"))]
    assert len(texts) == 13
    for text in texts:
        assert str(out) not in text and '"self"' not in text      # every link relative
        d = json.loads(text)
        kind = (pystac.STACObjectType.COLLECTION if d["type"] == "Collection"
                else pystac.STACObjectType.ITEM)
        v.validate_core(d, kind, d["stac_version"])                # offline: bundled schemas


def test_stac_folder_can_move(season, tmp_path):
    _, out, _ = season
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    coll = pystac.Collection.from_file(str(moved / "stac" / "collection.json"))
    for item in coll.get_items():
        href = Path(item.assets[ASSET_KEY].get_absolute_href())
        assert href.is_file() and moved.resolve() in href.resolve().parents


# ------------------------------------------------------------------------------------------
# NetCDF
# ------------------------------------------------------------------------------------------

def test_netcdf_cube_matches_csv_and_cogs(season):
    _, out, rows = season
    with xr.open_dataset(out / "season.nc") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert [str(t)[:10] for t in ds["time"].values] == [r["date"] for r in rows]
        assert ds["classes"].dims == ("time", "y", "x")
        for k in ("thick_km2", "thin_km2", "water_km2", "unlabelled_km2", "ice_km2",
                  "observed_km2", "region_km2", "observed_share", "cloud_km2", "cloud_share"):
            np.testing.assert_allclose(ds[k].values, [float(r[k]) for r in rows], atol=1e-6)
        assert ds["n_scenes"].values.tolist() == [int(r["n_scenes"]) for r in rows]
        assert ds["quality"].values.tolist() == [r["quality"] for r in rows]
        assert ds["classes"].encoding["zlib"] and ds["classes"].encoding["_FillValue"] == NODATA
        gm = ds["crs"].attrs
        assert ds["classes"].encoding.get("grid_mapping", ds["classes"].attrs.get(
            "grid_mapping")) == "crs"
        assert gm["grid_mapping_name"] == "polar_stereographic"
        assert gm["latitude_of_projection_origin"] == -90.0 and gm["standard_parallel"] == -71.0
        x, y = ds["x"].values, ds["y"].values
    with xr.open_dataset(out / "season.nc", mask_and_scale=False) as raw:
        cls = raw["classes"]
        assert cls.dtype == np.uint8
        assert cls.attrs["flag_values"].tolist() == [c for c in MAP_CODES if c != NODATA]
        assert cls.attrs["flag_meanings"].split() == [CLASS_FLAGS[c] for c in MAP_CODES
                                                      if c != NODATA]
        for i, r in enumerate(rows):
            with rasterio.open(out / "dates" / f"{r['date']}_classes.tif") as src:
                np.testing.assert_array_equal(cls.isel(time=i).values, src.read(1))
                t, crs, (h, w) = src.transform, src.crs, (src.height, src.width)
    np.testing.assert_allclose(x, t.c + t.a * (np.arange(w) + 0.5))
    np.testing.assert_allclose(y, t.f + t.e * (np.arange(h) + 0.5))
    assert rasterio.crs.CRS.from_wkt(gm["crs_wkt"]) == crs


# ------------------------------------------------------------------------------------------
# tags
# ------------------------------------------------------------------------------------------

def test_date_cogs_carry_their_date(season):
    _, out, rows = season
    for r in rows:
        with rasterio.open(out / "dates" / f"{r['date']}_classes.tif") as src:
            tags = src.tags()
        assert tags["ACQUISITION_DATE"] == r["date"]
        assert "PLATFORM" not in tags                 # the synthetic scenes name no platform


def test_class_map_cog_tags_are_optional():
    m = np.zeros((8, 8), np.uint8)
    kw = dict(crs="EPSG:3031", transform=(10.0, 0.0, 0.0, 0.0, -10.0, 0.0))
    plain = class_map_cog(m, **kw)
    assert class_map_cog(m, **kw, tags=None) == plain == class_map_cog(m, **kw, tags={})
    tagged = class_map_cog(m, **kw, tags={"ACQUISITION_DATE": "2019-11-01",
                                          "PLATFORM": "Sentinel-2"})
    with rasterio.MemoryFile(tagged) as mem, mem.open() as src:
        assert src.tags()["PLATFORM"] == "Sentinel-2"
        assert src.tags()["ACQUISITION_DATE"] == "2019-11-01"


def test_platform_from_scene_tags(tmp_path):
    def tif(name, **tags):
        p = tmp_path / name
        with rasterio.open(p, "w", driver="GTiff", width=4, height=4, count=1,
                           dtype="uint8", crs="EPSG:3031",
                           transform=rasterio.Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0)) as dst:
            dst.write(np.zeros((1, 4, 4), np.uint8))
            dst.update_tags(**tags)
        return p

    s2 = tif("a.tif", collection="sentinel-2-l2a")
    ee = tif("b.tif", collection="COPERNICUS/S2_HARMONIZED")
    other = tif("c.tif", DATE="2019-11-01")
    assert scene_platform(s2) == scene_platform(ee) == "Sentinel-2"
    assert scene_platform(other) is None
    d1, d2 = dt.date(2019, 11, 1), dt.date(2019, 11, 2)
    assert date_platforms([(d1, s2), (d1, ee), (d2, s2), (d2, other)]) == {
        "2019-11-01": "Sentinel-2", "2019-11-02": None}


# ------------------------------------------------------------------------------------------
# the folder's rules
# ------------------------------------------------------------------------------------------

def test_rerun_rewrites_nothing(season):
    root, out, _ = season
    before = _tree(out)
    res = run_season(root / "s" / "season.csv", out, progress=False)
    assert res.exports_written == [] and res.dates_written == []
    assert _tree(out) == before


def test_foreign_export_file_is_refused(season, tmp_path):
    root, _, _ = season
    out = tmp_path / "out"
    out.mkdir()
    (out / "season.nc").write_bytes(b"mine")
    with pytest.raises(InputError, match="season.nc"):       # season files without a record
        run_season(root / "s" / "season.csv", out, progress=False)
    assert (out / "season.nc").read_bytes() == b"mine"
    (out / "season.nc").unlink()
    (out / "stac" / "2019-11-01").mkdir(parents=True)
    (out / "stac" / "2019-11-01" / "2019-11-01.json").write_text("{}")
    with pytest.raises(InputError):
        run_season(root / "s" / "season.csv", out, progress=False)
    assert (out / "stac" / "2019-11-01" / "2019-11-01.json").read_text() == "{}"


def test_another_season_is_refused_then_overwritten(season, tmp_path):
    root, out0, rows0 = season
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    make_season(tmp_path / "s2", 1, n_dates=14, size=128)
    other = tmp_path / "s2" / "season.csv"
    before = _exports(out)
    assert main(["season", str(other), str(out), "-q"]) == 2
    assert _exports(out) == before
    assert main(["season", str(other), str(out), "-q", "--overwrite"]) == 0
    with open(out / "season_areas.csv", newline="") as fh:
        days = [r["date"] for r in csv.DictReader(fh)]
    assert days != [r["date"] for r in rows0]
    assert sorted(p.name for p in (out / "stac").iterdir() if p.is_dir()) == days
    coll = pystac.Collection.from_file(str(out / "stac" / "collection.json"))
    assert sorted(i.id for i in coll.get_items()) == days
    with xr.open_dataset(out / "season.nc") as ds:
        assert [str(t)[:10] for t in ds["time"].values] == days


def test_exports_skipped_with_a_warning_without_the_geo_libraries(season, monkeypatch):
    import sys

    from seaice_utils.season.export import export_season
    from seaice_utils.season.folder import SeasonFolder

    _, out, rows = season
    monkeypatch.setitem(sys.modules, "h5netcdf", None)          # import h5netcdf fails
    with pytest.warns(UserWarning, match="geo extra"):
        assert export_season(SeasonFolder(out), rows, {}) == []
