"""Scenes labelled in bands of rows: byte-identical to the whole-scene path, memory bounded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.core.blocks import open_bands
from seaice_utils.core.scenes import read_scene
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.labelling.autolabel import Thresholds, auto_label
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.labelling.pipeline import LabelOptions, encode_outputs
from seaice_utils.labelling.windowed import label_bands, levels_lut, otsu_threshold

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402


def _geotiff(path, kind: str, size: int, seed: int, *, wedge: bool = True):
    img = synthesize_scene(seed, size=size).image
    if kind == "u8":
        arr = img.copy()
    elif kind == "u16":
        arr = (img.astype(np.float32) / 255 * 10000).astype(np.uint16)
    else:
        arr = img.astype(np.float32) / 255
    if wedge:
        arr[: size // 4, : size // 5] = 0
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3,
                       dtype=arr.dtype, crs="EPSG:3031", tiled=True, compress="deflate",
                       transform=from_origin(-400000, -1300000, 10, 10)) as dst:
        dst.write(np.moveaxis(arr, -1, 0))
    return path


def test_steps_7_to_11_are_a_lookup_table_of_the_histogram():
    rng = np.random.default_rng(4)
    from seaice_utils.labelling.cloudfilter import LEVEL_THICK, LEVEL_THIN
    from seaice_utils.labelling.kernels import minmax_u8

    for _ in range(40):
        diff = rng.integers(rng.integers(0, 120), 256, (rng.integers(5, 90), 70), np.uint8)
        hist = np.bincount(diff.ravel(), minlength=256)
        t, d2 = cv2.threshold(diff, 0, 255, cv2.THRESH_TOZERO + cv2.THRESH_OTSU)
        assert otsu_threshold(hist) == int(t)
        p = FilterParams()
        _, tr = cv2.threshold(minmax_u8(d2), p.truncation, 255, cv2.THRESH_TRUNC)
        want = np.where(minmax_u8(tr) >= p.thick_threshold, LEVEL_THICK, LEVEL_THIN)
        assert np.array_equal(levels_lut(hist, p)[diff], want)


@pytest.mark.parametrize("kind", ["u8", "u16", "f32"])
@pytest.mark.parametrize("fp", [FilterParams(), FilterParams(median_kernel=31, dilation=15),
                                FilterParams(apply_to="tile", tile_size=64), None],
                         ids=["scene", "small-median", "per-tile", "no-filter"])
def test_bands_give_the_whole_scene_labels(tmp_path, kind, fp):
    p = _geotiff(tmp_path / "s.tif", kind, 300, {"u8": 1, "u16": 2, "f32": 3}[kind])
    sc = read_scene(p)
    want = auto_label(sc.rgb, nodata=sc.nodata, filter_params=fp, thresholds=Thresholds())[0]
    for rows in (37, 64, 128, 300):
        with open_bands(p, rows=rows) as src:
            got, n_nodata = label_bands(src, fp, Thresholds(), rows=rows)
            assert src.meta == {k: v for k, v in sc.meta.items() if k != "path"}
        assert np.array_equal(got, want), rows
        assert n_nodata == int(sc.nodata.sum())


def test_float_input_that_is_not_reflectance_is_refused_as_whole(tmp_path):
    p = tmp_path / "dn.tif"
    arr = np.full((3, 80, 80), 4000.0, np.float32)
    with rasterio.open(p, "w", driver="GTiff", width=80, height=80, count=3,
                       dtype="float32") as dst:
        dst.write(arr)
    with pytest.raises(Exception) as whole:
        read_scene(p)
    with pytest.raises(Exception) as bands:
        open_bands(p, rows=16)
    assert str(whole.value) == str(bands.value)


_SPARK = [pytest.mark.slow, pytest.mark.skipif(shutil.which("java") is None,
                                               reason="needs Java")]


@pytest.mark.parametrize("engine", ["sequential", "multiprocessing",
                                    pytest.param("spark", marks=_SPARK),
                                    pytest.param("spark-by-path", marks=_SPARK)])
def test_label_command_writes_the_whole_scene_bytes_on_every_engine(tmp_path, engine,
                                                                    monkeypatch):
    if engine == "spark-by-path":             # as for files over 64 MB: read by path, in bands
        from seaice_utils.engines import spark

        monkeypatch.setattr(spark, "BYTES_MODE_MAX_MB", 0)
        engine = "spark"
    src = tmp_path / "in"
    src.mkdir()
    paths = [_geotiff(src / f"g{i}.tif", k, 257, 10 + i) for i, k in enumerate(("u8", "u16"))]
    out = tmp_path / "out"
    extra = [] if engine == "sequential" else ["--engine", engine, "--workers", "2"]
    # a memory limit that makes bands of 64 rows (the least): five of them per scene
    assert main(["label", str(src), str(out), "-q", "--set", "global.worker_memory_gb=0.01",
                 *extra]) == 0
    for p in paths:
        sc = read_scene(p)
        classes = auto_label(sc.rgb, nodata=sc.nodata)[0]
        want = encode_outputs(sc, classes, LabelOptions(), input_name=p.name)
        for key, suffix in (("classes", "_classes.png"), ("labels", "_labels.png"),
                            ("geotiff", "_classes.tif")):
            assert (out / f"{p.stem}{suffix}").read_bytes() == want[key], (p.name, key)
        side = json.loads((out / f"{p.stem}.json").read_text())
        ref = json.loads(want["sidecar"])
        for k in ("outputs", "fingerprint"):
            side.pop(k, None)
            ref.pop(k, None)
        assert side == ref


@pytest.mark.slow
def test_a_big_scene_stays_within_the_memory_setting(tmp_path):
    """A 4000 x 4000 16-bit scene (96 MB of samples, 16 Mpx) with a 0.5 GiB worker limit:
    the labelling process's peak memory stays near the limit (the whole-scene path took about
    45 bytes a pixel, 0.7 GB, here)."""
    p = _geotiff(tmp_path / "big.tif", "u16", 4000, 7)
    code = ("import resource, sys\n"
            "from seaice_utils.cli import main\n"
            f"rc = main(['label', {str(p)!r}, {str(tmp_path / 'o')!r}, '-q', '--set',"
            " 'global.worker_memory_gb=0.5'])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    peak_mb = int(r.stdout.split()[-1]) / 1024
    base = subprocess.run([sys.executable, "-c", "import resource; import seaice_utils.cli; "
                           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                          capture_output=True, text=True, timeout=120)
    base_mb = int(base.stdout.split()[-1]) / 1024
    assert peak_mb - base_mb < 0.5 * 1024, (peak_mb, base_mb)


@pytest.fixture
def tiny_model(tiny_unet):
    return tiny_unet


@pytest.mark.parametrize("kind,fp,apply", [
    ("filtered", FilterParams(), None), ("filtered", FilterParams(median_kernel=31), None),
    ("filtered", FilterParams(apply_to="tile", tile_size=256), None),
    ("filtered", FilterParams(), False)], ids=["scene", "small-median", "per-tile", "unfiltered"])
def test_predict_from_bands_is_predict_of_the_whole_scene(tmp_path, tiny_model, kind, fp, apply):
    from seaice_utils.inference.model import load_model, model_input
    from seaice_utils.inference.predict import PredictOptions, predict_file
    from seaice_utils.inference.runtime import make_predict_fn
    from seaice_utils.inference.stitch import predict_scene

    p = _geotiff(tmp_path / "s.tif", "u16", 300, 21)
    model, settings = load_model(tiny_model)
    predict = make_predict_fn(model, runtime="tensorflow", batch_size=4)
    opts = PredictOptions(filter_params=fp, apply_filter=apply, overlap=32, batch_size=4,
                          max_bytes=int(0.01 * 2**30))        # bands of 64 rows
    predict_file(p, tmp_path / "out", predict, settings, opts)
    sc = read_scene(p)
    x = model_input(sc.rgb, kind=kind, nodata=sc.nodata, filter_params=fp, apply_filter=apply)
    want = predict_scene(predict, x, nodata=sc.nodata, tile=256, overlap=32, batch_size=4)
    got = cv2.imread(str(tmp_path / "out" / "s_classes.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(got, want)


def test_big_georeferenced_scenes_get_a_cog_and_a_preview(tmp_path, monkeypatch):
    from seaice_utils.engines import scene_outputs

    monkeypatch.setattr(scene_outputs, "PNG_AUTO_MAX_PIXELS", 200 * 200)   # "big": > 200 px
    monkeypatch.setattr(scene_outputs, "PREVIEW_PX", 100)
    src = tmp_path / "in"
    src.mkdir()
    _geotiff(src / "g.tif", "u8", 257, 5)
    write = tmp_path / "small.png"
    cv2.imwrite(str(write), synthesize_scene(6, size=257).image[..., ::-1])
    shutil.copy(write, src / "plain.png")
    assert main(["label", str(src), str(tmp_path / "auto"), "-q"]) == 0
    names = {p.name for p in (tmp_path / "auto").iterdir()}
    assert {"g_classes.tif", "g_preview.png", "g.json"} <= names
    assert not {"g_classes.png", "g_labels.png"} & names
    assert {"plain_classes.png", "plain_labels.png"} <= names     # not georeferenced: PNGs
    with rasterio.open(tmp_path / "auto" / "g_classes.tif") as ds:
        full = ds.read(1)
    prev = cv2.imread(str(tmp_path / "auto" / "g_preview.png"))[..., ::-1]
    from seaice_utils.core.classes import LABEL_PALETTE
    assert np.array_equal(prev, LABEL_PALETTE[full[::3, ::3]])   # 257 px -> every 3rd pixel
    assert main(["label", str(src), str(tmp_path / "always"), "-q",
                 "--set", "global.png_renders=always"]) == 0
    names = {p.name for p in (tmp_path / "always").iterdir()}
    assert {"g_classes.png", "g_labels.png"} <= names and "g_preview.png" not in names
