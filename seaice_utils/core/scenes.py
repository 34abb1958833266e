"""Scenes in: reading images into an RGB scene with its no-data mask, after checking the header.

A *scene* is an RGB ``uint8`` image plus a boolean no-data mask of the same height and width.
Every later step (tiling, filter, labels, metrics) takes the mask along and leaves no-data pixels
out.

Inputs accepted
---------------
* 8-bit RGB (or RGBA) PNG / TIFF / JPEG: used as is; an alpha channel of 0 marks no-data.
* 16-bit Sentinel-2 digital numbers (reflectance x 10000) in a TIFF with any band order: the
  caller says which file bands are red, green and blue (1-based, ``bands=(1, 2, 3)`` by default)
  and the image is converted with the linear stretch of :mod:`seaice_utils.core.stretch`.
* Float reflectance (float32/float64 GeoTIFFs as Earth Engine, SNAP or xarray write them), with
  the same band choice and stretch (see *The scale* in :mod:`seaice_utils.core.stretch`).

TIFF and JPEG 2000 files are read with rasterio when it is installed (the ``geo`` extra): any
number of bands, any sample type, CRS and transform kept. Without it OpenCV reads them, and only
those it reads faithfully (below).

Before decoding
---------------
:func:`read_image` (and so :func:`read_scene`) reads the file's header first
(:mod:`seaice_utils.core.headers`) and refuses, with one line naming the file:

* a scene that would need more memory than ``max_bytes`` (the worker memory limit,
  :func:`seaice_utils.core.budget.check_scene_size`), before anything is allocated;
* without rasterio installed, a TIFF or JPEG 2000 file that OpenCV would not read faithfully:
  other than 8-bit grey, RGB or RGBA (16-bit or float samples, more or other bands), or
  georeferenced (GeoTIFF tags, GeoJP2 / GMLJP2 boxes, a world file beside it). OpenCV reads a
  GDAL-written 3-band uint16 GeoTIFF as one grey band and drops every georeference; the message
  says to install rasterio (``pip install "seaice-utils[geo]"``).

No-data
-------
Pixels that are 0 in every band (Sentinel-2's fill value), or equal to a given ``nodata`` value in
every band, are no-data; so are float pixels with a non-finite value (NaN, inf) in a red, green or
blue band. Their RGB values are set to 0.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from seaice_utils.core.budget import (LABEL_BYTES_PER_PIXEL, PREDICT_BYTES_PER_PIXEL,
                                      check_scene_size)
from seaice_utils.core.files import (IMAGE_SUFFIXES, atomic_write_bytes, json_bytes, list_images,
                                     list_inputs, write_json, write_png)
from seaice_utils.core.headers import SceneHeader, header_from_bytes, scene_header
from seaice_utils.core.stretch import (DN_SCALE, FLOAT_REFLECTANCE_RANGE, Stretch,
                                       reflectance_scale, stretch_reflectance)
from seaice_utils.errors import InputError

__all__ = [
    "Scene",
    "Stretch",
    "IMAGE_SUFFIXES",
    "FLOAT_REFLECTANCE_RANGE",
    "DN_SCALE",
    "reflectance_scale",
    "stretch_reflectance",
    "nodata_mask",
    "as_scene",
    "read_scene",
    "json_bytes",
    "read_image",
    "write_png",
    "write_json",
    "atomic_write_bytes",
    "list_images",
    "list_inputs",
    "check_rgb",
    "SceneHeader",
    "scene_header",
    "header_from_bytes",
    "check_scene_size",
    "LABEL_BYTES_PER_PIXEL",
    "PREDICT_BYTES_PER_PIXEL",
    "GEO_INSTALL",
]

#: How to install the reader of GeoTIFFs, multi-band and 16-bit TIFFs (named in refusals).
GEO_INSTALL = 'pip install "seaice-utils[geo]" (or pip install rasterio)'


@dataclass
class Scene:
    """An RGB uint8 image with its no-data mask.

    Attributes
    ----------
    rgb : (H, W, 3) uint8 ndarray
    nodata : (H, W) bool ndarray
        True where the pixel carries no data.
    name : str
    meta : dict
        Provenance: source path, dtype read, stretch applied, band order, CRS/transform if any.
    """

    rgb: np.ndarray
    nodata: np.ndarray
    name: str = "scene"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rgb(self.rgb, what=f"scene {self.name!r}")
        if self.nodata.shape != self.rgb.shape[:2] or self.nodata.dtype != bool:
            raise InputError(
                f"no-data mask of scene {self.name!r} must be bool of shape {self.rgb.shape[:2]} "
                f"(got {self.nodata.dtype} {self.nodata.shape})")

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]


def check_rgb(image: np.ndarray, *, what: str = "image") -> None:
    """Raise :class:`InputError` unless ``image`` is an (H, W, 3) uint8 array with H, W >= 1."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{what} must be a numpy array (got {type(image).__name__})")
    if image.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 RGB (got dtype {image.dtype}); "
                         "convert reflectance with stretch_reflectance first")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{what} must have shape (H, W, 3) (got {image.shape})")


def nodata_mask(bands: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """No-data mask of a multi-band image.

    Parameters
    ----------
    bands : (H, W, C) ndarray
    nodata : number, optional
        Fill value; by default 0 (pixels that are 0 in every band).

    Returns
    -------
    (H, W) bool ndarray
        True where every band equals the fill value.

    Examples
    --------
    >>> import numpy as np
    >>> nodata_mask(np.array([[[0, 0, 0], [0, 1, 0]]], dtype=np.uint16)).tolist()
    [[True, False]]
    """
    if bands.ndim == 2:
        bands = bands[..., None]
    fill = 0 if nodata is None else nodata
    return np.all(bands == fill, axis=-1)


def as_scene(bands: np.ndarray, *, name: str = "scene", bands_rgb: Sequence[int] | None = None,
             nodata: float | None = None, stretch: Stretch | None = None,
             meta: dict[str, Any] | None = None) -> Scene:
    """Turn a decoded image array into a :class:`Scene`.

    Parameters
    ----------
    bands : (H, W) or (H, W, C) ndarray, uint8, uint16 or float
        Bands in file order.
    bands_rgb : sequence of 3 ints, optional
        1-based file bands holding red, green, blue. Default (1, 2, 3).
    nodata : number, optional
        Fill value (default 0 in every band). For 8-bit RGBA input alpha == 0 is no-data as well.
    stretch : Stretch, optional
        Applied to non-uint8 input; default :class:`Stretch()` (scale from the data, see
        :func:`reflectance_scale`). The scale used and its source go into ``meta``.

    Raises
    ------
    InputError
        Float input that is not reflectance 0..1 and no ``stretch.scale`` (see the module
        docstring), bad shapes, band choices or dtypes.
    """
    meta = dict(meta or {})
    if bands.ndim == 2:
        bands = bands[..., None]
    if bands.ndim != 3:
        raise InputError(f"image {name!r} must be 2-D or 3-D (got shape {bands.shape})")
    h, w, c = bands.shape
    if h < 1 or w < 1:
        raise InputError(f"image {name!r} is empty (shape {bands.shape})")
    alpha_nodata = None
    if bands_rgb is None:
        if c == 1:
            sel = bands[..., [0, 0, 0]]
        elif c == 3:
            sel = bands
        elif c == 4 and bands.dtype == np.uint8:
            sel, alpha_nodata = bands[..., :3], bands[..., 3] == 0
        else:
            raise InputError(
                f"image {name!r} has {c} bands; say which are red, green, blue (bands=(r, g, b), "
                "1-based; e.g. --bands 4,3,2 for a B1..B12 stack)")
        bands_rgb = (1, 2, 3) if c >= 3 else (1, 1, 1)
    else:
        bands_rgb = tuple(int(b) for b in bands_rgb)
        if len(bands_rgb) != 3 or min(bands_rgb) < 1 or max(bands_rgb) > c:
            raise InputError(f"bands must be three 1-based band numbers within 1..{c} for image "
                             f"{name!r} (got {bands_rgb})")
        sel = bands[..., [b - 1 for b in bands_rgb]]
    mask = nodata_mask(sel, nodata)
    if alpha_nodata is not None:
        mask |= alpha_nodata
    if np.issubdtype(sel.dtype, np.floating):
        mask |= ~np.all(np.isfinite(sel), axis=-1)
    meta.update(dtype_in=str(bands.dtype), bands_rgb=list(bands_rgb),
                nodata_value=0 if nodata is None else nodata)
    if sel.dtype == np.uint8:
        rgb = np.ascontiguousarray(sel)
        meta["stretch"] = "none (8-bit input)"
    elif sel.dtype == np.bool_ or sel.dtype == np.int8:
        raise InputError(f"image {name!r} has unsupported dtype {sel.dtype}")
    else:
        st = stretch or Stretch()
        scale, source = reflectance_scale(sel, st, valid=~mask, name=meta.get("path", name))
        st = replace(st, scale=scale)
        rgb = stretch_reflectance(sel, st)
        meta.update(stretch=st.describe(), reflectance_scale=scale,
                    reflectance_scale_source=source)
    rgb = rgb.copy()
    rgb[mask] = 0
    return Scene(rgb=rgb, nodata=mask, name=name, meta=meta)


def _rasterio():
    """The rasterio module, or None when it is not installed."""
    try:
        import rasterio
    except ImportError:
        return None
    return rasterio


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"image file is empty: {path}")


def _check_opencv_reads(header: SceneHeader | None, path: Path) -> None:
    """Refuse a TIFF / JPEG 2000 file that OpenCV would not read faithfully (module docstring)."""
    if header is None:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return                              # not a TIFF: OpenCV says what it is or is not
        reason = "a TIFF header that only rasterio may read"
    else:
        reason = header.needs_rasterio
    if reason:
        raise InputError(
            f"{path.name}: {reason}; without rasterio it cannot be read faithfully (OpenCV reads "
            f"8-bit grey, RGB or RGBA only, and no georeference): install it, {GEO_INSTALL}")


def _opencv_error(exc: cv2.error) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else "unknown error"
    return text.split("error: ", 1)[-1]


def read_image(path: str | os.PathLike, *, max_bytes: float | None = None,
               bytes_per_pixel: float = LABEL_BYTES_PER_PIXEL) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode an image file into bands in file order, after checking its header.

    TIFF and JP2 files are read with rasterio when it is installed (any number of bands, keeps CRS
    and transform); everything else with OpenCV (channels converted from OpenCV's BGR to file
    order), and TIFF and JP2 files without rasterio only when OpenCV reads them faithfully.

    Parameters
    ----------
    path : path
    max_bytes : number, optional, keyword-only
        Memory the work on the scene may take (the worker memory limit, bytes); a file whose
        header says it would need more is refused before it is decoded
        (:func:`~seaice_utils.core.budget.check_scene_size`). None: no limit.
    bytes_per_pixel : number, keyword-only
        What the work takes per pixel: :data:`LABEL_BYTES_PER_PIXEL` (the default) or
        :data:`PREDICT_BYTES_PER_PIXEL`.

    Returns
    -------
    bands : (H, W, C) ndarray
    meta : dict
        ``path`` and, for georeferenced files, ``crs`` (WKT) and ``transform`` (6 floats).

    Raises
    ------
    InputError
        Missing, empty, corrupt or undecodable file; too big for ``max_bytes``; a file that
        only rasterio reads faithfully when rasterio is not installed.
    """
    path = Path(path)
    _check_file(path)
    try:
        header = scene_header(path)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    check_scene_size(header, path.name, max_bytes=max_bytes, bytes_per_pixel=bytes_per_pixel)
    meta: dict[str, Any] = {"path": str(path)}
    if path.suffix.lower() in (".tif", ".tiff", ".jp2"):
        rasterio = _rasterio()
        if rasterio is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with rasterio.open(path) as src:
                        arr = src.read()
                        if src.crs is not None:
                            meta["crs"] = src.crs.to_wkt()
                            meta["transform"] = list(src.transform)[:6]
                return np.moveaxis(arr, 0, -1), meta
            except Exception as exc:  # rasterio raises its own error types
                raise InputError(f"cannot read image {path}: corrupt or unsupported "
                                 f"({exc})") from exc
        _check_opencv_reads(header, path)
    data = np.fromfile(str(path), dtype=np.uint8)
    try:
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"cannot read image {path}: OpenCV refused it ({_opencv_error(exc)})"
                         ) from None
    if arr is None:
        raise InputError(f"cannot read image {path}: corrupt, truncated or not an image")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(arr), meta


def read_scene(path: str | os.PathLike, *, bands: Sequence[int] | None = None,
               nodata: float | None = None, stretch: Stretch | None = None,
               name: str | None = None, max_bytes: float | None = None,
               bytes_per_pixel: float = LABEL_BYTES_PER_PIXEL) -> Scene:
    """Read an image file as a :class:`Scene` (see :func:`as_scene` for the options).

    ``max_bytes`` and ``bytes_per_pixel`` (see :func:`read_image`): a scene too big for the
    worker memory limit is refused from its header, before it is decoded.
    """
    path = Path(path)
    arr, meta = read_image(path, max_bytes=max_bytes, bytes_per_pixel=bytes_per_pixel)
    return as_scene(arr, name=name or path.stem, bands_rgb=bands, nodata=nodata,
                    stretch=stretch, meta=meta)
