"""Cloud masks collected with the scenes, offline, on every route; snow and ice never masked.

* STAC, for real over HTTP on the loopback interface (as ``test_collect_stac.py``): items of
  three dates with RGB COGs and a 20 m ``scl`` asset; the second date is hazy (SCL 8/9 over a
  band of water) and every date has an ice area classified 11 (snow/ice). ``seaice collect``
  writes scenes and masks on the same grid, ``seaice season`` reads the catalogue as it is.
* Local ``.SAFE`` products (JPEG 2000 files): ``SCL_20m`` preferred, ``MSK_CLDPRB_20m`` alone
  used as it is.
* Earth Engine with ``ee.apitestcase`` and a fake ``computePixels`` (as ``test_collect_ee.py``):
  the join to ``COPERNICUS/S2_CLOUD_PROBABILITY`` and the ``SCL`` band for L2A.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import LoopbackHandler, loopback_server

rasterio = pytest.importorskip("rasterio")

from rasterio.io import MemoryFile  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.warp import transform as warp  # noqa: E402

from seaice_utils.collect.masks import read_on_grid, scl_to_percent  # noqa: E402
from seaice_utils.params import load_params_dict  # noqa: E402

SIZE = 256           # product side in px at 10 m (one scene per product)
CRS = "EPSG:32702"   # UTM zone 2S
DATES = ("2019-11-05", "2019-11-12", "2019-11-20")
HAZY = "2019-11-12"


def _origin() -> tuple[float, float]:
    (x,), (y,) = warp("EPSG:4326", CRS, [-170.5], [-76.5])
    return round(x / 20) * 20, round(y / 20) * 20


def _tif_bytes(arr: np.ndarray, transform, *, driver="COG") -> bytes:
    import rasterio.shutil

    with MemoryFile() as m1:
        with m1.open(driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                     dtype=arr.dtype.name, crs=CRS, transform=transform) as dst:
            dst.write(arr, 1)
        with m1.open() as src, MemoryFile() as m2:
            rasterio.shutil.copy(src, m2.name, driver=driver, blocksize=128, overviews="none")
            return bytes(m2.read())


def _scene(hazy: bool) -> tuple[np.ndarray, np.ndarray]:
    """(SIZE, SIZE, 3) DNs of water, thin and thick ice stripes, and the (SIZE/2)^2 SCL."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cls = (xx // 32) % 3                                     # 0 water, 1 thin, 2 thick
    refl = np.choose(cls, [0.04, 0.45, 0.9])
    scl = np.choose(cls[::2, ::2], [6, 11, 11]).astype(np.uint8)   # ice: snow/ice class 11
    if hazy:
        haze = yy < 96                                       # a band of haze over the top
        refl = np.where(haze, np.clip(refl + 0.35, 0, 1), refl)
        scl[:48] = np.where((xx[:96:2, ::2] // 64) % 2 == 0, 8, 9)
    dn = np.rint(refl[..., None] * np.array([1.0, 1.02, 1.06]) * 10000).astype(np.uint16)
    return dn, scl


@contextlib.contextmanager
def serve_stac(scenes):
    """A loopback STAC API of ``scenes`` ((date, (SIZE, SIZE, 3) uint16 DNs, (SIZE/2)^2 SCL)
    each: one ``sentinel-2-l2a`` item per date with red, green, blue and ``scl`` COGs); yields
    its base URL."""
    x0, y0 = _origin()
    t10, t20 = from_origin(x0, y0, 10, 10), from_origin(x0, y0, 20, 20)
    files: dict[str, bytes] = {}
    days = [day for day, _, _ in scenes]
    for i, (day, dn, scl) in enumerate(scenes):
        for b, band in enumerate(("B04", "B03", "B02")):
            files[f"{i}_{band}.tif"] = _tif_bytes(dn[..., b], t10)
        files[f"{i}_SCL.tif"] = _tif_bytes(scl, t20)
    lons, lats = warp(CRS, "EPSG:4326", [x0, x0 + 10 * SIZE, x0 + 10 * SIZE, x0, x0],
                      [y0, y0, y0 - 10 * SIZE, y0 - 10 * SIZE, y0])
    ring = [[a, b] for a, b in zip(lons, lats)]
    state = {"base": ""}

    def items():
        common = {"B04": "red", "B03": "green", "B02": "blue"}
        out = []
        for i, day in enumerate(days):
            assets = {common[b]: {"href": f"{state['base']}/cogs/{i}_{b}.tif", "roles": ["data"]}
                      for b in common}
            # Earth Search's key for the 20 m scene classification
            assets["scl"] = {"href": f"{state['base']}/cogs/{i}_SCL.tif", "roles": ["data"]}
            out.append({"type": "Feature", "stac_version": "1.0.0", "collection": "sentinel-2-l2a",
                        "id": f"S2B_02CMT_{day}_{i}", "bbox": [min(lons), min(lats), max(lons),
                                                              max(lats)],
                        "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": {"datetime": f"{day}T20:28:51Z", "eo:cloud_cover": 5.0 + i,
                                       "s2:processing_baseline": "02.13",
                                       "s2:mgrs_tile": "02CMT"},
                        "links": [], "assets": assets, "stac_extensions": []})
        return out

    class Handler(LoopbackHandler):
        def _route(self):
            path, base = self.path.split("?")[0], state["base"]
            if path == "/":
                conf = ["https://api.stacspec.org/v1.0.0/core",
                        "https://api.stacspec.org/v1.0.0/item-search",
                        "https://api.stacspec.org/v1.0.0/item-search#query"]
                return self._send(200, json.dumps({
                    "type": "Catalog", "id": "loopback", "stac_version": "1.0.0",
                    "description": "test", "conformsTo": conf,
                    "links": [{"rel": "self", "href": base + "/"},
                              {"rel": "root", "href": base + "/"},
                              {"rel": "search", "href": base + "/search", "method": "POST",
                               "type": "application/geo+json"}]}).encode())
            if path == "/search":
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                feats = [it for it in items() if it["collection"] in body.get("collections", [])]
                return self._send(200, json.dumps({"type": "FeatureCollection",
                                                   "features": feats, "links": []}).encode())
            name = path.rsplit("/", 1)[-1]
            if path.startswith("/cogs/") and name in files:
                data = files[name]
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", (self.headers.get("Range") or "").strip())
                if m and self.command == "GET":
                    a, b = int(m[1]), min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
                    return self._send(206, data[a:b + 1], "image/tiff",
                                      {"Content-Range": f"bytes {a}-{b}/{len(data)}"})
                return self._send(200, data, "image/tiff")
            return self._send(404, b'{"code": "NotFound"}')

    with loopback_server(Handler, state):
        yield state["base"]


@pytest.fixture(scope="module")
def stac_masks_server():
    scenes = [(day, *_scene(day == HAZY)) for day in DATES]
    with serve_stac(scenes) as base:
        yield {"base": base, "scl": {day: scl for day, _, scl in scenes}}


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_rule_and_nearest_resampling():
    assert scl_to_percent(np.arange(12)).tolist() == [0, 0, 0, 100, 0, 0, 0, 0, 100, 100, 100, 0]
    scl = np.arange(16, dtype=np.uint8).reshape(4, 4)
    with MemoryFile(_tif_bytes(scl, from_origin(1000, 2000, 20, 20), driver="GTiff")) as m, \
            m.open() as ds:
        # a 10 m grid one 10 m pixel right and down of the 20 m grid's corner, overhanging it
        got = read_on_grid(ds, (10, 0, 1010, 0, -10, 1990), 8, crs=CRS)
    expect = np.zeros((8, 8), np.uint8)
    idx = (np.arange(8) + 1) // 2                       # source pixel under each centre
    ok = idx < 4
    expect[np.ix_(ok, ok)] = scl[np.ix_(idx[ok], idx[ok])]
    assert np.array_equal(got, expect)


def test_stac_collect_then_season_masks_haze_not_ice(stac_masks_server, tmp_path):
    from seaice_utils.cli import main

    profile = tmp_path / "p.yml"
    profile.write_text("global: {progress: false}\ndata: {source: stac}\n"
                       f"collect: {{stac_url: '{stac_masks_server['base']}', scene_px: {SIZE}, "
                       "max_scenes: 3, scenes_per_product: 1, timeout_s: 10, fallback: error}\n")
    out = tmp_path / "o"
    assert main(["collect", "--params", str(profile), "--outputs", str(out),
                 "--no-progress"]) == 0
    root = out / "data" / "stac"
    rows = _csv(root / "catalogue.csv")
    assert [r["datetime"][:10] for r in sorted(rows, key=lambda r: r["datetime"])] == list(DATES)
    for r in rows:
        assert r["cloud_mask_source"] == "scl" and r["cloud_mask"] == f"masks/{r['name']}.tif"
        with rasterio.open(root / r["file"]) as sc, rasterio.open(root / r["cloud_mask"]) as mk:
            assert mk.count == 1 and mk.dtypes[0] == "uint8" and mk.crs == sc.crs
            assert mk.transform == sc.transform and mk.shape == sc.shape
            assert mk.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            mask = mk.read(1)
        scl = np.kron(stac_masks_server["scl"][r["datetime"][:10]], np.ones((2, 2), np.uint8))
        assert np.all(mask[scl == 11] == 0)                   # snow/ice never masked
        assert np.all(mask[np.isin(scl, (8, 9))] == 100)
        assert set(np.unique(mask)) <= {0, 100}
        assert (mask == 100).any() == (r["datetime"][:10] == HAZY)

    season = tmp_path / "season"
    assert main(["season", str(root / "catalogue.csv"), str(season), "--no-progress", "-q"]) == 0
    by_date = {r["date"]: r for r in _csv(season / "season_areas.csv")}
    assert sorted(by_date) == list(DATES)
    for day, r in by_date.items():
        assert int(r["cloud_masks"]) == 1
        share = float(r["cloud_share"])
        # the haze band (96 of 256 rows, minus what the no-data/edges leave) is the cloud;
        # ice under SCL 11 is counted as observed on every date
        assert (share == pytest.approx(96 / SIZE, abs=0.02)) if day == HAZY else share == 0.0
    clear = float(by_date[DATES[0]]["ice_km2"]) / float(by_date[DATES[0]]["observed_km2"])
    hazy = float(by_date[HAZY]["ice_km2"]) / float(by_date[HAZY]["observed_km2"])
    assert hazy == pytest.approx(clear, abs=0.03)            # the haze is not read as ice


def _safe(tmp: Path, day: str, *, scl: np.ndarray | None, prob: np.ndarray | None) -> Path:
    from rasterio.shutil import copy as rio_copy

    stamp = day.replace("-", "") + "T202851"
    safe = tmp / f"S2B_MSIL2A_{stamp}_N0213_R128_T02CMT_{day.replace('-', '')}T220119.SAFE"
    gran = safe / "GRANULE" / f"L2A_T02CMT_A000001_{stamp}"
    x0, y0 = _origin()
    dn, _ = _scene(False)
    todo = [(gran / "IMG_DATA" / "R10m" / f"T02CMT_{stamp}_{b}_10m.jp2", dn[..., i],
             from_origin(x0, y0, 10, 10)) for i, b in enumerate(("B04", "B03", "B02"))]
    if scl is not None:
        todo.append((gran / "IMG_DATA" / "R20m" / f"T02CMT_{stamp}_SCL_20m.jp2", scl,
                     from_origin(x0, y0, 20, 20)))
    if prob is not None:
        todo.append((gran / "QI_DATA" / "MSK_CLDPRB_20m.jp2", prob, from_origin(x0, y0, 20, 20)))
    for path, arr, t in todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                          dtype=arr.dtype.name, crs=CRS, transform=t) as dst:
                dst.write(arr, 1)
            with mem.open() as src:
                rio_copy(src, str(path), driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")
    return safe


def test_safe_products_scl_first_then_cloud_probability(tmp_path):
    from seaice_utils.collect.local import find_mask, find_products, ingest_products

    if "JP2OpenJPEG" not in rasterio.drivers.raster_driver_extensions().values():
        pytest.skip("no JPEG 2000 driver in this GDAL")
    half = SIZE // 2
    yy, xx = np.mgrid[0:half, 0:half]
    scl = np.where(xx < 32, 11, np.where(yy < 20, 9, 4)).astype(np.uint8)
    prob = np.clip(xx, 0, 100).astype(np.uint8)          # high over bright ice too: as is
    _safe(tmp_path / "in", "2019-11-05", scl=scl, prob=prob)
    _safe(tmp_path / "in", "2019-11-12", scl=None, prob=prob)
    params = load_params_dict({"global": {"progress": False}, "data": {"source": "folder"},
                               "collect": {"scene_px": SIZE}})
    prods = sorted(find_products(tmp_path / "in", params), key=lambda p: p.datetime)
    assert [p.mask[1] for p in prods] == ["scl", "cloud_probability"]
    assert prods[0].mask[0].name.endswith("_SCL_20m.jp2")
    assert find_mask(prods[1].files[0])[0].name == "MSK_CLDPRB_20m.jp2"
    rows = ingest_products(prods, tmp_path / "local", params, progress=False)
    got = {}
    for r in rows:
        with rasterio.open(tmp_path / "local" / r["file"]) as sc, \
                rasterio.open(tmp_path / "local" / r["cloud_mask"]) as mk:
            assert mk.transform == sc.transform and mk.shape == sc.shape and mk.crs == sc.crs
            got[r["cloud_mask_source"]] = mk.read(1)
    up = lambda a: np.kron(a, np.ones((2, 2), a.dtype))  # noqa: E731  20 m -> 10 m, nearest
    assert np.array_equal(got["scl"], scl_to_percent(up(scl)))
    assert np.all(got["scl"][up(scl) == 11] == 0)
    assert np.array_equal(got["cloud_probability"], up(prob))
    # masks off: nothing looked for, nothing written
    off = load_params_dict({"global": {"progress": False}, "data": {"source": "folder"},
                            "collect": {"scene_px": SIZE, "cloud_masks": False}})
    (p_off, _) = find_products(tmp_path / "in", off)
    assert p_off.mask is None
    rows = ingest_products([p_off], tmp_path / "local_off", off, progress=False)
    assert rows[0]["cloud_mask"] == "" and rows[0]["cloud_mask_source"] == "none"
    assert not (tmp_path / "local_off" / "masks").exists()


@pytest.fixture
def fake_ee_masks(monkeypatch):
    """Earth Engine offline (``ee.apitestcase``): one product whose ``getInfo`` carries its joined
    cloud-probability image; ``computePixels`` answers RGB, ``probability`` and ``SCL`` requests
    from known fields on the requested grid."""
    ee = pytest.importorskip("ee")
    from ee import apitestcase

    from seaice_utils.collect import earthengine as collect_ee

    case = apitestcase.ApiTestCase()
    case.setUp()
    x0, y0 = _origin()
    lon, lat = warp(CRS, "EPSG:4326", [x0, x0 + 10 * SIZE, x0 + 10 * SIZE, x0, x0],
                    [y0, y0, y0 - 10 * SIZE, y0 - 10 * SIZE, y0])
    index = "20191115T202851_20191115T202846_T02CMT"
    band = {"crs": CRS, "crs_transform": [10, 0, x0, 0, -10, y0], "dimensions": [SIZE, SIZE]}
    sent = {"values": [], "pixels": []}

    def info_for(level):
        coll = "COPERNICUS/S2_HARMONIZED" if level == "L1C" else "COPERNICUS/S2_SR_HARMONIZED"
        return {"type": "ImageCollection", "features": [{
            "type": "Image", "id": f"{coll}/{index}",
            "bands": [dict(band, id=b) for b in ("B4", "B3", "B2")],
            "properties": {"PRODUCT_ID": f"S2B_MSI{level}_20191115T202851_N0208_R128_T02CMT_x",
                           "MGRS_TILE": "02CMT", "CLOUDY_PIXEL_PERCENTAGE": 4.2,
                           "system:time_start": 1573849731000,
                           "system:footprint": {"type": "LinearRing",
                                                "coordinates": [list(p) for p in zip(lon, lat)]},
                           collect_ee.CLOUD_PROPERTY: {
                               "type": "Image", "id": f"{collect_ee.CLOUD_COLLECTION}/{index}",
                               "bands": [dict(band, id="probability")]}}}]}

    def compute_value(obj):
        graph = json.loads(obj.serialize())
        sent["values"].append(graph)
        return info_for("L2A" if "S2_SR_HARMONIZED" in json.dumps(graph) else "L1C")

    def compute_pixels(req):
        g, t = req["grid"], req["grid"]["affineTransform"]
        w, h = g["dimensions"]["width"], g["dimensions"]["height"]
        graph = req["expression"].serialize()
        sent["pixels"].append(graph)
        cols = (np.arange(w) + 0.5 + (t["translateX"] - x0) / 10).astype(int)
        ccol = np.broadcast_to(cols, (h, w))
        if '"probability"' in graph:      # s2cloudless: high over the bright ice on the right
            arr = np.where(ccol >= SIZE // 2, 70, 5)[None].astype(np.uint8)
        elif '"SCL"' in graph:            # ice on the right (11), cloud on the left edge (9)
            arr = np.where(ccol >= SIZE // 2, 11, np.where(ccol < 16, 9, 6))[None].astype(np.uint8)
        else:
            base = np.where(ccol >= SIZE // 2, 9000, 400).astype(np.uint16)
            arr = np.stack([base, base, base])
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", height=h, width=w, count=arr.shape[0],
                          dtype=arr.dtype.name, crs=g["crsCode"],
                          transform=from_origin(t["translateX"], t["translateY"], 10, 10)) as dst:
                dst.write(arr)
            return bytes(mem.read())

    monkeypatch.setattr(ee.data, "computeValue", compute_value)
    monkeypatch.setattr(ee.data, "computePixels", compute_pixels)
    monkeypatch.setattr(collect_ee, "ee_initialize", lambda **kw: {"method": "test",
                                                                   "project": "$X"})
    try:
        yield sent
    finally:
        case.tearDown()


@pytest.mark.parametrize("level", ["L1C", "L2A"])
def test_ee_masks_joined_by_system_index(fake_ee_masks, tmp_path, level):
    from seaice_utils.collect.run import collect

    params = load_params_dict({"global": {"progress": False}, "data": {"source": "earthengine"},
                               "collect": {"collection": level, "scene_px": SIZE,
                                           "max_scenes": 1, "scenes_per_product": 1}})
    res = collect(params, tmp_path)
    (rec,) = res.records
    m = rec.meta
    # the listing joins COPERNICUS/S2_CLOUD_PROBABILITY on system:index
    listing = json.dumps(fake_ee_masks["values"][0])
    assert "COPERNICUS/S2_CLOUD_PROBABILITY" in listing and "Join.saveFirst" in listing
    assert '"system:index"' in listing
    # one request for the RGB, one for the mask, on the same grid
    assert len(fake_ee_masks["pixels"]) == 2
    root = tmp_path / "data" / "earthengine"
    with rasterio.open(root / m["file"]) as sc, rasterio.open(root / m["cloud_mask"]) as mk:
        assert mk.transform == sc.transform and mk.crs == sc.crs and mk.dtypes[0] == "uint8"
        mask = mk.read(1)
    right = np.zeros((SIZE, SIZE), bool)
    right[:, SIZE // 2:] = True
    if level == "L1C":   # the probability as it is: 70 over the ice (season's threshold decides)
        assert m["cloud_mask_source"] == "cloud_probability"
        assert "S2_CLOUD_PROBABILITY/" in fake_ee_masks["pixels"][1]
        assert np.all(mask[right] == 70) and np.all(mask[~right] == 5)
    else:                # SCL: ice (11) never masked, cloud (9) is 100
        assert m["cloud_mask_source"] == "scl" and '"SCL"' in fake_ee_masks["pixels"][1]
        assert np.all(mask[right] == 0) and np.all(mask[:, :16] == 100)
        assert np.all(mask[:, 16:SIZE // 2] == 0)
    assert res.details["cloud_masks"] == f"{m['cloud_mask_source']}: 1"
