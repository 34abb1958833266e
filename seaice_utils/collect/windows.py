"""Windows on a product grid: which ``scene_px`` squares of a product become scenes.

Each product (a Sentinel-2 tile of about 10980 x 10980 px) is cut into a grid of ``scene_px``
windows aligned to its pixel grid (:func:`scene_grid`). A window is a candidate
(:func:`candidate_windows`) when at least ``min_valid_fraction`` of a 5 x 5 grid of sample points
lies inside the product footprint and one of them inside the region; it becomes a scene when at
least ``min_valid_fraction`` of its pixels hold data (checked by
:class:`seaice_utils.collect.sink.SceneSink`). At most ``scenes_per_product`` scenes are taken from
one product (spread over it) and ``max_scenes`` in all, products in order of increasing cloud
cover.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from seaice_utils.collect.products import Product
from seaice_utils.errors import InputError

__all__ = ["scene_grid", "window_transform", "window_lonlat", "candidate_windows",
           "footprint_wkt"]

_SAMPLES = 5            # sample points per side of a window for the footprint/region test


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
