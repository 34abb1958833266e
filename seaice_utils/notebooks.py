"""Notebook hygiene: strip outputs before commit, and check the compendium's conventions.

``seaice notebooks strip notebooks/*.ipynb`` (``make strip-notebooks``) removes outputs and execution counts
in place; ``check`` lists violations (outputs, a ``def``/``class`` in a cell, no ``parameters``
cell, derived values in it, kernel metadata other than JupyterLab writes) and exits non-zero if
there are any.

Kernel metadata
---------------
When JupyterLab opens a notebook and its kernel starts, it writes the kernel's ``kernelspec``
(name, display name, language) and ``language_info`` (the kernel's ``kernel_info`` reply) into
the notebook's metadata. If the committed values differ, an untouched notebook is marked changed
("Save changes?" on close). So the committed notebooks carry exactly those values
(:func:`kernel_metadata`), and the strip step writes them, and the file as JupyterLab saves it
(keys sorted, one-space indent).
"""

from __future__ import annotations

import ast
import functools
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["strip_notebook", "check_notebook", "kernel_metadata"]

#: The kernel the compendium's notebooks run on (ipykernel's, installed in the environment).
KERNEL_NAME = "python3"


def kernel_metadata() -> dict[str, Any]:
    """``kernelspec`` and ``language_info`` as JupyterLab writes them for the environment's
    ``python3`` kernel (ipykernel): what the committed notebooks carry.

    >>> m = kernel_metadata()
    >>> m["kernelspec"]
    {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}
    >>> m["language_info"]["pygments_lexer"], m["language_info"]["codemirror_mode"]
    ('ipython3', {'name': 'ipython', 'version': 3})
    """
    return _copy_json(_kernel_metadata())


@functools.lru_cache(maxsize=1)
def _kernel_metadata() -> dict[str, Any]:
    display_name, language = "Python 3 (ipykernel)", "python"
    try:  # the installed spec, as JupyterLab reads it
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        display_name, language = spec.display_name, spec.language
    except Exception:  # noqa: BLE001 - no jupyter_client / no spec: ipykernel's defaults
        pass
    try:  # exactly what the kernel sends in its kernel_info reply
        from ipykernel.ipkernel import IPythonKernel

        language_info = dict(IPythonKernel.language_info)
    except ImportError:
        language_info = {
            "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
            "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
            "nbconvert_exporter": "python", "pygments_lexer": f"ipython{sys.version_info[0]}",
            "version": sys.version.split()[0]}
    return {"kernelspec": {"display_name": display_name, "language": language,
                           "name": KERNEL_NAME},
            "language_info": dict(sorted(language_info.items()))}


def _copy_json(value: Any) -> Any:
    """A plain-JSON deep copy (tuples become lists, as in a saved notebook)."""
    return json.loads(json.dumps(value))


def _notebook_text(nb: dict) -> str:
    """A notebook as JupyterLab (nbformat) saves it: keys sorted, indent 1, UTF-8, final newline."""
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def strip_notebook(path: str | Path) -> bool:
    """Remove outputs, execution counts and volatile metadata, and set the kernel metadata to
    what JupyterLab writes (:func:`kernel_metadata`); return True if the file changed.

    Notebooks of another kernel (a ``kernelspec`` naming something else) keep their metadata.
    """
    path = Path(path)
    text = path.read_text()
    nb = json.loads(text)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for k in ("execution", "papermill", "collapsed", "scrolled"):
            cell.get("metadata", {}).pop(k, None)
    meta = nb.setdefault("metadata", {})
    for k in ("papermill", "widgets"):
        meta.pop(k, None)
    if meta.get("kernelspec", {}).get("name", KERNEL_NAME) == KERNEL_NAME:
        meta.update(kernel_metadata())
    new = _notebook_text(nb)
    if new != text:
        path.write_text(new)
        return True
    return False


def check_notebook(path: str | Path) -> list[str]:
    """Convention violations of one notebook (empty list when it follows them)."""
    path = Path(path)
    nb = json.loads(path.read_text())
    problems = _metadata_problems(path.name, nb.get("metadata", {}))
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


def _metadata_problems(name: str, meta: dict) -> list[str]:
    """Kernel metadata that JupyterLab would rewrite on opening (so the notebook would open as
    changed). The Python patch version is not compared (it is the interpreter's that built the
    environment); its major.minor is."""
    want = kernel_metadata()
    out = []
    if meta.get("kernelspec") != want["kernelspec"]:
        out.append(f"{name}: kernelspec is {meta.get('kernelspec')!r}, JupyterLab writes "
                   f"{want['kernelspec']!r} (run 'seaice notebooks strip')")
    have = dict(meta.get("language_info") or {})
    version = str(have.pop("version", ""))
    expected = {k: v for k, v in want["language_info"].items() if k != "version"}
    major_minor = ".".join(want["language_info"]["version"].split(".")[:2]) + "."
    if have != expected or not version.startswith(major_minor):
        out.append(f"{name}: language_info is not the kernel's (JupyterLab writes "
                   f"{want['language_info']!r}; run 'seaice notebooks strip')")
    return out


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except ValueError:
        return False
