"""The Earth Engine path without network or account.

The request is checked as the plain dict the code consumes and as the Earth Engine computation
graph itself: ``ee.apitestcase.ApiTestCase`` (shipped with earthengine-api) initialises the
library offline from its stored algorithm list, so the real ``ee.ImageCollection`` chain is
built and serialised here. The download loop runs against a fake ``computeValue`` /
``computePixels`` that answers from the requested pixel grid. The credential checks run with the
environment cleared.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

ee = pytest.importorskip("ee")
rasterio = pytest.importorskip("rasterio")

from seaice_utils.collect import credentials  # noqa: E402
from seaice_utils.collect import earthengine as collect_ee  # noqa: E402
from seaice_utils.collect.products import CollectionUnavailable  # noqa: E402
from seaice_utils.collect.query import ee_request  # noqa: E402
from seaice_utils.collect.run import collect  # noqa: E402
from seaice_utils.data.dataset import ensure_dataset, resolve_source  # noqa: E402
from seaice_utils.params import load_params, load_params_dict  # noqa: E402

CLEAR = ("EARTHENGINE_PROJECT", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT", "EE_SERVICE_ACCOUNT_KEY",
         "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG")


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """An environment with no Earth Engine credentials at all (empty HOME, no variables)."""
    for k in CLEAR:
        monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # google-auth: do not probe a metadata server
    return home


@pytest.fixture
def ee_offline():
    """The ee library initialised offline (stored algorithms), restored afterwards."""
    from ee import apitestcase

    case = apitestcase.ApiTestCase()
    case.setUp()
    try:
        yield ee
    finally:
        case.tearDown()


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _calls(graph: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for node in _walk(graph):
        fi = node.get("functionInvocationValue")
        if fi:
            out.setdefault(fi["functionName"], []).append(fi["arguments"])
    return out


def _const(graph: dict, arg: dict):
    if "constantValue" in arg:
        return arg["constantValue"]
    if "valueReference" in arg:
        return _const(graph, graph["values"][arg["valueReference"]])
    raise AssertionError(f"not a constant: {arg}")


def test_paper_request_spec():
    r = ee_request(load_params("paper"))
    assert r["collection"] == "COPERNICUS/S2_HARMONIZED" and r["level"] == "L1C"
    assert r["region"] == {"west": -180.0, "south": -78.0, "east": -140.0, "north": -70.0}
    assert (r["start"], r["end"]) == ("2019-11-01", "2019-12-01")
    assert r["bands"] == ["B4", "B3", "B2"] and r["scale"] == 10 and r["scene_px"] == 2048
    assert r["cloud_property"] == "CLOUDY_PIXEL_PERCENTAGE" and r["max_scenes"] == 66
    l2a = ee_request(load_params_dict({"collect": {"collection": "L2A", "bands": ["B04", "b3", "B02"]}}))
    assert l2a["collection"] == "COPERNICUS/S2_SR_HARMONIZED" and l2a["bands"] == ["B4", "B3", "B2"]


def test_paper_ee_graph(ee_offline):
    spec = ee_request(load_params("paper"))
    graph = json.loads(collect_ee.build_collection(spec).serialize())
    calls = _calls(graph)
    (load,) = calls["ImageCollection.load"]
    assert _const(graph, load["id"]) == "COPERNICUS/S2_HARMONIZED"
    (rect,) = calls["GeometryConstructors.Rectangle"]
    assert _const(graph, rect["coordinates"]) == [-180, -78, -140, -70]
    assert _const(graph, rect["geodesic"]) is False
    (dates,) = calls["DateRange"]
    assert (_const(graph, dates["start"]), _const(graph, dates["end"])) == ("2019-11-01", "2019-12-01")
    (gt,) = calls["Filter.greaterThan"]  # lte is not(greaterThan)
    assert _const(graph, gt["leftField"]) == "CLOUDY_PIXEL_PERCENTAGE"
    assert _const(graph, gt["rightValue"]) == 30
    assert "Filter.not" in calls
    (sel,) = calls["Image.select"]
    assert _const(graph, sel["bandSelectors"]) == ["B4", "B3", "B2"]
    (lim,) = calls["Collection.limit"]
    assert _const(graph, lim["limit"]) == 50 and _const(graph, lim["key"]) == "CLOUDY_PIXEL_PERCENTAGE"


def _product_info(x0: float, y0: float, size: int) -> dict:
    from rasterio.warp import transform as warp

    xs = [x0, x0 + 10 * size, x0 + 10 * size, x0, x0]
    ys = [y0, y0, y0 - 10 * size, y0 - 10 * size, y0]
    lon, lat = warp("EPSG:32702", "EPSG:4326", xs, ys)
    band = {"crs": "EPSG:32702", "crs_transform": [10, 0, x0, 0, -10, y0],
            "dimensions": [size, size], "data_type": {"type": "PixelType", "precision": "int"}}
    return {"type": "ImageCollection", "features": [{
        "type": "Image", "id": "COPERNICUS/S2_HARMONIZED/20191115T202851_20191115T202846_T02CMT",
        "bands": [dict(band, id=b) for b in ("B4", "B3", "B2")],
        "properties": {"PRODUCT_ID": "S2B_MSIL1C_20191115T202851_N0208_R128_T02CMT_20191115T220119",
                       "MGRS_TILE": "02CMT", "CLOUDY_PIXEL_PERCENTAGE": 4.2,
                       "PROCESSING_BASELINE": "02.08", "system:time_start": 1573849731000,
                       "system:footprint": {"type": "LinearRing",
                                            "coordinates": [list(p) for p in zip(lon, lat)]}}}]}


@pytest.fixture
def fake_ee(ee_offline, monkeypatch):
    """Earth Engine answering offline: one product (600 px, UTM 2S, Ross Sea) whose DNs are a
    known field; ``computePixels`` cuts the requested grid out of it."""
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin
    from rasterio.warp import transform as warp

    (x,), (y,) = warp("EPSG:4326", "EPSG:32702", [-170.5], [-76.5])
    x0, y0, size = round(x / 10) * 10, round(y / 10) * 10, 600
    info = _product_info(x0, y0, size)
    sent = {"values": [], "pixels": []}

    def compute_value(obj):
        sent["values"].append(json.loads(obj.serialize()))
        return info

    def field(xs, ys):  # "true" DNs of the product at map coordinates (0 outside it)
        col, row = (xs - x0) / 10, (y0 - ys) / 10
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        v = (1000 + 13 * col + 7 * row).astype(np.uint16)
        return np.where(inside, v, 0).astype(np.uint16)

    def compute_pixels(req):
        g = req["grid"]
        t = g["affineTransform"]
        w, h = g["dimensions"]["width"], g["dimensions"]["height"]
        sent["pixels"].append({"graph": json.loads(req["expression"].serialize()),
                               "grid": g, "format": req["fileFormat"]})
        cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        xs, ys = t["translateX"] + t["scaleX"] * cols, t["translateY"] + t["scaleY"] * rows
        base = field(xs, ys)
        arr = np.stack([base, base // 2, base // 3])
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", height=h, width=w, count=3, dtype="uint16",
                          crs=g["crsCode"], transform=from_origin(t["translateX"], t["translateY"],
                                                                  10, 10)) as dst:
                dst.write(arr)
            return bytes(mem.read())

    monkeypatch.setattr(ee.data, "computeValue", compute_value)
    monkeypatch.setattr(ee.data, "computePixels", compute_pixels)
    monkeypatch.setattr(collect_ee, "ee_initialize",
                        lambda **kw: {"method": "test", "project": "$EARTHENGINE_PROJECT"})
    return {"x0": x0, "y0": y0, "sent": sent, "field": field}


def test_ee_download_loop(fake_ee, tmp_path):
    x0, y0, sent, field, px = fake_ee["x0"], fake_ee["y0"], fake_ee["sent"], fake_ee["field"], 256
    params = load_params_dict({"global": {"progress": False},
                               "data": {"source": "earthengine"},
                               "collect": {"scene_px": px, "max_scenes": 3,
                                           "scenes_per_product": 3, "export_format": "geotiff16"}})
    res = collect(params, tmp_path)
    assert res.effective == "earthengine" and len(res.records) == 3

    # one getInfo of the query graph, then one computePixels per scene on the product's grid
    assert len(sent["values"]) == 1
    assert "Collection.limit" in _calls(sent["values"][0])
    assert len(sent["pixels"]) == 3
    for call in sent["pixels"]:
        g = call["grid"]
        assert call["format"] == "GEO_TIFF" and g["crsCode"] == "EPSG:32702"
        assert g["dimensions"] == {"width": px, "height": px}
        assert g["affineTransform"]["scaleX"] == 10 and g["affineTransform"]["scaleY"] == -10
        assert (g["affineTransform"]["translateX"] - x0) % (10 * px) == 0
        assert (y0 - g["affineTransform"]["translateY"]) % (10 * px) == 0
        c = _calls(call["graph"])
        assert _const(call["graph"], c["Image.load"][0]["id"]).endswith("_T02CMT")
        assert _const(call["graph"], c["Image.select"][0]["bandSelectors"]) == ["B4", "B3", "B2"]
        assert "Image.unmask" in c and "Image.toUint16" in c

    # the scenes: georeferenced 16-bit files holding the requested windows
    for rec in res.records:
        m = rec.meta
        assert m["product_id"].startswith("S2B_MSIL1C_20191115T202851")
        assert m["datetime"] == "2019-11-15T20:28:51Z" and float(m["reflectance_offset"]) == 0.0
        assert m["collection"] == "COPERNICUS/S2_HARMONIZED"
        with rasterio.open(tmp_path / "data" / "earthengine" / m["file"]) as ds:
            arr = ds.read()
            assert ds.crs.to_epsg() == 32702
            ro, co = int(m["row_off"]), int(m["col_off"])
            assert (ds.transform.c, ds.transform.f) == (x0 + 10 * co, y0 - 10 * ro)
        rows, cols = np.mgrid[0:px, 0:px]
        expect = field(x0 + 10 * (co + cols + 0.5), y0 - 10 * (ro + rows + 0.5))
        assert np.array_equal(arr[0], expect)
    rec = json.loads((tmp_path / "records" / "data_source.json").read_text())
    assert rec["effective"] == "earthengine" and rec["details"]["products"] == 1


def test_no_credentials_message(no_credentials):
    st = credentials.credential_status()
    assert not st["ready"] and st["method"] is None
    with pytest.raises(CollectionUnavailable) as err:
        collect_ee.ee_initialize()
    msg = str(err.value)
    assert "no Earth Engine credentials" in msg
    for name in ("earthengine authenticate", "EARTHENGINE_PROJECT", "EE_SERVICE_ACCOUNT_KEY",
                 "data.source: stac"):
        assert name in msg


def test_missing_key_file_and_missing_project(no_credentials, monkeypatch, tmp_path):
    secret_path = str(tmp_path / "very-secret-key-name.json")
    monkeypatch.setenv("EE_SERVICE_ACCOUNT_KEY", secret_path)
    with pytest.raises(CollectionUnavailable) as err:
        collect_ee.ee_initialize()
    assert "$EE_SERVICE_ACCOUNT_KEY is set but does not name a readable file" in str(err.value)
    assert "very-secret-key-name" not in str(err.value)
    monkeypatch.delenv("EE_SERVICE_ACCOUNT_KEY")
    creds = no_credentials / ".config" / "earthengine" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps({"refresh_token": "x", "client_id": "y", "client_secret": "z"}))
    st = credentials.credential_status()
    assert not st["ready"] and "set EARTHENGINE_PROJECT" in st["problem"]


def test_init_errors_are_scrubbed(no_credentials, monkeypatch):
    creds = no_credentials / ".config" / "earthengine" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text(json.dumps({"refresh_token": "x", "client_id": "y", "client_secret": "z"}))
    monkeypatch.setenv("EARTHENGINE_PROJECT", "my-secret-project-123")

    def refuse(**kw):
        raise RuntimeError("Project my-secret-project-123 is not registered to use Earth Engine")

    monkeypatch.setattr(ee, "Initialize", refuse)
    st = credentials.credential_status()
    assert st["ready"] and st["project"] == "$EARTHENGINE_PROJECT"
    with pytest.raises(CollectionUnavailable) as err:
        collect_ee.ee_initialize()
    msg = str(err.value)
    assert "my-secret-project-123" not in msg and "<EARTHENGINE_PROJECT>" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_service_account_key_is_used(no_credentials, monkeypatch, tmp_path):
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "proj-from-key",
                               "client_email": "robot@proj-from-key.iam.gserviceaccount.com"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    seen = {}
    monkeypatch.setattr(ee, "ServiceAccountCredentials",
                        lambda email, key_file=None: seen.setdefault("key", key_file) and "CREDS")
    monkeypatch.setattr(ee, "Initialize", lambda **kw: seen.update(kw))
    monkeypatch.setattr(ee.data, "setDeadline", lambda ms: seen.update(deadline=ms))
    st = collect_ee.ee_initialize(timeout_s=5)
    assert st["method"] == "service-account key file named by $GOOGLE_APPLICATION_CREDENTIALS"
    assert seen["key"] == str(key) and seen["credentials"] == "CREDS"
    assert seen["project"] == "proj-from-key" and seen["deadline"] == 5000
    assert "proj-from-key" not in json.dumps(st) and str(key) not in json.dumps(st)


def test_collect_falls_back_without_credentials(no_credentials, tmp_path):
    params = load_params_dict({"global": {"progress": False},
                               "data": {"source": "earthengine", "n_scenes": 2, "scene_size": 96}})
    with pytest.warns(UserWarning, match="DATA SOURCE FALLBACK"):
        res = collect(params, tmp_path / "out")
    assert res.fell_back and res.effective == "synthetic" and len(res.records) == 2
    assert "no Earth Engine credentials" in res.reason
    assert (tmp_path / "out" / "data" / "synthetic" / "catalogue.csv").is_file()
    rec = json.loads((tmp_path / "out" / "records" / "data_source.json").read_text())
    assert rec["requested"] == "earthengine" and rec["effective"] == "synthetic"
    with pytest.warns(UserWarning):
        assert resolve_source(params, tmp_path / "out")["data"]["source"] == "synthetic"
    # an unresolved profile reads the same fallback dataset, saying so
    with pytest.warns(UserWarning, match="reading data.source 'synthetic'"):
        assert [r.name for r in ensure_dataset(tmp_path / "out", params)] == \
            [r.name for r in res.records]
    # a record of another profile is ignored
    other = load_params_dict({"data": {"source": "stac"}})
    assert resolve_source(other, tmp_path / "out")["data"]["source"] == "stac"
    assert not [v for k, v in os.environ.items() if k in CLEAR]


def test_cli_collect(no_credentials, tmp_path, capsys):
    from seaice_utils.cli import main

    profile = tmp_path / "p.yml"
    profile.write_text("global: {progress: false}\ndata: {n_scenes: 1, scene_size: 64}\n")
    assert main(["collect", "--params", str(profile), "--outputs", str(tmp_path / "o1"),
                 "--source", "earthengine", "--no-fallback", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "seaice collect: error: Earth Engine is not available" in err
    assert not (tmp_path / "o1" / "data").exists()
    assert main(["collect", "--params", str(profile), "--outputs", str(tmp_path / "o2"),
                 "--source", "earthengine", "--no-progress"]) == 0
    cap = capsys.readouterr()
    assert "DATA SOURCE FALLBACK" in cap.err and "catalogue:" in cap.out
    rec = json.loads((tmp_path / "o2" / "records" / "data_source.json").read_text())
    assert rec["effective"] == "synthetic" and rec["n_scenes"] == 1


def test_ee_scenes_are_georeferenced_by_default(fake_ee, tmp_path):
    """The default export: 8-bit RGB GeoTIFFs on the product's grid, labelled as COGs on it."""
    from seaice_utils.cli import main
    from seaice_utils.collect.products import dn_to_rgb8

    px = 256
    params = load_params_dict({"global": {"progress": False}, "data": {"source": "earthengine"},
                               "collect": {"scene_px": px, "max_scenes": 2,
                                           "scenes_per_product": 2}})
    assert params["collect"]["export_format"] == "geotiff8"
    res = collect(params, tmp_path)
    assert len(res.records) == 2
    x0, y0 = fake_ee["x0"], fake_ee["y0"]
    for rec in res.records:
        m = rec.meta
        assert m["format"] == "geotiff8" and m["file"] == f"scenes/{rec.name}.tif"
        assert rec.scene_path == tmp_path / "data" / "earthengine" / m["file"]
        ro, co = int(m["row_off"]), int(m["col_off"])
        with rasterio.open(rec.scene_path) as ds:
            assert ds.dtypes == ("uint8",) * 3 and ds.nodata == 0 and ds.crs.to_epsg() == 32702
            assert (ds.transform.a, ds.transform.c, ds.transform.f) == (10, x0 + 10 * co,
                                                                        y0 - 10 * ro)
            rgb = np.moveaxis(ds.read(), 0, -1)
        rows, cols = np.mgrid[0:px, 0:px]
        base = fake_ee["field"](x0 + 10 * (co + cols + 0.5), y0 - 10 * (ro + rows + 0.5))
        np.testing.assert_array_equal(rgb, dn_to_rgb8(np.stack([base, base // 2, base // 3], -1)))
    # the labels of a collected scene are a COG on the scene's grid
    scene = res.records[0].scene_path
    assert main(["label", str(scene), str(tmp_path / "labels"), "--no-progress"]) == 0
    with rasterio.open(tmp_path / "labels" / f"{scene.stem}_classes.tif") as cls, \
            rasterio.open(scene) as src:
        assert cls.crs == src.crs and cls.transform == src.transform
        assert cls.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
