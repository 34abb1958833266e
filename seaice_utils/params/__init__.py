"""Run parameters: YAML profiles under ``params/``, validated on load.

A profile is a mapping of sections (``global`` shared by all notebooks, then one group per stage).
Every key is declared in :data:`SCHEMA` with its type, allowed values and default; a profile only
needs to state what differs from the defaults. An unknown key, a value of the wrong type or an
impossible value raises :class:`~seaice_utils.errors.ParamsError` naming the key, e.g.
``filter.median_kernel: must be an integer in 3..255, odd (got 154)``.

Sizes have upper bounds, so that a typo fails here, not minutes into a run:

==========================  ===========  =====================================================
key                         range        why
==========================  ===========  =====================================================
filter.median_kernel        3..255, odd  OpenCV's 8-bit median counts its ksize x ksize window
                                         in 16-bit histogram buckets: 255 x 255 = 65025 fits
                                         (see :data:`~seaice_utils.labelling.kernels.MEDIAN_KERNEL_MAX`)
filter.dilation             1..255       no wider than the median window it prepares
global.tile_size            32..4096     multiple of 32 (the U-Net's 5 poolings); a 4096 px
                                         window is already twice the paper's whole scene
data.scene_size,            64..8192     synthetic scenes and collected windows are held in
collect.scene_px                         memory whole (8192 x 8192 RGB: 200 MB per layer)
tuning.preview_size         64..4096     the tuner recomputes the preview on every slider move
inference.overlap           0..1024      and below global.tile_size (the window stride is
                                         tile_size - overlap)
evaluation.ssim_window      3..255, odd  and at most global.tile_size (SSIM runs per tile)
inference.batch_size,       1..1024      windows / tiles per model call or step
training.batch_size
training.base_filters       1..128       filters double per U-Net step: 128 gives a
                                         bottleneck of 4096 filters (~500 M weights)
training.shuffle_buffer     1..1000000   tiles held in memory for shuffling
engines.spark_batch_size    1..4096      files per Arrow batch of a Spark task
collect.scale,              (0, 1000]    metres per pixel (Sentinel-2: 10, 20, 60)
inference.pixel_size_m
season.n_dates              12..20       what :func:`~seaice_utils.data.season.make_season`
                                         draws (one to three scenes per date)
season.size                 128..2048    side of the synthetic season's region, held whole
season.pixel_m              [10, 1000]   metres per pixel of the season grid
season.cloud_probability    1..100       percent; cloud-mask pixels at or above it are cloud
==========================  ===========  =====================================================

Cross-key checks follow the single keys: the HSV ranges of ``autolabel`` must not leave gaps,
overlap or be out of order (gaps and overlaps are allowed with ``autolabel.allow_gaps: true``;
see :func:`seaice_utils.labelling.settings.thresholds`), ``filter.water_v_max`` must be below
``filter.thick_threshold``, and the two size relations above.

>>> p = load_params_dict({"filter": {"median_kernel": 31}})
>>> p["filter"]["median_kernel"], p["filter"]["dilation"]
(31, 7)
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

from seaice_utils.errors import ParamsError
from seaice_utils.labelling.autolabel import threshold_problems
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.params.schema import SCHEMA, Key

__all__ = ["SCHEMA", "Key", "load_params", "load_params_dict", "parse_set", "defaults", "dump_params",
           "params_path", "project_folder"]


def project_folder(name: str, start: str | os.PathLike | None = None) -> Path | None:
    """The project's ``name`` folder (``params``, ``notebooks``): in ``start`` (default: the
    working directory) or the nearest folder above it that has one; None if there is none.

    The compendium is run from its project folder (``make``, ``seaice reproduce``), so this finds
    the profiles and notebooks of that checkout, not of wherever the package is installed.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / name).is_dir():
            return folder / name
    return None

def defaults() -> dict[str, dict[str, Any]]:
    """A complete profile holding every default."""
    return {s: {k: copy.deepcopy(key.default) for k, key in keys.items()} for s, keys in SCHEMA.items()}


def _type_name(types: tuple) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "boolean", list: "list",
             dict: "mapping", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_value(section: str, name: str, key: Key, value: Any) -> Any:
    where = f"{section}.{name}"
    ok_type = isinstance(value, key.types) and not (isinstance(value, bool) and bool not in key.types)
    if not ok_type:
        raise ParamsError(f"{where}: must be {_type_name(key.types)} (got {value!r})")
    if key.check is not None and value is not None and not key.check(value):
        raise ParamsError(f"{where}: must be {key.rule} (got {value!r})")
    return value


def load_params_dict(raw: dict | None, *, source: str = "<dict>") -> dict[str, dict[str, Any]]:
    """Validate a profile given as a dict and merge it over the defaults."""
    out = defaults()
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: a params file must be a mapping of sections (got "
                          f"{type(raw).__name__})")
    for section, values in raw.items():
        if section not in SCHEMA:
            raise ParamsError(f"{section}: unknown section in {source} (known: "
                              f"{', '.join(SCHEMA)})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ParamsError(f"{section}: must be a mapping of keys (got {values!r})")
        for name, value in values.items():
            if name not in SCHEMA[section]:
                raise ParamsError(f"{section}.{name}: unknown key in {source} (known in {section}: "
                                  f"{', '.join(SCHEMA[section])})")
            out[section][name] = _check_value(section, name, SCHEMA[section][name], value)
    _check_cross_keys(out)
    return out


def _check_cross_keys(p: dict[str, dict[str, Any]]) -> None:
    """Checks that involve more than one key (single keys are valid already)."""
    filter_params(p)         # filter.water_v_max < filter.thick_threshold
    th = thresholds(p)       # gaps, overlaps, order of the HSV ranges
    for problem in threshold_problems(th):   # only gaps and overlaps that allow_gaps allows
        warnings.warn(f"autolabel: {problem.message} (allowed by autolabel.allow_gaps)",
                      UserWarning, stacklevel=3)
    tile = p["global"]["tile_size"]
    if p["inference"]["overlap"] >= tile:
        raise ParamsError(f"inference.overlap: must be below global.tile_size ({tile}) (got "
                          f"{p['inference']['overlap']}; windows advance by tile_size - overlap)")
    if p["evaluation"]["ssim_window"] > tile:
        raise ParamsError(f"evaluation.ssim_window: must be at most global.tile_size ({tile}) "
                          f"(got {p['evaluation']['ssim_window']}; SSIM is computed per tile)")


def params_path(path: str | os.PathLike) -> Path:
    """The file a profile argument names: a path, or a bare name (``quick``) in ``params/``."""
    p = Path(path)
    if not p.suffix and not p.exists():
        folder = project_folder("params")
        if folder is None:
            raise ParamsError(f"params file not found: {path} (a bare profile name is looked up "
                              "in params/ of the working directory or a folder above it)")
        p = folder / f"{p.name}.yml"
    if not p.is_file():
        raise ParamsError(f"params file not found: {path}")
    return p.resolve()


def parse_set(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``--set section.key=value`` items as a profile fragment (values read as YAML scalars or
    lists: ``true``, ``3``, ``null``, ``[1, 2]``; anything else is a string).

    >>> parse_set(["filter.median_kernel=31", "global.profile=my run", "data.folder=null"])
    {'filter': {'median_kernel': 31}, 'global': {'profile': 'my run'}, 'data': {'folder': None}}
    """
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not eq or not dot or not section or not key or "." in key:
            raise ParamsError(f"--set takes section.key=value (got {item!r})")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        out.setdefault(section, {})[key] = value
    return out


def load_params(path: str | os.PathLike | None,
                overrides: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML profile; a bare name (``quick``) is looked up in ``params/``.

    ``path`` None means the defaults. ``overrides`` are ``section.key=value`` items (the command
    line's ``--set``), applied over the file and validated with it: an unknown key or a bad value
    is a :class:`ParamsError` naming it.
    """
    import yaml

    raw: dict = {}
    source = "the defaults"
    if path is not None:
        p = params_path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ParamsError(f"{p}: not valid YAML ({exc})") from exc
        source = str(p)
    if overrides:
        raw = copy.deepcopy(raw) if isinstance(raw, dict) else ({} if raw is None else raw)
        if isinstance(raw, dict):
            for section, values in parse_set(overrides).items():
                if not isinstance(raw.get(section), dict):
                    raw[section] = {}
                raw[section].update(values)
            source += " with --set"
    return load_params_dict(raw, source=source)


def dump_params(params: dict, path: str | os.PathLike) -> None:
    """Write a profile as YAML, atomically."""
    import yaml

    from seaice_utils.core.scenes import atomic_write_bytes

    load_params_dict(params)  # never write an invalid profile
    atomic_write_bytes(path, yaml.safe_dump(params, sort_keys=False).encode())
