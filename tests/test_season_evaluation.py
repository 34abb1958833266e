"""Notebook 06's machinery in ``seaice_utils.evaluation``: the season plan, hazy dates, the runs,
the error table, its summary, the manifest record and the three figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seaice_utils import evaluation
from seaice_utils.core.figures import figure_to_png
from seaice_utils.data.season import make_season
from seaice_utils.params import defaults
from seaice_utils.season import MIN_OBSERVED_SHARE, run_season

rasterio = pytest.importorskip("rasterio")


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    return make_season(tmp_path_factory.mktemp("season") / "data" / "season", 5, n_dates=12,
                       size=128)


@pytest.fixture(scope="module")
def runs(season):
    out = season.root.parent.parent
    methods, skipped = evaluation.season_methods(season, out)
    assert list(methods) == ["auto-labels", "auto-labels, no cloud mask"]
    assert "U-Net-Auto skipped" in skipped and "models/unet_auto.keras" in skipped
    return {name: run_season(m.input, m.out_dir, model=m.model, progress=False)
            for name, m in methods.items()}


def test_plan_resolves_the_seed_and_workers():
    p = defaults()
    p["season"].update(seed=None, workers=0)
    plan = evaluation.season_plan(p)
    assert plan.settings["seed"] == p["global"]["seed"] and plan.settings["workers"] == 0
    assert plan.workers >= 1
    assert plan.run_options == {"engine": p["season"]["engine"], "workers": plan.workers,
                                "progress": p["global"]["progress"]}
    p["season"].update(seed=7, workers=3)
    plan = evaluation.season_plan(p)
    assert plan.settings["seed"] == 7 and plan.workers == 3


def test_hazy_dates_follow_the_scene_tags(season):
    hazy = evaluation.hazy_dates(season)
    assert list(hazy) == [d.isoformat() for d in season.dates]
    tagged = set()
    for r in season.scenes:
        with rasterio.open(season.root / r["scene"]) as src:
            if src.tags()["CLOUDY"] == "True":
                tagged.add(r["date"])
    assert {d for d, h in hazy.items() if h} == tagged and tagged


def test_unet_auto_joins_when_notebook_04_saved_it(season, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "unet_auto.keras").write_bytes(b"")
    methods, skipped = evaluation.season_methods(season, tmp_path)
    assert skipped is None and list(methods)[-1] == "U-Net-Auto"
    m = methods["U-Net-Auto"]
    assert m.model == tmp_path / "models" / "unet_auto.keras"
    assert m.out_dir == tmp_path / "season" / "unet_auto" and m.input.name == "season.csv"


def test_error_table_summary_and_record(season, runs):
    hazy = evaluation.hazy_dates(season)
    errors = evaluation.season_error_table(season, runs, hazy)
    assert list(errors.columns[:3]) == ["date", "method", "hazy"]
    assert set(evaluation.SEASON_ERROR_COLUMNS) <= set(errors.columns)
    assert len(errors) == 24 and list(dict.fromkeys(errors["method"])) == list(runs)
    again = evaluation.season_errors(season.root, runs["auto-labels"].out_dir)
    first = errors[errors["method"] == "auto-labels"]
    assert first["rel_error_pct"].tolist() == [r["rel_error_pct"] for r in again]
    summary = evaluation.season_summary(errors)
    s = summary["auto-labels"]
    ok = first[first["quality"] == "ok"]
    assert s["dates_ok"] == len(ok)
    assert s["max_abs_rel_error_all_pct"] == round(first["rel_error_pct"].abs().max(), 3)
    assert s["mean_rel_error_hazy_pct"] == round(first.loc[first["hazy"], "rel_error_pct"].mean(), 3)
    lines = evaluation.season_summary_lines(errors, summary)
    assert len(lines) == 2 and "over all 12 dates" in lines[0]
    plan = evaluation.season_plan(defaults())
    out = season.root.parent.parent
    rec = evaluation.season_record(plan, season, hazy, runs, summary, out)
    assert rec["season"]["root"] == "data/season" and rec["season"]["scenes"] == len(season.scenes)
    assert rec["season"]["hazy_dates"] == sum(hazy.values())
    assert rec["methods"] == list(runs) and rec["unet_auto"] is None
    assert rec["flagged_dates"] == {r["date"]: r["quality"] for r in runs["auto-labels"].rows
                                    if r["quality"] != "ok"}
    assert rec["summary"] == summary


def test_summary_of_a_method_without_ok_or_hazy_dates():
    errors = pd.DataFrame({"method": ["a", "a"], "date": ["2019-11-01", "2019-11-02"],
                           "hazy": [False, False], "quality": ["cloudy", "low coverage"],
                           "rel_error_pct": [1.0, -2.5]})
    s = evaluation.season_summary(errors)["a"]
    assert s == {"dates_ok": 0, "max_abs_rel_error_ok_pct": None,
                 "max_abs_rel_error_all_pct": 2.5, "mean_rel_error_clear_pct": -0.75,
                 "mean_rel_error_hazy_pct": None}
    line = evaluation.season_summary_lines(errors, {"a": s})[0]
    assert "nan % over the 0 ok dates" in line and "hazy n/a" in line and "clear -0.75 %" in line


def test_figures(season, runs):
    hazy = evaluation.hazy_dates(season)
    errors = evaluation.season_error_table(season, runs, hazy)
    fig = evaluation.season_areas_figure(errors, hazy)
    assert [ax.get_title() for ax in fig.axes] == list(runs)
    assert len(fig.axes[0].lines) == 8                       # 4 curves, recovered and true
    rows = runs["auto-labels"].rows
    fig = evaluation.season_coverage_figure(rows, min_observed_share=MIN_OBSERVED_SHARE)
    flagged = sum(r["quality"] != "ok" for r in rows)
    assert f"({flagged} of 12 dates flagged)" in fig.axes[0].get_title()
    fig = evaluation.season_maps_figure(season, {n: r.out_dir for n, r in runs.items()}, hazy)
    assert len(fig.axes) == 12 * 3
    assert [t.get_text() for t in fig.legends[0].get_texts()][-2:] == ["cloud", "not observed"]
    png = figure_to_png(fig)
    assert png[:4] == b"\x89PNG" and not math.isnan(np.frombuffer(png, np.uint8).mean())


# --------------------------------------------------------------------------------------------
# a collected season (season.catalogue): no truth
# --------------------------------------------------------------------------------------------

def _catalogue(season, path, days, *, masks=True):
    """A catalogue of ``days`` of the synthetic season, laid out as ``seaice collect`` writes
    one (``datetime``, ``file`` and ``cloud_mask`` relative to its folder)."""
    import csv
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["name", "datetime", "file", "cloud_mask", "cloud_mask_source"])
        for r in season.scenes:
            if r["date"] in days:
                rel = lambda p: os.path.relpath(season.root / p, path.parent)  # noqa: E731
                wr.writerow([r["scene"], f"{r['date']}T20:28:51Z", rel(r["scene"]),
                             rel(r["cloud_mask"]) if masks else "",
                             "cloud_probability" if masks else "none"])
    return path


@pytest.fixture(scope="module")
def collected(season, tmp_path_factory):
    out = tmp_path_factory.mktemp("collected")
    days = [d.isoformat() for d in season.dates[:3]]
    _catalogue(season, out / "data" / "stac" / "catalogue.csv", days)
    p = defaults()
    p["season"]["catalogue"] = "data/stac/catalogue.csv"
    plan = evaluation.season_plan(p)
    cs = evaluation.load_season(plan, out)
    methods, note = evaluation.season_methods(cs, out)
    runs = {name: run_season(m.input, m.out_dir, model=m.model, progress=False)
            for name, m in methods.items()}
    return out, plan, cs, methods, note, runs


def test_catalogue_season_loads_without_truth(season, collected):
    out, plan, cs, _, _, _ = collected
    assert isinstance(cs, evaluation.CatalogueSeason) and not evaluation.has_truth(cs)
    assert evaluation.has_truth(season)
    assert cs.dates == season.dates[:3] and cs.catalogue == out / "data" / "stac" / "catalogue.csv"
    assert len(cs.scenes) == sum(r["date"] <= cs.dates[-1].isoformat() for r in season.scenes)
    hazy = evaluation.hazy_dates(cs)
    expect = {}
    for r in cs.scenes:
        with rasterio.open(cs.root / r["cloud_mask"]) as src:
            cloudy = bool((src.read(1) >= plan.settings["cloud_probability"]).any())
        expect[r["date"]] = expect.get(r["date"], False) or cloudy
    assert hazy == expect
    line = plan.describe(cs, hazy, out)
    assert "3 dates" in line and "collected catalogue data/stac/catalogue.csv" in line
    assert "no truth" in line and str(out) not in line


def test_catalogue_runs_with_and_without_masks(collected):
    out, _, cs, methods, note, runs = collected
    assert list(methods) == ["auto-labels", "auto-labels, no cloud mask"]
    assert "U-Net-Auto skipped" in note
    assert methods["auto-labels"].input == cs.catalogue
    assert methods["auto-labels"].out_dir == out / "season" / "collected" / "auto_labels"
    plain = methods["auto-labels, no cloud mask"].input
    text = plain.read_text()
    assert text.startswith("date,scene\n") and "cloud" not in text and str(out) not in text
    assert len(text.splitlines()) == len(cs.scenes) + 1
    masked = {r["date"]: r for r in runs["auto-labels"].rows}
    for r in runs["auto-labels, no cloud mask"].rows:
        assert r["cloud_share"] == 0.0 and masked[r["date"]]["n_scenes"] == r["n_scenes"]
    assert any(r["cloud_share"] > 0 for r in masked.values())


def test_catalogue_table_summary_record_and_figures(collected):
    out, plan, cs, _, _, runs = collected
    hazy = evaluation.hazy_dates(cs)
    table, name, note = evaluation.season_table(cs, runs, hazy)
    assert name == "06_season_collected_areas" and note == evaluation.NO_TRUTH_NOTE
    assert list(table.columns) == evaluation.SEASON_AREA_COLUMNS
    assert evaluation.season_columns(table) == evaluation.SEASON_AREA_COLUMNS
    assert len(table) == 6 and "rel_error_pct" not in table
    got = table[table["method"] == "auto-labels"]
    assert got["ice_km2"].tolist() == [r["ice_km2"] for r in runs["auto-labels"].rows]
    summary = evaluation.season_summary(table)
    assert set(summary) == set(runs) and all(s["truth"] is False for s in summary.values())
    lines = evaluation.season_summary_lines(table, summary)
    assert len(lines) == 2 and all("no truth" in ln and "of 3 dates ok" in ln for ln in lines)
    rec = evaluation.season_record(plan, cs, hazy, runs, summary, out)
    assert rec["season"]["truth"] is False and rec["season"]["root"] == "data/stac"
    assert rec["season"]["catalogue"] == "data/stac/catalogue.csv"
    fig = evaluation.season_areas_figure(table, hazy)
    assert [ax.get_title() for ax in fig.axes] == list(runs)
    assert len(fig.axes[0].lines) == 4 and "no truth" in fig._suptitle.get_text()
    fig = evaluation.season_maps_figure(cs, {n: r.out_dir for n, r in runs.items()}, hazy)
    assert len(fig.axes) == 3 * 2
    assert figure_to_png(fig)[:4] == b"\x89PNG"


def test_catalogue_without_masks_and_bad_catalogues(season, tmp_path):
    from seaice_utils.errors import InputError

    days = [season.dates[0].isoformat()]
    cat = _catalogue(season, tmp_path / "cat" / "catalogue.csv", days, masks=False)
    cs = evaluation.read_catalogue(cat)
    assert all(r["cloud_mask"] == "" for r in cs.scenes)
    assert evaluation.hazy_dates(cs) == {days[0]: False}
    methods, note = evaluation.season_methods(cs, tmp_path)
    assert list(methods) == ["auto-labels"] and "names no cloud mask" in note
    with pytest.raises(InputError, match="season.catalogue.*not found"):
        evaluation.read_catalogue(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("datetime,file\n2019-11-01,missing.tif\n")
    with pytest.raises(InputError, match="line 2: scene 'missing.tif' not found"):
        evaluation.read_catalogue(bad)
    bad.write_text("when,file\n")
    with pytest.raises(InputError, match="no date column"):
        evaluation.read_catalogue(bad)
