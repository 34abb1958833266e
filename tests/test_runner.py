"""Notebook runner and notebook conventions; a papermill smoke run of every notebook present."""

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from seaice_utils.errors import ParamsError
from seaice_utils.notebooks import check_notebook, strip_notebook
from seaice_utils.runner import NotebookFailed, notebooks, run_notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def make_nb(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('params_file: str = ""\noutputs_dir: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_follow_conventions(nb):
    assert check_notebook(nb) == []


def test_at_least_one_notebook_exists():
    assert NOTEBOOKS, "no numbered notebooks under notebooks/"


def test_check_catches_defs_outputs_and_derived_parameters(tmp_path):
    nb = tmp_path / "01_x.ipynb"
    make_nb(nb, "def helper():\n    return 1", "x = 1")
    raw = json.loads(nb.read_text())
    raw["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    raw["cells"][2]["execution_count"] = 3
    raw["cells"][0]["source"] = "params_file: str = ''\nn = len(params_file)"
    nb.write_text(json.dumps(raw))
    problems = "\n".join(check_notebook(nb))
    assert "defines 'helper'" in problems
    assert "outputs or an execution count" in problems
    assert "non-literal" in problems
    assert strip_notebook(nb) is True
    assert "outputs" not in "\n".join(check_notebook(nb))


def test_runner_runs_in_order_stops_at_first_failure_and_records_it(tmp_path):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    make_nb(nbdir / "01_ok.ipynb",
            "from pathlib import Path\nPath(outputs_dir, 'tables', 'one.csv').write_text('a\\n1\\n')")
    make_nb(nbdir / "02_fail.ipynb", "raise RuntimeError('boom in 02')")
    make_nb(nbdir / "03_never.ipynb",
            "from pathlib import Path\nPath(outputs_dir, 'tables', 'three.csv').write_text('x')")
    out = tmp_path / "out"
    with pytest.raises(NotebookFailed, match="02_fail.ipynb.*RuntimeError: boom in 02"):
        run_notebooks("quick", out, notebook_dir=nbdir, progress=False)
    assert (out / "tables" / "one.csv").is_file()
    assert not (out / "tables" / "three.csv").exists()
    m = json.loads((out / "manifest.json").read_text())
    assert [(n["notebook"], n["status"]) for n in m["notebooks"]] == [("01_ok.ipynb", "ok"),
                                                                      ("02_fail.ipynb", "failed")]
    assert m["params"]["global"]["profile"] == "quick"
    assert "numpy" in m["environment"]["packages"] and m["environment"]["cpu_count"] >= 1
    assert (out / "notebooks" / "02_fail.ipynb").is_file()


def test_runner_rejects_bad_params_before_starting(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("filter: {median_kernel: 2}\n")
    with pytest.raises(ParamsError, match="filter.median_kernel"):
        run_notebooks(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_only_selects_notebooks_and_rejects_unknown():
    if NOTEBOOKS:
        assert notebooks(only=[NOTEBOOKS[0].name[:2]]) == [NOTEBOOKS[0]]
    with pytest.raises(Exception, match="no notebook matches"):
        notebooks(only=["99"])


def smoke_profile(tmp_path: Path) -> Path:
    """The quick profile, scaled down further so every notebook runs in CI in a few minutes."""
    p = yaml.safe_load((ROOT / "params" / "quick.yml").read_text())
    p["global"]["profile"] = "smoke"
    p["global"]["progress"] = False
    p["data"].update(n_scenes=2, scene_size=512)
    for section, overrides in SMOKE_OVERRIDES.items():
        if section in p:
            p[section].update(overrides)
    path = tmp_path / "smoke.yml"
    path.write_text(yaml.safe_dump(p))
    return path


#: Per-notebook settings that make the smoke run small (sections appear as notebooks are added).
SMOKE_OVERRIDES: dict[str, dict] = {
    "tuning": {"scenes": 1, "preview_size": 256},
    "collect": {"max_scenes": 2},
    "engines": {"processes": [1, 2], "spark_grid": [[1, 1]], "kernel_tiles": 2,
                "kernel_repeats": 2},
    "training": {"depth": 2, "base_filters": 4, "epochs": 1, "workers": [1]},
    "evaluation": {"examples": 1, "max_scenes": 1},
    "season": {"n_dates": 12, "size": 128, "engine": "sequential", "workers": 1},
}


@pytest.mark.slow
def test_papermill_smoke_run_of_every_notebook(tmp_path):
    from test_privacy import find_private, private_patterns

    out = tmp_path / "outputs"
    m = run_notebooks(smoke_profile(tmp_path), out, progress=False)
    assert [n["notebook"] for n in m["notebooks"]] == [p.name for p in NOTEBOOKS]
    assert all(n["status"] == "ok" for n in m["notebooks"])
    assert list((out / "notebooks").glob("*.ipynb"))
    tables = list((out / "tables").glob("*.csv"))
    figures = list((out / "figures").glob("*.png"))
    assert tables and figures
    assert all(t.stat().st_size > 0 for t in tables)
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    # nothing private in what a run leaves to be shared: no absolute path of the outputs or the
    # project folder, no home folder, no hostname or address of this machine, no Spark chatter
    if any(p.name == "06_season.ipynb" for p in NOTEBOOKS):   # the season: one row per date and method
        import pandas as pd

        errors = pd.read_csv(out / "tables" / "06_season_errors.csv")
        methods = {"auto-labels", "auto-labels, no cloud mask"} | (
            {"U-Net-Auto"} if (out / "models" / "unet_auto.keras").is_file() else set())
        assert set(errors["method"]) == methods
        assert len(errors) == 12 * len(methods)
        assert (errors.groupby("method")["date"].nunique() == 12).all()
        assert not errors.duplicated(["date", "method"]).any()
        assert errors["quality"].isin(["ok", "cloudy", "low coverage"]).all()
        assert (errors["ice_km2"] > 0).all() and (errors["true_ice_km2"] > 0).all()
        for name in ("06_season_areas", "06_season_coverage", "06_season_maps"):
            assert (out / "figures" / f"{name}.png").is_file(), name
    leaks = find_private(out, private_patterns(out, ROOT))
    assert leaks == [], "\n".join(leaks)
    executed = "\n".join((out / "notebooks" / p.name).read_text() for p in NOTEBOOKS)
    for chatter in ("WARN Utils", "NativeCodeLoader", "log4j profile", "Setting default log level",
                    "incubator modules"):
        assert chatter not in executed, chatter


def test_runner_finds_the_notebooks_from_the_working_directory(tmp_path, monkeypatch):
    from seaice_utils.errors import SeaIceError
    from seaice_utils.runner import notebook_folder

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    make_nb(project / "notebooks" / "01_a.ipynb", "x = 1")
    (project / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(project / "sub" / "deeper")
    assert notebook_folder() == (project / "notebooks").resolve()
    assert [p.name for p in notebooks()] == ["01_a.ipynb"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SeaIceError, match="no notebooks/ folder"):
        notebooks()


def test_bare_profile_names_resolve_from_the_working_directory(tmp_path, monkeypatch):
    from seaice_utils.params import params_path

    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mine.yml").write_text("global: {seed: 3}\n")
    monkeypatch.chdir(tmp_path)
    assert params_path("mine") == (tmp_path / "params" / "mine.yml").resolve()
    with pytest.raises(ParamsError, match="params file not found: quick"):
        params_path("quick")


def test_notebooks_command_checks_and_strips(tmp_path, capsys):
    from seaice_utils.cli import main

    nb = tmp_path / "01_x.ipynb"
    make_nb(nb, "x = 1")
    raw = json.loads(nb.read_text())
    raw["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    nb.write_text(json.dumps(raw))
    assert main(["notebooks", "check", str(nb)]) == 1
    assert "outputs" in capsys.readouterr().out
    assert main(["notebooks", "strip", str(nb)]) == 0
    assert main(["notebooks", "check", str(nb)]) == 0
