"""Run the numbered notebooks headless with papermill and write the run manifest.

``seaice reproduce --params params/quick.yml`` executes ``notebooks/NN_*.ipynb`` in order. Each
notebook receives two parameters, ``params_file`` and ``outputs_dir`` (absolute paths), reads its
settings from the profile, and writes tables to ``<outputs>/tables`` and figures to
``<outputs>/figures``. Executed copies are kept under ``<outputs>/notebooks``. The run stops at
the first notebook that fails and reports the failing cell's error.

``<outputs>/manifest.json`` records the profile (as validated, defaults filled in), the git
commit, package versions, the machine and the status and duration of each notebook, plus the
``records`` notebooks leave with :func:`seaice_utils.report.record` (e.g. the data source used).
When the run ends (or fails) it also records what a reviewer needs to check it:

* ``environment.distributions``: every installed distribution, ``{name: version}`` (beside the
  short ``environment.packages`` summary);
* ``inputs``: the dataset the notebooks read (``source``; ``dataset`` and ``catalogue`` shown
  relative to the outputs folder; the catalogue's SHA-256; ``files``: size and SHA-256 of each
  scene, truth and cloud file, keyed by path in the dataset folder) and, for synthetic data,
  the ``generator``'s settings (the profile's ``data`` section and ``global.seed``);
* ``attribution``: "Contains modified Copernicus Sentinel data [years]" for any source other
  than the synthetic one (``None`` for synthetic data, with ``attribution_note`` saying why);
* ``output_files``: size and SHA-256 of every ``tables/*.csv`` and ``figures/*.png``, keyed by
  path in the outputs folder (tables also ``values_sha256``, the digest without timing
  columns, :func:`seaice_utils.verify.table_values_digest`), and whether this run wrote it.

``seaice verify A B`` (:mod:`seaice_utils.verify`) compares two runs with it.

Batch reruns (:func:`run_batch`, ``seaice reproduce --params a.yml --params b.yml`` or
``--params DIR``) run each profile into ``<outputs>/<profile>/`` and write
``<outputs>/comparison.csv``: one row per profile, its status and headline figures
(:func:`seaice_utils.verify.headline_figures`).

The outputs folder is meant to be shared: the manifest and the executed notebooks show paths
relative to the outputs folder or the project folder (:func:`seaice_utils.report.shown_path`;
papermill's record of the run's paths and the injected parameters included), and any other
mention of those folders or of the home folder in them (a library's warning, a widget's state)
is made relative too (``~`` for the home folder).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from seaice_utils.data.dataset import CATALOGUE, dataset_root, read_catalogue, resolve_source
from seaice_utils.errors import InputError, ParamsError, SeaIceError
from seaice_utils.params import load_params, params_path, project_folder
from seaice_utils.report import (environment_info, file_digest, installed_distributions,
                                 shown_path, shown_paths, write_rows_csv)
from seaice_utils.core.scenes import atomic_write_bytes, list_images, write_json
from seaice_utils.verify import headline_figures, table_values_digest

__all__ = ["notebook_folder", "notebooks", "run_notebooks", "NotebookFailed", "batch_profiles",
           "run_batch", "ATTRIBUTION"]

#: The attribution Copernicus asks of products made from Sentinel data (followed by the years).
ATTRIBUTION = "Contains modified Copernicus Sentinel data"


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


def _folder_mentions(outputs: Path, project: Path):
    """A function replacing the outputs, project and home folders named in a text by
    ``<outputs>``, ``<project>`` and ``~`` (``/abs/outputs/x`` -> ``<outputs>/x``)."""
    subs: dict[str, str] = {}
    for folder, name in ((Path.home(), "~"), (project, "<project>"), (outputs, "<outputs>")):
        for form in {str(folder), str(folder.resolve())}:
            if len(form) > 1:
                subs[form] = name               # later (narrower) folders win on equal names
    if not subs:
        return lambda text: text
    pattern = re.compile("|".join(f"({re.escape(f)})(/|(?![\\w-]|\\.\\w))"
                                  for f in sorted(subs, key=len, reverse=True)))

    def relative(text: str) -> str:
        def one(m):
            folder, tail = next((m[i], m[i + 1]) for i in range(1, len(m.groups()), 2) if m[i])
            return subs[folder] + tail
        return pattern.sub(one, text)
    return relative


def _shared(value, relative, skip=("image/",)):
    """``value`` (dicts and lists walked) with ``relative`` applied to every string; the values
    of keys starting with ``skip`` (images) are left as they are."""
    if isinstance(value, dict):
        return {k: v if str(k).startswith(skip) else _shared(v, relative, skip)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v, relative, skip) for v in value]
    return relative(value) if isinstance(value, str) else value


def _dataset_files(root: Path) -> list[Path]:
    """The scene, truth and cloud files of a dataset folder, in catalogue order."""
    if (root / "scenes").is_dir() or (root / CATALOGUE).is_file():
        recs = read_catalogue(root)
        return [p for r in recs for p in (r.scene_path, r.truth_path, r.cloud_path) if p.is_file()]
    return list_images(root)


def _inputs(outputs: Path, project: Path, params: dict) -> tuple[dict, Path | None]:
    """What the notebooks read: the dataset notebook 01 produced (``resolve_source``), its
    catalogue and the size and SHA-256 of its files; the generator's settings for synthetic
    data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # a fallback was reported by notebook 01
        used = resolve_source(params, outputs)
    info: dict = {"source": used["data"]["source"]}
    try:
        root = dataset_root(outputs, used)
    except InputError:
        root = None
    if root is None or not root.is_dir():
        info.update(dataset=None, files={}, note="no dataset folder: no notebook that reads "
                    "the data ran")
        return info, None
    info["dataset"] = shown_path(root, outputs, project)
    cat = root / CATALOGUE
    if cat.is_file():
        info.update(catalogue=shown_path(cat, outputs, project),
                    catalogue_sha256=file_digest(cat)["sha256"])
    try:
        files = _dataset_files(root)
    except (InputError, OSError) as exc:
        files = []
        info["note"] = f"dataset not readable ({type(exc).__name__})"
    info["files"] = {(p.relative_to(root).as_posix() if root in p.parents else
                      shown_path(p, outputs, project)): file_digest(p) for p in files}
    if info["source"] == "synthetic":
        info["generator"] = {"module": "seaice_utils.data.synthetic", "data": used["data"],
                             "seed": used["global"]["seed"]}
    return info, root


def _attribution(source: str, root: Path | None) -> dict:
    """The data attribution the outputs need (none for the synthetic dataset); the years are
    those of the catalogue's ``datetime`` column, when it has one."""
    if source == "synthetic":
        return {"attribution": None,
                "attribution_note": "the synthetic default dataset holds no Copernicus "
                                    "Sentinel data: no attribution needed"}
    years: set[str] = set()
    cat = root / CATALOGUE if root is not None else None
    if cat is not None and cat.is_file():
        with cat.open(newline="") as fh:
            for row in csv.DictReader(fh):
                when = str(row.get("datetime") or row.get("date") or "")[:4]
                years.update([when] if when.isdigit() else [])
    span = sorted(years)
    text = ATTRIBUTION + ("" if not span else f" {span[0]}" if len(span) == 1
                          else f" {span[0]}-{span[-1]}")
    return {"attribution": text}


def _output_files(outputs: Path, since: float) -> dict:
    """Size and SHA-256 of every table and figure under ``outputs`` (tables also without their
    timing columns), and whether this run (started at ``since``) wrote it."""
    out = {}
    for sub, pattern in (("tables", "*.csv"), ("figures", "*.png")):
        for p in sorted((outputs / sub).glob(pattern)):
            entry = file_digest(p)
            if sub == "tables":
                entry["values_sha256"] = table_values_digest(p)
            entry["this_run"] = p.stat().st_mtime >= since
            out[f"{sub}/{p.name}"] = entry
    return out


def _provenance(manifest: dict, outputs: Path, project: Path, params: dict,
                since: float) -> None:
    """Add the inputs, the attribution and the output files' digests to ``manifest``."""
    manifest["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    inputs, root = _inputs(outputs, project, params)
    manifest["inputs"] = inputs
    manifest.update(_attribution(inputs["source"], root))
    manifest["output_files"] = _output_files(outputs, since)


def _write_manifest(path: Path, manifest: dict, outputs: Path, project: Path) -> dict:
    records = {}
    rec_dir = outputs / "records"
    if rec_dir.is_dir():
        for p in sorted(rec_dir.glob("*.json")):
            try:
                records[p.stem] = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                records[p.stem] = "unreadable"
    manifest["records"] = records
    shared = _shared(shown_paths(manifest, outputs, project), _folder_mentions(outputs, project))
    write_json(path, shared)
    return shared


def _share_notebook(path: Path, outputs: Path, project: Path, parameters: dict) -> None:
    """Rewrite an executed notebook for sharing: papermill's paths of the run and the injected
    parameters as shown paths, other mentions of the outputs, project and home folders made
    relative."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):   # not written (or not whole): nothing to rewrite
        return
    shown = {k: shown_path(v, outputs, project) for k, v in parameters.items()}
    meta = nb.get("metadata", {}).get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = shown_path(meta[key], outputs, project)
    if "parameters" in meta:
        meta["parameters"] = shown
    for cell in nb.get("cells", []):
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["source"] = ("# Parameters (paths shown relative to the outputs folder, else to "
                              "the project folder)\n"
                              + "".join(f"{k} = {json.dumps(v)}\n" for k, v in shown.items()))
    nb = _shared(nb, _folder_mentions(outputs, project))
    atomic_write_bytes(path, (json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)
                              + "\n").encode())


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
    project = notebook_dir.resolve().parent
    for sub in ("notebooks", "tables", "figures"):
        (outputs / sub).mkdir(parents=True, exist_ok=True)
    since = time.time() - 1                   # file times may be rounded to the second
    manifest = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "params_file": shown_path(ppath, outputs, project), "params": params,
                "git": _git_commit(notebook_dir),
                "environment": {**environment_info(),
                                "distributions": installed_distributions()},
                "notebooks": []}
    mpath = outputs / "manifest.json"
    nbs = notebooks(notebook_dir, only)
    if not nbs:
        raise SeaIceError(f"no numbered notebooks in {notebook_dir}")
    parameters = {"params_file": str(ppath), "outputs_dir": str(outputs)}
    for nb in nbs:
        entry = {"notebook": nb.name, "status": "running"}
        manifest["notebooks"].append(entry)
        _write_manifest(mpath, manifest, outputs, project)
        executed = outputs / "notebooks" / nb.name
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(executed), parameters=parameters,
                                kernel_name=kernel_name, cwd=str(nb.parent),
                                progress_bar=progress, log_output=False)
        except pm.PapermillExecutionError as exc:
            entry.update(status="failed", seconds=round(time.perf_counter() - t0, 2),
                         error=f"{exc.ename}: {exc.evalue}", cell=exc.exec_count)
            _provenance(manifest, outputs, project, params, since)
            _write_manifest(mpath, manifest, outputs, project)
            raise NotebookFailed(
                f"{nb.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                f"executed copy: {executed}") from None
        finally:
            _share_notebook(executed, outputs, project, parameters)
        entry.update(status="ok", seconds=round(time.perf_counter() - t0, 2))
        _write_manifest(mpath, manifest, outputs, project)
    _provenance(manifest, outputs, project, params, since)
    return _write_manifest(mpath, manifest, outputs, project)


def _profile_name(path: Path) -> str:
    """``global.profile`` as the file sets it, else the file's stem."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raw = None
    glob = raw.get("global") if isinstance(raw, dict) else None
    name = glob.get("profile") if isinstance(glob, dict) else None
    name = str(name) if name else path.stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ParamsError(f"{path.name}: profile name {name!r} cannot name an outputs folder "
                          "(letters, digits, '.', '_', '-')")
    return name


def batch_profiles(specs: list[str | os.PathLike]) -> list[tuple[str, Path]]:
    """The profiles of a batch, as ``(name, file)``, each validated before anything runs.

    Each ``spec`` is a profile (a file, or a bare name in ``params/``) or a folder, standing for
    every ``*.yml`` in it (sorted). A profile's name is its ``global.profile`` when the file
    sets one, else the file's stem; two profiles of the same name are refused (each run goes
    to ``<outputs>/<name>/``).
    """
    files: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = sorted([*p.glob("*.yml"), *p.glob("*.yaml")])
            if not found:
                raise ParamsError(f"{spec}: no *.yml profile in this folder")
            files += [f.resolve() for f in found]
        else:
            files.append(params_path(spec))
    out: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for f in files:
        load_params(f)
        name = _profile_name(f)
        if name in seen:
            raise ParamsError(f"two profiles named {name!r} ({seen[name].name} and {f.name}): "
                              "each run goes to <outputs>/<profile>/; give one another "
                              "global.profile or file name")
        seen[name] = f
        out.append((name, f))
    return out


def run_batch(specs: list[str | os.PathLike], outputs: str | os.PathLike = "outputs", *,
              only: list[str] | None = None, notebook_dir: str | os.PathLike | None = None,
              kernel_name: str = "python3", progress: bool = True) -> list[dict]:
    """Run the notebooks once per profile (:func:`batch_profiles`) into ``<outputs>/<profile>/``
    and write ``<outputs>/comparison.csv``; return its rows.

    A row holds the profile, its status (``ok``, or the notebook that failed and its error: the
    batch goes on with the next profile), the notebooks that ran, the time taken and the
    headline figures of :func:`seaice_utils.verify.headline_figures` (see
    :data:`seaice_utils.verify.HEADLINES` for the table each comes from). The table is
    rewritten after each profile, so an interrupted batch keeps the rows of the runs done.
    """
    profiles = batch_profiles(specs)
    outputs = Path(outputs).resolve()
    project = notebook_folder(notebook_dir).resolve().parent
    rows: list[dict] = []
    for name, path in profiles:
        folder = outputs / name
        t0 = time.perf_counter()
        try:
            run_notebooks(path, folder, only=only, notebook_dir=notebook_dir,
                          kernel_name=kernel_name, progress=progress)
        except NotebookFailed:
            pass                                 # recorded in its manifest, read below
        manifest = json.loads((folder / "manifest.json").read_text())
        ran = manifest.get("notebooks", [])
        failed = [n for n in ran if n.get("status") != "ok"]
        rows.append({"profile": name,
                     "status": "ok" if not failed else
                     f"failed in {failed[0]['notebook']}: {failed[0].get('error', '?')}",
                     "params_file": shown_path(path, outputs, project), "outputs": f"{name}/",
                     "notebooks": " ".join(n["notebook"][:2] for n in ran
                                           if n.get("status") == "ok"),
                     "seconds": round(time.perf_counter() - t0, 1),
                     **headline_figures(folder)})
        write_rows_csv(outputs / "comparison.csv", rows)
    return rows
