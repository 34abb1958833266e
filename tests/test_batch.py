"""Batch reruns: ``seaice reproduce --params a.yml --params b.yml`` (or ``--params DIR``) runs
each profile into ``<outputs>/<profile>/`` and compares their headline figures in
``<outputs>/comparison.csv``; ``seaice verify`` tells what differs between two of the runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from seaice_utils.cli import main
from seaice_utils.errors import ParamsError
from seaice_utils.runner import batch_profiles

ROOT = Path(__file__).resolve().parent.parent


def test_profiles_are_named_by_global_profile_else_the_file_stem(tmp_path):
    (tmp_path / "b.yml").write_text("global: {seed: 1}\n")
    (tmp_path / "a.yml").write_text("global: {profile: first}\n")
    (tmp_path / "notes.txt").write_text("not a profile")
    assert [(n, p.name) for n, p in batch_profiles([tmp_path])] == [("first", "a.yml"),
                                                                     ("b", "b.yml")]
    assert [n for n, _ in batch_profiles([tmp_path / "b.yml", tmp_path / "a.yml"])] == ["b",
                                                                                        "first"]


def test_duplicate_names_bad_names_and_bad_profiles_are_refused_before_running(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "x.yml").write_text("global: {seed: 1}\n")
    (two / "x.yml").write_text("global: {seed: 2}\n")
    with pytest.raises(ParamsError, match="two profiles named 'x'"):
        batch_profiles([one / "x.yml", two / "x.yml"])
    with pytest.raises(ParamsError, match="two profiles named 'x'"):
        batch_profiles([one / "x.yml", one / "x.yml"])
    (two / "y.yml").write_text("global: {profile: 'a b/c'}\n")
    with pytest.raises(ParamsError, match="cannot name an outputs folder"):
        batch_profiles([two / "y.yml"])
    (two / "y.yml").write_text("filter: {median_kernel: 2}\n")
    with pytest.raises(ParamsError, match="filter.median_kernel"):
        batch_profiles([one / "x.yml", two / "y.yml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match="no \\*.yml profile"):
        batch_profiles([tmp_path / "empty"])
    out = tmp_path / "out"
    assert main(["reproduce", "--params", str(one / "x.yml"), "--params", str(two / "x.yml"),
                 "--outputs", str(out)]) == 2
    assert not out.exists()


def test_batch_of_two_profiles_runs_each_into_its_folder_and_compares_them(tmp_path, capsys):
    from test_privacy import find_private, private_patterns
    from test_verify import tiny_profile

    profiles = tmp_path / "profiles"
    tiny_profile(profiles, "paper_filter")
    tiny_profile(profiles, "small_kernel", filter={"median_kernel": 101})
    out = tmp_path / "out"
    assert main(["reproduce", "--params", str(profiles), "--outputs", str(out),
                 "--only", "01,02", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("paper_filter", "small_kernel"):
        assert (out / name / "manifest.json").is_file()
        assert (out / name / "tables" / "02_class_fractions.csv").is_file()
    assert not (out / "tables").exists() and not (out / "manifest.json").exists()
    with (out / "comparison.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["profile"] for r in rows] == ["paper_filter", "small_kernel"]
    assert all(r["status"] == "ok" and r["notebooks"] == "01 02" for r in rows)
    assert all(0 <= float(r["02_thick_ice_fraction"]) <= 1 for r in rows)
    assert rows[0]["02_thick_ice_fraction"] != rows[1]["02_thick_ice_fraction"]
    assert "02_thick_ice_fraction" in printed and "small_kernel" in printed
    assert "comparison.csv" in printed
    assert find_private(out, private_patterns(out, tmp_path, ROOT)) == []

    assert main(["verify", str(out / "paper_filter"), str(out / "small_kernel")]) == 1
    report = capsys.readouterr().out
    lines = {x.split()[0]: x for x in report.splitlines() if x.startswith("  tables/")}
    assert "DIFFERS" in lines["tables/02_class_fractions.csv"]
    assert "thick_ice" in lines["tables/02_class_fractions.csv"]
    assert lines["tables/01_catalogue.csv"].endswith("identical")
    assert "filter.median_kernel" in report and "global.profile" in report
    assert "inputs" in report and "identical (synthetic" in report
