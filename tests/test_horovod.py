"""horovodrun -np 2 (Gloo) on a tiny tile set: identical weights on both ranks, distinct shards,
a crashing rank fails the whole run naming it, the last checkpoint stays valid and a rerun
resumes from it. The crash is injected into the rank by the test (horovod_failure.py)."""

import json
import os
import sys

import pytest

from seaice_utils.training.launch import horovodrun_path, launch
from seaice_utils.training.settings import TrainingFailed, training_settings

from horovod_failure import failing_env
from test_train import _data, _tiny_params, make_tiles

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(horovodrun_path() is None, reason="horovodrun not installed")]


def test_horovodrun_two_ranks(tmp_path):
    tf = pytest.importorskip("tensorflow")
    root = tmp_path / "tiles"
    rows = make_tiles(root, n_scenes=3, per_side=2)          # 12 tiles of 64 px
    data = _data(root, rows)
    n_train = len(data["split"]["train"])
    params = _tiny_params(epochs=1, batch_size=2)
    run = tmp_path / "run"
    s = training_settings(params, data, labels="auto", workers=2, run_dir=run)

    # one epoch, two ranks
    res = launch(s, timeout=240)
    assert res["workers"] == 2 and res["global_batch"] == 4
    assert res["learning_rate"] == pytest.approx(2 * 0.01)          # scaled by the workers
    ranks = sorted(res["ranks"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]  # in sync after training
    a, b = set(ranks[0]["shard"]), set(ranks[1]["shard"])
    assert a and b and a.isdisjoint(b)                               # distinct shards ...
    assert a | b <= set(data["split"]["train"]) and len(a | b) == n_train - n_train % 2
    assert ranks[0]["images_seen"] == ranks[1]["images_seen"] == len(a)
    t = s["threads_per_worker"]
    if t and hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2 * t:
        assert ranks[0]["cores"] and ranks[1]["cores"]                # pinned, and apart
        assert set(ranks[0]["cores"].split(",")).isdisjoint(ranks[1]["cores"].split(","))
    assert res["history"][0]["images"] == len(a | b)                 # ... together one epoch
    assert not (run / "ranks").exists()
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["settings.json", "checkpoints", "history.csv", "launch.log", "model.keras",
         "result.json"])
    again = launch(s, timeout=240)                                   # finished: not rerun
    assert again["skipped"] is True and again["ranks"] == res["ranks"]
    # what the run folder holds names no path of this machine (the command as `horovodrun ...
    # python ...`, paths relative to the run folder); the caller gets the model's absolute path
    assert res["model_path"] == again["model_path"] == str(run / "model.keras")
    for name in ("settings.json", "result.json", "launch.log"):
        text = (run / name).read_text()
        assert str(tmp_path) not in text and sys.executable not in text, name
    assert json.loads((run / "result.json").read_text())["model_path"] == "model.keras"
    assert json.loads((run / "settings.json").read_text())["tiles_root"] == "../tiles"
    assert ("$ horovodrun --gloo -np 2 -H localhost:2 python -m seaice_utils.training.worker "
            "--settings settings.json\n") in (run / "launch.log").read_text()

    # a second epoch during which rank 1 dies: the run fails naming rank 1
    s2 = {**s, "epochs": 2}
    with pytest.raises(TrainingFailed, match="rank 1 failed first") as err:
        launch(s2, timeout=240, env=failing_env(tmp_path / "inject", rank=1, epoch=1))
    assert "injected failure" in str(err.value) and "launch.log" in str(err.value)
    ckpt = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert ckpt and tf.train.load_variable(ckpt, "epoch/.ATTRIBUTES/VARIABLE_VALUE") == 1
    assert not (run / "result.json").exists()

    # rerun: resumes after epoch 1 from rank 0's checkpoint, ranks end identical again
    res2 = launch(s2, timeout=240)
    assert res2["resumed_at"] == 1 and [h["epoch"] for h in res2["history"]] == [1, 2]
    assert res2["history"][0] == res["history"][0]
    d = {r["rank"]: r["weights_digest"] for r in res2["ranks"]}
    assert d[0] == d[1] != ranks[0]["weights_digest"]
    assert json.loads((run / "result.json").read_text())["epochs"] == 2
