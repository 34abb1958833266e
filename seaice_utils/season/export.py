"""A season for the tools scientists use: a STAC catalogue and a CF NetCDF cube of its dates.

:func:`export_season` (the end of :func:`~seaice_utils.season.run.run_season`) writes, from the
date COGs and the rows of ``season_areas.csv``::

    <out>/stac/collection.json        STAC Collection of the season (pystac's self-contained
                                      layout: every link relative, so the folder can move)
    <out>/stac/<date>/<date>.json     one STAC Item per date
    <out>/season.nc                   CF-1.8 NetCDF cube (time, y, x)

**STAC.** The Collection's extent is the season grid's bounding box in WGS84 (the smallest
rectangle holding every scene footprint; on a polar grid its lon/lat box is wider than the
footprints) and the first and last dates. Each Item's ``datetime`` is its date (UTC midnight),
its geometry that box; its one asset ``classes`` is the date COG (``../../dates/<date>_classes
.tif``, role ``data``, media type COG) with the projection (``proj:code`` or ``proj:wkt2``,
``proj:shape``, ``proj:transform``), raster (one uint8 band, nodata 255) and classification
(every code, its name, description and colour) extensions; its properties carry the date's row
of ``season_areas.csv`` as ``seaice:<column>`` (same numbers, six decimals); ``derived_from``
links name the scenes' class maps (``../../scenes/...``) and the input scenes (relative paths).
``pystac.Collection.from_file("OUT/stac/collection.json")`` loads it; ``stackstac.stack(items,
assets=["classes"])`` or ``odc.stac.load(items, bands=["classes"])`` stack it.

**NetCDF.** ``classes`` (uint8, ``_FillValue`` 255, ``flag_values`` / ``flag_meanings``: the
codes of :mod:`seaice_utils.core.classes`) on ``time`` (the dates), ``y`` and ``x`` (pixel
centres of the season grid, metres), its grid mapping in the scalar ``crs`` variable
(``crs_wkt`` and GDAL's ``spatial_ref``; ``grid_mapping_name`` and its parameters for polar
stereographic, Lambert azimuthal equal-area and UTM grids), and every numeric column of the
areas table as a variable on ``time`` (``thick_km2`` ... ``cloud_share``, ``quality`` as text).
Compressed (zlib, one chunk per date). ``xarray.open_dataset("OUT/season.nc")`` opens it (the
class codes come back as floats with NaN for no data; ``mask_and_scale=False`` keeps the uint8
codes). The cube is built in memory: dates x height x width bytes.

Every file is written only when its bytes changed (through the ownership ledger); a rerun of the
same season leaves them byte-identical. The date COGs carry their date and, where every scene
of the date says so in its tags (a catalogue's ``collection`` or ``product_id``), the platform
(:func:`date_tags`).

pystac, xarray and h5netcdf are the ``geo`` extra's; without them the exports are skipped with a
warning and the season's CSV and COGs are written as before.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from seaice_utils import __version__
from seaice_utils.core.classes import CODE_DESCRIPTIONS, MAP_CODES, NODATA, PALETTE
from seaice_utils.core.geotiff import ATTRIBUTION
from seaice_utils.core.ledger import publish_if_changed

__all__ = ["export_season", "date_tags", "date_platforms", "scene_platform", "CLASS_FLAGS",
           "COLLECTION_ID", "ASSET_KEY"]

COLLECTION_ID = "seaice-season"
#: The key of an Item's class-map asset.
ASSET_KEY = "classes"
#: Each code's one-word name (STAC ``classification`` names, CF ``flag_meanings``).
CLASS_FLAGS = {c: re.sub(r"[^0-9A-Za-z]+", "_", CODE_DESCRIPTIONS[c]).strip("_")
               for c in MAP_CODES}
SENTINEL_2 = "Sentinel-2"
_PLATFORM_TAGS = ("platform", "spacecraft_name", "spacecraft", "mission", "constellation",
                  "collection", "product_id")
_S2 = re.compile(r"sentinel[-_ ]?2|copernicus/s2|(^|[^0-9a-z])s2[abcd]?_", re.I)
_NUMBERS = ("n_scenes", "cloud_masks")


def scene_platform(path) -> str | None:
    """``"Sentinel-2"`` when the scene's GeoTIFF tags say so (a platform, mission, collection or
    product id naming Sentinel-2), else None (unknown; also for a file without tags)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except Exception:                             # noqa: BLE001  (unknown, not an error)
        return None
    for k, v in tags.items():
        if k.lower() in _PLATFORM_TAGS and _S2.search(str(v)):
            return SENTINEL_2
    return None


def date_platforms(scenes: Sequence[tuple]) -> dict[str, str | None]:
    """date -> the platform every scene of the date shares (None when one is unknown)."""
    out: dict[str, str | None] = {}
    for day, f in scenes:
        p = scene_platform(f)
        key = day.isoformat()
        out[key] = p if out.get(key, p) == p else None
    return out


def date_tags(day: str, platform: str | None = None) -> dict:
    """The tags of a date COG: its acquisition date, and its platform when known."""
    return {"ACQUISITION_DATE": day, **({"PLATFORM": platform} if platform else {})}


def _grid(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return tuple(src.transform)[:6], (src.height, src.width), src.crs


def _bbox_wgs84(transform, shape, crs) -> list[float]:
    from rasterio.warp import transform_bounds

    a, _, c, _, e, f = transform
    h, w = shape
    xs, ys = (c, c + a * w), (f, f + e * h)
    b = transform_bounds(crs, "EPSG:4326", min(xs), min(ys), max(xs), max(ys), densify_pts=21)
    return [round(float(v), 7) for v in b]


def _geometry(bbox: Sequence[float]) -> dict:
    """The lon/lat box as GeoJSON; split in two at the antimeridian when it crosses it."""
    w, s, e, n = bbox

    def box(x0, x1):
        return [[[x0, s], [x1, s], [x1, n], [x0, n], [x0, s]]]

    if w <= e:
        return {"type": "Polygon", "coordinates": box(w, e)}
    return {"type": "MultiPolygon", "coordinates": [box(w, 180.0), box(-180.0, e)]}


def _midnight(day: str) -> _dt.datetime:
    return _dt.datetime.combine(_dt.date.fromisoformat(day), _dt.time(), _dt.timezone.utc)


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def _stac_files(folder, rows, sources, grid, platforms) -> dict[Path, bytes]:
    """path -> JSON bytes of the Collection and its Items."""
    import pystac
    from pystac.extensions.classification import Classification, ClassificationExtension
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    transform, shape, crs = grid
    bbox = _bbox_wgs84(transform, shape, crs)
    days = [r["date"] for r in rows]
    coll = pystac.Collection(
        id=COLLECTION_ID,
        title=f"Sea-ice classes, {days[0]} to {days[-1]}",
        description=("Per-date sea-ice class maps of a season (seaice season): "
                     + ", ".join(f"{c} {CODE_DESCRIPTIONS[c]}" for c in MAP_CODES)
                     + ". Areas per date in the items' seaice:* properties. " + ATTRIBUTION),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[_midnight(days[0]), _midnight(days[-1])]])),
        license="other", keywords=["sea ice", "Sentinel-2", "classification"],
        catalog_type=pystac.CatalogType.SELF_CONTAINED)
    classes = [Classification.create(
        value=c, name=CLASS_FLAGS[c], description=CODE_DESCRIPTIONS[c],
        color_hint="{:02X}{:02X}{:02X}".format(*PALETTE[c]), nodata=True if c == NODATA else None)
        for c in MAP_CODES]
    epsg = crs.to_epsg()
    for row in rows:
        day = row["date"]
        props = {f"seaice:{k}": (v if k in _NUMBERS or isinstance(v, str) else round(v, 6))
                 for k, v in row.items() if k != "date"}
        if platforms.get(day):
            props.update(constellation=platforms[day].lower(), instruments=["msi"])
        item = pystac.Item(id=day, geometry=_geometry(bbox), bbox=bbox,
                           datetime=_midnight(day), properties=props)
        item_dir = folder.item_path(day).parent
        asset = pystac.Asset(href=_rel(folder.date_path(day), item_dir),
                             media_type=pystac.MediaType.COG, roles=["data"],
                             title=f"sea-ice classes {day}")
        item.add_asset(ASSET_KEY, asset)
        proj = ProjectionExtension.ext(item, add_if_missing=True)
        proj.apply(code=f"EPSG:{epsg}" if epsg else None,
                   wkt2=None if epsg else crs.to_wkt(version="WKT2_2019"),
                   shape=list(shape), transform=[float(v) for v in transform])
        RasterExtension.ext(asset, add_if_missing=True).bands = [RasterBand.create(
            data_type=DataType.UINT8, nodata=NODATA, spatial_resolution=abs(transform[0]))]
        ClassificationExtension.ext(asset, add_if_missing=True).classes = classes
        for scene, class_map in sources.get(day, []):
            item.add_link(pystac.Link("derived_from", _rel(class_map, item_dir),
                                      media_type=pystac.MediaType.COG,
                                      title=f"class map of {Path(scene).name}"))
            item.add_link(pystac.Link("derived_from", _rel(scene, item_dir),
                                      title=f"scene {Path(scene).name}"))
        coll.add_item(item)
    coll.normalize_hrefs(str(folder.stac_dir.resolve()))
    out = {folder.collection_path: coll}
    out.update({folder.item_path(i.id): i for i in coll.get_items()})
    return {p: (json.dumps(o.to_dict(include_self_link=False, transform_hrefs=True), indent=2,
                           ensure_ascii=False) + "\n").encode() for p, o in out.items()}


def _grid_mapping(crs) -> dict:
    """CF grid-mapping attributes of a rasterio CRS: the WKT always, the CF parameters of the
    projections seasons use (polar stereographic, Lambert azimuthal equal-area, UTM)."""
    wkt = crs.to_wkt()
    attrs = {"crs_wkt": wkt, "spatial_ref": wkt}
    epsg = crs.to_epsg()
    if epsg:
        attrs["epsg_code"] = f"EPSG:{epsg}"
    p = crs.to_dict()
    if p.get("datum") == "WGS84" or p.get("ellps") == "WGS84":
        attrs.update(semi_major_axis=6378137.0, inverse_flattening=298.257223563)
    fe, fn = float(p.get("x_0", 0.0)), float(p.get("y_0", 0.0))
    proj = p.get("proj")
    if proj == "stere" and abs(float(p.get("lat_0", 0.0))) == 90.0:
        attrs.update(grid_mapping_name="polar_stereographic",
                     latitude_of_projection_origin=float(p["lat_0"]),
                     straight_vertical_longitude_from_pole=float(p.get("lon_0", 0.0)),
                     false_easting=fe, false_northing=fn)
        if "lat_ts" in p:
            attrs["standard_parallel"] = float(p["lat_ts"])
        else:
            attrs["scale_factor_at_projection_origin"] = float(p.get("k", p.get("k_0", 1.0)))
    elif proj == "laea":
        attrs.update(grid_mapping_name="lambert_azimuthal_equal_area",
                     latitude_of_projection_origin=float(p.get("lat_0", 0.0)),
                     longitude_of_projection_origin=float(p.get("lon_0", 0.0)),
                     false_easting=fe, false_northing=fn)
    elif proj == "utm":
        attrs.update(grid_mapping_name="transverse_mercator",
                     scale_factor_at_central_meridian=0.9996,
                     longitude_of_central_meridian=float(6 * int(p["zone"]) - 183),
                     latitude_of_projection_origin=0.0, false_easting=500000.0,
                     false_northing=10000000.0 if p.get("south") else 0.0)
    return attrs


_UNITS = {"km2": ("km2", "area of the region in class {}"),
          "share": ("1", "{} share of the region")}


def _cube_bytes(folder, rows, grid) -> bytes:
    """The CF-1.8 NetCDF cube of the date COGs and the areas table."""
    import rasterio
    import xarray as xr

    transform, (h, w), crs = grid
    a, _, c, _, e, f = transform
    days = [r["date"] for r in rows]
    cube = np.empty((len(days), h, w), np.uint8)
    for i, day in enumerate(days):
        with rasterio.open(folder.date_path(day)) as src:
            cube[i] = src.read(1)
    codes = [c for c in MAP_CODES if c != NODATA]
    data = {
        "classes": (("time", "y", "x"), cube, {
            "long_name": "sea-ice class", "grid_mapping": "crs",
            "flag_values": np.array(codes, np.uint8),
            "flag_meanings": " ".join(CLASS_FLAGS[c] for c in codes),
            "comment": ", ".join(f"{c} {CODE_DESCRIPTIONS[c]}" for c in MAP_CODES)}),
        "crs": ((), np.int32(0), _grid_mapping(crs)),
    }
    for k in rows[0]:
        if k == "date":
            continue
        vals = [r[k] for r in rows]
        if k == "quality":
            data[k] = ("time", np.array(vals, dtype=object), {"long_name": "date quality: ok, "
                                                              "cloudy or low coverage"})
        elif k in _NUMBERS:
            data[k] = ("time", np.array(vals, np.int32), {"long_name": k.replace("_", " ")})
        else:
            unit, name = _UNITS["km2" if k.endswith("_km2") else "share"]
            data[k] = ("time", np.round(np.array(vals, np.float64), 6),
                       {"units": unit, "long_name": name.format(k.rsplit("_", 1)[0])})
    ds = xr.Dataset(data, coords={
        "time": ("time", np.array(days, "datetime64[ns]"), {"standard_name": "time"}),
        "y": ("y", f + e * (np.arange(h) + 0.5), {"standard_name": "projection_y_coordinate",
                                                  "units": "m", "long_name": "y (pixel centre)"}),
        "x": ("x", c + a * (np.arange(w) + 0.5), {"standard_name": "projection_x_coordinate",
                                                  "units": "m", "long_name": "x (pixel centre)"}),
    }, attrs={"Conventions": "CF-1.8", "title": f"Sea-ice classes, {days[0]} to {days[-1]}",
              "source": f"seaice season (seaice_utils {__version__})",
              "acknowledgement": ATTRIBUTION})
    enc = {"classes": {"zlib": True, "complevel": 4, "shuffle": True, "_FillValue": NODATA,
                       "dtype": "uint8", "chunksizes": (1, h, w)},
           "time": {"units": "days since 1970-01-01", "calendar": "standard", "dtype": "int32"},
           "x": {"_FillValue": None}, "y": {"_FillValue": None}, "crs": {"_FillValue": None}}
    enc.update({k: {"_FillValue": None} for k in data if k not in enc and k != "quality"})
    with tempfile.TemporaryDirectory(prefix="seaice-cube-") as tmp:
        path = Path(tmp) / "season.nc"
        ds.to_netcdf(path, engine="h5netcdf", encoding=enc)
        return path.read_bytes()


def export_season(folder, rows: Sequence[dict], sources: dict,
                  platforms: dict | None = None) -> list[Path]:
    """Write the season's STAC catalogue and NetCDF cube (see the module); return the files
    written (changed).

    Parameters
    ----------
    folder : SeasonFolder
        Its date COGs written for every row.
    rows : list of dict
        The rows of ``season_areas.csv``.
    sources : dict
        date -> [(input scene, its class map), ...]: the scenes that made the date.
    platforms : dict, optional
        date -> platform (:func:`date_platforms`).
    """
    if not rows:
        return []
    try:
        import h5netcdf  # noqa: F401
        import pystac  # noqa: F401
        import xarray  # noqa: F401
    except ImportError as exc:
        warnings.warn(f"season's STAC catalogue and season.nc not written: {exc} (install the "
                      f"geo extra: pip install 'seaice-utils[geo]')", stacklevel=2)
        return []
    grid = _grid(folder.date_path(rows[0]["date"]))
    files = _stac_files(folder, rows, sources, grid, platforms or {})
    files[folder.cube_path] = _cube_bytes(folder, rows, grid)
    return [p for p, data in files.items() if publish_if_changed(p, data)]
