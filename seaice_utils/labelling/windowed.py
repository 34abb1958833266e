"""Auto-labels of a scene read in bands of rows, byte-identical to the whole-scene path.

The thin-cloud/shadow filter (:mod:`seaice_utils.labelling.cloudfilter`) has local steps and
scene-wide ones. Steps 1-6 are local: each band of rows is read with a *halo* of
``median_kernel // 2 + dilation // 2`` rows above and below (what the dilation and the median of
its rows need), and the band's step-6 image (``diff``, 1 byte a pixel) and water/no-data mask are
kept. Steps 7-11 are scene-wide but depend only on the 256-bin histogram of ``diff``: Otsu's
threshold (step 7, computed from the histogram exactly as OpenCV computes it), the min-max
stretches of steps 8 and 10 (from the extremes of the values present) and the thresholds of steps
9 and 11 compose into one lookup table from ``diff`` to the filter's level, and the colour
segmentation of a level is another (:func:`~seaice_utils.labelling.autolabel.auto_label`). The
second pass maps each band through them. Without the filter, or with the filter per tile (bands
of whole tiles), every band is labelled on its own.

Memory: the kept ``diff`` and mask (2 bytes a pixel, the class map reuses ``diff``) and one band's
working set (:func:`band_rows`).
"""

from __future__ import annotations

import cv2
import numpy as np

from seaice_utils.core.blocks import BandSource, band_starts
from seaice_utils.labelling.autolabel import Thresholds, auto_label, grey_lut
from seaice_utils.labelling.cloudfilter import (LEVEL_THICK, LEVEL_THIN, LEVEL_WATER, FilterParams,
                                                thin_cloud_shadow_filter)
from seaice_utils.labelling.kernels import mask255, median_blur, value_channel

__all__ = ["label_bands", "filter_bands", "band_rows", "halo_rows", "hist256", "otsu_threshold", "levels_lut", "BAND_BYTES_PER_PIXEL",
           "KEPT_BYTES_PER_PIXEL"]

#: Bytes a band's pixel takes while it is read, stretched and filtered (raw samples aside:
#: 16-bit RGB as float32 reflectance 12, RGB 3, V, water, grey, dilation, median, diff 6, slack).
BAND_BYTES_PER_PIXEL = 24
#: Share of the worker memory limit a band's working set may take; the rest is for what is kept
#: of every pixel (:data:`KEPT_BYTES_PER_PIXEL`) and the encoders.
BAND_SHARE = 1 / 16
#: Bytes a scene's pixel keeps between the passes and for its outputs (diff / class map, mask,
#: the PNG and COG encoders' copies).
KEPT_BYTES_PER_PIXEL = 4
_FLT_EPSILON = float(np.finfo(np.float32).eps)
_MASK_WATER, _MASK_NODATA = 1, 2


def band_rows(shape: tuple[int, int], sample_bytes: int, max_bytes: float | None, *,
              halo: int = 0, align: int = 1) -> int:
    """Rows per band: :data:`BAND_SHARE` of ``max_bytes`` (the worker memory limit) for the
    band's working set with its halo; at least ``max(align, 64)`` rows, at most the scene. At
    the default 8 GiB a full Sentinel-2 tile of 16-bit RGB is read in bands of about 1470 rows
    (0.5 GiB each), enough to make the filter's 80-row halo cheap.

    >>> band_rows((10980, 10980), 6, 8 * 2**30, halo=80)
    1469
    >>> band_rows((500, 400), 3, None)
    500
    """
    h, w = shape
    if max_bytes is None:
        return h
    per_row = w * (BAND_BYTES_PER_PIXEL + sample_bytes)
    rows = int(max_bytes * BAND_SHARE // per_row) - 2 * halo
    rows = max(max(align, 64), (rows // align) * align)
    return min(h, rows) if align == 1 else min(-(-h // align) * align, rows)


def otsu_threshold(hist: np.ndarray) -> int:
    """Otsu's threshold of an 8-bit image from its 256-bin histogram, computed as OpenCV's
    ``THRESH_OTSU`` computes it (same operations, same order, in double precision).

    >>> img = np.array([[10, 10, 10, 200, 200, 90]], np.uint8)
    >>> otsu_threshold(np.bincount(img.ravel(), minlength=256)) == int(
    ...     cv2.threshold(img, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0])
    True
    """
    n = int(hist.sum())
    scale = 1.0 / n
    mu = 0.0
    for i in range(256):
        mu += i * float(hist[i])
    mu *= scale
    mu1 = q1 = 0.0
    max_sigma, max_val = 0.0, 0
    for i in range(256):
        p_i = float(hist[i]) * scale
        mu1 *= q1
        q1 += p_i
        q2 = 1.0 - q1
        if min(q1, q2) < _FLT_EPSILON or max(q1, q2) > 1.0 - _FLT_EPSILON:
            continue
        mu1 = (mu1 + i * p_i) / q1
        mu2 = (mu - q1 * mu1) / q2
        sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2)
        if sigma > max_sigma:
            max_sigma, max_val = sigma, i
    return max_val


def _minmax_lut(present: np.ndarray) -> np.ndarray:
    """Lookup table of OpenCV's min-max stretch to 0..255 of an image holding the values
    ``present`` (bool, 256): the stretch itself run on those values and the extremes."""
    vals = np.flatnonzero(present)
    lo, hi = int(vals.min()), int(vals.max())
    arr = np.concatenate([[lo, hi], np.clip(np.arange(256), lo, hi)]).astype(np.uint8)[None]
    return cv2.normalize(arr, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)[0, 2:]


def _present(lut: np.ndarray, hist: np.ndarray) -> np.ndarray:
    out = np.zeros(256, bool)
    out[lut[hist > 0]] = True
    return out


def levels_lut(hist: np.ndarray, params: FilterParams) -> np.ndarray:
    """Steps 7-11 of the filter as one lookup table from step 6's ``diff`` to the level (thin or
    thick; water is masked apart), given the histogram of ``diff`` over the whole scene."""
    ramp = np.arange(256)
    t = otsu_threshold(hist)
    step7 = np.where(ramp > t, ramp, 0).astype(np.uint8)              # THRESH_TOZERO
    step8 = _minmax_lut(_present(step7, hist))[step7]
    step9 = np.minimum(step8, params.truncation).astype(np.uint8)       # THRESH_TRUNC
    step10 = _minmax_lut(_present(step9, hist))[step9]
    return np.where(step10 >= params.thick_threshold, LEVEL_THICK, LEVEL_THIN).astype(np.uint8)


def hist256(img: np.ndarray) -> np.ndarray:
    """The 256-bin histogram (int64) of a uint8 image, exact: OpenCV's histogram over chunks
    of rows small enough for its float32 counts (at most 2**23 pixels a chunk).

    >>> img = np.array([[0, 3, 3], [255, 3, 0]], np.uint8)
    >>> np.array_equal(hist256(img), np.bincount(img.ravel(), minlength=256))
    True
    """
    img = np.ascontiguousarray(img)
    out = np.zeros(256, np.int64)
    step = max(1, (1 << 23) // max(1, img.shape[1]))
    for r in range(0, img.shape[0], step):
        h = cv2.calcHist([img[r:r + step]], [0], None, [256], [0, 256])
        out += np.rint(h[:, 0]).astype(np.int64)
    return out


def halo_rows(params: FilterParams | None) -> int:
    """Rows a band of the whole-scene filter reads above and below it (0 without it)."""
    if params is None or params.apply_to != "scene":
        return 0
    return params.median_kernel // 2 + params.dilation // 2


def _diff_band(rgb: np.ndarray, nodata: np.ndarray, params: FilterParams):
    """Steps 1-6 of :func:`~seaice_utils.labelling.cloudfilter.filter_fast` on a band with its
    halo: (diff, water 0/255 with no-data)."""
    water = cv2.compare(value_channel(rgb), params.water_v_max, cv2.CMP_LE)
    water = cv2.bitwise_or(water, mask255(nodata))
    grey = cv2.bitwise_or(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), water)
    dilated = cv2.dilate(grey, np.ones((params.dilation, params.dilation), np.uint8))
    background = median_blur(dilated, params.median_kernel)
    return cv2.bitwise_not(cv2.absdiff(grey, background)), water


def _first_pass(src: BandSource, params: FilterParams, rows: int, keep_rgb: bool):
    """Steps 1-6 over every band: (diff, mask of water 1 / no-data 2, diff histogram, RGB of
    the scene when ``keep_rgb`` else None)."""
    h, w = src.shape
    halo = halo_rows(params)
    diff_all = np.empty((h, w), np.uint8)
    mask = np.empty((h, w), np.uint8)
    rgb_all = np.empty((h, w, 3), np.uint8) if keep_rgb else None
    hist = np.zeros(256, np.int64)
    for r0 in band_starts(h, rows):
        r1 = min(h, r0 + rows)
        a0, a1 = max(0, r0 - halo), min(h, r1 + halo)
        rgb, nodata = src.rows(a0, a1)
        diff, water = _diff_band(rgb, nodata, params)
        inner = slice(r0 - a0, r1 - a0)
        diff_all[r0:r1] = diff[inner]
        m = (water[inner] > 0).view(np.uint8) * _MASK_WATER
        m[nodata[inner]] = _MASK_NODATA
        mask[r0:r1] = m
        hist += hist256(diff[inner])
        if keep_rgb:
            rgb_all[r0:r1] = rgb[inner]
    return diff_all, mask, hist, rgb_all


def _per_band(src: BandSource, params: FilterParams | None, rows: int, work):
    """Run ``work(r0, r1, rgb, nodata)`` on bands that need no halo (whole tiles of the
    per-tile filter, or no filter)."""
    h = src.shape[0]
    starts = band_starts(h, rows, 1 if params is None else params.tile_size)
    for i, r0 in enumerate(starts):
        r1 = starts[i + 1] if i + 1 < len(starts) else h
        rgb, nodata = src.rows(r0, r1)
        work(r0, r1, rgb, nodata)


def filter_bands(src: BandSource, params: FilterParams | None, *, rows: int,
                 keep_rgb: bool = False):
    """The filter's levels (0 water and no-data, 155, 255), the no-data mask and (``keep_rgb``)
    the RGB of a scene read in bands: byte-identical to
    :func:`~seaice_utils.labelling.cloudfilter.thin_cloud_shadow_filter` of the whole scene.
    Without ``params`` only the no-data mask and the RGB are made (levels None)."""
    h, w = src.shape
    nodata_all = np.empty((h, w), bool)
    if params is None or params.apply_to != "scene":
        levels = None if params is None else np.empty((h, w), np.uint8)
        rgb_all = np.empty((h, w, 3), np.uint8) if keep_rgb else None

        def work(r0, r1, rgb, nodata):
            nodata_all[r0:r1] = nodata
            if levels is not None:
                levels[r0:r1] = thin_cloud_shadow_filter(rgb, params, nodata=nodata)
            if rgb_all is not None:
                rgb_all[r0:r1] = rgb

        _per_band(src, params, rows, work)
        return levels, nodata_all, rgb_all
    levels, mask, hist, rgb_all = _first_pass(src, params, rows, keep_rgb)
    lut = levels_lut(hist, params)
    for r0 in band_starts(h, rows):
        r1 = min(h, r0 + rows)
        band = cv2.LUT(levels[r0:r1], lut)
        m = mask[r0:r1]
        band[m > 0] = LEVEL_WATER
        levels[r0:r1] = band
        nodata_all[r0:r1] = m == _MASK_NODATA
    return levels, nodata_all, rgb_all


def label_bands(src: BandSource, filter_params: FilterParams | None, thresholds: Thresholds,
                *, rows: int) -> tuple[np.ndarray, int]:
    """The class map of a scene read in bands of ``rows`` rows, and its no-data pixel count:
    byte-identical to :func:`~seaice_utils.labelling.autolabel.auto_label` of the whole scene.
    """
    h, w = src.shape
    classes = np.empty((h, w), np.uint8)
    n_nodata = 0
    if filter_params is None or filter_params.apply_to != "scene":
        def work(r0, r1, rgb, nodata):
            nonlocal n_nodata
            classes[r0:r1] = auto_label(rgb, nodata=nodata, filter_params=filter_params,
                                        thresholds=thresholds)[0]
            n_nodata += int(np.count_nonzero(nodata))

        _per_band(src, filter_params, rows, work)
        return classes, n_nodata
    classes, mask, hist, _ = _first_pass(src, filter_params, rows, False)  # classes from diff
    lut = grey_lut(thresholds)[levels_lut(hist, filter_params)]        # diff -> class
    water_class, nodata_class = grey_lut(thresholds)[0], np.uint8(255)
    for r0 in band_starts(h, rows):
        r1 = min(h, r0 + rows)
        band = cv2.LUT(classes[r0:r1], lut)
        m = mask[r0:r1]
        band[m == _MASK_WATER] = water_class
        band[m == _MASK_NODATA] = nodata_class
        classes[r0:r1] = band
        n_nodata += int(np.count_nonzero(m == _MASK_NODATA))
    return classes, n_nodata
