"""The package installs as declared.

Every import of ``seaice_utils`` is read from the source with :mod:`ast` (those inside functions
included) and must be declared in ``pyproject.toml``: the core ``dependencies`` when a module
imports it at module level, else core or an extra. Every requirement there must hold its exact pin
in ``requirements*.txt`` (the one place versions are pinned), ``[all]`` must hold every extra, and
``requirements.lock`` (the full resolved set ``make venv`` installs) must agree with the pins.
Horovod is the documented separate build (``requirements-horovod.txt``), not an extra.
``CITATION.cff`` and ``LICENSE`` must agree with ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "seaice_utils"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
NAME = canonicalize_name(PROJECT["name"])
PIN_FILES = ("requirements-build.txt", "requirements.txt")
HOROVOD_FILE = "requirements-horovod.txt"
#: The import of this (top-level) name is the separate Horovod build, not a pyproject requirement.
SEPARATE_BUILD = {"horovod": HOROVOD_FILE}
#: Import name (a dotted prefix; the longest one wins) -> the distribution that provides it, where
#: the two differ after canonicalisation.
IMPORT_TO_DIST = {
    "cv2": "opencv-python-headless",
    "yaml": "PyYAML",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "ee": "earthengine-api",
    "google.auth": "google-auth",
    "PIL": "pillow",
    "pystac_client": "pystac-client",
    "tensorflow": "tensorflow-cpu",
    "jupyter_client": "jupyter-client",
    "IPython": "ipython",
}
#: Extras a user picks from (README); ``all`` is every other one.
EXTRAS = {"geo", "collect", "spark", "ml", "notebooks", "test", "all"}
#: Imports seaice_utils certainly makes (a scanner that misses them is broken).
KNOWN_IMPORTS = {"numpy", "cv2", "yaml", "tqdm", "tensorflow", "horovod", "pyspark", "pandas",
                 "rasterio", "ee", "pystac_client", "skimage", "matplotlib", "papermill",
                 "ipywidgets"}
#: ... and makes only inside functions (so that every module imports with the core alone).
KNOWN_FUNCTION_LEVEL = {"tensorflow", "horovod", "pyspark", "rasterio", "ee", "papermill"}


# --- reading imports ----------------------------------------------------------------------------

def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(source: str) -> list[tuple[str, bool]]:
    """(absolute module name, at module level?) of every import statement in ``source``.

    Counts ``import``/``from ... import`` anywhere (functions, classes, ``try``), and
    ``importlib.import_module``/``__import__``/``pytest.importorskip`` calls with a literal name.
    Relative imports and ``if TYPE_CHECKING:`` blocks (never run) are left out. "Module level"
    means run on import: not inside a function or lambda.
    """
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit_one(sub, top)
                continue
            visit_one(child, top)

    def visit_one(node: ast.AST, top: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name, top) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.module, top))
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            arg = node.args[0]
            if (fname in ("import_module", "__import__", "importorskip")
                    and isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                found.append((arg.value, top))
        inner = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        visit(node, inner)

    visit(ast.parse(source), True)
    return found


def third_party(name: str, local: set[str] = frozenset()) -> bool:
    top = name.split(".")[0]
    return not (top in sys.stdlib_module_names or top == "seaice_utils" or top in local)


def distribution(name: str) -> str:
    """The canonical distribution name an import of ``name`` needs (dotted prefixes mapped)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in IMPORT_TO_DIST:
            return canonicalize_name(IMPORT_TO_DIST[prefix])
    return canonicalize_name(parts[0])


def package_imports() -> dict[str, list[tuple[str, bool]]]:
    """Module path (relative to the root) -> its third-party imports."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        found = [(n, top) for n, top in imports(path.read_text()) if third_party(n)]
        out[path.relative_to(ROOT).as_posix()] = found
    return out


# --- reading requirements -----------------------------------------------------------------------

def read_pins(*files: str) -> dict[str, str]:
    """Canonical name -> exact version of every ``name==version`` line of ``files``."""
    pins: dict[str, str] = {}
    for f in files:
        for raw in (ROOT / f).read_text().splitlines():
            line = raw.split("#")[0].strip()
            if not line:
                continue
            req = Requirement(line)
            spec = list(req.specifier)
            assert len(spec) == 1 and spec[0].operator == "==", f"{f}: {raw!r} is not an exact pin"
            name = canonicalize_name(req.name)
            assert name not in pins, f"{req.name} is pinned twice"
            pins[name] = spec[0].version
    return pins


def self_extras(req: Requirement) -> set[str]:
    return set(req.extras) if canonicalize_name(req.name) == NAME else set()


def requirements(group: str | None = None) -> list[Requirement]:
    """The core ``dependencies`` (group None) or one extra's requirements, as written."""
    if group is None:
        return [Requirement(r) for r in PROJECT["dependencies"]]
    return [Requirement(r) for r in PROJECT["optional-dependencies"][group]]


def expanded(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Canonical names an extra installs, following ``seaice-utils[...]`` references."""
    names = set()
    for req in requirements(group):
        if canonicalize_name(req.name) == NAME:
            for extra in set(req.extras) - seen - {group}:
                names |= expanded(extra, seen | {group})
        else:
            names.add(canonicalize_name(req.name))
    return names


def core() -> set[str]:
    return {canonicalize_name(r.name) for r in requirements()}


def declared() -> set[str]:
    """Everything ``pip install -e ".[all]"`` asks for by name (core and every extra)."""
    names = core()
    for group in PROJECT["optional-dependencies"]:
        names |= expanded(group)
    return names


def read_lock() -> dict[str, str]:
    lock: dict[str, str] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, sep, version = raw.partition("==")
        assert sep and name.strip() == name and version.strip() == version and version, \
            f"requirements.lock: {raw!r} is not name==version"
        key = canonicalize_name(name)
        assert key not in lock, f"requirements.lock: {name} twice"
        lock[key] = version
    return lock


# --- the scanner itself -------------------------------------------------------------------------

def test_scanner_reads_module_level_and_function_level_imports():
    src = (
        "import os, numpy as np\n"
        "from cv2 import imread\n"
        "from . import sibling\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pandas\n"
        "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n"
        "class C:\n    import tqdm\n"
        "    def m(self):\n        from tensorflow import keras\n"
        "def f():\n"
        "    import importlib\n"
        "    def g():\n        import horovod.tensorflow as hvd\n"
        "    return importlib.import_module('pyspark.sql')\n"
    )
    got = imports(src)
    assert sorted(got) == sorted([
        ("os", True), ("numpy", True), ("cv2", True), ("typing", True), ("yaml", True),
        ("tqdm", True), ("tensorflow", False), ("importlib", False), ("horovod.tensorflow", False),
        ("pyspark.sql", False)])
    assert [n for n, _ in got if third_party(n)] == [
        "numpy", "cv2", "yaml", "tqdm", "tensorflow", "horovod.tensorflow", "pyspark.sql"]
    assert distribution("cv2.typing") == "opencv-python-headless"
    assert distribution("google.auth.transport") == "google-auth"
    assert distribution("yaml") == "pyyaml"
    assert distribution("numpy.typing") == "numpy"


def test_the_scan_finds_the_imports_seaice_utils_is_known_to_make():
    found = package_imports()
    assert len(found) >= 30
    tops = {n.split(".")[0] for imps in found.values() for n, _ in imps}
    assert KNOWN_IMPORTS <= tops, f"not found: {sorted(KNOWN_IMPORTS - tops)}"
    module_level = {n.split(".")[0] for imps in found.values() for n, top in imps if top}
    function_level = {n.split(".")[0] for imps in found.values() for n, top in imps if not top}
    assert {"numpy", "cv2"} <= module_level
    assert KNOWN_FUNCTION_LEVEL <= function_level


# --- pyproject declares what the package imports ------------------------------------------------

def test_every_third_party_import_of_seaice_utils_is_declared():
    names = declared()
    missing = []
    for module, imps in package_imports().items():
        for name, _ in imps:
            top = name.split(".")[0]
            if top in SEPARATE_BUILD:
                continue                   # checked in test_horovod_is_the_separate_build
            if distribution(name) not in names:
                missing.append(f"{module}: import {name} needs {distribution(name)}")
    assert not missing, ("add these distributions to pyproject.toml (core or an extra) and pin "
                         "them in requirements.txt, or map the import in IMPORT_TO_DIST:\n"
                         + "\n".join(missing))


def test_module_level_imports_need_only_the_core_dependencies():
    """Every module imports with the core alone; extras are imported inside functions."""
    base = core()
    heavy = []
    for module, imps in package_imports().items():
        for name, top in imps:
            if top and distribution(name) not in base:
                heavy.append(f"{module}: import {name} ({distribution(name)}) at module level")
    assert not heavy, ("import these inside the functions that use them, or make them core "
                       "dependencies:\n" + "\n".join(heavy))


def test_horovod_is_the_separate_build():
    """Horovod: imported inside functions only, pinned in its own file, built by the Makefile."""
    hvd = [(m, n, top) for m, imps in package_imports().items() for n, top in imps
           if n.split(".")[0] == "horovod"]
    assert hvd, "seaice_utils is known to import horovod (training/worker.py)"
    assert not [h for h in hvd if h[2]], f"horovod imported at module level: {hvd}"
    pins = read_pins(HOROVOD_FILE)
    assert list(pins) == ["horovod"]
    assert "horovod" not in declared()
    makefile = (ROOT / "Makefile").read_text()
    assert f"--no-build-isolation -r {HOROVOD_FILE}" in makefile
    assert f"horovod=={pins['horovod']}" in (ROOT / "environment.yml").read_text()


def test_tests_and_notebooks_need_nothing_beyond_all():
    """`pip install -e ".[all]"` is enough for the test suite and the notebooks (Horovod aside)."""
    names = declared() | set(read_pins("requirements-build.txt"))
    tests = ROOT / "tests"
    local = {p.stem for p in tests.rglob("*.py")} | {p.name for p in tests.iterdir() if p.is_dir()}
    sources = [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in sorted(tests.rglob("*.py"))]
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "code":
                code = "".join(cell["source"]).splitlines()
                code = [line for line in code if not line.lstrip().startswith(("%", "!"))]
                sources.append((f"{nb.relative_to(ROOT).as_posix()} cell {i}", "\n".join(code)))
    assert len(sources) > 30
    missing = []
    for where, src in sources:
        for name, _ in imports(src):
            if (third_party(name, local) and name.split(".")[0] not in SEPARATE_BUILD
                    and distribution(name) not in names):
                missing.append(f"{where}: import {name} needs {distribution(name)}")
    assert not missing, "declare these in pyproject.toml (an extra):\n" + "\n".join(missing)


# --- pyproject agrees with the pins -------------------------------------------------------------

def test_every_pyproject_requirement_holds_its_exact_pin():
    pins = read_pins(*PIN_FILES)
    groups = {"dependencies": requirements()}
    groups |= {f"[{g}]": requirements(g) for g in PROJECT["optional-dependencies"]}
    checked, problems = 0, []
    for group, reqs in groups.items():
        for req in reqs:
            name = canonicalize_name(req.name)
            if name == NAME:
                continue
            checked += 1
            if req.url or req.marker:
                problems.append(f"{group}: {req} (no URLs or markers: one platform, one Python)")
            elif name not in pins:
                problems.append(f"{group}: {req.name} is not pinned in {' / '.join(PIN_FILES)}")
            elif not req.specifier:
                problems.append(f"{group}: {req.name} has no version range")
            elif not req.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{group}: {req} excludes the pin {req.name}=={pins[name]}")
    assert checked >= 25
    assert not problems, "\n".join(problems)


def test_all_holds_every_other_extra():
    extras = set(PROJECT["optional-dependencies"])
    assert EXTRAS <= extras, f"missing extras: {sorted(EXTRAS - extras)}"
    for group in extras:
        for req in requirements(group):
            unknown = self_extras(req) - extras
            assert not unknown, f"[{group}] refers to unknown extras {sorted(unknown)}"
    everything = expanded("all")
    for group in extras - {"all"}:
        assert expanded(group), f"[{group}] is empty"
        assert expanded(group) <= everything, \
            f"[all] lacks [{group}]'s {sorted(expanded(group) - everything)}"


def test_python_licence_and_build_backend_metadata():
    assert PROJECT["requires-python"] == ">=3.11,<3.12"
    assert PROJECT["license"] == {"text": "MIT"}
    # `make venv` builds the editable install without isolation, with the pinned setuptools.
    backend = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    setuptools = next(r for r in backend if r.name == "setuptools")
    assert setuptools.specifier.contains(read_pins("requirements-build.txt")["setuptools"])


# --- the lock -----------------------------------------------------------------------------------

def test_lock_holds_every_pin_at_its_version():
    lock = read_lock()
    pins = read_pins(*PIN_FILES)
    assert len(lock) > len(pins) >= 30
    wrong = {n: (v, lock.get(n)) for n, v in pins.items() if lock.get(n) != v}
    assert not wrong, f"pin -> (requirements*.txt, requirements.lock); run `make lock`: {wrong}"
    for name in declared():
        assert name in lock, f"{name} (pyproject.toml) is not in requirements.lock"


def test_lock_leaves_out_pip_horovod_and_the_project():
    """Those three are installed by their own steps of `make venv` (see its header)."""
    lock = read_lock()
    for name in ("pip", "horovod", NAME):
        assert name not in lock, f"{name} must not be in requirements.lock"
    header = "\n".join(line for line in (ROOT / "requirements.lock").read_text().splitlines()
                       if line.startswith("#"))
    assert HOROVOD_FILE in header and "make lock" in header


def test_lock_is_complete_for_this_environment():
    """Every dependency of a locked distribution is locked too (read from what is installed).

    Distributions not installed at their locked version are not followed; the test skips when
    the running environment was not installed from the lock at all.
    """
    lock = read_lock()
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    stack = [(name, frozenset()) for name in lock]
    seen, missing, followed = set(), [], 0
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = installed.get(name)
        if dist is None or dist.version != lock[name]:
            continue
        followed += 1
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                continue
            dep = canonicalize_name(req.name)
            if dep not in lock:
                missing.append(f"{name} needs {req}")
            else:
                stack.append((dep, frozenset(req.extras)))
    if followed < len(lock) // 2:
        pytest.skip(f"this environment matches only {followed} of {len(lock)} locked versions")
    assert not missing, "not in requirements.lock (run `make lock`):\n" + "\n".join(missing)


def test_make_venv_installs_from_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "REQUIREMENTS ?= requirements.lock" in makefile
    stamp = next(line for line in makefile.splitlines() if line.startswith("$(STAMP):"))
    for dep in ("$(REQUIREMENTS)", "requirements-build.txt", HOROVOD_FILE, "pyproject.toml"):
        assert dep in stamp, f"the venv stamp does not depend on {dep}"
    assert "-r $(REQUIREMENTS)" in makefile


@pytest.mark.parametrize("override, message", [
    (["PLATFORM=Darwin-arm64"], "needs Linux on x86-64; this machine is Darwin-arm64"),
    (["PLATFORM=Windows_NT-AMD64"], "needs Linux on x86-64"),
    ([], "but the pinned packages need Python 3.11"),
])
def test_make_refuses_other_platforms_and_pythons_before_installing(tmp_path, override, message):
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on PATH")
    fake = tmp_path / "python"           # a "Python" that is not 3.11 (nor creates a venv)
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    args = [f"PYTHON={fake}", *override]
    r = subprocess.run([make, "-s", f"VENV={venv}", *args, "venv"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert not venv.exists(), "refused after creating the venv"


# --- licence and citation -----------------------------------------------------------------------

def test_licence_file_is_the_licence_pyproject_names():
    text = (ROOT / "LICENSE").read_text()
    assert PROJECT["license"]["text"] == "MIT"
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the seaice-utils authors" in text
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_citation_cff_is_valid_and_cites_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["type"] == "software"
    assert cff["license"] == PROJECT["license"]["text"]
    assert str(cff["version"]) == PROJECT["version"]
    for author in cff["authors"]:
        assert author.get("name") or author.get("family-names"), author
    papers = [r for r in cff["references"] if r.get("type") == "conference-paper"]
    assert len(papers) == 1
    paper = papers[0]
    assert paper["title"] == ("A Parallel Workflow for Polar Sea-Ice Classification using "
                              "Auto-labeling of Sentinel-2 Imagery")
    assert [a["family-names"] for a in paper["authors"]] == [
        "Iqrah", "Koo", "Wang", "Xie", "Prasad"]
    assert paper["year"] == 2024
    for ref in cff["references"]:
        for key in ("type", "title", "authors"):
            assert ref.get(key), f"a reference lacks {key}: {ref}"
