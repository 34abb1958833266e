"""Collecting the scenes from an open STAC API, without an account (``data.source: stac``).

The query (:func:`seaice_utils.collect.query.stac_request`: collections, bbox, datetime
interval, ``eo:cloud_cover`` filter) is sent as a STAC item search with ``pystac-client`` to
``collect.stac_url`` (Earth Search v1 by default). For each item the red, green and blue assets
are found by key (``red``, ``B04``, ...) or by their ``eo:bands`` names and opened with rasterio
through GDAL's ``/vsicurl/`` (``/vsis3/`` for ``s3://`` hrefs, unsigned); each scene is a
windowed read of the three COGs (HTTP range requests, only the tiles needed), cut on the
product's own UTM grid like the Earth Engine path and written by
:class:`seaice_utils.collect.sink.SceneSink`.

Collections, in order (``collect.stac_collection``; :func:`search_collections`)
-------------------------------------------------------------------------------
1. ``sentinel-2-c1-l2a``, Earth Search's Collection 1: COGs of ESA's reprocessing to baseline
   05.00 or later. Its items lack November 2016 to November 2019 and 2022 (Earth Search README,
   as of April 2024), which includes the paper's November 2019.
2. ``sentinel-2-l2a``, the older collection (all baselines), searched when the first gives no
   items or does not exist (an HTTP 404 from the search).

Only the first collection that gives items is used; the catalogue's ``collection`` column and
``details["collection"]`` say which, ``details["searched"]`` what each collection gave.

Reflectance offset of an item (``collect.reflectance_offset: auto``)
---------------------------------------------------------------------
Earth Search (README, "Gain/Offset in Items after Jan 25, 2022") documents the asset's
``raster:bands`` ``scale`` and ``offset``: an offset other than 0 is to be applied after the
scale. Its maintainers call ``earthsearch:boa_offset_applied`` the reliable flag for the older
collection, whose ``raster:bands`` offset may say -0.1 where the offset was already removed
(earth-search issue 9). So, per collection:

* Collection 1 (an id with ``c1``): ``earthsearch:boa_offset_applied`` true -> 0; else the
  asset's ``raster:bands`` offset (scale 0.0001; -0.1 for these baseline >= 05.00 DNs, which
  carry ``BOA_ADD_OFFSET`` -1000); else the processing baseline; else -0.1 (the collection holds
  baselines >= 05.00 only).
* Other collections: ``earthsearch:boa_offset_applied`` true -> 0 (already removed); the
  processing baseline (``s2:processing_baseline``, or the ``_Nxxxx`` token of
  ``s2:product_uri``) -> -0.1 from 04.00 on, else 0; the asset's ``raster:bands`` offset; else 0.

Earth Search has mis-tagged some 2022 and 2025 items of ``sentinel-2-l2a`` (offset removed but
``boa_offset_applied`` false: earth-search issues 66 and 71); set ``collect.reflectance_offset``
to a number to override. The paper's November 2019 scenes predate baseline 04.00: offset 0.

Cloud masks (``collect.cloud_masks``)
------------------------------------
Each item's scene classification asset (:data:`~seaice_utils.collect.masks.STAC_SCL_KEYS`,
``scl`` in Earth Search's L2A collections), else a cloud-probability asset
(:data:`~seaice_utils.collect.masks.STAC_CLOUD_KEYS`), is read on every scene's grid (nearest
neighbour from 20 m) and written by the sink as the scene's mask under the rule of
:mod:`seaice_utils.collect.masks`; an item with neither gets none (``cloud_mask_source``
``none``).

GDAL settings used for the reads (:func:`gdal_options`): no directory listing on open, HTTP
timeouts from ``collect.timeout_s``, retries, merged range requests, unsigned S3 access.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from typing import Any

import numpy as np

from seaice_utils.collect.masks import STAC_CLOUD_KEYS, STAC_SCL_KEYS, read_on_grid
from seaice_utils.collect.products import (CollectionUnavailable, Product, band_id,
                                           offset_for_baseline, parse_baseline)
from seaice_utils.collect.query import stac_request
from seaice_utils.collect.sink import SceneSink, mask_counts, read_window, run_products
from seaice_utils.collect.windows import window_transform

__all__ = ["gdal_options", "vsi_path", "search_items", "search_collections", "asset_href",
           "is_collection1", "item_offset", "product_from_item", "mask_asset", "collect_stac"]


def gdal_options(timeout_s: float = 60) -> dict[str, str]:
    """GDAL configuration for reading COGs over HTTP (passed to ``rasterio.Env``)."""
    t = str(max(1, int(round(timeout_s))))
    return {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_TIMEOUT": t,
            "GDAL_HTTP_CONNECTTIMEOUT": t, "GDAL_HTTP_MAX_RETRY": "3",
            "GDAL_HTTP_RETRY_DELAY": "1", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
            "GDAL_HTTP_MULTIRANGE": "SINGLE_GET", "VSI_CACHE": "TRUE",
            "AWS_NO_SIGN_REQUEST": "YES"}


def vsi_path(href: str) -> str:
    """The GDAL virtual path of an asset href.

    >>> vsi_path("https://host/a/B04.tif"), vsi_path("s3://bucket/a/B04.tif"), vsi_path("/data/x.tif")
    ('/vsicurl/https://host/a/B04.tif', '/vsis3/bucket/a/B04.tif', '/data/x.tif')
    """
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith("file://"):
        return href[7:]
    return href


class _NoSuchCollection(Exception):
    pass


def search_items(spec: dict, collection: str | None = None) -> list:
    """Items of a STAC item search in one collection (``pystac.Item``), sorted by cloud cover,
    date and id.

    Parameters
    ----------
    spec : dict
        :func:`seaice_utils.collect.query.stac_request`.
    collection : str, optional
        The collection searched (default: the first of ``spec["collections"]``).

    Raises
    ------
    CollectionUnavailable
        The API cannot be reached or refuses the search.
    """
    try:
        from pystac_client import Client
    except ImportError:
        raise CollectionUnavailable("the STAC path needs pystac-client (pip install "
                                    "pystac-client)") from None
    collection = collection or spec["collections"][0]
    try:
        client = Client.open(spec["url"], timeout=spec["timeout_s"])
        search = client.search(collections=[collection], bbox=spec["bbox"],
                               datetime=spec["datetime"], query=spec["query"],
                               max_items=spec["max_products"])
        items = list(search.items())
    except Exception as exc:  # requests' connection errors, pystac_client.APIError, ...
        if getattr(exc, "status_code", None) == 404:
            raise _NoSuchCollection(str(exc)[:200]) from None
        raise CollectionUnavailable(
            f"the STAC API at {spec['url']} could not be searched ({type(exc).__name__}: "
            f"{str(exc)[:400]}); check the network or collect.stac_url") from None

    def key(it):
        cc = it.properties.get("eo:cloud_cover")
        return (cc if cc is not None else 101.0, str(it.properties.get("datetime")), it.id)

    return sorted(items, key=key)


def search_collections(spec: dict) -> tuple[list, str, list[dict]]:
    """Search ``spec["collections"]`` in order; the first that gives items is used.

    Returns
    -------
    items : list of pystac.Item
        Those of the collection used (empty when none gave any).
    collection : str
        The collection used (the last one searched when none gave items).
    searched : list of dict
        ``{"collection", "items"}`` per collection searched, in order; ``items`` is
        ``"does not exist"`` where the API answered 404.

    Raises
    ------
    CollectionUnavailable
        The API cannot be reached or refuses a search (not a missing collection).
    """
    searched: list[dict] = []
    items: list = []
    coll = spec["collections"][0]
    for coll in spec["collections"]:
        try:
            items = search_items(spec, coll)
        except _NoSuchCollection:
            searched.append({"collection": coll, "items": "does not exist"})
            items = []
            continue
        searched.append({"collection": coll, "items": len(items)})
        if items:
            break
    return items, coll, searched


def asset_href(item, band: str) -> tuple[str, Any]:
    """Href and asset of a band (``B04`` style) of an item: by key, then by ``eo:bands`` name.

    Raises
    ------
    KeyError
        The item has no asset for the band.
    """
    names = {band_id(band, style="file"), band_id(band, style="ee"),
             band_id(band, style="common")}
    lower = {n.lower() for n in names}
    for k, a in item.assets.items():
        if k in names or k.lower() in lower:
            return a.href, a
    for k, a in item.assets.items():
        if k.endswith("-jp2"):
            continue
        bands = a.extra_fields.get("eo:bands") or [
            b.get("eo:bands", [{}])[0] if isinstance(b.get("eo:bands"), list) else {}
            for b in a.extra_fields.get("bands", [])]
        for b in bands or []:
            if b.get("name") in names or str(b.get("name", "")).lower() in lower:
                return a.href, a
    raise KeyError(f"item {item.id} has no asset for band {band} (assets: "
                   f"{', '.join(item.assets)})")


def mask_asset(item) -> tuple[str, str] | None:
    """``(href, source)`` of an item's cloud-mask asset: the scene classification (``scl``)
    first, else a cloud probability (``cloud_probability``); None when it has neither."""
    for keys, source in ((STAC_SCL_KEYS, "scl"), (STAC_CLOUD_KEYS, "cloud_probability")):
        for k in keys:
            if k in item.assets and item.assets[k].href:
                return item.assets[k].href, source
    return None


def is_collection1(collection: str | None) -> bool:
    """Whether a collection id names Earth Search's Collection 1 (``sentinel-2-c1-l2a``).

    >>> is_collection1("sentinel-2-c1-l2a"), is_collection1("sentinel-2-l2a"), is_collection1(None)
    (True, False, False)
    """
    return bool(collection) and re.search(r"(^|[-_])c1([-_]|$)", collection.lower()) is not None


def _raster_offset(asset) -> float | None:
    """The ``raster:bands`` offset of an asset when its scale is 0.0001 (or not given)."""
    rb = asset.extra_fields.get("raster:bands") or []
    if not rb or not isinstance(rb[0], dict) or rb[0].get("offset") is None:
        return None
    scale = rb[0].get("scale")
    if scale is not None and not math.isclose(float(scale), 1e-4, rel_tol=1e-6):
        return None  # not reflectance x 10000: the project's DN scale would not apply
    return round(float(rb[0]["offset"]), 6)


def item_offset(item, asset, offset_param: Any) -> tuple[float, str, str | None]:
    """Reflectance offset of an item's DNs: ``(offset, where it came from, baseline)``.

    The rules per collection are in the module docstring.
    """
    p = item.properties
    baseline = parse_baseline(p.get("s2:processing_baseline") or
                              p.get("sentinel:processing_baseline") or p.get("processing:version"))
    baseline = baseline or parse_baseline(p.get("s2:product_uri") or p.get("s2:granule_id") or "")
    if offset_param != "auto":
        return float(offset_param), "collect.reflectance_offset", baseline
    coll = item.collection_id or ""
    applied = p.get("earthsearch:boa_offset_applied", p.get("sentinel:boa_offset_applied"))
    if applied is True:
        return 0.0, "earthsearch:boa_offset_applied (already removed)", baseline
    declared = _raster_offset(asset)
    if is_collection1(coll):
        if declared is not None:
            return declared, f"raster:bands offset of the asset ({coll})", baseline
        if baseline:
            return offset_for_baseline(baseline), f"processing baseline {baseline}", baseline
        return -0.1, f"{coll}: Collection 1 holds baselines >= 05.00 only", None
    if baseline:
        note = ", earthsearch:boa_offset_applied false" if applied is False else ""
        return offset_for_baseline(baseline), f"processing baseline {baseline}{note}", baseline
    if declared is not None:
        return declared, "raster:bands offset of the asset", None
    return 0.0, "baseline unknown: no offset assumed", None


def _tile(item) -> str:
    p = item.properties
    if p.get("s2:mgrs_tile"):
        return str(p["s2:mgrs_tile"])
    if p.get("mgrs:utm_zone") is not None:
        return f"{int(p['mgrs:utm_zone']):02d}{p.get('mgrs:latitude_band', '')}" \
               f"{p.get('mgrs:grid_square', '')}"
    m = re.search(r"_T?(\d{2}[A-Z]{3})_", item.id + "_")
    return m[1] if m else ""


def _rings(geometry: dict | None) -> list | None:
    if not geometry:
        return None
    if geometry.get("type") == "Polygon":
        return geometry["coordinates"]
    if geometry.get("type") == "MultiPolygon":
        return [r for poly in geometry["coordinates"] for r in poly]
    return None


def product_from_item(item, spec: dict, datasets: list) -> Product:
    """A :class:`~seaice_utils.collect.products.Product` of an item whose R, G, B assets are
    open."""
    ds = datasets[0]
    _, asset = asset_href(item, spec["bands"][0])
    off, src, baseline = item_offset(item, asset, spec["reflectance_offset"])
    cc = item.properties.get("eo:cloud_cover")
    when = str(item.properties.get("datetime") or "")
    return Product(id=item.id, crs=ds.crs.to_wkt() if ds.crs.to_epsg() is None else
                   f"EPSG:{ds.crs.to_epsg()}", transform=tuple(ds.transform)[:6],
                   height=ds.height, width=ds.width,
                   datetime=when[:19] + "Z" if when else "",
                   tile=_tile(item), cloud_cover=cc, footprint=_rings(item.geometry),
                   offset=off, offset_source=src, baseline=baseline,
                   extra={"collection": item.collection_id})


def collect_stac(params: dict, root: str | os.PathLike, *,
                 progress: bool = True) -> tuple[list[dict], dict]:
    """Collect the profile's scenes from the STAC API into ``root``.

    Returns
    -------
    rows : list of dict
        Catalogue rows (also in ``root/catalogue.csv``).
    details : dict
        The request, the collection used, what each collection searched gave, the number of
        items found and skipped.

    Raises
    ------
    CollectionUnavailable
        The API or the COG hosts cannot be reached.
    """
    import rasterio

    spec = stac_request(params)
    items, used, searched = search_collections(spec)
    sink = SceneSink(root, source="stac", query={**spec, "collection": used}, params=params)
    skipped: list[str] = []
    mask_problems: list[str] = []
    opened: dict[str, list] = {}
    masks: dict[str, tuple] = {}

    def products():
        for item in items:
            if sink.full:
                return
            try:
                hrefs = [asset_href(item, b)[0] for b in spec["bands"]]
            except KeyError as exc:
                skipped.append(f"{item.id}: {exc.args[0]}")
                continue
            try:
                dss = [rasterio.open(vsi_path(h)) for h in hrefs]
            except rasterio.errors.RasterioIOError as exc:
                raise CollectionUnavailable(
                    f"cannot open the COGs of STAC item {item.id} ({str(exc)[:300]}); check the "
                    "network (the search worked, the asset host did not answer)") from None
            grids = {(str(d.crs), tuple(d.transform)[:6], d.shape) for d in dss}
            if len(grids) != 1:
                skipped.append(f"{item.id}: red, green and blue assets are on different grids")
                for d in dss:
                    d.close()
                continue
            opened[item.id] = dss
            found = mask_asset(item) if sink.cloud_masks else None
            if found is not None:
                try:
                    masks[item.id] = (rasterio.open(vsi_path(found[0])), found[1])
                except rasterio.errors.RasterioIOError as exc:
                    mask_problems.append(f"{item.id}: {str(exc)[:200]}")
            try:
                yield product_from_item(item, spec, dss)
            finally:
                for d in opened.pop(item.id, []):
                    d.close()
                if item.id in masks:
                    masks.pop(item.id)[0].close()

    def fetch(product: Product, row: int, col: int) -> np.ndarray:
        dss = opened[product.id]
        ratio = float(spec["scale"]) / product.native_res
        try:
            return read_window([(d, 1) for d in dss], row, col, spec["scene_px"], ratio)
        except rasterio.errors.RasterioIOError as exc:
            raise CollectionUnavailable(f"reading {product.id} at row {row}, col {col} failed "
                                        f"({str(exc)[:300]}); rerun to resume") from None

    def fetch_mask(product: Product, row: int, col: int):
        if product.id not in masks:
            return None, "none"
        ds, source = masks[product.id]
        t = window_transform(product, row, col, float(spec["scale"]))
        try:
            return read_on_grid(ds, t, spec["scene_px"], crs=product.crs), source
        except rasterio.errors.RasterioIOError as exc:
            raise CollectionUnavailable(f"reading the cloud mask of {product.id} at row {row}, "
                                        f"col {col} failed ({str(exc)[:300]}); rerun to "
                                        "resume") from None
        except ValueError as exc:  # another CRS, not north-up: no mask rather than a wrong one
            mask_problems.append(f"{product.id}: {exc}")
            masks.pop(product.id)[0].close()
            return None, "none"

    with rasterio.Env(**gdal_options(spec["timeout_s"])):
        rows = run_products(sink, products(), fetch, region=dict(zip(
            ("west", "south", "east", "north"), spec["bbox"])), progress=progress,
            desc="STAC scenes", fetch_mask=fetch_mask)
    if skipped:
        warnings.warn(f"{len(skipped)} STAC items skipped: " + "; ".join(skipped[:5]), UserWarning,
                      stacklevel=2)
    if mask_problems:
        warnings.warn(f"{len(mask_problems)} STAC cloud masks not used: " +
                      "; ".join(mask_problems[:5]), UserWarning, stacklevel=2)
    details = {"stac_url": spec["url"], "collection": used,
               "searched": "; ".join(f"{s['collection']}: {s['items']}" +
                                     ("" if s["items"] == "does not exist" else " items")
                                     for s in searched),
               "level": spec["level"], "products": len(items), "skipped_products": len(skipped),
               "cloud_masks": mask_counts(rows), "request": spec}
    return rows, details
