"""Settings of the tuning stage: flat keys for the filter constants and HSV ranges, applying
them to a profile, warnings about the ranges, and writing the tuned profile.

Settings
--------
A *setting* is a flat key naming one value of a profile:

``filter.<key>``
    a filter constant: ``water_v_max``, ``dilation``, ``median_kernel``, ``truncation``,
    ``thick_threshold``, ``apply_to``;
``autolabel.<class>.<lower|upper>.<H|S|V>``
    one bound of a class's HSV range (class ``thick``, ``thin`` or ``water``);
``<section>.<key>``
    any other key of the profile (the whole value).

Note on the filter: with the filter on, the colour segmentation sees only the grey levels 0, 155
and 255, so the HSV ranges matter there only through which class each level falls in; the filter
constants (``water_v_max``, ``thick_threshold``, ...) decide the classes. :func:`threshold_warnings`
says when the ranges (allowed to by ``autolabel.allow_gaps``) leave colours unlabelled or overlap,
or map a level to an unexpected class.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seaice_utils.core.classes import (CLASS_CODES, CLASS_NAMES, DISPLAY_ORDER, RANGE_KEYS,
                                       UNLABELLED_NAME)
from seaice_utils.errors import ParamsError
from seaice_utils.labelling.autolabel import segment, threshold_problems
from seaice_utils.labelling.cloudfilter import (LEVEL_THICK, LEVEL_THIN, LEVEL_WATER,
                                                levels_to_rgb)
from seaice_utils.labelling.settings import thresholds
from seaice_utils.params import SCHEMA, dump_params, load_params_dict

__all__ = ["FILTER_KEYS", "CLASS_KEYS", "V_LINKS", "settings_of", "apply_settings",
           "threshold_warnings", "tuned_params_path", "write_tuned_params", "save_tuned_params"]

#: Filter constants the tuner exposes, in display order.
FILTER_KEYS = ("water_v_max", "dilation", "median_kernel", "truncation", "thick_threshold",
               "apply_to")
#: Classes of the ``autolabel`` section, in display order (``thick``, ``thin``, ``water``).
CLASS_KEYS = tuple(RANGE_KEYS[c] for c in DISPLAY_ORDER)
_CHANNELS = "HSV"
#: V bounds the tuner keeps adjacent while "link adjacent V bounds" is ticked: moving one moves
#: its partner to the neighbouring value, so the V ranges stay disjoint and cover 0..255.
V_LINKS = {"autolabel.thin.upper.V": ("autolabel.thick.lower.V", 1),
           "autolabel.thick.lower.V": ("autolabel.thin.upper.V", -1),
           "autolabel.water.upper.V": ("autolabel.thin.lower.V", 1),
           "autolabel.thin.lower.V": ("autolabel.water.upper.V", -1)}


def settings_of(params: dict) -> dict[str, Any]:
    """The tunable values of a profile as flat settings (filter constants, HSV bounds and
    ``autolabel.allow_gaps``).

    >>> from seaice_utils.params import defaults
    >>> s = settings_of(defaults())
    >>> s["filter.median_kernel"], s["autolabel.thin.upper.V"], s["autolabel.thick.lower.V"]
    (155, 204, 205)
    """
    out: dict[str, Any] = {f"filter.{k}": params["filter"][k] for k in FILTER_KEYS}
    out["autolabel.allow_gaps"] = bool(params["autolabel"]["allow_gaps"])
    for cls in CLASS_KEYS:
        for bound in ("lower", "upper"):
            for i, ch in enumerate(_CHANNELS):
                out[f"autolabel.{cls}.{bound}.{ch}"] = params["autolabel"][cls][bound][i]
    return out


def _plain(value: Any) -> Any:
    """numpy scalars and tuples from widgets -> plain Python for YAML and validation."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def apply_settings(params: dict, settings: Mapping[str, Any]) -> dict:
    """A copy of a profile with settings applied, validated like a params file.

    Parameters
    ----------
    params : dict
        A loaded profile (left unchanged).
    settings : mapping of str to value
        Flat keys (see the module docstring): ``"filter.thick_threshold": 200``,
        ``"autolabel.thin.upper.V": 210``, ``"autolabel.water": {"lower": [...], "upper": [...]}``.

    Returns
    -------
    dict
        The validated profile (defaults filled in).

    Raises
    ------
    ParamsError
        For an unknown key, or values the profile's rules reject (the message names the key),
        e.g. a lower bound above the upper one or an even median kernel.

    Examples
    --------
    >>> from seaice_utils.params import defaults
    >>> p = apply_settings(defaults(), {"autolabel.thin.upper.V": 220,
    ...                                 "autolabel.thick.lower.V": 221, "filter.dilation": 5})
    >>> p["autolabel"]["thin"]["upper"], p["filter"]["dilation"]
    ([185, 255, 220], 5)
    >>> apply_settings(defaults(), {"filter.median_kernel": 154})
    Traceback (most recent call last):
    ...
    seaice_utils.errors.ParamsError: filter.median_kernel: must be an integer in 3..255, odd (got 154)
    """
    new = copy.deepcopy(load_params_dict(params))
    for key, value in settings.items():
        parts = str(key).split(".")
        section = parts[0]
        if section not in SCHEMA or len(parts) < 2 or parts[1] not in SCHEMA[section]:
            raise ParamsError(f"{key}: unknown setting (use section.key, e.g. "
                              f"'filter.thick_threshold' or 'autolabel.thin.upper.V')")
        value = _plain(value)
        if len(parts) == 2:
            new[section][parts[1]] = value
            continue
        if section != "autolabel" or len(parts) > 4 or parts[2] not in ("lower", "upper") or (
                len(parts) == 4 and parts[3] not in _CHANNELS):
            raise ParamsError(f"{key}: unknown setting (HSV bounds are "
                              f"'autolabel.<class>.<lower|upper>[.<H|S|V>]')")
        rng = new[section][parts[1]]
        if len(parts) == 3:
            rng[parts[2]] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamsError(f"{key}: must be an integer (got {value!r})")
            rng[parts[2]] = list(rng[parts[2]])
            rng[parts[2]][_CHANNELS.index(parts[3])] = value
    return load_params_dict(new, source="tuning settings")


def threshold_warnings(params: dict) -> list[str]:
    """Things about a valid profile's HSV ranges that are legal but likely unintended.

    * gaps (colours in no class's range: their pixels come out *unlabelled*, code 254) and
      overlaps (the class painted last wins: water, then thin, then thick) -- a profile holds
      them only with ``autolabel.allow_gaps: true`` (without it they are errors); the messages
      are those of :func:`seaice_utils.labelling.autolabel.threshold_problems`;
    * filter levels 0 / 155 / 255 that the ranges do not label water / thin / thick (then the
      filtered auto-label is not what the filter decided).

    >>> from seaice_utils.params import defaults
    >>> threshold_warnings(defaults())
    []
    >>> p = apply_settings(defaults(), {"autolabel.thin.upper.V": 150,
    ...                                 "autolabel.allow_gaps": True})
    >>> threshold_warnings(p)  # doctest: +NORMALIZE_WHITESPACE
    ["V 151..204 is in no class's range (autolabel.thin.upper.V = 150,
      autolabel.thick.lower.V = 205)",
     'filter level 155 is labelled unlabelled, not thin ice']
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # said here instead
        th = thresholds(params)
    out = [p.message for p in threshold_problems(th)]
    levels = np.array([[LEVEL_WATER, LEVEL_THIN, LEVEL_THICK]], np.uint8)   # in code order
    got = segment(levels_to_rgb(levels), th)[0]
    for level, want, have in zip(levels[0], CLASS_CODES, got):
        if have != want:
            name = CLASS_NAMES.get(int(have), UNLABELLED_NAME)
            out.append(f"filter level {level} is labelled {name}, not {CLASS_NAMES[want]}")
    return out


# ----------------------------------------------------------------------------- params output
def tuned_params_path(params: dict, params_file: str | os.PathLike | None = None, *,
                      default: str | os.PathLike | None = None) -> Path | None:
    """Where ``tuning.write_params`` says to write the tuned profile.

    A relative path is taken relative to the folder of ``params_file`` (the profile that names
    it), or the working directory when no file is given. When the profile names no file,
    ``default`` is returned (None by default: write nothing).

    >>> from seaice_utils.params import defaults
    >>> p = defaults(); p["tuning"]["write_params"] = "tuned.yml"
    >>> tuned_params_path(p, "/data/project/params/quick.yml").as_posix()
    '/data/project/params/tuned.yml'
    """
    target = params["tuning"]["write_params"]
    if not target:
        return None if default is None else Path(default)
    p = Path(os.path.expanduser(target))
    if not p.is_absolute():
        p = (Path(params_file).resolve().parent if params_file else Path.cwd()) / p
    return p


def write_tuned_params(params: dict, path: str | os.PathLike) -> Path:
    """Write a full, valid profile (atomically) with ``tuning.write_params`` cleared, so that
    running with the written profile does not overwrite it. Returns the path."""
    out = copy.deepcopy(load_params_dict(params))
    out["tuning"]["write_params"] = None
    path = Path(path)
    if path.suffix.lower() not in (".yml", ".yaml"):
        raise ParamsError(f"tuning.write_params: a params file must end in .yml or .yaml "
                          f"(got {str(path)!r})")
    dump_params(out, path)
    return path


def save_tuned_params(params: dict, params_file: str | os.PathLike | None = None) -> Path | None:
    """Write ``params`` to :func:`tuned_params_path` when ``tuning.write_params`` is set.

    Returns the path written, or None when the profile asks for no file.
    """
    target = tuned_params_path(params, params_file)
    return None if target is None else write_tuned_params(params, target)

