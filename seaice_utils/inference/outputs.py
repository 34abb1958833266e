"""The area of a scene's pixel, for its per-scene class areas.

What a scene's prediction writes (class maps, palette PNG, COG, sidecar, the summary row) is the
scene output set of :mod:`seaice_utils.engines.scene_outputs`, shared with auto-labelling. The
pixel area comes from the transform (metres for projected CRSs, an approximation at the scene's
centre latitude for geographic ones) or ``pixel_size_m`` (10 m, Sentinel-2's visible bands) without one
(:func:`pixel_area_m2`).
"""

from __future__ import annotations

import math

from seaice_utils.errors import InputError

__all__ = ["pixel_area_m2"]


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
