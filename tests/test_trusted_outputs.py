"""Outputs a user can trust (the shared engine layer: labelling and prediction alike): the
output folder is checked before any work, inputs are never overwritten, a scene's outputs are
published as a set with their checksums and fingerprint, and ``resume`` redoes exactly what
changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from seaice_utils.core.ledger import ForeignFilesError

from seaice_utils.cli import main
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.engines.outputs import own_outputs, publish_set, set_state
from seaice_utils.errors import InputError
from seaice_utils.labelling.jobs import run_label_job
from seaice_utils.labelling.pipeline import LabelOptions, is_done


def _scenes(folder: Path, n: int = 3, size: int = 96) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"scene{i}.png"
        cv2.imwrite(str(p), synthesize_scene(40 + i, size=size).image[..., ::-1])
        out.append(p)
    return out


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _strict(text: str):
    def no_constant(c):
        raise ValueError(f"not strict JSON: {c}")

    return json.loads(text, parse_constant=no_constant)


# ---------------------------------------------------------------- 1. output folder = input folder
def test_outputs_never_overwrite_an_input_in_the_same_folder(tmp_path, capsys):
    folder = tmp_path / "data"
    _scenes(folder, 2)
    user = folder / "scene0_labels.png"               # the user's own file, named like an output
    cv2.imwrite(str(user), np.full((8, 8, 3), 7, np.uint8))
    before = _bytes(folder)
    with pytest.raises(InputError, match="would overwrite the input .*scene0_labels.png"):
        run_label_job(folder, folder, progress=False)
    assert main(["label", str(folder), str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "would overwrite the input" in err and "Traceback" not in err
    assert _bytes(folder) == before                   # nothing written, nothing lost


def test_a_job_never_takes_its_own_outputs_for_inputs(tmp_path):
    folder = tmp_path / "data"
    _scenes(folder, 2)
    first = run_label_job(folder, folder, progress=False)
    assert first.done == ["scene0", "scene1"]
    written = _bytes(folder)
    assert {p.name for p in own_outputs(folder)} == {
        f"scene{i}_{k}.png" for i in range(2) for k in ("classes", "labels")}
    again = run_label_job(folder, folder, progress=False)     # not resumed: redone, same bytes
    assert again.n_inputs == 2 and again.done == ["scene0", "scene1"]
    assert _bytes(folder) == written                  # no scene0_labels_labels.png and the like
    resumed = run_label_job(folder, folder, resume=True, progress=False)
    assert resumed.skipped == ["scene0", "scene1"] and resumed.n_inputs == 2


# ---------------------------------------------------------------- 3. resume compares fingerprints
def test_resume_redoes_exactly_what_settings_or_inputs_changed(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    files = _scenes(src, 3)
    run_label_job(src, out, progress=False)
    same = run_label_job(src, out, resume=True, progress=False)
    assert same.skipped == ["scene0", "scene1", "scene2"] and same.done == []

    unfiltered = run_label_job(src, out, LabelOptions(filter_params=None), resume=True,
                               progress=False)
    assert unfiltered.done == unfiltered.redone == ["scene0", "scene1", "scene2"]
    assert "3 redone: settings or input changed" in unfiltered.describe()
    meta = json.loads((out / "scene0.json").read_text())
    assert meta["filter"] is None and meta["fingerprint"]["input"]["name"] == "scene0.png"

    cv2.imwrite(str(files[1]), synthesize_scene(99, size=96).image[..., ::-1])   # new content
    rc = main(["label", str(src), str(out), "--no-filter", "--resume", "--no-progress"])
    assert rc == 0
    assert "1 labelled (1 redone: settings or input changed), 2 already done" in \
        capsys.readouterr().out


# ---------------------------------------------------------------- 4. deep resume checks
@pytest.mark.parametrize("victim", ["scene1_labels.png", "scene1_classes.png"])
def test_resume_redoes_a_scene_whose_files_are_damaged(tmp_path, victim):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 2)
    run_label_job(src, out, progress=False)
    good = _bytes(out)
    data = (out / victim).read_bytes()
    (out / victim).write_bytes(data[: len(data) // 2])           # truncated, or edited by hand
    assert not is_done(out, "scene1") and is_done(out, "scene0")
    changed = (out / victim).read_bytes()
    # no longer the file seaice recorded: refused before any work, the file kept as it is
    with pytest.raises(ForeignFilesError, match=f"{victim}.*--overwrite"):
        run_label_job(src, out, resume=True, progress=False)
    assert (out / victim).read_bytes() == changed
    s = run_label_job(src, out, resume=True, progress=False, overwrite=True)
    assert s.done == ["scene1"] and s.skipped == ["scene0"] and s.redone == []
    assert _bytes(out) == good


def test_a_set_is_complete_only_when_its_sidecar_says_so(tmp_path):
    paths = {"a": tmp_path / "x_a.png", "b": tmp_path / "x_b.tif", "sidecar": tmp_path / "x.json"}
    fp = {"settings": "s", "input": {"name": "x.png", "bytes": 1, "sha256": "0"}, "version": "v"}
    meta = publish_set(paths, {"a": b"A", "b": b"BB", "sidecar": b"{}"}, fingerprint=fp)
    assert meta["outputs"]["b"] == {"file": "x_b.tif", "bytes": 2, "sha256":
                                    __import__("hashlib").sha256(b"BB").hexdigest()}
    assert set_state(paths, fp) == "done"
    (tmp_path / "x_b.tif").unlink()                              # e.g. a missing GeoTIFF
    assert set_state(paths, fp) == "missing"
    publish_set(paths, {"a": b"A", "sidecar": b"{}"}, fingerprint=fp)   # no GeoTIFF this time
    assert set_state(paths, fp) == "done" and not paths["b"].exists()
    (tmp_path / "x.json").write_text("{")                        # sidecar cut short
    assert set_state(paths, fp) == "missing"


# ---------------------------------------------------------------- 8. the output folder, first
@pytest.mark.parametrize("kind", ["file", "below a file"])
def test_an_unusable_output_folder_is_refused_before_any_work(tmp_path, capsys, kind):
    src = tmp_path / "in"
    _scenes(src, 2)
    (tmp_path / "taken").write_text("a user's file")
    out = tmp_path / "taken" if kind == "file" else tmp_path / "taken" / "sub"
    rc = main(["label", str(src), str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 2 and "labelled" not in captured.out
    assert captured.err.count("\n") == 1 and "output folder" in captured.err
    assert "Traceback" not in captured.err
    assert (tmp_path / "taken").read_text() == "a user's file"


# ---------------------------------------------------------------- 10. small things
def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 1)
    out.mkdir()
    stale, fresh = out / ".scene0_labels.png.ab12cd.tmp", out / ".scene0.json.ef34gh.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    run_label_job(src, out, progress=False)
    assert not stale.exists() and fresh.exists()      # a young one may be another job's


def test_an_all_nodata_scene_warns_and_writes_strict_json(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "black.png"), np.zeros((32, 32, 3), np.uint8))
    with pytest.warns(UserWarning, match="1 input.s. where every pixel is no-data.*: black"):
        s = run_label_job(src, out, progress=False)
    assert s.done == ["black"]
    meta = _strict((out / "black.json").read_text())
    assert meta["nodata_fraction"] == 1.0
    assert all(v is None for v in meta["class_fractions"].values())
    assert meta["warnings"] == ["every pixel is no-data: nothing was labelled"]


def test_pool_workers_end_quietly_when_the_parent_is_killed(tmp_path):
    src = tmp_path / "in"
    _scenes(src, 48, size=256)
    code = ("import sys\nfrom seaice_utils.cli import main\n"
            f"sys.exit(main(['label', {str(src)!r}, {str(tmp_path / 'out')!r}, '--engine', "
            "'multiprocessing', '--workers', '2', '--no-progress']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any((tmp_path / "out").glob("*.json")):
        time.sleep(0.05)
    assert any((tmp_path / "out").glob("*.json")), "the job did not start"
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)           # EOF once the workers are gone too
    assert proc.returncode == -signal.SIGKILL
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-2000:]


# ---------------------------------------------------------------- prediction: 1, 2, 3, 4
def _save_unet(folder: Path, name: str, n_classes: int) -> Path:
    tf = pytest.importorskip("tensorflow")
    from seaice_utils.training.unet import build_unet

    tf.keras.utils.set_random_seed(3)
    path = folder / f"{name}.keras"
    build_unet(depth=2, base_filters=4, n_classes=n_classes, name=name).save(path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return _save_unet(d, "good", 3), _save_unet(d, "four", 4)


@pytest.fixture()
def geo_scenes(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    d = tmp_path / "scenes"
    d.mkdir()
    for i in range(2):
        rgb = synthesize_scene(60 + i, size=128).image
        with rasterio.open(d / f"geo{i}.tif", "w", driver="GTiff", width=128, height=128,
                           count=3, dtype="uint8", crs="EPSG:3031",
                           transform=from_origin(-400000, -1300000, 20, 20)) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
    return d


def test_predict_checks_the_model_before_it_writes_anything(models, geo_scenes, tmp_path,
                                                            capsys):
    from seaice_utils.inference import predict_inputs

    good, four = models
    out = tmp_path / "maps"
    first = predict_inputs(good, geo_scenes, out, progress=False)
    assert first.ok and first.done == ["geo0", "geo1"]
    before = _bytes(out)
    assert {"geo0_classes.tif", "geo0_labels.png", "geo0.json", "summary.csv"} <= set(before)
    with pytest.raises(InputError, match="predicts 4 classes; sea-ice maps need 3"):
        predict_inputs(four, geo_scenes, out, progress=False)
    assert main(["predict", str(four), str(geo_scenes), str(out), "--resume",
                 "--no-progress"]) == 2
    assert "predicts 4 classes" in capsys.readouterr().err
    assert _bytes(out) == before                      # the good maps are untouched


def test_a_bad_prediction_writes_nothing(models, geo_scenes, tmp_path):
    from seaice_utils.errors import SeaIceError
    from seaice_utils.inference.model import load_model
    from seaice_utils.inference.predict import predict_file

    good, _ = models
    out = tmp_path / "maps"
    _, settings = load_model(good)

    def four_classes(batch):                          # probabilities of 4 classes
        p = np.zeros(batch.shape[:3] + (4,), np.float32)
        p[..., 3] = 1
        return p

    with pytest.raises(SeaIceError, match=r"unknown class codes \[3\]; nothing written"):
        predict_file(geo_scenes / "geo0.tif", out, four_classes, settings)
    assert not out.exists() or not any(out.iterdir())


def test_predict_resume_redoes_changed_options_and_missing_geotiffs(models, geo_scenes,
                                                                     tmp_path):
    from seaice_utils.inference import predict_inputs
    from seaice_utils.inference.predict import PredictOptions

    good, _ = models
    out = tmp_path / "maps"
    predict_inputs(good, geo_scenes, out, progress=False)
    same = predict_inputs(good, geo_scenes, out, resume=True, progress=False)
    assert same.skipped == ["geo0", "geo1"] and len(same.rows) == 2
    (out / "geo1_classes.tif").unlink()
    deep = predict_inputs(good, geo_scenes, out, resume=True, progress=False)
    assert deep.done == ["geo1"] and deep.redone == [] and (out / "geo1_classes.tif").exists()
    other = predict_inputs(good, geo_scenes, out, PredictOptions(overlap=16), resume=True,
                           progress=False)
    assert other.redone == ["geo0", "geo1"] and "2 redone" in other.describe()


def test_predict_outputs_never_overwrite_inputs(models, tmp_path):
    from seaice_utils.inference import predict_inputs

    good, _ = models
    folder = tmp_path / "mixed"
    _scenes(folder, 1)
    cv2.imwrite(str(folder / "scene0_labels.png"), np.full((8, 8, 3), 9, np.uint8))
    with pytest.raises(InputError, match="would overwrite the input .*scene0_labels.png"):
        predict_inputs(good, folder, folder, progress=False)


def test_predict_warns_once_for_scenes_without_data(models, tmp_path):
    from seaice_utils.inference import predict_inputs

    good, _ = models
    src = tmp_path / "in"
    _scenes(src, 1)
    cv2.imwrite(str(src / "black.png"), np.zeros((64, 64, 3), np.uint8))
    with pytest.warns(UserWarning, match=r"1 scene\(s\) where every pixel is no-data.*black"):
        s = predict_inputs(good, src, tmp_path / "maps", progress=False)
    assert s.ok and sorted(s.done) == ["black", "scene0"]
    assert _strict((tmp_path / "maps" / "black.json").read_text())["summary"]["valid_pixels"] == 0
