"""One scene-output layer, one engine vocabulary, option builders shared by every command."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.core.classes import LABEL_PALETTE
from seaice_utils.data.season import make_season
from seaice_utils.engines.base import ENGINES, resolve_workers
from seaice_utils.engines.scene_outputs import (SCENE_OUTPUT_KEYS, encode_class_maps,
                                                scene_output_paths)
from seaice_utils.errors import ParamsError


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("so")
    return make_season(root / "s", 4, n_dates=12, size=128)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny U-Net whose training.json records filter constants other than the profile's."""
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.params import load_params_dict
    from seaice_utils.training.runs import record_models
    from seaice_utils.training.unet import build_unet

    d = tmp_path_factory.mktemp("model")
    tf.keras.utils.set_random_seed(5)
    run_model = d / "run.keras"
    build_unet(depth=2, base_filters=4).save(run_model)
    params = load_params_dict({"filter": {"median_kernel": 31, "truncation": 200}})
    data = {"split": {"train": ["a"], "test": ["b"], "by": "scene"}, "tiles_root": str(d)}
    record_models(params, d / "out", data, {"auto": {
        "model_path": str(run_model), "labels": "auto", "input": "filtered",
        "model": {"tile_size": 256, "input_channels": 1}}})
    return d / "out" / "models" / "unet_auto.keras"


def test_one_naming_rule_and_one_encoder():
    paths = scene_output_paths("/x", "s")
    assert list(paths) == list(SCENE_OUTPUT_KEYS) and SCENE_OUTPUT_KEYS[-1] == "sidecar"
    assert [p.name for p in paths.values()] == ["s_classes.png", "s_labels.png",
                                                "s_classes.tif", "s_preview.png", "s.json"]
    classes = np.array([[0, 1], [2, 255]], np.uint8)
    out = encode_class_maps(classes)
    assert out["geotiff"] is None and out["preview"] is None   # small, not georeferenced
    import cv2

    plain = cv2.imdecode(np.frombuffer(out["classes"], np.uint8), cv2.IMREAD_UNCHANGED)
    rgb = cv2.imdecode(np.frombuffer(out["labels"], np.uint8), cv2.IMREAD_COLOR_RGB)
    assert np.array_equal(plain, classes)
    assert np.array_equal(rgb, LABEL_PALETTE[classes])
    assert out["labels"][25] == 3                     # IHDR colour type: indexed palette


def test_label_predict_and_season_write_the_same_set(season, model, tmp_path):
    scene = sorted((season.root / "scenes").glob("*.tif"))[0]
    assert main(["label", str(scene), str(tmp_path / "l"), "-q"]) == 0
    assert main(["predict", str(model), str(scene), str(tmp_path / "p"), "-q"]) == 0
    names = {p.name for k, p in scene_output_paths(tmp_path, scene.stem).items()
             if k != "preview"}                       # a small scene: full-size PNGs
    for d in ("l", "p"):
        assert names <= {p.name for p in (tmp_path / d).iterdir()}, d
        head = (tmp_path / d / f"{scene.stem}_labels.png").read_bytes()[:26]
        assert head[25] == 3, d                        # the same palette encoding
    assert not list((tmp_path / "p").glob("*_map.png"))
    # one summary row type: the same columns, the same pixel area, counts that match the map
    import cv2

    heads = [(tmp_path / d / "summary.csv").read_text().splitlines() for d in ("l", "p")]
    assert heads[0][0] == heads[1][0] and len(heads[0]) == len(heads[1]) == 2
    row = next(csv.DictReader(open(tmp_path / "l" / "summary.csv")))
    classes = cv2.imread(str(tmp_path / "l" / f"{scene.stem}_classes.png"), cv2.IMREAD_UNCHANGED)
    assert int(row["thick_ice_pixels"]) == int((classes == 2).sum())
    assert float(row["pixel_area_m2"]) == 1600.0          # the season's 40 m grid


def _one_scene_season(season, tmp_path):
    rows = list(csv.DictReader(open(season.root / "season.csv")))
    one = tmp_path / "one"
    (one / "scenes").mkdir(parents=True)
    shutil.copy(season.root / rows[0]["scene"], one / rows[0]["scene"])
    with open(one / "season.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["date", "scene"])
        w.writeheader()
        w.writerow({"date": rows[0]["date"], "scene": rows[0]["scene"]})
    return one / "season.csv", one / rows[0]["scene"]


def test_season_model_maps_are_predicts_maps(season, model, tmp_path):
    """The model's recorded filter constants apply through `season --model` as through
    `predict`: byte-identical class maps; with the profile's constants they differ."""
    csv_path, scene = _one_scene_season(season, tmp_path)
    assert main(["predict", str(model), str(scene), str(tmp_path / "p"), "-q"]) == 0
    assert main(["season", str(csv_path), str(tmp_path / "s"), "--model", str(model),
                 "-q"]) == 0
    for suffix in ("_classes.png", "_classes.tif"):
        a = (tmp_path / "p" / f"{scene.stem}{suffix}").read_bytes()
        b = (tmp_path / "s" / "scenes" / f"{scene.stem}{suffix}").read_bytes()
        assert a == b, suffix
    meta = json.loads((tmp_path / "s" / "scenes" / f"{scene.stem}.json").read_text())
    assert meta["options"]["filter_params"]["median_kernel"] == 31
    assert main(["season", str(csv_path), str(tmp_path / "q"), "--model", str(model),
                 "--params", "quick", "-q"]) == 0
    meta = json.loads((tmp_path / "q" / "scenes" / f"{scene.stem}.json").read_text())
    assert meta["options"]["filter_params"]["median_kernel"] == 155   # a named profile wins


def test_season_honours_its_profile_engine_and_workers(season, tmp_path, capsys):
    rc = main(["season", str(season.root / "season.csv"), str(tmp_path / "o"), "--no-progress",
               "--set", "season.engine=multiprocessing", "--set", "season.workers=2"])
    assert rc == 0
    assert "multiprocessing x2" in capsys.readouterr().out


def test_workers_mean_the_same_everywhere(tmp_path, capsys):
    assert ENGINES == ("sequential", "multiprocessing", "spark")
    assert resolve_workers(0) == (os.cpu_count() or 1) and resolve_workers(3) == 3
    with pytest.raises(ParamsError, match="--workers"):
        resolve_workers(-2)
    from seaice_utils.cli.parser import build_parser

    p = build_parser()
    for cmd in (["label", "a", "b"], ["predict", "m", "a", "b"], ["season", "a", "b"]):
        a = p.parse_args(cmd + ["--engine", "spark", "--workers", "0", "--spark-master",
                                "local[2]"])
        assert (a.engine, a.workers, a.spark_master) == ("spark", 0, "local[2]"), cmd
        with pytest.raises(SystemExit):
            p.parse_args(cmd + ["--engine", "threads"])
        capsys.readouterr()
