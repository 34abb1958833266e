"""A season run scored against the synthetic season's truth, date by date.

:func:`season_errors` compares each date of a ``seaice season`` run (its ``season_areas.csv``
and ``dates/<date>_classes.tif``) with the truth of :func:`seaice_utils.data.season.make_season`
(``truth/<date>.tif``), counted over **exactly the pixels the run classified** on that date: the
date's mosaic pixels with a class (no-data, cloud and unlabelled pixels are left out on both
sides), in ground km² (:func:`~seaice_utils.core.areas.ground_pixel_areas`). The relative
error of total ice is then the classifier's error alone, not a difference in what was seen.

For notebook 06: :func:`season_plan` (the profile's season section, its defaults resolved),
:func:`hazy_dates`, :func:`season_methods` (what runs, where), :func:`season_error_table` (the
errors of every run in one table), :func:`season_summary` (the largest and mean errors per method,
:func:`season_summary_lines` as text) and :func:`season_record` (the run manifest's record).
The figures are :mod:`seaice_utils.evaluation.season_figures`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seaice_utils.core.classes import DISPLAY_ORDER, RANGE_KEYS, THICK, THIN
from seaice_utils.core.areas import ground_pixel_areas
from seaice_utils.core.mosaic import ClassLayer, mosaic_class_maps, read_class_layer
from seaice_utils.errors import InputError
from seaice_utils.report import shown_path

__all__ = ["season_errors", "SeasonPlan", "SeasonMethod", "season_plan", "hazy_dates",
           "season_methods", "season_error_table", "season_summary", "season_summary_lines",
           "season_record", "SEASON_ERROR_COLUMNS", "AREA_KEYS"]

#: Class -> the stem of its area columns (``thick_km2``, ``true_thick_km2``, ...).
AREA_KEYS = {c: RANGE_KEYS[c] for c in DISPLAY_ORDER}


def _truth_on(layer: ClassLayer, truth: ClassLayer) -> np.ndarray:
    """The truth resampled (by whole-pixel offset, nothing interpolated) onto ``layer``'s grid."""
    h, w = layer.classes.shape
    return mosaic_class_maps([truth], grid=(layer.transform, h, w)).classes


def season_errors(season_root, run_dir) -> list[dict]:
    """Per date of a season run: recovered and true areas over the pixels it classified.

    Parameters
    ----------
    season_root : path
        A synthetic season (``truth/<date>.tif``).
    run_dir : path
        The output folder of ``seaice season`` / :func:`seaice_utils.season.run_season`.

    Returns
    -------
    list of dict
        Per date: ``date``, ``ice_km2`` and ``true_ice_km2`` (thick + thin), ``rel_error_pct``
        (100 * (recovered - true) / true; positive: ice overcounted), ``thick_km2``,
        ``true_thick_km2``, ``thin_km2``, ``true_thin_km2``, ``water_km2``, ``true_water_km2``,
        and from the run ``observed_share``, ``cloud_share`` and ``quality``.

    Raises
    ------
    InputError
        A run without ``season_areas.csv``, a date without its truth or mosaic.
    """
    root, run = Path(season_root), Path(run_dir)
    table = run / "season_areas.csv"
    if not table.is_file():
        raise InputError(f"no season_areas.csv in {str(run)!r}: run `seaice season` first")
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out, areas = [], None
    for r in rows:
        day = r["date"]
        paths = (root / "truth" / f"{day}.tif", run / "dates" / f"{day}_classes.tif")
        for p in paths:
            if not p.is_file():
                raise InputError(f"{day}: {str(p)!r} not found")
        mosaic = read_class_layer(paths[1])
        truth = _truth_on(mosaic, read_class_layer(paths[0]))
        seen = mosaic.classes <= THICK
        grid = (mosaic.transform, mosaic.crs, mosaic.classes.shape)
        if areas is None or areas[0] != grid:          # the dates share one grid: once
            areas = (grid, ground_pixel_areas(*grid))
        w = areas[1][seen] / 1e6
        got = np.bincount(mosaic.classes[seen], weights=w, minlength=3)
        true = np.bincount(truth[seen], weights=w, minlength=256)[:3]
        if np.count_nonzero(truth[seen] > THICK):
            raise InputError(f"{day}: the run classified pixels outside the truth's region")
        row = {"date": day, "ice_km2": float(got[THICK] + got[THIN]),
               "true_ice_km2": float(true[THICK] + true[THIN])}
        row["rel_error_pct"] = (100 * (row["ice_km2"] - row["true_ice_km2"]) / row["true_ice_km2"]
                                if row["true_ice_km2"] else float("nan"))
        for k, name in AREA_KEYS.items():
            row[f"{name}_km2"], row[f"true_{name}_km2"] = float(got[k]), float(true[k])
        row.update(observed_share=float(r["observed_share"]),
                   cloud_share=float(r["cloud_share"]), quality=r["quality"])
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------
# notebook 06: the season's runs, their errors and summary
# --------------------------------------------------------------------------------------------

#: The columns of ``06_season_errors.csv`` the notebook shows.
SEASON_ERROR_COLUMNS = ["date", "method", "hazy", "ice_km2", "true_ice_km2", "rel_error_pct",
                 "observed_share", "cloud_share", "quality"]
#: Notebook 04's U-Net-Auto, relative to the outputs folder.
_UNET_AUTO = Path("models") / "unet_auto.keras"


@dataclass(frozen=True)
class SeasonPlan:
    """The profile's ``season`` section with its defaults resolved.

    ``settings``: the section as written, ``seed`` resolved (the profile's ``global.seed`` when
    null); ``workers``: the machine's cores when the section says 0; ``progress``: the profile's
    ``global.progress``.
    """

    settings: dict
    workers: int
    progress: bool

    @property
    def run_options(self) -> dict:
        """The engine keywords of :func:`seaice_utils.season.run_season`."""
        return {"engine": self.settings["engine"], "workers": self.workers,
                "progress": self.progress}

    def describe(self, season, hazy: Mapping[str, bool], outputs_dir) -> str:
        """One line on the season: dates, scenes, region, seed, hazy dates, where it is."""
        h, w = season.shape
        return (f"{len(season.dates)} dates, {len(season.scenes)} scenes of a {w} x {h} px region "
                f"({self.settings['pixel_m']:g} m pixels, {season.truth_areas[0]['region_km2']:.0f}"
                f" km2), seed {self.settings['seed']}; {sum(hazy.values())} hazy dates; in "
                f"{shown_path(season.root, outputs_dir)}")

    def describe_run(self, name: str, run) -> str:
        """One line on a finished :func:`~seaice_utils.season.run_season`."""
        return (f"{name}: {len(run.rows)} dates, {len(run.job.done) + len(run.job.skipped)} scenes "
                f"classified in {run.seconds['total']:.1f} s ({self.settings['engine']}), "
                f"failures: {len(run.failures)}")


def season_plan(params: Mapping[str, Any]) -> SeasonPlan:
    """The :class:`SeasonPlan` of a loaded profile."""
    se, g = params["season"], params["global"]
    seed = g["seed"] if se["seed"] is None else se["seed"]
    return SeasonPlan(settings={**se, "seed": seed}, workers=se["workers"] or os.cpu_count() or 1,
                      progress=g["progress"])


def hazy_dates(season) -> dict[str, bool]:
    """Date -> whether any scene of the date is hazy (a synthetic scene's ``CLOUDY`` tag), in
    the order of the season's scenes."""
    import rasterio

    hazy: dict[str, bool] = {}
    for row in season.scenes:
        with rasterio.open(Path(season.root) / row["scene"]) as src:
            hazy[row["date"]] = hazy.get(row["date"], False) or src.tags().get("CLOUDY") == "True"
    return hazy


@dataclass(frozen=True)
class SeasonMethod:
    """One season run of notebook 06: its input (``season.csv`` or the scenes' folder), model
    (None: auto-labels) and output folder."""

    input: Path
    model: Path | None
    out_dir: Path


def season_methods(season, outputs_dir) -> tuple[dict[str, SeasonMethod], str | None]:
    """The runs of notebook 06 and a note on what was skipped.

    Auto-labels (the paper's thresholds, cloud masks read from ``season.csv``), auto-labels
    without cloud masks (the scenes given as a folder) and, when notebook 04 saved it,
    U-Net-Auto (``<outputs>/models/unet_auto.keras``), into ``<outputs>/season/<slug>/``.
    """
    root, out = Path(season.root), Path(outputs_dir) / "season"
    methods = {"auto-labels": SeasonMethod(root / "season.csv", None, out / "auto_labels"),
               "auto-labels, no cloud mask": SeasonMethod(root / "scenes", None,
                                                          out / "auto_labels_no_mask")}
    unet = Path(outputs_dir) / _UNET_AUTO
    if not unet.is_file():
        return methods, (f"U-Net-Auto skipped: {shown_path(unet, outputs_dir)} not found "
                         f"(run notebook 04 first)")
    methods["U-Net-Auto"] = SeasonMethod(root / "season.csv", unet, out / "unet_auto")
    return methods, None


def season_error_table(season, runs: Mapping[str, Any], hazy: Mapping[str, bool]):
    """:func:`season_errors` of every run (name -> its output folder, or a run with
    ``out_dir``) in one DataFrame: ``date, method, hazy`` and the error columns."""
    import pandas as pd

    rows = []
    for name, run in runs.items():
        for r in season_errors(season.root, getattr(run, "out_dir", run)):
            rows.append({"date": r["date"], "method": name, "hazy": hazy[r["date"]],
                         **{k: v for k, v in r.items() if k != "date"}})
    return pd.DataFrame(rows)


def _round(x) -> float | None:
    return None if x is None else round(float(x), 3)


def season_summary(errors) -> dict[str, dict]:
    """Per method of :func:`season_error_table`: the dates of quality ``ok``, the largest
    relative error of total ice over them and over all dates, and the mean error on clear and
    on hazy dates (flagged dates included), in %, rounded to 0.001 (None where no date)."""
    summary = {}
    for name in dict.fromkeys(errors["method"]):
        a = errors[errors["method"] == name]
        g, hazy = a[a["quality"] == "ok"], a["hazy"].astype(bool)
        summary[name] = {
            "dates_ok": int(len(g)),
            "max_abs_rel_error_ok_pct": _round(g["rel_error_pct"].abs().max() if len(g) else None),
            "max_abs_rel_error_all_pct": _round(a["rel_error_pct"].abs().max()),
            "mean_rel_error_clear_pct": _round(a.loc[~hazy, "rel_error_pct"].mean()
                                               if (~hazy).any() else None),
            "mean_rel_error_hazy_pct": _round(a.loc[hazy, "rel_error_pct"].mean()
                                              if hazy.any() else None)}
    return summary


def season_summary_lines(errors, summary: Mapping[str, dict]) -> list[str]:
    """:func:`season_summary` as one line per method."""
    def pct(v):
        return "n/a" if v is None else f"{v:+.2f} %"

    out = []
    for name, s in summary.items():
        ok, n = s["max_abs_rel_error_ok_pct"], int((errors["method"] == name).sum())
        out.append(f"{name:<28} max |error| {float('nan') if ok is None else ok:6.2f} % over the "
                   f"{s['dates_ok']} ok dates; over all {n} dates "
                   f"{s['max_abs_rel_error_all_pct']:.2f} %, mean clear "
                   f"{pct(s['mean_rel_error_clear_pct'])}, "
                   f"hazy {pct(s['mean_rel_error_hazy_pct'])}")
    return out


def season_record(plan: SeasonPlan, season, hazy: Mapping[str, bool], runs: Mapping[str, Any],
                  summary: Mapping[str, dict], outputs_dir) -> dict:
    """The run manifest's record of notebook 06: the season, the methods, U-Net-Auto's model
    (None when skipped), each run's seconds, the flagged dates (of the first run) and the
    summary."""
    unet = Path(outputs_dir) / _UNET_AUTO
    first = next(iter(runs.values()))
    return {"season": {**plan.settings, "root": shown_path(season.root, outputs_dir),
                       "dates": len(season.dates), "scenes": len(season.scenes),
                       "hazy_dates": sum(hazy.values())},
            "methods": list(runs),
            "unet_auto": shown_path(unet, outputs_dir) if unet.is_file() else None,
            "seconds": {n: round(r.seconds["total"], 2) for n, r in runs.items()},
            "flagged_dates": {r["date"]: r["quality"] for r in first.rows if r["quality"] != "ok"},
            "summary": dict(summary)}
