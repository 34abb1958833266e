"""Writing the compendium's tables (CSV) and figures (PNG) under an outputs folder.

Every table and figure is written by code, atomically, to ``<outputs>/tables/<name>.csv`` and
``<outputs>/figures/<name>.png``; notebooks display what they save.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from seaice_utils.core.scenes import atomic_write_bytes

__all__ = ["tables_dir", "figures_dir", "save_table", "save_figure", "record", "write_rows_csv",
           "environment_info"]

PACKAGES = ("numpy", "opencv-python-headless", "tensorflow-cpu", "tensorflow", "horovod", "pyspark",
            "papermill", "scikit-learn", "scikit-image", "matplotlib", "earthengine-api",
            "ipywidgets", "pandas", "pyarrow", "rasterio", "pystac-client")


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
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    path = figures_dir(outputs) / f"{name}.png"
    atomic_write_bytes(path, buf.getvalue())
    return path


def record(outputs: str | os.PathLike, key: str, value: Any) -> None:
    """Record a provenance fact (e.g. which data source was used) for the run manifest.

    Stored as ``<outputs>/records/<key>.json``; the runner merges all records into
    ``manifest.json`` under ``records``.
    """
    atomic_write_bytes(Path(outputs) / "records" / f"{key}.json",
                       (json.dumps(value, indent=2, default=str) + "\n").encode())


def write_rows_csv(path: str | os.PathLike, rows) -> None:
    """Write dict rows as CSV, atomically; columns in first-seen order."""
    import csv
    import io

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
