"""Provenance in the manifest and ``seaice verify``: two runs of the same profile agree; a value
that differs, or a table that is missing, is found and named; timings are not held against a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from seaice_utils.cli import main
from seaice_utils.report import file_digest
from seaice_utils.verify import (compare_runs, compare_tables, headline_figures,
                                 table_values_digest, timing_column)

ROOT = Path(__file__).resolve().parent.parent


def tiny_profile(folder: Path, name: str = "tiny", **sections) -> Path:
    """The quick profile cut down until notebooks 01 and 02 take seconds; ``sections`` are
    merged over it (``filter={"thick_threshold": 200}``)."""
    p = yaml.safe_load((ROOT / "params" / "quick.yml").read_text())
    p["global"].update(profile=name, progress=False)
    p["data"].update(n_scenes=2, scene_size=256)
    p["tuning"].update(scenes=1, preview_size=128)
    p["collect"].update(max_scenes=2)
    for section, values in sections.items():
        p[section].update(values)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(p))
    return path


# -- the timing rule -----------------------------------------------------------------------------

@pytest.mark.parametrize("column", [
    "parallel_s", "sequential_s", "speedup", "efficiency", "reference_ms", "fast_min_ms",
    "speedup_min", "startup_s", "warmup_s", "load_s", "map_s", "reduce_s", "total_s",
    "load_speedup", "total_speedup", "s_per_epoch", "images_per_s", "steady_s_per_epoch",
    "cpu_s_per_image", "wall_s", "seconds", "time", "throughput", "cpu_count", "cpu_model",
    "oversubscribed", "Elapsed (s)"])
def test_timing_columns(column):
    assert timing_column(column)


@pytest.mark.parametrize("column", [
    "accuracy_pct", "macro_f1_pct", "workers", "epochs", "global_batch", "processes", "tiles",
    "failed", "map", "model", "input", "stratum", "pixels", "open_water", "thin_ice",
    "identical", "seed", "datetime", "n_tiles", "scene", "agreement", "kernel", "slots"])
def test_value_columns(column):
    assert not timing_column(column)


# -- comparing crafted runs ----------------------------------------------------------------------

def write_run(folder: Path, tables: dict[str, str], figures: dict[str, bytes] | None = None,
              **manifest) -> Path:
    """An outputs folder: tables (name -> CSV text), figures (name -> bytes), a manifest."""
    (folder / "tables").mkdir(parents=True)
    (folder / "figures").mkdir()
    for name, text in tables.items():
        (folder / "tables" / name).write_text(text)
    for name, data in (figures or {}).items():
        (folder / "figures" / name).write_bytes(data)
    m = {"params": {"global": {"profile": "t"}}, "started": "2024-01-01T00:00:00+00:00"}
    m.update(manifest)
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


SPEED = "processes,parallel_s,speedup,tiles,cpu_model\n1,1.00,1.0,8,A\n2,0.60,1.7,8,A\n"
ACC = "model,input,accuracy_pct,n_pixels\nman,filtered,90.5,100\nauto,filtered,91.25,100\n"


def verify(capsys, *args) -> tuple[int, str]:
    rc = main(["verify", *map(str, args)])
    got = capsys.readouterr()
    return rc, got.out + got.err


def test_timing_only_difference_agrees(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED, "acc.csv": ACC}, {"f.png": b"png-a"})
    b = write_run(tmp_path / "b", {"t1.csv": SPEED.replace("0.60,1.7", "0.55,1.8")
                                   .replace(",A\n", ",B\n"), "acc.csv": ACC},
                  {"f.png": b"png-b"})
    rc, out = verify(capsys, a, b)
    assert rc == 0, out
    assert "tables/acc.csv" in out and "identical" in out
    line = next(x for x in out.splitlines() if "tables/t1.csv" in x)
    assert "differs only in timing columns" in line
    assert "parallel_s" in line and "speedup" in line and "cpu_model" in line
    assert "differ (expected where a figure shows timings)" in out
    assert "result: the runs agree outside timing columns" in out


def test_value_difference_names_table_column_and_cells(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED, "acc.csv": ACC})
    b = write_run(tmp_path / "b", {"t1.csv": SPEED,
                                   "acc.csv": ACC.replace("90.5", "89.5").replace("91.25", "91")})
    rc, out = verify(capsys, a, b)
    assert rc == 1
    line = next(x for x in out.splitlines() if "tables/acc.csv" in x)
    assert "DIFFERS: 2 cells in 1 column, max abs difference 1: accuracy_pct (2)" in line
    assert "result: the runs DIFFER" in out


def test_missing_table_and_other_shapes_differ(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED, "acc.csv": ACC})
    b = write_run(tmp_path / "b", {"t1.csv": SPEED})
    rc, out = verify(capsys, a, b)
    assert rc == 1
    assert "DIFFERS: only in A" in next(x for x in out.splitlines() if "tables/acc.csv" in x)
    fewer = tmp_path / "fewer.csv"
    fewer.write_text(ACC.rsplit("auto", 1)[0])
    r = compare_tables(tmp_path / "a" / "tables" / "acc.csv", fewer)
    assert r.failed and "2 rows in A, 1 in B" in r.detail
    extra = tmp_path / "extra.csv"
    extra.write_text(ACC.replace("n_pixels\n", "n_pixels,f1\n").replace(",100\n", ",100,1\n"))
    r = compare_tables(tmp_path / "a" / "tables" / "acc.csv", extra)
    assert r.failed and "columns only in B: f1" in r.detail


def test_tolerance_and_missing_numbers(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("x,y\n1.0,\nnan,text\n")
    b.write_text("x,y\n1.0000001,\nnan,text\n")
    assert compare_tables(a, b).status == "differs"
    assert compare_tables(a, b, tolerance=1e-6).status == "identical"


def test_usage_errors_exit_2(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED})
    (tmp_path / "empty").mkdir()
    rc, out = verify(capsys, a, tmp_path / "empty")
    assert rc == 2 and "no manifest.json" in out
    assert verify(capsys, a)[0] == 2                       # no B and no --reference
    assert verify(capsys, a, tmp_path / "nowhere")[0] == 2
    rc, out = verify(capsys, a, "--reference", a / "manifest.json")
    assert rc == 0 and "identical" in out


def test_manifest_digests_stand_in_for_tables_and_catch_edits(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED, "acc.csv": ACC})
    files = {f"tables/{p.name}": {**file_digest(p), "values_sha256": table_values_digest(p)}
             for p in (a / "tables").glob("*.csv")}
    m = json.loads((a / "manifest.json").read_text())
    (a / "manifest.json").write_text(json.dumps({**m, "output_files": files}))
    b = write_run(tmp_path / "b", {"t1.csv": SPEED.replace("0.60", "0.70"), "acc.csv": ACC})
    alone = tmp_path / "published" / "manifest.json"      # a manifest without its tables
    alone.parent.mkdir()
    shutil.copy(a / "manifest.json", alone)
    rc, out = verify(capsys, b, "--reference", alone)
    assert rc == 0, out
    assert "differs only in timing columns (by the manifest's digest)" in out
    (a / "tables" / "acc.csv").write_text(ACC.replace("90.5", "99.5"))   # edited after the run
    rc, out = verify(capsys, a, alone)
    assert rc == 1 and "changed after the run" in out and "A: tables/acc.csv" in out
    rc, out = verify(capsys, b, alone)
    assert rc == 0                     # the manifest alone still vouches for the run it records


def test_headline_figures_name_their_tables(tmp_path):
    t = tmp_path / "tables"
    t.mkdir()
    (t / "02_class_fractions.csv").write_text(
        "scene,labels,open_water,thin_ice,thick_ice,agreement\n"
        "s0,filter,0.2,0.3,0.5,0.9\nall,no filter,0.1,0.4,0.5,0.8\nall,filter,0.1,0.3,0.6,0.95\n"
        "all,reference,0.1,0.3,0.6,\n")
    (t / "03_table1_multiprocessing.csv").write_text(SPEED)
    (t / "05_table4_accuracy.csv").write_text(ACC.replace("man,", "U-Net-Man,"))
    (t / "05_table5_cloud_strata.csv").write_text(
        "model,input,stratum,accuracy_pct\nU-Net-Man,original,> 10% cloud/shadow,80\n"
        "U-Net-Man,original,<= 10% cloud/shadow,\nU-Net-Man,original,overall,80\n")
    h = headline_figures(tmp_path)
    assert h == {"02_open_water_fraction": "0.1", "02_thin_ice_fraction": "0.3",
                 "02_thick_ice_fraction": "0.6", "02_agreement_no_filter": "0.8",
                 "02_agreement_filter": "0.95", "03_table1_speedup": "1.7",
                 "03_table1_processes": "2",
                 "05_table4_accuracy_pct_u_net_man_filtered": "90.5",
                 "05_table4_accuracy_pct_auto_filtered": "91.25",
                 "05_table5_accuracy_pct_u_net_man_original_cloudy": "80"}


# -- tables and manifests that cannot be read -------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


def test_a_binary_table_is_named_unreadable_not_a_traceback(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"t1.csv": SPEED, "acc.csv": ACC})
    c = write_run(tmp_path / "c", {"t1.csv": SPEED, "acc.csv": ACC})
    (c / "tables" / "acc.csv").write_bytes(PNG)
    rc, out = verify(capsys, a, c)
    assert rc == 1 and "Traceback" not in out
    line = next(x for x in out.splitlines() if x.strip().startswith("tables/acc.csv"))
    assert (f"UNREADABLE: {c}/tables/acc.csv: not a readable table (binary, not UTF-8 text: "
            "byte 0x89 at offset 0)") in line
    assert "identical" in next(x for x in out.splitlines() if "tables/t1.csv" in x)
    assert "1 unreadable" in out and "result: the runs DIFFER" in out
    rc, out = verify(capsys, c, a)                       # on either side
    assert rc == 1 and f"{c}/tables/acc.csv: not a readable table" in out


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_bytes(b"model,input\nman,fil\x00tered\n"), "binary, not text: NUL byte at "
                                                                  "offset 19"),
    (lambda p: p.write_bytes(bytes(4096)), "binary, not text: NUL byte at offset 0"),
    (lambda p: p.mkdir(), "Is a directory"),
    (lambda p: p.write_bytes(b"model\n" + b"x" * 200_000 + b"\n"), "not CSV: field larger"),
])
def test_other_unreadable_tables_say_why(tmp_path, capsys, make, why):
    a = write_run(tmp_path / "a", {"acc.csv": ACC})
    c = write_run(tmp_path / "c", {})
    make(c / "tables" / "acc.csv")
    rc, out = verify(capsys, a, c)
    assert rc == 1
    assert f"{c}/tables/acc.csv: not a readable table ({why}" in out


def test_an_unreadable_table_against_a_manifests_digest(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"acc.csv": ACC})
    files = {"tables/acc.csv": {**file_digest(a / "tables" / "acc.csv"),
                                "values_sha256": table_values_digest(a / "tables" / "acc.csv")}}
    alone = tmp_path / "published" / "manifest.json"
    alone.parent.mkdir()
    alone.write_text(json.dumps({"params": {}, "output_files": files}))
    c = write_run(tmp_path / "c", {})
    (c / "tables" / "acc.csv").write_bytes(PNG)
    rc, out = verify(capsys, c, "--reference", alone)
    assert rc == 1 and f"UNREADABLE: {c}/tables/acc.csv: not a readable table" in out


def test_a_manifest_that_is_not_json_is_named_and_the_tables_still_compared(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"acc.csv": ACC})
    c = write_run(tmp_path / "c", {"acc.csv": ACC})
    (c / "manifest.json").write_bytes(PNG)
    rc, out = verify(capsys, a, c)
    assert rc == 1 and "Traceback" not in out
    assert f"{c}/manifest.json: not a readable manifest (" in out
    assert "identical" in next(x for x in out.splitlines() if "tables/acc.csv" in x)
    (c / "manifest.json").write_text("[1, 2]")
    rc, out = verify(capsys, a, c)
    assert rc == 1 and f"{c}/manifest.json: not a manifest of `seaice reproduce`" in out
    (tmp_path / "bare").mkdir()                          # nothing beside it: a usage error
    (tmp_path / "bare" / "manifest.json").write_text("{not json")
    rc, out = verify(capsys, a, tmp_path / "bare")
    assert rc == 2 and out.count("\n") == 1 and "not a readable manifest" in out


def test_an_unreadable_figure_is_named(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"acc.csv": ACC}, {"f.png": b"png"})
    c = write_run(tmp_path / "c", {"acc.csv": ACC})
    (c / "figures" / "f.png").mkdir()
    rc, out = verify(capsys, a, c)
    assert rc == 0                                     # figures never count against the runs
    assert f"not readable: {c}/figures/f.png (Is a directory)" in out


def test_headline_figures_leave_out_unreadable_tables(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "05_table4_accuracy.csv").write_bytes(PNG)
    (tmp_path / "tables" / "03_table1_multiprocessing.csv").write_text(SPEED)
    assert headline_figures(tmp_path) == {"03_table1_speedup": "1.7", "03_table1_processes": "2"}


# -- two real runs of notebooks 01 and 02 --------------------------------------------------------

def test_two_runs_of_one_profile_verify_identical_and_record_provenance(tmp_path, capsys):
    from test_privacy import find_private, private_patterns

    from seaice_utils.runner import run_notebooks

    prof = tiny_profile(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["reproduce", "--params", str(prof), "--outputs", str(a), "--only", "01,02",
                 "--no-progress"]) == 0            # one --params: outputs right in the folder
    run_notebooks(prof, b, only=["01", "02"], progress=False)
    capsys.readouterr()
    m = json.loads((a / "manifest.json").read_text())
    assert m["environment"]["distributions"]["numpy"] == m["environment"]["packages"]["numpy"]
    assert list(m["environment"]["distributions"]) == sorted(m["environment"]["distributions"])
    inputs = m["inputs"]
    assert inputs["source"] == "synthetic" and inputs["dataset"] == "data/synthetic"
    assert inputs["catalogue"] == "data/synthetic/catalogue.csv"
    assert set(inputs["files"]) >= {"scenes/synth_0000.png", "scenes/synth_0001.png"}
    scene = a / "data" / "synthetic" / "scenes" / "synth_0000.png"
    assert inputs["files"]["scenes/synth_0000.png"] == file_digest(scene)
    assert inputs["generator"]["data"]["scene_size"] == 256 and inputs["generator"]["seed"] == 0
    assert m["attribution"] is None and "no Copernicus" in m["attribution_note"]
    tables = sorted(f"tables/{p.name}" for p in (a / "tables").glob("*.csv"))
    figures = sorted(f"figures/{p.name}" for p in (a / "figures").glob("*.png"))
    assert "tables/02_class_fractions.csv" in tables and figures
    assert sorted(m["output_files"]) == sorted(tables + figures)
    entry = m["output_files"]["tables/02_class_fractions.csv"]
    assert entry["sha256"] == file_digest(a / "tables" / "02_class_fractions.csv")["sha256"]
    assert entry["this_run"] is True and "values_sha256" in entry
    assert find_private(a, private_patterns(a, b, ROOT, tmp_path)) == []

    result = compare_runs(a, b)
    assert result.ok, "\n".join(result.lines())
    assert {t.status for t in result.tables} <= {"identical", "timing"}
    assert "inputs" in dict(result.context) and "identical" in dict(result.context)["inputs"]
    rc, out = verify(capsys, a / "manifest.json", b)
    assert rc == 0 and "result: the runs agree" in out


def test_sentinel_data_carry_the_copernicus_attribution(tmp_path):
    import nbformat

    from seaice_utils.runner import run_notebooks

    data = tmp_path / "products"
    (data / "scenes").mkdir(parents=True)
    for name in ("a", "b"):
        (data / "scenes" / f"{name}.png").write_bytes(name.encode())
    (data / "catalogue.csv").write_text("name,datetime\na,2019-11-03T20:01:02Z\n"
                                       "b,2020-01-02T20:01:02Z\n")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('params_file = ""\noutputs_dir = ""')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, nbs / "01_nothing.ipynb")
    prof = tmp_path / "sentinel.yml"
    prof.write_text(yaml.safe_dump({"data": {"source": "folder", "folder": str(data)}}))
    m = run_notebooks(prof, tmp_path / "out", notebook_dir=nbs, progress=False)
    assert m["attribution"] == "Contains modified Copernicus Sentinel data 2019-2020"
    assert m["inputs"]["source"] == "folder" and m["inputs"]["dataset"] == "products"
    assert m["inputs"]["files"]["scenes/b.png"] == file_digest(data / "scenes" / "b.png")
    assert "generator" not in m["inputs"] and m["output_files"] == {}
