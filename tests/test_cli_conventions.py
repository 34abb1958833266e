"""The command line's conventions: --version, -v/-q on every command, --set on every command
that reads a profile (validated like the profile)."""

from __future__ import annotations

import json

import cv2
import pytest
import yaml

from seaice_utils import __version__
from seaice_utils.cli import SET_COMMANDS, build_parser, main
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.errors import ParamsError
from seaice_utils.params import load_params, parse_set


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"seaice {__version__}"


def test_every_command_takes_verbose_and_quiet():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        opts = {o for a in parser._actions for o in a.option_strings}
        assert {"-v", "--verbose", "-q", "--quiet"} <= opts, name
        assert ("--set" in opts) == (name in SET_COMMANDS), name


def test_set_overrides_are_validated_like_the_profile(capsys):
    p = load_params("quick", ["filter.median_kernel=31", "autolabel.allow_gaps=true"])
    assert p["filter"]["median_kernel"] == 31 and p["autolabel"]["allow_gaps"] is True
    assert load_params(None, ["global.seed=7"])["global"]["seed"] == 7
    with pytest.raises(ParamsError, match=r"filter.median_kernl: unknown key"):
        load_params("quick", ["filter.median_kernl=31"])
    with pytest.raises(ParamsError, match=r"filter.median_kernel: must be an integer in 3..255"):
        load_params("quick", ["filter.median_kernel=100001"])
    with pytest.raises(ParamsError, match="--set takes section.key=value"):
        parse_set(["median_kernel=31"])
    assert main(["params", "quick", "--set", "filter.median_kernel=31"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["filter"]["median_kernel"] == 31
    assert main(["params", "quick", "--set", "filter.nope=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "filter.nope: unknown key" in err


def test_set_reaches_the_labels_and_quiet_keeps_stdout_clean(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "s.png"), synthesize_scene(2, size=64).image[..., ::-1])
    assert main(["label", str(src), str(tmp_path / "o"), "-q",
                 "--set", "filter.median_kernel=31"]) == 0
    meta = json.loads((tmp_path / "o" / "s.json").read_text())
    assert meta["filter"]["median_kernel"] == 31
    err = capsys.readouterr().err
    assert "auto-labelling" not in err                # no progress bar with -q


@pytest.mark.slow
def test_reproduce_takes_set_and_records_the_profile_it_ran(tmp_path):
    from test_verify import tiny_profile

    profile = tiny_profile(tmp_path / "profiles")
    out = tmp_path / "out"
    assert main(["reproduce", "--params", str(profile), "--outputs", str(out), "--only", "02",
                 "--set", "filter.thick_threshold=200", "-q"]) == 0
    written = load_params(out / "profiles" / "tiny.yml")
    assert written["filter"]["thick_threshold"] == 200
    assert load_params(profile)["filter"]["thick_threshold"] == 205     # the user's file as it was
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["filter"]["thick_threshold"] == 200
    assert main(["reproduce", "--params", str(profile), "--outputs", str(out), "--only", "02",
                 "--set", "filter.thick_threshol=200"]) == 2
