"""Writing the compendium's tables (CSV) and figures (PNG) under an outputs folder.

Every table and figure is written by code, atomically, to ``<outputs>/tables/<name>.csv`` and
``<outputs>/figures/<name>.png``; notebooks display what they save.

Outputs are meant to be shared, so a path written into them is shown by :func:`shown_path`:
relative to the outputs folder, else to the project folder, else as a file name only; nothing
names the machine or its user (:func:`environment_info` keeps to the CPU, OS and versions).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from seaice_utils.core.scenes import atomic_write_bytes
from seaice_utils.errors import InputError

__all__ = ["tables_dir", "figures_dir", "save_table", "save_figure", "record", "write_rows_csv",
           "environment_info", "installed_distributions", "file_digest", "shown_path",
           "shown_paths", "OUTSIDE", "PROJECT_MARKERS", "project_root", "project_folder",
           "read_table"]

PACKAGES = ("numpy", "opencv-python-headless", "tensorflow-cpu", "tensorflow", "horovod", "pyspark",
            "papermill", "scikit-learn", "scikit-image", "matplotlib", "earthengine-api",
            "ipywidgets", "pandas", "pyarrow", "rasterio", "pystac-client")


#: What :func:`shown_path` adds to the name of a file outside the outputs and project folders.
OUTSIDE = "(outside the outputs and project folders)"


#: The folders that mark the project folder: the compendium's notebooks and its profiles.
PROJECT_MARKERS = ("notebooks", "params")


def project_root(start: str | os.PathLike | None = None,
                 markers: tuple[str, ...] = PROJECT_MARKERS) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) holding one of
    the folders ``markers`` (default: ``notebooks/`` or ``params/``); None if there is none.

    The compendium is run from its project folder (``make``, ``seaice reproduce``), so this finds
    the profiles and notebooks of that checkout, not of wherever the package is installed. The
    one walk up to the project folder: :func:`project_folder` and :func:`shown_path` use it.
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).is_dir() for m in markers):
            return folder
    return None


def project_folder(name: str, start: str | os.PathLike | None = None) -> Path | None:
    """The project's ``name`` folder (``params``, ``notebooks``): in ``start`` (default: the
    working directory) or the nearest folder above it that has one; None if there is none."""
    root = project_root(start, (name,))
    return None if root is None else root / name


def _forms(path: str | os.PathLike) -> list[Path]:
    """A path made absolute as written (``..`` folded) and with its links resolved."""
    p = Path(path)
    return list(dict.fromkeys((Path(os.path.abspath(p)), p.resolve())))


def shown_path(path: str | os.PathLike | None, outputs: str | os.PathLike | None = None,
               project: str | os.PathLike | None = None) -> str | None:
    """A path as written into outputs: no user's folders, no machine's layout.

    Relative (POSIX) to ``outputs`` when it is inside that folder (``"."`` for the folder
    itself), else relative to the project folder (``project``, default: the nearest folder at
    or above the working directory holding ``notebooks/`` or ``params/``), else the file's name
    followed by :data:`OUTSIDE`. A relative ``path`` is taken from the working directory;
    None stays None.

    >>> shown_path("/data/run/outputs/models/unet.keras", "/data/run/outputs")
    'models/unet.keras'
    >>> shown_path("/elsewhere/scene.png", "/data/run/outputs", "/data/run")
    'scene.png (outside the outputs and project folders)'
    """
    if path is None:
        return None
    if project is None:
        project = project_root()
    for base in (outputs, project):
        if base is None:
            continue
        for p in _forms(path):
            for b in _forms(base):
                if p == b or b in p.parents:
                    return p.relative_to(b).as_posix()
    return f"{Path(path).name} {OUTSIDE}"


def shown_paths(value: Any, outputs: str | os.PathLike | None = None,
                project: str | os.PathLike | None = None) -> Any:
    """``value`` (dicts and lists walked) with every absolute path string made a
    :func:`shown_path`; other values as they are."""
    if isinstance(value, dict):
        return {k: shown_paths(v, outputs, project) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_paths(v, outputs, project) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and "\n" not in value and len(value) > 1:
        return shown_path(value, outputs, project)
    return value


def tables_dir(outputs: str | os.PathLike) -> Path:
    return Path(outputs) / "tables"


def figures_dir(outputs: str | os.PathLike) -> Path:
    return Path(outputs) / "figures"


def save_table(df, outputs: str | os.PathLike, name: str, *, float_format: str = "%.6g"):
    """Write a pandas DataFrame to ``<outputs>/tables/<name>.csv`` and return it (for display)."""
    atomic_write_bytes(tables_dir(outputs) / f"{name}.csv",
                       df.to_csv(index=False, float_format=float_format).encode())
    return df


def save_figure(fig, outputs: str | os.PathLike, name: str, *, dpi: int = 110) -> Path:
    """Write a matplotlib figure to ``<outputs>/figures/<name>.png`` and return the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    path = figures_dir(outputs) / f"{name}.png"
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_table(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """The header and the rows (cells as text) of a CSV table (UTF-8, as :func:`save_table`
    writes it).

    Raises
    ------
    InputError
        ``<path>: not a readable table (<why>)`` when the file cannot be read (missing, a
        folder, no permission), is binary (not UTF-8 text) or is not CSV.
    """
    try:
        data = Path(path).read_bytes()
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except UnicodeDecodeError as exc:
        why = f"binary, not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
    except csv.Error as exc:
        why = f"not CSV: {exc}"
    except OSError as exc:
        why = exc.strerror or str(exc)
    else:
        nul = data.find(0)             # a table has no NUL (a file of zeros: a write cut short)
        if nul < 0:
            return (rows[0], rows[1:]) if rows else ([], [])
        why = f"binary, not text: NUL byte at offset {nul}"
    raise InputError(f"{path}: not a readable table ({why})")


def record(outputs: str | os.PathLike, key: str, value: Any) -> None:
    """Record a provenance fact (e.g. which data source was used) for the run manifest.

    Stored as ``<outputs>/records/<key>.json``; the runner merges all records into
    ``manifest.json`` under ``records``.
    """
    atomic_write_bytes(Path(outputs) / "records" / f"{key}.json",
                       (json.dumps(value, indent=2, default=str) + "\n").encode())


def write_rows_csv(path: str | os.PathLike, rows) -> None:
    """Write dict rows as CSV, atomically; columns in first-seen order."""
    rows = list(rows)
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info() -> dict:
    """Python, packages, machine: what a reader needs to judge the numbers."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(), "packages": versions}


def installed_distributions() -> dict[str, str]:
    """Every installed distribution as ``{name: version}``, sorted by name.

    Names are normalised (PEP 503: lower case, runs of ``-_.`` as ``-``); a distribution found
    twice on the path is listed once, with the version Python imports (the first found).
    """
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)
    return dict(sorted(found.items()))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> dict:
    """``{"bytes": size, "sha256": hex digest}`` of a file."""
    return {"bytes": Path(path).stat().st_size, "sha256": sha256_file(path)}
