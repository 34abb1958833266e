"""Class codes, names and the paper's palette; class map <-> palette conversions.

Class maps are (H, W) uint8 arrays: 0 open water (green), 1 thin / young ice (blue),
2 thick / snow-covered ice (red), 255 no-data (black).
"""

from __future__ import annotations

import cv2
import numpy as np

from seaice_utils.core.scenes import check_rgb
from seaice_utils.errors import InputError

__all__ = ["WATER", "THIN", "THICK", "NODATA", "CLASS_NAMES", "PALETTE", "LABEL_PALETTE",
           "to_palette", "palette_unchecked", "from_palette", "class_fractions"]

_SMALL = 16   # arrays smaller than this take the plain numpy path

WATER, THIN, THICK, NODATA = 0, 1, 2, 255

CLASS_NAMES = {WATER: "open water", THIN: "thin ice", THICK: "thick ice"}


PALETTE = {WATER: (0, 255, 0), THIN: (0, 0, 255), THICK: (255, 0, 0), NODATA: (0, 0, 0)}


def to_palette(classes: np.ndarray) -> np.ndarray:
    """Class map -> (H, W, 3) uint8 RGB in the paper's palette (no-data black)."""
    if classes.dtype != np.uint8 or classes.ndim != 2:
        raise InputError(f"class map must be a 2-D uint8 array (got {classes.dtype} {classes.shape})")
    classes = np.ascontiguousarray(classes)
    if classes.size < _SMALL:
        invalid = bool(_NOT_A_CLASS[classes].any())
    else:
        invalid = cv2.countNonZero(cv2.LUT(classes, _NOT_A_CLASS)) > 0
    if invalid:
        bad = ~np.isin(classes, list(PALETTE))
        raise InputError(f"class map holds values other than 0, 1, 2, 255: "
                         f"{sorted(np.unique(classes[bad]).tolist())[:5]}")
    return palette_unchecked(classes)


def palette_unchecked(classes: np.ndarray) -> np.ndarray:
    """:func:`to_palette` of a valid, contiguous class map (no checks)."""
    if classes.size < _SMALL:
        return LABEL_PALETTE[classes]
    # every palette channel is 0 or 255: each channel is an OR of "class == c" masks
    return cv2.merge([_channel_masks(classes, ch) for ch in range(3)])


def from_palette(rgb: np.ndarray, *, tolerance: int = 60) -> np.ndarray:
    """Palette RGB (e.g. a manual label PNG) -> class map.

    Each pixel takes the nearest palette colour (red thick, blue thin, green water, black
    no-data). Anti-aliased or JPEG-compressed drawings are fine; a pixel farther than
    ``tolerance`` (Euclidean, 0..441) from every palette colour is an error, since it means the
    image is not a label image.
    """
    check_rgb(rgb, what="label image")
    classes = np.array(list(PALETTE), np.uint8)
    colours = np.array([PALETTE[c] for c in classes], np.int32)
    flat = rgb.reshape(-1, 3).astype(np.int32)
    d2 = ((flat[:, None, :] - colours[None, :, :]) ** 2).sum(-1)
    best = d2.argmin(1)
    far = d2[np.arange(len(best)), best] > tolerance ** 2
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise InputError(f"label image has {int(far.sum())} pixels that are not palette colours "
                         f"(first at pixel {divmod(i, rgb.shape[1])}: {tuple(flat[i])}); expected red "
                         "thick, blue thin, green water, black no-data")
    return classes[best].reshape(rgb.shape[:2])


def class_fractions(classes: np.ndarray) -> dict[str, float]:
    """Fraction of valid (non-255) pixels in each class, keyed by class name."""
    if classes.dtype != np.uint8 or classes.ndim != 2 or classes.size < _SMALL:
        valid = classes != NODATA
        n = int(valid.sum())
        return {name: (float((classes == c).sum()) / n if n else float("nan"))
                for c, name in CLASS_NAMES.items()}
    classes = np.ascontiguousarray(classes)

    def count(c: int) -> int:
        return cv2.countNonZero(cv2.compare(classes, c, cv2.CMP_EQ))

    n = classes.size - count(NODATA)
    return {name: (float(count(c)) / n if n else float("nan")) for c, name in CLASS_NAMES.items()}


#: 256-entry palette (indexed PNGs, lookups): each class code's colour, black for other codes.
LABEL_PALETTE = np.zeros((256, 3), np.uint8)
for _c, _rgb in PALETTE.items():
    LABEL_PALETTE[_c] = _rgb
del _c, _rgb
LABEL_PALETTE.flags.writeable = False


_NOT_A_CLASS = np.ones(256, np.uint8)
_NOT_A_CLASS[list(PALETTE)] = 0
assert all(v in (0, 255) for rgb in PALETTE.values() for v in rgb)


def _channel_masks(classes: np.ndarray, ch: int) -> np.ndarray:
    out = None
    for cls, rgb in PALETTE.items():
        if rgb[ch]:
            m = cv2.compare(classes, cls, cv2.CMP_EQ)
            out = m if out is None else cv2.bitwise_or(out, m)
    return out if out is not None else np.zeros_like(classes)
