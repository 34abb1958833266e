"""Notebook hygiene: strip outputs before commit, and check the compendium's conventions.

``seaice notebooks strip notebooks/*.ipynb`` (``make strip-notebooks``) removes outputs and execution counts
in place; ``check`` lists violations (outputs, a ``def``/``class`` in a cell, no ``parameters``
cell, derived values in it) and exits non-zero if there are any.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

__all__ = ["strip_notebook", "check_notebook"]


def strip_notebook(path: str | Path) -> bool:
    """Remove outputs, execution counts and volatile metadata; return True if the file changed."""
    path = Path(path)
    text = path.read_text()
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for k in ("execution", "papermill", "collapsed", "scrolled"):
            cell.get("metadata", {}).pop(k, None)
    for k in ("papermill", "widgets"):
        nb.get("metadata", {}).pop(k, None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def check_notebook(path: str | Path) -> list[str]:
    """Convention violations of one notebook (empty list when it follows them)."""
    path = Path(path)
    nb = json.loads(path.read_text())
    problems = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    param_cells = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(param_cells) != 1:
        problems.append(f"{path.name}: needs exactly one cell tagged 'parameters' "
                        f"(found {len(param_cells)})")
    for i, c in enumerate(code):
        src = "".join(c.get("source", []))
        if c.get("outputs") or c.get("execution_count") is not None:
            problems.append(f"{path.name}: code cell {i} has outputs or an execution count")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # magics; nothing to check
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                problems.append(f"{path.name}: code cell {i} defines {node.name!r}; "
                                "move it into seaice_utils")
        if c in param_cells:
            for node in tree.body:
                value = getattr(node, "value", None)
                if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.Expr)) or (
                        value is not None and not _is_literal(value)):
                    problems.append(f"{path.name}: parameters cell holds a non-literal "
                                    f"(line {node.lineno}); derive values in the next cell")
    return problems


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False
