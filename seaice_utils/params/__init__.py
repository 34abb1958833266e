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

import yaml

from seaice_utils.core.scenes import atomic_write_bytes
from seaice_utils.errors import ParamsError
from seaice_utils.labelling.autolabel import threshold_problems
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.params.schema import SCHEMA, Key
from seaice_utils.report import project_folder

__all__ = ["SCHEMA", "Key", "load_params", "load_params_dict", "parse_set", "defaults", "dump_params",
           "params_path", "project_folder", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a mapping that holds a key twice (at any depth).

    PyYAML keeps the last of two equal keys without a word, so a profile that sets
    ``filter.median_kernel`` twice would run with whichever came last. A key given by a merge
    (``<<: *base``) and then written out is an override, not a duplicate.
    """

    source_name = "<yaml>"   # the file (or --set) named by errors
    key_prefix = ""          # the key path of the document (a --set value's key)

    def construct_document(self, node):
        self._check_keys(node, self.key_prefix, set())
        return super().construct_document(node)

    def _check_keys(self, node, path: str, seen_nodes: set) -> None:
        if id(node) in seen_nodes:          # an alias of a node already checked (or a cycle)
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check_keys(item, f"{path}[{i}]", seen_nodes)
        elif isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    self._check_keys(value_node, path, seen_nodes)
                    continue
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                where = f"{path}.{name}" if path else str(name)
                key = self._key(key_node)
                if key is not None:
                    if key in first:
                        line = key_node.start_mark.line + 1
                        at = ("" if self.source_name == "--set" else
                              f", line {line} (first on line {first[key] + 1})")
                        raise ParamsError(f"{where}: key written twice in {self.source_name}{at}; "
                                          "give each key once")
                    first[key] = key_node.start_mark.line
                self._check_keys(value_node, where, seen_nodes)

    def _key(self, key_node):
        """The key as the loaded mapping holds it (``1`` and ``01`` are one key), None when it
        is not a scalar."""
        if not isinstance(key_node, yaml.ScalarNode):
            return None
        try:
            key = self.construct_object(key_node)
            hash(key)
        except Exception:           # a key PyYAML cannot read: compare it as written
            return (key_node.tag, key_node.value)
        return key


def _yaml_error_line(exc: yaml.YAMLError, source: str, text: str) -> str:
    """A YAML error as one line: where (line and column), what, and what was being read."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        msg = f"{source}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {what}" \
            if mark is not None else f"{source}: not valid YAML: {what}"
        if exc.problem and exc.context:
            cm = exc.context_mark
            msg += f" ({exc.context}" + (f" from line {cm.line + 1}, column {cm.column + 1}"
                                         if cm is not None else "") + ")"
        return msg
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        line = text[:exc.position].count("\n") + 1
        return (f"{source}, line {line}: not valid YAML: character #x{exc.character:04x} is not "
                f"allowed ({exc.reason})")
    return f"{source}: not valid YAML: {' '.join(str(exc).split())}"


def _load_yaml(text: str, source: str, prefix: str = "") -> Any:
    """:func:`read_yaml` leaving a YAML syntax error (:class:`yaml.YAMLError`) as it is."""
    loader = _StrictLoader(text)
    loader.source_name, loader.key_prefix = source, prefix
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(text: str, source: str = "<yaml>") -> Any:
    r"""YAML text as Python values (PyYAML's safe subset), refusing a key written twice.

    Raises
    ------
    ParamsError
        One line: invalid YAML (``source, line L, column C: not valid YAML: ...``) or a key
        written twice (``section.key: key written twice in source, line L (first on line F)``).

    >>> try:
    ...     read_yaml("filter:\n  median_kernel: 31\n  median_kernel: 33\n", "p.yml")
    ... except ParamsError as exc:
    ...     print(exc)
    filter.median_kernel: key written twice in p.yml, line 3 (first on line 2); give each key once
    """
    try:
        return _load_yaml(text, source)
    except yaml.YAMLError as exc:
        raise ParamsError(_yaml_error_line(exc, source, text)) from None


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


def _set_items(items: Sequence[str] | None) -> list[tuple[list[str], Any, str]]:
    """``--set`` items as (key path, value, the item) triples, in the order given."""
    out = []
    for item in items or ():
        name, eq, text = item.partition("=")
        path = [part.strip() for part in name.strip().split(".")]
        if not eq or len(path) < 2 or not all(path):
            raise ParamsError(f"--set takes section.key=value or section.key.item=value "
                              f"(got {item!r})")
        if not text.strip():
            value: Any = ""
        else:
            try:
                value = _load_yaml(text, "--set", ".".join(path))
            except yaml.YAMLError:
                value = text            # not YAML: the text as it is (a string)
        out.append((path, value, item))
    return out


def parse_set(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``--set section.key=value`` items as a profile fragment. Values are read as YAML
    (``true``, ``3``, ``null``, lists ``[1, 2]``, mappings ``{lower: [0, 0, 31], ...}``;
    anything that is not YAML is a string). A longer key path sets one item of a mapping key:
    ``autolabel.thin.upper=[185, 255, 204]``.

    >>> parse_set(["filter.median_kernel=31", "global.profile=my run", "data.folder=null"])
    {'filter': {'median_kernel': 31}, 'global': {'profile': 'my run'}, 'data': {'folder': None}}
    >>> parse_set(["autolabel.thin.upper=[185,255,204]"])
    {'autolabel': {'thin': {'upper': [185, 255, 204]}}}
    """
    out: dict[str, dict[str, Any]] = {}
    for path, value, _ in _set_items(items):
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


def _apply_set(raw: dict, items: Sequence[str]) -> None:
    """Apply ``--set`` items to a profile read from a file, in order. ``section.key=value``
    replaces the key; a longer path changes one item inside a mapping key (the file's value,
    else the default)."""
    for path, value, item in _set_items(items):
        section, key = path[0], path[1]
        if not isinstance(raw.get(section), dict):
            raw[section] = {}
        node = raw[section]
        for depth, part in enumerate(path[1:-1], start=1):
            if part not in node:
                default = SCHEMA.get(section, {}).get(key) if depth == 1 else None
                node[part] = copy.deepcopy(default.default) if default is not None else {}
            if not isinstance(node[part], dict):
                raise ParamsError(f"{'.'.join(path[:depth + 1])}: not a mapping, so --set "
                                  f"{item!r} cannot set an item in it "
                                  f"(it is {node[part]!r})")
            node = node[part]
        node[path[-1]] = value


def load_params(path: str | os.PathLike | None,
                overrides: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML profile; a bare name (``quick``) is looked up in ``params/``.

    ``path`` None means the defaults. ``overrides`` are ``section.key=value`` items (the command
    line's ``--set``, see :func:`parse_set`), applied over the file and validated with it: an
    unknown key or a bad value is a :class:`ParamsError` naming it. A key written twice in the
    file, or a file that is not YAML, is a :class:`ParamsError` naming the file and the line.
    """
    raw: Any = {}
    source = "the defaults"
    if path is not None:
        p = params_path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ParamsError(f"{p}: not a YAML profile (byte 0x{exc.object[exc.start]:02x} at "
                              f"offset {exc.start} is not UTF-8 text)") from None
        except OSError as exc:
            raise ParamsError(f"{p}: cannot be read ({exc.strerror or exc})") from None
        raw = read_yaml(text, str(p))
        source = str(p)
    if overrides:
        raw = copy.deepcopy(raw) if isinstance(raw, dict) else ({} if raw is None else raw)
        if isinstance(raw, dict):
            _apply_set(raw, overrides)
            source += " with --set"
    return load_params_dict(raw, source=source)


def dump_params(params: dict, path: str | os.PathLike) -> None:
    """Write a profile as YAML, atomically."""
    load_params_dict(params)  # never write an invalid profile
    atomic_write_bytes(path, yaml.safe_dump(params, sort_keys=False).encode())
