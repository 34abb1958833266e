"""The ground of a synthetic scene: its geometry (the truth) and its clear colours.

:func:`draw_geometry` builds the class map from shapes only (polynyas, pack and consolidated ice,
Voronoi floes inset by leads, grey floes, refrozen leads, grey-ice fringes, cracks, icebergs);
:func:`render_ground` paints each class with its own brightness distribution and texture and
blurs the bands by a point-spread function. See :mod:`seaice_utils.data.synthetic` for the whole
recipe; the atmosphere is added by :mod:`seaice_utils.data.synthetic_atmosphere`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from seaice_utils.core.classes import THICK, THIN, WATER
from seaice_utils.data.synthetic_noise import (fast_exp, noise_field, normalise, quantile_threshold,
                                               random_walk, select, smooth_noise, voronoi)

__all__ = ["draw_geometry", "render_ground"]


# --------------------------------------------------------------------------------------------
# geometry (the truth)
# --------------------------------------------------------------------------------------------

def draw_geometry(rng: np.random.Generator, size: int) -> dict[str, Any]:
    """Draw the scene layout; return the truth and the fields the renderer needs."""
    h = w = size
    # the layout (polynyas, pack zones) scales with the scene; floes, leads and textures scale
    # with the square root of the size, so that small scenes stay readable
    g = (size / 2048.0) ** 0.5
    gl = size / 2048.0
    lay = dict(
        open_fraction=float(rng.uniform(0.04, 0.34)),
        pack_fraction=float(rng.uniform(0.15, 0.55)),
        grey_floe_prob=float(rng.uniform(0.1, 0.45)),
        refrozen_leads=float(rng.uniform(0.15, 0.55)),
        floe_scale_px=float(rng.uniform(140, 300)),
        max_lead_halfwidth_px=float(rng.uniform(4, 16)),
        cracked_floe_prob=float(rng.uniform(0.15, 0.5)),
        fringe_width_px=float(rng.uniform(6, 40)),
        ramp_angle=float(rng.uniform(0, 2 * np.pi)),
        sun_azimuth=float(rng.uniform(0, 2 * np.pi)),
    )

    # --- polynyas: a thresholded low-frequency field (coastline roughened by higher octaves)
    pfield = noise_field(rng, h, w, [(size / 2.2, 1.0), (size / 5.0, 0.55), (size / 14.0, 0.18),
                                     (size / 40.0, 0.06)])
    polynya = pfield >= quantile_threshold(pfield.ravel(), lay["open_fraction"])
    del pfield
    d_in_poly = cv2.distanceTransform(polynya.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    d_to_poly = cv2.distanceTransform((~polynya).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)

    # --- pack field: a ramp plus noise; its high end is broken pack, the rest consolidated ice
    a = lay["ramp_angle"]
    ramp = (np.float32(np.cos(a) / size) * np.arange(w, dtype=np.float32)[None, :]
            + np.float32(np.sin(a) / size) * np.arange(h, dtype=np.float32)[:, None])
    rfield = noise_field(rng, h, w, [(size / 3.0, 1.0), (size / 8.0, 0.45), (size / 25.0, 0.15)])
    rfield *= np.float32(rng.uniform(0.25, 0.6))
    rfield += ramp * np.float32(rng.uniform(1.8, 3.2))
    del ramp
    frac = min(0.95, lay["pack_fraction"] / max(1e-6, 1.0 - lay["open_fraction"]))
    tr = quantile_threshold(rfield[~polynya], frac)
    rhi = float(np.percentile(rfield[::4, ::4], 99.5))
    # openness: 0 (dense) .. 1 (loose) in the pack, rising towards polynyas (marginal ice zone),
    # > 1 inside polynyas, where floes shrink and vanish with the distance from the edge
    openness = np.clip((rfield - np.float32(tr)) * np.float32(1.0 / max(rhi - tr, 1e-6)), 0, 1)
    miz = np.float32(max(120.0 * g, 6.0))
    np.maximum(openness, np.clip(1.0 - d_to_poly / miz, 0, 1) * np.float32(0.8), out=openness)
    drift = smooth_noise(rng, h, w, size / 6.0)          # where polynya edges shed floes
    inside = (np.float32(1.0) + d_in_poly * np.float32(1.0 / max(40.0 * g, 3.0))
              + np.clip(-drift, 0, None) * np.float32(3.0))
    openness = select(polynya, inside, openness)
    del drift, inside, d_to_poly

    # --- floes: three nested Voronoi levels. Big floes (level 1), some cracked into pieces
    # (level 2, and every floe where the pack is open), some pieces shattered into fragments
    # (level 3, near open water). Each piece is inset by its own random lead half-width that
    # grows with the openness, so leads are angular and of varied width; pieces drift away
    # (vanish) where the pack is open.
    big = max(lay["floe_scale_px"] * g, 10.0)
    small = max(big / 3.2, 5.0)
    frag = max(small / 2.8, 3.0)
    lab1, d1, ys1, xs1, sl1 = voronoi(rng, h, w, big)
    lab2, d2, ys2, xs2, sl2 = voronoi(rng, h, w, small)
    lab3, d3, ys3, xs3, sl3 = voronoi(rng, h, w, frag)
    o1, o2, o3 = openness[ys1, xs1], openness[ys2, xs2], openness[ys3, xs3]
    n1, n2, n3 = len(ys1), len(ys2), len(ys3)
    # level-1 cells: consolidated (whole cells, so that the edge of the consolidated ice follows
    # floe boundaries) or not; cracked or not
    cons1 = rfield[ys1, xs1] < tr
    del rfield
    crk1 = (rng.random(n1) < lay["cracked_floe_prob"]) | (o1 > rng.uniform(0.2, 0.55))
    code = np.zeros(int(lab1.max()) + 1, np.uint8)
    code[sl1] = cons1 * 2 + crk1
    c1 = code[lab1]
    consolidated = (c1 >= 2) & ~polynya
    pack = ~consolidated & ~polynya
    level2 = (c1 & 1).astype(bool)
    del c1
    shat2 = (rng.random(n2) < 0.08) | (o2 > rng.uniform(0.75, 1.05))
    code = np.zeros(int(lab2.max()) + 1, bool)
    code[sl2] = shat2
    level3 = code[lab2] & level2
    # finest cell id and distance to the nearest boundary of any active level
    off2 = int(lab1.max()) + 1
    off3 = off2 + int(lab2.max()) + 1
    fid = lab1
    np.copyto(fid, lab2 + off2, where=level2)
    np.copyto(fid, lab3 + off3, where=level3)
    del lab2, lab3
    dist = d1
    np.minimum(dist, d2, out=dist, where=level2)
    np.minimum(dist, d3, out=dist, where=level3)
    del d2, d3

    def per_cell(v1, v2, v3, dtype=np.float32) -> np.ndarray:
        lut = np.zeros(off3 + int(sl3.max()) + 1 if n3 else off3 + 1, dtype)
        lut[sl1], lut[off2 + sl2], lut[off3 + sl3] = v1, v2, v3
        return lut[fid]

    gmax = max(lay["max_lead_halfwidth_px"] * g, 1.0)

    def inset(o: np.ndarray) -> np.ndarray:
        base = 0.3 + gmax * np.clip(o, 0, None) ** 1.6
        return base * rng.lognormal(0.0, 0.8, len(o))

    gap = per_cell(inset(o1), inset(o2), inset(o3))

    def gone(o: np.ndarray) -> np.ndarray:
        return rng.random(len(o)) < np.clip((o - 0.25) * 0.7, 0, 0.55)

    pg = lay["grey_floe_prob"]
    grey2 = rng.random(n2) < pg * (0.4 + np.minimum(o2, 1.5))
    grey3 = rng.random(n3) < pg * (0.6 + np.minimum(o3, 1.5))
    flags = per_cell(np.zeros(n1, np.uint8), gone(o2) * 2 + grey2, gone(o3) * 2 + grey3,
                     np.uint8)
    floe_bright = per_cell(rng.random(n1), rng.random(n2), rng.random(n3))
    grey_level = per_cell(rng.beta(1.5, 1.6, n1), rng.beta(1.5, 1.6, n2), rng.beta(1.5, 1.6, n3))
    del fid
    edge_noise = smooth_noise(rng, h, w, 20.0 * g)
    edge_noise *= np.float32(max(1.2 * g, 0.4))
    edge_noise += smooth_noise(rng, h, w, 2.5) * np.float32(0.45)
    dist += edge_noise
    floe = (dist > gap) & ~consolidated & (flags < 2)
    dist -= edge_noise
    del edge_noise
    grey = floe & ((flags & 1) > 0)
    del flags

    # --- leads between floes: open water, or refrozen (nilas) in patches
    lead = pack & ~floe
    lead_noise = noise_field(rng, h, w, [(90 * g, 1.0), (25 * g, 0.4)])
    t_lead = float(np.quantile(lead_noise[::5, ::5], 1.0 - lay["refrozen_leads"]))
    refrozen = lead & (lead_noise > t_lead) & (openness < 0.85)
    del lead_noise, lead, openness

    # --- grey-ice fringe and frazil streaks along polynya edges
    fw = np.clip(smooth_noise(rng, h, w, size / 10.0) + np.float32(0.2), 0, None)
    fw *= np.float32(max(lay["fringe_width_px"] * g, 1.0))
    streak = smooth_noise(rng, h, w, 22 * g, aniso=6.0, angle=rng.uniform(0, np.pi))
    fringe = polynya & ((d_in_poly < fw) | ((streak > 1.2) & (d_in_poly < 3.0 * fw + 2)))
    del fw

    truth = np.full((h, w), THICK, np.uint8)
    truth[pack & ~floe] = WATER
    truth[refrozen] = THIN
    truth[polynya & ~floe] = WATER
    truth[fringe & ~floe] = THIN
    truth[grey] = THIN

    # --- cracks (open or refrozen) and wide nilas leads across the ice, as polylines
    cracks = np.zeros((h, w), np.uint8)   # 1 open water, 2 refrozen crack, 3 nilas lead
    n_cracks = int(rng.integers(2, 10))
    for _ in range(n_cracks):
        pts = random_walk(rng, size, int(rng.integers(15, 60)), max(30 * gl, 3.0), 0.15)
        kind = 1 if rng.random() < 0.25 else 2
        cv2.polylines(cracks, [pts], False, kind, int(max(1, round(rng.uniform(0.6, 2.4) * g))),
                      cv2.LINE_8)
    for _ in range(int(rng.integers(0, 3))):
        pts = random_walk(rng, size, int(rng.integers(8, 30)), max(60 * gl, 5.0), 0.25)
        width = int(max(2, round(rng.uniform(6, 28) * g)))
        cv2.polylines(cracks, [pts], False, 3, width, cv2.LINE_8)
        if rng.random() < 0.5:
            cv2.polylines(cracks, [pts], False, 1, max(1, width // 4), cv2.LINE_8)
    on_ice = truth == THICK
    cracks[~on_ice] = 0
    truth[cracks >= 2] = THIN
    truth[cracks == 1] = WATER

    # --- icebergs: small bright polygons (thick ice) with cast shadows (rendered only)
    bergs = np.zeros((h, w), np.uint8)
    berg_shadow = np.zeros((h, w), np.uint8)
    sun = lay["sun_azimuth"]
    n_bergs = int(rng.poisson(6 * max(g, 0.25)))
    for _ in range(n_bergs):
        cx, cy = rng.uniform(0, size, 2)
        r = rng.uniform(3, 16) * max(g, 0.3)
        k = int(rng.integers(4, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.6, 1.3, k)
        poly = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang) * 0.6], 1)
        sh = poly + np.array([-np.cos(sun), -np.sin(sun)]) * r * 1.2
        cv2.fillPoly(berg_shadow, [sh.round().astype(np.int32)], 1)
        cv2.fillPoly(bergs, [poly.round().astype(np.int32)], 1)
    bergs_b = bergs.view(bool)
    truth[bergs_b] = THICK
    berg_shadow_b = berg_shadow.view(bool) & ~bergs_b

    lay.update(n_cracks=n_cracks, n_icebergs=n_bergs)
    return dict(truth=truth, layout=lay, consolidated=consolidated, polynya=polynya,
                floe=floe, grey=grey, dist=dist, gap=gap, floe_bright=floe_bright,
                grey_level=grey_level, fringe=fringe, cracks=cracks, bergs=bergs_b,
                berg_shadow=berg_shadow_b, d_in_poly=d_in_poly, streak=streak)


# --------------------------------------------------------------------------------------------
# rendering (the colours)
# --------------------------------------------------------------------------------------------

def render_ground(rng: np.random.Generator, geo: dict[str, Any], size: int) -> list[np.ndarray]:
    """Clear ground scene as three float32 bands (R, G, B), blurred by the PSF, before noise."""
    h = w = size
    g = (size / 2048.0) ** 0.5
    tg = max(g, 0.35)                                  # texture scale (never below ~1/3)
    truth = geo["truth"]
    sun = geo["layout"]["sun_azimuth"]
    pack_floe = geo["floe"]

    # relief (snow dunes, hummocks, ridges) shaded under a low sun: the directional derivative
    # of a height field; pack floes are rougher (dimpled) than the fast ice
    height = noise_field(rng, h, w, [(30 * tg, 1.0), (11 * tg, 0.7), (4 * tg, 0.3),
                                     (8 * tg, 0.35, 4.0, rng.uniform(0, np.pi))])
    shade = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3) * np.float32(np.cos(sun))
    shade += cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3) * np.float32(np.sin(sun))
    shade = normalise(shade)
    del height
    broad = noise_field(rng, h, w, [(size / 4.0, 1.0), (size / 12.0, 0.5), (size / 40.0, 0.25)])
    fine = smooth_noise(rng, h, w, 1.2)

    # ---- thick ice: fast ice bright and smooth (often saturated); pack floes with their own
    # brightness, rougher, with darker wet / rafted edges
    fast_v = float(rng.uniform(242, 251))
    thick = broad * np.float32(5.0) + np.float32(fast_v)
    thick += shade * np.float32(rng.uniform(2.0, 4.0))
    thick += fine * np.float32(1.5)
    edge_d = np.clip(geo["dist"] - geo["gap"], 0, None)
    floe_v = geo["floe_bright"] * np.float32(18) + np.float32(fast_v - 20.0)
    floe_v += broad * np.float32(3.0)
    floe_v += shade * np.float32(rng.uniform(5.0, 9.0))
    floe_v += fine * np.float32(2.0)
    floe_v -= fast_exp(edge_d * np.float32(-1.0 / max(2.0 * tg, 1.0))) * np.float32(30)
    thick = select(pack_floe, floe_v, thick)
    del floe_v, edge_d
    thick[geo["bergs"]] = np.float32(252)

    # ---- thin ice: nilas (dark grey), grey floes (dark grey to grey-white), grey-ice fringe
    # along polynya edges (younger, darker away from the edge; frazil streaks), refrozen cracks
    tex = noise_field(rng, h, w, [(30 * tg, 1.0), (8 * tg, 0.6)])
    tex += smooth_noise(rng, h, w, 2.5) * np.float32(0.3)
    thin = tex * np.float32(12) + np.float32(rng.uniform(45, 85))
    thin += broad * np.float32(6)
    grey_v = geo["grey_level"] * np.float32(135) + np.float32(62)
    grey_v += tex * np.float32(12)
    grey_v += shade * np.float32(4.0)
    thin = select(geo["grey"], grey_v, thin)
    del grey_v
    dpi = geo["d_in_poly"]
    fringe_v = (fast_exp(dpi * np.float32(-1.0 / max(25 * g, 3.0)))
                * np.float32(rng.uniform(80, 140)))
    fringe_v += np.float32(45)
    fringe_v += tex * np.float32(14)
    fringe_v += geo["streak"] * np.float32(8)
    thin = select(geo["fringe"] & ~pack_floe, fringe_v, thin)
    del fringe_v
    crack_v = tex * np.float32(16) + np.float32(rng.uniform(70, 140))
    thin = select(geo["cracks"] >= 2, crack_v, thin)
    del crack_v
    # grey ice brightens towards the thick ice it touches (snow-covered rafted edges)
    d_thick = cv2.distanceTransform((truth != THICK).view(np.uint8), cv2.DIST_L2,
                                    cv2.DIST_MASK_5)
    rim = fast_exp(d_thick * np.float32(-1.0 / max(2.0 * tg, 1.0)))
    rim *= np.float32(0.6)
    thin += (np.float32(248) - thin) * rim
    del rim, d_thick
    # dark wet spots in nilas: a few pixels fall into the water range
    spots = noise_field(rng, h, w, [(12 * tg, 1.0), (3 * tg, 0.6)])
    spots -= np.float32(1.4)
    np.clip(spots, 0, None, out=spots)
    thin -= spots * np.float32(30)
    del spots

    # ---- open water: dark navy, slow variations, wind ripples, grease-ice streaks, brash
    water = broad * np.float32(2.0) + np.float32(rng.uniform(19, 25))
    water += smooth_noise(rng, h, w, 3.0) * np.float32(1.3)
    grease = np.clip(geo["streak"] - np.float32(0.8), 0, None)
    grease *= fast_exp(dpi * np.float32(-1.0 / max(150 * g, 5.0)))
    grease[~geo["polynya"]] = 0                 # grease ice drifts in the polynyas only
    water += grease * np.float32(6.0)
    del grease
    brash = (smooth_noise(rng, h, w, 1.0) > 3.4) & (dpi < max(60 * g, 4.0))
    water[brash] = np.float32(170)

    v = select(truth == THICK, thick, select(truth == THIN, thin, water))
    del thick, thin, water
    v[geo["berg_shadow"]] *= np.float32(0.5)
    np.clip(v, 2, 262, out=v)

    # colour: V is the blue band; water navy, grey ice grey-blue, snow slightly bluish white
    t = np.sqrt(np.minimum(v, np.float32(262)) * np.float32(1.0 / 255.0))
    tint = smooth_noise(rng, h, w, size / 6.0) * np.float32(0.012)
    red = v * (t * np.float32(0.49) + np.float32(0.50) + tint)
    green = v * (t * np.float32(0.335) + np.float32(0.66) + tint * np.float32(0.5))
    # point-spread function: mixed pixels at every boundary
    return [cv2.GaussianBlur(b, (0, 0), 0.75) for b in (red, green, v)]
