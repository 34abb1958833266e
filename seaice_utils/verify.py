"""Compare two runs of the notebooks, as a reviewer would: ``seaice verify A B``.

``A`` and ``B`` are each an outputs folder of ``seaice reproduce`` (its ``manifest.json``,
``tables/`` and ``figures/``) or a ``manifest.json`` (the tables and figures beside it are used
when they are there, else the digests the manifest records).

* **Tables** (``tables/*.csv``) are compared cell by cell, by column name and row position,
  leaving out the timing columns (:func:`timing_column`): timings change from run to run, the
  other cells must not. A table is *identical*, *differs only in timing columns*, or *DIFFERS*
  (the columns, the number of cells, the largest absolute difference of numeric cells); a table
  present in only one run DIFFERS too. Without the tables at hand, the manifest's
  ``values_sha256`` (the digest of a table without its timing columns,
  :func:`table_values_digest`) is compared instead.
* **Figures** (``figures/*.png``) are compared by SHA-256 only; a figure that differs is
  reported, never counted against the runs (figures of timings differ from run to run).
* A table on disk whose SHA-256 is not the one its own manifest records was changed after the
  run: that DIFFERS as well; so does a table or manifest that cannot be read (named, with why).
* The profile, the inputs (the dataset's files) and the installed distributions of the two
  manifests are compared for information.

The runs *agree* when no table DIFFERS; :meth:`Comparison.ok` (exit status 0 of
``seaice verify``, else 1).

:func:`headline_figures` reads a run's headline figures from its tables, for the comparison
table of batch reruns (``seaice reproduce --params a.yml --params b.yml``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from seaice_utils.core.classes import CLASS_KEYS
from seaice_utils.errors import InputError
from seaice_utils.report import file_digest, read_table

__all__ = ["TIME_WORDS", "MACHINE_COLUMNS", "HEADLINES", "timing_column", "read_table",
           "table_values_digest", "compare_tables", "TableResult", "Comparison", "compare_runs",
           "headline_figures", "comparison_text"]

#: Words that make a column a timing: units of time, and measured times or ratios of them.
TIME_WORDS = frozenset({
    "s", "ms", "us", "ns", "sec", "secs", "second", "seconds", "minutes", "hours",
    "time", "times", "timing", "timings", "elapsed", "duration", "wall", "latency",
    "throughput", "speedup", "efficiency",
})
#: Columns naming the machine the timings were taken on (or derived from it alone).
MACHINE_COLUMNS = frozenset({"cpu_count", "cpu_model", "gpu_count", "gpu_model", "machine",
                             "oversubscribed"})


def timing_column(name: str) -> bool:
    """Whether a table column holds timings, which differ from run to run.

    A column is a timing column when one of its words (the name in lower case, split at
    ``_``, ``-``, spaces, dots, slashes and brackets) is in :data:`TIME_WORDS` (``s``, ``ms``,
    ``seconds``, ``time``, ``wall``, ``speedup``, ``efficiency``, ``throughput``, ...), or when
    the whole name is in :data:`MACHINE_COLUMNS` (``cpu_count``, ``cpu_model``,
    ``oversubscribed``: the machine the timings were measured on). So ``parallel_s``,
    ``images_per_s``, ``s_per_epoch``, ``cpu_s_per_image``, ``startup_s``, ``map_s``,
    ``reference_ms``, ``load_speedup``, ``speedup_min`` are timings; ``accuracy_pct``,
    ``epochs``, ``workers``, ``tiles`` and ``map`` (the name of a class map) are not.

    >>> [timing_column(c) for c in ("images_per_s", "speedup_min", "accuracy_pct", "map")]
    [True, True, False, False]
    """
    low = name.strip().lower()
    if low in MACHINE_COLUMNS:
        return True
    return any(w in TIME_WORDS for w in re.split(r"[\s_\-./()\[\]]+", low) if w)


def table_values_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a table without its timing columns (header and cells, as CSV text): the same
    for two runs whose table agrees outside the timing columns."""
    cols, rows = read_table(path)
    keep = [i for i, c in enumerate(cols) if not timing_column(c)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([cols[i] for i in keep])
    for r in rows:
        w.writerow([r[i] if i < len(r) else "" for i in keep])
    return hashlib.sha256(buf.getvalue().encode()).hexdigest()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _same(a: str, b: str, tolerance: float) -> tuple[bool, float | None]:
    """Whether two cells agree, and their absolute difference when both are numbers."""
    if a == b:
        return True, 0.0 if _number(a) is not None else None
    x, y = _number(a), _number(b)
    if x is None or y is None:
        return False, None
    if math.isnan(x) and math.isnan(y):
        return True, 0.0
    diff = abs(x - y)
    return diff <= tolerance, diff


def _names(names: list[str], most: int = 4) -> str:
    return ", ".join(names[:most]) + (f" +{len(names) - most} more" if len(names) > most else "")


@dataclass
class TableResult:
    """How one table of two runs compares: ``status`` is ``identical``, ``timing`` (differs
    only in timing columns), ``differs``, ``only A``, ``only B`` or ``unreadable``; ``detail``
    says where (or which file cannot be read, and why)."""

    name: str
    status: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("identical", "timing")

    def text(self) -> str:
        return {"identical": "identical",
                "timing": f"differs only in timing columns ({self.detail})",
                "differs": f"DIFFERS: {self.detail}", "unreadable": f"UNREADABLE: {self.detail}",
                "only A": "DIFFERS: only in A", "only B": "DIFFERS: only in B"}[self.status]


def compare_tables(a: str | os.PathLike, b: str | os.PathLike, *, tolerance: float = 0.0,
                   name: str | None = None) -> TableResult:
    """Compare two CSV tables cell by cell (columns by name, rows by position), timing columns
    (:func:`timing_column`) apart; numbers agree within ``tolerance`` (absolute, default 0)."""
    name = name or Path(a).name
    try:
        (ca, ra), (cb, rb) = read_table(a), read_table(b)
    except InputError as exc:               # binary, not CSV, no permission: named, with why
        return TableResult(name, "unreadable", str(exc))
    problems: list[str] = []
    values_a = [c for c in ca if not timing_column(c)]
    values_b = [c for c in cb if not timing_column(c)]
    if only := [c for c in values_a if c not in cb]:
        problems.append(f"columns only in A: {_names(only)}")
    if only := [c for c in values_b if c not in ca]:
        problems.append(f"columns only in B: {_names(only)}")
    if len(ra) != len(rb):
        problems.append(f"{len(ra)} rows in A, {len(rb)} in B")
    timing_changed = sorted({c for c in ca if timing_column(c)} ^ {c for c in cb if timing_column(c)})
    cells: dict[str, int] = {}
    worst: float | None = None
    for col in [c for c in ca if c in cb]:
        ia, ib = ca.index(col), cb.index(col)
        n, col_worst = 0, None
        for row_a, row_b in zip(ra, rb):
            x = row_a[ia] if ia < len(row_a) else ""
            y = row_b[ib] if ib < len(row_b) else ""
            ok, diff = _same(x, y, tolerance)
            if not ok:
                n += 1
                if diff is not None:
                    col_worst = diff if col_worst is None else max(col_worst, diff)
        if not n:
            continue
        if timing_column(col):
            timing_changed.append(col)
            continue
        cells[col] = n
        if col_worst is not None:
            worst = col_worst if worst is None else max(worst, col_worst)
    if cells:
        total = sum(cells.values())
        problems.append(f"{total} cell{'s' if total > 1 else ''} in {len(cells)} column"
                        f"{'s' if len(cells) > 1 else ''}"
                        + (f", max abs difference {worst:.6g}" if worst is not None else "")
                        + ": " + _names([f"{c} ({n})" for c, n in cells.items()]))
    if problems:
        return TableResult(name, "differs", "; ".join(problems))
    if timing_changed:
        return TableResult(name, "timing", _names(list(dict.fromkeys(timing_changed))))
    return TableResult(name, "identical")


@dataclass
class _Run:
    """One side of a comparison: its manifest and, when at hand, its folder of outputs."""

    given: str
    manifest: dict
    folder: Path | None
    problem: str | None = None      # the manifest cannot be read: why

    def files(self, sub: str, pattern: str) -> dict[str, Path | None]:
        """``tables/x.csv`` -> the file on disk (None: known from the manifest only)."""
        if self.folder is not None:
            return {f"{sub}/{p.name}": p for p in sorted((self.folder / sub).glob(pattern))}
        return {k: None for k in self.manifest.get("output_files") or {}
                if k.startswith(f"{sub}/")}

    def recorded(self, key: str) -> dict:
        return (self.manifest.get("output_files") or {}).get(key) or {}


def _load(path: str | os.PathLike) -> _Run:
    p = Path(path)
    if p.is_dir():
        mpath = p / "manifest.json"
        if not mpath.is_file():
            raise InputError(f"{path}: no manifest.json (not an outputs folder of "
                             "`seaice reproduce`)")
    elif p.is_file():
        mpath = p
    else:
        raise InputError(f"{path}: no such outputs folder or manifest")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        problem = None if isinstance(manifest, dict) else "not a manifest of `seaice reproduce`"
    except (OSError, ValueError) as exc:      # ValueError: not UTF-8, not JSON
        problem = f"not a readable manifest ({getattr(exc, 'strerror', None) or exc})"
    folder = mpath.parent
    if not ((folder / "tables").is_dir() or (folder / "figures").is_dir()):
        if problem:
            raise InputError(f"{mpath}: {problem}; no tables/ beside it to compare")
        if not manifest.get("output_files"):
            raise InputError(f"{path}: neither tables/ beside the manifest nor file digests in "
                             "it: nothing to compare")
        folder = None
    return _Run(str(path), {} if problem else manifest, folder, problem and f"{mpath}: {problem}")


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _dict_diff(a: dict, b: dict) -> list[str]:
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<none>") != fb.get(k, "<none>"))


@dataclass
class Comparison:
    """The result of :func:`compare_runs`: one :class:`TableResult` per table, the figures'
    status, the integrity problems and notes on the profile, inputs and packages."""

    a: str
    b: str
    tables: list[TableResult] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)
    context: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every table agrees outside the timing columns and matches its (readable) manifest."""
        return not self.integrity and not any(t.failed for t in self.tables)

    def lines(self) -> list[str]:
        out = [f"A: {self.a}", f"B: {self.b}"]
        width = max([len(k) for k, _ in self.context] + [len(t.name) for t in self.tables]
                    + [len(f) for f, _ in self.figures] + [8])
        out += [f"  {k:<{width}}  {v}" for k, v in self.context]
        out += ["", "tables (timing columns left out):"]
        out += [f"  {t.name:<{width}}  {t.text()}" for t in self.tables] or ["  (none)"]
        out += ["", "figures (by SHA-256; never counted against the runs):"]
        out += [f"  {f:<{width}}  {s}" for f, s in self.figures] or ["  (none)"]
        if self.integrity:
            out += ["", "changed after the run (SHA-256 is not the manifest's, or unreadable):"]
            out += [f"  {x}" for x in self.integrity]
        n = {s: sum(t.status == s for t in self.tables)
             for s in ("identical", "timing", "differs", "only A", "only B", "unreadable")}
        out += ["", f"{len(self.tables)} tables: {n['identical']} identical, {n['timing']} "
                f"differ only in timing columns, {n['differs']} DIFFER, "
                f"{n['only A'] + n['only B']} in one run only, {n['unreadable']} unreadable; "
                f"{len(self.figures)} figures: "
                f"{sum(s == 'identical' for _, s in self.figures)} identical"]
        out.append("result: the runs agree outside timing columns" if self.ok
                   else "result: the runs DIFFER")
        return out


def _describe(run: _Run) -> str:
    m = run.manifest
    prof = ((m.get("params") or {}).get("global") or {}).get("profile", "?")
    where = "" if run.folder is not None else ", manifest only"
    return f"{run.given} (profile {prof}, started {m.get('started', '?')}{where})"


def _context(a: _Run, b: _Run) -> list[tuple[str, str]]:
    ga, gb = a.manifest.get("git") or {}, b.manifest.get("git") or {}
    dirty = " and ".join(x for x, g in (("A", ga), ("B", gb)) if g.get("dirty"))
    dirty = f" (uncommitted changes in {dirty})" if dirty else ""
    ca, cb = ga.get("commit") or "unknown", gb.get("commit") or "unknown"
    out = [("commit", f"same, {ca[:10]}{dirty}" if ca == cb else
            f"differs: {ca[:10]} vs {cb[:10]}{dirty}")]
    diff = _dict_diff(a.manifest.get("params") or {}, b.manifest.get("params") or {})
    out.append(("profile", f"differs in {_names(diff, 6)}" if diff else "identical settings"))
    ia, ib = a.manifest.get("inputs") or {}, b.manifest.get("inputs") or {}
    fa, fb = ia.get("files") or {}, ib.get("files") or {}
    if not (fa or fb):
        out.append(("inputs", "not recorded"))
    else:
        changed = sorted(k for k in set(fa) | set(fb)
                         if (fa.get(k) or {}).get("sha256") != (fb.get(k) or {}).get("sha256"))
        src = (f"{ia.get('source')}" if ia.get("source") == ib.get("source")
               else f"{ia.get('source')} vs {ib.get('source')}")
        out.append(("inputs", f"identical ({src}, {len(fa)} files)" if not changed else
                    f"differ ({src}): {len(changed)} of {len(set(fa) | set(fb))} files"))
    da = (a.manifest.get("environment") or {}).get("distributions") or {}
    db = (b.manifest.get("environment") or {}).get("distributions") or {}
    if da or db:
        diff = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
        out.append(("packages", f"identical ({len(da)} distributions)" if not diff else
                    "differ: " + _names([f"{k} {da.get(k, '-')} vs {db.get(k, '-')}"
                                         for k in diff], 4)))
    return out


def _table_digests(run: _Run, key: str, path: Path | None) -> dict:
    try:
        return run.recorded(key) if path is None else {
            "values_sha256": table_values_digest(path), **file_digest(path)}   # read it first
    except InputError as exc:
        return {"unreadable": str(exc)}


def _compare_by_digest(key: str, da: dict, db: dict) -> TableResult:
    """Compare a table by the digests of the two sides (one known from its manifest only)."""
    if bad := da.get("unreadable") or db.get("unreadable"):
        return TableResult(key, "unreadable", bad)
    if da.get("sha256") and da.get("sha256") == db.get("sha256"):
        return TableResult(key, "identical")
    if da.get("values_sha256") and da.get("values_sha256") == db.get("values_sha256"):
        return TableResult(key, "timing", "by the manifest's digest")
    return TableResult(key, "differs", "digests differ (table not at hand to tell the cells)")


def _digest(run: _Run, key: str, path: Path | None) -> dict:
    """The file's digest (the manifest's when the file is not at hand), or {"unreadable": why}."""
    try:
        return run.recorded(key) if path is None else file_digest(path)
    except OSError as exc:
        return {"unreadable": f"{path} ({exc.strerror or exc})"}


def compare_runs(a: str | os.PathLike, b: str | os.PathLike, *,
                 tolerance: float = 0.0) -> Comparison:
    """Compare the tables and figures of two runs (outputs folders or manifests).

    Raises
    ------
    InputError
        When ``a`` or ``b`` is neither an outputs folder with a ``manifest.json`` nor a manifest.
    """
    ra, rb = _load(a), _load(b)
    cmp = Comparison(_describe(ra), _describe(rb), context=_context(ra, rb),
                     integrity=[r.problem for r in (ra, rb) if r.problem])
    for run, label in ((ra, "A"), (rb, "B")):
        if run.folder is None or not run.manifest.get("output_files"):
            continue
        recorded = {k for k in run.manifest["output_files"]}
        for sub, pattern in (("tables", "*.csv"), ("figures", "*.png")):
            for key, path in run.files(sub, pattern).items():
                want = run.recorded(key).get("sha256")
                if key not in recorded:
                    cmp.integrity.append(f"{label}: {key} is not in its manifest")
                elif want and _digest(run, key, path).get("sha256", want) != want:
                    cmp.integrity.append(f"{label}: {key}")
        for key in sorted(recorded - set(run.files("tables", "*.csv"))
                          - set(run.files("figures", "*.png"))):
            cmp.integrity.append(f"{label}: {key} is in its manifest but missing")
    ta, tb = ra.files("tables", "*.csv"), rb.files("tables", "*.csv")
    for key in sorted(set(ta) | set(tb)):
        if key not in tb:
            cmp.tables.append(TableResult(key, "only A"))
        elif key not in ta:
            cmp.tables.append(TableResult(key, "only B"))
        elif ta[key] is not None and tb[key] is not None:
            cmp.tables.append(compare_tables(ta[key], tb[key], tolerance=tolerance, name=key))
        else:
            cmp.tables.append(_compare_by_digest(key, _table_digests(ra, key, ta[key]),
                                                 _table_digests(rb, key, tb[key])))
    fa, fb = ra.files("figures", "*.png"), rb.files("figures", "*.png")
    for key in sorted(set(fa) | set(fb)):
        if key not in fa or key not in fb:
            cmp.figures.append((key, f"only in {'A' if key in fa else 'B'}"))
            continue
        da, db = _digest(ra, key, fa[key]), _digest(rb, key, fb[key])
        bad = da.get("unreadable") or db.get("unreadable")
        cmp.figures.append((key, f"not readable: {bad}" if bad else "identical"
                            if da.get("sha256") == db.get("sha256")
                            else "differ (expected where a figure shows timings)"))
    return cmp


# -- headline figures of a run, for the comparison table of batch reruns ----------------------

#: Where each headline figure of :func:`headline_figures` comes from (``<outputs>/tables``).
HEADLINES = {
    "02_<class>_fraction": "02_class_fractions.csv, row scene=all, labels=filter: the class "
                           "fractions of the auto-labels with the filter (all scenes)",
    "02_agreement_<labels>": "02_class_fractions.csv, scene=all: agreement with the reference "
                             "of the auto-labels with and without the filter",
    "03_table1_speedup": "03_table1_multiprocessing.csv: speedup at the largest process count "
                         "(03_table1_processes)",
    "03_table2_reduce_speedup": "03_table2_spark.csv: reduce-step speedup at the most task "
                                "slots (03_table2_slots)",
    "04_table3_speedup": "04_table3_horovod.csv: speedup at the most workers (04_table3_workers)",
    "05_table4_accuracy_pct_<model>_<input>": "05_table4_accuracy.csv: accuracy_pct",
    "05_table5_accuracy_pct_<model>_<input>_<cloudy|clear>": "05_table5_cloud_strata.csv: "
                                                             "accuracy_pct per cloud stratum",
}


def _slug(text: str) -> str:
    text = text.strip().lower()
    if text.startswith(">"):
        return "cloudy"
    if text.startswith("<="):
        return "clear"
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def _rows(tables: Path, name: str) -> list[dict]:
    try:
        cols, rows = read_table(tables / name)
    except InputError:                  # not written (or not readable): no headline figures
        return []
    return [dict(zip(cols, r)) for r in rows]


def _at_most(rows: list[dict], x: str, y: str, prefix: str, out: dict) -> None:
    rows = [r for r in rows if _number(r.get(x, "")) is not None and r.get(y, "") != ""]
    if rows:
        top = max(rows, key=lambda r: float(r[x]))
        out[f"{prefix}_{y}"] = top[y]
        out[f"{prefix}_{x}"] = top[x]


def headline_figures(outputs: str | os.PathLike) -> dict[str, str]:
    """A run's headline figures, read from its tables (see :data:`HEADLINES`); figures of
    tables the run did not write are left out. Values are the tables' text."""
    tables = Path(outputs) / "tables"
    out: dict[str, str] = {}
    agreement: dict[str, str] = {}
    for r in _rows(tables, "02_class_fractions.csv"):
        if r.get("scene") != "all":
            continue
        if r.get("labels") == "filter":
            out.update({f"02_{k}_fraction": r[k] for k in CLASS_KEYS.values()   # class columns
                        if r.get(k, "") != ""})
        if r.get("labels") in ("filter", "no filter") and r.get("agreement", "") != "":
            agreement[f"02_agreement_{_slug(r['labels'])}"] = r["agreement"]
    out.update(sorted(agreement.items()))
    spd: dict[str, str] = {}
    _at_most(_rows(tables, "03_table1_multiprocessing.csv"), "processes", "speedup",
             "03_table1", spd)
    _at_most(_rows(tables, "03_table2_spark.csv"), "slots", "reduce_speedup", "03_table2", spd)
    _at_most(_rows(tables, "04_table3_horovod.csv"), "workers", "speedup", "04_table3", spd)
    out.update(spd)
    for r in _rows(tables, "05_table4_accuracy.csv"):
        if r.get("accuracy_pct", "") != "":
            out[f"05_table4_accuracy_pct_{_slug(r['model'])}_{_slug(r['input'])}"] = \
                r["accuracy_pct"]
    for r in _rows(tables, "05_table5_cloud_strata.csv"):
        stratum = _slug(r.get("stratum", ""))
        if stratum in ("cloudy", "clear") and r.get("accuracy_pct", "") != "":
            out[f"05_table5_accuracy_pct_{_slug(r['model'])}_{_slug(r['input'])}_{stratum}"] = \
                r["accuracy_pct"]
    return out


def comparison_text(rows: list[dict]) -> str:
    """The comparison table of a batch, one line per column and one column per profile
    (numbers with 4 significant digits)."""
    if not rows:
        return "(no runs)"
    keys = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v) -> str:
        x = _number(str(v)) if v not in (None, "", True, False) else None
        return "" if v is None else (f"{x:.4g}" if x is not None and "." in str(v) else str(v))

    grid = [[k] + [cell(r.get(k, "")) for r in rows] for k in keys]
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in grid)
