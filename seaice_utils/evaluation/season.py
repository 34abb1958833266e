"""A season run scored against the synthetic season's truth, date by date.

:func:`season_errors` compares each date of a ``seaice season`` run (its ``season_areas.csv``
and ``dates/<date>_classes.tif``) with the truth of :func:`seaice_utils.data.season.make_season`
(``truth/<date>.tif``), counted over **exactly the pixels the run classified** on that date: the
date's mosaic pixels with a class (no-data, cloud and unlabelled pixels are left out on both
sides), in ground km² (:func:`~seaice_utils.core.areas.ground_pixel_areas`). The relative
error of total ice is then the classifier's error alone, not a difference in what was seen.

For notebook 06: :func:`season_plan` (the profile's season section, its defaults resolved),
:func:`load_season` (the synthetic season, or the collected catalogue ``season.catalogue`` names:
a :class:`CatalogueSeason`, which has no truth), :func:`hazy_dates`, :func:`season_methods`
(what runs, where), :func:`season_table` (:func:`season_error_table`, the errors of every run in
one table; without a truth :func:`season_area_table`, the areas alone), :func:`season_summary`
(the largest and mean errors per method, :func:`season_summary_lines` as text) and
:func:`season_record` (the run manifest's record). The figures are
:mod:`seaice_utils.evaluation.season_figures`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seaice_utils.core.classes import DISPLAY_ORDER, RANGE_KEYS, THICK, THIN
from seaice_utils.core.areas import ground_pixel_areas
from seaice_utils.core.mosaic import ClassLayer, mosaic_class_maps, read_class_layer
from seaice_utils.data.season import make_season
from seaice_utils.errors import InputError
from seaice_utils.report import shown_path

__all__ = ["season_errors", "SeasonPlan", "SeasonMethod", "season_plan", "hazy_dates",
           "season_methods", "season_error_table", "season_summary", "season_summary_lines",
           "season_record", "SEASON_ERROR_COLUMNS", "AREA_KEYS", "CatalogueSeason",
           "read_catalogue", "load_season", "has_truth", "season_area_table", "season_table",
           "season_columns", "SEASON_AREA_COLUMNS", "NO_TRUTH_NOTE"]

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
# a collected season (``season.catalogue``): scenes and masks, no truth
# --------------------------------------------------------------------------------------------

_DATE_COLUMNS = ("date", "acquisition_date", "datetime")
_SCENE_COLUMNS = ("scene", "path", "file", "filename", "image")


@dataclass(frozen=True)
class CatalogueSeason:
    """A collected season: its catalogue (``seaice collect``'s ``catalogue.csv`` or a season
    CSV), its dates (``datetime.date``), its scene rows (``date`` ISO, ``scene`` and
    ``cloud_mask`` as the catalogue names them, relative to its folder; ``cloud_mask`` "" when
    none) and the cloud threshold of the profile. It has no truth (:func:`has_truth`)."""

    catalogue: Path
    dates: tuple
    scenes: tuple
    cloud_probability: int = 20

    @property
    def root(self) -> Path:
        return self.catalogue.parent


def has_truth(season) -> bool:
    """Whether ``season`` has a truth to score against (the synthetic season has)."""
    return not isinstance(season, CatalogueSeason)


def _column(names, wanted, what: str, path: Path) -> str | None:
    low = {c.strip().lower(): c for c in names or ()}
    found = next((low[w] for w in wanted if w in low), None)
    if found is None and what:
        raise InputError(f"{str(path)!r}: no {what} column (one of {', '.join(wanted)})")
    return found


def read_catalogue(path, *, cloud_probability: int = 20) -> CatalogueSeason:
    """A collected catalogue as a :class:`CatalogueSeason`, its rows sorted by date and scene.

    Raises
    ------
    InputError
        No such file, no date or scene column, a bad date, a scene or mask not found, no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"season.catalogue: {str(path)!r} not found (run notebook 01 or "
                         f"`seaice collect` first)")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        dcol = _column(reader.fieldnames, _DATE_COLUMNS, "date", path)
        scol = _column(reader.fieldnames, _SCENE_COLUMNS, "scene-file", path)
        ccol = _column(reader.fieldnames, ("cloud_mask",), "", path)
        rows = []
        for i, r in enumerate(reader, start=2):
            try:
                day = _dt.date.fromisoformat((r[dcol] or "").strip()[:10]).isoformat()
            except ValueError:
                raise InputError(f"{str(path)!r} line {i}: {r[dcol]!r} is not an ISO date"
                                 ) from None
            row = {"date": day, "scene": (r[scol] or "").strip(),
                   "cloud_mask": (r.get(ccol) or "").strip() if ccol else ""}
            for key in ("scene", "cloud_mask"):
                if (key == "scene" or row[key]) and not (path.parent / row[key]).is_file():
                    raise InputError(f"{str(path)!r} line {i}: {key} {row[key]!r} not found")
            rows.append(row)
    if not rows:
        raise InputError(f"{str(path)!r} lists no scenes")
    rows.sort(key=lambda r: (r["date"], r["scene"]))
    dates = tuple(_dt.date.fromisoformat(d) for d in dict.fromkeys(r["date"] for r in rows))
    return CatalogueSeason(path, dates, tuple(rows), int(cloud_probability))


def _without_masks(season: CatalogueSeason, path: Path) -> Path:
    """A CSV of the catalogue's dates and scenes (relative to ``path``'s folder), no masks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["date", "scene"])
    wr.writerows([r["date"], os.path.relpath(season.root / r["scene"], path.parent)]
                 for r in season.scenes)
    text = buf.getvalue()
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def load_season(plan, outputs_dir):
    """The season of notebook 06: the collected catalogue ``season.catalogue`` names (relative
    to ``outputs_dir``) as a :class:`CatalogueSeason`, or (null) the synthetic season under
    ``<outputs>/data/season`` (:func:`~seaice_utils.data.season.make_season`)."""
    se = plan.settings
    if se.get("catalogue"):
        return read_catalogue(Path(outputs_dir) / se["catalogue"],
                              cloud_probability=se["cloud_probability"])
    return make_season(Path(outputs_dir) / "data" / "season", se["seed"], n_dates=se["n_dates"],
                       size=se["size"], pixel_m=se["pixel_m"])


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
        if not has_truth(season):
            masked = sum(bool(r["cloud_mask"]) for r in season.scenes)
            return (f"{len(season.dates)} dates, {len(season.scenes)} scenes ({masked} with a "
                    f"cloud mask) of the collected catalogue "
                    f"{shown_path(season.catalogue, outputs_dir)}; {sum(hazy.values())} dates "
                    f"with cloud in their masks (>= {season.cloud_probability} %); no truth")
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
    """Date -> whether any scene of the date is hazy (a synthetic scene's ``CLOUDY`` tag; for a
    :class:`CatalogueSeason`, a cloud-mask pixel at or above its ``cloud_probability``), in
    the order of the season's scenes."""
    import rasterio

    hazy: dict[str, bool] = {}
    if not has_truth(season):
        for row in season.scenes:
            cloud = False
            if row["cloud_mask"]:
                with rasterio.open(Path(season.root) / row["cloud_mask"]) as src:
                    cloud = bool((src.read(1) >= season.cloud_probability).any())
            hazy[row["date"]] = hazy.get(row["date"], False) or cloud
        return hazy
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
    A :class:`CatalogueSeason` runs on its catalogue into ``<outputs>/season/collected/<slug>/``;
    its run without masks reads ``no_cloud_mask.csv`` there (the catalogue's dates and scenes,
    written here), and is skipped when the catalogue names no mask.
    """
    root, out = Path(season.root), Path(outputs_dir) / "season"
    notes = []
    if has_truth(season):
        source = root / "season.csv"
        methods = {"auto-labels": SeasonMethod(source, None, out / "auto_labels"),
                   "auto-labels, no cloud mask": SeasonMethod(root / "scenes", None,
                                                              out / "auto_labels_no_mask")}
    else:
        source, out = season.catalogue, out / "collected"
        methods = {"auto-labels": SeasonMethod(source, None, out / "auto_labels")}
        if any(r["cloud_mask"] for r in season.scenes):
            methods["auto-labels, no cloud mask"] = SeasonMethod(
                _without_masks(season, out / "no_cloud_mask.csv"), None,
                out / "auto_labels_no_mask")
        else:
            notes.append("the catalogue names no cloud mask: the run without masks is the same "
                         "run, skipped")
    unet = Path(outputs_dir) / _UNET_AUTO
    if unet.is_file():
        methods["U-Net-Auto"] = SeasonMethod(source, unet, out / "unet_auto")
    else:
        notes.append(f"U-Net-Auto skipped: {shown_path(unet, outputs_dir)} not found "
                     f"(run notebook 04 first)")
    return methods, "; ".join(notes) or None


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


#: The columns of ``06_season_collected_areas.csv`` (a season without truth).
SEASON_AREA_COLUMNS = ["date", "method", "hazy", "thick_km2", "thin_km2", "water_km2", "ice_km2",
                       "observed_share", "cloud_share", "quality"]
#: What notebook 06 says when the season has no truth.
NO_TRUTH_NOTE = ("No truth for a collected catalogue: the areas and the coverage per date are "
                 "shown; the comparison with a truth (errors, their summary, a truth row in the "
                 "maps) is skipped. Only the synthetic season (season.catalogue: null) is scored.")


def season_area_table(runs: Mapping[str, Any], hazy: Mapping[str, bool]):
    """The recovered areas of every run (name -> a run with ``rows``: its
    ``season_areas.csv``) in one DataFrame of :data:`SEASON_AREA_COLUMNS`; no truth."""
    import pandas as pd

    rows = []
    for name, run in runs.items():
        for r in run.rows:
            rows.append({"date": r["date"], "method": name, "hazy": hazy.get(r["date"], False),
                         **{k: (r[k] if k == "quality" else float(r[k]))
                            for k in SEASON_AREA_COLUMNS[3:]}})
    return pd.DataFrame(rows, columns=SEASON_AREA_COLUMNS)


def season_table(season, runs: Mapping[str, Any], hazy: Mapping[str, bool]):
    """Notebook 06's table, its name under ``tables/`` and a note: with a truth
    :func:`season_error_table` as ``06_season_errors`` (note None); without one
    :func:`season_area_table` as ``06_season_collected_areas`` and :data:`NO_TRUTH_NOTE`."""
    if has_truth(season):
        return season_error_table(season, runs, hazy), "06_season_errors", None
    return season_area_table(runs, hazy), "06_season_collected_areas", NO_TRUTH_NOTE


def season_columns(table) -> list[str]:
    """The columns notebook 06 shows of :func:`season_table`'s table."""
    cols = SEASON_ERROR_COLUMNS if "rel_error_pct" in table else SEASON_AREA_COLUMNS
    return [c for c in cols if c in table]


def _round(x) -> float | None:
    return None if x is None else round(float(x), 3)


def season_summary(errors) -> dict[str, dict]:
    """Per method of :func:`season_error_table`: the dates of quality ``ok``, the largest
    relative error of total ice over them and over all dates, and the mean error on clear and
    on hazy dates (flagged dates included), in %, rounded to 0.001 (None where no date).
    Without a truth (:func:`season_area_table`): ``dates_ok`` and ``truth: False`` only."""
    summary = {}
    for name in dict.fromkeys(errors["method"]):
        a = errors[errors["method"] == name]
        g, hazy = a[a["quality"] == "ok"], a["hazy"].astype(bool)
        if "rel_error_pct" not in a:           # no truth: the ok dates alone
            summary[name] = {"dates_ok": int(len(g)), "truth": False}
            continue
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
        n = int((errors["method"] == name).sum())
        if s.get("truth") is False:
            out.append(f"{name:<28} {s['dates_ok']} of {n} dates ok; no truth: errors not "
                       f"computed")
            continue
        ok = s["max_abs_rel_error_ok_pct"]
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
                       "hazy_dates": sum(hazy.values()), "truth": has_truth(season)},
            "methods": list(runs),
            "unet_auto": shown_path(unet, outputs_dir) if unet.is_file() else None,
            "seconds": {n: round(r.seconds["total"], 2) for n, r in runs.items()},
            "flagged_dates": {r["date"]: r["quality"] for r in first.rows if r["quality"] != "ok"},
            "summary": dict(summary)}
