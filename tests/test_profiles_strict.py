"""Profiles are read strictly and errors are one line: a key written twice (at any depth) is
refused with its line, a YAML syntax error names the file, line and column; ``--set`` takes YAML
values, lists and mappings included, and key paths into a mapping key. The command line: -q/-v
before the command, -q silencing the libraries' start-up chatter, a full disk and Ctrl-C as one
line. One walk up to the project folder."""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seaice_utils import params as params_module
from seaice_utils import report
from seaice_utils.cli import commands, main
from seaice_utils.errors import ParamsError
from seaice_utils.params import load_params, parse_set, read_yaml

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cli(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    got = capsys.readouterr()
    return rc, got.out, got.err


# -- keys written twice --------------------------------------------------------------------------

def test_a_top_level_key_written_twice_names_the_key_the_file_and_the_line(tmp_path, capsys):
    path = write(tmp_path, "twice.yml", "filter:\n  median_kernel: 31\nglobal:\n  seed: 1\n"
                                        "filter:\n  dilation: 3\n")
    with pytest.raises(ParamsError) as e:
        load_params(path)
    msg = str(e.value)
    assert msg.startswith("filter: key written twice in ")
    assert str(path) in msg and "line 5 (first on line 1)" in msg
    rc, out, err = cli(capsys, "params", path)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("seaice params: error: filter: key written twice")


def test_a_nested_key_written_twice_is_refused_with_its_path_and_line(tmp_path):
    path = write(tmp_path, "nested.yml", "autolabel:\n  thin:\n    lower: [0, 0, 31]\n"
                                         "    upper: [185, 255, 204]\n    lower: [0, 0, 30]\n")
    with pytest.raises(ParamsError, match=r"^autolabel\.thin\.lower: key written twice in .*"
                                          r"nested\.yml, line 5 \(first on line 3\)"):
        load_params(path)
    # keys that are equal once read (1 and 01) are one key written twice, as PyYAML would merge
    with pytest.raises(ParamsError, match=r"^a\.01: key written twice .* line 3 \(first on line 2\)"):
        read_yaml("a:\n  1: x\n  01: y\n", "k.yml")
    with pytest.raises(ParamsError, match=r"^a\[0\]\.b: key written twice"):
        read_yaml("a:\n  - {b: 1, b: 2}\n", "k.yml")


def test_a_merged_key_written_out_again_is_an_override_not_a_duplicate(tmp_path):
    path = write(tmp_path, "merge.yml", "filter:\n  <<: {median_kernel: 31, dilation: 3}\n"
                                        "  median_kernel: 33\n")
    p = load_params(path)
    assert p["filter"]["median_kernel"] == 33 and p["filter"]["dilation"] == 3
    assert read_yaml("a: &x [1]\nb: *x\n") == {"a": [1], "b": [1]}     # aliases still load


def test_the_shipped_profiles_have_no_key_written_twice():
    for path in sorted((ROOT / "params").glob("*.yml")):
        assert isinstance(read_yaml(path.read_text(), str(path)), dict), path


# -- YAML errors: one line -----------------------------------------------------------------------

@pytest.mark.parametrize("text, where", [
    ("filter: [1, 2\n", "line 2, column 1"),
    ("filter:\n  median_kernel: 31\n dilation: 3\n", "line 3, column 2"),
    ("filter:\n\tmedian_kernel: 31\n", "line 2, column 1"),
    ("filter:\n  median_kernel: 3\x001\n", "line 2"),
])
def test_a_yaml_error_is_one_line_with_file_line_and_problem(tmp_path, capsys, text, where):
    path = write(tmp_path, "bad.yml", text)
    with pytest.raises(ParamsError) as e:
        load_params(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}, {where}") and "not valid YAML: " in msg
    rc, out, err = cli(capsys, "params", path)
    assert rc == 2 and err.count("\n") == 1 and str(path) in err and where in err


def test_a_profile_that_is_not_text_is_one_line(tmp_path, capsys):
    path = tmp_path / "binary.yml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    rc, _, err = cli(capsys, "params", path)
    assert rc == 2 and err.count("\n") == 1 and "byte 0x89 at offset 0 is not UTF-8" in err


# -- --set: YAML values, lists, mappings, key paths ----------------------------------------------

def test_set_takes_lists_and_nested_key_paths(capsys):
    p = load_params("quick", ["autolabel.water.upper=[185,255,40]", "autolabel.thin.lower=[0,0,41]"])
    assert p["autolabel"]["water"] == {"lower": [0, 0, 0], "upper": [185, 255, 40]}
    assert p["autolabel"]["thin"] == {"lower": [0, 0, 41], "upper": [185, 255, 204]}
    assert parse_set(["autolabel.thin.upper=[185,255,204]"]) == \
        {"autolabel": {"thin": {"upper": [185, 255, 204]}}}
    rc, out, err = cli(capsys, "params", "quick", "--set", "autolabel.thin.upper=[185,255,204]",
                       "--set", "filter.median_kernel=31")
    assert rc == 0, err
    printed = yaml.safe_load(out)
    assert printed["autolabel"]["thin"]["upper"] == [185, 255, 204]
    assert printed["filter"]["median_kernel"] == 31


def test_set_takes_a_mapping_and_applies_items_in_order():
    p = load_params("quick", ["autolabel.water.upper=[185,255,40]",
                              "autolabel.thin={lower: [0, 0, 41], upper: [185, 255, 204]}"])
    assert p["autolabel"]["thin"] == {"lower": [0, 0, 41], "upper": [185, 255, 204]}
    p = load_params(None, ["autolabel.thin={lower: [0, 0, 41], upper: [185, 255, 204]}",
                           "autolabel.thin.lower=[0,0,31]"])             # the later item wins
    assert p["autolabel"]["thin"]["lower"] == [0, 0, 31]


def test_set_values_are_validated_like_the_file(capsys):
    with pytest.raises(ParamsError, match=r"^autolabel\.thin: must be"):
        load_params("quick", ["autolabel.thin.upper=[185,255,999]"])
    with pytest.raises(ParamsError, match=r"^filter\.median_kernel: not a mapping"):
        load_params("quick", ["filter.median_kernel.x=1"])
    with pytest.raises(ParamsError, match=r"^autolabel\.thim: unknown key"):
        load_params("quick", ["autolabel.thim.upper=[1,2,3]"])
    with pytest.raises(ParamsError, match=r"^autolabel\.thin\.lower: key written twice in --set"):
        load_params("quick", ["autolabel.thin={lower: [0,0,31], lower: [0,0,31]}"])
    with pytest.raises(ParamsError, match="--set takes section.key=value"):
        parse_set(["autolabel..upper=[1,2,3]"])
    rc, _, err = cli(capsys, "params", "quick", "--set", "autolabel.thin.upper=[185,255,999]")
    assert rc == 2 and err.count("\n") == 1 and "autolabel.thin: must be" in err


# -- -q and -v before the command ----------------------------------------------------------------

def test_quiet_and_verbose_go_before_the_command(capsys, monkeypatch):
    rc, out, err = cli(capsys, "-q", "params", "quick")
    assert rc == 0, err
    assert yaml.safe_load(out)["global"]["profile"] == "quick"
    seen = []
    monkeypatch.setitem(commands.COMMANDS, "params",
                        lambda a: seen.append((a.quiet, a.verbose, a.file)) or 0)
    assert main(["-q", "params", "quick"]) == 0
    assert main(["--verbose", "params", "x"]) == 0
    assert main(["-qv", "params", "y"]) == 0
    assert main(["params", "z"]) == 0
    assert seen == [(True, False, "quick"), (False, True, "x"), (True, True, "y"),
                    (False, False, "z")]


def test_quiet_silences_the_libraries_while_the_command_runs(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "INFO")
    seen = {}

    def command(a):
        seen.update(tf=os.environ.get("TF_CPP_MIN_LOG_LEVEL"), cv=os.environ.get("OPENCV_LOG_LEVEL"),
                    logger=logging.getLogger("tensorflow").level)
        return 0

    monkeypatch.setitem(commands.COMMANDS, "params", command)
    assert main(["-q", "params", "quick"]) == 0
    assert seen == {"tf": "3", "cv": "ERROR", "logger": logging.ERROR}
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ            # put back afterwards
    assert os.environ["OPENCV_LOG_LEVEL"] == "INFO"
    assert main(["params", "quick"]) == 0                       # without -q: left alone
    assert seen["tf"] is None and seen["cv"] == "INFO"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_quiet_predict_shows_no_tensorflow_banner(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "s.png"), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "m.keras").write_text("not a model")       # TensorFlow is imported to read it
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "OPENCV_LOG_LEVEL")}
    got = subprocess.run([sys.executable, "-m", "seaice_utils", "-q", "predict",
                          str(tmp_path / "m.keras"), str(tmp_path / "in"), str(tmp_path / "out"),
                          "--runtime", "tensorflow"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert got.returncode == 2, got.stderr
    assert "seaice predict: error: cannot load model" in got.stderr
    banner = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |oneDNN|cpu_feature_guard|"
                        r"rebuild TensorFlow|^WARNING:(tensorflow|absl)", re.M)
    assert not banner.search(got.stderr), got.stderr
    assert "Traceback" not in got.stderr


# -- a full disk, Ctrl-C ---------------------------------------------------------------------------

def test_a_full_disk_is_one_line_naming_the_file(capsys, monkeypatch):
    def full(a):
        raise OSError(errno.ENOSPC, "No space left on device", "/x/out/a.png")

    monkeypatch.setitem(commands.COMMANDS, "label", full)
    for args in (["label", "a", "b"], ["-q", "label", "a", "b"]):
        rc, out, err = cli(capsys, *args)
        assert rc == 1
        assert err == ("seaice label: error: no space left on /x/out/a.png: No space left on "
                       "device; free some space and run again\n")
    def full_somewhere(a):
        raise OSError(errno.ENOSPC, "No space left")

    monkeypatch.setitem(commands.COMMANDS, "label", full_somewhere)
    rc, _, err = cli(capsys, "label", "a", "b")
    assert rc == 1 and err.count("\n") == 1 and "no space left on device" in err


def test_other_os_errors_are_not_taken_for_a_full_disk(capsys, monkeypatch):
    def denied(a):
        raise PermissionError(errno.EACCES, "Permission denied", "/x/out")

    monkeypatch.setitem(commands.COMMANDS, "label", denied)
    rc, _, err = cli(capsys, "label", "a", "b")
    assert rc == 1 and "PermissionError" in err and "no space" not in err   # one line, named
    assert len(err.strip().splitlines()) == 1


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setitem(commands.COMMANDS, "verify", interrupted)
    rc, _, err = cli(capsys, "verify", "a", "b")
    assert rc == 130 and err == "seaice verify: interrupted\n"


# -- one walk up to the project folder -----------------------------------------------------------

def test_one_project_folder_lookup(tmp_path, monkeypatch):
    assert params_module.project_folder is report.project_folder
    assert not hasattr(report, "_project")
    (tmp_path / "proj" / "params").mkdir(parents=True)
    (tmp_path / "proj" / "notebooks").mkdir()
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    (tmp_path / "proj" / "a" / "notebooks").mkdir()
    assert report.project_folder("params", deep) == tmp_path / "proj" / "params"
    assert report.project_folder("notebooks", deep) == tmp_path / "proj" / "a" / "notebooks"
    assert report.project_root(deep) == tmp_path / "proj" / "a"
    assert report.project_folder("nothing-like-this", deep) is None
    monkeypatch.chdir(deep)
    assert report.shown_path(str(tmp_path / "proj" / "a" / "x.csv")) == "x.csv"
    (tmp_path / "proj" / "params" / "p.yml").write_text("global:\n  seed: 3\n")
    assert params_module.params_path("p") == tmp_path / "proj" / "params" / "p.yml"
