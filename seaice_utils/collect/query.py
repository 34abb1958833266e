"""The query of a profile, as each real-data path sends it, and what each source needs.

The ``collect`` section of a profile states the paper's query once (region, dates, L1C/L2A, cloud
filter, bands, scale, scene size, counts, export format). :func:`ee_request` and
:func:`stac_request` turn it into the plain dicts the Earth Engine and STAC code consume 1:1;
:func:`query_rows` and :func:`access_rows` are the tables notebook 01 shows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from seaice_utils.collect.credentials import credential_status
from seaice_utils.collect.products import EXPORT_FORMATS, band_id
from seaice_utils.errors import ParamsError

__all__ = ["EE_COLLECTIONS", "EE_CLOUD_PROPERTY", "STAC_COLLECTIONS", "ee_request",
           "stac_request", "query_rows", "access_rows"]

#: Earth Engine collection per processing level (harmonized: the baseline-04.00 offset removed).
EE_COLLECTIONS = {"L1C": "COPERNICUS/S2_HARMONIZED", "L2A": "COPERNICUS/S2_SR_HARMONIZED"}
#: Scene-level cloud property of the Earth Engine Sentinel-2 collections (percent).
EE_CLOUD_PROPERTY = "CLOUDY_PIXEL_PERCENTAGE"
#: Default STAC collections per processing level (Earth Search v1 naming), tried in order: the
#: next when one gives no items or does not exist. Collection 1 (``sentinel-2-c1-l2a``: ESA's
#: reprocessing to baseline >= 05.00) lacks November 2016 to November 2019 and 2022 (Earth
#: Search README, April 2024), so the paper's November 2019 query falls back to
#: ``sentinel-2-l2a``.
STAC_COLLECTIONS = {"L1C": ["sentinel-2-l1c"], "L2A": ["sentinel-2-c1-l2a", "sentinel-2-l2a"]}


def _dates(params: dict) -> tuple[str, str]:
    c = params["collect"]
    start, end = str(c["start_date"]), str(c["end_date"])
    if not date.fromisoformat(start) < date.fromisoformat(end):
        raise ParamsError(f"collect.end_date must be after collect.start_date (got {start} .. {end})")
    return start, end


def _region(params: dict) -> dict[str, float]:
    w, s, e, n = (float(v) for v in params["collect"]["region"])
    return {"west": w, "south": s, "east": e, "north": n}


def ee_request(params: dict) -> dict[str, Any]:
    """The Earth Engine query of a profile as a plain dict (what :mod:`.earthengine` sends).

    :func:`seaice_utils.collect.earthengine.build_collection` turns it 1:1 into
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
    """The STAC item search of a profile as a plain dict (what :mod:`.stac` sends).

    ``datetime`` is the closed interval from ``start_date`` 00:00:00 to the second before
    ``end_date`` (which is exclusive, as in Earth Engine). ``collections`` lists the collections
    to search one at a time, in order, until one gives items
    (:func:`seaice_utils.collect.stac.search_collections`).

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> r = stac_request(defaults())
    >>> r["bbox"], r["datetime"], r["query"]
    ([-180.0, -78.0, -140.0, -70.0], '2019-11-01T00:00:00Z/2019-11-30T23:59:59Z', {'eo:cloud_cover': {'lte': 30}})
    >>> r["collections"]
    ['sentinel-2-c1-l2a', 'sentinel-2-l2a']
    """
    c = params["collect"]
    reg = _region(params)
    start, end = _dates(params)
    last = datetime.fromisoformat(end) - timedelta(seconds=1)
    colls = c["stac_collection"] or STAC_COLLECTIONS[c["collection"]]
    colls = [colls] if isinstance(colls, str) else list(colls)
    first = colls[0].lower()
    level = "L2A" if "l2a" in first else "L1C" if "l1c" in first else c["collection"]
    return {
        "url": c["stac_url"],
        "collections": colls,
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
         "stac": s["collections"][0] + "".join(f", else {c} (if the one before has no items)"
                                              for c in s["collections"][1:]) + f" at {s['url']}",
         "local products": folder},
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
        {"setting": "export", "earthengine": f"{c['export_format']}: "
         f"{EXPORT_FORMATS[c['export_format']]}", "stac": "same", "local products": "same"},
        {"setting": "reflectance offset", "earthengine": "0 (harmonized collection)",
         "stac": str(c["reflectance_offset"]) + (" (per item: raster:bands offset in Collection "
                                                  "1; boa_offset_applied / baseline otherwise)"
                                                  if c["reflectance_offset"] == "auto" else ""),
         "local products": str(c["reflectance_offset"])},
    ]


def access_rows(params: dict, *, environ: dict | None = None) -> list[dict[str, str]]:
    """What each source needs and whether it is configured here (offline; shows no secret)."""
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
