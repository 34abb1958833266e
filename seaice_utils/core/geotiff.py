"""Class maps of georeferenced scenes as Cloud-Optimised GeoTIFFs that GIS shows as they are.

:func:`class_map_cog` encodes a class map (0 open water, 1 thin ice, 2 thick ice, 254 unlabelled
or cloud, 255 no-data; :mod:`seaice_utils.core.classes`) with the scene's CRS and transform as a
COG (GDAL's ``COG`` driver through rasterio): 256 px internal tiles, DEFLATE, overviews made with
*mode* resampling (a class, never an average of classes), the paper's palette as the band's colour
table (no-data transparent), no-data 255, every code and its meaning in the band's description and
its ``classes`` tag (:data:`~seaice_utils.core.classes.CODE_DESCRIPTIONS`), and the data
attribution. QGIS and other GIS show it in the paper's colours without styling, and read any zoom
level fast. (GDAL keeps a GeoTIFF's category names in a ``.aux.xml`` sidecar, not in the file, and
rasterio cannot write them: the codes' names are in the description and tag instead.)

rasterio is imported when a COG is made, so the package imports without it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seaice_utils.core.classes import NODATA, PALETTE, codes_text
from seaice_utils.errors import InputError

__all__ = ["class_map_cog", "ATTRIBUTION"]

#: Recorded in the metadata of every class map made from Sentinel-2 data.
ATTRIBUTION = "Contains modified Copernicus Sentinel data"


def class_map_cog(classes: np.ndarray, *, crs: str, transform: Sequence[float],
                  attribution: str | None = ATTRIBUTION, tags: dict | None = None) -> bytes:
    """The bytes of a Cloud-Optimised GeoTIFF of ``classes`` on the scene's grid.

    Parameters
    ----------
    classes : (H, W) uint8 ndarray
    crs : str
        WKT or anything rasterio understands (``EPSG:3031``).
    transform : 6 floats
        Affine ``a, b, c, d, e, f`` (rasterio's order).
    attribution : str, optional
        Data attribution written as the ``ATTRIBUTION`` dataset tag.
    tags : dict, optional
        More dataset tags (``ACQUISITION_DATE``, ``PLATFORM``), written as strings; without
        them the bytes are those of a map without tags.
    """
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import Affine

    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.dtype != np.uint8:
        raise InputError(f"a class map is a (H, W) uint8 array (got {classes.dtype} "
                         f"{classes.shape})")
    names = codes_text()
    profile = dict(driver="COG", width=classes.shape[1], height=classes.shape[0], count=1,
                   dtype="uint8", nodata=NODATA, crs=rasterio.crs.CRS.from_user_input(crs),
                   transform=Affine(*list(transform)[:6]), compress="deflate", blocksize=256,
                   overview_resampling="mode")
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(classes, 1)
            dst.write_colormap(1, {c: (*PALETTE[c], 0 if c == NODATA else 255)
                                   for c in PALETTE})
            dst.set_band_description(1, f"sea-ice class ({names})")
            dst.update_tags(1, classes=names)
            if attribution:
                dst.update_tags(ATTRIBUTION=attribution)
            if tags:
                dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
        return mem.read()
