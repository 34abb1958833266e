"""The paper's thin-cloud and shadow filter (Iqrah et al. 2024, 11 steps) on RGB uint8 images.

The filter estimates the slowly varying background brightness (haze brightens it, cloud shadow
darkens it) with a dilation and a very large median blur, keeps the local contrast to that
background, and re-thresholds it. Its output is a grey image of three levels that the colour
segmentation of :mod:`seaice_utils.labelling.autolabel` turns into the same three classes:

=========  ===========
level      class
=========  ===========
0          open water
155        thin ice
255        thick ice
=========  ===========

Whole scene or per tile
-----------------------
``apply_to="scene"`` (default) runs the filter once over the whole scene; ``apply_to="tile"`` runs
it independently on each ``tile_size`` tile, as one of the published scripts did. The scene mode is
the default because the 155 px median needs context: inside a 256 px tile that lies entirely in one
floe or one cloud, the background estimate sees nothing but the object itself, and Otsu's threshold
and the min-max stretches then split uniform texture into "thick" and "thin" halves. Results of the
two modes differ near tile borders and in uniform tiles; the per-tile mode is kept for fidelity to
the published code and for streaming very large mosaics.

Edge cases
----------
A uniform image has no contrast to its background: step 8's min-max stretch of a constant is 0
(OpenCV's convention), so every non-water pixel comes out *thin*. No-data pixels are treated like
water during the filter (painted white, as the published code did with its black fill) and come out
as level 0; callers mask them with the no-data mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from seaice_utils.core.scenes import check_rgb
from seaice_utils.core.tiling import iter_tiles, pad_to_multiple
from seaice_utils.errors import InputError
from seaice_utils.labelling.kernels import (MEDIAN_KERNEL_MAX, SMALL, mask255, median_blur,
                                           minmax_u8, value_channel)

__all__ = ["FilterParams", "LEVEL_WATER", "LEVEL_THIN", "LEVEL_THICK", "DILATION_MAX",
           "thin_cloud_shadow_filter", "filter_steps", "filter_fast", "levels_to_rgb"]

LEVEL_WATER, LEVEL_THIN, LEVEL_THICK = 0, 155, 255
#: Largest dilation kernel side, the median aperture's bound: the dilation closes small dark
#: gaps before the median estimates the background, and a kernel wider than any median window
#: would turn that estimate into a local maximum.
DILATION_MAX = MEDIAN_KERNEL_MAX


@dataclass(frozen=True)
class FilterParams:
    """Constants of the thin-cloud and shadow filter, with the paper's defaults.

    Parameters
    ----------
    water_v_max : int
        Step 1: pixels with HSV value V <= this are water (30); below ``thick_threshold``.
    dilation : int
        Step 4: side of the square dilation kernel of ones (7; 1..255).
    median_kernel : int
        Step 5: aperture of the median blur that estimates the background (155; odd, 3..255:
        see :data:`~seaice_utils.labelling.kernels.MEDIAN_KERNEL_MAX`).
    truncation : int
        Step 9: values above it are truncated to it (235; 1..255, 0 would make every pixel thin).
    thick_threshold : int
        Step 11: filtered value at or above which a pixel is thick ice (205; 1..255, 0 would
        leave no thin ice).
    apply_to : {"scene", "tile"}
        Run once over the whole scene (default) or independently per tile.
    tile_size : int
        Tile size for ``apply_to="tile"`` (256).

    Raises
    ------
    InputError
        A constant out of its range, or ``water_v_max`` not below ``thick_threshold`` (the
        filter's water is the dark end and thick ice the bright end of the same 0..255 scale, as
        the paper's 30 and 205; inverted, the dark pixels it calls water would be brighter than
        those it calls thick ice).
    """

    water_v_max: int = 30
    dilation: int = 7
    median_kernel: int = 155
    truncation: int = 235
    thick_threshold: int = 205
    apply_to: str = "scene"
    tile_size: int = 256

    def __post_init__(self) -> None:
        for key, lo in (("water_v_max", 0), ("truncation", 1), ("thick_threshold", 1)):
            v = getattr(self, key)
            if not isinstance(v, (int, np.integer)) or not lo <= v <= 255:
                raise InputError(f"filter.{key}: must be an integer in {lo}..255 (got {v!r})")
        d = self.dilation
        if not isinstance(d, (int, np.integer)) or not 1 <= d <= DILATION_MAX:
            raise InputError(f"filter.dilation: must be an integer in 1..{DILATION_MAX} "
                             f"(got {d!r})")
        mk, mk_max = self.median_kernel, MEDIAN_KERNEL_MAX
        if not isinstance(mk, (int, np.integer)) or not 3 <= mk <= mk_max or mk % 2 == 0:
            raise InputError(f"filter.median_kernel: must be an odd integer in 3..{mk_max} "
                             f"(got {mk!r}; OpenCV's 8-bit median counts its window in 16-bit "
                             "histogram buckets)")
        if self.apply_to not in ("scene", "tile"):
            raise InputError(f"filter.apply_to: must be 'scene' or 'tile' (got {self.apply_to!r})")
        if not isinstance(self.tile_size, (int, np.integer)) or self.tile_size < 8:
            raise InputError(f"filter tile_size: must be an integer >= 8 (got {self.tile_size!r})")
        if self.water_v_max >= self.thick_threshold:
            raise InputError(
                f"filter.water_v_max ({self.water_v_max}) must be below filter.thick_threshold "
                f"({self.thick_threshold}): V <= water_v_max is water, filtered values >= "
                "thick_threshold are thick ice, on the same 0..255 scale (the paper: 30 and 205)")

    def to_dict(self) -> dict:
        return asdict(self)


def filter_steps(rgb: np.ndarray, params: FilterParams = FilterParams(), *,
                 nodata: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Run the 11 steps on one image and return every intermediate (for figures and tuning).

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    params : FilterParams
    nodata : (H, W) bool ndarray, optional

    Returns
    -------
    dict of (H, W) arrays
        ``water`` (bool), ``grey`` (painted copy in grey), ``dilated``, ``background``, ``diff``,
        ``otsu_mask``, ``diff2``, ``norm1``, ``truncated``, ``norm2``, ``levels`` (0/155/255).
    """
    check_rgb(rgb)
    value = rgb.max(axis=2)                                   # step 1: V of HSV is max(R, G, B)
    water = value <= params.water_v_max
    if nodata is not None:
        water = water | nodata
    painted = rgb.copy()                                       # step 2
    painted[water] = 255
    grey = cv2.cvtColor(painted, cv2.COLOR_RGB2GRAY)           # step 3
    dilated = cv2.dilate(grey, np.ones((params.dilation, params.dilation), np.uint8))  # step 4
    background = cv2.medianBlur(dilated, params.median_kernel)  # step 5
    diff = 255 - cv2.absdiff(grey, background)                  # step 6
    _, otsu = cv2.threshold(diff, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)  # step 7
    diff2 = cv2.bitwise_and(diff, otsu)
    norm1 = minmax_u8(diff2)                                   # step 8
    _, truncated = cv2.threshold(norm1, params.truncation, 255, cv2.THRESH_TRUNC)  # step 9
    norm2 = minmax_u8(truncated)                               # step 10
    levels = np.where(norm2 >= params.thick_threshold, LEVEL_THICK, LEVEL_THIN).astype(np.uint8)
    levels[water] = LEVEL_WATER                                 # step 11
    return dict(water=water, grey=grey, dilated=dilated, background=background, diff=diff,
                otsu_mask=otsu, diff2=diff2, norm1=norm1, truncated=truncated, norm2=norm2,
                levels=levels)


def filter_fast(rgb: np.ndarray, params: FilterParams, nodata: np.ndarray | None,
                 value: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 11 steps on one image, bit-identical to :func:`filter_steps` but with fewer passes.

    Returns the levels and the water mask (0/255, no-data included). Equivalences used: V is
    max(R, G, B) (no HSV conversion); painting water white before the grey conversion equals
    setting the grey to 255 there (OpenCV's grey of white is 255); ``255 - x`` is ``~x`` on
    uint8; Otsu with ``THRESH_TOZERO`` is ``diff AND`` the binary Otsu mask; step 11 is a
    threshold and a mask instead of three masked assignments.
    """
    if rgb.shape[0] * rgb.shape[1] < SMALL:
        st = filter_steps(rgb, params, nodata=nodata)
        return st["levels"], mask255(st["water"])
    rgb = np.ascontiguousarray(rgb)
    v = value_channel(rgb) if value is None else value
    water = cv2.compare(v, params.water_v_max, cv2.CMP_LE)                       # 1
    if nodata is not None:
        water = cv2.bitwise_or(water, mask255(nodata))
    grey = cv2.bitwise_or(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), water)             # 2, 3
    dilated = cv2.dilate(grey, np.ones((params.dilation, params.dilation), np.uint8))  # 4
    background = median_blur(dilated, params.median_kernel)                        # 5
    diff = cv2.bitwise_not(cv2.absdiff(grey, background))                          # 6
    _, diff2 = cv2.threshold(diff, 0, 255, cv2.THRESH_TOZERO + cv2.THRESH_OTSU)     # 7
    norm1 = minmax_u8(diff2)                                                       # 8
    _, truncated = cv2.threshold(norm1, params.truncation, 255, cv2.THRESH_TRUNC)   # 9
    norm2 = minmax_u8(truncated)                                                   # 10
    _, thick = cv2.threshold(norm2, params.thick_threshold - 1, LEVEL_THICK, cv2.THRESH_BINARY)
    levels = cv2.max(thick, LEVEL_THIN)                                             # 11
    return cv2.bitwise_and(levels, cv2.bitwise_not(water)), water


def _filter_once(rgb: np.ndarray, params: FilterParams, nodata: np.ndarray | None) -> np.ndarray:
    return filter_fast(rgb, params, nodata)[0]


def thin_cloud_shadow_filter(rgb: np.ndarray, params: FilterParams = FilterParams(), *,
                             nodata: np.ndarray | None = None) -> np.ndarray:
    """Apply the thin-cloud and shadow filter.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 ndarray
    params : FilterParams
        ``params.apply_to`` chooses whole-scene (default) or per-tile application.
    nodata : (H, W) bool ndarray, optional
        No-data pixels; they come out as level 0.

    Returns
    -------
    (H, W) uint8 ndarray
        Levels 0 (water), 155 (thin ice), 255 (thick ice).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 120, np.uint8); img[:, :8] = 10; img[20:40, 20:40] = 250
    >>> sorted(np.unique(thin_cloud_shadow_filter(img, FilterParams(median_kernel=31))).tolist())
    [0, 155, 255]
    """
    check_rgb(rgb)
    if nodata is not None and nodata.shape != rgb.shape[:2]:
        raise InputError(f"no-data mask shape {nodata.shape} does not match image {rgb.shape[:2]}")
    if params.apply_to == "scene":
        return _filter_once(rgb, params, nodata)  # no-data is water there, level 0 already
    else:
        h, w = rgb.shape[:2]
        padded, mask = pad_to_multiple(rgb, params.tile_size, nodata=nodata)
        out = np.empty(padded.shape[:2], np.uint8)
        for r, c, view in iter_tiles(padded, params.tile_size):
            t = params.tile_size
            out[r:r + t, c:c + t] = _filter_once(np.ascontiguousarray(view), params,
                                                 mask[r:r + t, c:c + t])
        out = out[:h, :w]
    if nodata is not None:
        out[nodata] = LEVEL_WATER
    return out


def levels_to_rgb(levels: np.ndarray) -> np.ndarray:
    """Stack a filtered grey image into (H, W, 3) uint8 for colour segmentation or display."""
    return np.repeat(levels[..., None], 3, axis=2)
