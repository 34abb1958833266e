"""The three sea-ice classes are defined once, in :mod:`seaice_utils.core.classes`.

Every other module derives class counts, codes, names, column keys and colours from it. The
scanner below reads the package's source (ast, not regular expressions) and lists, as
``file:line``, every place that spells a class out again:

* ``count``   a count or code list assigned a literal to a name like ``N_CLASSES``,
  ``n_classes``, ``KNOWN_CODES`` (assignments, parameter defaults, keyword arguments);
* ``name``    a string that is a class name or key (``"thick ice"``, ``"thin_ice"``,
  ``"unlabelled"``, ``"no data"``...) or that lists two class names (f-strings too; docstrings
  are prose and left out), or column keys made again from ``CLASS_NAMES`` (``.replace(" ", "_")``);
* ``colour``  a palette colour tuple of a class (black, no-data's colour, is too common to tell);
* ``codes``   a tuple, list or set enumerating class codes (``(WATER, THIN, THICK)``,
  ``[0, 1, 2, 255]``) or the profile's class keys (``("thick", "thin", "water")``);
* ``dict``    a dict pairing class codes with names, keys or colours, or keyed by class keys;
* ``range``   ``range(3)`` (or ``np.arange(3)``) in a statement about classes;
* ``literal`` a class-map code written as a number: a class map compared with or set to
  254 / 255 (or compared with 0 / 1 / 2), ``nodata=255`` passed to a call.

Band counts (``shape[2] == 3``), HSV triplets, masks set to 255 and the like are not classes and
are not flagged (see :func:`test_scanner_flags_class_literals_and_nothing_else`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from seaice_utils.core import classes as C

PKG = Path(__file__).resolve().parent.parent / "seaice_utils"
HOME = PKG / "core" / "classes.py"

_CODE_NAMES = {"WATER", "THIN", "THICK", "UNLABELLED", "NODATA"}
_COUNT_NAME = re.compile(r"^(n_?classes|num_classes|nclasses|class_count|\w*_codes)$", re.I)
_CLASS_MAP = re.compile(r"class|truth|label|pred", re.I)
_CLASS_WORD = re.compile(r"class|palette", re.I)


def _norm(s: str) -> str:
    return " ".join(s.lower().replace("_", " ").replace("-", " ").split())


#: Every spelling of a class the other modules must take from core.classes.
VOCABULARY = {_norm(s) for s in (*C.CLASS_NAMES.values(), *C.CLASS_KEYS.values(),
                                 C.UNLABELLED_NAME, C.NODATA_NAME, *C.CODE_DESCRIPTIONS.values())}
_NAMES = [_norm(s) for s in C.CLASS_NAMES.values()]
_RANGE_KEYS = set(C.RANGE_KEYS.values())
_COLOURS = {tuple(rgb) for rgb in C.PALETTE.values() if any(rgb)}
_MAP_CODES = set(C.MAP_CODES)
_SPECIAL = {C.NODATA, C.UNLABELLED}


def _int(node) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _int(node.operand)
        return None if v is None else -v
    return None


def _is_rgb(node) -> bool:
    """A display colour: three integers 0..255."""
    vals = [_int(e) for e in node.elts] if isinstance(node, (ast.Tuple, ast.List)) else []
    return len(vals) == 3 and all(v is not None and 0 <= v <= 255 for v in vals)


def _ident(node) -> str | None:
    """The name a value is known by: ``x`` of ``x``, ``x.classes``, ``x[i]``."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_code(node) -> bool:
    return _ident(node) in _CODE_NAMES and not isinstance(node, ast.Subscript)


def _is_literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return isinstance(node, ast.Call) and bool(node.args) and _is_literal(node.args[0])


def _docstrings(tree) -> set[int]:
    """ids of string constants that are statements (docstrings and attribute docstrings)."""
    return {id(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)}


def _parents(tree) -> dict[int, ast.AST]:
    return {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}


def _about_classes(node) -> bool:
    for n in ast.walk(node):
        name = _ident(n) if isinstance(n, (ast.Name, ast.Attribute)) else None
        if name and (name in _CODE_NAMES or _CLASS_WORD.search(name)):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and (
                _norm(n.value) in VOCABULARY):
            return True
    return False


def _context(node, parents) -> ast.AST:
    """The statement (a whole ``for`` loop) or comprehension a node belongs to."""
    while id(node) in parents:
        node = parents[id(node)]
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.stmt)):
            return node
    return node


def _count_targets(tree):
    """(name, value node) of assignments, parameter defaults and keyword arguments."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign):
            for t in n.targets:
                for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                    yield _ident(e), n.value
        elif isinstance(n, ast.AnnAssign) and n.value is not None:
            yield _ident(n.target), n.value
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = n.args
            pos = a.posonlyargs + a.args
            for arg, d in zip(pos[len(pos) - len(a.defaults):], a.defaults):
                yield arg.arg, d
            for arg, d in zip(a.kwonlyargs, a.kw_defaults):
                if d is not None:
                    yield arg.arg, d
        elif isinstance(n, ast.Call):
            for k in n.keywords:
                yield k.arg, k.value


def scan_source(source: str) -> list[tuple[int, str, str]]:
    """(line, rule, what) of every class literal in one module's source."""
    tree = ast.parse(source)
    docs, parents, hits = _docstrings(tree), _parents(tree), []

    def hit(node, rule, what):
        hits.append((node.lineno, rule, what))

    for name, value in _count_targets(tree):
        if name and _COUNT_NAME.match(name) and _is_literal(value):
            hit(value, "count", f"{name} = {ast.unparse(value)}")
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            s = _norm(n.value)
            if s in VOCABULARY or sum(bool(re.search(rf"\b{w}\b", s)) for w in _NAMES) >= 2:
                hit(n, "name", repr(n.value))
        elif isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            ints = [_int(e) for e in n.elts]
            strs = [e.value for e in n.elts if isinstance(e, ast.Constant)
                    and isinstance(e.value, str)]
            if len(ints) == 3 and tuple(ints) in _COLOURS:
                hit(n, "colour", ast.unparse(n))
            elif (sum(map(_is_code, n.elts)) >= 2 or sum(s in _RANGE_KEYS for s in strs) >= 2
                  or (None not in ints and {0, 1, 2} <= set(ints) <= _MAP_CODES
                      and set(ints) & _SPECIAL)):
                hit(n, "codes", ast.unparse(n))
        elif isinstance(n, ast.Dict):
            pairs = sum(1 for k, v in zip(n.keys, n.values) if k is not None and any(
                _is_code(a) and (isinstance(b, ast.Constant) and isinstance(b.value, str)
                                 or _is_rgb(b)) for a, b in ((k, v), (v, k))))
            keys = sum(isinstance(k, ast.Constant) and k.value in _RANGE_KEYS for k in n.keys)
            if pairs >= 2 or keys >= 2:
                hit(n, "dict", ast.unparse(n)[:70])
        elif isinstance(n, ast.Call):
            f = _ident(n.func)
            if (f in ("range", "arange") and len(n.args) == 1 and _int(n.args[0]) == C.N_CLASSES
                    and _about_classes(_context(n, parents))):
                hit(n, "range", ast.unparse(n))
            if (isinstance(n.func, ast.Attribute) and n.func.attr == "replace"
                    and [ast.literal_eval(a) if _is_literal(a) else None for a in n.args]
                    == [" ", "_"] and "CLASS_NAMES" in ast.unparse(_context(n, parents))):
                hit(n, "name", f"{ast.unparse(n)}: CLASS_KEYS made again")
            for k in n.keywords:
                if k.arg == "nodata" and _int(k.value) in _SPECIAL:
                    hit(k.value, "literal", f"nodata={_int(k.value)}")
        elif isinstance(n, ast.JoinedStr):
            shown = [v.value.value for v in n.values if isinstance(v, ast.FormattedValue)
                     and isinstance(v.value, ast.Constant) and isinstance(v.value.value, str)]
            if sum(w in _RANGE_KEYS or _norm(w) in VOCABULARY for w in shown) >= 2:
                hit(n, "name", ast.unparse(n)[:70])
        elif isinstance(n, ast.Compare):
            sides = [n.left, *n.comparators]
            equality = all(isinstance(op, (ast.Eq, ast.NotEq)) for op in n.ops)
            codes = [_int(s) for s in sides if _int(s) in (_MAP_CODES if equality else _SPECIAL)]
            maps = [s for s in sides if _int(s) is None and _CLASS_MAP.search(_ident(s) or "")]
            if codes and maps:
                hit(n, "literal", ast.unparse(n))
        elif isinstance(n, (ast.Assign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            vals = [n.value, *(n.value.args if isinstance(n.value, ast.Call) else [])]
            if (any(_CLASS_MAP.search(_ident(t) or "") for t in targets)
                    and any(_int(v) in _SPECIAL for v in vals)):
                hit(n, "literal", ast.unparse(n)[:70])
    return sorted(set(hits))


def scan_package() -> list[str]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        if path == HOME:
            continue
        rel = path.relative_to(PKG.parent).as_posix()
        out += [f"{rel}:{line}: {rule}: {what}"
                for line, rule, what in scan_source(path.read_text(encoding="utf-8"))]
    return out


def test_no_module_spells_the_classes_out_again():
    hits = scan_package()
    assert not hits, (f"{len(hits)} class literal(s) outside seaice_utils/core/classes.py; "
                      "derive them from it:\n" + "\n".join(hits))


_SAMPLE = '''\
"""Docstring: 0 open water, 1 thin ice, 2 thick ice, 255 no data (prose is fine)."""
import numpy as np
N_CLASSES = 3                                               # hit 3
def build(n_classes: int = 3, channels=3):                  # hit 4
    return make(n_classes=3, bands=3)                       # hit 5
KNOWN_CODES = np.array([0, 1, 2, 255], np.uint8)            # hit 6
names = {0: "open water", 1: "thin ice"}                    # hit 7
cols = ("open_water", "thin_ice", "thick_ice")              # hit 8
RED = (255, 0, 0)                                           # hit 9
ORDER = (THICK, THIN, WATER)                                # hit 10
KEYS = {WATER: "water", THIN: "thin", THICK: "thick"}       # hit 11
VALUE = {"thick": C.THICK, "thin": C.THIN}                  # hit 12
per_class = {CLASS_NAMES[k]: 1 for k in range(3)}           # hit 13
valid = truth != 255                                        # hit 14
classes[nodata] = 254                                       # hit 15
write(classes, nodata=255)                                  # hit 16
msg = f"{n} classes (open water, thin ice, thick ice)"      # hit 17
ok = ("thick", "thin", "water")                             # hit 18
head = f"{'date':<10} {'thick':>9} {'thin':>9}"             # hit 19
COLOURS = {WATER: (0, 200, 0), THIN: [0, 0, 200]}           # hit 20
keys = {c: n.replace(" ", "_") for c, n in CLASS_NAMES.items()}  # hit 21
rgb = np.zeros((h, w, 3), np.uint8); assert img.shape[2] == 3
merged = cv2.merge([mask(c, ch) for ch in range(3)])
hsv = [(lo[i], min(hi[i], 179)) for i in range(3)]
lower, black, white = [0, 0, 0], (0, 0, 0), (255, 255, 255)
water[nodata] = 255; mask = grey > 254; n = len(labels) == 2; x = labels.ndim == 2
steps = {"water": a, "norm2": b}; key = params["autolabel"]["thin"]
axes = arr.transpose(0, 1, 2); level = [0, 155, 255]; both = {WATER: THIN}
by_code = {c: CLASS_NAMES[c] for c in CLASS_CODES}; n_classes = N_CLASSES
ticks = [CLASS_NAMES[c].replace(" ", "\\n") for c in ORDER]; f = name.replace(" ", "_")
ok = predicted > 0; ok = preds[0] < 2; REFL = {THICK: (218.0, 226.0, 234.0), THIN: (9.0, 1.0, 2.0)}
'''


def test_scanner_flags_class_literals_and_nothing_else():
    hits = scan_source(_SAMPLE)
    assert sorted({line for line, _, _ in hits}) == list(range(3, 22)), hits
    rules = {line: rule for line, rule, _ in hits}
    assert (rules[3], rules[7], rules[9], rules[10], rules[11], rules[13], rules[14]) == (
        "count", "name", "colour", "codes", "dict", "range", "literal")


# -- the single home, and what derives from it ------------------------------------------------

def test_classes_module_is_consistent():
    assert C.CLASS_CODES == (C.WATER, C.THIN, C.THICK) == tuple(range(C.N_CLASSES))
    assert C.N_CLASSES == len(C.CLASS_NAMES) == len(C.CLASS_KEYS) == len(C.RANGE_KEYS)
    assert list(C.CLASS_KEYS.values()) == ["open_water", "thin_ice", "thick_ice"]
    assert C.PREDICTED_CODES == (0, 1, 2, 255) and C.MAP_CODES == (0, 1, 2, 254, 255)
    assert tuple(C.PALETTE) == C.MAP_CODES == tuple(C.CODE_DESCRIPTIONS)
    assert sorted(C.DISPLAY_ORDER) == list(C.CLASS_CODES)
    assert C.codes_text() == ("0 open water, 1 thin ice, 2 thick ice, 254 unlabelled/cloud, "
                              "255 no data")
    assert np.isin(C.PREDICTED_CODES, C.MAP_CODES).all() and C.UNLABELLED not in C.PREDICTED_CODES


def test_other_modules_derive_from_it():
    from seaice_utils.core import figures, metrics
    from seaice_utils.labelling.autolabel import Thresholds
    from seaice_utils.training.unet import UNetConfig, count_unet_params, unet_config
    from seaice_utils.tuning.previews import FRACTION_COLUMNS
    from seaice_utils.tuning.settings import CLASS_KEYS as TUNER_KEYS

    assert metrics.N_CLASSES is C.N_CLASSES
    assert UNetConfig().n_classes == unet_config().n_classes == C.N_CLASSES
    assert count_unet_params(depth=1, base_filters=2) - count_unet_params(
        depth=1, base_filters=2, n_classes=C.N_CLASSES - 1) == 2 + 1   # one more 1x1 output map
    assert figures.CLASS_ORDER == C.DISPLAY_ORDER
    assert list(FRACTION_COLUMNS) == [*C.CLASS_KEYS.values(), C.UNLABELLED_NAME]
    assert TUNER_KEYS == ("thick", "thin", "water")
    t = Thresholds()
    assert list(t.ranges()) == list(C.CLASS_CODES) and list(t.to_dict()) == list(TUNER_KEYS)
    rep = metrics.classification_report(np.array([0, 1, 2, 255]), np.array([0, 1, 2, 2]))
    assert list(rep["per_class"]) == list(C.CLASS_NAMES.values())


def test_class_cog_names_every_code_and_reads_back():
    pytest.importorskip("rasterio")
    from rasterio.io import MemoryFile

    from seaice_utils.core.geotiff import class_map_cog

    classes = np.array(C.MAP_CODES * 4, np.uint8).reshape(4, 5)
    data = class_map_cog(classes, crs="EPSG:3031", transform=(20, 0, -4e5, 0, -20, -1.3e6))
    with MemoryFile(data) as mem, mem.open() as src:
        assert src.driver == "GTiff" and src.nodata == C.NODATA
        np.testing.assert_array_equal(src.read(1), classes)
        desc, tag = src.descriptions[0], src.tags(1)["classes"]
        for code, meaning in C.CODE_DESCRIPTIONS.items():
            assert f"{code} {meaning}" in desc and f"{code} {meaning}" in tag
            assert src.colormap(1)[code][:3] == C.PALETTE[code]
        assert "254 unlabelled/cloud" in desc
