"""Training data (split, shards, tf.data pipeline), settings, Table III arithmetic and a
single-process training run with resume. The Horovod runs are in test_horovod.py."""

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from seaice_utils.training.data import convert_manual_labels, shard_names, split_tiles
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.params import load_params_dict
from seaice_utils.training.callbacks import read_history
from seaice_utils.training.launch import _failure_message
from seaice_utils.training.runs import scaling_table
from seaice_utils.training.settings import (fingerprint, process_settings, run_dir_of,
                                            training_settings)

TILE = 64
LEVELS = np.array([0, 155, 255], np.uint8)


def make_tiles(root: Path, n_scenes: int = 3, per_side: int = 2, seed: int = 0) -> list[dict]:
    """A tile folder as prepare_tiles writes it, from numpy arrays: blobs of the three filtered
    levels; auto-labels are the levels' classes; truth differs from them on a few pixels; the
    first tile has a no-data corner."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_scenes):
        scene = f"sc{s}"
        for r in range(per_side):
            for c in range(per_side):
                name = f"{scene}_{r * TILE:04d}_{c * TILE:04d}"
                small = rng.integers(0, 3, (8, 8)).astype(np.uint8)
                cls = cv2.resize(small, (TILE, TILE), interpolation=cv2.INTER_NEAREST)
                truth = cls.copy()
                truth[rng.random((TILE, TILE)) < 0.02] = 1
                nodata = np.zeros((TILE, TILE), bool)
                if not rows:
                    nodata[:16, :16] = True
                auto = np.where(nodata, 255, cls).astype(np.uint8)
                truth[nodata] = 255
                filt = np.where(nodata, 0, LEVELS[cls]).astype(np.uint8)
                rgb = np.repeat(filt[..., None], 3, -1)
                for layer, arr in (("filtered", filt), ("auto_filtered", auto), ("truth", truth),
                                   ("rgb", rgb), ("auto_original", auto)):
                    (root / layer).mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / layer / f"{name}.png"), arr)
                rows.append({"tile": name, "scene": scene, "row": r * TILE, "col": c * TILE,
                             "nodata_fraction": float(nodata.mean()), "cloud_fraction": "",
                             "has_truth": True})
    with (root / "index.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


@pytest.fixture
def tiles(tmp_path):
    root = tmp_path / "tiles"
    rows = make_tiles(root)
    return root, rows


# ---------------------------------------------------------------- split and shards (no TF)

def test_split_by_scene_is_reproducible_and_leak_free(tiles):
    _, rows = tiles
    a = split_tiles(rows, seed=3, test_fraction=0.34)
    assert a == split_tiles(rows, seed=3, test_fraction=0.34)
    assert len(a["test_scenes"]) == 1
    assert set(a["train"]).isdisjoint(a["test"])
    assert sorted(a["train"] + a["test"]) == sorted(r["tile"] for r in rows)
    train_scenes = {t.rsplit("_", 2)[0] for t in a["train"]}
    assert train_scenes.isdisjoint(a["test_scenes"])
    seeds = {tuple(split_tiles(rows, seed=s, test_fraction=0.34)["test_scenes"]) for s in range(10)}
    assert len(seeds) > 1  # the seed matters


def test_split_by_tile_is_80_20(tiles):
    _, rows = tiles
    sp = split_tiles(rows, seed=0, by="tile")
    assert (len(sp["train"]), len(sp["test"])) == (10, 2)   # round(0.2 * 12)
    assert len({t.rsplit("_", 2)[0] for t in sp["test"]}) >= 1


def test_split_errors(tiles):
    _, rows = tiles
    with pytest.raises(InputError, match="'scene' or 'tile'"):
        split_tiles(rows, by="pixel")
    with pytest.raises(InputError, match="twice"):
        split_tiles(rows + rows[:1])


def test_shards_are_disjoint_equal_and_cover_the_set():
    names = [f"t{i:02d}" for i in range(11)]
    shards = [shard_names(names, num_shards=3, index=i, seed=5) for i in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert len(set().union(*map(set, shards))) == 9
    assert shard_names(names, num_shards=3, index=1, seed=5) == shards[1]
    assert shard_names(names, num_shards=3, index=1, seed=6) != shards[1]
    with pytest.raises(InputError, match="cannot feed 12 workers"):
        shard_names(names, num_shards=12, index=0)
    with pytest.raises(InputError, match="shard index"):
        shard_names(names, num_shards=2, index=2)


def test_convert_manual_palette_labels(tmp_path):
    pal = np.zeros((8, 8, 3), np.uint8)
    pal[:4] = (255, 0, 0)      # red thick
    pal[4:, :4] = (0, 0, 255)  # blue thin
    pal[4:, 4:] = (0, 255, 0)  # green water
    src = tmp_path / "manual"
    src.mkdir()
    cv2.imwrite(str(src / "s2_seg_sc0_0000_0000.png"), pal[..., ::-1])
    out = convert_manual_labels(src, tmp_path / "classes")
    cls = cv2.imread(str(out / "sc0_0000_0000.png"), cv2.IMREAD_UNCHANGED)
    assert cls[0, 0] == 2 and cls[7, 0] == 1 and cls[7, 7] == 0


# ---------------------------------------------------------------- params and settings

def test_training_params_section_validates():
    p = load_params_dict({"training": {"depth": 4, "base_filters": 8, "workers": [1, 2, 4]}})
    assert p["training"]["batch_size"] == 32 and p["training"]["epochs"] == 50
    for bad, msg in [({"workers": [0]}, "training.workers"), ({"input": "nir"}, "training.input"),
                     ({"encoder_dropouts": [0.1, 1.5]}, "training.encoder_dropouts"),
                     ({"models": ["unet"]}, "training.models"), ({"batch": 3}, "unknown key")]:
        with pytest.raises(ParamsError, match=msg):
            load_params_dict({"training": bad})


def _data(root, rows, man="truth"):
    return {"tiles_root": str(root), "split": split_tiles(rows, seed=0, test_fraction=0.34),
            "man_labels": man}


def _tiny_params(**training):
    t = dict(depth=2, base_filters=4, batch_size=2, epochs=2, learning_rate=0.01,
             threads_per_worker=1, inter_op_threads=1)
    t.update(training)
    return load_params_dict({"global": {"tile_size": TILE, "progress": False},
                             "training": t})


def test_settings_and_fingerprint(tiles, tmp_path):
    root, rows = tiles
    p = _tiny_params()
    s = training_settings(p, _data(root, rows), labels="man", run_dir=tmp_path / "run")
    assert s["label_source"] == "truth" and s["model"]["depth"] == 2
    assert training_settings(p, _data(root, rows), labels="auto",
                             run_dir=tmp_path / "run")["label_source"] == "auto_filtered"
    fp = fingerprint(s)
    assert fingerprint({**s, "epochs": 9, "verbose": True, "model_path": "x"}) == fp
    # paths count relative to the run folder: moving the whole outputs folder keeps the
    # fingerprint, the run folder alone (its tiles elsewhere now) does not
    moved = str(tmp_path / "moved")
    assert fingerprint({**s, "run_dir": moved + "/run", "tiles_root": moved + "/tiles"}) == fp
    assert fingerprint({**s, "run_dir": moved + "/run"}) != fp
    assert fingerprint({**s, "learning_rate": 0.1}) != fp
    assert fingerprint({**s, "workers": 2}) != fp
    assert process_settings(p) == {k: s[k] for k in ("threads_per_worker", "inter_op_threads",
                                                     "mixed_precision", "xla")}
    assert process_settings(p, xla=True, epochs=9)["xla"] is True
    # pinning ranks to cores is the profile's training.pin_cores, nothing else
    assert s["pin_cores"] is True
    assert training_settings(_tiny_params(pin_cores=False), _data(root, rows),
                             run_dir=tmp_path / "run")["pin_cores"] is False
    assert run_dir_of(tmp_path, "man", 2) == tmp_path / "training" / "man_w2"
    with pytest.raises(InputError, match="unknown training setting"):
        training_settings(p, _data(root, rows), run_dir=tmp_path, batchsize=3)
    with pytest.raises(InputError, match="U-Net-Man needs reference labels"):
        training_settings(p, _data(root, rows, man=None), labels="man", run_dir=tmp_path)
    with pytest.raises(InputError, match="divisible by 2\\*\\*depth"):
        training_settings(_tiny_params(depth=7), _data(root, rows), run_dir=tmp_path)


def test_scaling_table_arithmetic():
    def res(n, secs):
        return {"workers": n, "epochs": 3, "global_batch": 8 * n, "wall_seconds": 1.0,
                "summary": {"total_s": sum(secs), "s_per_epoch": sum(secs) / 3,
                            "images_per_s": 3 * 64 / sum(secs), "steady_s_per_epoch": secs[-1],
                            "steady_images_per_s": 64 / secs[-1]}}
    rows = scaling_table([res(2, [6.0, 5.0, 5.0]), res(1, [12.0, 10.0, 10.0])])
    assert [r["workers"] for r in rows] == [1, 2]
    assert rows[1]["speedup"] == pytest.approx(2.0)
    assert rows[1]["efficiency"] == pytest.approx(1.0)
    assert rows[1]["steady_speedup"] == pytest.approx(2.0)
    rows = scaling_table([res(1, [12.0, 10.0, 10.0]), res(2, [8.0, 8.0, 8.0])])
    assert rows[1]["efficiency"] == pytest.approx(32 / 24 / 2)


def test_scaling_benchmark_repeats_alternate_and_report_the_median(monkeypatch, tmp_path):
    """bench_scaling --repeats: worker counts run in turn (1, 2, 1, 2, ...), each round in its own
    run folder (nothing skipped as done), summary = median/min/max of the rounds' steady speedups.
    The launcher is replaced by one that returns the epoch times of a scripted machine."""
    import seaice_utils.training.launch as launching
    import seaice_utils.training.settings as settings
    from benchmarks.bench_train import bench_scaling

    two_worker_epoch = iter([5.0, 8.0, 4.0])     # speedups 2.0, 1.25, 2.5 against 10 s
    calls = []

    def fake_launch(settings, hosts=None, echo=False):
        n, run_dir = settings["workers"], settings["run_dir"]
        calls.append((n, Path(run_dir).name, settings["batch_size"]))
        t = 10.0 if n == 1 else next(two_worker_epoch)
        return {"workers": n, "epochs": 2, "global_batch": 16, "model": {},
                "summary": {"total_s": 2 * t, "s_per_epoch": t, "images_per_s": 16 / t,
                            "steady_s_per_epoch": t, "steady_images_per_s": 16 / t}}

    monkeypatch.setattr(settings, "prepare_training_data", lambda *a, **k: {})
    monkeypatch.setattr(settings, "training_settings",
                        lambda params, data, **kw: dict(kw))
    monkeypatch.setattr(launching, "launch", fake_launch)
    params = {"global": {"profile": "t"}, "training": {"hosts": None, "threads_per_worker": 1}}
    out = bench_scaling(params, tmp_path, workers=(1, 2), global_batch=16, epochs=2, repeats=3)
    assert [c[0] for c in calls] == [1, 2, 1, 2, 1, 2]
    assert len({c[1] for c in calls}) == 6
    assert [c[2] for c in calls] == [16, 8] * 3
    s = out["summary"]["2"]
    assert s["steady_speedups"] == pytest.approx([2.0, 1.25, 2.5])
    assert (s["median"], s["min"], s["max"]) == pytest.approx((2.0, 1.25, 2.5))
    assert s["median_efficiency"] == pytest.approx(1.0)
    assert out["summary"]["1"]["median"] == pytest.approx(1.0)
    assert len(out["rounds"]) == 3 and out["table"][1]["steady_speedup"] == pytest.approx(2.5)
    with pytest.raises(SystemExit, match="repeats"):
        bench_scaling(params, tmp_path, repeats=0)


def test_failure_message_names_the_rank_that_failed_first():
    log = ("[0]<stderr>:seaice-train-failure rank=0 size=2: UnknownError: peer gone\n"
           "[1]<stderr>:seaice-train-failure rank=1 size=2: RuntimeError: boom\n"
           "RuntimeError: Horovod detected ... The first process to do so was:\n"
           "Process name: 1\nExit code: 1\n")
    msg = _failure_message(log, 1)
    assert msg.startswith("rank 1 failed first; rank=1 size=2: RuntimeError: boom")
    assert "rank=0" in msg
    assert "rank=3: exited with status -9" in _failure_message(
        "Process 3 exit with status code -9.\n", 1)


# ---------------------------------------------------------------- tf.data pipeline

tf = pytest.importorskip("tensorflow")
from seaice_utils.training.data import make_dataset, pipeline_throughput  # noqa: E402


def test_pipeline_shapes_weights_and_scaling(tiles):
    root, rows = tiles
    names = sorted(r["tile"] for r in rows)
    ds = make_dataset(root, names, batch_size=5, labels="auto", shuffle=False, with_names=True)
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [5, 5, 2]
    x, y, w, n = batches[0]
    assert x.shape == (5, TILE, TILE, 1) and x.dtype == tf.float32
    assert y.dtype == tf.int32 and w.dtype == tf.float32
    assert set(np.unique(np.round(x.numpy() * 255)).astype(int)) <= {0, 155, 255}
    first = n.numpy()[0].decode()
    assert first == rows[0]["tile"]  # the tile with the no-data corner
    assert (w.numpy()[0, :16, :16] == 0).all() and (y.numpy()[0, :16, :16] == 0).all()
    assert (w.numpy()[0, 16:, 16:] == 1).all()
    # labels follow the input levels (auto-labels of the filtered image)
    xv, yv, wv = x.numpy()[..., 0], y.numpy(), w.numpy()
    assert (np.round(xv[wv > 0] * 255).astype(int) == LEVELS[yv[wv > 0]]).all()
    rgb = next(iter(make_dataset(root, names, batch_size=2, input_layer="rgb", shuffle=False)))
    assert rgb[0].shape == (2, TILE, TILE, 3)
    # no tf.data autotuning model: its thread made every new epoch's iterator wait seconds
    assert ds.options().autotune.enabled is False


def test_pipeline_shards_are_distinct_and_shuffles_are_seeded(tiles):
    root, rows = tiles
    names = sorted(r["tile"] for r in rows)

    def seen(**kw):
        ds = make_dataset(root, names, batch_size=4, with_names=True, seed=1, **kw)
        return [[s.decode() for b in ds for s in b[3].numpy()] for _ in range(2)]

    r0 = seen(num_shards=2, shard_index=0)
    r1 = seen(num_shards=2, shard_index=1)
    assert len(r0[0]) == len(r1[0]) == 6
    assert set(r0[0]).isdisjoint(r1[0]) and len(set(r0[0]) | set(r1[0])) == 12
    assert set(r0[0]) == set(r0[1]) and r0[0] != r0[1]   # same shard, reshuffled each epoch
    assert r0 == seen(num_shards=2, shard_index=0)         # reproducible
    assert sorted(r0[0]) == sorted(shard_names(names, num_shards=2, index=0, seed=1))


def test_pipeline_missing_files_and_bad_labels(tiles, tmp_path):
    root, rows = tiles
    names = [r["tile"] for r in rows]
    with pytest.raises(InputError, match="missing"):
        make_dataset(root, names + ["sc9_0000_0000"], batch_size=2)
    with pytest.raises(InputError, match="neither"):
        make_dataset(root, names, batch_size=2, labels=str(tmp_path / "nope"))


def test_pipeline_throughput_reports_passes(tiles):
    root, rows = tiles
    ds = make_dataset(root, [r["tile"] for r in rows], batch_size=4)
    t = pipeline_throughput(ds, epochs=3)
    assert t["images"] == 12 and len(t["seconds"]) == 3
    assert t["warm_images_per_s"] > 0


# ---------------------------------------------------------------- training in this process

@pytest.mark.slow
def test_single_process_training_learns_and_resumes(tiles, tmp_path):
    from seaice_utils.training.launch import launch
    from seaice_utils.training.runs import evaluate_model
    from seaice_utils.training.worker import run_worker
    from seaice_utils.training.unet import count_unet_params, load_unet

    root, rows = tiles
    p = _tiny_params(epochs=3, learning_rate=0.02)
    data = _data(root, rows)
    s = training_settings(p, data, labels="auto", run_dir=tmp_path / "run")
    s_short = {**s, "epochs": 2}
    (tmp_path / "run").mkdir()
    res = run_worker(s_short)
    assert res["resumed_at"] == 0 and len(res["history"]) == 2
    assert res["ranks"][0]["images_seen"] == 2 * len(data["split"]["train"])
    assert read_history(tmp_path / "run")[-1]["epoch"] == 2
    assert (tmp_path / "run" / "checkpoints" / "checkpoint").is_file()
    # asking for one more epoch continues from the checkpoint of epoch 2
    res = run_worker(s)
    assert res["resumed_at"] == 2 and [h["epoch"] for h in res["history"]] == [1, 2, 3]
    losses = [h["loss"] for h in res["history"]]
    assert losses[-1] < losses[0], losses
    for h in res["history"]:
        assert h["images"] == len(data["split"]["train"]) and h["images_per_s"] > 0
    model = load_unet(res["model_path"])
    assert model.count_params() == count_unet_params(depth=2, base_filters=4)
    ev = evaluate_model(res["model_path"], root, data["split"]["test"])
    assert set(ev) == {"truth", "auto_filtered"}
    assert 0.0 <= ev["auto_filtered"]["accuracy"] <= 1.0
    # result.json holds the model's path relative to the run folder, the caller an absolute one
    assert json.loads((tmp_path / "run" / "result.json").read_text())["model_path"] == \
        "model.keras"
    # launch() finds the finished run (same settings) and does not train again
    again = launch(s)
    assert again["skipped"] is True and again["history"] == res["history"]
    assert again["model_path"] == res["model_path"] == str(tmp_path / "run" / "model.keras")


def test_launch_env_sets_threads_and_horovod_cycle(monkeypatch):
    from seaice_utils.training.launch import launch_env

    monkeypatch.delenv("HOROVOD_CYCLE_TIME", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    e = launch_env({"threads_per_worker": 1, "cycle_time_ms": 10})
    assert e["OMP_NUM_THREADS"] == "1" and e["HOROVOD_CYCLE_TIME"] == "10"
    assert "HOROVOD_CYCLE_TIME" not in launch_env({"threads_per_worker": 0, "cycle_time_ms": 0})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in launch_env({"threads_per_worker": 0})
    monkeypatch.setenv("HOROVOD_CYCLE_TIME", "2.5")       # the user's setting wins
    assert launch_env({"cycle_time_ms": 10})["HOROVOD_CYCLE_TIME"] == "2.5"
    forced = launch_env({"cycle_time_ms": 10}, {"HOROVOD_CYCLE_TIME": "1"})
    assert forced["HOROVOD_CYCLE_TIME"] == "1"


# pins with a second thread alive (started before pinning), then reports every thread's mask
_PIN = """
import json, os, threading
from seaice_utils.training.worker import pin_cores
stop = threading.Event()
th = threading.Thread(target=stop.wait)
th.start()
r = pin_cores({rank}, {threads})
tids = os.listdir("/proc/self/task")
masks = sorted({{tuple(sorted(os.sched_getaffinity(int(t)))) for t in tids}})
stop.set()
th.join()
print(json.dumps([r, sorted(os.sched_getaffinity(0)), [list(m) for m in masks]]))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
@pytest.mark.parametrize("rank", [0, 1])
def test_pin_cores_gives_each_local_rank_its_own_cores(rank):
    import subprocess
    import sys

    avail = sorted(os.sched_getaffinity(0))
    if len(avail) < 2:
        pytest.skip("needs 2 cores")
    out = subprocess.run([sys.executable, "-c", _PIN.format(rank=rank, threads=1)],
                         capture_output=True, text=True, check=True).stdout
    got, mask, thread_masks = json.loads(out.strip().splitlines()[-1])
    assert got == [avail[rank]] and mask == [avail[rank]]
    assert thread_masks == [[avail[rank]]]              # every thread of the process


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_pin_cores_leaves_the_process_alone_when_cores_do_not_suffice():
    import subprocess
    import sys

    avail = sorted(os.sched_getaffinity(0))
    for rank, threads in ((len(avail), 1), (0, 0), (0, len(avail) + 1)):
        out = subprocess.run([sys.executable, "-c", _PIN.format(rank=rank, threads=threads)],
                             capture_output=True, text=True, check=True).stdout
        got, mask, _ = json.loads(out.strip().splitlines()[-1])
        assert got is None and mask == avail
