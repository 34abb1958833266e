"""Colour-segmentation auto-labeller (HSV ranges) and the class-map <-> palette conversions.

Class maps are (H, W) uint8 arrays:

=====  ===============================  ================
value  class                            palette (RGB)
=====  ===============================  ================
0      open water                       green (0, 255, 0)
1      thin / young ice                 blue (0, 0, 255)
2      thick / snow-covered ice         red (255, 0, 0)
254    unlabelled (in no HSV range;     magenta (255, 0, 255)
       only with ``allow_gaps``)
255    no-data                          black (0, 0, 0)
=====  ===============================  ================

HSV ranges use OpenCV's scales (H 0..179, S and V 0..255) and are inclusive, as ``cv2.inRange``.
With the paper's defaults H and S are unconstrained, so the class depends on V = max(R, G, B)
alone; the labeller then uses a 256-entry lookup table on V instead of a full HSV conversion
(bit-identical, see ``tests/test_autolabel.py``). Where ranges overlap, the class painted last
wins: water, then thin, then thick (thick has priority).

Gaps, overlaps, order
---------------------
The paper's ranges are disjoint, cover every colour and are ordered by brightness (water darkest,
thick ice brightest). :func:`threshold_problems` says where other ranges are not, by a rule that
is exact on OpenCV's HSV grid (H 0..179, S 0..255, V 0..255):

* **gap**: a V value in no range's V interval (every pixel of that V is in no class), or a V value
  covered only by ranges that constrain H or S whose H x S boxes together leave part of
  0..179 x 0..255 uncovered (pixels of the other hues or saturations are in no class);
* **overlap**: two ranges whose boxes intersect in H, S and V (the later class wins there);
* **order**: a class whose V lower or V upper bound is below that of the class before it in the
  order water, thin ice, thick ice.

A range with H 0..>=179 and S 0..255 is *V-only*; with V-only ranges the rule is exactly "the V
intervals must tile 0..255 in the order water, thin, thick". (A few HSV grid points no RGB colour
reaches, e.g. high saturation at V = 1, count too; the opt-out below covers such corner cases.)
Profiles are checked when loaded (:func:`seaice_utils.labelling.settings.thresholds`): gaps and
overlaps are errors unless ``autolabel.allow_gaps: true``, order is always an error.
``Thresholds(allow_gaps=True)`` writes the pixels in no range as :data:`UNLABELLED` (254),
counted apart from no-data; a ``Thresholds`` built without it keeps the published code's 255 for
them (its ranges are expected to cover every colour).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache

import cv2
import numpy as np

from seaice_utils.core.classes import (CLASS_CODES, CLASS_NAMES, DISPLAY_ORDER, NODATA, RANGE_KEYS,
                                       UNLABELLED)
from seaice_utils.core.scenes import check_rgb
from seaice_utils.errors import InputError
from seaice_utils.labelling.cloudfilter import (FilterParams, filter_fast, levels_to_rgb,
                                                thin_cloud_shadow_filter)
from seaice_utils.labelling.kernels import SMALL, mask255, value_channel

__all__ = ["HSVRange", "Thresholds", "ThresholdProblem", "threshold_problems", "segment",
           "grey_lut", "auto_label"]

#: Water, then thin, then thick (code order, darkest first): thick ice, painted last, wins overlaps.
_PAINT_ORDER = CLASS_CODES
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
    """HSV ranges of the three classes; defaults are the paper's.

    ``allow_gaps``: pixels in no range are written as :data:`UNLABELLED` (254) instead of 255
    (see the module docstring); profiles set it with ``autolabel.allow_gaps``.
    """

    thick: HSVRange = _default((0, 0, 205), (185, 255, 255))
    thin: HSVRange = _default((0, 0, 31), (185, 255, 204))
    water: HSVRange = _default((0, 0, 0), (185, 255, 30))
    allow_gaps: bool = False

    @property
    def unlabelled(self) -> int:
        """Code of pixels in no range: 254 with ``allow_gaps``, else 255."""
        return UNLABELLED if self.allow_gaps else NODATA

    def ranges(self) -> dict[int, HSVRange]:
        return {c: getattr(self, RANGE_KEYS[c]) for c in CLASS_CODES}

    def to_dict(self) -> dict:
        d = {RANGE_KEYS[c]: getattr(self, RANGE_KEYS[c]).to_dict() for c in DISPLAY_ORDER}
        if self.allow_gaps:
            d["allow_gaps"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Thresholds":
        ranges = {k: HSVRange(tuple(v["lower"]), tuple(v["upper"])) for k, v in d.items()
                  if k != "allow_gaps"}
        return cls(**ranges, allow_gaps=bool(d.get("allow_gaps", False)))

    def value_lut(self) -> np.ndarray | None:
        """256-entry class lookup table on V when every range is V-only, else None."""
        rng = self.ranges()
        if not all(r.v_only for r in rng.values()):
            return None
        lut = np.full(256, self.unlabelled, np.uint8)
        for cls in _PAINT_ORDER:
            r = rng[cls]
            lut[r.lower[2]:min(r.upper[2], 255) + 1] = cls
        return lut


# one HSV range field per class, named as the profile's autolabel keys
assert {f.name for f in fields(Thresholds)} >= set(RANGE_KEYS.values())


@dataclass(frozen=True)
class ThresholdProblem:
    """One finding of :func:`threshold_problems`: ``kind`` is "gap", "overlap" or "order"."""

    kind: str
    message: str


def _bound(cls: int, side: str, ch: int, value: int) -> str:
    return f"autolabel.{RANGE_KEYS[cls]}.{side}.{'HSV'[ch]} = {value}"


def _box(r: HSVRange) -> list[tuple[int, int]]:
    """(lo, hi) per channel, uppers clipped to OpenCV's scales."""
    return [(r.lower[i], min(r.upper[i], _HSV_MAX[i])) for i in range(3)]


def _hs_text(box) -> str:
    (hl, hu), (sl, su) = box[0], box[1]
    return f"H {hl}..{hu}, S {sl}..{su}"


def _gaps(rng: dict[int, HSVRange]) -> list[ThresholdProblem]:
    boxes = {c: _box(r) for c, r in rng.items()}
    active = [tuple(c for c in _PAINT_ORDER
                    if boxes[c][2][0] <= v <= boxes[c][2][1] and
                    boxes[c][0][0] <= boxes[c][0][1] and boxes[c][1][0] <= boxes[c][1][1])
              for v in range(256)]
    out, v = [], 0
    while v < 256:
        end = v
        while end + 1 < 256 and active[end + 1] == active[v]:
            end += 1
        span, here = f"V {v}..{end}" if end > v else f"V {v}", active[v]
        if not here:
            near = [_bound(c, "upper", 2, v - 1) for c in _PAINT_ORDER
                    if v > 0 and boxes[c][2][1] == v - 1]
            near += [_bound(c, "lower", 2, end + 1) for c in _PAINT_ORDER
                     if end < 255 and boxes[c][2][0] == end + 1]
            out.append(ThresholdProblem("gap", f"{span} is in no class's range" +
                                        (f" ({', '.join(near)})" if near else "")))
        elif not any(rng[c].v_only for c in here):
            grid = np.zeros((_HSV_MAX[0] + 1, _HSV_MAX[1] + 1), bool)
            for c in here:
                (hl, hu), (sl, su) = boxes[c][0], boxes[c][1]
                grid[hl:hu + 1, sl:su + 1] = True
            if not grid.all():
                keys = [_bound(c, side, ch, (rng[c].lower if side == "lower" else rng[c].upper)[ch])
                        for c in here for ch in (0, 1) for side in ("lower", "upper")
                        if (side == "lower" and rng[c].lower[ch] > 0) or
                        (side == "upper" and rng[c].upper[ch] < _HSV_MAX[ch])]
                names = " and ".join(f"{CLASS_NAMES[c]} ({_hs_text(boxes[c])})" for c in here)
                out.append(ThresholdProblem(
                    "gap", f"at {span} only {names} {'applies' if len(here) == 1 else 'apply'}: "
                    f"pixels of other hue or saturation are in no class's range ({', '.join(keys)})"))
        v = end + 1
    return out


def _overlaps(rng: dict[int, HSVRange]) -> list[ThresholdProblem]:
    out = []
    for i, a in enumerate(_PAINT_ORDER):
        for b in _PAINT_ORDER[i + 1:]:
            ba, bb = _box(rng[a]), _box(rng[b])
            inter = [(max(x[0], y[0]), min(x[1], y[1])) for x, y in zip(ba, bb)]
            if any(lo > hi for lo, hi in inter):
                continue
            lo_cls = a if ba[2][0] >= bb[2][0] else b
            hi_cls = a if ba[2][1] <= bb[2][1] else b
            (vl, vu) = inter[2]
            span = f"V {vl}..{vu}" if vu > vl else f"V {vl}"
            hs = "" if inter[0] == (0, _HSV_MAX[0]) and inter[1] == (0, _HSV_MAX[1]) else \
                f" for {_hs_text(inter)}"
            out.append(ThresholdProblem(
                "overlap", f"{span}{hs} is in both the {CLASS_NAMES[a]} and {CLASS_NAMES[b]} "
                f"ranges ({_bound(lo_cls, 'lower', 2, vl)}, {_bound(hi_cls, 'upper', 2, vu)}); "
                f"{CLASS_NAMES[b]} is painted last and wins there"))
    return out


def _order(rng: dict[int, HSVRange]) -> list[ThresholdProblem]:
    out = []
    for a, b in zip(_PAINT_ORDER, _PAINT_ORDER[1:]):
        for side in ("lower", "upper"):
            va, vb = getattr(rng[a], side)[2], getattr(rng[b], side)[2]
            if vb < va:
                out.append(ThresholdProblem(
                    "order", f"the V ranges are inverted: {CLASS_NAMES[b]} must not be darker than "
                    f"{CLASS_NAMES[a]} ({_bound(b, side, 2, vb)} is below "
                    f"{_bound(a, side, 2, va)}; water is darkest, thick ice brightest)"))
                break                                   # one message per pair of classes
    return out


@lru_cache(maxsize=64)
def _problems(thresholds: Thresholds) -> tuple[ThresholdProblem, ...]:
    rng = thresholds.ranges()
    return tuple(_order(rng) + _gaps(rng) + _overlaps(rng))


def threshold_problems(thresholds: Thresholds) -> list[ThresholdProblem]:
    """Gaps, overlaps and order inversions of a set of HSV ranges (see the module docstring).

    Each message names the V values and the bounds concerned, as ``autolabel.<class>.<lower|
    upper>.<H|S|V> = value`` (the tuner's setting names).

    >>> threshold_problems(Thresholds())
    []
    >>> for p in threshold_problems(Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 150)))):
    ...     print(p.kind, "|", p.message)
    gap | V 151..204 is in no class's range (autolabel.thin.upper.V = 150, autolabel.thick.lower.V = 205)
    >>> for p in threshold_problems(Thresholds(thin=HSVRange((0, 0, 31), (179, 255, 230)))):
    ...     print(p.kind, "|", p.message)  # doctest: +NORMALIZE_WHITESPACE
    overlap | V 205..230 is in both the thin ice and thick ice ranges (autolabel.thick.lower.V =
    205, autolabel.thin.upper.V = 230); thick ice is painted last and wins there
    """
    return list(_problems(thresholds))


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
        0 water, 1 thin ice, 2 thick ice, 255 no-data; pixels in no range are
        ``thresholds.unlabelled`` (254 with ``allow_gaps``, else 255).

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
        out = np.full(rgb.shape[:2], thresholds.unlabelled, np.uint8)
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
def grey_lut(thresholds: Thresholds) -> np.ndarray:
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
    return _apply_nodata(cv2.LUT(levels, grey_lut(thresholds)), nodata), levels


