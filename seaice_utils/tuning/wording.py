"""What the tuner of notebook 02 says: settings named by their controls ("'V lower' of thin ice
(HSV ranges tab)") instead of profile keys, and the class-fraction table under its preview.

Every message tells what to do *inside the tuner* (which slider, which box to tick), never which
profile key to set.
"""

from __future__ import annotations

import html
import re
from typing import Any, Mapping

import numpy as np

from seaice_utils.core.classes import (CLASS_NAMES, DISPLAY_ORDER, PALETTE, RANGE_KEYS,
                                       UNLABELLED, UNLABELLED_NAME)
from seaice_utils.tuning.previews import FRACTION_COLUMNS, VARIANTS
from seaice_utils.tuning.settings import CLASS_KEYS

__all__ = ["FILTER_LABELS", "ALLOW_GAPS_LABEL", "control_name", "range_errors", "describe_error",
           "metrics_html", "hex_colour"]

CLASS_VALUE = {RANGE_KEYS[c]: c for c in DISPLAY_ORDER}
#: Slider labels of the filter constants (the tuner's "filter" tab).
FILTER_LABELS = {"water_v_max": "water V max", "dilation": "dilation",
                 "median_kernel": "median kernel", "truncation": "truncation",
                 "thick_threshold": "thick threshold", "apply_to": "apply to"}
#: The check box that maps to ``autolabel.allow_gaps``.
ALLOW_GAPS_LABEL = "allow gaps"


def hex_colour(code: int) -> str:
    """CSS colour of a class code (from the palette), e.g. ``'#ff00ff'`` for unlabelled."""
    return "#" + "".join(f"{c:02x}" for c in PALETTE[code])


_MAGENTA = hex_colour(UNLABELLED)


def control_name(key: str) -> str | None:
    """Where a setting is in the tuner, in its own words, e.g. "'V lower' of thin ice (HSV
    ranges tab)"; None for a key the tuner has no control for."""
    parts = key.split(".")
    if parts[0] == "filter" and len(parts) == 2 and parts[1] in FILTER_LABELS:
        return f"'{FILTER_LABELS[parts[1]]}' (filter tab)"
    if key == "autolabel.allow_gaps":
        return f"'{ALLOW_GAPS_LABEL}' (HSV ranges tab)"
    if (parts[0] == "autolabel" and len(parts) == 4 and parts[1] in CLASS_VALUE
            and parts[2] in ("lower", "upper") and parts[3] in "HSV"):
        fold = ", under 'H and S'" if parts[3] in "HS" else ""
        return (f"'{parts[3]} {parts[2]}' of {CLASS_NAMES[CLASS_VALUE[parts[1]]]} "
                f"(HSV ranges tab{fold})")
    return None


def range_errors(settings: Mapping[str, Any]) -> list[str]:
    """Lower bounds above their upper bound, said in the tuner's terms (which class, which
    slider, which bound, and what would fix it).

    >>> from seaice_utils.params import defaults
    >>> from seaice_utils.tuning.settings import settings_of
    >>> s = settings_of(defaults())
    >>> range_errors(s)
    []
    >>> s["autolabel.thin.lower.V"] = 210
    >>> range_errors(s)  # doctest: +NORMALIZE_WHITESPACE
    ["thin ice: its 'V lower' bound (210) is above its 'V upper' bound (204); set V lower to
      204 or less, or V upper to 210 or more (HSV ranges tab)"]
    """
    out = []
    for cls in CLASS_KEYS:
        for ch in "HSV":
            lo = settings.get(f"autolabel.{cls}.lower.{ch}")
            hi = settings.get(f"autolabel.{cls}.upper.{ch}")
            if lo is None or hi is None or lo <= hi:
                continue
            fold = ", under 'H and S'" if ch in "HS" else ""
            out.append(f"{CLASS_NAMES[CLASS_VALUE[cls]]}: its '{ch} lower' bound ({lo}) is above "
                       f"its '{ch} upper' bound ({hi}); set {ch} lower to {hi} or less, or "
                       f"{ch} upper to {lo} or more (HSV ranges tab{fold})")
    return out


_BOUND_KEY = re.compile(r"autolabel\.(" + "|".join(CLASS_KEYS) + r")\.(lower|upper)\.([HSV])\b")
_FILTER_KEY = re.compile(r"filter\.(" + "|".join(FILTER_LABELS) + r")\b")
_ALLOW = re.compile(r"set autolabel\.allow_gaps: true to label such pixels 'unlabelled' "
                    r"\(code 254\)")


def describe_error(message: str) -> str:
    """A settings error (``"section.key: must be ..."``) with the key replaced by the control
    that holds it; messages about keys the tuner has no control for are returned unchanged.
    Bounds and filter constants named inside the message (the HSV range and filter checks) are
    said by their slider names too, and "set autolabel.allow_gaps" by the box to tick.

    >>> describe_error("filter.median_kernel: must be an integer in 3..255, odd (got 154)")
    "'median kernel' (filter tab): must be an integer in 3..255, odd (got 154)"
    >>> describe_error("autolabel: V 151..204 is in no class's range "
    ...                "(autolabel.thin.upper.V = 150, autolabel.thick.lower.V = 205)")
    "HSV ranges: V 151..204 is in no class's range ('V upper' of thin ice = 150, 'V lower' of thick ice = 205)"
    """
    key, sep, rest = message.partition(": ")
    where = control_name(key) if sep else None
    if where is None and sep and key == "autolabel":
        where = "HSV ranges"
    text = f"{where}: {rest}" if where else message
    text = _ALLOW.sub(f"tick '{ALLOW_GAPS_LABEL}' (top of the HSV ranges tab) to show such "
                      f"pixels as {UNLABELLED_NAME} (magenta)", text)
    text = _BOUND_KEY.sub(lambda m: f"'{m[3]} {m[2]}' of {CLASS_NAMES[CLASS_VALUE[m[1]]]}", text)
    return _FILTER_KEY.sub(lambda m: f"'{FILTER_LABELS[m[1]]}'", text)


def metrics_html(pv: Mapping[str, Any], seconds: float) -> str:
    """The class fractions and agreement of one preview as an HTML table (13 px text; the
    unlabelled share in the palette's magenta)."""
    def head(c: str) -> str:
        colour = f";color:{_MAGENTA}" if c == UNLABELLED_NAME else ""
        return f"<th style='padding:0 6px{colour}'>{c.replace('_', ' ')}</th>"

    body = []
    for variant in VARIANTS:
        if variant not in pv["fractions"]:
            continue
        f = pv["fractions"][variant]
        ag = pv["agreement"].get(variant)
        cells = [(f"{100 * f[c]:.1f} %", c == UNLABELLED_NAME and f[c] > 0)
                 for c in FRACTION_COLUMNS]
        cells.append(("" if ag is None or np.isnan(ag) else f"{100 * ag:.1f} %", False))
        body.append(f"<tr><td style='padding:0 6px'><b>{variant}</b></td>" + "".join(
            f"<td style='padding:0 6px;text-align:right;white-space:nowrap"
            f"{f';color:{_MAGENTA};font-weight:bold' if hot else ''}'>{c}</td>"
            for c, hot in cells) + "</tr>")
    heads = "".join(head(c) for c in (*FRACTION_COLUMNS, "agreement"))
    return (f"<table style='font-size:13px;line-height:1.35'><tr><th></th>{heads}</tr>"
            f"{''.join(body)}</table><div style='font-size:12px'>{pv['n_pixels']:,} data pixels "
            f"of {html.escape(str(pv.get('name', '')))}; computed in {seconds:.2f} s</div>")
