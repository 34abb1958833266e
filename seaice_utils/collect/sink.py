"""Writing the scenes of a dataset folder: :class:`SceneSink` and the shared collection loop.

Every source (Earth Engine, STAC, local products) hands the digital numbers of each window to a
:class:`SceneSink`, driven by :func:`run_products`, and so writes the same dataset folder (the
layout of :mod:`seaice_utils.data.dataset`)::

    <outputs>/data/<source>/
      scenes/<name>.tif     collect.export_format geotiff8 (default): 8-bit RGB, the project's
                            stretch, Cloud-Optimised GeoTIFF with CRS, transform, no-data 0;
                            geotiff16: 16-bit reflectance x 10000 GeoTIFF, same georeference
      scenes/<name>.png     png8: the 8-bit RGB of geotiff8 without georeference in the file
      masks/<name>.tif      collect.cloud_masks (default true): the scene's cloud mask, one
                            uint8 band (percent: SCL cloud classes 100, else the cloud
                            probability) as a COG on the scene's grid; see
                            :mod:`seaice_utils.collect.masks`
      catalogue.csv         one row per scene: collection, product id, date, tile, cloud cover,
                            CRS, transform, footprint (WKT, lon/lat), valid share, reflectance
                            offset and where it came from, format, file, cloud_mask (the mask
                            file, or empty) and cloud_mask_source (scl, cloud_probability, none)
      collect_state.json    resume state: query fingerprint and windows rejected for no-data

The formats are described in :mod:`seaice_utils.collect.products` (:data:`EXPORT_FORMATS`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from seaice_utils.collect.masks import MASK_SOURCES, mask_percent
from seaice_utils.collect.products import (EXPORT_FORMATS, Product, dn_to_rgb8, geotiff_bytes,
                                           harmonize_dn)
from seaice_utils.collect.windows import candidate_windows, footprint_wkt, window_transform
from seaice_utils.core.geotiff import ATTRIBUTION
from seaice_utils.core.scenes import Stretch, atomic_write_bytes, write_json, write_png
from seaice_utils.data.dataset import write_catalogue
from seaice_utils.errors import InputError

__all__ = ["SceneSink", "read_window", "run_products", "mask_counts"]

_STATE = "collect_state.json"
_CATALOGUE = "catalogue.csv"


def _crs_text(crs: Any) -> str:
    from rasterio.crs import CRS

    c = CRS.from_user_input(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_wkt()


def _scene_name(product: Product, row: int, col: int) -> str:
    day = re.sub(r"\D", "", product.datetime[:10]) or "00000000"
    tile = re.sub(r"[^0-9A-Za-z]", "", product.tile) or \
        hashlib.sha1(product.id.encode()).hexdigest()[:6]
    return f"s2_{day}_{tile}_r{row:05d}c{col:05d}"


class SceneSink:
    """Writes the scenes of one dataset folder and keeps its catalogue; resumable.

    Scenes are written atomically; the catalogue and the resume state are rewritten after each
    scene, so an interrupted collection resumes where it stopped: scenes in the catalogue whose
    file is intact are kept, windows rejected for too little data are not fetched again. A
    change of the query (its fingerprint) starts a fresh catalogue.

    Parameters
    ----------
    root : path
        Dataset folder (``<outputs>/data/<source>``).
    source : str
        Recorded in the catalogue's ``source`` column.
    query : dict
        The request; its fingerprint (without the counts) identifies the collection.
    params : dict
        Loaded profile (``collect`` section: scene_px, scale, export_format, min_valid_fraction,
        max_scenes, scenes_per_product, cloud_masks).
    """

    def __init__(self, root: str | os.PathLike, *, source: str, query: dict, params: dict) -> None:
        c = params["collect"]
        self.root = Path(root)
        self.source = source
        self.scene_px = int(c["scene_px"])
        self.scale = float(c["scale"])
        self.fmt = c["export_format"]
        if self.fmt not in EXPORT_FORMATS:
            raise InputError(f"collect.export_format must be one of {', '.join(EXPORT_FORMATS)} "
                             f"(got {self.fmt!r})")
        self.min_valid = float(c["min_valid_fraction"])
        self.max_scenes = int(c["max_scenes"])
        self.per_product = int(c["scenes_per_product"])
        self.cloud_masks = bool(c.get("cloud_masks", True))
        ignore = {"max_products", "max_scenes", "timeout_s", "url"}
        self.fingerprint = hashlib.sha1(json.dumps(
            {k: v for k, v in query.items() if k not in ignore}, sort_keys=True,
            default=str).encode()).hexdigest()[:16]
        self.collection = str(query.get("collection") or (query.get("collections") or [""])[0]
                              or source)
        self.rows: list[dict] = []
        self.rejected: set[str] = set()
        state = self._read_state()
        if state.get("fingerprint") == self.fingerprint:
            self.rejected = set(state.get("rejected", []))
            self.rows = [r for r in self._read_rows() if self._intact(r)]

    # -- state -------------------------------------------------------------------------------
    def _read_state(self) -> dict:
        try:
            return json.loads((self.root / _STATE).read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def _read_rows(self) -> list[dict]:
        import csv

        path = self.root / _CATALOGUE
        if not path.is_file():
            return []
        with path.open(newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)]

    def _intact(self, row: dict) -> bool:
        path = self.root / row.get("file", "")
        if not row.get("file") or not path.is_file() or path.stat().st_size == 0:
            return False
        if self.cloud_masks and not row.get("cloud_mask_source"):
            return False  # collected before masks were: fetch again with its mask
        mask = row.get("cloud_mask")
        if mask and (not (self.root / mask).is_file() or (self.root / mask).stat().st_size == 0):
            return False
        try:
            if path.suffix == ".png":
                import cv2

                arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                return arr is not None and arr.shape[:2] == (self.scene_px, self.scene_px)
            import rasterio

            with rasterio.open(path) as src:
                dtype = "uint16" if self.fmt == "geotiff16" else "uint8"
                return ((src.height, src.width, src.count) == (self.scene_px, self.scene_px, 3)
                        and src.dtypes[0] == dtype)
        except Exception:
            return False

    def _save(self) -> None:
        write_catalogue(self.root, self.rows)
        write_json(self.root / _STATE, {"fingerprint": self.fingerprint, "source": self.source,
                                        "rejected": sorted(self.rejected)})

    # -- queries -----------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        return len(self.rows) >= self.max_scenes

    def has(self, name: str) -> bool:
        return any(r["name"] == name for r in self.rows)

    def is_rejected(self, name: str) -> bool:
        return name in self.rejected

    def count_product(self, product_id: str) -> int:
        return sum(r.get("product_id") == product_id for r in self.rows)

    def plan(self, product: Product, region: dict) -> list[tuple[str, int, int]]:
        """(name, row, col) of the windows still to fetch from a product (none when it is done)."""
        if self.count_product(product.id) >= self.per_product:
            return []
        wins = candidate_windows(product, region=region, scale=self.scale, scene_px=self.scene_px,
                                 min_valid_fraction=self.min_valid, per_product=self.per_product)
        out = []
        for row, col in wins:
            name = _scene_name(product, row, col)
            if not self.has(name) and not self.is_rejected(name):
                out.append((name, row, col))
        return out

    def keeps(self, dn: np.ndarray) -> bool:
        """Whether :meth:`add` would keep a window of these DNs (enough data)."""
        valid = 1.0 - float(np.all(dn == 0, axis=-1).mean())
        return valid >= self.min_valid and valid > 0

    # -- writing -----------------------------------------------------------------------------
    def add(self, product: Product, name: str, row: int, col: int, dn: np.ndarray, *,
            extra: dict | None = None, mask: np.ndarray | None = None,
            mask_source: str = "none") -> dict | None:
        """Write one scene from its DNs, or reject it when it holds too little data.

        Parameters
        ----------
        dn : (scene_px, scene_px, 3) integer ndarray
            Red, green, blue DNs on the window's grid (0 = no-data).
        mask : (scene_px, scene_px) ndarray, optional
            The raw cloud layer of ``mask_source`` (SCL codes or cloud probability) on the same
            grid; written as ``masks/<name>.tif`` by the rule of
            :mod:`seaice_utils.collect.masks` (ignored when ``collect.cloud_masks`` is false).
        mask_source : {'scl', 'cloud_probability', 'none'}

        Returns
        -------
        dict or None
            The catalogue row written, or None when the window was rejected.
        """
        px = self.scene_px
        if dn.shape != (px, px, 3):
            raise InputError(f"scene {name} of product {product.id}: expected DNs of shape "
                             f"({px}, {px}, 3) (got {dn.shape})")
        if not np.issubdtype(dn.dtype, np.integer):
            raise InputError(f"scene {name} of product {product.id}: expected integer DNs "
                             f"(got {dn.dtype})")
        nodata = np.all(dn == 0, axis=-1)
        valid = 1.0 - float(nodata.mean())
        if valid < self.min_valid or not valid > 0:
            self.rejected.add(name)
            self._save()
            return None
        transform = window_transform(product, row, col, self.scale)
        crs = _crs_text(product.crs)
        tags = {"product_id": product.id, "source": self.source,
                "collection": product.extra.get("collection") or self.collection,
                "ATTRIBUTION": ATTRIBUTION}
        if self.fmt == "geotiff16":
            rel = f"scenes/{name}.tif"
            atomic_write_bytes(self.root / rel, geotiff_bytes(
                harmonize_dn(dn, offset=product.offset, nodata=nodata), crs=crs,
                transform=transform, descriptions=("red", "green", "blue"),
                tags={"reflectance": "DN / 10000 (offset removed)", **tags}))
            stretch = f"none (16-bit DN, offset {product.offset:g} removed)"
        else:
            rgb = dn_to_rgb8(dn, offset=product.offset, nodata=nodata)
            stretch = Stretch(offset=product.offset).describe()
            if self.fmt == "png8":
                rel = f"scenes/{name}.png"
                write_png(self.root / rel, rgb)
            else:  # geotiff8
                rel = f"scenes/{name}.tif"
                atomic_write_bytes(self.root / rel, geotiff_bytes(
                    rgb, crs=crs, transform=transform, descriptions=("red", "green", "blue"),
                    tags={"stretch": stretch, "nodata": "0 in every band", **tags}, cog=True))
        rec = {"name": name, "source": self.source, "file": rel, "collection": tags["collection"],
               "product_id": product.id,
               "datetime": product.datetime, "tile": product.tile,
               "cloud_cover": "" if product.cloud_cover is None else round(float(product.cloud_cover), 3),
               "processing_baseline": product.baseline or "",
               "reflectance_offset": product.offset, "offset_source": product.offset_source,
               "row_off": row, "col_off": col, "height": px, "width": px, "scale_m": self.scale,
               "valid_fraction": round(valid, 4), "nodata_fraction": round(1.0 - valid, 4),
               "crs": crs, "transform": " ".join(f"{v:.10g}" for v in transform),
               "footprint": footprint_wkt(product, row, col, px, self.scale),
               "format": self.fmt, "stretch": stretch}
        rec["cloud_mask"], rec["cloud_mask_source"] = "", "none"
        if self.cloud_masks and mask is not None and mask_source != "none":
            if mask_source not in MASK_SOURCES or mask.shape != (px, px):
                raise InputError(f"cloud mask of scene {name}: expected a {mask_source!r} layer "
                                 f"of shape ({px}, {px}) (got {mask.shape})")
            mrel = f"masks/{name}.tif"
            atomic_write_bytes(self.root / mrel, geotiff_bytes(
                mask_percent(mask, mask_source)[..., None], crs=crs, transform=transform,
                descriptions=("cloud",), cog=True, nodata=None,
                tags={**tags, "cloud_mask_source": mask_source,
                      "units": "percent (pixels >= season.cloud_probability are cloud)"}))
            rec["cloud_mask"], rec["cloud_mask_source"] = mrel, mask_source
        rec.update(extra or {})
        self.rows.append(rec)
        self._save()
        return rec

    def finish(self) -> list[dict]:
        """Write the final catalogue (at most ``max_scenes`` rows) and return its rows."""
        self.rows = self.rows[: self.max_scenes]
        self._save()
        return self.rows


def read_window(bands: Sequence[tuple[Any, int]], row: int, col: int, size: int,
                ratio: float = 1.0) -> np.ndarray:
    """Read one window of three rasterio bands on a common grid, padding outside with 0.

    Parameters
    ----------
    bands : sequence of 3 (dataset, band index)
        Open rasterio datasets and 1-based band indexes holding red, green, blue.
    row, col : int
        Window offset in output pixels.
    size : int
        Window side in output pixels.
    ratio : float
        Output pixel size / native pixel size (1: no resampling; > 1: averaged).

    Returns
    -------
    (size, size, 3) uint16 ndarray
        DNs; pixels outside the raster are 0 (no-data).
    """
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    ds0 = bands[0][0]
    out = np.zeros((size, size, 3), dtype=np.uint16)
    r0, c0 = row * ratio, col * ratio
    r1, c1 = min(ds0.height, (row + size) * ratio), min(ds0.width, (col + size) * ratio)
    if r1 <= r0 or c1 <= c0:
        return out
    orow, ocol = 0, 0
    oh = int(round((r1 - r0) / ratio))
    ow = int(round((c1 - c0) / ratio))
    if oh < 1 or ow < 1:
        return out
    win = Window(c0, r0, c1 - c0, r1 - r0)
    for i, (ds, idx) in enumerate(bands):
        arr = ds.read(idx, window=win, out_shape=(oh, ow),
                      resampling=Resampling.average if ratio > 1 else Resampling.nearest)
        if np.issubdtype(arr.dtype, np.signedinteger):
            arr = np.clip(arr, 0, None)
        out[orow:orow + oh, ocol:ocol + ow, i] = arr.astype(np.uint16)
    return out


def run_products(sink: SceneSink, products: Iterable[Product], fetch, *, region: dict,
                 progress: bool = True, desc: str = "scenes", fetch_mask=None) -> list[dict]:
    """Drive a collection: plan windows per product, ``fetch(product, row, col) -> dn``, write.

    Shared by the Earth Engine, STAC and local paths. Stops at ``max_scenes``. With
    ``collect.cloud_masks`` on, ``fetch_mask(product, row, col) -> (layer or None, source)``
    gives the cloud layer of each kept window (see :meth:`SceneSink.add`).
    """
    from tqdm import tqdm

    bar = tqdm(total=sink.max_scenes, initial=min(len(sink.rows), sink.max_scenes), desc=desc,
               unit="scene", disable=not progress)
    try:
        for product in products:
            if sink.full:
                break
            for name, row, col in sink.plan(product, region):
                if sink.full or sink.count_product(product.id) >= sink.per_product:
                    break
                dn = fetch(product, row, col)
                mask, source = None, "none"
                if sink.cloud_masks and fetch_mask is not None and sink.keeps(dn):
                    mask, source = fetch_mask(product, row, col)
                if sink.add(product, name, row, col, dn, mask=mask,
                            mask_source=source if mask is not None else "none") is not None:
                    bar.update(1)
    finally:
        bar.close()
    return sink.finish()


def mask_counts(rows: Iterable[dict]) -> str:
    """``scl: n, cloud_probability: m, none: k`` of catalogue rows (for a collection's details).

    >>> mask_counts([{"cloud_mask_source": "scl"}, {"cloud_mask_source": "none"}, {}])
    'scl: 1, none: 2'
    """
    counts: dict[str, int] = {}
    for r in rows:
        k = r.get("cloud_mask_source") or "none"
        counts[k] = counts.get(k, 0) + 1
    return ", ".join(f"{k}: {counts[k]}" for k in MASK_SOURCES if k in counts)
