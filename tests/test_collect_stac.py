"""The account-free STAC path, for real over HTTP on the loopback interface.

A tiny STAC API (landing page, conformance, ``/search`` for POST and GET) and cloud-optimised
GeoTIFFs (16-bit DNs, UTM zone 2S, inside the Ross Sea box) are served by a threading HTTP server
on 127.0.0.1 with byte-range support. The code under test goes through the same client path as a
user: pystac-client item search -> rasterio windowed reads through GDAL's /vsicurl/.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from conftest import LoopbackHandler, loopback_server

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pystac_client")

from rasterio.io import MemoryFile  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from rasterio.warp import transform as warp  # noqa: E402

from seaice_utils.collect.products import CollectionUnavailable, dn_to_rgb8  # noqa: E402
from seaice_utils.collect.query import stac_request  # noqa: E402
from seaice_utils.collect.run import collect  # noqa: E402
from seaice_utils.collect.stac import collect_stac, item_offset  # noqa: E402
from seaice_utils.data.dataset import resolve_source  # noqa: E402
from seaice_utils.params import load_params_dict  # noqa: E402

SIZE = 600          # COG side in px (3 x 3 blocks of 256)
SCENE = 256         # scene_px used in the tests
CRS = "EPSG:32702"  # UTM zone 2S (lon -174..-168)


def _cog_bytes(arr: np.ndarray, transform) -> bytes:
    import rasterio.shutil

    with MemoryFile() as m1:
        with m1.open(driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1,
                     dtype="uint16", crs=CRS, transform=transform, nodata=0, tiled=True,
                     blockxsize=256, blockysize=256) as dst:
            dst.write(arr, 1)
        with m1.open() as src, MemoryFile() as m2:
            rasterio.shutil.copy(src, m2.name, driver="COG", blocksize=256, compress="deflate",
                                 overviews="none")
            return bytes(m2.read())


def _reflectance(seed: int = 7) -> np.ndarray:
    """(SIZE, SIZE, 3) reflectance with water, thin and thick ice, and a no-data wedge (nan)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cls = ((xx // 40 + yy // 55) % 3)
    base = np.choose(cls, [0.04, 0.45, 0.9])
    refl = np.clip(base[..., None] * np.array([1.0, 1.02, 1.06]) +
                   rng.normal(0, 0.02, (SIZE, SIZE, 3)), 0.001, 1.2)
    refl[yy > 2 * xx + 150] = np.nan          # no-data wedge on the left edge
    return refl


@pytest.fixture(scope="module")
def stac_server():
    """Serve the STAC API and COGs; yield (base_url, log, cogs, grid); stop the server after."""
    lon0, lat0 = -170.5, -76.5
    (x,), (y,) = warp("EPSG:4326", CRS, [lon0], [lat0])
    x0, y0 = round(x / 10) * 10, round(y / 10) * 10
    transform = from_origin(x0, y0, 10, 10)
    refl = _reflectance()
    valid = ~np.isnan(refl[..., 0])
    dn_a = np.where(valid[..., None], np.rint(np.nan_to_num(refl) * 10000), 0).astype(np.uint16)
    dn_b = np.where(valid[..., None], dn_a.astype(np.int32) + 1000, 0).astype(np.uint16)
    cogs: dict[str, bytes] = {}
    for name, dn in (("A", dn_a), ("B", dn_b), ("C", dn_a), ("D", dn_a)):
        for i, band in enumerate(("B04", "B03", "B02")):
            cogs[f"{name}_{band}.tif"] = _cog_bytes(dn[..., i], transform)
    xs = [x0, x0 + 10 * SIZE, x0 + 10 * SIZE, x0, x0]
    ys = [y0, y0, y0 - 10 * SIZE, y0 - 10 * SIZE, y0]
    lons, lats = warp(CRS, "EPSG:4326", xs, ys)
    ring = [[round(a, 6), round(b, 6)] for a, b in zip(lons, lats)]
    bbox = [min(lons), min(lats), max(lons), max(lats)]
    log: list[dict] = []
    # collections the API knows (a search naming another one is answered 404)
    state = {"base": "", "known": {"sentinel-2-c1-l2a", "sentinel-2-l2a"}}

    def c1_item(name, when, cloud):
        """An item as Earth Search's Collection 1 writes it: ESA's DNs (BOA_ADD_OFFSET -1000),
        the offset declared in raster:bands, baseline >= 05.00, id S2B_T<tile>_<time>_L2A."""
        it = item(name, when, cloud, "05.10", "common")
        it["collection"] = "sentinel-2-c1-l2a"
        it["id"] = f"S2B_T02CMT_{when[:10].replace('-', '')}T202851_L2A"
        del it["properties"]["s2:mgrs_tile"]
        it["properties"].update({"mgrs:utm_zone": 2, "mgrs:latitude_band": "C",
                                 "mgrs:grid_square": "MT"})
        return it

    def item(name, when, cloud, baseline, keys):
        base = state["base"]
        common = {"B04": "red", "B03": "green", "B02": "blue"}
        assets = {}
        for band in ("B04", "B03", "B02"):
            key = common[band] if keys == "common" else band
            assets[key] = {"href": f"{base}/cogs/{name}_{band}.tif",
                           "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                           "roles": ["data"],
                           "eo:bands": [{"name": band, "common_name": common[band]}],
                           "raster:bands": [{"nodata": 0, "scale": 0.0001, "offset": -0.1}]}
        assets["thumbnail"] = {"href": f"{base}/cogs/none.jpg", "roles": ["thumbnail"]}
        return {"type": "Feature", "stac_version": "1.0.0", "id": f"S2B_02CMT_{when[:10]}_{name}",
                "collection": "sentinel-2-l2a", "bbox": bbox,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"datetime": when, "eo:cloud_cover": cloud,
                               "s2:processing_baseline": baseline, "s2:mgrs_tile": "02CMT"},
                "links": [], "assets": assets, "stac_extensions": []}

    def items():
        # sentinel-2-l2a holds 2019; Collection 1 (like Earth Search's) only 2023 here
        return [item("A", "2019-11-12T20:28:51Z", 5.0, "02.13", "common"),
                item("B", "2019-11-20T20:18:41Z", 12.0, "04.00", "band"),
                item("C", "2019-11-25T20:18:41Z", 80.0, "02.13", "common"),     # too cloudy
                item("D", "2019-10-15T20:18:41Z", 1.0, "02.13", "common"),      # too early
                c1_item("B", "2023-11-20T20:18:41Z", 3.0)]

    def search(body: dict) -> dict | None:
        if set(body.get("collections") or []) - state["known"]:
            return None
        out = []
        lo, hi = body.get("datetime", "../..").split("/")
        for it in items():
            if body.get("collections") and it["collection"] not in body["collections"]:
                continue
            b = body.get("bbox")
            if b and (it["bbox"][2] < b[0] or it["bbox"][0] > b[2] or it["bbox"][3] < b[1]
                      or it["bbox"][1] > b[3]):
                continue
            t = datetime.fromisoformat(it["properties"]["datetime"].replace("Z", "+00:00"))
            if lo not in ("", "..") and t < datetime.fromisoformat(lo.replace("Z", "+00:00")):
                continue
            if hi not in ("", "..") and t > datetime.fromisoformat(hi.replace("Z", "+00:00")):
                continue
            q = (body.get("query") or {}).get("eo:cloud_cover", {})
            if "lte" in q and it["properties"]["eo:cloud_cover"] > q["lte"]:
                continue
            out.append(it)
        return {"type": "FeatureCollection", "features": out, "links": [],
                "numberReturned": len(out)}

    class Handler(LoopbackHandler):
        def _json(self, obj):
            self._send(200, json.dumps(obj).encode())

        def _route(self):
            url = urlparse(self.path)
            base = state["base"]
            log.append({"method": self.command, "path": url.path,
                        "range": self.headers.get("Range")})
            if url.path == "/":
                return self._json({
                    "type": "Catalog", "id": "loopback", "stac_version": "1.0.0",
                    "description": "test STAC API",
                    "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                   "https://api.stacspec.org/v1.0.0/item-search",
                                   "https://api.stacspec.org/v1.0.0/item-search#query"],
                    "links": [{"rel": "self", "href": base + "/"},
                              {"rel": "root", "href": base + "/"},
                              {"rel": "conformance", "href": base + "/conformance"},
                              {"rel": "search", "href": base + "/search", "method": "GET",
                               "type": "application/geo+json"},
                              {"rel": "search", "href": base + "/search", "method": "POST",
                               "type": "application/geo+json"}]})
            if url.path == "/conformance":
                return self._json({"conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                                  "https://api.stacspec.org/v1.0.0/item-search"]})
            if url.path == "/search":
                if self.command == "POST":
                    n = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(n) or b"{}")
                else:
                    qs = {k: v[0] for k, v in parse_qs(url.query).items()}
                    body = {"datetime": qs.get("datetime", "../.."),
                            "collections": qs["collections"].split(",") if "collections" in qs
                            else None,
                            "bbox": [float(v) for v in qs["bbox"].split(",")] if "bbox" in qs
                            else None,
                            "query": json.loads(qs["query"]) if "query" in qs else None}
                log[-1]["body"] = body
                found = search(body)
                if found is None:
                    return self._send(404, b'{"code": "NotFound", "description": "collection"}')
                return self._send(200, json.dumps(found).encode(), "application/geo+json")
            name = url.path.rsplit("/", 1)[-1]
            if url.path.startswith("/cogs/") and name in cogs:
                data = cogs[name]
                rng = self.headers.get("Range")
                if rng and self.command == "GET":
                    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                    if not m:
                        return self._send(416, b"")
                    a = int(m[1])
                    b = min(int(m[2]) if m[2] else len(data) - 1, len(data) - 1)
                    log[-1]["bytes"] = b - a + 1
                    return self._send(206, data[a:b + 1], "image/tiff",
                                      {"Content-Range": f"bytes {a}-{b}/{len(data)}"})
                log[-1]["bytes"] = 0 if self.command == "HEAD" else len(data)
                return self._send(200, data, "image/tiff")
            return self._send(404, b'{"code": "NotFound"}')

    with loopback_server(Handler, state):
        yield {"base": state["base"], "log": log, "cogs": cogs, "transform": transform,
               "dn_a": dn_a, "dn_b": dn_b, "state": state}


def _params(base: str, **collect) -> dict:
    c = {"stac_url": base, "scene_px": SCENE, "max_scenes": 3, "scenes_per_product": 2,
         "max_products": 10, "timeout_s": 10}
    c.update(collect)
    return load_params_dict({"global": {"progress": False},
                             "data": {"source": "stac", "n_scenes": 1, "scene_size": 128},
                             "collect": c})


def _catalogue(root: Path) -> list[dict]:
    with (root / "catalogue.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_stac_collect_over_http(stac_server, tmp_path):
    log = stac_server["log"]
    log.clear()
    params = _params(stac_server["base"])
    res = collect(params, tmp_path)

    # the search request is the paper's query (Ross Sea box, November 2019, cloud filter), sent
    # to Collection 1 first; it has no November 2019 items, so sentinel-2-l2a is searched next
    searches = [e for e in log if e["path"] == "/search"]
    assert [e["body"]["collections"] for e in searches] == [["sentinel-2-c1-l2a"],
                                                             ["sentinel-2-l2a"]]
    for e in searches:
        body = e["body"]
        assert e["method"] == "POST"
        assert body["bbox"] == [-180.0, -78.0, -140.0, -70.0]
        assert body["datetime"] == "2019-11-01T00:00:00Z/2019-11-30T23:59:59Z"
        assert body["query"] == {"eo:cloud_cover": {"lte": 30}}

    assert res.effective == "stac" and not res.fell_back
    assert res.details["collection"] == "sentinel-2-l2a"
    assert res.details["searched"] == "sentinel-2-c1-l2a: 0 items; sentinel-2-l2a: 2 items"
    rows = _catalogue(tmp_path / "data" / "stac")
    assert len(rows) == 3 == len(res.records)
    ids = [r["product_id"] for r in rows]
    assert ids.count("S2B_02CMT_2019-11-12_A") == 2 and ids.count("S2B_02CMT_2019-11-20_B") == 1
    off = {r["product_id"]: float(r["reflectance_offset"]) for r in rows}
    assert off == {"S2B_02CMT_2019-11-12_A": 0.0, "S2B_02CMT_2019-11-20_B": -0.1}
    for r in rows:
        assert r["crs"] == "EPSG:32702" and r["source"] == "stac" and r["tile"] == "02CMT"
        assert r["collection"] == "sentinel-2-l2a" and r["format"] == "geotiff8"
        assert r["file"] == f"scenes/{r['name']}.tif"   # georeferenced by default
        assert float(r["valid_fraction"]) >= 0.5
        lon_lat = np.array(re.findall(r"(-?\d+\.\d+) (-?\d+\.\d+)", r["footprint"]), float)
        assert np.all((lon_lat[:, 0] > -172) & (lon_lat[:, 0] < -168))
        assert np.all((lon_lat[:, 1] > -78) & (lon_lat[:, 1] < -75))

    # pixels: the project's stretch of the COG window, exactly (no resampling, no shift), in an
    # 8-bit GeoTIFF on the window's grid
    dn_a = stac_server["dn_a"]
    for r in rows:
        with rasterio.open(tmp_path / "data" / "stac" / r["file"]) as ds:
            img = np.moveaxis(ds.read(), 0, -1)
            assert ds.dtypes[0] == "uint8" and ds.nodata == 0 and ds.crs.to_epsg() == 32702
            assert tuple(ds.transform)[:6] == tuple(float(v) for v in r["transform"].split())
        ro, co = int(r["row_off"]), int(r["col_off"])
        win = np.zeros((SCENE, SCENE, 3), np.uint16)
        part = dn_a[ro:ro + SCENE, co:co + SCENE]
        win[:part.shape[0], :part.shape[1]] = part
        expected = dn_to_rgb8(win)  # B's DNs carry +1000 and offset -0.1: same reflectance
        diff = np.abs(img.astype(int) - expected.astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999, r["name"]
        t = [float(v) for v in r["transform"].split()]
        a = stac_server["transform"]
        assert t == [10.0, 0.0, a.c + 10 * co, 0.0, -10.0, a.f - 10 * ro]

    # COGs were read windowed through /vsicurl/: range requests, less than whole files
    cog_gets = [e for e in log if e["path"].startswith("/cogs/") and e["method"] == "GET"]
    assert cog_gets and all(e["range"] for e in cog_gets)
    used = {e["path"].rsplit("/", 1)[-1] for e in cog_gets}
    assert used == {f"{n}_{b}.tif" for n in "AB" for b in ("B04", "B03", "B02")}
    for name in used:
        served = sum(e.get("bytes", 0) for e in cog_gets if e["path"].endswith("/" + name))
        assert served < 0.8 * len(stac_server["cogs"][name]), name

    # the record says which source was used; later notebooks keep it
    rec = json.loads((tmp_path / "records" / "data_source.json").read_text())
    assert rec["requested"] == rec["effective"] == "stac" and rec["n_scenes"] == 3
    assert resolve_source(params, tmp_path)["data"]["source"] == "stac"

    # a rerun resumes: nothing is fetched again
    log.clear()
    again = collect(params, tmp_path)
    assert [r.name for r in again.records] == [r["name"] for r in rows]
    assert not [e for e in log if e["path"].startswith("/cogs/")]


def test_stac_geotiff16_is_harmonized_and_georeferenced(stac_server, tmp_path):
    params = _params(stac_server["base"], export_format="geotiff16", max_scenes=3)
    rows, details = collect_stac(params, tmp_path, progress=False)
    assert details["products"] == 2 and len(rows) == 3
    by_product = {}
    for r in rows:
        with rasterio.open(tmp_path / r["file"]) as ds:
            assert ds.count == 3 and ds.dtypes[0] == "uint16" and ds.nodata == 0
            assert ds.crs.to_epsg() == 32702
            assert tuple(ds.transform)[:6] == tuple(float(v) for v in r["transform"].split())
            arr = np.moveaxis(ds.read(), 0, -1)
        by_product.setdefault(r["product_id"], []).append((r, arr))
    # the baseline-04.00 product (+1000 DN) is written with the offset removed
    (rb, arr_b), = by_product["S2B_02CMT_2019-11-20_B"]
    ro, co = int(rb["row_off"]), int(rb["col_off"])
    part = stac_server["dn_a"][ro:ro + SCENE, co:co + SCENE]
    assert np.array_equal(arr_b[:part.shape[0], :part.shape[1]], part)


def test_stac_unreachable_falls_back_loudly(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more
    params = _params(f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(CollectionUnavailable, match="could not be searched"):
        collect_stac(params, tmp_path / "x", progress=False)
    with pytest.warns(UserWarning, match="SYNTHETIC"):
        res = collect(params, tmp_path)
    assert res.fell_back and res.effective == "synthetic" and len(res.records) == 1
    assert "could not be searched" in res.reason
    rec = json.loads((tmp_path / "records" / "data_source.json").read_text())
    assert rec["effective"] == "synthetic" and rec["fell_back"] is True
    with pytest.warns(UserWarning, match="could not use it"):
        later = resolve_source(params, tmp_path)
    assert later["data"]["source"] == "synthetic" and params["data"]["source"] == "stac"
    strict = copy.deepcopy(params)
    strict["collect"]["fallback"] = "error"
    with pytest.raises(CollectionUnavailable):
        collect(strict, tmp_path / "strict")


def test_stac_request_follows_params():
    p = load_params_dict({"collect": {"collection": "L1C", "stac_collection": None,
                                      "start_date": "2019-11-10", "end_date": "2019-11-12",
                                      "max_cloud_cover": 12.5, "region": [-175, -77, -160, -72]}})
    r = stac_request(p)
    assert r["collections"] == ["sentinel-2-l1c"] and r["level"] == "L1C"
    assert r["datetime"] == "2019-11-10T00:00:00Z/2019-11-11T23:59:59Z"
    assert r["bbox"] == [-175.0, -77.0, -160.0, -72.0]
    assert r["query"] == {"eo:cloud_cover": {"lte": 12.5}}
    assert r["bands"] == ["B04", "B03", "B02"]
    # L2A: Earth Search's Collection 1 first, the older collection as the fallback
    assert stac_request(load_params_dict({}))["collections"] == ["sentinel-2-c1-l2a",
                                                                 "sentinel-2-l2a"]
    one = load_params_dict({"collect": {"stac_collection": "sentinel-2-l2a"}})
    assert stac_request(one)["collections"] == ["sentinel-2-l2a"]


def test_collection1_is_used_when_it_has_items(stac_server, tmp_path):
    """2023: Collection 1 answers; its DNs carry +1000 and raster:bands offset -0.1."""
    log = stac_server["log"]
    log.clear()
    params = _params(stac_server["base"], start_date="2023-11-01", end_date="2023-12-01",
                     max_scenes=2)
    rows, details = collect_stac(params, tmp_path, progress=False)
    searches = [e["body"]["collections"] for e in log if e["path"] == "/search"]
    assert searches == [["sentinel-2-c1-l2a"]]                  # no fallback needed
    assert details["collection"] == "sentinel-2-c1-l2a" and len(rows) == 2
    cat = _catalogue(tmp_path)
    assert [r["name"] for r in cat] == [r["name"] for r in rows]
    for r in cat:
        assert r["collection"] == "sentinel-2-c1-l2a" and r["tile"] == "02CMT"
        assert r["product_id"] == "S2B_T02CMT_20231120T202851_L2A"
        assert float(r["reflectance_offset"]) == -0.1 and r["processing_baseline"] == "05.10"
        assert r["offset_source"] == "raster:bands offset of the asset (sentinel-2-c1-l2a)"
        with rasterio.open(tmp_path / r["file"]) as ds:
            img = np.moveaxis(ds.read(), 0, -1)
            assert ds.tags()["collection"] == "sentinel-2-c1-l2a"
        ro, co = int(r["row_off"]), int(r["col_off"])
        win = np.zeros((SCENE, SCENE, 3), np.uint16)
        part = stac_server["dn_a"][ro:ro + SCENE, co:co + SCENE]
        win[:part.shape[0], :part.shape[1]] = part
        # the +1000 DNs with the offset removed are the reflectance of dn_a
        diff = np.abs(img.astype(int) - dn_to_rgb8(win).astype(int))
        assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_missing_collection1_falls_back(stac_server, tmp_path):
    """An API without sentinel-2-c1-l2a (404 on the search): sentinel-2-l2a is used."""
    state = stac_server["state"]
    state["known"] = {"sentinel-2-l2a"}
    try:
        rows, details = collect_stac(_params(stac_server["base"], max_scenes=1), tmp_path,
                                     progress=False)
    finally:
        state["known"] = {"sentinel-2-c1-l2a", "sentinel-2-l2a"}
    assert details["collection"] == "sentinel-2-l2a" and len(rows) == 1
    assert details["searched"] == "sentinel-2-c1-l2a: does not exist; sentinel-2-l2a: 2 items"
    assert _catalogue(tmp_path)[0]["collection"] == "sentinel-2-l2a"


def _item(collection: str, props: dict, raster: dict | None):
    import pystac

    asset = {"href": "https://host/B04.tif", "roles": ["data"]}
    if raster is not None:
        asset["raster:bands"] = [raster]
    return pystac.Item.from_dict({
        "type": "Feature", "stac_version": "1.0.0", "id": "x", "collection": collection,
        "geometry": None, "properties": {"datetime": "2023-11-20T20:18:41Z", **props},
        "links": [], "assets": {"red": asset}, "stac_extensions": []})


C1, OLD = "sentinel-2-c1-l2a", "sentinel-2-l2a"
DECLARED = {"nodata": 0, "scale": 0.0001, "offset": -0.1}


@pytest.mark.parametrize("collection,props,raster,expect", [
    # Collection 1: the asset's declared offset (ESA's DNs, BOA_ADD_OFFSET -1000)
    (C1, {"s2:processing_baseline": "05.10"}, DECLARED,
     (-0.1, "raster:bands offset of the asset (sentinel-2-c1-l2a)", "05.10")),
    (C1, {}, None, (-0.1, "sentinel-2-c1-l2a: Collection 1 holds baselines >= 05.00 only", None)),
    # the older collection: the flag, then the baseline (its raster:bands offset is unreliable;
    # 02.13 -> 0 and 04.00 -> -0.1 are checked over HTTP above)
    (OLD, {"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False}, DECLARED,
     (-0.1, "processing baseline 04.00, earthsearch:boa_offset_applied false", "04.00")),
    # a declared offset on another scale is not reflectance x 10000: not used
    (OLD, {}, {"scale": 1.0, "offset": -1000}, (0.0, "baseline unknown: no offset assumed", None)),
])
def test_item_offset_per_collection(collection, props, raster, expect):
    it = _item(collection, props, raster)
    assert item_offset(it, it.assets["red"], "auto") == expect
