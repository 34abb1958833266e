"""A scene read in bands of rows: full Sentinel-2 tiles without the whole scene in memory.

:func:`open_bands` opens a TIFF or JPEG 2000 file with rasterio and returns a
:class:`BandSource`, whose :meth:`~BandSource.rows` reads rows ``r0..r1`` (rasterio windows) and
turns them into RGB uint8 and a no-data mask exactly as :func:`~seaice_utils.core.scenes.as_scene`
turns the whole scene: the same band choice, no-data rule and stretch, pixel for pixel. The one
scene-wide decision of reading, the reflectance scale of float input
(:func:`~seaice_utils.core.stretch.reflectance_scale`: are the valid values within -0.2..1.5?),
is taken from the extremes of the whole scene, gathered in a first pass over the bands, never
from a decimated read; the scene's metadata (``meta``: dtype, bands, stretch, scale and its
source, CRS, transform) is the whole-scene reader's.

Files rasterio cannot read by windows (PNG, JPEG) and machines without rasterio have no band
source: :func:`open_bands` returns None and the caller reads the whole scene.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from seaice_utils.core.scenes import as_scene, nodata_mask
from seaice_utils.core.stretch import Stretch, reflectance_scale
from seaice_utils.errors import InputError

__all__ = ["BandSource", "open_bands", "band_starts", "WINDOWED_SUFFIXES"]

#: GDAL's block cache while a scene is read in bands (MB).
GDAL_CACHE_MB = 64
#: Files read by rasterio windows (when rasterio is installed).
WINDOWED_SUFFIXES = (".tif", ".tiff", ".jp2")


def band_starts(height: int, rows: int, align: int = 1) -> list[int]:
    """First rows of the bands that cover ``height`` rows, ``rows`` rows each (a multiple of
    ``align``, at least ``align``).

    >>> band_starts(10, 4), band_starts(10, 5, align=4)
    ([0, 4, 8], [0, 4, 8])
    """
    rows = max(align, (max(1, int(rows)) // align) * align)
    return list(range(0, height, rows))


@dataclass
class BandSource:
    """A scene file read in bands of rows (see the module). Use as a context manager."""

    path: Path
    name: str
    height: int
    width: int
    count: int
    dtype: str
    meta: dict = field(default_factory=dict)
    bands_rgb: tuple[int, int, int] | None = None
    nodata: float | None = None
    stretch: Stretch | None = None
    _src: Any = None
    _env: Any = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def close(self) -> None:
        if self._src is not None:
            self._src.close()
            self._src = None
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None

    def __enter__(self) -> "BandSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0..r1`` of every band, as (rows, width, bands) in file order."""
        from rasterio.windows import Window

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = self._src.read(window=Window(0, r0, self.width, r1 - r0))
        return np.moveaxis(arr, 0, -1)

    def rows(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """(rgb uint8, no-data bool) of rows ``r0..r1``, as the whole-scene reader gives them."""
        sc = as_scene(self.read(r0, r1), name=self.name, bands_rgb=self.bands_rgb,
                      nodata=self.nodata, stretch=self.stretch, meta={"path": str(self.path)})
        return sc.rgb, sc.nodata

    def iter_rows(self, rows: int) -> Iterator[tuple[int, int]]:
        for r0 in band_starts(self.height, rows):
            yield r0, min(self.height, r0 + rows)


def _selected(arr: np.ndarray, bands_rgb) -> np.ndarray:
    """The red, green, blue bands as :func:`~seaice_utils.core.scenes.as_scene` picks them."""
    c = arr.shape[-1]
    if bands_rgb is None:
        return arr[..., [0, 0, 0]] if c == 1 else arr[..., :3]
    return arr[..., [b - 1 for b in bands_rgb]]


def _float_scale(src: BandSource, stretch: Stretch, rows: int) -> tuple[float, str]:
    """The reflectance scale of a float scene from the extremes of its valid values (first
    pass over the bands): what :func:`reflectance_scale` says of the whole scene."""
    lo, hi = np.inf, -np.inf
    for r0, r1 in src.iter_rows(rows):
        sel = _selected(src.read(r0, r1), src.bands_rgb)
        mask = nodata_mask(sel, src.nodata) | ~np.all(np.isfinite(sel), axis=-1)
        v = sel[~mask]
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    values = (np.zeros((1, 0, 3), np.float64) if lo > hi
              else np.array([[[lo, hi, hi]]], np.float64))
    return reflectance_scale(values, stretch, name=str(src.path))


def open_bands(path: str | os.PathLike, *, bands: Sequence[int] | None = None,
               nodata: float | None = None, stretch: Stretch | None = None,
               name: str | None = None, rows: int = 1024) -> BandSource | None:
    """A :class:`BandSource` of ``path``, or None when it is not read by windows (not a TIFF or
    JPEG 2000 file, rasterio not installed). ``rows`` is the band height of the first pass that
    float input needs.

    Raises
    ------
    InputError
        A file rasterio cannot open, bad band choices or dtypes, float values that are not
        reflectance (as :func:`~seaice_utils.core.scenes.read_scene`).
    """
    path = Path(path)
    if path.suffix.lower() not in WINDOWED_SUFFIXES:
        return None
    try:
        import rasterio
    except ImportError:
        return None
    # GDAL's block cache would keep every decompressed block read (up to 5 % of the machine's
    # memory): bands are read once, in order, so a small cache is enough
    env = rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)
    env.__enter__()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = rasterio.open(path)
    except Exception as exc:  # rasterio raises its own error types
        env.__exit__(None, None, None)
        raise InputError(f"cannot read image {path}: corrupt or unsupported ({exc})") from exc
    meta: dict[str, Any] = {}
    if src.crs is not None:
        meta["crs"] = src.crs.to_wkt()
        meta["transform"] = list(src.transform)[:6]
    bs = BandSource(path=path, name=name or path.stem, height=src.height, width=src.width,
                    count=src.count, dtype=str(src.dtypes[0]), meta=meta,
                    bands_rgb=None if bands is None else tuple(int(b) for b in bands),
                    nodata=nodata, stretch=stretch, _src=src, _env=env)
    try:
        first = as_scene(bs.read(0, min(1, bs.height)), name=bs.name, bands_rgb=bs.bands_rgb,
                         nodata=nodata, stretch=replace(stretch or Stretch(), scale=1.0)
                         if np.issubdtype(np.dtype(bs.dtype), np.floating) else stretch,
                         meta={"path": str(path)})
        scene_meta = {k: v for k, v in first.meta.items() if k != "path"}
        if np.issubdtype(np.dtype(bs.dtype), np.floating):
            st = stretch or Stretch()
            scale, source = _float_scale(bs, st, rows)
            st = replace(st, scale=scale)
            bs.stretch = st
            scene_meta.update(stretch=st.describe(), reflectance_scale=scale,
                              reflectance_scale_source=source)
        bs.meta = {**scene_meta, **meta}
    except BaseException:
        bs.close()
        raise
    return bs
