"""Class maps of several scenes of one date on one grid, their class areas, and scene dates.

A season is seen scene by scene: on one date one to three Sentinel-2 scenes, whose footprints
overlap, cover parts of a region. To turn them into one class-area figure per date they are
mosaicked onto one pixel grid, so that overlaps are counted once and no-data is never counted as
any class (least of all as water).

Grids
-----
Transforms are affine 6-tuples ``(a, b, c, d, e, f)`` in rasterio's order (``x = a*col + b*row +
c``, ``y = d*col + e*row + f``), north-up only (``b == d == 0``, ``a > 0``, ``e < 0``). Layers to
mosaic must share the CRS (compared as strings, EPSG codes case-insensitively) and the pixel size
(to 1e-9 relative), and lie on a common pixel grid (origins a whole number of pixels apart, to
1e-6 px); otherwise :class:`~seaice_utils.errors.InputError` says which layer and why. Nothing is
resampled.

Overlap rule
------------
Per pixel, the **first layer in the given order whose pixel is a class** (0 open water, 1 thin
ice, 2 thick ice) gives the mosaic's class. A pixel that is no-data (255) or unlabelled (254) in
one layer is therefore filled by the next layer that has a class there. Where no layer has a
class the mosaic keeps 254 if some layer saw the pixel as unlabelled, 255 otherwise. Callers pass
the layers in a deterministic order; :func:`read_class_layers` sorts by file name.

Areas
-----
:func:`date_areas` counts each class once per mosaic pixel inside the region: ``km2 = pixels *
pixel_area_m2 / 1e6``; the observed share is the class pixels (0, 1, 2) over the region's pixels.

Dates
-----
:func:`date_from` reads the acquisition date from a file name (``20191115``, ``2019-11-15``,
Sentinel-2 product names ``S2B_MSIL2A_20191115T202851_N0213_R128_T58CEU_20191115T221425``: the
sensing date) or from a mapping of GeoTIFF tags (``ACQUISITION_DATE``, ``DATE``,
``TIFFTAG_DATETIME``). A name with two different dates, or none, is refused with the input named.

Several CRSs
------------
Layers in different CRSs (Sentinel-2 tiles of neighbouring UTM zones) are first put on one grid
with :func:`reproject_layer`: nearest-neighbour resampling (class codes are never mixed) onto a
grid of the given CRS whose origin is a whole multiple of the pixel size, so that every
reprojected layer lands on the same pixel grid. :func:`common_crs` picks the CRS: the layers'
own when they share one (nothing is resampled), else the given one, else the equal-area
EASE-Grid 2.0 of the layers' hemisphere (:func:`~seaice_utils.core.areas.equal_area_crs`).

rasterio is imported only by the functions that read files or reproject.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from seaice_utils.core.areas import equal_area_crs
from seaice_utils.core.classes import (CLASS_CODES, MAP_CODES, NODATA, RANGE_KEYS, UNLABELLED,
                                       codes_text)
from seaice_utils.errors import InputError

__all__ = ["ClassLayer", "Mosaic", "mosaic_class_maps", "date_areas", "pixel_area",
           "date_from", "scene_date", "read_class_layer", "read_class_layers", "AREA_KEYS",
           "class_layer_header", "footprint_region",
           "common_crs", "reproject_layer"]

#: Class code -> key of its area in :func:`date_areas`.
AREA_KEYS = {c: f"{RANGE_KEYS[c]}_km2" for c in CLASS_CODES}
_CLASSES = CLASS_CODES
_MAX_CLASS = max(CLASS_CODES)        # codes up to this are classes (254, 255 are not)
_SIZE_RTOL = 1e-9
_ALIGN_TOL = 1e-6


@dataclass(frozen=True)
class ClassLayer:
    """One scene's class map on its grid (``classes`` (H, W) uint8, codes 0, 1, 2, 254, 255)."""

    classes: np.ndarray
    transform: tuple
    crs: str
    name: str = ""


@dataclass(frozen=True)
class Mosaic:
    """Class map of one date on one grid.

    ``source`` holds, per pixel, the index of the layer that gave the class (-1 where none did).
    """

    classes: np.ndarray
    transform: tuple
    crs: str
    sources: tuple
    source: np.ndarray


def _check_transform(t, what: str) -> tuple:
    try:
        t = tuple(float(v) for v in list(t)[:6])
    except (TypeError, ValueError):
        raise InputError(f"{what}: transform must be 6 numbers (got {t!r})") from None
    if len(t) != 6 or not all(np.isfinite(t)):
        raise InputError(f"{what}: transform must be 6 finite numbers (got {t!r})")
    a, b, _, d, e, _ = t
    if b != 0 or d != 0 or a <= 0 or e >= 0:
        raise InputError(f"{what}: only north-up grids (b = d = 0, a > 0, e < 0) are mosaicked "
                         f"(got {t!r})")
    return t


def _crs_key(crs) -> str:
    s = str(crs).strip()
    return s.upper() if re.fullmatch(r"(?i)epsg:\d+", s) else s


def _check_layer(layer: ClassLayer, i: int) -> tuple[np.ndarray, tuple]:
    what = f"layer {i} ({layer.name or 'unnamed'})"
    c = np.asarray(layer.classes)
    if c.ndim != 2 or c.dtype != np.uint8:
        raise InputError(f"{what}: a class map is a (H, W) uint8 array (got {c.dtype} {c.shape})")
    bad = np.setdiff1d(np.unique(c), MAP_CODES)
    if bad.size:
        raise InputError(f"{what}: codes other than those of a class map ({codes_text()}): "
                         f"{bad[:5].tolist()}")
    return c, _check_transform(layer.transform, what)


def _offsets(t, ref, what: str) -> tuple[int, int]:
    """Whole-pixel (row, col) offset of grid ``t``'s origin from grid ``ref``'s."""
    a0, e0 = ref[0], ref[4]
    for k, name in ((0, "x"), (4, "y")):
        if abs(t[k] - ref[k]) > _SIZE_RTOL * abs(ref[k]):
            raise InputError(f"{what}: pixel size {abs(t[0])} x {abs(t[4])} does not match "
                             f"{abs(a0)} x {abs(e0)} ({name} differs)")
    col, row = (t[2] - ref[2]) / a0, (t[5] - ref[5]) / e0
    for v, name in ((col, "x"), (row, "y")):
        if abs(v - round(v)) > _ALIGN_TOL:
            raise InputError(f"{what}: not on a common pixel grid ({name} origin is {v:.4f} px "
                             f"from the first layer's)")
    return int(round(row)), int(round(col))


def mosaic_class_maps(layers: Sequence[ClassLayer], *, grid=None) -> Mosaic:
    """Mosaic the class maps of one date onto one grid (see the module's overlap rule).

    Parameters
    ----------
    layers : sequence of ClassLayer
        In priority order; at least one; same CRS, pixel size and pixel grid.
    grid : (transform, height, width), optional
        The output grid (e.g. the region's); by default the union of the layers' footprints.
        Parts of layers outside it are left out.

    Returns
    -------
    Mosaic

    Raises
    ------
    InputError
        No layers, a bad class map or transform, a CRS, pixel size or pixel grid that differs.
    """
    layers = list(layers)
    if not layers:
        raise InputError("mosaic_class_maps needs at least one class map")
    checked = [_check_layer(layer, i) for i, layer in enumerate(layers)]
    ref = checked[0][1]
    crs0 = _crs_key(layers[0].crs)
    offs = []
    for i, (layer, (c, t)) in enumerate(zip(layers, checked)):
        what = f"layer {i} ({layer.name or 'unnamed'})"
        if _crs_key(layer.crs) != crs0:
            raise InputError(f"{what}: CRS {layer.crs!r} differs from the first layer's "
                             f"{layers[0].crs!r}; reproject before mosaicking")
        offs.append(_offsets(t, ref, what))
    if grid is None:
        r0 = min(r for r, _ in offs)
        c0 = min(c for _, c in offs)
        r1 = max(r + c.shape[0] for (r, _), (c, _) in zip(offs, checked))
        c1 = max(cc + c.shape[1] for (_, cc), (c, _) in zip(offs, checked))
        out_t = (ref[0], 0.0, ref[2] + ref[0] * c0, 0.0, ref[4], ref[5] + ref[4] * r0)
    else:
        try:
            gt, gh, gw = grid
        except (TypeError, ValueError):
            raise InputError(f"grid must be (transform, height, width) (got {grid!r})") from None
        gt = _check_transform(gt, "grid")
        if int(gh) <= 0 or int(gw) <= 0:
            raise InputError(f"grid must have a positive size (got {gh} x {gw})")
        r0, c0 = _offsets(gt, ref, "grid")
        r1, c1 = r0 + int(gh), c0 + int(gw)
        out_t = gt
    h, w = r1 - r0, c1 - c0
    out = np.full((h, w), NODATA, np.uint8)
    source = np.full((h, w), -1, np.int16)
    seen_unlabelled = np.zeros((h, w), bool)
    for i, ((r, cc), (c, _)) in enumerate(zip(offs, checked)):
        # the part of layer i inside the output grid
        ys, xs = max(r, r0), max(cc, c0)
        ye, xe = min(r + c.shape[0], r1), min(cc + c.shape[1], c1)
        if ye <= ys or xe <= xs:
            continue
        src = c[ys - r:ye - r, xs - cc:xe - cc]
        dst = out[ys - r0:ye - r0, xs - c0:xe - c0]
        take = (source[ys - r0:ye - r0, xs - c0:xe - c0] < 0) & (src <= _MAX_CLASS)
        dst[take] = src[take]
        source[ys - r0:ye - r0, xs - c0:xe - c0][take] = i
        seen_unlabelled[ys - r0:ye - r0, xs - c0:xe - c0] |= src == UNLABELLED
    out[(source < 0) & seen_unlabelled] = UNLABELLED
    return Mosaic(classes=out, transform=out_t, crs=str(layers[0].crs),
                  sources=tuple(layer.name for layer in layers), source=source)


def pixel_area(transform) -> float:
    """Area of one pixel in the CRS's units squared (m² on a metric grid)."""
    t = _check_transform(transform, "pixel_area")
    return abs(t[0] * t[4])


def date_areas(mosaic, pixel_area_m2, region_mask=None) -> dict:
    """Per-class km² of a mosaic (or a class map), the observed share, and the pixel counts.

    Parameters
    ----------
    mosaic : Mosaic or (H, W) uint8 ndarray
    pixel_area_m2 : float or (H, W) float ndarray
        Area of one pixel in m² (positive), or of each pixel
        (:func:`~seaice_utils.core.areas.ground_pixel_areas`: ground areas).
    region_mask : (H, W) bool ndarray, optional
        The region's pixels; default: every pixel of the mosaic. Pixels outside are not counted.

    Returns
    -------
    dict
        ``water_km2``, ``thin_km2``, ``thick_km2``, ``unlabelled_km2``, ``observed_km2`` (the
        three classes together), ``region_km2``, ``observed_share`` (observed area / region
        area; 0 for an empty region) and ``pixels`` (class code -> count, plus ``"region"``).
        No-data is counted in no class.
    """
    classes = mosaic.classes if isinstance(mosaic, Mosaic) else np.asarray(mosaic)
    if classes.ndim != 2:
        raise InputError(f"date_areas needs a (H, W) class map (got shape {classes.shape})")
    weights = None
    if isinstance(pixel_area_m2, np.ndarray):
        weights = pixel_area_m2
        if weights.shape != classes.shape or not (np.isfinite(weights).all()
                                                  and (weights > 0).all()):
            raise InputError(f"pixel_area_m2 must be positive areas of shape {classes.shape} "
                             f"(got {weights.dtype} {weights.shape})")
    elif isinstance(pixel_area_m2, bool) or not np.isfinite(pixel_area_m2) or pixel_area_m2 <= 0:
        raise InputError(f"pixel_area_m2 must be a positive number (got {pixel_area_m2!r})")
    if region_mask is not None and np.asarray(region_mask).all():
        region_mask = None            # the whole map: the same pixels, in order, without copies
    if region_mask is None:
        values = classes.ravel()
        w = None if weights is None else weights.ravel()
    else:
        region_mask = np.asarray(region_mask)
        if region_mask.shape != classes.shape or region_mask.dtype != bool:
            raise InputError(f"region_mask must be a bool array of shape {classes.shape} "
                             f"(got {region_mask.dtype} {region_mask.shape})")
        values = classes[region_mask]
        w = None if weights is None else weights[region_mask]
    counts = np.bincount(values, minlength=256)
    pixels = {int(k): int(counts[k]) for k in MAP_CODES}
    pixels["region"] = int(values.size)
    if w is None:
        m2 = counts * float(pixel_area_m2)
        region_m2 = values.size * float(pixel_area_m2)
    else:
        m2 = np.bincount(values, weights=w, minlength=256)
        region_m2 = float(w.sum())
    out = {AREA_KEYS[k]: float(m2[k]) / 1e6 for k in _CLASSES}
    obs_m2 = float(sum(m2[k] for k in _CLASSES))
    out.update(unlabelled_km2=float(m2[UNLABELLED]) / 1e6, observed_km2=obs_m2 / 1e6,
               region_km2=region_m2 / 1e6,
               observed_share=obs_m2 / region_m2 if values.size else 0.0, pixels=pixels)
    return out


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

_S2 = re.compile(r"S2[ABCD]_MSI(?:L1C|L2A)_(\d{8})T\d{6}", re.I)
_ANY = re.compile(r"(?<!\d)(\d{4})([-_:.]?)(\d{2})\2(\d{2})(?!\d)")
_TAG_KEYS = ("ACQUISITION_DATE", "DATE", "TIFFTAG_DATETIME", "DATETIME")


def _dates_in(text: str) -> list[_dt.date]:
    m = _S2.search(text)
    if m:
        s = m.group(1)
        found = [(s[:4], s[4:6], s[6:])]
    else:
        found = [(y, mo, d) for y, _, mo, d in _ANY.findall(text)]
    out = []
    for y, mo, d in found:
        try:
            day = _dt.date(int(y), int(mo), int(d))
        except ValueError:
            continue
        if day not in out:
            out.append(day)
    return out


def date_from(name_or_tags) -> _dt.date:
    """The acquisition date in a file name or path, or in a mapping of GeoTIFF tags.

    Raises
    ------
    InputError
        No date, or two different dates, naming the input.
    """
    if isinstance(name_or_tags, Mapping):
        tags = {str(k).upper(): v for k, v in name_or_tags.items()}
        found = []
        for key in _TAG_KEYS:
            if key in tags:
                for day in _dates_in(str(tags[key])):
                    if day not in found:
                        found.append(day)
        what = f"tags {dict(name_or_tags)!r}"
    elif isinstance(name_or_tags, (str, Path)):
        found = _dates_in(Path(name_or_tags).name)
        what = f"{str(name_or_tags)!r}"
    else:
        raise InputError(f"date_from takes a file name or a mapping of tags "
                         f"(got {type(name_or_tags).__name__})")
    if not found:
        raise InputError(f"no acquisition date in {what} (expected e.g. 20191115, 2019-11-15 or "
                         f"a Sentinel-2 product name; tags {', '.join(_TAG_KEYS)})")
    if len(found) > 1:
        raise InputError(f"ambiguous acquisition date in {what}: "
                         f"{', '.join(d.isoformat() for d in found)}")
    return found[0]


def scene_date(path) -> _dt.date:
    """The date of a GeoTIFF: from its tags, else from its file name; both must agree."""
    import rasterio

    with rasterio.open(path) as src:
        tags = src.tags()
    in_tags = {k: v for k, v in tags.items() if k.upper() in _TAG_KEYS}
    from_tags = date_from(in_tags) if in_tags else None
    try:
        from_name = date_from(Path(path).name)
    except InputError:
        if from_tags is None:
            raise InputError(f"no acquisition date in the tags or the name of {str(path)!r}")
        return from_tags
    if from_tags is not None and from_tags != from_name:
        raise InputError(f"{str(path)!r}: the tags say {from_tags}, the name {from_name}")
    return from_name


def read_class_layer(path) -> ClassLayer:
    """A single-band uint8 class-map GeoTIFF as a :class:`ClassLayer` (named by its file)."""
    import rasterio

    with rasterio.open(path) as src:
        if src.count != 1 or src.dtypes[0] != "uint8" or src.crs is None:
            raise InputError(f"{str(path)!r}: a class map is one georeferenced uint8 band")
        return ClassLayer(classes=src.read(1), transform=tuple(src.transform)[:6],
                          crs=src.crs.to_string(), name=Path(path).name)


def class_layer_header(path) -> ClassLayer:
    """The grid of a class-map GeoTIFF without its pixels: a :class:`ClassLayer` whose
    ``classes`` is a read-only no-data view of the map's shape (no memory)."""
    import rasterio

    with rasterio.open(path) as src:
        if src.count != 1 or src.dtypes[0] != "uint8" or src.crs is None:
            raise InputError(f"{str(path)!r}: a class map is one georeferenced uint8 band")
        return ClassLayer(classes=np.broadcast_to(np.uint8(NODATA), (src.height, src.width)),
                          transform=tuple(src.transform)[:6], crs=src.crs.to_string(),
                          name=Path(path).name)


def footprint_region(footprints) -> tuple[tuple, np.ndarray]:
    """The smallest grid-aligned rectangle holding every footprint, and the region: its pixels
    inside some footprint. Each footprint is ``(transform, shape)`` (the whole rectangle) or
    ``(transform, inside)`` (a bool array of where the footprint is, e.g. a reprojected one);
    the first one's grid is the reference. The same grid and region as
    :func:`mosaic_class_maps` of all-zero maps of the footprints, one footprint in memory at a
    time.

    >>> t = (10.0, 0.0, 0.0, 0.0, -10.0, 0.0)
    >>> grid, region = footprint_region([(t, (2, 2)), ((10.0, 0.0, 20.0, 0.0, -10.0, -10.0),
    ...                                                 (2, 1))])
    >>> grid[2], region.astype(int).tolist()
    (0.0, [[1, 1, 0], [1, 1, 1], [0, 0, 1]])
    """
    footprints = list(footprints)
    if not footprints:
        raise InputError("footprint_region needs at least one footprint")
    ref = _check_transform(footprints[0][0], "footprint 0")
    placed = []
    for i, (t, what) in enumerate(footprints):
        shape = what if isinstance(what, tuple) else np.asarray(what).shape
        placed.append((_offsets(_check_transform(t, f"footprint {i}"), ref, f"footprint {i}"),
                       shape))
    r0 = min(r for (r, _), _ in placed)
    c0 = min(c for (_, c), _ in placed)
    r1 = max(r + sh[0] for (r, _), sh in placed)
    c1 = max(c + sh[1] for (_, c), sh in placed)
    grid_t = (ref[0], 0.0, ref[2] + ref[0] * c0, 0.0, ref[4], ref[5] + ref[4] * r0)
    region = np.zeros((r1 - r0, c1 - c0), bool)
    for ((r, c), sh), (_, what) in zip(placed, footprints):
        view = region[r - r0:r - r0 + sh[0], c - c0:c - c0 + sh[1]]
        if isinstance(what, tuple):
            view[...] = True
        else:
            view |= np.asarray(what, bool)
    return grid_t, region


def read_class_layers(paths) -> list[ClassLayer]:
    """:func:`read_class_layer` of each path, sorted by file name (the mosaic's priority)."""
    return [read_class_layer(p) for p in sorted(paths, key=lambda p: (Path(p).name, str(p)))]


# --------------------------------------------------------------------------------------------
# several CRSs
# --------------------------------------------------------------------------------------------

def common_crs(layers: Sequence[ClassLayer], crs: str | None = None) -> str | None:
    """The CRS to mosaic ``layers`` in: None when they share one (no resampling needed), else
    ``crs``, else the EASE-Grid 2.0 of the hemisphere of the first layer's centre."""
    keys = {_crs_key(x.crs) for x in layers}
    if len(keys) <= 1:
        return None
    if crs:
        from rasterio.crs import CRS
        from rasterio.errors import CRSError

        try:
            CRS.from_user_input(crs)
        except CRSError:
            raise InputError(f"the scenes are in {len(keys)} CRSs and the grid's CRS {crs!r} is "
                             f"not one PROJ knows (e.g. EPSG:6932, EPSG:3031)") from None
        return str(crs)
    x = layers[0]
    t = _check_transform(x.transform, x.name or "layer 0")
    h, w = np.asarray(x.classes).shape
    return equal_area_crs(x.crs, t[2] + t[0] * w / 2, t[5] + t[4] * h / 2)


def reproject_layer(layer: ClassLayer, crs: str, pixel_size: float) -> ClassLayer:
    """``layer`` on a north-up grid of ``crs`` with square pixels of ``pixel_size`` (CRS units),
    origin on a multiple of ``pixel_size``; nearest neighbour, no-data (255) outside."""
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, reproject, transform_bounds

    c, t = _check_layer(layer, 0)
    if _crs_key(layer.crs) == _crs_key(crs):
        return layer
    ps = float(pixel_size)
    h, w = c.shape
    bounds = (t[2], t[5] + t[4] * h, t[2] + t[0] * w, t[5])
    left, bottom, right, top = transform_bounds(layer.crs, crs, *bounds, densify_pts=21)
    x0, y1 = np.floor(left / ps) * ps, np.ceil(top / ps) * ps
    width, height = int(np.ceil((right - x0) / ps)), int(np.ceil((y1 - bottom) / ps))
    out_t = (ps, 0.0, float(x0), 0.0, -ps, float(y1))
    out = np.full((height, width), NODATA, np.uint8)
    reproject(c, out, src_transform=Affine(*t), src_crs=layer.crs, src_nodata=NODATA,
              dst_transform=Affine(*out_t), dst_crs=crs, dst_nodata=NODATA,
              resampling=Resampling.nearest)
    return ClassLayer(out, out_t, str(crs), layer.name)
