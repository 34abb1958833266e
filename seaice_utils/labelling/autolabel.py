"""Colour-segmentation auto-labeller (HSV ranges) and the class-map <-> palette conversions.

Class maps are (H, W) uint8 arrays:

=====  ===============================  ================
value  class                            palette (RGB)
=====  ===============================  ================
0      open water                       green (0, 255, 0)
1      thin / young ice                 blue (0, 0, 255)
2      thick / snow-covered ice         red (255, 0, 0)
255    no-data (or in no HSV range)     black (0, 0, 0)
=====  ===============================  ================

HSV ranges use OpenCV's scales (H 0..179, S and V 0..255) and are inclusive, as ``cv2.inRange``.
With the paper's defaults H and S are unconstrained, so the class depends on V = max(R, G, B)
alone; the labeller then uses a 256-entry lookup table on V instead of a full HSV conversion
(bit-identical, see ``tests/test_autolabel.py``). Where user ranges overlap, the class painted last
wins: water, then thin, then thick (thick has priority).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from seaice_utils.core.classes import NODATA, THICK, THIN, WATER
from seaice_utils.core.scenes import check_rgb
from seaice_utils.errors import InputError
from seaice_utils.labelling.cloudfilter import (FilterParams, filter_fast, levels_to_rgb,
                                                thin_cloud_shadow_filter)
from seaice_utils.labelling.kernels import SMALL, mask255, value_channel

__all__ = ["HSVRange", "Thresholds", "segment", "auto_label"]

_PAINT_ORDER = (WATER, THIN, THICK)
_HSV_MAX = (179, 255, 255)


def _check_triplet(v, what: str) -> tuple[int, int, int]:
    try:
        t = tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be three integers (got {v!r})") from None
    if len(t) != 3 or any(x < 0 for x in t) or any(float(x) != float(y) for x, y in zip(t, v)):
        raise InputError(f"{what} must be three non-negative integers (got {v!r})")
    return t


@dataclass(frozen=True)
class HSVRange:
    """Inclusive HSV box ``lower <= (H, S, V) <= upper`` on OpenCV's scales."""

    lower: tuple[int, int, int]
    upper: tuple[int, int, int]

    def __post_init__(self) -> None:
        lo = _check_triplet(self.lower, "HSV lower bound")
        hi = _check_triplet(self.upper, "HSV upper bound")
        for i, ch in enumerate("HSV"):
            if lo[i] > hi[i]:
                raise InputError(f"HSV range {ch}: lower {lo[i]} > upper {hi[i]}")
        if lo[1] > 255 or lo[2] > 255:
            raise InputError(f"HSV lower bound S and V must be <= 255 (got {lo})")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def v_only(self) -> bool:
        """True when H and S are unconstrained (the class depends on V alone)."""
        return (self.lower[0] == 0 and self.upper[0] >= _HSV_MAX[0]
                and self.lower[1] == 0 and self.upper[1] >= _HSV_MAX[1])

    def to_dict(self) -> dict:
        return {"lower": list(self.lower), "upper": list(self.upper)}


def _default(lo, hi):
    return field(default_factory=lambda: HSVRange(lo, hi))


@dataclass(frozen=True)
class Thresholds:
    """HSV ranges of the three classes; defaults are the paper's."""

    thick: HSVRange = _default((0, 0, 205), (185, 255, 255))
    thin: HSVRange = _default((0, 0, 31), (185, 255, 204))
    water: HSVRange = _default((0, 0, 0), (185, 255, 30))

    def ranges(self) -> dict[int, HSVRange]:
        return {WATER: self.water, THIN: self.thin, THICK: self.thick}

    def to_dict(self) -> dict:
        return {"thick": self.thick.to_dict(), "thin": self.thin.to_dict(),
                "water": self.water.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Thresholds":
        return cls(**{k: HSVRange(tuple(v["lower"]), tuple(v["upper"])) for k, v in d.items()})

    def value_lut(self) -> np.ndarray | None:
        """256-entry class lookup table on V when every range is V-only, else None."""
        rng = self.ranges()
        if not all(r.v_only for r in rng.values()):
            return None
        lut = np.full(256, NODATA, np.uint8)
        for cls in _PAINT_ORDER:
            r = rng[cls]
            lut[r.lower[2]:min(r.upper[2], 255) + 1] = cls
        return lut


def segment(rgb: np.ndarray, thresholds: Thresholds = Thresholds(), *,
            nodata: np.ndarray | None = None) -> np.ndarray:
    """Classify every pixel of an RGB image by its HSV colour.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    thresholds : Thresholds
    nodata : (H, W) bool ndarray, optional
        Pixels set to 255 in the output.

    Returns
    -------
    (H, W) uint8 ndarray
        0 water, 1 thin ice, 2 thick ice, 255 no-data or in no range.

    Examples
    --------
    >>> import numpy as np
    >>> segment(np.array([[[30, 0, 0], [31, 31, 31], [204, 0, 0], [0, 205, 0]]], np.uint8)).tolist()
    [[0, 1, 1, 2]]
    """
    check_rgb(rgb)
    if nodata is not None and nodata.shape != rgb.shape[:2]:
        raise InputError(f"no-data mask shape {nodata.shape} does not match image {rgb.shape[:2]}")
    lut = _value_lut(thresholds)
    if lut is not None and rgb.shape[0] * rgb.shape[1] < SMALL:
        out = lut[np.max(rgb, axis=2)]
    elif lut is not None:
        out = cv2.LUT(value_channel(rgb), lut)
    else:
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
        out = np.full(rgb.shape[:2], NODATA, np.uint8)
        for cls in _PAINT_ORDER:
            r = thresholds.ranges()[cls]
            out[cv2.inRange(hsv, np.array(r.lower), np.array(r.upper)) > 0] = cls
    return _apply_nodata(out, nodata)


@lru_cache(maxsize=64)
def _value_lut(thresholds: Thresholds) -> np.ndarray | None:
    lut = thresholds.value_lut()
    if lut is not None:
        lut.flags.writeable = False
    return lut


@lru_cache(maxsize=64)
def _grey_lut(thresholds: Thresholds) -> np.ndarray:
    """Class of every grey colour (v, v, v): what :func:`segment` gives on a filtered image."""
    ramp = np.arange(256, dtype=np.uint8)[None, :]
    lut = np.ascontiguousarray(segment(levels_to_rgb(ramp), thresholds)[0])
    lut.flags.writeable = False
    return lut


def _apply_nodata(classes: np.ndarray, nodata: np.ndarray | None) -> np.ndarray:
    if nodata is None:
        return classes
    return cv2.bitwise_or(classes, mask255(nodata))  # 255 | c == 255


def auto_label(rgb: np.ndarray, *, nodata: np.ndarray | None = None,
               filter_params: FilterParams | None = FilterParams(),
               thresholds: Thresholds = Thresholds()) -> tuple[np.ndarray, np.ndarray | None]:
    """Auto-label an image: optional thin-cloud/shadow filter, then colour segmentation.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    nodata : (H, W) bool ndarray, optional
    filter_params : FilterParams or None
        None skips the filter (segmentation of the original colours).
    thresholds : Thresholds

    Returns
    -------
    classes : (H, W) uint8 ndarray
    levels : (H, W) uint8 ndarray or None
        The filtered grey image (0/155/255), or None without the filter.
    """
    if filter_params is None:
        return segment(rgb, thresholds, nodata=nodata), None
    if filter_params.apply_to == "scene":
        # segment(levels_to_rgb(levels)) is a per-pixel function of the grey level: one LUT
        check_rgb(rgb)
        if nodata is not None and nodata.shape != rgb.shape[:2]:
            raise InputError(f"no-data mask shape {nodata.shape} does not match image "
                             f"{rgb.shape[:2]}")
        levels, _ = filter_fast(rgb, filter_params, nodata)
    else:
        levels = thin_cloud_shadow_filter(rgb, filter_params, nodata=nodata)
    return _apply_nodata(cv2.LUT(levels, _grey_lut(thresholds)), nodata), levels


