"""The helper package stays shallow and one-way.

Every import in ``seaice_utils`` is read from the source, those inside functions included, and
checked against the layer order below: a module may import its own stage and the stages below it,
never one above it, and the module graph has no circle. Importing ``a.b.c`` also runs the
``__init__`` of ``a.b``, so that counts as an import of ``a.b`` (except from inside ``a.b``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "seaice_utils"

#: Each top-level unit of the package and its layer; imports go to a strictly lower layer or
#: stay inside the unit.
LAYERS = {
    "errors": 0, "paper": 0,
    "core": 1,
    "report": 2, "notebooks": 2,
    "engines": 3,
    "labelling": 4,
    "params": 5,           # the schema validates with the stages' typed settings
    "data": 5,
    "collect": 6, "tuning": 6, "timing": 6, "training": 6,
    "inference": 7,
    "evaluation": 8, "verify": 8,   # verify compares runs; the runner records its digests
    "season": 8,
    "runner": 9,
    "cli": 10,
    "__main__": 11,
}
MAX_LINES = 600


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = _modules()


def _package_of(name: str) -> str:
    path = MODULES[name]
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(importer: str, node: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) pairs of one import statement, ours only."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.split(".")[0] == "seaice_utils":
                out.append((a.name, []))
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = _package_of(importer).split(".")
            base = base[:len(base) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        if mod.split(".")[0] != "seaice_utils":
            return out
        for a in node.names:
            sub = f"{mod}.{a.name}"
            if sub in MODULES:
                out.append((sub, []))
            else:
                out.append((mod, [a.name]))
    return out


def _imports() -> dict[str, list[tuple[str, list[str], int]]]:
    edges: dict[str, list[tuple[str, list[str], int]]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for mod, names in _resolve(name, node):
                    found.append((mod, names, node.lineno))
        edges[name] = found
    return edges


IMPORTS = _imports()


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for src, found in IMPORTS.items():
        own_pkg = _package_of(src)
        for mod, _, _ in found:
            parts = mod.split(".")
            for i in range(2, len(parts) + 1):     # the module and the packages it runs
                target = ".".join(parts[:i])
                if target not in MODULES or target == src:
                    continue
                is_parent_pkg = i < len(parts)
                if is_parent_pkg and (own_pkg == target or own_pkg.startswith(target + ".")):
                    continue                         # already running inside that package
                graph[src].add(target)
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in MODULES} - {""}
    assert units <= set(LAYERS), f"give these a layer: {sorted(units - set(LAYERS))}"


def test_imports_only_go_down():
    wrong = []
    for src, found in IMPORTS.items():
        su = _unit(src)
        for mod, _, line in found:
            tu = _unit(mod)
            if not tu or tu == su:
                continue
            if not LAYERS[tu] < LAYERS[su]:
                wrong.append(f"{src}:{line} imports {mod} ({su} layer {LAYERS[su]} -> "
                             f"{tu} layer {LAYERS[tu]})")
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_private_names_across_modules():
    wrong = []
    for src, found in IMPORTS.items():
        for mod, names, line in found:
            if mod == src:
                continue
            wrong += [f"{src}:{line} imports {n} from {mod}" for n in names
                      if n.startswith("_") and not n.startswith("__")]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_short_enough_to_read(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[name]} has {n} lines (at most {MAX_LINES})"


def test_no_checkout_path_arithmetic_or_test_hooks():
    wrong = []
    for name, path in MODULES.items():
        text = path.read_text()
        if re.search(r"__file__\)?\.(resolve\(\)\.)?parent\.parent|__file__\)?\.parents\[", text):
            wrong.append(f"{name}: finds the checkout from __file__")
        if "PROJECT_ROOT" in text:
            wrong.append(f"{name}: PROJECT_ROOT")
        if re.search(r"fail_once|SEAICE_\w*FAIL|injected (task )?failure", text):
            wrong.append(f"{name}: a failure-injection hook for tests")
    assert not wrong, "\n".join(wrong)


def test_one_command_line_and_no_benchmarks_in_the_package():
    mains = [n for n, p in MODULES.items()
             if re.search(r"^def main\(", p.read_text(), re.M) and n != "seaice_utils.cli"]
    assert mains == []
    assert not [p for p in PKG.rglob("bench*.py")]


def _function_level_imports(name: str) -> list[tuple[int, str]]:
    """(line, source) of each import of ``seaice_utils`` made inside a function of ``name``."""
    path = MODULES[name]
    lines = path.read_text().splitlines()
    out = []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)) \
                    and _resolve(name, child):
                out.append((child.lineno, "\n".join(lines[child.lineno - 1:child.end_lineno])))
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                          ast.Lambda)))

    walk(ast.parse("\n".join(lines), filename=str(path)), False)
    return out


def test_own_modules_are_imported_at_module_level():
    """An import of the package's own modules inside a function hides a dependency; the few that
    must stay there (a closure shipped to Spark executors, say) say why: ``# deferred: why``."""
    hidden = [f"{name}:{line}: {src.strip()}" for name in MODULES
              for line, src in _function_level_imports(name) if "# deferred:" not in src]
    assert not hidden, "move these to the top of the module (or say why not):\n" + "\n".join(hidden)
