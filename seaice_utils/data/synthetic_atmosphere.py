"""The atmosphere of a synthetic scene: thin cloud (haze) and cloud shadow, with their mask.

Thin cloud is an alpha blend ``image * (1 - a) + haze * a``; cloud shadow is a smooth
multiplicative darkening cast by the same cloud field, offset along the sun's azimuth. The masks
are thresholded at quantiles of the fields so that the realised cover equals the requested one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seaice_utils.data.synthetic_noise import (noise_field, quantile_threshold, smooth_noise,
                                               soft_ramp)

__all__ = ["CLOUD_CLEAR", "CLOUD_HAZE", "CLOUD_SHADOW", "add_atmosphere"]

#: Values of :attr:`SyntheticScene.cloud`.
CLOUD_CLEAR, CLOUD_HAZE, CLOUD_SHADOW = 0, 1, 2


def add_atmosphere(rng: np.random.Generator, bands: list[np.ndarray], valid: np.ndarray,
                   size: int, cloud_cover: float, shadow_cover: float
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Add thin cloud and cloud shadow to the bands in place; return the cloud mask and info."""
    h = w = size
    cloud = np.zeros((h, w), np.uint8)
    info: dict[str, Any] = {}
    if cloud_cover <= 0 and shadow_cover <= 0:
        return cloud, info
    # one cloud field on a padded canvas: the clouds are one window of it, the shadows another,
    # offset (the shadow of a cloud falls beside it, along the sun's azimuth)
    pad = int(round(0.12 * size))
    base = noise_field(rng, h + 2 * pad, w + 2 * pad,
                       [(size / 3.0, 1.0), (size / 7.0, 0.6), (size / 16.0, 0.3),
                        (size / 40.0, 0.12), (size / 60.0, 0.06, 5.0, rng.uniform(0, np.pi))])
    cfield = base[pad:pad + h, pad:pad + w]
    ang = rng.uniform(0, 2 * np.pi)
    off = rng.uniform(0.4, 1.0) * pad
    dy, dx = int(round(off * np.sin(ang))), int(round(off * np.cos(ang)))
    sfield = base[pad + dy:pad + dy + h, pad + dx:pad + dx + w] \
        + smooth_noise(rng, h, w, size / 10.0) * np.float32(0.35)

    alpha = np.zeros((h, w), np.float32)
    if cloud_cover > 0:
        vals = cfield[valid]
        tc = quantile_threshold(vals, cloud_cover)
        a_max = float(rng.uniform(0.35, 0.65))
        alpha = soft_ramp(cfield, tc, float(np.percentile(vals[::13], 99.5)), a_max, 0.06)
        cloud[(cfield >= tc) & valid] = CLOUD_HAZE
        info.update(haze_alpha_max=round(a_max, 4))
    keep = np.ones((h, w), np.float32)
    if shadow_cover > 0:
        # the shadow region is the offset cloud field above a threshold; where it falls under
        # the haze the mask says haze (the classes are exclusive), so the threshold is chosen
        # on the clear valid pixels to give the requested share of shadow-masked pixels
        cand = valid & (cloud == CLOUD_CLEAR)
        vals = sfield[cand]
        k = shadow_cover * float(valid.sum()) / max(1, vals.size)
        ts = quantile_threshold(vals, min(1.0, k))
        d_max = float(rng.uniform(0.35, 0.55))
        hi = float(np.percentile(vals[::13], 99.5)) if vals.size else ts
        darken = soft_ramp(sfield, ts, hi, d_max, 0.08)
        # inside the haze the shadow fades out (the haze's own scattered light fills it in)
        darken *= np.float32(1.0) - np.minimum(alpha * np.float32(1.0 / 0.15), np.float32(1.0))
        keep -= darken
        cloud[(sfield >= ts) & cand] = CLOUD_SHADOW
        info.update(shadow_darkening_max=round(d_max, 4), shadow_offset_px=[dy, dx])
    if cloud_cover > 0:
        # whitish haze, slightly textured: band * (1 - a) + haze * a
        haze = rng.uniform(218, 236) + rng.uniform(-4, 4, 3)
        at = (smooth_noise(rng, h, w, 3.0 * max(size / 2048.0, 0.35)) * np.float32(0.02)
              + np.float32(1))
        at *= alpha
        keep *= np.float32(1.0) - alpha
        for b, hz in zip(bands, haze):
            b *= keep
            b += at * np.float32(hz)
        info["haze_rgb"] = [round(float(x), 2) for x in haze]
    else:
        for b in bands:
            b *= keep
    return cloud, info
