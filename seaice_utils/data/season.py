"""A synthetic season of sea ice: dated, overlapping Sentinel-2-like scenes of one region.

:func:`make_season` draws, from a seed, one region on a polar stereographic grid (EPSG:3031,
40 m pixels by default) seen on ``n_dates`` (12-20) dates spread over November and December. Each
date is seen by one to three scenes, windows of the region grid whose footprints overlap.

How a season is made
--------------------
1. **Truth first.** One smooth random field (three octaves of
   :func:`~seaice_utils.data.synthetic_noise.noise_field`) larger than the region drifts over it:
   date ``i`` sees the field shifted by a cumulative drift of 0-3 px per date in each axis. The
   region's class map of date ``i`` thresholds that window at the levels that give exactly the
   season's curve: thick ice is the ``round(thick_share * N)`` highest pixels, thin ice the
   next ``round(thin_share * N)``, water the rest (ties broken by a stable sort, so the shares
   are exact). The curve (:func:`season_curve`): thick ice falls linearly from 0.70 to 0.40 of
   the region, thin ice grows from 0.15 to 0.35, water is the rest (0.15 to 0.25).
2. **Colours second.** A documented, simple rendering of each date's truth (this is not
   :func:`~seaice_utils.data.synthetic.synthesize_scene`, whose rendering needs its own
   geometry), with the embedded dataset's brightness ranges (V = max(R, G, B), 5th-95th
   percentiles on clear scenes): thick ice bright bluish white (V 218-248), thin ice grey-blue
   (V 102-150), open water blue-black (V 16-27, below the paper's water ceiling V 30 but for
   about 4 % of its pixels, nearly all at ice edges), each with smooth texture, a small blur
   (``_PSF_SIGMA`` 0.5 px: mixed pixels at the boundaries, which colour thresholds read as the
   brighter class when they are partly ice) and uniform sensor noise per scene. Some dates
   (about one in three) are cloudy: their scenes get a thin cloud, an alpha blend toward haze
   (alpha up to 0.5) over part of the scene; clouds never change the truth. About one scene in
   four carries a black no-data wedge in one corner (value 0 in every band; the truth of those
   pixels is not observed).
3. **A cloud mask per scene**, as Sentinel-2 Level-2A products carry one (``MSK_CLDPRB``, the
   cloud probability in percent): here ``100 * min(1, alpha / CLOUD_ALPHA_FULL)`` with
   ``CLOUD_ALPHA_FULL`` 0.25, 0 on clear scenes. Haze thinner than the mask threshold a user
   picks (:mod:`seaice_utils.season`, ``season.cloud_probability``) stays in the image and
   still lifts dark water into the thin-ice range.

Files (under ``root``)
----------------------
* ``scenes/<date>_<k>.tif`` (``k`` = 1, 2, 3): 8-bit RGB GeoTIFF, CRS EPSG:3031, the window's
  transform, nodata 0, tags ``DATE`` and ``ACQUISITION_DATE`` (ISO date);
* ``clouds/<date>_<k>.tif``: the scene's cloud probability (uint8, percent), same grid;
* ``truth/<date>.tif``: the region's truth (uint8, 0 water, 1 thin, 2 thick) on the region grid;
* ``season.csv``: ``date, scene, cloud_mask, left, bottom, right, top, crs`` (footprint bounds
  in metres), the input of ``seaice season``;
* ``truth_areas.csv``: per date the true km² of thick, thin and water over the whole region and
  over the observed part (the region pixels that at least one scene sees, outside its wedge;
  clouds not removed), and the observed share (of the area); ground km², each pixel's ground
  area (:func:`~seaice_utils.core.areas.ground_pixel_areas`, about 3.5 % more than
  ``pixel_area_m2`` at this latitude)
  (:func:`seaice_utils.evaluation.season.season_errors` counts the truth over exactly the
  pixels a season run classified);
* ``season.json``: the arguments, so that a rerun with other arguments is refused.

Existing files are kept (resume); a complete season is returned without drawing anything. The
same arguments give byte-identical files. Twelve dates of the default 256 px region (about 28
scenes and their masks, 3.4 MB) take about 0.8 s; a 512 px region about 2 s.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seaice_utils.core.areas import ground_pixel_areas
from seaice_utils.core.classes import NODATA, THICK, THIN, WATER
from seaice_utils.core.mosaic import date_areas
from seaice_utils.data.synthetic_noise import noise_field, smooth_noise
from seaice_utils.errors import InputError

__all__ = ["Season", "make_season", "season_curve", "read_season_csv", "read_truth_areas",
           "render_scene", "SEASON_VERSION", "SEASON_CRS"]

SEASON_VERSION = "3"
SEASON_CRS = "EPSG:3031"
#: Top-left corner of the region (m, EPSG:3031): the western Ross Sea, near 77 S.
_ORIGIN = (-400000.0, -1200000.0)
_MARGIN = 64                          # field margin for the drift (px)
_COLOURS = {THICK: (218.0, 226.0, 234.0), THIN: (96.0, 110.0, 126.0), WATER: (8.0, 13.0, 20.0)}
_TEXTURE = {THICK: 9.0, THIN: 14.0, WATER: 2.0}
_OCTAVES = ((3.0, 1.0), (10.0, 0.5), (32.0, 0.1))   # (size / scale, weight) of the truth field
_PSF_SIGMA = 0.5                      # px: mixed pixels at the class boundaries
#: Haze opacity read as certain cloud by the synthetic cloud probability (100 %).
CLOUD_ALPHA_FULL = 0.25
_HAZE = np.array([232.0, 236.0, 240.0], np.float32)
_AREA_FIELDS = ("thick_km2", "thin_km2", "water_km2")


@dataclass(frozen=True)
class Season:
    """A season on disk: its root, dates, scene rows (``season.csv``) and true areas."""

    root: Path
    dates: tuple
    scenes: tuple
    truth_areas: tuple
    transform: tuple
    shape: tuple
    crs: str = SEASON_CRS

    @property
    def pixel_area_m2(self) -> float:
        """A pixel's area on the grid (not on the ground: see ``ground_pixel_areas``)."""
        return abs(self.transform[0] * self.transform[4])


def season_curve(n_dates: int) -> list[tuple[float, float, float]]:
    """(thick, thin, water) shares of the region on each of ``n_dates`` dates."""
    out = []
    for i in range(n_dates):
        x = i / (n_dates - 1) if n_dates > 1 else 0.0
        thick, thin = 0.70 - 0.30 * x, 0.15 + 0.20 * x
        out.append((thick, thin, 1.0 - thick - thin))
    return out


def _season_dates(n_dates: int, year: int) -> list[_dt.date]:
    start = _dt.date(year, 11, 1)
    days = np.round(np.linspace(0, 60, n_dates)).astype(int)
    return [start + _dt.timedelta(days=int(d)) for d in days]


def _check(seed, n_dates, size, pixel_m, year) -> None:
    for key, v, lo, hi in (("seed", seed, 0, 2**32 - 1), ("n_dates", n_dates, 12, 20),
                           ("size", size, 128, 2048), ("year", year, 2015, 2100)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise InputError(f"{key} must be an integer in {lo}..{hi} (got {v!r})")
    if isinstance(pixel_m, bool) or not isinstance(pixel_m, (int, float)) or not (
            np.isfinite(pixel_m) and 10 <= pixel_m <= 1000):
        raise InputError(f"pixel_m must be a number of metres in 10..1000 (got {pixel_m!r})")


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------

def _plan(rng: np.random.Generator, n_dates: int, size: int) -> list[dict]:
    """Per date: drift, cloudiness and the scene windows (row, col, h, w, wedge)."""
    plan, dy, dx = [], 0, 0
    for i in range(n_dates):
        if i:
            dy += int(rng.integers(0, 4))
            dx += int(rng.integers(0, 4))
        n_scenes = int(rng.choice([1, 2, 3], p=[0.15, 0.35, 0.5]))
        cloudy = bool(rng.random() < 0.35)
        windows = []
        for _ in range(n_scenes):
            h = int(rng.integers(size * 12 // 16, size * 15 // 16 + 1))
            w = int(rng.integers(size * 12 // 16, size * 15 // 16 + 1))
            r, c = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            wedge = None
            if rng.random() < 0.25:
                wedge = (int(rng.integers(4)), *(float(v) for v in rng.uniform(0.3, 0.6, 2)))
            windows.append((r, c, h, w, wedge))
        plan.append(dict(drift=(min(dy, _MARGIN), min(dx, _MARGIN)), cloudy=cloudy,
                         windows=windows, seed=int(rng.integers(2**31))))
    return plan


def _truth(field: np.ndarray, drift, size: int, shares) -> np.ndarray:
    dy, dx = drift
    win = field[_MARGIN - dy:_MARGIN - dy + size, _MARGIN - dx:_MARGIN - dx + size]
    order = np.argsort(-win.ravel(), kind="stable")
    n = size * size
    n_thick, n_thin = int(round(shares[0] * n)), int(round(shares[1] * n))
    flat = np.full(n, WATER, np.uint8)
    flat[order[:n_thick]] = THICK
    flat[order[n_thick:n_thick + n_thin]] = THIN
    return flat.reshape(size, size)


def _wedge_mask(h: int, w: int, wedge) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    if wedge is not None:
        corner, fa, fb = wedge
        a, b = fa * w, fb * h
        xs, ys = w - 1, h - 1
        tri = [[(0, 0), (a, 0), (0, b)], [(xs, 0), (xs - a, 0), (xs, b)],
               [(0, ys), (a, ys), (0, ys - b)], [(xs, ys), (xs - a, ys), (xs, ys - b)]][corner]
        cv2.fillPoly(m, [np.round(np.array(tri)).astype(np.int32)], 1)
    return m.view(bool)


def _render_region(rng: np.random.Generator, truth: np.ndarray) -> np.ndarray:
    """Clear-sky RGB (float32, (H, W, 3)) of a truth map, before sensor noise."""
    size = truth.shape[0]
    tex = smooth_noise(rng, size, size, 12.0)
    img = np.empty((size, size, 3), np.float32)
    for k, rgb in _COLOURS.items():
        m = truth == k
        img[m] = np.asarray(rgb, np.float32) + _TEXTURE[k] * tex[m][:, None]
    return cv2.GaussianBlur(img, (0, 0), _PSF_SIGMA)


def _scene_rgb(rng: np.random.Generator, clear: np.ndarray, cloudy: bool,
               nodata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scene's RGB (uint8, no-data 0) and its cloud probability (uint8 0..100)."""
    h, w = nodata.shape
    img = clear.copy()
    alpha = np.zeros((h, w), np.float32)
    if cloudy:
        alpha = np.clip((smooth_noise(rng, h, w, 40.0) - 0.2) * 0.4, 0.0, 0.5)
        img = img * (1 - alpha[..., None]) + _HAZE * alpha[..., None]
    img += rng.random((h, w, 3), dtype=np.float32) * np.float32(4.5) - np.float32(2.25)
    out = np.clip(np.round(img), 1, 255).astype(np.uint8)
    out[nodata] = 0
    prob = np.round(100 * np.clip(alpha / CLOUD_ALPHA_FULL, 0, 1)).astype(np.uint8)
    prob[nodata] = 0
    return out, prob


def render_scene(truth: np.ndarray, seed: int, *, cloudy: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A scene of a square class map of one's own, rendered as :func:`make_season` renders
    its scenes.

    ``truth`` (uint8 (H, W): 0 water, 1 thin, 2 thick) gets the season's colours, texture, blur
    and sensor noise and, when ``cloudy``, a thin haze; returns the RGB (uint8 (H, W, 3), 1..255,
    no no-data) and the cloud probability of the haze (uint8 (H, W), percent; see the module).
    The same ``seed`` gives the same scene. Used to serve scenes of a known truth (tests).
    """
    rng = np.random.default_rng(seed)
    clear = _render_region(rng, np.asarray(truth, np.uint8))
    return _scene_rgb(rng, clear, cloudy, np.zeros(truth.shape, bool))


def _write_tif(path: Path, bands: np.ndarray, transform, *, nodata, tags=None) -> None:
    import rasterio
    from rasterio.transform import Affine

    tmp = path.with_name(path.name + ".part")
    count = bands.shape[0]
    with rasterio.open(tmp, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=count, dtype="uint8", crs=SEASON_CRS, transform=Affine(*transform),
                       nodata=nodata, compress="deflate",
                       photometric="RGB" if count == 3 else "MINISBLACK") as dst:
        dst.write(bands)
        if tags:
            dst.update_tags(**tags)
    os.replace(tmp, path)


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(header)
        wr.writerows(rows)
    os.replace(tmp, path)


def _area_row(truth: np.ndarray, observed: np.ndarray, areas: np.ndarray) -> list:
    """Region, true class and observed areas (ground km², ``date_areas``) of one date."""
    whole = date_areas(truth, areas)
    seen = date_areas(np.where(observed, truth, np.uint8(NODATA)), areas)
    return ([whole["region_km2"]] + [whole[k] for k in _AREA_FIELDS] + [seen["observed_km2"]]
            + [seen[k] for k in _AREA_FIELDS] + [seen["observed_share"]])


_AREAS_HEADER = ["date", "region_km2", *_AREA_FIELDS, "observed_km2",
                 *(f"observed_{k}" for k in _AREA_FIELDS), "observed_share"]
_SEASON_HEADER = ["date", "scene", "cloud_mask", "left", "bottom", "right", "top", "crs"]


def make_season(root, seed: int = 0, *, n_dates: int = 12, size: int = 256,
                pixel_m: float = 40.0, year: int = 2019) -> Season:
    """Draw (or resume) a synthetic season under ``root``; see the module for what is written.

    Parameters
    ----------
    root : path
        Folder of the season (created).
    seed : int
        The same arguments give byte-identical files.
    n_dates : int, keyword-only
        12..20 dates between 1 November and 31 December of ``year``.
    size : int, keyword-only
        Side of the square region in pixels (128..2048).
    pixel_m : float, keyword-only
        Pixel size in metres (10..1000).

    Raises
    ------
    InputError
        A bad argument, or ``root`` holds a season made with other arguments.
    """
    _check(seed, n_dates, size, pixel_m, year)
    root = Path(root)
    args = dict(version=SEASON_VERSION, seed=int(seed), n_dates=int(n_dates), size=int(size),
                pixel_m=float(pixel_m), year=int(year))
    (root / "scenes").mkdir(parents=True, exist_ok=True)
    (root / "truth").mkdir(exist_ok=True)
    (root / "clouds").mkdir(exist_ok=True)
    meta = root / "season.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        if old != args:
            raise InputError(f"{str(root)!r} holds a season made with {old}, not {args}")
    else:
        meta.write_text(json.dumps(args, sort_keys=True) + "\n")
    px = float(pixel_m)
    transform = (px, 0.0, _ORIGIN[0], 0.0, -px, _ORIGIN[1])
    areas = ground_pixel_areas(transform, SEASON_CRS, (size, size))
    dates = _season_dates(n_dates, year)

    done = (root / "season.csv").exists() and (root / "truth_areas.csv").exists()
    if done:
        season = _load(root, transform, (size, size))
        done = all((root / r["scene"]).exists() and (root / r["cloud_mask"]).exists()
                   for r in season.scenes) and all(
            (root / "truth" / f"{d.isoformat()}.tif").exists() for d in season.dates)
        if done:
            return season

    ss_plan, ss_field, ss_dates = np.random.SeedSequence([int(seed), int(size), 0x5EA5]).spawn(3)
    plan = _plan(np.random.default_rng(ss_plan), n_dates, size)
    big = size + 2 * _MARGIN
    field = noise_field(np.random.default_rng(ss_field), big, big,
                        [(size / k, weight) for k, weight in _OCTAVES])
    season_rows, area_rows = [], []
    for day, shares, p, ss in zip(dates, season_curve(n_dates), plan, ss_dates.spawn(n_dates)):
        iso = day.isoformat()
        truth = _truth(field, p["drift"], size, shares)
        observed = np.zeros((size, size), bool)
        paths = [root / "scenes" / f"{iso}_{k}.tif" for k in range(1, len(p["windows"]) + 1)]
        todo = not (root / "truth" / f"{iso}.tif").exists() or not all(
            x.exists() and (root / "clouds" / x.name).exists() for x in paths)
        rng = np.random.default_rng(ss)
        clear = _render_region(rng, truth) if todo else None
        for path, (r, c, h, w, wedge), ss_k in zip(paths, p["windows"], ss.spawn(len(paths))):
            nodata = _wedge_mask(h, w, wedge)
            observed[r:r + h, c:c + w] |= ~nodata
            left, top = _ORIGIN[0] + c * px, _ORIGIN[1] - r * px
            cloud = root / "clouds" / path.name
            season_rows.append([iso, f"scenes/{path.name}", f"clouds/{cloud.name}", repr(left),
                                repr(top - h * px), repr(left + w * px), repr(top), SEASON_CRS])
            if todo and not (path.exists() and cloud.exists()):
                rgb, prob = _scene_rgb(np.random.default_rng(ss_k), clear[r:r + h, c:c + w],
                                       p["cloudy"], nodata)
                scene_t = (px, 0.0, left, 0.0, -px, top)
                _write_tif(cloud, prob[None], scene_t, nodata=None,
                           tags=dict(DATE=iso, UNITS="cloud probability, percent"))
                _write_tif(path, np.moveaxis(rgb, 2, 0), scene_t,
                           nodata=0, tags=dict(DATE=iso, ACQUISITION_DATE=iso,
                                               SEASON_SEED=str(seed), CLOUDY=str(p["cloudy"])))
        tpath = root / "truth" / f"{iso}.tif"
        if not tpath.exists():
            _write_tif(tpath, truth[None], transform, nodata=NODATA, tags=dict(DATE=iso))
        area_rows.append([iso, *(repr(v) for v in _area_row(truth, observed, areas))])
    _write_csv(root / "season.csv", _SEASON_HEADER, season_rows)
    _write_csv(root / "truth_areas.csv", _AREAS_HEADER, area_rows)
    return _load(root, transform, (size, size))


def read_season_csv(root) -> list[dict]:
    """The rows of ``season.csv`` (bounds as floats)."""
    with open(Path(root) / "season.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("left", "bottom", "right", "top"):
            r[k] = float(r[k])
    return rows


def read_truth_areas(root) -> list[dict]:
    """The rows of ``truth_areas.csv`` (areas and shares as floats)."""
    with open(Path(root) / "truth_areas.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (v if k == "date" else float(v)) for k, v in r.items()} for r in rows]


def _load(root: Path, transform, shape) -> Season:
    scenes = read_season_csv(root)
    areas = read_truth_areas(root)
    dates = tuple(_dt.date.fromisoformat(r["date"]) for r in areas)
    return Season(root=root, dates=dates, scenes=tuple(scenes), truth_areas=tuple(areas),
                  transform=tuple(transform), shape=tuple(shape))
