"""Timing of auto-labelling for notebook 03: per-tile kernels, Table I and Table II, speedups.

What is compared
----------------
:func:`kernel_timings` (summarised by :func:`summarise_kernels`)
    One 256 px tile on one core (``cv2.setNumThreads(1)``): the literal reference
    (:mod:`seaice_utils.labelling.reference`) against the production kernels, for colour
    segmentation (class map + palette image), the filter, filter + segmentation and the median
    blur of step 5. Calls alternate between the two implementations so that a busy machine
    slows both alike; outputs are checked to be bit-identical.
:func:`table1_multiprocessing` (Table I)
    The ``multiprocessing`` engine with each process count against the ``sequential`` engine
    on the same tiles (:func:`time_job`: fresh output folders, the fastest of ``repeats``).
:func:`table2_spark` (Table II)
    The ``spark`` engine's load / map / reduce times for each executors x cores pair, in local
    mode or on a standalone cluster on this machine; session start-up and worker warm-up are
    timed apart and excluded.

:func:`speedup_figure` draws measured speedups against the ideal line, :func:`machine` records
the cores and CPU the timings were taken on. Timings on a shared machine are indicative only;
the developer benchmarks at paper scale (4224 tiles, the reference run end to end, Spark against
multiprocessing) are ``tests/benchmarks/bench_labelling.py``.
"""

from __future__ import annotations

import shutil
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np

from seaice_utils.core.classes import palette_unchecked
from seaice_utils.core.figures import new_figure
from seaice_utils.core.speedup_plot import draw_speedups
from seaice_utils.engines.cluster import LocalStandaloneCluster
from seaice_utils.engines.spark import spark_session, warm_up
from seaice_utils.errors import InputError
from seaice_utils.labelling.autolabel import Thresholds, auto_label, segment
from seaice_utils.labelling.cloudfilter import FilterParams, thin_cloud_shadow_filter
from seaice_utils.labelling.jobs import LabelTask, run_label_job
from seaice_utils.labelling.kernels import median_blur
from seaice_utils.labelling.pipeline import read_input
from seaice_utils.labelling.reference import (reference_auto_label, reference_filter,
                                              reference_label_files, reference_segment)
from seaice_utils.report import environment_info

__all__ = ["one_core", "kernel_timings", "summarise_kernels", "time_job",
           "table1_multiprocessing", "table2_spark", "sample_scenes", "machine", "speedup_figure"]


@contextmanager
def one_core() -> Iterator[None]:
    """OpenCV on one thread inside the block (restored after)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def machine() -> dict[str, Any]:
    """Cores and CPU model (:func:`seaice_utils.report.environment_info`)."""
    info = environment_info()
    return {"cpu_count": info["cpu_count"], "cpu_model": info["cpu_model"],
            "python": info["python"], "platform": info["platform"]}


# --- data -------------------------------------------------------------------------------------

def sample_scenes(files: Sequence[Path], n: int):
    """``n`` tiles spread evenly over ``files``, read as scenes (RGB + no-data mask)."""
    files = list(files)
    if not files:
        raise InputError("no tiles to sample")
    idx = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    return [read_input(files[i]) for i in idx]


# --- per-tile kernels ---------------------------------------------------------------------------

def _kernels(filter_params, thresholds) -> dict[str, tuple[Callable, Callable, Callable]]:
    """name -> (reference(rgb, nodata), fast(rgb, nodata), equal(ref_out, fast_out))."""
    fp, thr = filter_params, thresholds

    def seg_fast(rgb, nd):
        c = segment(rgb, thr, nodata=nd)
        return c, palette_unchecked(c)

    def auto_fast(rgb, nd):
        c, lv = auto_label(rgb, nodata=nd, filter_params=fp, thresholds=thr)
        return c, palette_unchecked(c), lv

    def same(a, b):
        a = a if isinstance(a, tuple) else (a,)
        b = b if isinstance(b, tuple) else (b,)
        return all(np.array_equal(x, y) for x, y in zip(a, b))

    def dilated(rgb):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        grey[rgb.max(axis=2) <= fp.water_v_max] = 255
        return cv2.dilate(grey, np.ones((fp.dilation, fp.dilation), np.uint8))

    return {
        "segmentation": (lambda rgb, nd: reference_segment(rgb, thr, nodata=nd), seg_fast, same),
        "filter": (lambda rgb, nd: reference_filter(rgb, fp, nodata=nd),
                   lambda rgb, nd: thin_cloud_shadow_filter(rgb, fp, nodata=nd), same),
        "filter+segmentation": (
            lambda rgb, nd: reference_auto_label(rgb, nodata=nd, filter_params=fp, thresholds=thr),
            auto_fast, same),
        "median blur (step 5)": (
            lambda d, nd: cv2.medianBlur(d, fp.median_kernel),
            lambda d, nd: median_blur(d, fp.median_kernel), same, dilated),
    }


def kernel_timings(scenes, *, filter_params=None, thresholds=None, repeats: int = 20,
                   progress: bool = False):
    """Time the reference and the fast per-tile kernels on one core, alternating calls.

    Parameters
    ----------
    scenes : list of Scene
        Tiles (RGB + no-data mask).
    filter_params : FilterParams, optional
    thresholds : Thresholds, optional
    repeats : int
        Timed calls per tile, kernel and implementation.

    Returns
    -------
    pandas.DataFrame
        One row per (kernel, tile): ``reference_ms`` and ``fast_ms`` (median of the calls),
        ``reference_min_ms``, ``fast_min_ms``, ``identical`` (outputs bit-identical).
    """
    import pandas as pd
    from tqdm import tqdm

    kernels = _kernels(filter_params or FilterParams(), thresholds or Thresholds())
    rows = []
    with one_core():
        for sc in tqdm(scenes, desc="kernel timings", unit="tile", disable=not progress):
            nd = sc.nodata if sc.nodata.any() else None
            for name, spec in kernels.items():
                ref, fast, same = spec[:3]
                arg = spec[3](sc.rgb) if len(spec) > 3 else sc.rgb
                identical = same(ref(arg, nd), fast(arg, nd))   # also a warm-up call
                tr, tf = [], []
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    ref(arg, nd)
                    t1 = time.perf_counter()
                    fast(arg, nd)
                    t2 = time.perf_counter()
                    tr.append(t1 - t0)
                    tf.append(t2 - t1)
                rows.append({"kernel": name, "tile": sc.name,
                             "reference_ms": 1e3 * statistics.median(tr),
                             "fast_ms": 1e3 * statistics.median(tf),
                             "reference_min_ms": 1e3 * min(tr), "fast_min_ms": 1e3 * min(tf),
                             "identical": bool(identical)})
    return pd.DataFrame(rows)


def summarise_kernels(per_tile):
    """Per kernel: mean over tiles of the per-tile medians, speedup, all outputs identical."""
    g = per_tile.groupby("kernel", sort=False)
    out = g.agg(tiles=("tile", "count"), reference_ms=("reference_ms", "mean"),
                fast_ms=("fast_ms", "mean"), reference_min_ms=("reference_min_ms", "mean"),
                fast_min_ms=("fast_min_ms", "mean"), identical=("identical", "all")).reset_index()
    out["speedup"] = out["reference_ms"] / out["fast_ms"]
    out["speedup_min"] = out["reference_min_ms"] / out["fast_min_ms"]
    cols = ["kernel", "tiles", "reference_ms", "fast_ms", "speedup", "reference_min_ms",
            "fast_min_ms", "speedup_min", "identical"]
    return out[cols]


# --- jobs ---------------------------------------------------------------------------------------

def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def time_job(files: Sequence[Path], work: str | Path, opts, *, engine: str, workers: int = 1,
             repeats: int = 1, progress: bool = False, **kw) -> dict[str, Any]:
    """Run a labelling job ``repeats`` times into fresh folders; keep the fastest run.

    ``engine="reference"`` is the reference run (sequential, literal kernels, one core).

    Returns
    -------
    dict
        ``engine``, ``workers``, ``seconds`` (total of the fastest run), its phases, ``labelled``,
        ``failed``, ``output`` (folder of the last run).
    """
    best: dict[str, Any] | None = None
    out = Path(work)
    for _ in range(repeats):
        _fresh(out)
        if engine == "reference":
            with one_core():
                t0 = time.perf_counter()
                s = reference_label_files(files, out, opts, progress=progress)
                phases = {"total": time.perf_counter() - t0}
        else:
            s = run_label_job(files, out, opts, engine=engine, workers=workers,
                              progress=progress, **kw)
            phases = dict(s.seconds)
        rec = {"engine": engine, "workers": workers, "seconds": phases["total"],
               "phases": phases, "labelled": len(s.done), "failed": len(s.failures),
               "output": str(out)}
        if best is None or rec["seconds"] < best["seconds"]:
            best = rec
    assert best is not None
    return best


def _oversubscribed(n: int) -> bool:
    import os

    return n > (os.cpu_count() or 1)


def table1_multiprocessing(files: Sequence[Path], work: str | Path, opts, *,
                           processes: Sequence[int] = (1, 2, 4, 6, 8), repeats: int = 1,
                           progress: bool = False):
    """Table I: multiprocessing with each process count vs the sequential engine.

    Returns
    -------
    pandas.DataFrame
        processes, parallel_s, sequential_s, speedup (sequential / parallel), efficiency
        (speedup / processes), oversubscribed (more processes than cores), tiles.
    """
    import pandas as pd

    work = Path(work)
    seq = time_job(files, work / "sequential", opts, engine="sequential", repeats=repeats,
                   progress=progress)
    rows = []
    for n in processes:
        r = time_job(files, work / f"mp{n}", opts, engine="multiprocessing", workers=n,
                     repeats=repeats, progress=progress)
        rows.append({"processes": n, "parallel_s": r["seconds"], "sequential_s": seq["seconds"],
                     "speedup": seq["seconds"] / r["seconds"],
                     "efficiency": seq["seconds"] / r["seconds"] / n,
                     "oversubscribed": _oversubscribed(n), "tiles": len(files),
                     "failed": r["failed"]})
    return pd.DataFrame(rows)


def table2_spark(files: Sequence[Path], work: str | Path, opts, *,
                 grid: Sequence[Sequence[int]] = ((1, 1), (1, 2), (2, 1)),
                 cluster: str = "local", output: str = "executors", batch_size: int = 64,
                 repeats: int = 1, progress: bool = False):
    """Table II: Spark load / map / reduce times for each executors x cores of ``grid``.

    ``cluster="local"`` runs ``local[executors*cores]`` (one JVM whose ``executors*cores`` task
    slots stand for the cluster's); ``"standalone"`` starts a standalone master and one worker
    on this machine and asks for ``executors`` executors of ``cores`` cores each (separate JVMs,
    like a real cluster, but sharing this machine's cores). The load phase caches the bytes
    (``cache=True``) so that load and reduce are timed apart, as in the paper.

    Returns
    -------
    pandas.DataFrame
        executors, cores, slots, startup_s, load_s, map_s, reduce_s, total_s, speedups
        relative to the first row, oversubscribed.
    """
    import pandas as pd

    work = Path(work)
    rows = []
    for e, c in grid:
        cluster_obj = None
        t0 = time.perf_counter()
        if cluster == "standalone":
            cluster_obj = LocalStandaloneCluster(workers=1, cores=e * c,
                                                 memory=f"{640 * e}m").start()
            master = cluster_obj.url
            conf = {"spark.executor.cores": str(c), "spark.cores.max": str(e * c),
                    "spark.executor.memory": "512m"}
        else:
            master, conf = f"local[{e * c}]", {}
        try:
            spark = spark_session(master, app_name=LabelTask.app_name, conf=conf,
                                  progress=progress, batch_size=batch_size)
            startup = time.perf_counter() - t0
            try:
                warm = warm_up(spark, files[:2 * e * c], LabelTask(work, opts), output=output)
                best = None
                for _ in range(repeats):
                    out = _fresh(work / f"spark{e}x{c}")
                    s = run_label_job(files, out, opts, engine="spark", spark=spark,
                                      output=output, batch_size=batch_size, cache=True,
                                      warm=False, progress=progress)
                    if best is None or s.seconds["total"] < best.seconds["total"]:
                        best = s
            finally:
                spark.stop()
        finally:
            if cluster_obj is not None:
                cluster_obj.stop()
        sec = best.seconds
        rows.append({"executors": e, "cores": c, "slots": e * c, "startup_s": startup,
                     "warmup_s": warm, "load_s": sec["load"], "map_s": sec["map"],
                     "reduce_s": sec["reduce"], "total_s": sec["total"],
                     "oversubscribed": _oversubscribed(e * c), "tiles": len(files),
                     "failed": len(best.failures)})
    df = pd.DataFrame(rows)
    for k in ("load", "reduce", "total"):
        df[f"{k}_speedup"] = df[f"{k}_s"].iloc[0] / df[f"{k}_s"]
    return df


def speedup_figure(x: Sequence[float], series: dict[str, Sequence[float]], *, xlabel: str,
                   title: str, cores: int | None = None, labels: Sequence[str] | None = None,
                   reference: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                   lines: bool = True):
    """Speedup against workers with the ideal line ``y = x``
    (:func:`~seaice_utils.core.speedup_plot.draw_speedups`).

    Parameters
    ----------
    x : sequence of float
        Workers (processes, or Spark task slots).
    series : dict of name -> sequence of float
        Measured speedups, one value per ``x``.
    cores : int, optional
        Cores of this machine: the oversubscribed region ``x > cores`` is shaded.
    labels : sequence of str, optional
        Text next to each point of the first series (e.g. ``"2x4"`` for executors x cores).
    reference : dict of name -> (x, y), optional
        Published speedups, in grey.
    lines : bool
        Join the points of a series (sorted by x); False draws points only.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = new_figure((6, 4.2))
    ax = fig.subplots()
    first = next(iter(series), None)
    draw_speedups(ax, {name: (x, y) for name, y in series.items()}, xlabel=xlabel,
                  reference=reference, title=title, lines=lines, cores=cores,
                  notes={first: labels} if labels is not None else None, title_size=12)
    fig.tight_layout()
    return fig
