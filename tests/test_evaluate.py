"""Evaluation (notebook 05): metrics from counts, Tables IV and V, cloud strata, auto-label
quality, finding notebook 04's models, speedup tables, figures, and the notebook itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seaice_utils.core.classes import NODATA
from seaice_utils.core.figures import figure_to_png
from seaice_utils.core.metrics import (classification_report, confusion_counts, report_from_counts,
                                       tile_confusions)
from seaice_utils.errors import InputError
from seaice_utils.evaluation import (cloud, figures, models, heldout, scenes, season,
                                     season_figures, speedups, tables)

ROOT = Path(__file__).resolve().parent.parent


def random_maps(rng, n=6, size=32, p_nodata=0.1, classes=(0, 1, 2)):
    ref = rng.choice(classes, (n, size, size)).astype(np.uint8)
    noise = rng.integers(0, 3, ref.shape)
    pred = np.where(rng.random(ref.shape) < 0.8, ref, noise).astype(np.uint8)
    ref[rng.random(ref.shape) < p_nodata] = NODATA
    pred[rng.random(ref.shape) < p_nodata / 2] = NODATA
    return pred, ref


# ------------------------------------------------------------------------------------------
# counts and metrics
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("classes", [(0, 1, 2), (0, 2), (1,)])
def test_report_from_counts_equals_classification_report(rng, classes):
    pred, ref = random_maps(rng, classes=classes)
    c = tile_confusions(pred, ref)
    assert c.shape == (6, 3, 3)
    np.testing.assert_array_equal(c.sum(axis=0), confusion_counts(pred, ref))
    got, exp = report_from_counts(c.sum(axis=0)), classification_report(pred, ref)
    assert got.keys() == exp.keys()
    for k in ("accuracy", "n_pixels"):
        assert got[k] == pytest.approx(exp[k], nan_ok=True)
    for avg in ("macro", "weighted"):
        for k, v in exp[avg].items():
            assert got[avg][k] == pytest.approx(v, nan_ok=True), (avg, k)
    for cls, d in exp["per_class"].items():
        for k, v in d.items():
            assert got["per_class"][cls][k] == pytest.approx(v, nan_ok=True), (cls, k)


def test_tile_confusions_reject_bad_classes():
    with pytest.raises(InputError, match="outside"):
        tile_confusions(np.full((1, 2, 2), 3, np.uint8), np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(InputError, match="shape"):
        tile_confusions(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))


def crafted():
    """Four 10x10 tiles: two cloudy, two clear, known accuracies 100, 50, 90, 100 %."""
    ref = np.zeros((4, 10, 10), np.uint8)
    ref[:, 5:] = 2
    ref[1, :, :3] = 1
    pred = ref.copy()
    pred[1, :5] = (ref[1, :5] + 1) % 3       # 50 of 100 wrong
    pred[2, 0] = 1                           # 10 of 100 wrong
    pred[3, :, 0] = NODATA                   # 10 px not counted
    cloud = np.array([0.5, 0.11, 0.10, 0.0])
    return {("U-Net-Auto", "filtered"): pred}, ref, cloud


def test_table4_accuracy_and_columns():
    preds, ref, _ = crafted()
    t4 = tables.table4(preds, ref)
    row = t4.iloc[0]
    assert row["n_pixels"] == 390
    assert row["accuracy_pct"] == pytest.approx(100 * (100 + 50 + 90 + 90) / 390)
    assert row["paper_accuracy_pct"] == 98.97
    assert row["weighted_recall_pct"] == pytest.approx(row["accuracy_pct"])
    assert {"macro_precision_pct", "macro_f1_pct", "weighted_f1_pct", "macro_iou_pct"} <= set(t4)
    pc = tables.per_class_table(preds, ref)
    assert pc["support_pixels"].sum() == 390 and len(pc) == 3


def test_table5_strata_and_pixel_weighted_overall():
    preds, ref, cloud = crafted()
    t5 = tables.table5(preds, ref, cloud, threshold=0.10)
    above, below, overall = (t5.iloc[i] for i in range(3))
    assert above["stratum"].startswith(">") and above["n_tiles"] == 2      # 0.5 and 0.11
    assert below["n_tiles"] == 2                                             # 0.10 is not above
    assert above["accuracy_pct"] == pytest.approx(75.0)
    assert below["accuracy_pct"] == pytest.approx(100 * 180 / 190)
    assert overall["accuracy_pct"] == pytest.approx(tables.table4(preds, ref)["accuracy_pct"][0])
    w = (above["macro_f1_pct"] * 200 + below["macro_f1_pct"] * 190) / 390
    assert overall["macro_f1_pct"] == pytest.approx(w)
    assert (above["paper_accuracy_pct"], below["paper_accuracy_pct"]) == (99.28, 98.87)


def test_empty_stratum_gives_nan_not_an_error():
    preds, ref, _ = crafted()
    t5 = tables.table5(preds, ref, np.zeros(4))
    assert t5.iloc[0]["n_tiles"] == 0 and np.isnan(t5.iloc[0]["accuracy_pct"])
    assert t5.iloc[2]["accuracy_pct"] == pytest.approx(t5.iloc[1]["accuracy_pct"])


# ------------------------------------------------------------------------------------------
# cloud cover
# ------------------------------------------------------------------------------------------

def test_cloud_sources(tmp_path):
    known = np.array([0.2, np.nan, 0.0])
    est = np.array([0.3, 0.05, 0.0])
    has = np.array([True, False, True])
    c, src = cloud.cloud_for_tiles(known, est, has_data=has)
    assert np.isnan(c[1]) and "index" in src                    # unknown only where no data
    c, src = cloud.cloud_for_tiles(known, est)
    np.testing.assert_array_equal(c, est)
    assert "estimated" in src
    with pytest.raises(InputError, match="estimate or file"):
        cloud.cloud_for_tiles(known, est, source="index")
    f = tmp_path / "cover.csv"
    f.write_text("tile,scene,cloud_fraction\nt1,,0.4\n,s2,0.02\n")
    c, src = cloud.cloud_for_tiles(known, est, names=["t1", "t2", "t3"],
                                      scenes=["s1", "s2", "s2"], source="file", file=f)
    np.testing.assert_allclose(c, [0.4, 0.02, 0.02])
    with pytest.raises(InputError, match="no cloud_fraction for tile t9"):
        cloud.cloud_for_tiles(known, est, names=["t9", "t2", "t3"], scenes=["s9", "s2", "s2"],
                                 source="file", file=f)
    f.write_text("tile,cloud_fraction\nt1,40\n")
    with pytest.raises(InputError, match="0..1"):
        cloud.cloud_for_tiles(known[:1], est[:1], names=["t1"], scenes=["s1"], source="file",
                                 file=f)


def test_estimate_counts_pixels_the_filter_reclasses():
    a = np.zeros((2, 10, 10), np.uint8)
    b = a.copy()
    b[0, :3] = 2
    b[1] = NODATA
    e = cloud.estimate_cloud_fraction(a, b)
    assert e[0] == pytest.approx(0.3) and np.isnan(e[1])


def test_cloud_estimate_check():
    known = np.array([0.0, 0.05, 0.3, 0.5])
    df = cloud.cloud_estimate_check(known, known * 0.9)
    assert df.loc[0, "pearson_r"] == pytest.approx(1.0) and df.loc[0, "same_stratum_pct"] == 100
    df = cloud.cloud_estimate_check(known, np.zeros(4))
    assert df.loc[0, "same_stratum_pct"] == 50 and np.isnan(df.loc[0, "pearson_r"])


def test_pick_examples_cloudiest_first_and_mostly_valid():
    cloud = np.array([0.1, 0.9, 0.5, 0.0, 0.95])
    valid = np.array([1.0, 1.0, 1.0, 1.0, 0.2])           # the cloudiest tile is mostly no-data
    assert figures.pick_examples(cloud, valid, 3) == [1, 2, 3]
    assert figures.pick_examples(cloud, valid, 10) == [1, 2, 0, 3]
    assert figures.pick_examples(cloud, valid, 2) == [1, 3]


# ------------------------------------------------------------------------------------------
# notebook 04's outputs
# ------------------------------------------------------------------------------------------

def test_missing_models_say_what_to_run(tmp_path):
    with pytest.raises(models.ModelsMissing, match="notebook 04's models are missing.*run "
                       "notebook 04 first"):
        models.find_models(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "unet_auto.keras").write_bytes(b"x")
    with pytest.raises(models.ModelsMissing, match="split"):
        models.find_models(tmp_path)


def test_find_models_reads_training_json_without_tensorflow(tmp_path):
    md = tmp_path / "models"
    (tmp_path / "tiles").mkdir()
    (tmp_path / "tiles" / "index.csv").write_text("tile,scene,row,col,nodata_fraction,"
                                                  "cloud_fraction,has_truth\n")
    md.mkdir()
    (md / "unet_auto.keras").write_bytes(b"x")
    split = {"train": ["a_0000_0000"], "test": ["b_0000_0000"], "test_scenes": ["b"], "by": "scene"}
    (md / "training.json").write_text(json.dumps({
        "split": split, "tiles_root": str(tmp_path / "tiles"),
        "models": {"man": {"skipped": "no reference labels for every tile"},
                   "auto": {"labels": "auto", "input": "filtered",
                            "path": str(md / "unet_auto.keras"),
                            "model": {"tile_size": 256, "input_channels": 1}}}}))
    m = models.find_models(tmp_path)
    assert list(m.models) == ["U-Net-Auto"] and m.models["U-Net-Auto"].settings.input == "filtered"
    assert m.split["test"] == ["b_0000_0000"] and m.reference == "truth"
    assert any("U-Net-Man was not trained" in n for n in m.notes)
    assert "U-Net-Auto" in m.describe()


# ------------------------------------------------------------------------------------------
# tiles on disk: auto-label quality
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tile_folder(tmp_path_factory):
    from seaice_utils.data.dataset import ensure_synthetic_dataset
    from seaice_utils.params import load_params_dict
    from seaice_utils.data.tiles import prepare_tiles

    out = tmp_path_factory.mktemp("eval")
    params = load_params_dict({"data": {"n_scenes": 2, "scene_size": 512, "cloudy_fraction": 0.5},
                               "global": {"progress": False}})
    recs = ensure_synthetic_dataset(out / "data", params, progress=False)
    rows = prepare_tiles(recs, out / "tiles", params, progress=False)
    return out / "tiles", rows


def test_autolabel_quality_against_itself_and_the_truth(tile_folder):
    root, rows = tile_folder
    names = [r["tile"] for r in rows]
    same = tables.autolabel_counts(root, names, reference="auto_filtered", chunk=5)
    q = tables.autolabel_quality(same)
    filt = q[(q["input"] == "filtered") & (q["stratum"] == "all tiles")].iloc[0]
    assert filt["accuracy_pct"] == 100 and filt["ssim_pct"] == pytest.approx(100)
    al = tables.autolabel_counts(root, names)
    known, _ = models.index_cloud(root, names)
    q = tables.autolabel_quality(al, known)
    assert len(q) == 6 and set(q["paper_ssim_pct"].dropna()) == {89.0, 99.64}
    tot = q[q["stratum"] == "all tiles"]
    assert (tot["n_pixels"] == int(al["valid"].sum())).all()
    assert ((tot["accuracy_pct"] > 50) & (tot["accuracy_pct"] < 100)).all()
    assert ((tot["ssim_pct"] > 0) & (tot["ssim_pct"] <= 100)).all()
    strata = q[(q["input"] == "original") & (q["stratum"] != "all tiles")]
    assert strata["n_tiles"].sum() == tot.iloc[0]["n_tiles"]


def test_tile_set_and_figures(tile_folder):
    root, rows = tile_folder
    names = [r["tile"] for r in rows][:6]
    ts = models.load_tile_set(root, names)
    assert ts.rgb.shape == (6, 256, 256, 3) and ts.filtered.shape == (6, 256, 256)
    cover, _ = cloud.cloud_fractions(ts)
    preds = {("U-Net-Man", "filtered"): ts.auto_filtered.copy(),
             ("U-Net-Auto", "original"): ts.auto_original.copy()}
    idx = figures.pick_examples(cover, ts.valid_fraction, 2)
    for fig in (figures.autolabel_examples_figure(ts, idx, cover),
                figures.predictions_figure(ts, preds, idx, cover),
                figures.confusion_figure(preds, ts.reference)):
        assert figure_to_png(fig)[:4] == b"\x89PNG"
    ct = tables.confusion_table(preds, ts.reference)
    sums = ct.groupby(["model", "input", "reference"])["percent_of_reference"].sum()
    assert np.allclose(sums.dropna(), 100)
    with pytest.raises(InputError, match="not in"):
        models.load_tile_set(root, ["nope_0000_0000"])


# ------------------------------------------------------------------------------------------
# speedup tables of notebooks 03 and 04
# ------------------------------------------------------------------------------------------

def test_speedup_tables_found_or_reported_missing(tmp_path):
    t = speedups.find_speedup_tables(tmp_path)
    assert all("did not run" in v["missing"] for v in t.values())
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"processes": [1, 2], "seconds": [4.0, 2.2], "speedup": [1.0, 1.8]}).to_csv(
        tmp_path / "tables" / "03_table1_multiprocessing.csv", index=False)
    pd.DataFrame({"executors": [1, 2], "cores": [1, 2], "reduce_s": [8, 2],
                  "reduce_speedup": [1.0, 4.0]}).to_csv(tmp_path / "tables" / "03_table2_spark.csv",
                                                        index=False)
    pd.DataFrame({"workers": [1, 2], "total_s": [10, 6], "speedup": [1, 1.6]}).to_csv(
        tmp_path / "tables" / "04_heldout_accuracy.csv", index=False)      # not Table III
    t = speedups.find_speedup_tables(tmp_path)
    assert t["Table I"]["x"] == "processes" and t["Table I"]["speedup"] == "speedup"
    assert list(t["Table II"]["data"]["total_cores"]) == [1, 4]
    assert "missing" in t["Table III"] and "did not run" not in t["Table III"]["missing"]
    st = speedups.speedup_table(t)
    assert set(st[st["source"] == "this run"]["table"]) == {"Table I", "Table II"}
    assert len(st[st["source"] == "paper"]) == 5 + 9 + 5
    assert figure_to_png(speedups.speedup_figure(t))[:4] == b"\x89PNG"


def test_real_sample_path_resolution(tmp_path):
    from seaice_utils.params import defaults

    p = defaults()
    assert p["evaluation"]["real_sample"].startswith("../shared/real-samples/")
    p["evaluation"]["real_sample"] = str(tmp_path / "absent.png")
    path, msg = scenes.real_sample_path(p)
    assert path is None and "skipped" in msg
    p["evaluation"]["real_sample"] = None
    assert scenes.real_sample_path(p)[0] is None



def test_profile_paths_resolve_against_the_project_folder(tmp_path, monkeypatch):
    """Relative profile paths mean the same file from the project folder and from notebooks/
    (where papermill runs notebook 05)."""
    proj = tmp_path / "proj"
    (proj / "notebooks").mkdir(parents=True)
    want = proj / "../shared/real-samples/x.png"
    for cwd in (proj, proj / "notebooks"):
        monkeypatch.chdir(cwd)
        assert models.project_root() == proj.resolve()
        assert models.resolve_path("../shared/real-samples/x.png").resolve() == want.resolve()
    assert models.resolve_path("a/b.csv", root=tmp_path) == tmp_path / "a/b.csv"
    assert models.resolve_path(tmp_path / "c.csv") == tmp_path / "c.csv"
    monkeypatch.chdir(proj / "notebooks")
    p = defaults_with_real_sample(str(Path("sample.png")))
    (proj / "sample.png").write_bytes(b"x")
    path, msg = scenes.real_sample_path(p)
    assert path == proj.resolve() / "sample.png" and msg == "real sample sample.png"


def defaults_with_real_sample(value):
    from seaice_utils.params import defaults

    p = defaults()
    p["evaluation"]["real_sample"] = value
    return p


def test_public_face_names_the_modules_objects():
    import seaice_utils.evaluation as evaluation

    homes = (cloud, figures, models, heldout, scenes, season, season_figures, speedups,
             tables)
    for name in evaluation.__all__:
        obj = getattr(evaluation, name)
        assert any(getattr(m, name, None) is obj for m in homes), name


# ------------------------------------------------------------------------------------------
# notebook 05 end to end (tiny untrained models stand in for notebook 04's)
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_notebook_05_fails_clearly_without_models_then_runs(tmp_path):
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("papermill")
    import yaml

    from seaice_utils.params import load_params
    from seaice_utils.runner import NotebookFailed, run_notebooks
    from seaice_utils.core.scenes import write_json
    from seaice_utils.training.runs import prepare_training_data
    from seaice_utils.training.unet import build_unet

    prof = tmp_path / "tiny.yml"
    prof.write_text(yaml.safe_dump({
        "global": {"profile": "tiny", "progress": False},
        "data": {"n_scenes": 2, "scene_size": 512, "cloudy_fraction": 0.5},
        "evaluation": {"max_scenes": 1, "examples": 2, "real_sample": None}}))
    out = tmp_path / "out"
    with pytest.raises(NotebookFailed, match="notebook 04's models are missing"):
        run_notebooks(prof, out, only=["05"], progress=False)
    data = prepare_training_data(load_params(prof), out, progress=False)
    info = {"split": data["split"], "tiles_root": data["tiles_root"], "models": {}}
    for labels in ("man", "auto"):
        tf.keras.utils.set_random_seed(3)
        path = out / "models" / f"unet_{labels}.keras"
        build_unet(depth=2, base_filters=4).save(path)
        info["models"][labels] = {"labels": labels, "input": "filtered", "path": str(path),
                                  "model": {"tile_size": 256, "input_channels": 1}}
    write_json(out / "models" / "training.json", info)
    run_notebooks(prof, out, only=["05"], progress=False)
    t4 = pd.read_csv(out / "tables" / "05_table4_accuracy.csv")
    assert len(t4) == 4 and t4["n_pixels"].min() > 0
    t5 = pd.read_csv(out / "tables" / "05_table5_cloud_strata.csv")
    overall = t5[t5["stratum"].str.startswith("overall")].set_index(["model", "input"])
    np.testing.assert_allclose(overall["accuracy_pct"],
                               t4.set_index(["model", "input"]).loc[overall.index, "accuracy_pct"])
    for name in ("05_autolabel_quality", "05_confusion_matrices", "05_scene_inference",
                 "05_speedups", "05_table4_per_class"):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    for name in ("05_autolabel_examples", "05_confusion_matrices", "05_predictions",
                 "05_scene_prediction", "05_speedups"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000, name
    rec = json.loads((out / "records" / "05_evaluation.json").read_text())
    assert "not set" in rec["real_sample"]


def test_heldout_steps_save_their_outputs_and_say_what_is_missing(tmp_path):
    speed = heldout.save_speedups(tmp_path)
    assert (tmp_path / "tables" / "05_speedups.csv").exists()
    assert [Path(f).name for f in speed.figures] == ["05_speedups.png"]
    assert speed.text.count("MISSING") == len(speed.data) == 3

    labels = heldout.AutoLabels({"valid": np.array([5, 0]), "estimate": np.array([0.2, 0.0])},
                                   np.array([np.nan, np.nan]), pd.DataFrame())
    check = heldout.save_cloud_estimate_check(labels, {"evaluation": {"cloud_threshold": 0.1}},
                                                 tmp_path)
    assert "not known" in check.text and check.tables == []
    assert not (tmp_path / "tables" / "05_cloud_estimate_check.csv").exists()
