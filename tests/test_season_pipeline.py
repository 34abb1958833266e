"""A season end to end (``seaice season``): classify every dated scene, mosaic each date on one
grid, tabulate its class areas; checked against the synthetic season's truth.

Why the test profile: the synthetic season renders open water blue-black with texture and noise
(V about 15-40) and lifts it further under thin haze; the paper's water ceiling (V 30) then labels
part of the water as thin ice, and the season's total ice comes out about 6 % high on its one
well-observed date (``test_paper_thresholds_overcount_ice_on_the_synthetic_water``). With the
water ceiling at V 60 (``SYNTH_PROFILE``) every clear date is within 1 %; hazy dates stay high.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.data.season import make_season, read_season_csv, read_truth_areas
from seaice_utils.season import MIN_OBSERVED_SHARE, run_season, season_scenes

rasterio = pytest.importorskip("rasterio")

SYNTH_PROFILE = """\
autolabel:
  water: {lower: [0, 0, 0], upper: [185, 255, 60]}
  thin: {lower: [0, 0, 61], upper: [185, 255, 204]}
filter:
  water_v_max: 60
"""
ICE_RTOL = 0.03


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    root = tmp_path_factory.mktemp("season")
    s = make_season(root / "data", 3, n_dates=12, size=192)
    profile = root / "synth_season.yml"
    profile.write_text(SYNTH_PROFILE)
    return s, profile, root


@pytest.fixture(scope="module")
def seq_run(season):
    s, profile, root = season
    out = root / "seq"
    rc = main(["season", str(s.root / "season.csv"), str(out), "--labels", "auto",
               "--params", str(profile), "--no-progress", "-q"])
    assert rc == 0
    return out


def _rows(out):
    with open(out / "season_areas.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _cloudy(s) -> set:
    out = set()
    for r in s.scenes:
        with rasterio.open(s.root / r["scene"]) as src:
            if src.tags().get("CLOUDY") == "True":
                out.add(r["date"])
    return out


def _ice_error(row, truth) -> float:
    t = truth["observed_thick_km2"] + truth["observed_thin_km2"]
    return (float(row["ice_km2"]) - t) / t


def test_areas_match_the_truth_per_date(season, seq_run):
    s, _, _ = season
    rows = _rows(seq_run)
    truth = {r["date"]: r for r in read_truth_areas(s.root)}
    assert [r["date"] for r in rows] == sorted(truth)
    n_scenes = {}
    for r in read_season_csv(s.root):
        n_scenes[r["date"]] = n_scenes.get(r["date"], 0) + 1
    cloudy = _cloudy(s)
    ok = 0
    for r in rows:
        t = truth[r["date"]]
        assert int(r["n_scenes"]) == n_scenes[r["date"]]
        # overlaps counted once, no-data in no class: the observed area is the truth's exactly
        assert float(r["observed_km2"]) == pytest.approx(t["observed_km2"], abs=1e-5)
        assert float(r["water_km2"]) <= t["observed_water_km2"] * 1.01 + 0.01
        share = float(r["observed_share"])
        assert share == pytest.approx(float(r["observed_km2"]) / float(r["region_km2"]),
                                      abs=1e-6)
        if share >= MIN_OBSERVED_SHARE:
            ok += 1
            assert r["quality"] == "ok"
            assert abs(_ice_error(r, t)) <= ICE_RTOL, r
        else:
            assert r["quality"] == "low coverage"
        if r["date"] not in cloudy:
            assert abs(_ice_error(r, t)) <= 0.01, r
    assert ok >= 1
    with rasterio.open(seq_run / "dates" / f"{rows[0]['date']}_classes.tif") as src:
        assert src.crs.to_string() == "EPSG:3031" and src.count == 1


def test_paper_thresholds_overcount_ice_on_the_synthetic_water(season, tmp_path):
    s, _, _ = season
    res = run_season(s.root / "season.csv", tmp_path / "paper", progress=False)
    truth = {r["date"]: r for r in read_truth_areas(s.root)}
    errs = [_ice_error(r, truth[r["date"]]) for r in res.rows]
    assert all(e > 0 for e in errs)          # water read as thin ice, never the other way
    good = [e for r, e in zip(res.rows, errs) if r["quality"] == "ok"]
    assert good and 0.03 < max(good) < 0.10


def test_engines_write_the_same_season(season, seq_run):
    s, profile, root = season
    out = root / "mp"
    rc = main(["season", str(s.root / "season.csv"), str(out), "--params", str(profile),
               "--engine", "multiprocessing", "--workers", "2", "--no-progress", "-q"])
    assert rc == 0
    assert (out / "season_areas.csv").read_bytes() == (seq_run / "season_areas.csv").read_bytes()
    names = sorted(p.name for p in (seq_run / "dates").iterdir())
    assert names == sorted(p.name for p in (out / "dates").iterdir()) and len(names) == 12
    for n in names:
        assert (out / "dates" / n).read_bytes() == (seq_run / "dates" / n).read_bytes()


def test_resume_redoes_nothing_and_folder_input_gives_the_same_season(season, seq_run, capsys):
    s, profile, _ = season
    before = (seq_run / "season_areas.csv").read_bytes()
    from seaice_utils.params import load_params

    res = run_season(s.root / "season.csv", seq_run, params=load_params(profile),
                     resume=True, progress=False)
    assert res.job.done == [] and len(res.job.skipped) == 27 and res.ok
    assert res.dates_written == []
    assert (seq_run / "season_areas.csv").read_bytes() == before
    assert season_scenes(s.root / "scenes") == season_scenes(s.root / "season.csv")
    capsys.readouterr()
    rc = main(["season", str(s.root / "scenes"), str(seq_run), "--params", str(profile),
               "--resume", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "0 labelled, 27 already done, 0 failed" in printed and "2019-12-15" in printed
    assert (seq_run / "season_areas.csv").read_bytes() == before


def _undated(path):
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8",
                       crs="EPSG:3031",
                       transform=rasterio.transform.Affine(40, 0, 0, 0, -40, 0)) as dst:
        dst.write(np.full((3, 8, 8), 100, np.uint8))


def test_bad_inputs_exit_2_naming_the_problem(season, tmp_path, capsys):
    s, _, _ = season
    folder = tmp_path / "scenes"
    folder.mkdir()
    shutil.copy(s.root / s.scenes[0]["scene"], folder)
    _undated(folder / "scene_a.tif")
    assert main(["season", str(folder), str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "scene_a.tif" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("when,scene\n2019-11-01,x.tif\n")
    assert main(["season", str(bad), str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "no date column" in capsys.readouterr().err
    assert main(["season", str(tmp_path / "nowhere"), str(tmp_path / "o3")]) == 2
