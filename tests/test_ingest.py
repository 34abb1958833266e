"""Ingesting local Sentinel-2 products (band files, .SAFE folders, multi-band GeoTIFFs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from rasterio.transform import from_origin  # noqa: E402

from seaice_utils.collect.products import dn_to_rgb8  # noqa: E402
from seaice_utils.collect.run import collect  # noqa: E402
from seaice_utils.data.dataset import ensure_dataset, resolve_source  # noqa: E402
from seaice_utils.errors import InputError  # noqa: E402
from seaice_utils.collect.local import band_token, find_products, ingest_products  # noqa: E402
from seaice_utils.params import load_params_dict  # noqa: E402

H, W, PX = 300, 420, 128          # non-square product, scene side of the tests
X0, Y0 = 513030.0, 1508970.0      # UTM zone 2S, inside the Ross Sea box
CRS = "EPSG:32702"


def _dn(seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    refl = np.choose((xx // 30 + yy // 45) % 3, [0.05, 0.5, 0.92])[..., None] * \
        np.array([1.0, 1.03, 1.08]) + rng.normal(0, 0.01, (H, W, 3))
    dn = np.rint(np.clip(refl, 0.001, 1.0) * 10000).astype(np.uint16)
    dn[:40, :60] = 0  # a no-data corner
    return dn


def _write(path: Path, bands: np.ndarray, *, crs=CRS, transform=None, driver="GTiff",
           dtype=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if bands.ndim == 2:
        bands = bands[None]
    dtype = dtype or bands.dtype.name
    transform = transform or from_origin(X0, Y0, 10, 10)
    kw = dict(height=bands.shape[1], width=bands.shape[2], count=bands.shape[0], dtype=dtype,
              crs=crs, transform=transform)
    if driver == "JP2OpenJPEG":
        from rasterio.io import MemoryFile
        from rasterio.shutil import copy as rio_copy

        with MemoryFile() as mem:
            with mem.open(driver="GTiff", **kw) as dst:
                dst.write(bands.astype(dtype))
            with mem.open() as src:
                rio_copy(src, str(path), driver="JP2OpenJPEG", QUALITY="100",
                                     REVERSIBLE="YES")
        return path
    with rasterio.open(path, "w", driver="GTiff", **kw) as dst:
        dst.write(bands.astype(dtype))
    return path


def _band_files(folder: Path, dn: np.ndarray, stem="T02CMT_20191115T202851", suffix="_10m.tif",
                bands=("B04", "B03", "B02"), **kw) -> None:
    for i, b in enumerate(("B04", "B03", "B02")):
        if b in bands:
            _write(folder / f"{stem}_{b}{suffix}", dn[..., i], **kw)


def _params(folder, **collect) -> dict:
    c = {"scene_px": PX, "max_scenes": 20}
    c.update(collect)
    return load_params_dict({"global": {"progress": False},
                             "data": {"source": "folder", "folder": str(folder)}, "collect": c})


def _rows(root: Path) -> list[dict]:
    with (root / "catalogue.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_band_token():
    assert band_token("T01CDK_20191115T202851_B04_10m.jp2") == "B04"
    assert band_token("x_b8a.tif") == "B8A" and band_token("scene_B2.tif") == "B02"
    assert band_token("S2B_MSIL2A_20191115T202851_N0213_R128_T01CDK.tif") is None
    assert band_token("T01CDK_20191115T202851_TCI_10m.jp2") is None


def test_band_files_are_cut_into_scenes(tmp_path):
    dn = _dn()
    src = tmp_path / "products"
    _band_files(src, dn)
    params = _params(src)
    res = collect(params, tmp_path / "out")
    root = tmp_path / "out" / "data" / "local"
    assert res.effective == "local" and res.root == root
    rows = _rows(root)
    # grid 3 x 4 windows of 128 px over 300 x 420; those with >= 50 % data are kept
    valid = np.zeros((3 * PX, 4 * PX), bool)
    valid[:H, :W] = ~np.all(dn == 0, axis=-1)
    expect = [(r, c) for r in range(0, 3 * PX, PX) for c in range(0, 4 * PX, PX)
              if valid[r:r + PX, c:c + PX].mean() >= 0.5]
    assert [(int(r["row_off"]), int(r["col_off"])) for r in rows] == expect
    for r in rows:
        assert r["source"] == "local" and r["crs"] == "EPSG:32702" and r["tile"] == "02CMT"
        assert r["datetime"] == "2019-11-15T20:28:51Z" and float(r["reflectance_offset"]) == 0.0
        ro, co = int(r["row_off"]), int(r["col_off"])
        assert [float(v) for v in r["transform"].split()] == [10, 0, X0 + 10 * co, 0, -10,
                                                              Y0 - 10 * ro]
        img = cv2.imread(str(root / r["file"]), cv2.IMREAD_UNCHANGED)[..., ::-1]
        win = np.zeros((PX, PX, 3), np.uint16)
        part = dn[ro:ro + PX, co:co + PX]
        win[:part.shape[0], :part.shape[1]] = part
        assert np.array_equal(img, dn_to_rgb8(win))          # padded edges are no-data (0)
        assert abs(float(r["valid_fraction"]) - valid[ro:ro + PX, co:co + PX].mean()) < 1e-3
    # the edge window at col 384 holds 36 of 128 columns: rejected, and remembered
    state = json.loads((root / "collect_state.json").read_text())
    assert any(n.endswith("c00384") for n in state["rejected"])
    # later notebooks: ensure_dataset through resolve_source reads the ingested scenes
    later = resolve_source(params, tmp_path / "out")
    assert later["data"] == {**params["data"], "folder": str(root)}
    assert [r.name for r in ensure_dataset(tmp_path / "out", later)] == [r["name"] for r in rows]
    # an unresolved profile still reads them, and a warning says which dataset was read
    with pytest.warns(UserWarning, match=r"reading data.source 'folder' in .*data.local"):
        unresolved = ensure_dataset(tmp_path / "out", params)
    assert [r.name for r in unresolved] == [r["name"] for r in rows]
    # nothing written to the dataset folder names a folder of this machine (the products' own
    # paths included: the scenes are read from the dataset folder, never from the products again)
    for f in ("catalogue.csv", "collect_state.json"):
        text = (root / f).read_text()
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text, f
        assert str(Path.home()) not in text, f
    # a rerun resumes: the scene files are not written again
    mtimes = {p.name: p.stat().st_mtime_ns for p in (root / "scenes").iterdir()}
    collect(params, tmp_path / "out")
    assert {p.name: p.stat().st_mtime_ns for p in (root / "scenes").iterdir()} == mtimes


def test_safe_baseline_0400_offset_and_resolution_choice(tmp_path):
    dn = _dn(2)
    safe = tmp_path / "S2B_MSIL2A_20220115T202851_N0400_R128_T02CMT_20220115T220119.SAFE"
    img = safe / "GRANULE" / "L2A_T02CMT_A025000_20220115T202851" / "IMG_DATA"
    shifted = np.where(dn > 0, dn.astype(np.int32) + 1000, 0).astype(np.uint16)
    _band_files(img / "R10m", shifted, stem="T02CMT_20220115T202851", suffix="_10m.jp2",
                driver="JP2OpenJPEG")
    half = shifted[::2, ::2]  # 20 m versions that must not be picked at scale 10
    _band_files(img / "R20m", half, stem="T02CMT_20220115T202851", suffix="_20m.jp2",
                driver="JP2OpenJPEG", transform=from_origin(X0, Y0, 20, 20))
    _write(safe / "GRANULE" / "L2A_T02CMT_A025000_20220115T202851" / "QI_DATA" /
           "MSK_DETFOO_B04.jp2", np.ones((10, 10), np.uint8), driver="JP2OpenJPEG")
    params = _params(tmp_path, export_format="geotiff16")
    (prod,) = find_products(tmp_path, params)
    assert prod.id == safe.name[:-5] and prod.offset == -0.1 and prod.baseline == "04.00"
    assert all("R10m" in str(f) for f in prod.files)
    rows = ingest_products([prod], tmp_path / "local", params, progress=False)
    assert rows and all(float(r["reflectance_offset"]) == -0.1 for r in rows)
    assert str(tmp_path) not in (tmp_path / "local" / "catalogue.csv").read_text()
    r = rows[0]
    with rasterio.open(tmp_path / "local" / r["file"]) as ds:
        assert ds.crs.to_epsg() == 32702 and ds.count == 3 and ds.dtypes[0] == "uint16"
        ro, co = int(r["row_off"]), int(r["col_off"])
        assert (ds.transform.c, ds.transform.f) == (X0 + 10 * co, Y0 - 10 * ro)
        got = np.moveaxis(ds.read(), 0, -1)
    part = dn[ro:ro + PX, co:co + PX]
    assert np.array_equal(got[:part.shape[0], :part.shape[1]], part)  # offset removed
    # the 20 m bands alone also work, resampled to the 20 m scale asked for
    p20 = _params(img / "R20m", scale=20)
    (prod20,) = find_products(img / "R20m", p20)
    assert prod20.grid["height"] == H // 2


def test_metadata_offset_and_baseline_parameter(tmp_path):
    dn = _dn(3)
    safe = tmp_path / "S2A_MSIL1C_20230105T202851_N0509_R128_T02CMT_20230105T220119.SAFE"
    _band_files(safe / "GRANULE" / "L1C_T02CMT" / "IMG_DATA", dn, stem="T02CMT_20230105T202851",
                suffix=".tif")
    (safe / "MTD_MSIL1C.xml").write_text(
        "<root><PROCESSING_BASELINE>05.09</PROCESSING_BASELINE><QUANTIFICATION_VALUE unit='none'>"
        "10000</QUANTIFICATION_VALUE><Radiometric_Offset_List>"
        + "".join(f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in range(13))
        + "</Radiometric_Offset_List></root>")
    (prod,) = find_products(tmp_path, _params(tmp_path))
    assert prod.offset == -0.1 and "metadata" in prod.offset_source and prod.baseline == "05.09"
    plain = tmp_path / "plain"
    _band_files(plain, dn, stem="ross_scene", suffix=".tif")
    (p0,) = find_products(plain, _params(plain))
    assert p0.offset == 0.0 and p0.baseline is None
    (p1,) = find_products(plain, _params(plain, processing_baseline="04.00"))
    assert p1.offset == -0.1
    (p2,) = find_products(plain, _params(plain, reflectance_offset=-0.05))
    assert p2.offset == -0.05


def test_multiband_geotiff(tmp_path):
    dn = _dn(4)
    _write(tmp_path / "in" / "ross_export.tif", np.moveaxis(dn, -1, 0))
    params = _params(tmp_path / "in")
    (prod,) = find_products(tmp_path / "in", params)
    assert prod.indexes == [1, 2, 3] and prod.offset == 0.0
    rows = ingest_products([prod], tmp_path / "local", params, progress=False)
    assert len(rows) >= 4 and rows[0]["product_id"] == "ross_export"
    stack = np.concatenate([dn, dn[..., :2]], axis=-1)[..., [3, 0, 1, 2, 4]]  # R G B at 2, 3, 4
    _write(tmp_path / "five" / "stack.tif", np.moveaxis(stack, -1, 0))
    with pytest.raises(InputError, match=r"stack\.tif: a 5-band file; set data\.bands"):
        find_products(tmp_path / "five", _params(tmp_path / "five"))
    p = _params(tmp_path / "five")
    p["data"]["bands"] = [2, 3, 4]
    (prod5,) = find_products(tmp_path / "five", p)
    rows5 = ingest_products([prod5], tmp_path / "local5", p, progress=False)
    a = cv2.imread(str(tmp_path / "local" / rows[0]["file"]))
    b = cv2.imread(str(tmp_path / "local5" / rows5[0]["file"]))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("case", ["missing", "shape", "crs", "dtype", "nocrs"])
def test_bad_input_names_the_file(tmp_path, case):
    dn = _dn(5)
    if case == "missing":
        _band_files(tmp_path, dn, bands=("B04", "B03"))
        pattern = r"T02CMT_20191115T202851_B0[34]_10m\.tif: band B02 missing"
    elif case == "shape":
        _band_files(tmp_path, dn, bands=("B04", "B03"))
        _write(tmp_path / "T02CMT_20191115T202851_B02_10m.tif", dn[:-10, :, 2])
        pattern = r"B02_10m\.tif: 290 x 420 px, but .*B04_10m\.tif is 300 x 420"
    elif case == "crs":
        _band_files(tmp_path, dn, bands=("B04", "B02"))
        _write(tmp_path / "T02CMT_20191115T202851_B03_10m.tif", dn[..., 1], crs="EPSG:32701")
        pattern = r"B03_10m\.tif: CRS EPSG:32701 differs"
    elif case == "dtype":
        _band_files(tmp_path, dn, bands=("B04", "B03"))
        _write(tmp_path / "T02CMT_20191115T202851_B02_10m.tif", (dn[..., 2] // 40).astype(np.uint8))
        pattern = r"B02_10m\.tif: expected 16-bit integer .* got uint8"
    else:
        _band_files(tmp_path, dn, crs=None)
        pattern = r"B0\d_10m\.tif: has no CRS"
    with pytest.raises(InputError, match=pattern):
        find_products(tmp_path, _params(tmp_path))


def test_folder_of_8bit_scenes_is_used_as_is(tmp_path):
    folder = tmp_path / "scenes_in"
    folder.mkdir()
    rgb = np.full((64, 64, 3), 200, np.uint8)
    ok, buf = cv2.imencode(".png", rgb)
    (folder / "a.png").write_bytes(buf.tobytes())
    params = _params(folder)
    assert find_products(folder, params) == []
    res = collect(params, tmp_path / "out")
    assert res.effective == "folder" and [r.name for r in res.records] == ["a"]
    assert resolve_source(params, tmp_path / "out")["data"] == params["data"]
    # a dataset folder written by an earlier collection (16-bit GeoTIFF scenes) is not re-ingested
    dn = _dn(6)
    _band_files(tmp_path / "prod", dn)
    p16 = _params(tmp_path / "prod", export_format="geotiff16")
    ingest_products(find_products(tmp_path / "prod", p16), tmp_path / "ds16", p16, progress=False)
    assert find_products(tmp_path / "ds16", _params(tmp_path / "ds16")) == []
    with pytest.raises(InputError, match="is not a folder"):
        find_products(tmp_path / "nope", params)
