"""Fast array kernels shared by the filter, the segmentation and the readers of this stage.

Small OpenCV building blocks, each bit-identical to the plain numpy or OpenCV expression it
replaces (``tests/test_reference.py`` checks them against the literal paper steps of
:mod:`seaice_utils.labelling.reference`): V of HSV without an HSV conversion, a bool mask as
0/255, the min-max stretch, and the 155 px median blur taken on the negative of bright images.
"""

from __future__ import annotations

import cv2
import numpy as np

from seaice_utils.errors import InputError

__all__ = ["SMALL", "MEDIAN_KERNEL_MAX", "value_channel", "mask255", "minmax_u8", "median_blur"]

#: Largest median aperture. For 8-bit images and apertures above 5 OpenCV's ``medianBlur`` uses
#: the constant-time histogram median, whose histogram buckets are 16-bit counters: a window of
#: ksize x ksize pixels must fit in 65535, and 255 (255 x 255 = 65025) is the largest odd aperture
#: that does. Larger ones rely on counter wrap-around and, on OpenCV 4.11 from 363 on, fail with
#: an assertion (``k < 16``), after a long run for huge apertures (100001: ~15 s per image).
MEDIAN_KERNEL_MAX = 255


def minmax_u8(img: np.ndarray) -> np.ndarray:
    """Min-max stretch to 0..255 uint8 (OpenCV: a constant image gives 0)."""
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)


def value_channel(rgb: np.ndarray) -> np.ndarray:
    """V of HSV, i.e. max(R, G, B), as (H, W) uint8 (three channel views and two cv2.max)."""
    r, g, b = cv2.split(np.ascontiguousarray(rgb))
    return cv2.max(cv2.max(r, g), b)


#: Below this many pixels OpenCV may take an image for a scalar ("array op scalar" calls are
#: ambiguous for arrays of 1..4 elements); the fast paths then use numpy.
SMALL = 16


def mask255(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> uint8 0/255."""
    if mask.size < SMALL:
        return np.where(mask, 255, 0).astype(np.uint8)
    return cv2.compare(np.ascontiguousarray(mask).view(np.uint8), 0, cv2.CMP_NE)


def median_blur(img: np.ndarray, ksize: int) -> np.ndarray:
    """``cv2.medianBlur(img, ksize)``, bit-identical, faster on bright images.

    For 8-bit images and apertures above 5 OpenCV uses the constant-time histogram median
    (Perreault and Hebert), which finds each median by scanning its coarse and fine histograms
    upward from 0: the brighter the median, the longer the scan (up to twice the time for a
    uniform 255 image). The median commutes with the order-reversing map ``v -> 255 - v`` (the
    window count is odd), and the image the filter blurs is bright (water painted white, then a
    dilation), so it is cheaper to blur the negative and negate the result.

    ``ksize`` must be odd, 1..:data:`MEDIAN_KERNEL_MAX`.
    """
    if not (isinstance(ksize, (int, np.integer)) and ksize % 2 == 1
            and 1 <= ksize <= MEDIAN_KERNEL_MAX):
        raise InputError(f"median aperture must be an odd integer in 1..{MEDIAN_KERNEL_MAX} "
                         f"(got {ksize!r}): OpenCV's 8-bit median counts the window in 16-bit "
                         "histogram buckets")
    if ksize <= 5 or img.size == 0 or cv2.mean(img)[0] < 127.5:
        return cv2.medianBlur(img, ksize)
    return cv2.bitwise_not(cv2.medianBlur(cv2.bitwise_not(img), ksize))
