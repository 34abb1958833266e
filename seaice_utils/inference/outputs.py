"""What full-scene inference writes: class maps, GeoTIFFs, per-scene class areas.

Class map (0 open water, 1 thin ice, 2 thick ice, 255 no-data), no-data stays no-data; a palette
PNG (red thick, blue thin, green water); a Cloud-Optimised GeoTIFF with the input's CRS and
transform when it had them (:func:`seaice_utils.core.geotiff.class_map_cog`); and a per-scene
summary of pixels, area (km^2) and fraction of each class (:func:`class_summary`), the number a
polar scientist wants. The pixel area comes from the
transform (metres for projected CRSs, an approximation at the scene's centre latitude for
geographic ones) or ``pixel_size_m`` (10 m, Sentinel-2's visible bands) without one
(:func:`pixel_area_m2`).
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES
from seaice_utils.core.scenes import atomic_write_bytes
from seaice_utils.errors import InputError

__all__ = ["pixel_area_m2", "class_summary", "SUMMARY_COLUMNS", "write_summary_csv",
           "output_paths"]


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


_CLASS_KEYS = {c: name.replace(" ", "_") for c, name in CLASS_NAMES.items()}
#: Columns of the per-scene summary (one row per scene).
SUMMARY_COLUMNS = (["scene", "height", "width", "pixel_area_m2", "pixel_area_source",
                    "valid_pixels", "nodata_pixels", "valid_km2"]
                   + [f"{_CLASS_KEYS[c]}_{k}" for c in sorted(CLASS_NAMES)
                      for k in ("pixels", "km2", "fraction")])


def class_summary(classes: np.ndarray, *, pixel_area: float = 100.0, name: str = "scene",
                  area_source: str = "") -> dict[str, Any]:
    """Pixels, area (km^2) and fraction of valid pixels of each class of one class map.

    >>> row = class_summary(np.array([[0, 1], [2, 255]], np.uint8), pixel_area=1e6)
    >>> row["thick_ice_km2"], row["open_water_fraction"], row["nodata_pixels"]
    (1.0, 0.3333333333333333, 1)
    """
    counts = np.bincount(classes.ravel(), minlength=256)
    valid = int(sum(counts[c] for c in CLASS_NAMES))
    row: dict[str, Any] = {"scene": name, "height": int(classes.shape[0]),
                           "width": int(classes.shape[1]), "pixel_area_m2": float(pixel_area),
                           "pixel_area_source": area_source, "valid_pixels": valid,
                           "nodata_pixels": int(classes.size - valid),
                           "valid_km2": valid * pixel_area / 1e6}
    for c in sorted(CLASS_NAMES):
        n = int(counts[c])
        key = _CLASS_KEYS[c]
        row[f"{key}_pixels"] = n
        row[f"{key}_km2"] = n * pixel_area / 1e6
        row[f"{key}_fraction"] = n / valid if valid else float("nan")
    return row


def write_summary_csv(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Write per-scene summary rows (:data:`SUMMARY_COLUMNS`) as CSV, atomically."""
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), extrasaction="ignore")
    wr.writeheader()
    wr.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())
    return Path(path)


def output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Files written for scene ``name``: class map, palette map, GeoTIFF, sidecar JSON."""
    out = Path(out_dir)
    return {"classes": out / f"{name}_classes.png", "map": out / f"{name}_map.png",
            "geotiff": out / f"{name}_classes.tif", "sidecar": out / f"{name}.json"}
