"""Run the numbered notebooks headless with papermill and write the run manifest.

``seaice reproduce --params params/quick.yml`` executes ``notebooks/NN_*.ipynb`` in order. Each
notebook receives two parameters, ``params_file`` and ``outputs_dir`` (absolute paths), reads its
settings from the profile, and writes tables to ``<outputs>/tables`` and figures to
``<outputs>/figures``. Executed copies are kept under ``<outputs>/notebooks``. The run stops at
the first notebook that fails and reports the failing cell's error.

``<outputs>/manifest.json`` records the profile (as validated, defaults filled in), the git
commit, package versions, the machine and the status and duration of each notebook, plus the
``records`` notebooks leave with :func:`seaice_utils.report.record` (e.g. the data source used).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from seaice_utils.errors import SeaIceError
from seaice_utils.params import load_params, params_path, project_folder
from seaice_utils.report import environment_info
from seaice_utils.core.scenes import write_json

__all__ = ["notebook_folder", "notebooks", "run_notebooks", "NotebookFailed"]



class NotebookFailed(SeaIceError):
    """A notebook raised; the message names the notebook and the error."""


def notebook_folder(folder: str | os.PathLike | None = None) -> Path:
    """``folder``, or the project's ``notebooks/`` found from the working directory."""
    if folder is not None:
        return Path(folder)
    found = project_folder("notebooks")
    if found is None:
        raise SeaIceError(f"no notebooks/ folder in {Path.cwd()} or above it: run from the "
                          "compendium's folder or pass the notebook folder (--notebooks DIR)")
    return found


def notebooks(folder: str | os.PathLike | None = None,
              only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks (``NN_name.ipynb``) in run order, optionally only those whose number
    or name is in ``only``; ``folder`` defaults to :func:`notebook_folder`."""
    found = sorted(p for p in notebook_folder(folder).glob("[0-9][0-9]_*.ipynb"))
    if only:
        keep = [p for p in found if p.name[:2] in only or p.stem in only]
        unknown = set(only) - {p.name[:2] for p in keep} - {p.stem for p in keep}
        if unknown:
            raise SeaIceError(f"no notebook matches {sorted(unknown)} (have: "
                              f"{', '.join(p.stem for p in found)})")
        found = keep
    return found


def _git_commit(folder: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=20)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
        return {"commit": head.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def _write_manifest(path: Path, manifest: dict, outputs: Path) -> None:
    records = {}
    rec_dir = outputs / "records"
    if rec_dir.is_dir():
        for p in sorted(rec_dir.glob("*.json")):
            try:
                records[p.stem] = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                records[p.stem] = "unreadable"
    manifest["records"] = records
    write_json(path, manifest)


def run_notebooks(params_file: str | os.PathLike, outputs: str | os.PathLike = "outputs", *,
                  only: list[str] | None = None, notebook_dir: str | os.PathLike | None = None,
                  kernel_name: str = "python3", progress: bool = True) -> dict:
    """Execute the numbered notebooks in order; return the manifest (also written to disk).

    Raises
    ------
    NotebookFailed
        At the first notebook that raises; later notebooks are not run. The manifest records it.
    """
    import papermill as pm

    notebook_dir = notebook_folder(notebook_dir)
    ppath = params_path(params_file)
    params = load_params(ppath)          # fail early, before any kernel starts
    outputs = Path(outputs).resolve()
    for sub in ("notebooks", "tables", "figures"):
        (outputs / sub).mkdir(parents=True, exist_ok=True)
    manifest = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "params_file": ppath.name, "params": params, "git": _git_commit(notebook_dir),
                "environment": environment_info(), "notebooks": []}
    mpath = outputs / "manifest.json"
    nbs = notebooks(notebook_dir, only)
    if not nbs:
        raise SeaIceError(f"no numbered notebooks in {notebook_dir}")
    for nb in nbs:
        entry = {"notebook": nb.name, "status": "running"}
        manifest["notebooks"].append(entry)
        _write_manifest(mpath, manifest, outputs)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(outputs / "notebooks" / nb.name),
                                parameters={"params_file": str(ppath),
                                            "outputs_dir": str(outputs)},
                                kernel_name=kernel_name, cwd=str(nb.parent),
                                progress_bar=progress, log_output=False)
        except pm.PapermillExecutionError as exc:
            entry.update(status="failed", seconds=round(time.perf_counter() - t0, 2),
                         error=f"{exc.ename}: {exc.evalue}", cell=exc.exec_count)
            manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            _write_manifest(mpath, manifest, outputs)
            raise NotebookFailed(
                f"{nb.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                f"executed copy: {outputs / 'notebooks' / nb.name}") from None
        entry.update(status="ok", seconds=round(time.perf_counter() - t0, 2))
        _write_manifest(mpath, manifest, outputs)
    manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write_manifest(mpath, manifest, outputs)
    return manifest
