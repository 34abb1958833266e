"""Synthetic Sentinel-2-like true-colour sea-ice scenes with ground truth (the embedded dataset).

The compendium needs data that anyone can regenerate without an Earth Engine account: this module
draws deterministic scenes that resemble the paper's austral-summer Ross Sea imagery (B4/B3/B2,
reflectance 0..1 stretched linearly to 0..255):

* bright snow-covered fast ice and pack floes (thick ice; V mostly 205..255, slightly bluish white,
  with snow dunes, relief shading of ridges and rafted edges, icebergs and their shadows);
* grey floes, nilas in refrozen leads and cracks, grey-ice fringes and frazil streaks along polynya
  edges (thin ice; V roughly 31..204, grey-blue);
* leads, cracks and polynyas (open water; very dark blue-black, V mostly <= 30, with grease-ice
  streaks and brash);
* optionally thin clouds / haze (whitish, partially transparent) and cloud shadows, and a black
  no-data wedge in one corner.

How a scene is made
-------------------
1. **Geometry first.** The class map (the ground truth) is built from shapes only: a polynya field
   (thresholded low-frequency noise), a pack-ice zone (a ramp plus noise), floes as Voronoi cells
   (OpenCV distance transforms with labels) inset by a lead width that grows with the pack's
   openness, cracked floes split into smaller cells, grey (thin) floes, refrozen leads, fringes of
   grey ice along the polynya edges, drifting brash, cracks and nilas leads drawn as polylines across
   the consolidated ice, and icebergs. The truth is never obtained by thresholding the rendered
   colours.
2. **Colours second.** Each class is rendered with its own brightness distribution and texture
   (multi-scale noise, relief shading under a low sun, darker wet floe edges, grey ice brightening
   towards the thick ice it touches, dark spots in nilas, grease-ice streaks on water), then blurred
   by a small point-spread function (mixed pixels at every boundary) and given sensor noise. The
   class brightness distributions therefore overlap near the paper's thresholds V = 30 and V = 205,
   as real ones do: the colour segmentation of the clear image agrees with the truth for roughly
   90-97 % of the pixels, not 100 %.
3. **Atmosphere last.** Thin cloud is an alpha blend ``image * (1 - a) + haze * a`` with a smooth,
   slightly streaky alpha (at most 0.35-0.65); cloud shadow is a smooth multiplicative darkening
   (at most 35-55 %) cast by the same cloud field, offset along the sun's azimuth. Their masks are
   thresholded at quantiles of the fields, so the realised cover equals the requested cover up to
   ties. The truth stays the geometric truth under clouds and shadows. Haze lifts water and thin
   ice (dark water under haze is no longer V <= 30), shadow pulls thick ice below V = 205: the
   plain colour segmentation suffers, and the paper's filter recovers the shadowed ice (see
   ``tests/test_synthetic.py``).

Steps 1 and 2 live in :mod:`seaice_utils.data.synthetic_ground`, step 3 in
:mod:`seaice_utils.data.synthetic_atmosphere`, their noise and geometry helpers in
:mod:`seaice_utils.data.synthetic_noise`; this module checks the arguments, derives the random
streams from the seed, adds the no-data wedge and the sensor noise, and assembles the scene.

Scale
-----
The layout (polynyas, pack and consolidated zones, clouds) scales with ``size / 2048``, so a 512 px
scene is a coarser view of the same kind of scene, not a crop; floes, leads and textures scale with
``sqrt(size / 2048)`` so that small scenes keep readable floes (at 2048 px: floes of roughly
140-300 px cracked into 40-90 px pieces, leads mostly 1-30 px wide). The ground (geometry, colours)
depends on the seed and the size only: asking for clouds or a no-data wedge does not change the
truth, so clear and cloudy versions of one scene can be compared pixel by pixel.

Cost
----
About 1 s of one CPU core and 0.4 GB of peak memory per 2048 px scene.

Determinism
-----------
Only :class:`numpy.random.Generator` streams derived from the seed are used, and OpenCV operations
that are deterministic; the same arguments give bit-identical arrays.

Examples
--------
>>> s = synthesize_scene(3, size=256, cloud_cover=0.2, shadow_cover=0.1, nodata_wedge=True)
>>> s.image.shape, s.truth.dtype.name, s.name
((256, 256, 3), 'uint8', 'synth_0003')
>>> bool((s.image[s.nodata] == 0).all() and (s.truth[s.nodata] == 255).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import cv2
import numpy as np

from seaice_utils.core.classes import NODATA, class_fractions
from seaice_utils.core.metrics import pixel_accuracy
from seaice_utils.core.scenes import Scene
from seaice_utils.data.synthetic_atmosphere import (CLOUD_CLEAR, CLOUD_HAZE, CLOUD_SHADOW,
                                                    add_atmosphere)
from seaice_utils.data.synthetic_ground import draw_geometry, render_ground
from seaice_utils.errors import InputError
from seaice_utils.labelling.autolabel import auto_label
from seaice_utils.labelling.cloudfilter import FilterParams

__all__ = ["SyntheticScene", "synthesize_scene", "agreement_table", "agreement_lines",
           "GENERATOR_VERSION", "MIN_SIZE", "MAX_COVER", "CLOUD_CLEAR", "CLOUD_HAZE",
           "CLOUD_SHADOW"]

#: Bumped whenever the rendering changes so that cached datasets can be told apart.
GENERATOR_VERSION = "1"
#: Smallest scene side accepted.
MIN_SIZE = 64
#: Upper bound (exclusive) of ``cloud_cover``, ``shadow_cover`` and of their sum.
MAX_COVER = 0.9
_MAX_SIZE = 16384


@dataclass
class SyntheticScene:
    """A synthetic scene with its ground truth.

    Attributes
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB true colour; 0 in every band where no-data (and never 0 in all bands elsewhere).
    truth : (H, W) uint8 ndarray
        Class map from the scene geometry: 0 open water, 1 thin ice, 2 thick ice, 255 no-data.
    cloud : (H, W) uint8 ndarray
        0 clear, 1 thin cloud / haze, 2 cloud shadow (0 on no-data).
    nodata : (H, W) bool ndarray
        True where the pixel carries no data.
    name : str
    meta : dict
        ``seed``, ``size``, ``generator_version``, ``cloud_cover_requested``,
        ``shadow_cover_requested``, the realised ``cloud_cover`` and ``shadow_cover`` (share of
        the valid pixels with cloud mask 1 / 2), ``nodata_wedge``, ``nodata_fraction``,
        ``class_fractions`` (share of the valid pixels per class name), ``layout`` (the scene
        parameters drawn from the seed) and ``atmosphere`` (haze and shadow parameters).
    """

    image: np.ndarray
    truth: np.ndarray
    cloud: np.ndarray
    nodata: np.ndarray
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_scene(self) -> Scene:
        """The image as a :class:`~seaice_utils.core.scenes.Scene` (arrays shared, meta copied)."""
        return Scene(rgb=self.image, nodata=self.nodata, name=self.name,
                     meta=dict(self.meta, source="synthetic"))


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def _check_args(seed, size, cloud_cover, shadow_cover, nodata_wedge, name) -> None:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer (got {seed!r})")
    if isinstance(size, bool) or not isinstance(size, Integral):
        raise InputError(f"size must be an integer number of pixels (got {size!r})")
    if not MIN_SIZE <= size <= _MAX_SIZE:
        raise InputError(f"size must be within {MIN_SIZE}..{_MAX_SIZE} px (got {size})")
    for key, v in (("cloud_cover", cloud_cover), ("shadow_cover", shadow_cover)):
        if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v):
            raise InputError(f"{key} must be a number in [0, {MAX_COVER}) (got {v!r})")
        if not 0.0 <= v < MAX_COVER:
            raise InputError(f"{key} must be in [0, {MAX_COVER}) (got {v})")
    if cloud_cover + shadow_cover >= MAX_COVER:
        raise InputError(f"cloud_cover + shadow_cover must be < {MAX_COVER} "
                         f"(got {cloud_cover} + {shadow_cover})")
    if not isinstance(nodata_wedge, (bool, np.bool_)):
        raise InputError(f"nodata_wedge must be True or False (got {nodata_wedge!r})")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InputError(f"name must be a non-empty string or None (got {name!r})")


# --------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------

def synthesize_scene(seed: int, *, size: int = 2048, cloud_cover: float = 0.0,
                     shadow_cover: float = 0.0, nodata_wedge: bool = False,
                     name: str | None = None) -> SyntheticScene:
    """Draw one synthetic Sentinel-2-like sea-ice scene with its ground truth.

    Parameters
    ----------
    seed : int
        Non-negative; the same arguments give identical arrays.
    size : int, keyword-only
        Side of the square scene in pixels (64..16384; 2048 as in the paper).
    cloud_cover : float, keyword-only
        Share of the valid pixels under thin cloud / haze (cloud mask 1), in [0, 0.9).
    shadow_cover : float, keyword-only
        Share of the valid pixels in cloud shadow (cloud mask 2), in [0, 0.9);
        ``cloud_cover + shadow_cover`` must be < 0.9 (the two masks are exclusive).
    nodata_wedge : bool, keyword-only
        Black no-data triangle in one corner, as where a Sentinel-2 tile is cut by the swath edge.
    name : str, optional, keyword-only
        Scene name; default ``f"synth_{seed:04d}"``.

    Returns
    -------
    SyntheticScene

    Raises
    ------
    InputError
        On a bad argument (negative or non-integer seed, size < 64, cover out of range, ...).

    Notes
    -----
    The ground (truth and clear colours) depends on ``seed`` and ``size`` only; clouds, shadows,
    the wedge and the sensor noise come from independent random streams, so the truth of the valid
    pixels is the same with and without clouds. About a second per 2048 px scene on one core.
    """
    _check_args(seed, size, cloud_cover, shadow_cover, nodata_wedge, name)
    size, seed = int(size), int(seed)
    cloud_cover, shadow_cover = float(cloud_cover), float(shadow_cover)
    ss_geo, ss_render, ss_wedge, ss_atmo, ss_noise = np.random.SeedSequence(
        [seed, size, 0x5EA1CE]).spawn(5)

    geo = draw_geometry(np.random.default_rng(ss_geo), size)
    truth = geo["truth"]
    bands = render_ground(np.random.default_rng(ss_render), geo, size)
    layout = geo["layout"]
    del geo

    nodata = np.zeros((size, size), bool)
    if nodata_wedge:
        r = np.random.default_rng(ss_wedge)
        a, b = r.uniform(0.25, 0.55, 2) * size
        s = size - 1
        tri = [[(0, 0), (a, 0), (0, b)], [(s, 0), (s - a, 0), (s, b)],
               [(0, s), (a, s), (0, s - b)], [(s, s), (s - a, s), (s, s - b)]][int(r.integers(4))]
        m = np.zeros((size, size), np.uint8)
        cv2.fillPoly(m, [np.round(np.array(tri)).astype(np.int32)], 1)
        nodata = m.view(bool)
    valid = ~nodata

    cloud, atmo = add_atmosphere(np.random.default_rng(ss_atmo), bands, valid, size,
                                 cloud_cover, shadow_cover)
    # sensor noise (uniform, sd 1.3 DN) and quantisation; valid pixels are never 0 in every band
    # (0 is the fill value)
    noise_rng = np.random.default_rng(ss_noise)
    for b in bands:
        b += noise_rng.random((size, size), dtype=np.float32) * np.float32(4.5)
        b -= np.float32(2.25 - 0.5)               # + 0.5: rounding by truncation below
        np.clip(b, 1, 255.49, out=b)
    image = cv2.merge(bands).astype(np.uint8)
    del bands
    image[nodata] = 0
    truth[nodata] = NODATA
    cloud[nodata] = CLOUD_CLEAR

    n_valid = int(valid.sum())
    meta: dict[str, Any] = dict(
        seed=seed, size=size, generator_version=GENERATOR_VERSION,
        cloud_cover_requested=cloud_cover, shadow_cover_requested=shadow_cover,
        cloud_cover=float((cloud == CLOUD_HAZE).sum()) / n_valid if n_valid else 0.0,
        shadow_cover=float((cloud == CLOUD_SHADOW).sum()) / n_valid if n_valid else 0.0,
        nodata_wedge=bool(nodata_wedge), nodata_fraction=float(nodata.mean()),
        class_fractions=class_fractions(truth), layout=layout, atmosphere=atmo)
    return SyntheticScene(image=image, truth=truth, cloud=cloud, nodata=nodata,
                          name=name if name is not None else f"synth_{seed:04d}", meta=meta)


def agreement_table(seeds=range(4), *, size: int = 2048, cloud_cover: float = 0.3,
                    shadow_cover: float = 0.1) -> list[dict]:
    """Auto-label agreement with the synthetic truth: clear/cloudy scenes, without/with filter.

    One row per seed with the pixel accuracy of :func:`seaice_utils.labelling.autolabel.auto_label`
    against the geometric truth, plus a final ``mean`` row. This is the figure quoted for the
    embedded dataset (printed by :func:`agreement_lines` on the command line).
    """
    keys = ("clear_no_filter", "clear_filter", "cloudy_no_filter", "cloudy_filter")
    rows = []
    for seed in seeds:
        clear = synthesize_scene(seed, size=size)
        cloudy = synthesize_scene(seed, size=size, cloud_cover=cloud_cover,
                                  shadow_cover=shadow_cover)
        vals = [pixel_accuracy(auto_label(s.image, nodata=s.nodata, filter_params=fp)[0], s.truth)
                for s in (clear, cloudy) for fp in (None, FilterParams())]
        rows.append({"seed": seed, **dict(zip(keys, vals))})
    rows.append({"seed": "mean", **{k: float(np.mean([r[k] for r in rows])) for k in keys}})
    return rows


def agreement_lines(rows: list[dict]) -> list[str]:
    """The rows of :func:`agreement_table` as the lines of a fixed-width text table.

    >>> agreement_lines([{"seed": "mean", "clear_no_filter": 0.9, "clear_filter": 0.91,
    ...                   "cloudy_no_filter": 0.8, "cloudy_filter": 0.85}])[1]
    ' mean           0.9000        0.9100            0.8000         0.8500'
    """
    lines = [f"{'seed':>5} {'clear/no filter':>16} {'clear/filter':>13} "
             f"{'cloudy/no filter':>17} {'cloudy/filter':>14}"]
    for r in rows:
        lines.append(f"{r['seed']:>5} {r['clear_no_filter']:16.4f} {r['clear_filter']:13.4f} "
                     f"{r['cloudy_no_filter']:17.4f} {r['cloudy_filter']:14.4f}")
    return lines
