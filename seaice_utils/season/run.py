"""A season of sea ice, end to end: classify every scene, mosaic each date, tabulate its areas.

:func:`run_season` takes the dated scenes of one region (:func:`season_scenes`: a folder of
georeferenced scenes, or a ``season.csv`` / catalogue CSV) and

1. **classifies every scene** on the engine layer, by auto-labelling
   (:func:`~seaice_utils.labelling.jobs.run_label_job`, ``labels="auto"``) or with a trained
   U-Net (:func:`~seaice_utils.inference.predict.predict_inputs`, ``model=...``), into
   ``<out>/scenes/`` (one ``<scene>_classes.tif`` COG each, plus the job's other outputs);
   ``resume=True`` redoes no scene whose outputs are complete and made the same way;
2. **mosaics each date** onto one season grid with
   :func:`~seaice_utils.core.mosaic.mosaic_class_maps`: the smallest grid-aligned rectangle that
   holds every scene footprint of the season. The *region* is the union of those footprints
   (no-data corners included), the same pixels on every date, so that the observed share of
   each date is relative to the same region;
   scenes in several CRSs (neighbouring UTM zones) are first put on one grid of
   ``season.crs`` (default: the equal-area EASE-Grid 2.0 of their hemisphere) by nearest
   neighbour (:func:`~seaice_utils.core.mosaic.reproject_layer`), cloud masks applied first;
3. **counts each date's areas** with :func:`~seaice_utils.core.mosaic.date_areas` inside the
   region, in ground km² (each pixel's ground area,
   :func:`~seaice_utils.core.areas.ground_pixel_areas`: on a polar stereographic grid near 78 S a
   pixel covers about 3.5 % more ground than its grid size says) and writes ``<out>/season_areas.csv`` and ``<out>/dates/<date>_classes.tif`` (a COG of
   the date's mosaic).

Overlap rule
------------
It is the mosaic's: per pixel, the **first scene in file-name order** that has a class there
(water, thin or thick ice) gives the date's class; a no-data, unlabelled or cloudy pixel of one
scene is filled by the next scene that has a class. Overlaps are therefore counted once, and
no-data is never counted as any class (least of all as water).

Clouds
------
Optical classes are wrong under cloud: thin haze lifts dark open water into the thin-ice range.
A scene may come with a **cloud mask** on its grid, a cloud probability in percent as
Sentinel-2 Level-2A products carry one (``MSK_CLDPRB``; ``s2cloudless`` gives the same):
a CSV input's ``cloud_mask`` column names it, or ``cloud_mask_dir`` holds masks named like the
scenes. Pixels at or above ``season.cloud_probability`` (default 20) are **cloud**: not
observed, filled by another scene of the date where one sees the pixel clear. Haze below the
threshold is not removed. Without masks nothing is removed and ``cloud_masks`` says 0.

``season_areas.csv``
--------------------
One row per date: ``date, n_scenes`` (the class maps mosaicked), ``thick_km2, thin_km2,
water_km2, unlabelled_km2`` (seen, not cloudy, left without a class by the thresholds),
``ice_km2`` (thick + thin), ``observed_km2`` (the three classes), ``region_km2``,
``observed_share`` (observed / region area), ``cloud_km2`` and ``cloud_share`` (the region's pixels
hidden by cloud in every scene that saw them: the date's cloud estimate), ``cloud_masks`` (the
scenes of the date that had one) and ``quality``: ``ok`` when the observed share is at least
:data:`MIN_OBSERVED_SHARE` (0.8); else ``cloudy`` when the clouds are what took it below
(observed + cloud share >= 0.8), or ``low coverage`` (the date's areas then describe only part
of the region and are not comparable with the others). Numbers have six decimals. The mosaics
are cheap and are recomputed on every run (so a new cloud threshold needs no reclassifying);
the CSV and the date files are written atomically, and a date file only when its bytes
changed. In ``dates/<date>_classes.tif`` cloud is 254, like unlabelled.

Thresholds
----------
The classes come from the profile (``params``; default: the paper's constants).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seaice_utils.core.areas import ground_pixel_areas
from seaice_utils.core.classes import NODATA, UNLABELLED, WATER
from seaice_utils.core.geotiff import class_map_cog
from seaice_utils.core.mosaic import (ClassLayer, common_crs, date_areas, mosaic_class_maps,
                                      read_class_layers, reproject_layer, scene_date)
from seaice_utils.core.scenes import atomic_write_bytes, list_inputs
from seaice_utils.errors import InputError, ParamsError

__all__ = ["MIN_OBSERVED_SHARE", "AREAS_HEADER", "SeasonResult", "season_scenes", "cloud_masks",
           "run_season"]

#: A date whose mosaic observes less than this share of the region is flagged "low coverage".
MIN_OBSERVED_SHARE = 0.8
AREAS_HEADER = ["date", "n_scenes", "thick_km2", "thin_km2", "water_km2", "unlabelled_km2",
                "ice_km2", "observed_km2", "region_km2", "observed_share", "cloud_km2",
                "cloud_share", "cloud_masks", "quality"]
_DATE_COLUMNS = ("date", "acquisition_date", "datetime")
_SCENE_COLUMNS = ("scene", "path", "file", "filename", "image")
_CLOUD_COLUMNS = ("cloud_mask", "cloud_probability", "cloud")
_CLASSES_SUFFIX = "_classes.tif"


@dataclass
class SeasonResult:
    """What :func:`run_season` did: the per-date rows, the classification job and timings.

    ``rows`` are the rows of ``season_areas.csv`` as dicts (numbers as floats); ``job`` is the
    job layer's summary (a ``JobSummary`` or ``PredictSummary``); ``seconds`` holds
    ``classify``, ``mosaic`` and ``total``; ``failures`` the scenes that failed (name, error).
    """

    rows: list[dict]
    job: Any
    out_dir: Path
    seconds: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    dates_written: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def areas_csv(self) -> Path:
        return self.out_dir / "season_areas.csv"

    def lines(self) -> list[str]:
        """The per-date table, for a terminal."""
        out = [f"{'date':<10} {'scenes':>6} {'thick':>9} {'thin':>9} {'water':>9} {'ice':>9} "
               f"{'observed':>9} {'share':>6} {'cloud':>6}  quality   (km2)"]
        for r in self.rows:
            out.append(f"{r['date']:<10} {r['n_scenes']:>6} {r['thick_km2']:9.2f} "
                       f"{r['thin_km2']:9.2f} {r['water_km2']:9.2f} {r['ice_km2']:9.2f} "
                       f"{r['observed_km2']:9.2f} {r['observed_share']:6.3f} "
                       f"{r['cloud_share']:6.3f}  {r['quality']}")
        return out


def _pick(columns, wanted, what: str, path: Path) -> str:
    low = {c.strip().lower(): c for c in columns or ()}
    for w in wanted:
        if w in low:
            return low[w]
    raise InputError(f"{str(path)!r}: no {what} column (one of {', '.join(wanted)}; "
                     f"got {', '.join(columns or ()) or 'none'})")


def _from_csv(path: Path) -> tuple[list[tuple], dict]:
    import datetime as _dt

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        dcol = _pick(reader.fieldnames, _DATE_COLUMNS, "date", path)
        scol = _pick(reader.fieldnames, _SCENE_COLUMNS, "scene-file", path)
        try:
            ccol = _pick(reader.fieldnames, _CLOUD_COLUMNS, "cloud-mask", path)
        except InputError:
            ccol = None
        out, masks = [], {}
        for i, row in enumerate(reader, start=2):
            text, name = (row.get(dcol) or "").strip(), (row.get(scol) or "").strip()
            try:
                day = _dt.date.fromisoformat(text[:10])
            except ValueError:
                raise InputError(f"{str(path)!r} line {i}: {dcol} {text!r} is not an ISO "
                                 f"date") from None
            if not name:
                raise InputError(f"{str(path)!r} line {i}: empty {scol}")
            scene = path.parent / name
            if not scene.is_file():
                raise InputError(f"{str(path)!r} line {i}: scene file not found: {scene}")
            out.append((day, scene))
            mask = (row.get(ccol) or "").strip() if ccol else ""
            if mask:
                if not (path.parent / mask).is_file():
                    raise InputError(f"{str(path)!r} line {i}: cloud mask not found: "
                                     f"{path.parent / mask}")
                masks[scene.stem] = path.parent / mask
    if not out:
        raise InputError(f"{str(path)!r} lists no scenes")
    return out, masks


def _season_inputs(input, folder=None) -> tuple[list[tuple], dict]:
    """The season's sorted (date, path) scenes and its cloud masks (stem -> path), the input
    read once: see :func:`season_scenes` and :func:`cloud_masks`."""
    p = Path(input)
    masks: dict = {}
    if p.is_dir():
        found = [(scene_date(f), f) for f in list_inputs(p)]
    elif p.is_file() and p.suffix.lower() == ".csv":
        found, masks = _from_csv(p)
    elif p.exists():
        raise InputError(f"{str(p)!r}: a season is a folder of scenes or a CSV of them")
    else:
        raise InputError(f"season input not found: {str(p)!r}")
    seen: dict[str, Path] = {}
    for _, f in found:
        if f.stem in seen and seen[f.stem] != f:
            raise InputError(f"two scenes named {f.stem!r}: {seen[f.stem]} and {f}")
        seen[f.stem] = f
    scenes = sorted(set(found), key=lambda df: (df[0], df[1].name, str(df[1])))
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"cloud-mask folder not found: {str(folder)!r}")
        for _, scene in scenes:
            cand = folder / scene.name
            if cand.is_file():
                masks[scene.stem] = cand
    return scenes, masks


def cloud_masks(input, folder=None) -> dict:
    """Scene stem -> cloud-mask file of a season: the CSV's ``cloud_mask`` column (also
    ``cloud_probability``, ``cloud``; relative to the CSV's folder), or, from ``folder``, the
    file with the scene's name. Empty when there are none.

    Raises
    ------
    InputError
        As :func:`season_scenes`; a listed mask that is missing, a ``folder`` that is not one.
    """
    return _season_inputs(input, folder)[1]


def season_scenes(input) -> list[tuple]:
    """The (date, path) of every scene of a season, sorted by date, then file name.

    Parameters
    ----------
    input : path
        A folder of georeferenced scenes (each dated by its tags or its name,
        :func:`~seaice_utils.core.mosaic.scene_date`), or a CSV (``season.csv``, a catalogue)
        with a date column (``date``, ``acquisition_date``, ``datetime``) and a scene-file
        column (``scene``, ``path``, ``file``, ``filename``, ``image``) relative to the CSV's
        folder.

    Raises
    ------
    InputError
        Missing input, a scene without a date (named), a CSV without those columns, a scene
        file that is not there, two scenes with the same file stem.
    """
    return _season_inputs(input)[0]


def _classify(files, scenes_dir: Path, model, labels: str, params, engine: str, workers: int,
              resume: bool, progress: bool):
    if model is None:
        if labels != "auto":
            raise ParamsError(f"labels must be 'auto' without a model (got {labels!r})")
        from seaice_utils.labelling.jobs import run_label_job
        from seaice_utils.labelling.pipeline import LabelOptions
        from seaice_utils.labelling.settings import filter_params, thresholds

        opts = LabelOptions(filter_params=filter_params(params), thresholds=thresholds(params))
        return run_label_job(files, scenes_dir, opts, engine=engine, workers=workers,
                             resume=resume, progress=progress)
    from seaice_utils.inference.predict import predict_inputs, predict_options

    return predict_inputs(model, files, scenes_dir, predict_options(params, geotiff=True),
                          engine=engine, workers=workers, resume=resume, progress=progress)


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(AREAS_HEADER)
    for r in rows:
        w.writerow([f"{r[k]:.6f}" if isinstance(r[k], float) else r[k] for k in AREAS_HEADER])
    return buf.getvalue().encode()


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write_bytes(path, data)
    return True


def _read_mask(path: Path, layer: ClassLayer) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        t = tuple(src.transform)[:6]
        if src.count != 1 or (src.height, src.width) != layer.classes.shape or not np.allclose(
                t, layer.transform, rtol=0, atol=1e-6 * abs(t[0])):
            raise InputError(f"cloud mask {str(path)!r} is not one band on the grid of its scene "
                             f"({layer.name}: {layer.classes.shape[1]} x "
                             f"{layer.classes.shape[0]} px, transform {layer.transform})")
        return src.read(1)


def _mask_clouds(layer: ClassLayer, mask_path, threshold: int):
    """The layer with cloudy class pixels set unlabelled, and its cloud layer (0 where the
    scene saw cloud over data, no-data elsewhere)."""
    if mask_path is None:
        return layer, None
    cloudy = (_read_mask(Path(mask_path), layer) >= threshold) & (layer.classes != NODATA)
    classes = layer.classes.copy()
    classes[cloudy] = UNLABELLED
    cloud = np.where(cloudy, np.uint8(WATER), np.uint8(NODATA))
    return (ClassLayer(classes, layer.transform, layer.crs, layer.name),
            ClassLayer(cloud, layer.transform, layer.crs, layer.name))


def _date_row(day: str, pairs: list[tuple], grid, region: np.ndarray, areas: np.ndarray):
    m = mosaic_class_maps([p[0] for p in pairs], grid=grid)
    a = date_areas(m, areas, region)
    clouds = [p[1] for p in pairs if p[1] is not None]
    cloud_km2 = 0.0
    if clouds:
        seen_cloud = mosaic_class_maps(clouds, grid=grid).classes == WATER
        cloud_km2 = float(areas[seen_cloud & region & (m.classes == UNLABELLED)].sum()) / 1e6
    row = {"date": day, "n_scenes": len(pairs)}
    for k in AREAS_HEADER[2:]:
        if k in a:
            row[k] = float(a[k])
    row["unlabelled_km2"] -= cloud_km2
    row["ice_km2"] = row["thick_km2"] + row["thin_km2"]
    row["observed_share"] = float(a["observed_share"])
    row["cloud_km2"] = cloud_km2
    row["cloud_share"] = cloud_km2 / row["region_km2"] if row["region_km2"] else 0.0
    row["cloud_masks"] = len(clouds)
    if row["observed_share"] >= MIN_OBSERVED_SHARE:
        row["quality"] = "ok"
    elif row["observed_share"] + row["cloud_share"] >= MIN_OBSERVED_SHARE:
        row["quality"] = "cloudy"
    else:
        row["quality"] = "low coverage"
    return row, m


def run_season(input, out_dir, *, model=None, labels: str = "auto", params=None,
               engine: str = "sequential", workers: int = 1, resume: bool = False,
               progress: bool = True, cloud_mask_dir=None) -> SeasonResult:
    """Classify a season's scenes, mosaic each date, write its class areas (see the module).

    Parameters
    ----------
    input : path
        A folder of georeferenced scenes or a season / catalogue CSV (:func:`season_scenes`).
    out_dir : path
        Output folder: ``scenes/``, ``dates/``, ``season_areas.csv``.
    model : path, optional
        A trained U-Net (``.keras``); default: auto-labels.
    labels : {"auto"}
        The labels without a model.
    params : dict or path, optional
        A loaded profile, or a profile file or name; default: the paper's defaults.
    engine, workers, resume, progress
        As for the job layer (:func:`~seaice_utils.labelling.jobs.run_label_job`).
    cloud_mask_dir : path, optional
        A folder of cloud masks named like the scenes (:func:`cloud_masks`); a CSV input's
        ``cloud_mask`` column is read anyway.

    Returns
    -------
    SeasonResult

    Raises
    ------
    InputError
        Bad input (see :func:`season_scenes`), class maps not on one grid, no scene classified.
    ParamsError
        A bad profile, engine or ``labels``.
    """
    from seaice_utils.params import load_params

    t0 = time.perf_counter()
    if not isinstance(params, dict):
        params = load_params(params)
    scenes, masks = _season_inputs(input, cloud_mask_dir)
    threshold = int(params["season"]["cloud_probability"])
    out = Path(out_dir)
    scenes_dir, dates_dir = out / "scenes", out / "dates"
    job = _classify([f for _, f in scenes], scenes_dir, model, labels, params, engine,
                    workers, resume, progress)
    t1 = time.perf_counter()
    usable = set(job.done) | set(job.skipped)
    by_date: dict[str, list[Path]] = {}
    for day, f in scenes:
        tif = scenes_dir / f"{f.stem}_classes.tif"
        if f.stem in usable and tif.is_file():
            by_date.setdefault(day.isoformat(), []).append(tif)
    if not by_date:
        raise InputError(f"no scene of {str(input)!r} was classified into a georeferenced "
                         f"class map ({len(job.failures)} failed)")
    layers = {d: read_class_layers(paths) for d, paths in by_date.items()}
    pairs = {d: [_mask_clouds(x, masks.get(x.name[:-len(_CLASSES_SUFFIX)]), threshold)
                 for x in ls] for d, ls in layers.items()}
    every = [layer for d in sorted(layers) for layer in layers[d]]
    feet = [ClassLayer(np.zeros_like(x.classes), x.transform, x.crs, x.name) for x in every]
    crs = common_crs(every, params["season"]["crs"])
    if crs is not None:          # several CRSs: one grid, nearest neighbour
        size = min(abs(x.transform[0]) for x in every)
        pairs = {d: [tuple(None if x is None else reproject_layer(x, crs, size) for x in p)
                     for p in ps] for d, ps in pairs.items()}
        feet = [reproject_layer(x, crs, size) for x in feet]
    footprints = mosaic_class_maps(feet)
    region = footprints.classes != 255
    grid = (footprints.transform, *region.shape)
    areas = ground_pixel_areas(footprints.transform, footprints.crs, region.shape)
    dates_dir.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for day in sorted(layers):
        row, m = _date_row(day, pairs[day], grid, region, areas)
        rows.append(row)
        cog = class_map_cog(m.classes, crs=m.crs, transform=m.transform)
        if _write_if_changed(dates_dir / f"{day}_classes.tif", cog):
            written.append(day)
    _write_if_changed(out / "season_areas.csv", _csv_bytes(rows))
    t2 = time.perf_counter()
    return SeasonResult(rows=rows, job=job, out_dir=out, failures=list(job.failures),
                        dates_written=written,
                        seconds={"classify": t1 - t0, "mosaic": t2 - t1, "total": t2 - t0})
