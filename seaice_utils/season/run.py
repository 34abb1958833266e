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
   pixel covers about 3.5 % more ground than its grid size says) and writes
   ``<out>/season_areas.csv`` and ``<out>/dates/<date>_classes.tif`` (a COG of the date's
   mosaic, tagged with its ``ACQUISITION_DATE`` and, when the scenes say so, its
   ``PLATFORM``);
4. **exports the season** (:mod:`seaice_utils.season.export`): a STAC Collection with an Item
   per date (``<out>/stac/``) and a CF-1.8 NetCDF cube (``<out>/season.nc``), so that pystac,
   stackstac, odc-stac and xarray open it in one line.

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
The classes come from the profile (``params``; default: the paper's constants); with a model and
no profile, the filter constants the model was trained with (as ``seaice predict``).

The output folder
-----------------
A season folder holds one season (:mod:`seaice_utils.season.folder`): ``season.json`` records
its scenes and settings. A rerun of the same scenes redoes exactly what changed (scenes whose
input or settings changed, dates whose mosaic changed); another season into the folder is
refused before any input is read, unless ``overwrite``, which removes the old season's files as
a set first. ``dates/`` and ``scenes/`` then hold exactly this season's files. A scene that
cannot be read is listed with its reason and the others are done (exit 1).
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
from seaice_utils.core.classes import DISPLAY_ORDER, NODATA, UNLABELLED, WATER
from seaice_utils.core.geotiff import class_map_cog
from seaice_utils.core.ledger import publish_if_changed
from seaice_utils.core.mosaic import (AREA_KEYS, ClassLayer, class_layer_header, common_crs,
                                      date_areas, footprint_region, mosaic_class_maps,
                                      read_class_layers, reproject_layer)
from seaice_utils.engines.base import JobSummary
from seaice_utils.engines.outputs import check_output_folder
from seaice_utils.engines.scene_outputs import CLASS_MAP_SUFFIX
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.inference.predict import predict_inputs, predict_options
from seaice_utils.labelling.jobs import run_label_job
from seaice_utils.labelling.settings import label_options
from seaice_utils.params import load_params
from seaice_utils.season.export import date_platforms, date_tags, export_season
from seaice_utils.season.folder import SeasonFolder
from seaice_utils.season.inputs import UNOBSERVED, missing_masks, season_inputs

__all__ = ["MIN_OBSERVED_SHARE", "AREAS_HEADER", "SeasonResult", "season_options", "run_season"]

#: A date whose mosaic observes less than this share of the region is flagged "low coverage".
MIN_OBSERVED_SHARE = 0.8
AREAS_HEADER = ["date", "n_scenes", "thick_km2", "thin_km2", "water_km2", "unlabelled_km2",
                "ice_km2", "observed_km2", "region_km2", "observed_share", "cloud_km2",
                "cloud_share", "cloud_masks", "quality"]


@dataclass
class SeasonResult:
    """What :func:`run_season` did: the per-date rows, the classification job and timings.

    ``rows`` are the rows of ``season_areas.csv`` as dicts (numbers as floats); ``job`` is the
    job layer's summary (:class:`~seaice_utils.engines.base.JobSummary`); ``seconds`` holds
    ``classify``, ``mosaic`` and ``total``; ``failures`` the scenes that failed (name, error):
    unreadable ones and those the job could not classify.
    """

    rows: list[dict]
    job: Any
    out_dir: Path
    seconds: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    dates_written: list = field(default_factory=list)
    exports_written: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def areas_csv(self) -> Path:
        return self.out_dir / "season_areas.csv"

    def lines(self) -> list[str]:
        """The per-date table, for a terminal."""
        keys = [AREA_KEYS[c] for c in DISPLAY_ORDER]
        out = [f"{'date':<10} {'scenes':>6} "
               + " ".join(f"{k[:-len('_km2')]:>9}" for k in keys) + f" {'ice':>9} "
               f"{'observed':>9} {'share':>6} {'cloud':>6}  quality   (km2)"]
        for r in self.rows:
            out.append(f"{r['date']:<10} {r['n_scenes']:>6} "
                       + " ".join(f"{r[k]:9.2f}" for k in keys) + f" {r['ice_km2']:9.2f} "
                       f"{r['observed_km2']:9.2f} {r['observed_share']:6.3f} "
                       f"{r['cloud_share']:6.3f}  {r['quality']}")
        return out


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(AREAS_HEADER)
    for r in rows:
        w.writerow([f"{r[k]:.6f}" if isinstance(r[k], float) else r[k] for k in AREAS_HEADER])
    return buf.getvalue().encode()


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
    if mask_path == UNOBSERVED:                  # no mask, season.missing_cloud_mask: unobserved
        cloudy = layer.classes != NODATA
    else:
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


def season_options(params: dict, model=None, *, filter_from_model: bool = False):
    """How a season's scenes are classified: the label options of the profile (auto-labels), or
    the prediction options of ``model`` built exactly as ``seaice predict`` builds them (with
    ``filter_from_model``, the filter constants recorded with the model)."""
    if model is None:
        return label_options(params)
    return predict_options(params, model=model, filter_from_model=filter_from_model,
                           geotiff=True)


def _classify(files, scenes_dir: Path, model, opts, engine: str, workers: int, resume: bool,
              progress: bool, overwrite: bool, spark) -> JobSummary:
    if model is None:
        extra = {"spark": spark} if spark is not None else {}
        return run_label_job(files, scenes_dir, opts, engine=engine, workers=workers,
                             resume=resume, progress=progress, overwrite=overwrite,
                             summary_csv=True, **extra)
    return predict_inputs(model, files, scenes_dir, opts, engine=engine, workers=workers,
                          resume=resume, progress=progress, overwrite=overwrite, spark=spark)


def run_season(input, out_dir, *, model=None, labels: str = "auto", params=None,
               engine: str | None = None, workers: int | None = None, resume: bool = False,
               progress: bool = True, cloud_mask_dir=None, overwrite: bool = False,
               filter_from_model: bool | None = None, spark=None) -> SeasonResult:
    """Classify a season's scenes, mosaic each date, write its class areas (see the module).

    Parameters
    ----------
    input : path
        A folder of georeferenced scenes or a season / catalogue CSV
        (:func:`~seaice_utils.season.inputs.season_scenes`).
    out_dir : path
        Output folder: ``season.json``, ``scenes/``, ``dates/``, ``season_areas.csv``.
    model : path, optional
        A trained U-Net (``.keras``); default: auto-labels.
    labels : {"auto"}
        The labels without a model.
    params : dict or path, optional
        A loaded profile, or a profile file or name; default: the paper's defaults.
    engine, workers : optional
        As for the job layer; default: the profile's ``season.engine`` / ``season.workers``
        (0: all cores).
    resume : bool
        Redo no scene whose outputs are complete and made the same way (a rerun of the season
        the folder holds always resumes).
    progress : bool
    cloud_mask_dir : path, optional
        A folder of cloud masks named like the scenes; a CSV input's ``cloud_mask`` column is
        read anyway. A scene without a mask then follows ``season.missing_cloud_mask``.
    overwrite : bool
        Replace another season the folder holds (its files as a set), and files seaice did not
        write that an output would replace.
    filter_from_model : bool, optional
        With a model: its recorded filter constants replace the profile's (default: when no
        profile was given, as ``seaice predict``).
    spark : SparkSession, optional
        For ``engine="spark"``: this session (a cluster's) instead of ``local[workers]``.

    Returns
    -------
    SeasonResult

    Raises
    ------
    InputError
        An output folder that is a file or cannot be written, another season in it (without
        ``overwrite``), bad input (see :func:`~seaice_utils.season.inputs.season_scenes`), a
        scene without its cloud mask (``season.missing_cloud_mask: error``), class maps not on
        one grid, no scene classified.
    ParamsError
        A bad profile, engine or ``labels``.
    """
    t0 = time.perf_counter()
    if model is None and labels != "auto":
        raise ParamsError(f"labels must be 'auto' without a model (got {labels!r})")
    out = check_output_folder(out_dir)           # before any input is read
    if filter_from_model is None:
        filter_from_model = params is None
    if not isinstance(params, dict):
        params = load_params(params)
    engine = engine or params["season"]["engine"]
    workers = params["season"]["workers"] if workers is None else workers
    failures: list = []
    scenes, masks = season_inputs(input, cloud_mask_dir, failures)
    masks = missing_masks(scenes, masks, params["season"]["missing_cloud_mask"],
                          given=bool(masks) or cloud_mask_dir is not None)
    threshold = int(params["season"]["cloud_probability"])
    opts = season_options(params, model, filter_from_model=filter_from_model)
    folder = SeasonFolder(out)
    same = folder.open(scenes, opts, model, overwrite=overwrite)
    job = _classify([f for _, f in scenes], folder.scenes_dir, model, opts, engine, workers,
                    resume or same, progress, overwrite, spark)
    failures += list(job.failures)
    t1 = time.perf_counter()
    usable = set(job.done) | set(job.skipped)
    by_date: dict[str, list[Path]] = {}
    for day, f in scenes:
        tif = folder.scenes_dir / f"{f.stem}{CLASS_MAP_SUFFIX}"
        if f.stem in usable and tif.is_file():
            by_date.setdefault(day.isoformat(), []).append(tif)
    if not by_date:
        raise InputError(f"no scene of {str(input)!r} was classified into a georeferenced "
                         f"class map ({len(failures)} failed"
                         + (f"; {failures[0][0]}: {failures[0][1]}" if failures else "") + ")")
    platforms = date_platforms(scenes)
    rows, written = _mosaic_dates(by_date, masks, threshold, params, folder, platforms)
    inputs = {f"{f.stem}{CLASS_MAP_SUFFIX}": f for _, f in scenes}
    exported = export_season(folder, rows, {d: [(inputs[p.name], p) for p in sorted(paths)]
                                            for d, paths in by_date.items()}, platforms)
    folder.finish(rows)
    t2 = time.perf_counter()
    return SeasonResult(rows=rows, job=job, out_dir=out, failures=failures,
                        dates_written=written, exports_written=exported,
                        seconds={"classify": t1 - t0, "mosaic": t2 - t1, "total": t2 - t0})


def _mosaic_dates(by_date: dict, masks: dict, threshold: int, params: dict,
                  folder: "SeasonFolder", platforms: dict) -> tuple[list[dict], list[str]]:
    """Mosaic every date on the season grid; write its COG when changed and the areas CSV.

    One date's class maps are in memory at a time: the season grid and region come from the
    maps' grids (their headers; reprojected footprints one by one when the CRSs differ)."""
    heads = {d: [class_layer_header(p) for p in sorted(paths, key=lambda p: (Path(p).name,
                                                                               str(p)))]
             for d, paths in by_date.items()}
    every = [layer for d in sorted(heads) for layer in heads[d]]
    crs = common_crs(every, params["season"]["crs"])
    size = min(abs(x.transform[0]) for x in every)
    if crs is None:
        feet = [(x.transform, x.classes.shape) for x in every]
    else:                        # several CRSs: one grid, nearest neighbour
        feet = []
        for x in every:
            foot = reproject_layer(ClassLayer(np.zeros(x.classes.shape, np.uint8), x.transform,
                                              x.crs, x.name), crs, size)
            feet.append((foot.transform, foot.classes != NODATA))
    grid_t, region = footprint_region(feet)
    del feet
    grid = (grid_t, *region.shape)
    areas = ground_pixel_areas(grid_t, crs or every[0].crs, region.shape)
    folder.dates_dir.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for day in sorted(by_date):
        pairs = [_mask_clouds(x, masks.get(x.name[:-len(CLASS_MAP_SUFFIX)]), threshold)
                 for x in read_class_layers(by_date[day])]
        if crs is not None:
            pairs = [tuple(None if x is None else reproject_layer(x, crs, size) for x in p)
                     for p in pairs]
        row, m = _date_row(day, pairs, grid, region, areas)
        rows.append(row)
        cog = class_map_cog(m.classes, crs=m.crs, transform=m.transform,
                            tags=date_tags(day, platforms.get(day)))
        if publish_if_changed(folder.date_path(day), cog):
            written.append(day)
    publish_if_changed(folder.areas_csv, _csv_bytes(rows))
    return rows, written
