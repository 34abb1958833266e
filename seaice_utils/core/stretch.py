"""The reflectance stretch: from Sentinel-2 digital numbers or float reflectance to 8-bit.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from seaice_utils.errors import InputError

__all__ = ["Stretch", "FLOAT_REFLECTANCE_RANGE", "DN_SCALE", "reflectance_scale",
           "stretch_reflectance"]

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
    if dn.dtype in (np.uint8, np.uint16, np.int8, np.int16):
        return _stretch_lut(dn.dtype.str, float(scale), float(stretch.offset),
                            float(stretch.reflectance_max))[_lut_index(dn)]
    return _stretch_values(dn, scale, stretch)


def _stretch_values(dn: np.ndarray, scale: float, stretch: Stretch) -> np.ndarray:
    """The stretch computed value by value, in float32, in place (one float32 copy)."""
    refl = dn.astype(np.float32)
    refl /= np.float32(scale)
    refl += np.float32(stretch.offset)
    if np.issubdtype(dn.dtype, np.floating):
        refl[~np.isfinite(refl)] = np.float32(0)
    refl *= np.float32(255.0 / stretch.reflectance_max)
    np.rint(refl, out=refl)
    np.clip(refl, 0, 255, out=refl)
    return refl.astype(np.uint8)


def _lut_index(dn: np.ndarray) -> np.ndarray:
    """Indices into a lookup table over every value of an 8- or 16-bit dtype (signed values
    shifted to start at 0)."""
    if dn.dtype in (np.int8, np.int16):
        bits = 8 * dn.dtype.itemsize
        return dn.view(np.dtype(f"uint{bits}")) ^ np.array(1 << (bits - 1), f"uint{bits}")
    return dn


@lru_cache(maxsize=16)
def _stretch_lut(dtype: str, scale: float, offset: float, reflectance_max: float) -> np.ndarray:
    """The stretch of every value of an 8- or 16-bit integer dtype: the same float32 arithmetic
    as :func:`_stretch_values`, once per value instead of once per pixel."""
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    values = np.arange(info.min, info.max + 1).astype(dt)
    lut = _stretch_values(values, scale, Stretch(scale=scale, offset=offset,
                                                 reflectance_max=reflectance_max))
    lut.flags.writeable = False                     # lut[v - min] (_lut_index: offset binary)
    return lut
