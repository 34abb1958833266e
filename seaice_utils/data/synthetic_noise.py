"""Noise and geometry helpers of the synthetic scene generator (:mod:`.synthetic`).

Smooth multi-octave noise fields (bicubically upsampled random grids, optionally stretched into
streaks), Voronoi tessellations, persistent random walks, soft ramps and exact quantile
thresholds. Every function draws only from the :class:`numpy.random.Generator` it is given and
uses deterministic OpenCV operations, so the same stream gives bit-identical arrays.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["normalise", "noise_octave", "noise_field", "smooth_noise", "select", "fast_exp",
           "voronoi", "random_walk", "soft_ramp", "quantile_threshold"]


def normalise(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance in place (statistics from a strided subsample)."""
    sub = a[::7, ::7] if min(a.shape) > 64 else a
    m, s = float(sub.mean()), float(sub.std())
    a -= np.float32(m)
    a *= np.float32(1.0 / s if s > 0 else 1.0)
    return a


def noise_octave(rng: np.random.Generator, h: int, w: int, cell: float, aniso: float = 1.0,
                 angle: float = 0.0) -> np.ndarray:
    """One octave of smooth noise of feature size ``cell`` px at shape (h, w), normalised.

    Bicubic interpolation of a coarse grid of random values; below 3 px, blurred white noise.
    ``aniso`` > 1 stretches the features by that factor along ``angle`` (radians) into streaks
    (drawn on a larger square grid, then rotated).
    """
    cell = max(float(cell), 1.0)
    if aniso == 1.0:
        if cell < 3.0:
            out = rng.random((h, w), dtype=np.float32)
            return normalise(cv2.GaussianBlur(out, (0, 0), cell / 2.0))
        grid = rng.standard_normal((max(2, int(round(h / cell)) + 2),
                                    max(2, int(round(w / cell)) + 2)), dtype=np.float32)
        return normalise(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC))
    side = int(np.ceil(np.hypot(h, w))) + 4
    grid = rng.standard_normal((max(2, int(round(side / cell)) + 2),
                                max(2, int(round(side / (cell * aniso))) + 2)), dtype=np.float32)
    streak = cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    m = cv2.getRotationMatrix2D((side / 2.0, side / 2.0), float(np.degrees(angle)), 1.0)
    m[0, 2] -= (side - w) / 2.0
    m[1, 2] -= (side - h) / 2.0
    out = cv2.warpAffine(streak, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return normalise(out)


def noise_field(rng: np.random.Generator, h: int, w: int, octaves) -> np.ndarray:
    """Weighted sum of noise octaves, normalised (float32, (h, w)).

    ``octaves`` holds ``(cell, weight)`` or ``(cell, weight, aniso, angle)`` tuples (cell in px).
    The octaves are summed at a reduced resolution (4 px per smallest feature) and upsampled
    once, bicubically, which keeps even 2048 px fields cheap.
    """
    octaves = [tuple(o) + (1.0, 0.0)[len(o) - 2:] for o in octaves]
    cmin = min(max(float(o[0]), 1.0) for o in octaves)
    f = max(1.0, cmin / 4.0)
    lh, lw = max(2, int(np.ceil(h / f))), max(2, int(np.ceil(w / f)))
    acc = np.zeros((lh, lw), np.float32)
    for cell, weight, aniso, angle in octaves:
        acc += np.float32(weight) * noise_octave(rng, lh, lw, max(float(cell), 1.0) / f, aniso,
                                                 angle)
    if (lh, lw) != (h, w):
        acc = cv2.resize(acc, (w, h), interpolation=cv2.INTER_CUBIC)
    return normalise(acc)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, *, aniso: float = 1.0,
                 angle: float = 0.0) -> np.ndarray:
    """Smooth zero-mean unit-variance noise with feature size ``cell`` px (float32, (h, w))."""
    return noise_field(rng, h, w, [(cell, 1.0, aniso, angle)])


def select(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.where(mask, a, b)`` for float32 images, several times faster (OpenCV copyTo)."""
    out = np.ascontiguousarray(b, dtype=np.float32).copy()
    return cv2.copyTo(np.ascontiguousarray(a, dtype=np.float32),
                      np.ascontiguousarray(mask).view(np.uint8), out)


def fast_exp(x: np.ndarray) -> np.ndarray:
    """``np.exp`` of a float32 image, through OpenCV."""
    return cv2.exp(np.ascontiguousarray(x, dtype=np.float32))


def voronoi(rng: np.random.Generator, h: int, w: int, cell: float):
    """Voronoi tessellation with about one cell per ``cell``² px.

    Returns the labels (int32), the distance to the nearest cell boundary (float32), the seed
    rows and columns, and the label of each seed.
    """
    n = max(4, int(round(h * w / (cell * cell))))
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    src = np.ones((h, w), np.uint8)
    src[ys, xs] = 0
    _, labels = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, cv2.DIST_MASK_5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    edge = np.zeros((h, w), np.uint8)
    edge[:, 1:] |= (labels[:, 1:] != labels[:, :-1])
    edge[1:, :] |= (labels[1:, :] != labels[:-1, :])
    dist = cv2.distanceTransform(1 - edge, cv2.DIST_L2, cv2.DIST_MASK_5)
    return labels, dist, ys, xs, labels[ys, xs]


def random_walk(rng: np.random.Generator, size: int, steps: int, step: float,
                turn: float) -> np.ndarray:
    """Polyline of a persistent random walk starting anywhere in (or just outside) the scene."""
    start = rng.uniform(-0.1, 1.1, 2) * size
    ang = rng.uniform(0, 2 * np.pi)
    dirs = ang + np.cumsum(rng.normal(0.0, turn, steps))
    lens = step * rng.uniform(0.5, 1.5, steps)
    pts = start + np.cumsum(np.stack([np.cos(dirs) * lens, np.sin(dirs) * lens], 1), 0)
    return np.vstack([start, pts]).round().astype(np.int32)


def soft_ramp(f: np.ndarray, t: float, hi: float, top: float, at_t: float) -> np.ndarray:
    """Smooth ramp of field ``f``: 0 well below ``t``, ``at_t`` at ``t``, ``top`` at ``hi``.

    ``top * ((f - t0) / (hi - t0)) ** 1.5`` with ``t0`` chosen so that the value at ``t`` is
    ``at_t``: continuous with a continuous slope, so haze and shadow have no visible edge.
    """
    hi = max(hi, t + 1e-3)
    r = (min(at_t, top * 0.999) / top) ** (1.0 / 1.5)
    t0 = (t - r * hi) / (1.0 - r)
    x = np.clip((f - np.float32(t0)) * np.float32(1.0 / (hi - t0)), 0, 1)
    return (np.float32(top) * x * np.sqrt(x)).astype(np.float32)


def quantile_threshold(values: np.ndarray, fraction: float) -> float:
    """Threshold t such that a share ``fraction`` of ``values`` is >= t (exact up to ties)."""
    n = values.size
    k = int(round(fraction * n))
    if k <= 0:
        return float(np.inf)
    if k >= n:
        return float(-np.inf)
    return float(np.partition(values, n - k)[n - k])
