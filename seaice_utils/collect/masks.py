"""Cloud masks collected with the scenes, and the rule that keeps sea ice out of them.

With ``collect.cloud_masks: true`` (the default) every route (Earth Engine, STAC, local
``.SAFE`` products) writes, next to each scene, ``masks/<name>.tif``: a one-band uint8
Cloud-Optimised GeoTIFF on the scene's own grid (same CRS, transform and size as
``scenes/<name>.tif``), named in ``catalogue.csv``'s ``cloud_mask`` column and read by
``seaice season`` as it is (pixels at or above ``season.cloud_probability`` are cloud). The
``cloud_mask_source`` column says where each mask came from: ``scl``, ``cloud_probability`` or
``none`` (no mask found, or masks off; the ``cloud_mask`` column is then empty).

The rule (percent convention, what ``seaice season`` reads)
-----------------------------------------------------------
Bright snow and sea ice are a known failure of optical cloud detectors: ESA documents the
Sentinel-2 cloud probability (``MSK_CLDPRB``, ``COPERNICUS/S2_CLOUD_PROBABILITY``, s2cloudless)
as high over snow and ice, while the L2A scene classification (SCL) has a class of its own for
snow and ice (11). So a scene's mask comes from, in order:

1. **SCL** where the product has it (L2A): classes 3 (cloud shadow), 8 (cloud, medium
   probability), 9 (cloud, high probability) and 10 (thin cirrus) are written 100, every other
   class 0 - in particular 11 (snow and ice) is **never** masked, nor no-data (0) or water (6).
2. **Cloud probability** alone (L1C, or a product without SCL): the probability (0..100) as it
   is; ``season.cloud_probability`` (default 20) is the threshold, and the season's per-date
   table reports ``cloud_share`` so a mask that eats ice shows.
3. Nothing: no file, ``cloud_mask_source`` ``none``.

20 m masks (SCL, ``MSK_CLDPRB_20m``) are put on the 10 m scene grid by nearest neighbour
(:func:`read_on_grid`: each output pixel takes the source pixel under its centre), so class
codes are never averaged.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["SCL_CLOUD_CLASSES", "SCL_SNOW_ICE", "STAC_SCL_KEYS", "STAC_CLOUD_KEYS",
           "MASK_SOURCES", "scl_to_percent", "probability_to_percent", "mask_percent",
           "read_on_grid"]

#: SCL classes written as cloud (100): 3 cloud shadow, 8 cloud medium probability, 9 cloud high
#: probability, 10 thin cirrus.
SCL_CLOUD_CLASSES = (3, 8, 9, 10)
#: SCL class 11, snow and ice: never masked.
SCL_SNOW_ICE = 11
#: STAC asset keys of the L2A scene classification, tried in order: ``scl`` in Earth Search's
#: ``sentinel-2-c1-l2a`` and ``sentinel-2-l2a`` item assets, ``SCL`` in Planetary Computer's
#: ``sentinel-2-l2a``, ``SCL_20m`` in the Copernicus Data Space's ``sentinel-2-l2a``.
STAC_SCL_KEYS = ("scl", "SCL", "SCL_20m")
#: STAC asset keys of a cloud-probability raster (percent), used when an item has no SCL:
#: ``CLD_20m`` in the Copernicus Data Space's ``sentinel-2-l2a``; the others are spellings of the
#: same ``MSK_CLDPRB`` layer in other catalogues.
STAC_CLOUD_KEYS = ("cloud", "CLD", "CLD_20m", "cloud_probability", "MSK_CLDPRB_20m")
#: Values of the catalogue's ``cloud_mask_source`` column.
MASK_SOURCES = ("scl", "cloud_probability", "none")


def scl_to_percent(scl: np.ndarray) -> np.ndarray:
    """SCL class codes to the season's percent convention (cloud 100, all else 0).

    >>> scl_to_percent(np.array([[0, 3, 4, 6, 8, 9, 10, 11]])).tolist()
    [[0, 100, 0, 0, 100, 100, 100, 0]]
    """
    return np.where(np.isin(np.asarray(scl), SCL_CLOUD_CLASSES), 100, 0).astype(np.uint8)


def probability_to_percent(prob: np.ndarray) -> np.ndarray:
    """A cloud probability (percent) as uint8, clipped to 0..100.

    >>> probability_to_percent(np.array([[-3, 0, 35, 100, 180]])).tolist()
    [[0, 0, 35, 100, 100]]
    """
    return np.clip(np.asarray(prob, dtype=np.float64), 0, 100).round().astype(np.uint8)


def mask_percent(arr: np.ndarray, source: str) -> np.ndarray:
    """The mask file's pixels from a raw layer of ``source`` (``scl`` or ``cloud_probability``)."""
    if source == "scl":
        return scl_to_percent(arr)
    if source == "cloud_probability":
        return probability_to_percent(arr)
    raise ValueError(f"not a cloud-mask source: {source!r} (one of scl, cloud_probability)")


def read_on_grid(ds: Any, transform: Sequence[float], size: int, *, band: int = 1,
                 crs: Any = None) -> np.ndarray:
    """One band of an open rasterio dataset on a north-up window grid, nearest neighbour.

    Each output pixel takes the source pixel under its centre (a 20 m SCL pixel becomes 2 x 2
    pixels of a 10 m grid aligned with it); pixels outside the source are 0. Only the source
    pixels needed are read (a windowed read).

    Parameters
    ----------
    ds : rasterio dataset
        North-up, in the window's CRS.
    transform : 6 floats
        Affine ``a, b, c, d, e, f`` of the output grid.
    size : int
        Output side in pixels.
    crs : optional
        The output grid's CRS; when given it must equal the dataset's.

    Returns
    -------
    (size, size) ndarray of the band's dtype
    """
    from rasterio.crs import CRS
    from rasterio.windows import Window

    if crs is not None and ds.crs is not None and CRS.from_user_input(crs) != ds.crs:
        raise ValueError(f"mask raster in {ds.crs} is not in the scene's CRS {crs}")
    st = tuple(ds.transform)[:6]
    if st[1] != 0 or st[3] != 0 or st[4] >= 0:
        raise ValueError(f"mask raster is not north-up (transform {st})")
    a, _, c, _, e, f = (float(v) for v in transform[:6])
    centres = np.arange(size) + 0.5
    cols = np.floor((c + a * centres - st[2]) / st[0]).astype(np.int64)
    rows = np.floor((f + e * centres - st[5]) / st[4]).astype(np.int64)
    dtype = ds.dtypes[band - 1]
    out = np.zeros((size, size), dtype=dtype)
    okc = (cols >= 0) & (cols < ds.width)
    okr = (rows >= 0) & (rows < ds.height)
    if not okc.any() or not okr.any():
        return out
    c0, c1 = int(cols[okc].min()), int(cols[okc].max()) + 1
    r0, r1 = int(rows[okr].min()), int(rows[okr].max()) + 1
    src = ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))
    out[np.ix_(okr, okc)] = src[np.ix_(rows[okr] - r0, cols[okc] - c0)]
    return out

