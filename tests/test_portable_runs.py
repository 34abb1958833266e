"""A training run folder names no path of this machine and survives a move of the outputs folder.

``settings.json``, ``result.json`` and ``launch.log`` of a run are shared with the outputs: their
paths are relative to the run folder, the worker takes them from the folder of the settings file
it is given, and a finished run is still recognised as done after the whole outputs folder was
renamed. One tiny single-process run (one epoch of a depth-2 U-Net on 12 tiles of 64 px).
"""

import json
import os
import sys
from pathlib import Path

import pytest

from seaice_utils.training.settings import fingerprint, run_dir_of, training_settings

from test_train import _data, _tiny_params, make_tiles

RUN_FILES = ("settings.json", "result.json", "launch.log")
ROOT = Path(__file__).resolve().parent.parent


def _settings(out: Path, rows, params) -> dict:
    """U-Net-Man of ``out`` trained on a label folder given by its absolute path."""
    data = _data(out / "tiles", rows, man=str(out / "tiles" / "truth"))
    return training_settings(params, data, labels="man", workers=1,
                             run_dir=run_dir_of(out, "man", 1))


def _private(text: str, *folders: Path) -> list[str]:
    forms = {str(f) for f in folders} | {str(f.resolve()) for f in folders}
    forms |= {str(Path.home()), sys.executable, os.path.dirname(sys.executable)}
    return sorted(f for f in forms if len(f) > 1 and f in text)


def test_portable_and_absolute_paths_are_inverse(tmp_path):
    from seaice_utils.training.settings import (absolute_paths, portable_paths,
                                                portable_settings, read_settings)

    run = tmp_path / "outputs" / "training" / "auto_w1"
    s = {"run_dir": str(run), "tiles_root": str(tmp_path / "outputs" / "tiles"),
         "model_path": str(run / "model.keras"), "label_source": "auto_filtered",
         "cache": True, "train": ["a", "b"], "epochs": 2}
    p = portable_settings(s)
    assert p == {**s, "run_dir": ".", "tiles_root": "../../tiles", "model_path": "model.keras"}
    assert absolute_paths(p, run) == s
    # a label folder is a path, a label-layer name is not; a cache prefix is a path
    q = portable_paths({"label_source": str(tmp_path / "outputs" / "tiles" / "manual"),
                        "cache": str(run / "cache")}, run)
    assert q == {"label_source": "../../tiles/manual", "cache": "cache"}
    assert portable_paths({"label_source": "truth"}, run) == {"label_source": "truth"}
    # what the worker reads: paths from the folder of the settings file, wherever it is now
    moved = tmp_path / "elsewhere" / "auto_w1"
    moved.mkdir(parents=True)
    (moved / "settings.json").write_text(json.dumps(p))
    got = read_settings(moved / "settings.json")
    assert got["run_dir"] == str(moved) and got["model_path"] == str(moved / "model.keras")
    assert got["tiles_root"] == str(tmp_path / "tiles")
    assert fingerprint(got) == fingerprint(s)


@pytest.mark.slow
def test_run_folder_is_portable_and_resumes_as_done_after_a_move(tmp_path):
    pytest.importorskip("tensorflow")
    from seaice_utils.training.launch import launch

    out = tmp_path / "outputs"
    rows = make_tiles(out / "tiles")
    params = _tiny_params(epochs=1)
    s = _settings(out, rows, params)
    run = Path(s["run_dir"])
    res = launch(s, launcher="python", timeout=300)
    assert res["skipped"] is False
    # the caller gets absolute paths ...
    assert res["model_path"] == str(run / "model.keras") and Path(res["model_path"]).is_file()
    assert res["label_source"] == str(out / "tiles" / "truth")
    # ... the run folder's files hold them relative to the run folder
    texts = {n: (run / n).read_text() for n in RUN_FILES}
    leaks = {n: _private(t, tmp_path, ROOT) for n, t in texts.items()}
    assert leaks == {n: [] for n in RUN_FILES}
    written = json.loads(texts["settings.json"])
    assert {k: written[k] for k in ("run_dir", "tiles_root", "model_path", "label_source")} == {
        "run_dir": ".", "tiles_root": "../../tiles", "model_path": "model.keras",
        "label_source": "../../tiles/truth"}
    result = json.loads(texts["result.json"])
    assert result["model_path"] == "model.keras"
    assert result["label_source"] == "../../tiles/truth"
    assert result["fingerprint"] == written["fingerprint"] == fingerprint(s)
    assert "$ python -m seaice_utils.training.worker --settings settings.json\n" in \
        texts["launch.log"]

    # the whole outputs folder moves (a colleague's copy, a renamed folder): still done
    moved = tmp_path / "shared copy"
    out.rename(moved)
    s2 = _settings(moved, rows, params)
    again = launch(s2, launcher="python", timeout=300)
    assert again["skipped"] is True and again["history"] == res["history"]
    assert again["model_path"] == str(moved / "training" / "man_w1" / "model.keras")
    assert again["label_source"] == str(moved / "tiles" / "truth")
