"""Full-scene inference: windows, blending without seams, no-data, model settings, areas, files,
GeoTIFFs, engines and the ``seaice predict`` command."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seaice_utils.inference import model as inf_model
from seaice_utils.engines import scene_outputs
from seaice_utils.core import areas as inf_outputs
from seaice_utils.inference import predict as infer
from seaice_utils.inference import runtime as inf_runtime
from seaice_utils.inference import stitch as inf_stitch
from seaice_utils.core.classes import NODATA
from seaice_utils.labelling.cloudfilter import FilterParams, thin_cloud_shadow_filter
from seaice_utils.errors import InputError


# ------------------------------------------------------------------------------------------
# stand-in models (numpy callables: no TensorFlow)
# ------------------------------------------------------------------------------------------

def pointwise(x: np.ndarray) -> np.ndarray:
    """Class from the pixel value alone (water < 0.3 <= thin < 0.7 <= thick): context-free, so
    any correct stitching must reproduce it exactly."""
    v = x[..., 0]
    return np.stack([v < 0.3, (v >= 0.3) & (v < 0.7), v >= 0.7], -1).astype(np.float32) * 0.6 + 0.2


def edge_biased(x: np.ndarray, edge: int = 6) -> np.ndarray:
    """Like a U-Net lacking context at its input's edges: near the top/left edges of the window
    it leans to water, near the bottom/right edges to thick ice, so two windows meeting at a
    border disagree there (a seam) unless the blend hands over to the window that sees context."""
    p = pointwise(x)
    t = x.shape[1]
    lo, hi = np.arange(t) < edge, np.arange(t) >= t - edge
    p[:, lo, :, 0] += 1.0
    p[:, :, lo, 0] += 1.0
    p[:, hi, :, 2] += 1.0
    p[:, :, hi, 2] += 1.0
    return p


def smooth_image(shape=(600, 700), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 25)
    return ((img - img.min()) / (img.max() - img.min()) * 255).astype(np.uint8)


def pointwise_classes(img: np.ndarray) -> np.ndarray:
    v = img.astype(np.float32) / 255
    return np.where(v < 0.3, 0, np.where(v < 0.7, 1, 2)).astype(np.uint8)


# ------------------------------------------------------------------------------------------
# windows and blending
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,tile,overlap", [(1000, 256, 0), (1000, 256, 32), (256, 256, 64),
                                            (300, 128, 100), (2048, 256, 0)])
def test_windows_cover_every_pixel_and_end_at_the_edge(n, tile, overlap):
    wins = inf_stitch.tile_windows((n, n), tile, overlap)
    cover = np.zeros((n, n), int)
    for r, c in wins:
        assert 0 <= r <= n - tile and 0 <= c <= n - tile
        cover[r:r + tile, c:c + tile] += 1
    assert cover.min() >= 1
    starts = sorted({c for _, c in wins})
    assert starts[0] == 0 and starts[-1] == n - tile
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_paper_grid_without_overlap():
    assert len(inf_stitch.tile_windows((2048, 2048), 256, 0)) == 64
    assert inf_stitch.tile_windows((100, 50), 256, 0) == [(0, 0)]


@pytest.mark.parametrize("overlap", [-1, 256, 300])
def test_bad_overlap_is_an_input_error(overlap):
    with pytest.raises(InputError, match="overlap"):
        inf_stitch.tile_windows((512, 512), 256, overlap)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_blend_window_is_positive_symmetric_and_flat_inside(kind):
    w = inf_stitch.blend_window(64, 16, kind=kind)
    assert w.shape == (64, 64) and w.min() > 0
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert np.all(w[16:48, 16:48] == 1.0)
    assert w[0, 32] < 0.1
    assert np.all(inf_stitch.blend_window(64, 0) == 1)


# ------------------------------------------------------------------------------------------
# stitching
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(600, 700), (256, 256), (100, 300), (37, 41)])
@pytest.mark.parametrize("overlap,border", [(0, "none"), (32, "reflect"), (48, "none")])
def test_context_free_model_is_reproduced_exactly(shape, overlap, border):
    img = smooth_image(shape)
    got = inf_stitch.predict_scene(pointwise, img, tile=128, overlap=overlap, border=border,
                              batch_size=3)
    np.testing.assert_array_equal(got, pointwise_classes(img))


def test_probabilities_are_normalised_blends():
    img = smooth_image((300, 260))
    classes, probs = inf_stitch.predict_scene(pointwise, img, tile=128, overlap=40,
                                              return_probs=True)
    ref = pointwise(img[None, ..., None].astype(np.float32) / 255)[0]
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    assert probs.shape == (300, 260, 3)


def test_overlap_removes_seams():
    """Predicted without overlap, class changes crowd on the window borders; with a blended
    overlap they are no more frequent there than anywhere else."""
    img = smooth_image((600, 700))
    plain = inf_stitch.predict_scene(edge_biased, img, tile=128, overlap=0, border="none")
    s0 = inf_stitch.seam_statistics(plain, tile=128, overlap=0)
    assert s0["ratio"] > 10
    for overlap, border in ((32, "reflect"), (64, "none")):
        blended = inf_stitch.predict_scene(edge_biased, img, tile=128, overlap=overlap,
                                           border=border)
        s = inf_stitch.seam_statistics(blended, tile=128, overlap=overlap, border=border)
        assert s["border_pairs"] > 1000
        assert s["ratio"] < 1.5, s
        # the old grid lines are clean too
        assert inf_stitch.seam_statistics(blended, tile=128, overlap=0)["ratio"] < 1.5
        # away from the scene's outer edges, the blend recovers the context-free answer
        inner = (slice(16, -16), slice(16, -16))
        agree = (blended[inner] == pointwise_classes(img)[inner]).mean()
        assert agree > 0.999


def test_reflect_border_keeps_scene_edges_free_of_window_edge_effects():
    img = smooth_image((300, 300))
    truth = pointwise_classes(img)
    none = inf_stitch.predict_scene(edge_biased, img, tile=128, overlap=32, border="none")
    refl = inf_stitch.predict_scene(edge_biased, img, tile=128, overlap=32, border="reflect")
    edge = np.zeros(img.shape, bool)
    edge[:6], edge[-6:], edge[:, :6], edge[:, -6:] = True, True, True, True
    assert (none[edge] == truth[edge]).mean() < 0.7
    assert (refl[edge] == truth[edge]).mean() > 0.99


def test_nodata_stays_nodata_and_empty_windows_are_not_predicted():
    img = smooth_image((512, 512))
    nodata = np.zeros(img.shape, bool)
    nodata[:, 300:] = True                      # windows starting at 384 hold no data
    nodata[:40, :40] = True
    seen = []

    def counting(x):
        seen.append(len(x))
        return pointwise(x)

    got = inf_stitch.predict_scene(counting, img, nodata=nodata, tile=128, overlap=0, border="none")
    assert np.all(got[nodata] == NODATA)
    np.testing.assert_array_equal(got[~nodata], pointwise_classes(img)[~nodata])
    assert sum(seen) == 12                      # 16 windows, the 4 right-hand ones skipped
    all_nodata = inf_stitch.predict_scene(counting, img, nodata=np.ones(img.shape, bool), tile=128)
    assert np.all(all_nodata == NODATA)


def test_rows_are_streamed_in_bands():
    img = smooth_image((1000, 300))
    bands = list(inf_stitch.predict_probabilities(pointwise, img, tile=128, overlap=0,
                                                  border="none"))
    assert len(bands) == 8
    assert max(b[1].shape[0] for b in bands) <= 128
    assert [b[0] for b in bands] == sorted(b[0] for b in bands)
    assert sum(b[1].shape[0] for b in bands) == 1000


def test_bad_model_output_is_reported():
    with pytest.raises(InputError, match="returned shape"):
        inf_stitch.predict_scene(lambda x: x[:, :10], smooth_image((256, 256)), tile=128)


# ------------------------------------------------------------------------------------------
# model input and settings
# ------------------------------------------------------------------------------------------

def test_model_input_matches_training_layers(rng):
    rgb = rng.integers(0, 256, (200, 220, 3), dtype=np.uint8)
    nodata = np.zeros((200, 220), bool)
    nodata[:10] = True
    fp = FilterParams(median_kernel=31)
    lev = thin_cloud_shadow_filter(rgb, fp, nodata=nodata)
    f = inf_model.model_input(rgb, kind="filtered", nodata=nodata, filter_params=fp)
    assert f.shape == (200, 220, 1)
    np.testing.assert_array_equal(f[..., 0], np.where(nodata, 0, lev))
    g = inf_model.model_input(rgb, kind="filtered", nodata=nodata, filter_params=fp,
                              apply_filter=False)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(g[..., 0], np.where(nodata, 0, grey))
    r = inf_model.model_input(rgb, kind="rgb")
    np.testing.assert_array_equal(r, rgb)
    r2 = inf_model.model_input(rgb, kind="rgb", filter_params=fp, apply_filter=True)
    np.testing.assert_array_equal(r2, np.repeat(thin_cloud_shadow_filter(rgb, fp)[..., None], 3,
                                                -1))
    with pytest.raises(InputError, match="model input"):
        inf_model.model_input(rgb, kind="nir")


def test_settings_from_training_json(tmp_path):
    model = tmp_path / "unet_auto.keras"
    model.write_bytes(b"not read")
    (tmp_path / "training.json").write_text(json.dumps({"models": {
        "auto": {"labels": "auto", "input": "rgb", "model": {"tile_size": 128, "input_channels": 3},
                 "path": str(model)},
        "man": {"skipped": "no reference labels"}}}))
    s = inf_model.read_model_settings(model)
    assert (s.input, s.tile_size, s.labels, s.channels) == ("rgb", 128, "auto", 3)
    assert s.source.endswith("training.json")
    with pytest.raises(InputError, match="1 channel"):
        inf_model.read_model_settings(model, channels=1)
    assert inf_model.read_model_settings(model, input="grey", channels=1).input == "grey"


def test_settings_sidecar_wins_and_defaults_follow_channels(tmp_path):
    m = tmp_path / "mine.keras"
    m.write_bytes(b"x")
    assert inf_model.read_model_settings(m, channels=3).input == "rgb"
    assert inf_model.read_model_settings(m, channels=1).input == "filtered"
    (tmp_path / "mine.json").write_text(json.dumps({"input_layer": "gray", "tile_size": 64}))
    s = inf_model.read_model_settings(m)
    assert (s.input, s.tile_size) == ("grey", 64)
    (tmp_path / "mine.json").write_text(json.dumps({"input": "infrared"}))
    with pytest.raises(InputError, match="infrared"):
        inf_model.read_model_settings(m)


# ------------------------------------------------------------------------------------------
# areas and summaries
# ------------------------------------------------------------------------------------------

def test_pixel_areas():
    assert inf_outputs.pixel_area_m2({})[0] == 100.0
    assert inf_outputs.pixel_area_m2({}, pixel_size_m=20)[0] == 400.0
    utm = {"transform": [10, 0, 500000, 0, -10, 2e6], "crs": "EPSG:32701"}
    assert inf_outputs.pixel_area_m2(utm)[0] == pytest.approx(100.0)
    # 0.001 degree pixels at 75 S: about 111 m x 29 m
    geo = {"transform": [0.001, 0, 170.0, 0, -0.001, -74.9], "crs": "EPSG:4326"}
    a, src = inf_outputs.pixel_area_m2(geo, (200, 200))
    expected = 111.2 * 111.2 * np.cos(np.radians(75))
    assert 0.99 * expected < a < 1.01 * expected
    assert "approximate" in src
    with pytest.raises(InputError):
        inf_outputs.pixel_area_m2({}, pixel_size_m=0)


def test_class_summary_counts_areas_and_fractions():
    cl = np.full((100, 100), NODATA, np.uint8)
    cl[:50] = 2
    cl[50:75] = 1
    cl[75:90] = 0
    row = scene_outputs.class_summary(cl, pixel_area=400.0, name="s")
    assert row["thick_ice_pixels"] == 5000 and row["thick_ice_km2"] == pytest.approx(2.0)
    assert row["thin_ice_fraction"] == pytest.approx(2500 / 9000)
    assert row["nodata_pixels"] == 1000 and row["valid_km2"] == pytest.approx(3.6)
    assert set(row) == set(scene_outputs.SUMMARY_COLUMNS)


# ------------------------------------------------------------------------------------------
# with a real (tiny) Keras U-Net
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained depth-2, 4-filter U-Net with fixed weights, saved as training saves it."""
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.training.unet import build_unet

    d = tmp_path_factory.mktemp("models")
    tf.keras.utils.set_random_seed(7)
    model = build_unet(depth=2, base_filters=4, name="unet_auto")
    path = d / "unet_auto.keras"
    model.save(path)
    (d / "training.json").write_text(json.dumps({"models": {"auto": {
        "labels": "auto", "input": "filtered", "path": str(path),
        "model": {"tile_size": 256, "input_channels": 1}}}}))
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A georeferenced 16-bit GeoTIFF with a no-data wedge and an 8-bit PNG."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from seaice_utils.data.synthetic import synthesize_scene

    d = tmp_path_factory.mktemp("scenes")
    sc = synthesize_scene(5, size=300, cloud_cover=0.2, nodata_wedge=True)
    dn = (sc.image.astype(np.uint32) * 10000 // 255).astype(np.uint16)
    with rasterio.open(d / "geo.tif", "w", driver="GTiff", width=300, height=300, count=3,
                       dtype="uint16", crs="EPSG:3031",
                       transform=from_origin(-400000, -1300000, 20, 20)) as dst:
        dst.write(np.moveaxis(dn, -1, 0))
    cv2.imwrite(str(d / "plain.png"), synthesize_scene(6, size=280).image[..., ::-1])
    return d, sc


def test_batched_keras_prediction_equals_per_tile_predict_classes(tiny_model):
    from seaice_utils.training.unet import predict_classes

    model, settings = inf_model.load_model(tiny_model)
    assert settings.input == "filtered" and settings.tile_size == 256
    img = smooth_image((512, 768))
    got = inf_stitch.predict_scene(model, img, tile=256, overlap=0, batch_size=4, border="none")
    tiles = np.stack([img[r:r + 256, c:c + 256] for r in (0, 256) for c in (0, 256, 512)])
    ref = predict_classes(model, tiles)
    exp = np.zeros_like(got)
    for k, (r, c) in enumerate([(r, c) for r in (0, 256) for c in (0, 256, 512)]):
        exp[r:r + 256, c:c + 256] = ref[k]
    assert (got != exp).mean() < 1e-4          # float summation order may flip a rare tie
    np.testing.assert_array_equal(inf_stitch.predict_tiles(model, tiles, batch_size=3), ref)


def test_tflite_runtime_matches_tensorflow_and_pads_short_batches(tiny_model):
    model, _ = inf_model.load_model(tiny_model)
    tiles = np.stack([smooth_image((256, 256), seed=s) for s in range(5)])[..., None]
    x = tiles.astype(np.float32) / 255.0
    tf_fn = inf_runtime.make_predict_fn(model, runtime="tensorflow")
    lite = inf_runtime.make_predict_fn(model, runtime="tflite", batch_size=3, threads=1)
    assert lite.runtime == "tflite" and tf_fn.runtime == "tensorflow"
    assert inf_runtime.make_predict_fn(model, runtime="tflite", batch_size=3, threads=1) is lite
    ref = tf_fn(x)
    got = lite(x)                                 # 5 windows: one full batch, one padded
    assert got.shape == ref.shape == (5, 256, 256, 3)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(lite(x[:1]), ref[:1], atol=1e-5)
    a = inf_stitch.predict_scene(lite, tiles[0, ..., 0], overlap=0, batch_size=3)
    b = inf_stitch.predict_scene(tf_fn, tiles[0, ..., 0], overlap=0, batch_size=3)
    assert (a != b).mean() < 1e-4
    with pytest.raises(InputError, match="windows of shape"):
        lite(x[:, :128, :128])


def test_auto_runtime_and_bad_runtime(tiny_model):
    import tensorflow as tf

    model, _ = inf_model.load_model(tiny_model)
    want = "tensorflow" if tf.config.list_physical_devices("GPU") else "tflite"
    assert inf_runtime.resolve_runtime(model, "auto") == want
    assert inf_runtime.resolve_runtime(model, "tensorflow") == "tensorflow"
    with pytest.raises(InputError, match="runtime must be one of"):
        inf_runtime.make_predict_fn(model, runtime="onnx")
    with pytest.raises(InputError, match="batch_size"):
        inf_runtime.make_predict_fn(model, runtime="tflite", batch_size=0)
    with pytest.raises(InputError, match="runtime must be one of"):
        infer.PredictOptions(runtime="onnx")


def test_predict_files_geotiff_summary_and_resume(tiny_model, scenes, tmp_path):
    import rasterio

    d, sc = scenes
    out = tmp_path / "out"
    s = infer.predict_inputs(tiny_model, d, out, infer.PredictOptions(overlap=32), progress=False)
    assert s.ok and sorted(s.done) == ["geo", "plain"]
    cls = cv2.imread(str(out / "geo_classes.png"), cv2.IMREAD_UNCHANGED)
    nodata = sc.image.max(axis=2) == 0
    assert cls.shape == (300, 300) and np.all(cls[nodata] == NODATA) and np.all(cls[~nodata] < 3)
    pal = cv2.imread(str(out / "geo_labels.png"))[..., ::-1]
    assert np.all(pal[nodata] == 0)
    with rasterio.open(out / "geo_classes.tif") as g:
        assert g.crs.to_epsg() == 3031
        assert tuple(g.transform)[:6] == (20, 0, -400000, 0, -20, -1300000)
        np.testing.assert_array_equal(g.read(1), cls)
        assert g.nodata == NODATA
    assert not (out / "plain_classes.tif").exists()
    rows = {r["scene"]: r for r in s.rows}
    assert rows["geo"]["pixel_area_m2"] == pytest.approx(400.0)
    assert rows["plain"]["pixel_area_m2"] == pytest.approx(100.0)
    assert rows["geo"]["valid_pixels"] == int((~nodata).sum())
    csv_text = (out / "summary.csv").read_text().splitlines()
    assert csv_text[0].split(",") == list(scene_outputs.SUMMARY_COLUMNS) and len(csv_text) == 3
    meta = json.loads((out / "geo.json").read_text())
    assert meta["model_input"] == "filtered" and meta["filter_applied"] is True
    again = infer.predict_inputs(tiny_model, d, out, resume=True, progress=False)
    assert again.skipped == ["geo", "plain"] and not again.done and len(again.rows) == 2


def test_bad_inputs_are_listed_not_fatal(tiny_model, scenes, tmp_path):
    d, _ = scenes
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    s = infer.predict_inputs(tiny_model, [d / "plain.png", bad], tmp_path / "o", progress=False)
    assert s.done == ["plain"] and [f[0] for f in s.failures] == ["broken.png"] and not s.ok


def test_cli_predict(tiny_model, scenes, tmp_path, capsys):
    from seaice_utils.cli import main

    d, _ = scenes
    rc = main(["predict", str(tiny_model), str(d / "plain.png"), str(tmp_path / "o"),
               "--overlap", "0", "--batch-size", "2", "--no-progress", "--no-filter"])
    assert rc == 0
    meta = json.loads((tmp_path / "o" / "plain.json").read_text())
    assert meta["filter_applied"] is False and meta["options"]["overlap"] == 0
    assert meta["options"]["runtime"] == "auto"
    assert main(["predict", str(tiny_model), str(d / "plain.png"), str(tmp_path / "o1"),
                 "--runtime", "tensorflow", "--no-progress"]) == 0
    meta1 = json.loads((tmp_path / "o1" / "plain.json").read_text())
    assert meta1["options"]["runtime"] == "tensorflow"
    assert "1 predicted" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "nope.keras"), str(d), str(tmp_path / "o2"),
                 "--no-progress"]) == 2
    capsys.readouterr()
    assert main(["predict", str(tiny_model), str(d), str(tmp_path / "o3"), "--input", "rgb",
                 "--no-progress"]) == 2
    assert "takes 1 channel(s) but its input is 'rgb'" in capsys.readouterr().err


@pytest.mark.slow
def test_multiprocessing_engine_loads_the_model_once_per_process(tiny_model, scenes, tmp_path):
    d, _ = scenes
    files = [d / "plain.png", d / "geo.tif"]
    seq = infer.predict_inputs(tiny_model, files, tmp_path / "seq", progress=False)
    mp = infer.predict_inputs(tiny_model, files * 1, tmp_path / "mp", engine="multiprocessing",
                              workers=2, progress=False)
    assert mp.ok and sorted(mp.done) == ["geo", "plain"]
    assert set(mp.model_loads.values()) == {1}
    for name in ("geo", "plain"):
        a = cv2.imread(str(tmp_path / "seq" / f"{name}_classes.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "mp" / f"{name}_classes.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)
    assert [r["scene"] for r in mp.rows] == [r["scene"] for r in seq.rows]


@pytest.mark.slow
def test_spark_engine_ships_the_model_once_per_worker(tiny_model, scenes, tmp_path):
    pytest.importorskip("pyspark")
    from seaice_utils.data.synthetic import synthesize_scene

    d, _ = scenes
    many = tmp_path / "in"
    many.mkdir()
    for i in range(6):
        cv2.imwrite(str(many / f"s{i}.png"), synthesize_scene(20 + i, size=128).image[..., ::-1])
    seq = infer.predict_inputs(tiny_model, many, tmp_path / "seq", progress=False)
    from seaice_utils.engines.spark import spark_session

    spark = spark_session("local[2]", app_name="test-predict", progress=False)
    try:
        sp = infer.predict_inputs(tiny_model, many, tmp_path / "spark", engine="spark",
                                  spark=spark, progress=False)
    finally:
        spark.stop()
    assert seq.ok and sp.ok and sorted(sp.done) == sorted(seq.done) == [f"s{i}" for i in range(6)]
    assert set(sp.model_loads.values()) == {1}         # one load per Python worker, 6 scenes
    assert len(sp.model_loads) <= 2
    for i in range(6):
        a = cv2.imread(str(tmp_path / "seq" / f"s{i}_classes.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "spark" / f"s{i}_classes.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)


def test_real_sample_map_keeps_the_nodata_wedge(tiny_model, ross_sea_path, tmp_path):
    """The real Ross Sea render (no labels: not an accuracy test): the map covers every data
    pixel, the black wedge stays no-data, and the figure is drawn."""
    from seaice_utils import evaluation as evaluate
    from seaice_utils.core.figures import figure_to_png
    from seaice_utils.params import defaults

    params = defaults()
    model, settings = inf_model.load_model(tiny_model)
    rs = evaluate.real_sample(ross_sea_path, model, settings, params)
    assert rs["pred"].shape == (1086, 1086)
    assert rs["nodata"].mean() > 0.05                   # the wedge bottom right
    assert np.all(rs["pred"][rs["nodata"]] == NODATA)
    assert np.all(rs["pred"][~rs["nodata"]] < 3)
    assert np.all(rs["auto"][rs["nodata"]] == NODATA)
    assert 0 <= rs["agreement_pct"] <= 100
    assert figure_to_png(evaluate.real_sample_figure(rs))[:4] == b"\x89PNG"


def test_recorded_filter_constants_reach_predict(tmp_path, scenes, capsys):
    """Training records its filter constants; `seaice predict` without --params uses them."""
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.cli import main
    from seaice_utils.params import load_params_dict
    from seaice_utils.training.runs import record_models
    from seaice_utils.training.unet import build_unet

    tf.keras.utils.set_random_seed(3)
    run_model = tmp_path / "run" / "model.keras"
    run_model.parent.mkdir()
    build_unet(depth=2, base_filters=4).save(run_model)
    params = load_params_dict({"filter": {"median_kernel": 31, "truncation": 230}})
    data = {"split": {"train": ["a"], "test": ["b"], "by": "scene"}, "tiles_root": str(tmp_path)}
    info = record_models(params, tmp_path / "out", data, {"auto": {
        "model_path": str(run_model), "labels": "auto", "input": "filtered",
        "model": {"tile_size": 256, "input_channels": 1}}})
    assert info["filter"]["median_kernel"] == 31
    model = tmp_path / "out" / "models" / "unet_auto.keras"
    st = inf_model.read_model_settings(model)
    assert st.filter_params() == FilterParams(median_kernel=31, truncation=230)

    d, _ = scenes
    assert main(["predict", str(model), str(d / "plain.png"), str(tmp_path / "p1"),
                 "--no-progress"]) == 0
    assert "median_kernel=31" in capsys.readouterr().err            # logged
    meta = json.loads((tmp_path / "p1" / "plain.json").read_text())
    assert meta["options"]["filter_params"]["median_kernel"] == 31
    assert meta["options"]["filter_params"]["truncation"] == 230
    assert main(["predict", str(model), str(d / "plain.png"), str(tmp_path / "p2"),
                 "--params", "quick", "--no-progress"]) == 0       # an explicit profile wins
    meta2 = json.loads((tmp_path / "p2" / "plain.json").read_text())
    assert meta2["options"]["filter_params"]["median_kernel"] == 155
    with pytest.raises(InputError, match="bad filter constants"):
        inf_model.ModelSettings(filter={"median_kernel": 4}).filter_params()
