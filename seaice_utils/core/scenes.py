"""Scenes in and out: reading images, the reflectance stretch, no-data masks, input lists,
atomic writes.

A *scene* is an RGB ``uint8`` image plus a boolean no-data mask of the same height and width.
Every later step (tiling, filter, labels, metrics) takes the mask along and leaves no-data pixels
out.

Inputs accepted
---------------
* 8-bit RGB (or RGBA) PNG / TIFF / JPEG: used as is; an alpha channel of 0 marks no-data.
* 16-bit Sentinel-2 digital numbers (reflectance x 10000) in a TIFF with any band order: the
  caller says which file bands are red, green and blue (1-based, ``bands=(1, 2, 3)`` by default)
  and the image is converted with the linear stretch below.
* Float reflectance (float32/float64 GeoTIFFs as Earth Engine, SNAP or xarray write them), with
  the same band choice and stretch (see *The scale* below).

The stretch
-----------
``uint8 = clip(round(255 * (DN / scale + offset) / reflectance_max), 0, 255)`` with
``offset = 0`` and ``reflectance_max = 1.0`` by default, i.e. reflectance 0..1 maps linearly onto
0..255. With this stretch the paper's thresholds V = 30 and V = 205 mean reflectance of about 0.12
(water / thin ice) and 0.80 (thin / thick ice). A display stretch such as 0..0.3 would saturate all
ice to "thick" and must not be used for labelling.

The scale
---------
``scale`` is how many units of the file make reflectance 1. Given (``Stretch(scale=...)``, the
command line's ``--scale``), it is used as is. Left out (``Stretch()``), it is decided by the data
and never guessed silently:

* integer input (Sentinel-2 DN): 10000, as always;
* float input whose valid values (not no-data, finite) all lie within
  :data:`FLOAT_REFLECTANCE_RANGE` (-0.2..1.5) is reflectance: scale 1. The margin above 1 keeps
  bright snow and cloud (top-of-atmosphere reflectance above 1 is common at low sun over
  Antarctic snow) and the margin below 0 keeps atmospherically corrected water and baseline-04
  L2A values (down to -0.1); the other common float encodings (DN 0..10000 stored as float,
  8-bit values 0..255 stored as float) reach far above 1.5;
* any other float input is an :class:`~seaice_utils.errors.InputError` that names the file, the
  value range found and the option to pass (``--scale`` / ``Stretch(scale=...)``).

The scene's ``meta`` records ``reflectance_scale`` (the scale used) and
``reflectance_scale_source`` (``"given"``, ``"detected: float values within -0.2..1.5"`` or
``"default for integer input"``); the labelling and prediction sidecars carry them.

No-data
-------
Pixels that are 0 in every band (Sentinel-2's fill value), or equal to a given ``nodata`` value in
every band, are no-data; so are float pixels with a non-finite value (NaN, inf) in a red, green or
blue band. Their RGB values are set to 0.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from seaice_utils.errors import InputError

__all__ = [
    "Scene",
    "Stretch",
    "IMAGE_SUFFIXES",
    "FLOAT_REFLECTANCE_RANGE",
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
]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".jp2")
_UMASK = os.umask(0)
os.umask(_UMASK)


#: Float input whose valid values all lie within this range is reflectance (scale 1); see the
#: module docstring for the margins.
FLOAT_REFLECTANCE_RANGE = (-0.2, 1.5)
#: Scale of integer input (Sentinel-2 digital numbers) when none is given.
DN_SCALE = 10000.0


@dataclass(frozen=True)
class Stretch:
    """Linear stretch from reflectance (digital numbers or float) to 8-bit.

    Parameters
    ----------
    scale : float, optional
        Units per reflectance 1 (10000 for Sentinel-2 DN, 1 for float reflectance). None (the
        default): 10000 for integer input, 1 for float input that is reflectance, an error for
        other float input (see :func:`reflectance_scale`).
    offset : float
        Added to ``DN / scale`` (use -0.1 for L2A products of processing baseline >= 04.00,
        whose DNs carry ``BOA_ADD_OFFSET = -1000``).
    reflectance_max : float
        Reflectance mapped to 255 (1.0 by default; values above are clipped).
    """

    scale: float | None = None
    offset: float = 0.0
    reflectance_max: float = 1.0

    def __post_init__(self) -> None:
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"stretch scale must be a finite number > 0 (got {self.scale})")
        if not (math.isfinite(self.reflectance_max) and self.reflectance_max > 0):
            raise InputError(f"stretch reflectance_max must be a finite number > 0 (got "
                             f"{self.reflectance_max})")
        if not math.isfinite(self.offset):
            raise InputError(f"stretch offset must be a finite number (got {self.offset})")

    def describe(self) -> str:
        scale = "scale" if self.scale is None else f"{self.scale:g}"
        text = (f"uint8 = clip(round(255 * (DN / {scale} + {self.offset:g}) / "
                f"{self.reflectance_max:g}), 0, 255)")
        if self.scale is None:
            lo, hi = FLOAT_REFLECTANCE_RANGE
            text += (f", scale {DN_SCALE:g} for integer input, 1 for float input within "
                     f"{lo:g}..{hi:g}")
        return text


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


def reflectance_scale(values: np.ndarray, stretch: Stretch = Stretch(), *,
                      valid: np.ndarray | None = None, name: str = "image") -> tuple[float, str]:
    """The scale of a stretch for these values, and where it came from.

    Parameters
    ----------
    values : (H, W, C) integer or float ndarray
        The bands to be stretched.
    stretch : Stretch
        A given ``stretch.scale`` is used as is.
    valid : (H, W) bool ndarray, optional
        Pixels that carry data (default: all); only these, and only finite values, decide
        whether float input is reflectance.
    name : str
        The file or scene named in the error.

    Returns
    -------
    scale : float
    source : str
        ``"given"``, ``"default for integer input"`` or ``"detected: ..."``.

    Raises
    ------
    InputError
        Float values outside :data:`FLOAT_REFLECTANCE_RANGE` and no scale given.

    Examples
    --------
    >>> import numpy as np
    >>> reflectance_scale(np.array([[[0.05, 0.8, 1.2]]], np.float32))
    (1.0, 'detected: float values within -0.2..1.5')
    >>> reflectance_scale(np.array([[[120, 8000]]], np.uint16))
    (10000.0, 'default for integer input')
    """
    if stretch.scale is not None:
        return float(stretch.scale), "given"
    if not np.issubdtype(values.dtype, np.floating):
        return DN_SCALE, "default for integer input"
    lo_ok, hi_ok = FLOAT_REFLECTANCE_RANGE
    v = values if valid is None else values[valid]
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 1.0, "detected: float input without valid values"
    lo, hi = float(v.min()), float(v.max())
    if lo >= lo_ok and hi <= hi_ok:
        return 1.0, f"detected: float values within {lo_ok:g}..{hi_ok:g}"
    raise InputError(
        f"{name}: float values {lo:g}..{hi:g} are not reflectance (float input is read as "
        f"reflectance only when its valid values lie within {lo_ok:g}..{hi_ok:g}); give the "
        "units per reflectance 1 with --scale (Stretch(scale=...) in Python), e.g. --scale 10000 "
        "for digital numbers stored as float, --scale 255 for 8-bit values stored as float")


def stretch_reflectance(dn: np.ndarray, stretch: Stretch = Stretch(), *,
                        valid: np.ndarray | None = None, name: str = "image") -> np.ndarray:
    """Linear stretch of reflectance (Sentinel-2 DN or float) to uint8 (see module docstring).

    Parameters
    ----------
    dn : (H, W, C) integer or float ndarray
        Digital numbers or reflectance (reflectance x the scale).
    stretch : Stretch
        Without a scale: see :func:`reflectance_scale` (``valid`` and ``name`` are passed on).
    valid : (H, W) bool ndarray, optional
    name : str

    Returns
    -------
    (H, W, C) uint8 ndarray
        Non-finite values (NaN, inf) give 0.

    Examples
    --------
    >>> import numpy as np
    >>> stretch_reflectance(np.array([[[0, 1200, 8000, 10000, 12000]]], dtype=np.uint16)).tolist()
    [[[0, 31, 204, 255, 255]]]
    >>> stretch_reflectance(np.array([[[0.0, 0.12, 0.8, 1.0, 1.2]]], dtype=np.float32)).tolist()
    [[[0, 31, 204, 255, 255]]]
    """
    if not (np.issubdtype(dn.dtype, np.integer) or np.issubdtype(dn.dtype, np.floating)):
        raise InputError(f"reflectance must be integer or float (got dtype {dn.dtype})")
    scale, _ = reflectance_scale(dn, stretch, valid=valid, name=name)
    refl = dn.astype(np.float32) / np.float32(scale) + np.float32(stretch.offset)
    if np.issubdtype(dn.dtype, np.floating):
        refl = np.where(np.isfinite(refl), refl, np.float32(0))
    out = np.rint(refl * np.float32(255.0 / stretch.reflectance_max))
    return np.clip(out, 0, 255).astype(np.uint8)


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


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode an image file into bands in file order.

    TIFF and JP2 files are read with rasterio when it is installed (any number of bands, keeps CRS
    and transform); everything else, and TIFFs without rasterio, with OpenCV (channels converted
    from OpenCV's BGR to file order).

    Returns
    -------
    bands : (H, W, C) ndarray
    meta : dict
        ``path`` and, for georeferenced files, ``crs`` (WKT) and ``transform`` (6 floats).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"image file is empty: {path}")
    meta: dict[str, Any] = {"path": str(path)}
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff", ".jp2"):
        try:
            import rasterio  # noqa: F401  (optional, lazy)
        except ImportError:
            rasterio = None
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
                raise InputError(f"cannot read image {path}: corrupt or unsupported ({exc})") from exc
    data = np.fromfile(str(path), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"cannot read image {path}: corrupt, truncated or not an image")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    return np.ascontiguousarray(arr), meta


def read_scene(path: str | os.PathLike, *, bands: Sequence[int] | None = None,
               nodata: float | None = None, stretch: Stretch | None = None,
               name: str | None = None) -> Scene:
    """Read an image file as a :class:`Scene` (see :func:`as_scene` for the options)."""
    path = Path(path)
    arr, meta = read_image(path)
    return as_scene(arr, name=name or path.stem, bands_rgb=bands, nodata=nodata,
                    stretch=stretch, meta=meta)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (by suffix) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder not found: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def list_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The files a job works on: a file, the images directly inside a folder, or a list."""
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise InputError(f"no images (.png, .tif, .jpg, .jp2) in {p}")
            return files
        if p.exists():
            return [p]
        raise InputError(f"input not found: {p}")
    return [Path(f) for f in inputs]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and an interrupted run leaves no partial output
    (only, at worst, a ``.tmp`` file that the next run ignores and overwrites).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_png(path: str | os.PathLike, image: np.ndarray, *, compression: int = 1) -> None:
    """Write a (H, W) or (H, W, 3) uint8 array as PNG, atomically. RGB order in, as stored.

    ``compression`` is the zlib level (0-9); 1 is fast and still lossless.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError(f"write_png takes uint8 (H, W) or (H, W, 3) arrays (got {image.dtype} "
                         f"{image.shape})")
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr),
                           [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise InputError(f"could not encode PNG for {path}")
    atomic_write_bytes(path, buf.tobytes())


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented, key-sorted JSON that strict parsers accept (NaN and inf -> null).

    >>> json_bytes({"b": float("nan"), "a": [1.5, float("inf")]}).decode()
    '{\\n  "a": [\\n    1.5,\\n    null\\n  ],\\n  "b": null\\n}\\n'
    """
    return (json.dumps(_finite(obj), indent=2, sort_keys=True, default=str,
                       allow_nan=False) + "\n").encode()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (:func:`json_bytes`), atomically."""
    atomic_write_bytes(path, json_bytes(obj))
