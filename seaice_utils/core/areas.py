"""Ground area of every pixel of a projected grid.

A projected grid's pixels are not all the same size on the ground: polar stereographic
(EPSG:3031, true scale at 71 S) shrinks ground distances poleward of its standard parallel
(near 78 S a 40 m pixel covers about 3.5 % more ground than 40 m x 40 m), UTM by up to 0.1 %
inside its zone. :func:`ground_pixel_areas` measures each pixel on the ground: the areal scale
of the grid's CRS is measured at the nodes of a coarse lattice (every ``step`` pixels) by
projecting a one-pixel square around each node to the equal-area EASE-Grid 2.0 of the
hemisphere (Lambert azimuthal on WGS 84; EPSG:6931 north, EPSG:6932 south) and taking its
area there; the scale is interpolated bilinearly to the pixel centres (it varies slowly: the
interpolation error is far below 1e-6 of a pixel's area for ``step`` 32 on polar grids). On an
EASE-Grid 2.0 grid the result is the grid's pixel area.

:func:`pixel_area_m2` is the nominal area of one pixel (from the transform, else a given pixel
size): what a scene's summary row (``summary.csv`` of ``seaice label`` and ``seaice predict``)
counts with.

rasterio (PROJ) does the projecting; it is imported when the function runs.
"""

from __future__ import annotations

import math

import numpy as np

from seaice_utils.errors import InputError

__all__ = ["ground_pixel_areas", "equal_area_crs", "EQUAL_AREA_CRS", "pixel_area_m2"]

#: Equal-area grids (NSIDC EASE-Grid 2.0, Lambert azimuthal) by hemisphere.
EQUAL_AREA_CRS = {"north": "EPSG:6931", "south": "EPSG:6932"}


def equal_area_crs(crs, x: float, y: float) -> str:
    """The EASE-Grid 2.0 of the hemisphere of point (``x``, ``y``) of ``crs``."""
    from rasterio.warp import transform as warp

    _, lat = warp(crs, "EPSG:4326", [float(x)], [float(y)])
    return EQUAL_AREA_CRS["south" if lat[0] < 0 else "north"]


def _nodes(n: int, step: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, n, step), n - 1]).astype(np.float64) + 0.5


def _interp_axis(values: np.ndarray, nodes: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Linear interpolation of ``values`` (given at ``nodes`` along ``axis``) to 0.5 .. n-0.5."""
    if len(nodes) == 1:
        return np.repeat(values, n, axis=axis)
    x = np.arange(n, dtype=np.float64) + 0.5
    i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, len(nodes) - 2)
    f = (x - nodes[i]) / (nodes[i + 1] - nodes[i])
    a, b = np.take(values, i, axis=axis), np.take(values, i + 1, axis=axis)
    shape = [1, 1]
    shape[axis] = n
    f = f.reshape(shape)
    return a * (1 - f) + b * f


def ground_pixel_areas(transform, crs, shape, *, step: int = 32) -> np.ndarray:
    """Ground area in m² of every pixel of a north-up grid.

    Parameters
    ----------
    transform : 6 numbers
        The grid's affine transform (rasterio's order; north-up).
    crs : str
        The grid's CRS (anything PROJ reads: ``"EPSG:3031"``, WKT).
    shape : (height, width)
    step : int, keyword-only
        Pixels between the lattice nodes where the scale is measured.

    Returns
    -------
    (H, W) float64 ndarray

    Raises
    ------
    InputError
        A transform that is not north-up, a CRS PROJ cannot use, an empty grid.
    """
    from rasterio.errors import CRSError
    from rasterio.warp import transform as warp

    t = [float(v) for v in list(transform)[:6]]
    if len(t) != 6 or t[1] != 0 or t[3] != 0 or t[0] <= 0 or t[4] >= 0:
        raise InputError(f"ground_pixel_areas needs a north-up transform (got {transform!r})")
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise InputError(f"ground_pixel_areas needs a non-empty grid (got {h} x {w})")
    rows, cols = _nodes(h, int(step)), _nodes(w, int(step))
    cx, cy = np.meshgrid(t[2] + t[0] * cols, t[5] + t[4] * rows)
    hx, hy = t[0] / 2, t[4] / 2
    xs = np.concatenate([(cx - hx).ravel(), (cx + hx).ravel(), (cx + hx).ravel(),
                         (cx - hx).ravel()])
    ys = np.concatenate([(cy - hy).ravel(), (cy - hy).ravel(), (cy + hy).ravel(),
                         (cy + hy).ravel()])
    try:
        ease = equal_area_crs(crs, cx.mean(), cy.mean())
        ex, ey = warp(crs, ease, xs.tolist(), ys.tolist())
    except CRSError as exc:
        raise InputError(f"cannot measure ground areas in CRS {crs!r}: {exc}") from None
    ex = np.asarray(ex).reshape(4, -1)
    ey = np.asarray(ey).reshape(4, -1)
    if not (np.isfinite(ex).all() and np.isfinite(ey).all()):
        raise InputError(f"the grid does not project to {ease} (outside its hemisphere?)")
    # shoelace over the four projected corners of each node's one-pixel square
    area = 0.5 * np.abs(sum(ex[k] * ey[(k + 1) % 4] - ex[(k + 1) % 4] * ey[k] for k in range(4)))
    scale = (area / (t[0] * -t[4])).reshape(len(rows), len(cols))
    scale = _interp_axis(_interp_axis(scale, cols, w, axis=1), rows, h, axis=0)
    return scale * (t[0] * -t[4])


def pixel_area_m2(meta: dict | None, shape: tuple[int, int] | None = None, *,
                  pixel_size_m: float | None = None,
                  default_pixel_size_m: float = 10.0) -> tuple[float, str]:
    """Area of one pixel in m^2 and where it came from.

    ``pixel_size_m`` (given) wins; else the scene's transform (``meta["transform"]``, 6 floats,
    and ``meta["crs"]`` WKT, as :func:`seaice_utils.core.scenes.read_scene` keeps them): for a
    projected CRS the transform's determinant times the CRS unit in metres squared; for a
    geographic CRS (degrees) the degree lengths at the scene's centre latitude (spherical Earth,
    approximate); else ``default_pixel_size_m`` squared (10 m: Sentinel-2's visible bands).

    >>> pixel_area_m2({})
    (100.0, 'default pixel size 10 m')
    >>> pixel_area_m2({"transform": [20, 0, 500000, 0, -20, 8e6], "crs": "EPSG:3031"})[0]
    400.0
    """
    if pixel_size_m is not None:
        if not pixel_size_m > 0:
            raise InputError(f"pixel size must be > 0 m (got {pixel_size_m})")
        return float(pixel_size_m) ** 2, f"given pixel size {pixel_size_m:g} m"
    meta = meta or {}
    t, crs = meta.get("transform"), meta.get("crs")
    if t is not None and crs:
        a, b, _, d, e, f = (float(x) for x in list(t)[:6])
        det = abs(a * e - b * d)
        try:
            from rasterio.crs import CRS

            c = CRS.from_user_input(crs)
            if c.is_geographic:
                lat = f + e * (shape[0] / 2 if shape else 0.0)
                r = 6371008.8
                m_per_deg = math.pi * r / 180.0
                return (det * m_per_deg ** 2 * math.cos(math.radians(lat)),
                        "geographic CRS, approximate at the centre latitude")
            unit = float(c.linear_units_factor[1]) if c.is_projected else 1.0
            return det * unit ** 2, f"transform ({math.sqrt(det) * unit:g} m pixels)"
        except ImportError:
            return det, "transform (CRS units taken as metres: rasterio missing)"
        except Exception:  # unparsable CRS: the determinant, in its own units
            return det, "transform (unknown CRS units taken as metres)"
    return float(default_pixel_size_m) ** 2, f"default pixel size {default_pixel_size_m:g} m"
