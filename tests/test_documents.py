"""The documents a user has: code, notebooks, profiles and READMEs cite the paper itself (not a
specification file outside the repository), and every project file they name exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where users read: the package, notebooks, profiles, READMEs, the Makefile.
SOURCES = sorted([*ROOT.glob("seaice_utils/**/*.py"), *ROOT.glob("notebooks/*.ipynb"),
                  *ROOT.glob("params/*.yml"), *ROOT.glob("**/README.md"), ROOT / "Makefile",
                  *ROOT.glob("requirements*.txt"), ROOT / "environment.yml",
                  ROOT / "pyproject.toml", ROOT / "CITATION.cff"])
SOURCES = [p for p in SOURCES if ".venv" not in p.parts and p.is_file()]
#: A project path named in a text: seaice_utils/..., tests/..., notebooks/..., params/...
PATH = re.compile(r"(?<![\w/.-])((?:seaice_utils|tests|notebooks|params|\.ci)/[\w/.-]*\w"
                  r"\.(?:py|ipynb|yml|md|txt|toml|cfg|lock))")
#: Files the compendium writes (named in docs as examples of what a run produces).
GENERATED = {"params/tuned.yml"}


def test_the_sources_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"README.md", "seaice_utils/cli/__init__.py", "params/quick.yml",
            "notebooks/02_filter_tuning.ipynb"} <= names


def test_no_text_cites_a_file_the_user_does_not_have():
    cites = [f"{p.relative_to(ROOT)}:{n}" for p in SOURCES
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
             if "PAPER.md" in line]
    assert cites == [], "cite the paper (Iqrah et al. 2024), not PAPER.md:\n" + "\n".join(cites)


def test_every_project_file_named_exists():
    missing = []
    for p in SOURCES:
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for ref in PATH.findall(line):
                if ref not in GENERATED and not (ROOT / ref).exists():
                    missing.append(f"{p.relative_to(ROOT)}:{n} names {ref}")
    assert missing == [], "\n".join(missing)
