"""The speedup tables of notebooks 03 (Tables I, II) and 04 (Table III), beside the paper's.

:func:`find_speedup_tables` finds the CSVs the benchmark notebooks saved under
``<outputs>/tables`` (or says why a table is missing), :func:`speedup_table` puts them in one long
table with :data:`seaice_utils.paper.PAPER_SPEEDUPS`, :func:`speedup_figure` draws them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

from seaice_utils.core.figures import new_figure
from seaice_utils.core.speedup_plot import draw_speedups
from seaice_utils.paper import PAPER_SPEEDUPS
from seaice_utils.report import shown_path

__all__ = ["find_speedup_tables", "speedup_table", "speedup_figure"]

_TABLE_PATTERNS = {
    "Table I": ("03", re.compile(r"table_?1|table_?i\b|multiproc", re.I)),
    "Table II": ("03", re.compile(r"table_?2|table_?ii\b|spark", re.I)),
    "Table III": ("04", re.compile(r"table_?3|table_?iii\b|horovod|scaling", re.I)),
}
_X_COLUMNS = ("processes", "workers", "gpus", "ranks", "total_cores", "cores_total", "slots",
              "cores")


def _speedup_columns(df) -> tuple[str | None, str | None]:
    cols = {c.lower(): c for c in df.columns}
    x = None
    if "executors" in cols and "cores" in cols:
        x = "__total_cores"
    else:
        x = next((cols[c] for c in _X_COLUMNS if c in cols), None)
    sp = [c for c in df.columns if "speedup" in c.lower()]
    pref = [c for c in sp if c.lower() in ("speedup", "reduce_speedup", "total_speedup")]
    return x, (pref or sp or [None])[0]


def find_speedup_tables(outputs_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The speedup tables notebooks 03 (Tables I, II) and 04 (Table III) saved, if they ran.

    Looks in ``<outputs>/tables`` for ``03_*.csv`` / ``04_*.csv`` whose names say which table
    (``table1``, ``multiprocessing``; ``table2``, ``spark``; ``table3``, ``horovod``,
    ``scaling``) and that have a speedup column.

    Returns
    -------
    dict
        "Table I" / "Table II" / "Table III" -> ``{"file", "data" (DataFrame), "x", "speedup"}``,
        or ``{"missing": "<why>"}``.
    """
    import pandas as pd

    tdir = Path(outputs_dir) / "tables"
    out: dict[str, dict[str, Any]] = {}
    for table, (nb, pat) in _TABLE_PATTERNS.items():
        files = sorted(tdir.glob(f"{nb}_*.csv")) if tdir.is_dir() else []
        hit = None
        for f in files:
            if not pat.search(f.stem):
                continue
            try:
                df = pd.read_csv(f)
            except (OSError, ValueError, pd.errors.ParserError):
                continue
            x, sp = _speedup_columns(df)
            if x and sp:
                if x == "__total_cores":
                    cols = {c.lower(): c for c in df.columns}
                    df = df.assign(total_cores=df[cols["executors"]] * df[cols["cores"]])
                    x = "total_cores"
                hit = {"file": f.name, "data": df, "x": x, "speedup": sp}
                break
        if hit is None:
            shown = shown_path(tdir, outputs_dir)
            why = (f"notebook {nb} did not run (no {nb}_*.csv in {shown})" if not files else
                   f"no {nb}_*.csv in {shown} holds {table} with a speedup column "
                   f"(found {', '.join(f.name for f in files)})")
            hit = {"missing": why}
        out[table] = hit
    return out


def speedup_table(tables: Mapping[str, Mapping[str, Any]]):
    """Measured (this run) and published speedups of Tables I-III in one long table."""
    import pandas as pd

    rows = []
    for table, ref in PAPER_SPEEDUPS.items():
        for x, sp in ref["points"]:
            rows.append({"table": table, "what": ref["what"], "source": "paper",
                         "workers": x, "speedup": sp, "file": ""})
        t = tables.get(table, {})
        if "data" in t:
            for x, sp in zip(t["data"][t["x"]], t["data"][t["speedup"]]):
                rows.append({"table": table, "what": ref["what"], "source": "this run",
                             "workers": x, "speedup": sp, "file": t["file"]})
    return pd.DataFrame(rows)


def speedup_figure(tables: Mapping[str, Mapping[str, Any]]):
    """Measured speedups (Tables I-III) beside the paper's published ones and the ideal line,
    one panel per table (:func:`~seaice_utils.core.speedup_plot.draw_speedups`)."""
    fig = new_figure((12.0, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (table, ref) in zip(axes, PAPER_SPEEDUPS.items()):
        t = tables.get(table, {})
        measured = {}
        if "data" in t:
            measured[f"this run ({t['file']})"] = (t["data"][t["x"]], t["data"][t["speedup"]])
        else:
            ax.text(0.5, 0.55, "not measured:\n" + t.get("missing", "table missing").split(" (")[0],
                    transform=ax.transAxes, ha="center", va="center", fontsize=7, wrap=True,
                    color="tab:red")
        draw_speedups(ax, measured, xlabel=ref["x"], title=f"{table}: {ref['what']}",
                      reference={"paper": tuple(zip(*ref["points"]))}, ideal_label="ideal",
                      fontsize=7, title_size=9)
    fig.tight_layout()
    return fig
