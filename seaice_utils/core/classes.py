"""The sea-ice classes, defined once: codes, names, keys, colours; class map <-> palette.

Every other module derives from this one: the U-Net's output channels and the metrics' labels
(:data:`N_CLASSES`, :data:`CLASS_NAMES`), table and summary columns (:data:`CLASS_KEYS`), the
profile's ``autolabel`` section (:data:`RANGE_KEYS`), figures (:data:`DISPLAY_ORDER`,
:data:`PALETTE`), the codes a prediction may hold (:data:`PREDICTED_CODES`) and the category
descriptions of a class-map GeoTIFF (:data:`CODE_DESCRIPTIONS`). ``tests/test_classes_once.py``
keeps class literals out of the other modules.

Class maps are (H, W) uint8 arrays: 0 open water (green), 1 thin / young ice (blue),
2 thick / snow-covered ice (red), 255 no-data (black). Auto-labels made with thresholds that
leave colours in no class's range (allowed only with ``autolabel.allow_gaps: true``) hold a
fourth code, 254 *unlabelled* (magenta): a pixel with data that no range claims, counted apart
from no-data. Manual labels and model predictions never hold it.
"""

from __future__ import annotations

import cv2
import numpy as np

from seaice_utils.core.scenes import check_rgb
from seaice_utils.errors import InputError

__all__ = ["WATER", "THIN", "THICK", "UNLABELLED", "NODATA", "CLASS_NAMES", "CLASS_CODES",
           "N_CLASSES", "CLASS_KEYS", "RANGE_KEYS", "DISPLAY_ORDER", "UNLABELLED_NAME",
           "NODATA_NAME", "PREDICTED_CODES", "MAP_CODES", "CODE_DESCRIPTIONS", "PALETTE",
           "LABEL_PALETTE", "codes_text", "to_palette", "palette_unchecked", "from_palette",
           "class_fractions"]

_SMALL = 16   # arrays smaller than this take the plain numpy path

WATER, THIN, THICK, NODATA = 0, 1, 2, 255
#: Data pixels in no class's HSV range (only with ``autolabel.allow_gaps``); not no-data.
UNLABELLED = 254

#: The three classes (what models predict and metrics count), in code order.
CLASS_NAMES = {WATER: "open water", THIN: "thin ice", THICK: "thick ice"}
#: Class codes in code order (0, 1, 2): the U-Net's output channels, the confusion matrices' rows.
CLASS_CODES = tuple(CLASS_NAMES)
#: Number of classes (U-Net output channels, confusion matrix size).
N_CLASSES = len(CLASS_CODES)
#: Column keys of tables and summaries (``open_water``, ``thin_ice``, ``thick_ice``).
CLASS_KEYS = {c: name.replace(" ", "_") for c, name in CLASS_NAMES.items()}
#: Keys of the classes' HSV ranges in a profile's ``autolabel`` section (and the fields of
#: :class:`seaice_utils.labelling.autolabel.Thresholds`).
RANGE_KEYS = {WATER: "water", THIN: "thin", THICK: "thick"}
#: Order in which classes are shown (legends, bars, confusion matrices, the tuner): thick, thin,
#: water, as in the paper.
DISPLAY_ORDER = (THICK, THIN, WATER)
#: Key of :data:`UNLABELLED` pixels in :func:`class_fractions` and tables, its legend label.
UNLABELLED_NAME = "unlabelled"
#: Legend label of :data:`NODATA` pixels.
NODATA_NAME = "no data"
#: Codes a model's prediction may hold: the classes and no-data (never unlabelled).
PREDICTED_CODES = CLASS_CODES + (NODATA,)
#: Every code a class map may hold: auto-labels with gaps and season maps (cloud) hold unlabelled.
MAP_CODES = CLASS_CODES + (UNLABELLED, NODATA)
#: What each code of a class-map GeoTIFF means (its band description and ``classes`` tag); season
#: maps code cloud as unlabelled.
CODE_DESCRIPTIONS = {**CLASS_NAMES, UNLABELLED: f"{UNLABELLED_NAME}/cloud", NODATA: NODATA_NAME}

#: Display colour of every code; unlabelled is magenta, apart from the paper's colours.
PALETTE = {WATER: (0, 255, 0), THIN: (0, 0, 255), THICK: (255, 0, 0), UNLABELLED: (255, 0, 255),
           NODATA: (0, 0, 0)}
assert tuple(PALETTE) == MAP_CODES and CLASS_CODES == tuple(range(N_CLASSES))
assert set(RANGE_KEYS) == set(CLASS_KEYS) == set(DISPLAY_ORDER) == set(CLASS_CODES)
#: Colours a manual label image may use (no unlabelled).
_MANUAL = PREDICTED_CODES


def codes_text(codes=MAP_CODES) -> str:
    """``"0 open water, 1 thin ice, ..."``: each code and what it means (:data:`CODE_DESCRIPTIONS`).

    >>> codes_text(PREDICTED_CODES)
    '0 open water, 1 thin ice, 2 thick ice, 255 no data'
    """
    return ", ".join(f"{c} {CODE_DESCRIPTIONS[c]}" for c in codes)


def to_palette(classes: np.ndarray) -> np.ndarray:
    """Class map -> (H, W, 3) uint8 RGB in the paper's palette (no-data black, unlabelled
    magenta)."""
    if classes.dtype != np.uint8 or classes.ndim != 2:
        raise InputError(f"class map must be a 2-D uint8 array (got {classes.dtype} {classes.shape})")
    classes = np.ascontiguousarray(classes)
    if classes.size < _SMALL:
        invalid = bool(_NOT_A_CLASS[classes].any())
    else:
        invalid = cv2.countNonZero(cv2.LUT(classes, _NOT_A_CLASS)) > 0
    if invalid:
        bad = ~np.isin(classes, list(PALETTE))
        raise InputError(f"class map holds values other than {', '.join(map(str, MAP_CODES))}: "
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
    classes = np.array(_MANUAL, np.uint8)
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
    """Fraction of the data (non-255) pixels in each class, keyed by class name.

    Pixels coded :data:`UNLABELLED` (254) get their own key ``"unlabelled"``, present only when
    there are any, so that the fractions always sum to 1 (NaN without data pixels).

    >>> import numpy as np
    >>> class_fractions(np.array([[0, 1, 2, 255]], np.uint8))
    {'open water': 0.3333333333333333, 'thin ice': 0.3333333333333333, 'thick ice': 0.3333333333333333}
    >>> class_fractions(np.array([[0, 0, 254, 255]], np.uint8))
    {'open water': 0.6666666666666666, 'thin ice': 0.0, 'thick ice': 0.0, 'unlabelled': 0.3333333333333333}
    """
    if classes.dtype != np.uint8 or classes.ndim != 2 or classes.size < _SMALL:
        def count(c: int) -> int:
            return int((classes == c).sum())
    else:
        classes = np.ascontiguousarray(classes)

        def count(c: int) -> int:
            return cv2.countNonZero(cv2.compare(classes, c, cv2.CMP_EQ))

    n = classes.size - count(NODATA)
    out = {name: (float(count(c)) / n if n else float("nan")) for c, name in CLASS_NAMES.items()}
    unlabelled = count(UNLABELLED)
    if unlabelled:
        out[UNLABELLED_NAME] = float(unlabelled) / n
    return out


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
