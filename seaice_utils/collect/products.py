"""Sentinel-2 products as every source sees them: bands, baselines, DN conversions.

A :class:`Product` is one Sentinel-2 tile of one date (about 10980 x 10980 px) as any source
describes it (Earth Engine image, STAC item, downloaded ``.SAFE`` folder or GeoTIFF). This module
holds what the sources share about it besides the window geometry
(:mod:`seaice_utils.collect.windows`) and the writing of scenes
(:mod:`seaice_utils.collect.sink`): band names, the processing baseline and its reflectance offset,
and the conversion of digital numbers to the scene files.

Reflectance and the L2A/L1C offset
----------------------------------
Digital numbers (DN) are reflectance x 10000. Products of processing baseline 04.00 and later
(from 25 January 2022) carry ``BOA_ADD_OFFSET`` (L2A) / ``RADIO_ADD_OFFSET`` (L1C) = -1000, i.e.
``reflectance = DN / 10000 - 0.1``: the stretch is then ``Stretch(offset=-0.1)``. Earth Engine's
harmonized collections have the offset removed already (offset 0). For STAC items and local
products the offset comes from ``collect.reflectance_offset`` when it is a number, else it is
detected (see :func:`offset_for_baseline` and the source modules). 16-bit outputs are written
*harmonized* (offset removed: ``DN' = DN + 10000 * offset``), so every scene file in a dataset
folder means ``reflectance = DN / 10000`` and :func:`seaice_utils.core.scenes.read_scene`'s
default stretch applies. Valid pixels are never written as 0 in every band (that is no-data):
they are clipped to 1 DN (16-bit) or written (0, 0, 1) (8-bit).

Scene file formats (``collect.export_format``, :data:`EXPORT_FORMATS`)
---------------------------------------------------------------------
``geotiff8`` (default)
    ``scenes/<name>.tif``: 8-bit RGB with the project's stretch (:func:`dn_to_rgb8`, the same
    pixels as ``png8``) as a Cloud-Optimised GeoTIFF with the product's CRS and the window's
    transform, no-data 0. Labels and predictions of such a scene are GeoTIFFs on its grid.
``geotiff16``
    ``scenes/<name>.tif``: 16-bit reflectance x 10000 (offset removed, :func:`harmonize_dn`),
    tiled GeoTIFF with CRS, transform and no-data 0; stretched when read.
``png8``
    ``scenes/<name>.png``: the 8-bit RGB of ``geotiff8`` without a georeference in the file
    (the CRS and transform are only in ``catalogue.csv``).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from seaice_utils.core.scenes import Stretch, stretch_reflectance
from seaice_utils.errors import InputError, SeaIceError

__all__ = ["CollectionUnavailable", "S2_BANDS", "EXPORT_FORMATS", "band_id", "parse_baseline",
           "offset_for_baseline", "Product", "dn_to_rgb8", "harmonize_dn", "geotiff_bytes",
           "scene_file"]

#: Sentinel-2 band: (Earth Engine name, file/STAC name, STAC common name / Earth Search key).
S2_BANDS = {
    "B1": ("B1", "B01", "coastal"), "B2": ("B2", "B02", "blue"), "B3": ("B3", "B03", "green"),
    "B4": ("B4", "B04", "red"), "B5": ("B5", "B05", "rededge1"), "B6": ("B6", "B06", "rededge2"),
    "B7": ("B7", "B07", "rededge3"), "B8": ("B8", "B08", "nir"), "B8A": ("B8A", "B8A", "nir08"),
    "B9": ("B9", "B09", "nir09"), "B10": ("B10", "B10", "cirrus"), "B11": ("B11", "B11", "swir16"),
    "B12": ("B12", "B12", "swir22"),
}


#: ``collect.export_format`` -> what a scene file is (see the module docstring).
EXPORT_FORMATS = {
    "geotiff8": "8-bit RGB Cloud-Optimised GeoTIFF, the project's stretch (reflectance 0..1 -> "
                "0..255), CRS and transform of the window, no-data 0",
    "geotiff16": "16-bit GeoTIFF of reflectance x 10000 (offset removed), CRS and transform of "
                 "the window, no-data 0",
    "png8": "8-bit RGB PNG, the project's stretch; not georeferenced (CRS and transform only in "
            "catalogue.csv)",
}


class CollectionUnavailable(SeaIceError):
    """A data source cannot be used here (no credentials, no network, nothing matched).

    The message says what is missing and how to provide it; it never contains a credential,
    a project id or a key path (only the names of the environment variables that hold them).
    """


# --------------------------------------------------------------------------------------------
# bands and processing baselines
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
# the product
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
        """Native pixel size of the grid (metres)."""
        return abs(float(self.transform[0]))


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


def geotiff_bytes(bands: np.ndarray, *, crs: str, transform: Sequence[float],
                  descriptions: Sequence[str] | None = None, tags: dict | None = None,
                  cog: bool = False, nodata: int | None = 0) -> bytes:
    """A deflate-compressed GeoTIFF (no-data 0) of an (H, W, C) uint8 or uint16 array, as bytes.

    Parameters
    ----------
    bands : (H, W, C) uint8 or uint16 ndarray
        Three uint8 bands are tagged red, green, blue (GIS shows them as an RGB image).
    crs : str
    transform : 6 floats
        Affine ``a, b, c, d, e, f`` (rasterio's order).
    descriptions, tags : optional
        Band descriptions and dataset tags.
    cog : bool
        A Cloud-Optimised GeoTIFF (GDAL's ``COG`` driver: 256 px tiles, overviews averaged
        without the no-data) instead of a plain tiled GeoTIFF.
    nodata : int or None
        The no-data value (None: none; cloud masks, where 0 means clear sky).
    """
    import rasterio
    from affine import Affine
    from rasterio.enums import ColorInterp
    from rasterio.io import MemoryFile

    if bands.ndim != 3 or bands.dtype not in (np.uint8, np.uint16):
        raise InputError(f"a scene GeoTIFF is an (H, W, C) uint8 or uint16 array (got "
                         f"{bands.dtype} {bands.shape})")
    h, w, c = bands.shape
    block = 256 if min(h, w) >= 256 else max(16, 16 * math.ceil(min(h, w) / 16))
    profile = dict(height=h, width=w, count=c, dtype=str(bands.dtype),
                   crs=rasterio.crs.CRS.from_user_input(crs), transform=Affine(*transform[:6]),
                   nodata=nodata, compress="deflate", predictor=2)
    if cog:
        profile.update(driver="COG", blocksize=block, overview_resampling="average")
    else:
        profile.update(driver="GTiff", tiled=True, blockxsize=block, blockysize=block,
                       interleave="pixel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(np.moveaxis(bands, -1, 0))
                if c == 3 and bands.dtype == np.uint8:
                    dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
                if descriptions:
                    dst.descriptions = tuple(descriptions)
                if tags:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})
            return bytes(mem.read())


def scene_file(rec) -> Path:
    """The scene file of a record: the catalogue's ``file`` column (``scenes/<name>.tif`` for
    GeoTIFF exports) when present, else the record's ``scene_path``."""
    rel = (rec.meta or {}).get("file")
    return Path(rec.root) / rel if rel else Path(rec.scene_path)

