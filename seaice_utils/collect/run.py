"""Collecting the scenes: Earth Engine, an open STAC catalogue, local products, or synthetic data.

The paper collected 66 Sentinel-2 scenes of 2048 x 2048 px (bands B4, B3, B2 at 10 m) over the
Ross Sea (latitude -78..-70, longitude -180..-140) in November 2019 with Google Earth Engine.
The ``collect`` section of a profile states that query once; every way of getting data reads it
and writes the same dataset folder (the layout of :mod:`seaice_utils.data.dataset`)::

    <outputs>/data/<source>/
      scenes/<name>.png     8-bit RGB, the project's stretch (collect.export_format: png8, default)
      scenes/<name>.tif     16-bit reflectance x 10000, georeferenced (export_format: geotiff16)
      catalogue.csv         one row per scene: product id, date, tile, cloud cover, CRS, transform,
                            footprint (WKT, lon/lat), valid share, reflectance offset, file
      collect_state.json    resume state: query fingerprint and windows rejected for no-data

``<source>`` is ``earthengine``, ``stac``, ``local`` (products ingested from ``data.folder``) or
``synthetic``.

Sources (``data.source``)
-------------------------
``earthengine``
    :mod:`seaice_utils.collect.earthengine`: the harmonized Sentinel-2 collection (L1C
    ``COPERNICUS/S2_HARMONIZED`` by default, L2A ``COPERNICUS/S2_SR_HARMONIZED``), filtered by
    region, dates and cloud cover, each scene fetched with ``ee.data.computePixels`` on the
    product's own UTM grid. Needs an Earth Engine account (credentials from the environment).
``stac``
    :mod:`seaice_utils.collect.stac`: the same query against a public STAC API (Earth Search by
    default), reading windows of the B04/B03/B02 cloud-optimised GeoTIFFs over HTTP. No account.
``folder``
    :mod:`seaice_utils.collect.local`: Sentinel-2 products the user already downloaded (band files or
    multi-band GeoTIFFs) are cut into scenes under ``<outputs>/data/local``. A folder that already
    holds scenes (8-bit images or a dataset folder) is used as it is.
``synthetic``
    the embedded synthetic dataset (:func:`seaice_utils.dataset.ensure_synthetic_dataset`).

Scenes
------
Each product (a Sentinel-2 tile of about 10980 x 10980 px) is cut into a grid of
``scene_px`` windows aligned to its pixel grid. A window is a candidate when at least
``min_valid_fraction`` of a 5 x 5 grid of sample points lies inside the product footprint and one
of them inside the region; it becomes a scene when at least ``min_valid_fraction`` of its pixels
hold data. At most ``scenes_per_product`` scenes are taken from one product (spread over it) and
``max_scenes`` in all, products in order of increasing cloud cover.

Reflectance and the L2A/L1C offset
----------------------------------
Digital numbers (DN) are reflectance x 10000. Products of processing baseline 04.00 and later
(from 25 January 2022) carry ``BOA_ADD_OFFSET`` (L2A) / ``RADIO_ADD_OFFSET`` (L1C) = -1000, i.e.
``reflectance = DN / 10000 - 0.1``: the stretch is then ``Stretch(offset=-0.1)``. Earth Engine's
harmonized collections have the offset removed already (offset 0). For STAC items and local
products the offset comes from ``collect.reflectance_offset`` when it is a number, else it is
detected (see :func:`offset_for_baseline` and the source modules). 16-bit outputs are written
*harmonized* (offset removed: ``DN' = DN + 10000 * offset``), so every scene file in a dataset
folder means ``reflectance = DN / 10000`` and :func:`seaice_utils.scenes.read_scene`'s default
stretch applies. Valid pixels are never written as 0 in every band (that is no-data): they are
clipped to 1 DN (16-bit) or written (0, 0, 1) (8-bit).

Fallback and the run manifest
-----------------------------
When Earth Engine or the STAC API cannot be used (no credentials, no network, nothing matched),
:func:`collect` says why, continues with the synthetic dataset (unless ``collect.fallback`` is
``error``) and records the source used with :func:`seaice_utils.report.record` under
``data_source``. Later notebooks call :func:`resolve_source` so that they read the dataset
notebook 01 actually produced.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.core.scenes import (Stretch, atomic_write_bytes, stretch_reflectance,
                                      write_json, write_png)

__all__ = [
    "CollectionUnavailable", "CollectResult", "SceneSink", "Product",
    "DATA_SOURCE_RECORD", "EE_COLLECTIONS", "EE_CLOUD_PROPERTY", "STAC_COLLECTIONS", "S2_BANDS",
    "band_id", "ee_request", "stac_request", "query_rows", "access_rows",
    "offset_for_baseline", "parse_baseline", "scene_grid", "window_transform", "window_lonlat",
    "candidate_windows", "footprint_wkt", "read_window", "dn_to_rgb8", "harmonize_dn", "geotiff_bytes",
    "collect", "resolve_source", "collection_figure", "scene_file", "run_products",
]

#: Key of the provenance record (``<outputs>/records/data_source.json``) notebook 01 leaves.
DATA_SOURCE_RECORD = "data_source"
#: Earth Engine collection per processing level (harmonized: the baseline-04.00 offset removed).
EE_COLLECTIONS = {"L1C": "COPERNICUS/S2_HARMONIZED", "L2A": "COPERNICUS/S2_SR_HARMONIZED"}
#: Scene-level cloud property of the Earth Engine Sentinel-2 collections (percent).
EE_CLOUD_PROPERTY = "CLOUDY_PIXEL_PERCENTAGE"
#: Default STAC collection per processing level (Earth Search v1 naming).
STAC_COLLECTIONS = {"L1C": "sentinel-2-l1c", "L2A": "sentinel-2-l2a"}
#: Sentinel-2 band: (Earth Engine name, file/STAC name, STAC common name / Earth Search key).
S2_BANDS = {
    "B1": ("B1", "B01", "coastal"), "B2": ("B2", "B02", "blue"), "B3": ("B3", "B03", "green"),
    "B4": ("B4", "B04", "red"), "B5": ("B5", "B05", "rededge1"), "B6": ("B6", "B06", "rededge2"),
    "B7": ("B7", "B07", "rededge3"), "B8": ("B8", "B08", "nir"), "B8A": ("B8A", "B8A", "nir08"),
    "B9": ("B9", "B09", "nir09"), "B10": ("B10", "B10", "cirrus"), "B11": ("B11", "B11", "swir16"),
    "B12": ("B12", "B12", "swir22"),
}
_SAMPLES = 5            # sample points per side of a window for the footprint/region test
_STATE = "collect_state.json"
_CATALOGUE = "catalogue.csv"


class CollectionUnavailable(SeaIceError):
    """A data source cannot be used here (no credentials, no network, nothing matched).

    The message says what is missing and how to provide it; it never contains a credential,
    a project id or a key path (only the names of the environment variables that hold them).
    """


# --------------------------------------------------------------------------------------------
# the query
# --------------------------------------------------------------------------------------------

def band_id(band: str, *, style: str = "ee") -> str:
    """Normalise a Sentinel-2 band name.

    Parameters
    ----------
    band : str
        ``B4``, ``B04``, ``b4``, ``B8A`` ...
    style : {'ee', 'file', 'common'}
        Earth Engine name (``B4``), file/STAC name (``B04``) or common name (``red``).

    Examples
    --------
    >>> band_id("B04"), band_id("b4", style="file"), band_id("B4", style="common")
    ('B4', 'B04', 'red')
    """
    m = re.fullmatch(r"[Bb]0*(\d{1,2})([Aa]?)", str(band).strip())
    key = f"B{int(m[1])}{m[2].upper()}" if m else None
    if key not in S2_BANDS:
        raise InputError(f"not a Sentinel-2 band name: {band!r} (known: {', '.join(S2_BANDS)})")
    return S2_BANDS[key][{"ee": 0, "file": 1, "common": 2}[style]]


def _dates(params: dict) -> tuple[str, str]:
    from seaice_utils.errors import ParamsError

    c = params["collect"]
    start, end = str(c["start_date"]), str(c["end_date"])
    if not date.fromisoformat(start) < date.fromisoformat(end):
        raise ParamsError(f"collect.end_date must be after collect.start_date (got {start} .. {end})")
    return start, end


def _region(params: dict) -> dict[str, float]:
    w, s, e, n = (float(v) for v in params["collect"]["region"])
    return {"west": w, "south": s, "east": e, "north": n}


def ee_request(params: dict) -> dict[str, Any]:
    """The Earth Engine query of a profile as a plain dict (what :mod:`collect_ee` sends).

    :func:`seaice_utils.collect_ee.build_collection` turns it 1:1 into
    ``ee.ImageCollection(collection).filterBounds(Rectangle(region, geodesic=False))
    .filterDate(start, end).filter(cloud_property <= max_cloud_cover).select(bands)
    .limit(max_products, cloud_property)``; each scene is one ``computePixels`` request of
    ``scene_px`` x ``scene_px`` pixels of ``scale`` metres on the product's UTM grid.

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> r = ee_request(defaults())
    >>> r["collection"], r["start"], r["end"], r["bands"], r["scale"], r["scene_px"]
    ('COPERNICUS/S2_HARMONIZED', '2019-11-01', '2019-12-01', ['B4', 'B3', 'B2'], 10, 2048)
    """
    c = params["collect"]
    start, end = _dates(params)
    return {
        "collection": EE_COLLECTIONS[c["collection"]],
        "level": c["collection"],
        "region": _region(params),
        "geodesic": False,
        "start": start,
        "end": end,
        "cloud_property": EE_CLOUD_PROPERTY,
        "max_cloud_cover": c["max_cloud_cover"],
        "bands": [band_id(b) for b in c["bands"]],
        "scale": c["scale"],
        "scene_px": c["scene_px"],
        "max_products": c["max_products"],
        "max_scenes": c["max_scenes"],
        "scenes_per_product": c["scenes_per_product"],
        "min_valid_fraction": c["min_valid_fraction"],
        "export_format": c["export_format"],
        "file_format": "GEO_TIFF",
        "reflectance_offset": 0.0,
    }


def stac_request(params: dict) -> dict[str, Any]:
    """The STAC item search of a profile as a plain dict (what :mod:`collect_stac` sends).

    ``datetime`` is the closed interval from ``start_date`` 00:00:00 to the second before
    ``end_date`` (which is exclusive, as in Earth Engine).

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> r = stac_request(defaults())
    >>> r["bbox"], r["datetime"], r["query"]
    ([-180.0, -78.0, -140.0, -70.0], '2019-11-01T00:00:00Z/2019-11-30T23:59:59Z', {'eo:cloud_cover': {'lte': 30}})
    """
    c = params["collect"]
    reg = _region(params)
    start, end = _dates(params)
    last = datetime.fromisoformat(end) - timedelta(seconds=1)
    coll = c["stac_collection"] or STAC_COLLECTIONS[c["collection"]]
    level = "L2A" if "l2a" in coll.lower() else "L1C" if "l1c" in coll.lower() else c["collection"]
    return {
        "url": c["stac_url"],
        "collections": [coll],
        "level": level,
        "bbox": [reg["west"], reg["south"], reg["east"], reg["north"]],
        "datetime": f"{start}T00:00:00Z/{last.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "query": {"eo:cloud_cover": {"lte": c["max_cloud_cover"]}},
        "bands": [band_id(b, style="file") for b in c["bands"]],
        "scale": c["scale"],
        "scene_px": c["scene_px"],
        "max_products": c["max_products"],
        "max_scenes": c["max_scenes"],
        "scenes_per_product": c["scenes_per_product"],
        "min_valid_fraction": c["min_valid_fraction"],
        "export_format": c["export_format"],
        "reflectance_offset": c["reflectance_offset"],
        "timeout_s": c["timeout_s"],
    }


def query_rows(params: dict) -> list[dict[str, Any]]:
    """The query of a profile side by side for the three real-data paths (a table for notebook 01)."""
    e, s, c = ee_request(params), stac_request(params), params["collect"]
    reg = e["region"]
    region = f"lon {reg['west']:g}..{reg['east']:g}, lat {reg['south']:g}..{reg['north']:g}"
    folder = params["data"]["folder"] or "(data.folder not set)"
    return [
        {"setting": "collection", "earthengine": e["collection"],
         "stac": f"{s['collections'][0]} at {s['url']}", "local products": folder},
        {"setting": "region", "earthengine": region + " (planar rectangle)",
         "stac": f"bbox {s['bbox']}", "local products": "whole product"},
        {"setting": "dates", "earthengine": f"{e['start']} <= t < {e['end']}",
         "stac": s["datetime"], "local products": "as downloaded"},
        {"setting": "cloud filter", "earthengine": f"{e['cloud_property']} <= {e['max_cloud_cover']:g}",
         "stac": f"eo:cloud_cover <= {e['max_cloud_cover']:g}", "local products": "none"},
        {"setting": "bands (R, G, B)", "earthengine": ", ".join(e["bands"]),
         "stac": ", ".join(s["bands"]), "local products": ", ".join(s["bands"]) + " in file names, "
         f"or file bands {params['data']['bands'] or [1, 2, 3]}"},
        {"setting": "scale / scene", "earthengine": f"{e['scale']:g} m, {e['scene_px']} px",
         "stac": f"{s['scale']:g} m, {s['scene_px']} px", "local products": f"{s['scale']:g} m, "
         f"{s['scene_px']} px"},
        {"setting": "how many", "earthengine": f"{c['max_scenes']} scenes, <= "
         f"{c['scenes_per_product']} per product, <= {c['max_products']} products",
         "stac": "same", "local products": f"<= {c['max_scenes']} scenes"},
        {"setting": "export", "earthengine": c["export_format"], "stac": c["export_format"],
         "local products": c["export_format"]},
        {"setting": "reflectance offset", "earthengine": "0 (harmonized collection)",
         "stac": str(c["reflectance_offset"]), "local products": str(c["reflectance_offset"])},
    ]


def access_rows(params: dict, *, environ: dict | None = None) -> list[dict[str, str]]:
    """What each source needs and whether it is configured here (offline; shows no secret)."""
    from seaice_utils.collect.earthengine import credential_status

    st = credential_status(environ)
    ee_state = ("configured: " + st["method"] + (f"; project from {st['project']}"
                                                if st["project"] else "")) if st["ready"] \
        else "not configured: " + st["problem"]
    folder = params["data"]["folder"]
    folder_state = ("data.folder not set" if not folder else
                    "found" if Path(folder).is_dir() else "data.folder does not exist")
    src = params["data"]["source"]
    return [
        {"source": "earthengine", "selected": src == "earthengine", "needs":
         "Earth Engine account: EARTHENGINE_PROJECT and `earthengine authenticate`, or a "
         "service-account key named by EE_SERVICE_ACCOUNT_KEY / GOOGLE_APPLICATION_CREDENTIALS",
         "here": ee_state},
        {"source": "stac", "selected": src == "stac", "needs": "network access to "
         f"{params['collect']['stac_url']} and the COG hosts; no account",
         "here": "contacted only when data.source is 'stac'"},
        {"source": "folder", "selected": src == "folder",
         "needs": "downloaded Sentinel-2 products (B02/B03/B04 files) or scenes in data.folder",
         "here": folder_state},
        {"source": "synthetic", "selected": src == "synthetic",
         "needs": "nothing (embedded generator)", "here": "available"},
    ]


# --------------------------------------------------------------------------------------------
# reflectance offset
# --------------------------------------------------------------------------------------------

def parse_baseline(text: str | None) -> str | None:
    """Processing baseline ``NN.NN`` from a product name token ``_N0400`` or a baseline string.

    Examples
    --------
    >>> parse_baseline("S2B_MSIL2A_20191115T202851_N0213_R128_T01CDK_20191115T220119.SAFE")
    '02.13'
    >>> parse_baseline("05.09"), parse_baseline("T01CDK_20191115T202851_B04_10m"), parse_baseline(None)
    ('05.09', None, None)
    """
    if not text:
        return None
    text = str(text)
    m = re.fullmatch(r"\s*(\d{1,2})\.(\d{2})\s*", text)
    if m:
        return f"{int(m[1]):02d}.{m[2]}"
    m = re.search(r"_N(\d{2})(\d{2})(?=[_.]|$)", text)
    return f"{m[1]}.{m[2]}" if m else None


def offset_for_baseline(baseline: str | None) -> float:
    """Reflectance offset of a processing baseline: -0.1 from 04.00 on, else 0.

    ``BOA_ADD_OFFSET`` (L2A) and ``RADIO_ADD_OFFSET`` (L1C) are -1000 DN for baseline >= 04.00.
    An unknown baseline (None) counts as older (0).

    >>> offset_for_baseline("04.00"), offset_for_baseline("02.13"), offset_for_baseline(None)
    (-0.1, 0.0, 0.0)
    """
    if baseline is None:
        return 0.0
    major, minor = (int(x) for x in parse_baseline(baseline).split("."))
    return -0.1 if (major, minor) >= (4, 0) else 0.0


# --------------------------------------------------------------------------------------------
# windows on a product grid
# --------------------------------------------------------------------------------------------

@dataclass
class Product:
    """One Sentinel-2 product (tile, date) as any source describes it.

    Attributes
    ----------
    id : str
        Product id (PRODUCT_ID, STAC item id, SAFE name or file stem).
    crs : str
        CRS of the product grid (``EPSG:32701``, or WKT).
    transform : tuple of 6 floats
        Affine ``(a, b, c, d, e, f)`` of the native grid (north-up: b = d = 0, e < 0).
    height, width : int
        Native grid size in pixels.
    datetime : str
        Acquisition time, ISO 8601 (may be empty when unknown).
    tile : str
        MGRS tile (``01CDK``) or ''.
    cloud_cover : float or None
    footprint : list of (N, 2) sequences or None
        Rings of valid data in lon/lat (None: the whole grid is assumed valid).
    offset : float
        Reflectance offset of the DNs (0 or -0.1).
    offset_source : str
    baseline : str or None
    extra : dict
        Source-specific fields (asset hrefs, file paths, ...).
    """

    id: str
    crs: str
    transform: tuple
    height: int
    width: int
    datetime: str = ""
    tile: str = ""
    cloud_cover: float | None = None
    footprint: list | None = None
    offset: float = 0.0
    offset_source: str = ""
    baseline: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def native_res(self) -> float:
        return abs(float(self.transform[0]))


def scene_grid(height: int, width: int, scene_px: int) -> list[tuple[int, int]]:
    """Row/column offsets of the ``scene_px`` windows covering a grid (edge windows overhang).

    >>> scene_grid(5000, 3000, 2048)
    [(0, 0), (0, 2048), (2048, 0), (2048, 2048), (4096, 0), (4096, 2048)]
    """
    if scene_px < 1 or height < 1 or width < 1:
        raise InputError(f"scene grid needs positive sizes (got {height} x {width}, scene {scene_px})")
    return [(r, c) for r in range(0, height, scene_px) for c in range(0, width, scene_px)]


def _ratio(product: Product, scale: float) -> float:
    if not product.transform[1] == 0 == product.transform[3] or product.transform[4] >= 0:
        raise InputError(f"product {product.id}: only north-up grids are supported "
                         f"(transform {tuple(product.transform)})")
    return float(scale) / product.native_res


def window_transform(product: Product, row: int, col: int, scale: float) -> tuple:
    """Affine ``(a, b, c, d, e, f)`` of the window at output pixel offset (row, col), pixel ``scale``.

    >>> p = Product("p", "EPSG:32701", (10.0, 0.0, 399960.0, 0.0, -10.0, 1600020.0), 10980, 10980)
    >>> window_transform(p, 2048, 4096, 10)
    (10.0, 0.0, 440920.0, 0.0, -10.0, 1579540.0)
    """
    r = _ratio(product, scale)
    a, _, c, _, e, f = (float(v) for v in product.transform[:6])
    return (a * r, 0.0, c + a * r * col, 0.0, e * r, f + e * r * row)


def window_lonlat(product: Product, row: int, col: int, size: int, scale: float, *,
                  n: int = _SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of an ``n`` x ``n`` grid of points spanning a window (edges included).

    Returns
    -------
    lon, lat : (n * n,) float ndarray
        Degrees; longitudes in [-180, 180).
    """
    from rasterio.warp import transform as warp

    a, _, c, _, e, f = window_transform(product, row, col, scale)
    u = np.linspace(0.0, size, n)
    xs, ys = np.meshgrid(c + a * u, f + e * u)
    lon, lat = warp(product.crs, "EPSG:4326", xs.ravel().tolist(), ys.ravel().tolist())
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    return lon, np.asarray(lat)


def _unwrap(lon: np.ndarray, ref: float) -> np.ndarray:
    return (np.asarray(lon, dtype=float) - ref + 180.0) % 360.0 - 180.0 + ref


def _inside_rings(lon: np.ndarray, lat: np.ndarray, rings: Sequence) -> np.ndarray:
    """Even-odd point-in-polygon test in lon/lat, longitudes unwrapped around the first vertex."""
    rings = [np.asarray(r, dtype=float)[:, :2] for r in rings if len(r) >= 3]
    if not rings:
        return np.zeros(np.shape(lon), dtype=bool)
    ref = rings[0][0, 0]
    x, y = _unwrap(lon, ref), np.asarray(lat, dtype=float)
    inside = np.zeros(x.shape, dtype=bool)
    for ring in rings:
        rx, ry = _unwrap(ring[:, 0], ref), ring[:, 1]
        x1, y1 = rx, ry
        x2, y2 = np.roll(rx, -1), np.roll(ry, -1)
        for xa, ya, xb, yb in zip(x1, y1, x2, y2):
            if ya == yb:
                continue
            cross = ((ya > y) != (yb > y)) & (x < xa + (y - ya) * (xb - xa) / (yb - ya))
            inside ^= cross
    return inside


def _in_region(lon: np.ndarray, lat: np.ndarray, region: dict) -> np.ndarray:
    lon = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    return ((lon >= region["west"]) & (lon <= region["east"]) &
            (lat >= region["south"]) & (lat <= region["north"]))


def candidate_windows(product: Product, *, region: dict, scale: float, scene_px: int,
                      min_valid_fraction: float, per_product: int) -> list[tuple[int, int]]:
    """Windows of a product worth fetching, best-spread first.

    A window qualifies when one of its sample points lies in ``region`` and at least
    ``min_valid_fraction`` of them lie inside the product footprint (all of them when the product
    has none). The first ``per_product`` windows returned are spread evenly over the
    qualifying ones; the others follow in row-major order (fallbacks for windows that turn out
    to hold too little data).
    """
    ratio = _ratio(product, scale)
    h = int(math.ceil(product.height / ratio))
    w = int(math.ceil(product.width / ratio))
    keep = []
    for row, col in scene_grid(h, w, scene_px):
        lon, lat = window_lonlat(product, row, col, scene_px, scale)
        if not _in_region(lon, lat, region).any():
            continue
        if product.footprint:
            if _inside_rings(lon, lat, product.footprint).mean() < min_valid_fraction:
                continue
        keep.append((row, col))
    if len(keep) <= per_product:
        return keep
    first = sorted({int(round(i)) for i in np.linspace(0, len(keep) - 1, per_product)})
    return [keep[i] for i in first] + [k for i, k in enumerate(keep) if i not in first]


def footprint_wkt(product: Product, row: int, col: int, size: int, scale: float, *,
                  per_edge: int = 4) -> str:
    """The window outline as a WKT polygon in lon/lat (longitudes continuous, may pass -180)."""
    from rasterio.warp import transform as warp

    a, _, c, _, e, f = window_transform(product, row, col, scale)
    t = np.linspace(0.0, size, per_edge + 1)[:-1]
    u = np.concatenate([t, np.full_like(t, size), size - t, np.zeros_like(t)])
    v = np.concatenate([np.zeros_like(t), t, np.full_like(t, size), size - t])
    lon, lat = warp(product.crs, "EPSG:4326", (c + a * u).tolist(), (f + e * v).tolist())
    lon = _unwrap(np.asarray(lon), float(lon[0]))
    pts = [f"{x:.5f} {y:.5f}" for x, y in zip(lon, lat)]
    return "POLYGON ((" + ", ".join(pts + pts[:1]) + "))"


# --------------------------------------------------------------------------------------------
# DN -> scene files
# --------------------------------------------------------------------------------------------

def dn_to_rgb8(dn: np.ndarray, *, offset: float = 0.0, nodata: np.ndarray | None = None) -> np.ndarray:
    """Sentinel-2 DNs to the project's 8-bit RGB (``Stretch(offset=offset)``), no-data black.

    Parameters
    ----------
    dn : (H, W, 3) integer ndarray
        Red, green, blue DNs (reflectance x 10000 [+ 1000 from baseline 04.00]); 0 = no-data.
    offset : float
        Reflectance offset (-0.1 for baseline >= 04.00 data, else 0).
    nodata : (H, W) bool ndarray, optional
        Default: pixels that are 0 in every band.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Valid pixels that would be black in every band are written (0, 0, 1).

    Examples
    --------
    >>> dn = np.array([[[0, 0, 0], [1200, 1200, 1200], [2000, 1500, 1000]]], dtype=np.uint16)
    >>> dn_to_rgb8(dn).tolist()
    [[[0, 0, 0], [31, 31, 31], [51, 38, 26]]]
    >>> dn_to_rgb8(dn, offset=-0.1).tolist()  # baseline >= 04.00: 1000 DN is reflectance 0
    [[[0, 0, 0], [5, 5, 5], [26, 13, 0]]]
    >>> dn_to_rgb8(np.full((1, 1, 3), 1000, np.uint16), offset=-0.1).tolist()  # valid, not no-data
    [[[0, 0, 1]]]
    """
    if nodata is None:
        nodata = np.all(dn == 0, axis=-1)
    rgb = stretch_reflectance(dn, Stretch(offset=offset))
    rgb[nodata] = 0
    black = ~nodata & np.all(rgb == 0, axis=-1)
    rgb[black, 2] = 1
    return rgb


def harmonize_dn(dn: np.ndarray, *, offset: float = 0.0, nodata: np.ndarray | None = None) -> np.ndarray:
    """DNs with the reflectance offset removed (``DN + 10000 * offset``), as uint16.

    Valid pixels are clipped to 1..65535 (0 stays the no-data value).

    >>> dn = np.array([[[0, 0, 0], [1500, 900, 1000]]], dtype=np.uint16)
    >>> harmonize_dn(dn, offset=-0.1).tolist()
    [[[0, 0, 0], [500, 1, 1]]]
    """
    if nodata is None:
        nodata = np.all(dn == 0, axis=-1)
    out = dn.astype(np.int64) + int(round(offset * 10000))
    out = np.clip(out, 1, 65535).astype(np.uint16)
    out[nodata] = 0
    return out


def geotiff_bytes(dn16: np.ndarray, *, crs: str, transform: Sequence[float],
                  descriptions: Sequence[str] | None = None, tags: dict | None = None) -> bytes:
    """A tiled, deflate-compressed 16-bit GeoTIFF (no-data 0) of an (H, W, C) array, as bytes."""
    import rasterio
    from affine import Affine
    from rasterio.io import MemoryFile

    h, w, c = dn16.shape
    block = 256 if min(h, w) >= 256 else max(16, 16 * math.ceil(min(h, w) / 16))
    profile = dict(driver="GTiff", height=h, width=w, count=c, dtype="uint16", crs=crs,
                   transform=Affine(*transform[:6]), nodata=0, tiled=True, blockxsize=block,
                   blockysize=block, compress="deflate", predictor=2, interleave="pixel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(np.moveaxis(dn16, -1, 0))
                if descriptions:
                    dst.descriptions = tuple(descriptions)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
            return bytes(mem.read())


def _crs_text(crs: Any) -> str:
    from rasterio.crs import CRS

    c = CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_wkt()


def _scene_name(product: Product, row: int, col: int) -> str:
    day = re.sub(r"\D", "", product.datetime[:10]) or "00000000"
    tile = re.sub(r"[^0-9A-Za-z]", "", product.tile) or \
        hashlib.sha1(product.id.encode()).hexdigest()[:6]
    return f"s2_{day}_{tile}_r{row:05d}c{col:05d}"


class SceneSink:
    """Writes the scenes of one dataset folder and keeps its catalogue; resumable.

    Scenes are written atomically; the catalogue and the resume state are rewritten after each
    scene, so an interrupted collection resumes where it stopped: scenes in the catalogue whose
    file is intact are kept, windows rejected for too little data are not fetched again. A
    change of the query (its fingerprint) starts a fresh catalogue.

    Parameters
    ----------
    root : path
        Dataset folder (``<outputs>/data/<source>``).
    source : str
        Recorded in the catalogue's ``source`` column.
    query : dict
        The request; its fingerprint (without the counts) identifies the collection.
    params : dict
        Loaded profile (``collect`` section: scene_px, scale, export_format, min_valid_fraction,
        max_scenes, scenes_per_product).
    """

    def __init__(self, root: str | os.PathLike, *, source: str, query: dict, params: dict) -> None:
        c = params["collect"]
        self.root = Path(root)
        self.source = source
        self.scene_px = int(c["scene_px"])
        self.scale = float(c["scale"])
        self.fmt = c["export_format"]
        self.min_valid = float(c["min_valid_fraction"])
        self.max_scenes = int(c["max_scenes"])
        self.per_product = int(c["scenes_per_product"])
        ignore = {"max_products", "max_scenes", "timeout_s", "url"}
        self.fingerprint = hashlib.sha1(json.dumps(
            {k: v for k, v in query.items() if k not in ignore}, sort_keys=True,
            default=str).encode()).hexdigest()[:16]
        self.collection = str(query.get("collection") or (query.get("collections") or [""])[0]
                              or source)
        self.rows: list[dict] = []
        self.rejected: set[str] = set()
        state = self._read_state()
        if state.get("fingerprint") == self.fingerprint:
            self.rejected = set(state.get("rejected", []))
            self.rows = [r for r in self._read_rows() if self._intact(r)]

    # -- state -------------------------------------------------------------------------------
    def _read_state(self) -> dict:
        try:
            return json.loads((self.root / _STATE).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _read_rows(self) -> list[dict]:
        import csv

        path = self.root / _CATALOGUE
        if not path.is_file():
            return []
        with path.open(newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)]

    def _intact(self, row: dict) -> bool:
        path = self.root / row.get("file", "")
        if not row.get("file") or not path.is_file() or path.stat().st_size == 0:
            return False
        try:
            if path.suffix == ".png":
                import cv2

                arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                return arr is not None and arr.shape[:2] == (self.scene_px, self.scene_px)
            import rasterio

            with rasterio.open(path) as src:
                return (src.height, src.width, src.count) == (self.scene_px, self.scene_px, 3)
        except Exception:
            return False

    def _save(self) -> None:
        from seaice_utils.data.dataset import write_catalogue

        write_catalogue(self.root, self.rows)
        write_json(self.root / _STATE, {"fingerprint": self.fingerprint, "source": self.source,
                                        "rejected": sorted(self.rejected)})

    # -- queries -----------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        return len(self.rows) >= self.max_scenes

    def has(self, name: str) -> bool:
        return any(r["name"] == name for r in self.rows)

    def is_rejected(self, name: str) -> bool:
        return name in self.rejected

    def count_product(self, product_id: str) -> int:
        return sum(r.get("product_id") == product_id for r in self.rows)

    def plan(self, product: Product, region: dict) -> list[tuple[str, int, int]]:
        """(name, row, col) of the windows still to fetch from a product (none when it is done)."""
        if self.count_product(product.id) >= self.per_product:
            return []
        wins = candidate_windows(product, region=region, scale=self.scale, scene_px=self.scene_px,
                                 min_valid_fraction=self.min_valid, per_product=self.per_product)
        out = []
        for row, col in wins:
            name = _scene_name(product, row, col)
            if not self.has(name) and not self.is_rejected(name):
                out.append((name, row, col))
        return out

    # -- writing -----------------------------------------------------------------------------
    def add(self, product: Product, name: str, row: int, col: int, dn: np.ndarray, *,
            extra: dict | None = None) -> dict | None:
        """Write one scene from its DNs, or reject it when it holds too little data.

        Parameters
        ----------
        dn : (scene_px, scene_px, 3) integer ndarray
            Red, green, blue DNs on the window's grid (0 = no-data).

        Returns
        -------
        dict or None
            The catalogue row written, or None when the window was rejected.
        """
        px = self.scene_px
        if dn.shape != (px, px, 3):
            raise InputError(f"scene {name} of product {product.id}: expected DNs of shape "
                             f"({px}, {px}, 3) (got {dn.shape})")
        if not np.issubdtype(dn.dtype, np.integer):
            raise InputError(f"scene {name} of product {product.id}: expected integer DNs "
                             f"(got {dn.dtype})")
        nodata = np.all(dn == 0, axis=-1)
        valid = 1.0 - float(nodata.mean())
        if valid < self.min_valid or not valid > 0:
            self.rejected.add(name)
            self._save()
            return None
        transform = window_transform(product, row, col, self.scale)
        crs = _crs_text(product.crs)
        if self.fmt == "png8":
            rel = f"scenes/{name}.png"
            write_png(self.root / rel, dn_to_rgb8(dn, offset=product.offset, nodata=nodata))
            stretch = Stretch(offset=product.offset).describe()
        else:
            rel = f"scenes/{name}.tif"
            atomic_write_bytes(self.root / rel, geotiff_bytes(
                harmonize_dn(dn, offset=product.offset, nodata=nodata), crs=crs,
                transform=transform, descriptions=("red", "green", "blue"),
                tags={"reflectance": "DN / 10000 (offset removed)", "product_id": product.id,
                      "source": self.source}))
            stretch = f"none (16-bit DN, offset {product.offset:g} removed)"
        rec = {"name": name, "source": self.source, "file": rel, "collection": self.collection,
               "product_id": product.id,
               "datetime": product.datetime, "tile": product.tile,
               "cloud_cover": "" if product.cloud_cover is None else round(float(product.cloud_cover), 3),
               "processing_baseline": product.baseline or "",
               "reflectance_offset": product.offset, "offset_source": product.offset_source,
               "row_off": row, "col_off": col, "height": px, "width": px, "scale_m": self.scale,
               "valid_fraction": round(valid, 4), "nodata_fraction": round(1.0 - valid, 4),
               "crs": crs, "transform": " ".join(f"{v:.10g}" for v in transform),
               "footprint": footprint_wkt(product, row, col, px, self.scale),
               "format": self.fmt, "stretch": stretch}
        rec.update(extra or {})
        self.rows.append(rec)
        self._save()
        return rec

    def finish(self) -> list[dict]:
        """Write the final catalogue (at most ``max_scenes`` rows) and return its rows."""
        self.rows = self.rows[: self.max_scenes]
        self._save()
        return self.rows


def read_window(bands: Sequence[tuple[Any, int]], row: int, col: int, size: int,
                ratio: float = 1.0) -> np.ndarray:
    """Read one window of three rasterio bands on a common grid, padding outside with 0.

    Parameters
    ----------
    bands : sequence of 3 (dataset, band index)
        Open rasterio datasets and 1-based band indexes holding red, green, blue.
    row, col : int
        Window offset in output pixels.
    size : int
        Window side in output pixels.
    ratio : float
        Output pixel size / native pixel size (1: no resampling; > 1: averaged).

    Returns
    -------
    (size, size, 3) uint16 ndarray
        DNs; pixels outside the raster are 0 (no-data).
    """
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    ds0 = bands[0][0]
    out = np.zeros((size, size, 3), dtype=np.uint16)
    r0, c0 = row * ratio, col * ratio
    r1, c1 = min(ds0.height, (row + size) * ratio), min(ds0.width, (col + size) * ratio)
    if r1 <= r0 or c1 <= c0:
        return out
    orow, ocol = 0, 0
    oh = int(round((r1 - r0) / ratio))
    ow = int(round((c1 - c0) / ratio))
    if oh < 1 or ow < 1:
        return out
    win = Window(c0, r0, c1 - c0, r1 - r0)
    for i, (ds, idx) in enumerate(bands):
        arr = ds.read(idx, window=win, out_shape=(oh, ow),
                      resampling=Resampling.average if ratio > 1 else Resampling.nearest)
        if np.issubdtype(arr.dtype, np.signedinteger):
            arr = np.clip(arr, 0, None)
        out[orow:orow + oh, ocol:ocol + ow, i] = arr.astype(np.uint16)
    return out


def run_products(sink: SceneSink, products: Iterable[Product], fetch, *, region: dict,
                 progress: bool = True, desc: str = "scenes") -> list[dict]:
    """Drive a collection: plan windows per product, ``fetch(product, row, col) -> dn``, write.

    Shared by the Earth Engine, STAC and local paths. Stops at ``max_scenes``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=sink.max_scenes, initial=min(len(sink.rows), sink.max_scenes), desc=desc,
               unit="scene", disable=not progress)
    try:
        for product in products:
            if sink.full:
                break
            for name, row, col in sink.plan(product, region):
                if sink.full or sink.count_product(product.id) >= sink.per_product:
                    break
                dn = fetch(product, row, col)
                if sink.add(product, name, row, col, dn) is not None:
                    bar.update(1)
    finally:
        bar.close()
    return sink.finish()


# --------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------

@dataclass
class CollectResult:
    """What :func:`collect` did: the source asked for, the one used, and why they differ.

    Attributes
    ----------
    requested : str
        ``data.source`` of the profile.
    effective : str
        ``earthengine``, ``stac``, ``local``, ``folder`` or ``synthetic``.
    root : Path
        The dataset folder the later notebooks read.
    records : list of SceneRecord
    reason : str
        Why ``effective`` differs from ``requested`` ('' when it does not).
    details : dict
        Query, credential method (names of environment variables only), counts.
    """

    requested: str
    effective: str
    root: Path
    records: list
    reason: str = ""
    details: dict = field(default_factory=dict)

    @property
    def fell_back(self) -> bool:
        return self.effective == "synthetic" and self.requested != "synthetic"

    @property
    def label(self) -> str:
        """Short description for titles, e.g. ``synthetic (FALLBACK: earthengine unavailable)``."""
        if self.fell_back:
            return f"{self.effective} (FALLBACK: {self.requested} unavailable)"
        return self.effective

    def message(self) -> str:
        n = len(self.records)
        if self.fell_back:
            return (f"DATA SOURCE FALLBACK: data.source is {self.requested!r} but it could not be "
                    f"used: {self.reason}\nContinuing with the embedded SYNTHETIC dataset "
                    f"({n} scenes in {self.root}). Results are not the paper's Ross Sea scenes.")
        what = {"earthengine": "Sentinel-2 scenes from Google Earth Engine",
                "stac": "Sentinel-2 scenes from the STAC API",
                "local": "scenes cut from the local Sentinel-2 products",
                "folder": "scenes of the folder, used as they are",
                "synthetic": "scenes of the embedded synthetic dataset"}[self.effective]
        return f"data source: {self.effective}: {n} {what} in {self.root}"

    def markdown(self) -> str:
        """The message as a Markdown block for notebooks (a warning block when it fell back)."""
        lines = self.message().splitlines()
        if self.fell_back:
            return "> **WARNING: " + lines[0] + "**\n>\n> " + "\n> ".join(lines[1:])
        return "> " + "\n> ".join(lines)

    def as_record(self) -> dict:
        return {"requested": self.requested, "effective": self.effective,
                "fell_back": self.fell_back, "reason": self.reason, "n_scenes": len(self.records),
                "root": str(self.root), "details": self.details,
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = [("requested source (data.source)", self.requested),
                ("source used", self.effective),
                ("fell back to synthetic", "YES" if self.fell_back else "no"),
                ("reason", self.reason or "-"), ("scenes", len(self.records)),
                ("dataset folder", str(self.root))]
        rows += [(k, v) for k, v in self.details.items() if not isinstance(v, (dict, list))]
        return [{"item": k, "value": str(v)} for k, v in rows]


def scene_file(rec) -> Path:
    """The scene file of a record: the catalogue's ``file`` column (``scenes/<name>.tif`` for
    16-bit exports) when present, else the record's ``scene_path``."""
    rel = (rec.meta or {}).get("file")
    return Path(rec.root) / rel if rel else Path(rec.scene_path)


def _records(root: Path, rows: list[dict]):
    from seaice_utils.data.dataset import SceneRecord

    return [SceneRecord(root, r["name"], dict(r)) for r in rows]


def collect(params: dict, outputs: str | os.PathLike, *, progress: bool | None = None,
            environ: dict | None = None) -> CollectResult:
    """Collect the scenes a profile asks for; fall back to synthetic data, loudly, if needed.

    Parameters
    ----------
    params : dict
        Loaded profile (``data`` and ``collect`` sections).
    outputs : path
        Outputs folder; datasets go to ``<outputs>/data/<source>``.
    progress : bool, optional
        Progress bars (default ``global.progress``).
    environ : mapping, optional
        Environment for the Earth Engine credentials (default ``os.environ``).

    Returns
    -------
    CollectResult
        Also recorded as ``data_source`` in ``<outputs>/records`` (for the run manifest and
        :func:`resolve_source`). A fallback emits a :class:`UserWarning` as well.

    Raises
    ------
    CollectionUnavailable
        When the source is unavailable and ``collect.fallback`` is ``error``.
    InputError
        On bad local input (missing band, mismatched grids, wrong dtype), naming the file.
    """
    from seaice_utils.data.dataset import ensure_dataset, ensure_synthetic_dataset

    outputs = Path(outputs)
    show = params["global"]["progress"] if progress is None else progress
    src = params["data"]["source"]
    data_dir = outputs / "data"
    if src == "synthetic":
        root = data_dir / "synthetic"
        result = CollectResult(src, "synthetic", root, ensure_synthetic_dataset(
            root, params, progress=show), details={"generator": "seaice_utils.data.synthetic"})
    elif src == "folder":
        from seaice_utils.collect.local import find_products, ingest_products

        folder = params["data"]["folder"]
        if not folder:
            raise InputError("data.folder must name a folder when data.source is 'folder'")
        products = find_products(folder, params)
        if products:
            root = data_dir / "local"
            rows = ingest_products(products, root, params, progress=show)
            if not rows:
                raise InputError(f"no scene of {params['collect']['scene_px']} px with at least "
                                 f"{params['collect']['min_valid_fraction']:.0%} valid pixels in the "
                                 f"products of {folder}")
            result = CollectResult(src, "local", root, _records(root, rows),
                                   details={"products": len(products), "input_folder": str(folder)})
        else:
            recs = ensure_dataset(outputs, params, progress=show)
            result = CollectResult(src, "folder", Path(folder), recs,
                                   details={"input_folder": str(folder)})
    elif src in ("earthengine", "stac"):
        root = data_dir / src
        try:
            if src == "earthengine":
                from seaice_utils.collect.earthengine import collect_earthengine

                rows, details = collect_earthengine(params, root, progress=show, environ=environ)
            else:
                from seaice_utils.collect.stac import collect_stac

                rows, details = collect_stac(params, root, progress=show)
            if not rows:
                raise CollectionUnavailable(
                    f"no scene matched the query ({details.get('products', 0)} products found; "
                    "widen collect.max_cloud_cover, the dates or the region, or lower "
                    "collect.min_valid_fraction)")
            result = CollectResult(src, src, root, _records(root, rows), details=details)
        except CollectionUnavailable as exc:
            if params["collect"]["fallback"] == "error":
                raise
            sroot = data_dir / "synthetic"
            synth = copy.deepcopy(params)
            synth["data"]["source"] = "synthetic"
            recs = ensure_synthetic_dataset(sroot, synth, progress=show)
            result = CollectResult(src, "synthetic", sroot, recs, reason=str(exc),
                                   details={"generator": "seaice_utils.data.synthetic"})
            warnings.warn(result.message(), UserWarning, stacklevel=2)
    else:  # load_params rejects other values; guard direct dict use
        raise InputError(f"data.source must be synthetic, folder, earthengine or stac (got {src!r})")
    from seaice_utils.report import record

    rec = result.as_record()
    rec["requested_folder"] = params["data"]["folder"]
    record(outputs, DATA_SOURCE_RECORD, rec)
    return result


def resolve_source(params: dict, outputs: str | os.PathLike) -> dict:
    """The profile with ``data`` pointing at the dataset notebook 01 actually produced.

    Notebook 01 records the source it used (``<outputs>/records/data_source.json``). If that was
    a fallback to synthetic data, the returned profile has ``data.source: synthetic`` (and a
    :class:`UserWarning` says so); if local products were ingested, ``data.source: folder`` with
    ``data.folder: <outputs>/data/local``. Otherwise, or when the record belongs to another
    profile (another ``data.source`` or ``data.folder``), or there is no record, the profile is
    returned unchanged. Later notebooks call it right after ``load_params``::

        params = resolve_source(load_params(params_file), outputs_dir)
        records = ensure_dataset(outputs_dir, params)

    Returns a new dict; ``params`` is not modified.
    """
    out = copy.deepcopy(params)
    path = Path(outputs) / "records" / f"{DATA_SOURCE_RECORD}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return out
    src = params["data"]["source"]
    if rec.get("requested") != src or rec.get("requested_folder") != params["data"]["folder"]:
        return out
    eff = rec.get("effective")
    if eff == "synthetic" and src != "synthetic":
        out["data"]["source"] = "synthetic"
        warnings.warn(f"data.source is {src!r}, but notebook 01 could not use it "
                      f"({rec.get('reason', 'no reason recorded')}); using the synthetic dataset "
                      "it fell back to", UserWarning, stacklevel=2)
    elif eff == "local":
        out["data"]["source"] = "folder"
        out["data"]["folder"] = str(Path(outputs) / "data" / "local")
    return out


# --------------------------------------------------------------------------------------------
# figure
# --------------------------------------------------------------------------------------------

def _parse_wkt(text: str) -> np.ndarray | None:
    nums = re.findall(r"(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)", text or "")
    return np.array(nums, dtype=float) if nums else None


def collection_figure(records: Sequence, *, region: dict | Sequence[float] | None = None,
                      n_thumbs: int = 4, thumb_px: int = 256, title: str = ""):
    """Footprints of the scenes over the query region (when known) and a few thumbnails.

    Parameters
    ----------
    records : sequence of SceneRecord
        As returned by :func:`collect` / :func:`seaice_utils.dataset.ensure_dataset`; footprints
        come from the catalogue's ``footprint`` column (absent for synthetic scenes).
    region : dict or (west, south, east, north), optional
    n_thumbs : int
    thumb_px : int
        Thumbnail side in pixels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import cv2
    from matplotlib.figure import Figure

    from seaice_utils.core.scenes import read_scene

    if isinstance(region, dict):
        region = [region["west"], region["south"], region["east"], region["north"]]
    shown = list(records)[:n_thumbs]
    # a pyplot-free Figure: notebooks show the saved PNG once, not a second inline copy
    fig = Figure(figsize=(3.2 * (1 + max(len(shown), 1)), 3.4))
    axes = fig.subplots(1, 1 + max(len(shown), 1), squeeze=False)
    ax = axes[0, 0]
    feet = [(_parse_wkt(r.meta.get("footprint", "")), r.name) for r in records]
    feet = [(f, n) for f, n in feet if f is not None]
    if region is not None:
        w, s, e, n = region
        ax.plot([w, e, e, w, w], [s, s, n, n, s], "k--", lw=1, label="query region")
    for f, _ in feet:
        ax.fill(f[:, 0], f[:, 1], alpha=0.5, lw=0.5, ec="tab:blue", fc="tab:blue")
    if feet or region is not None:
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    if feet:
        ax.set_title(f"{len(feet)} scene footprints")
    else:
        ax.text(0.5, 0.5, "no footprints\n(synthetic or\nungeoreferenced scenes)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_title("footprints")
        if region is None:
            ax.set_xticks([])
            ax.set_yticks([])
    if region is not None:
        ax.legend(loc="lower left", fontsize=7)
    for i, rec in enumerate(shown):
        a = axes[0, i + 1]
        sc = read_scene(scene_file(rec), name=rec.name)
        a.imshow(cv2.resize(sc.rgb, (thumb_px, thumb_px), interpolation=cv2.INTER_AREA))
        a.set_title(rec.name, fontsize=7)
        a.axis("off")
    if not shown:
        axes[0, 1].axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
