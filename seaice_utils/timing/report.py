"""Notebook 03's set-up, figures and summary around the timings of :mod:`.tables`.

:func:`setup_bench` gets the tiles a profile benchmarks ready (the dataset notebook 01 made, its
tiles, the labelling options) and records the machine; :func:`kernel_table` times the per-tile
kernels (:func:`~.tables.kernel_timings`) and :func:`with_machine` tags a table with the machine;
:func:`table1_figure` and :func:`table2_figure` draw Tables I and II against the paper's
speedups; :func:`bench_summary` gathers the headline figures the run manifest records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seaice_utils.data.dataset import ensure_dataset, resolve_source
from seaice_utils.data.tiles import prepare_tiles, tile_path
from seaice_utils.labelling.pipeline import LabelOptions
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.paper import PAPER_TABLE1, PAPER_TABLE2
from seaice_utils.report import record
from seaice_utils.timing.tables import (kernel_timings, machine, sample_scenes, speedup_figure,
                                        summarise_kernels)

__all__ = ["Bench", "setup_bench", "with_machine", "kernel_table", "table1_figure",
           "table2_figure", "bench_summary"]


@dataclass
class Bench:
    """What notebook 03 benchmarks: the resolved profile, its ``engines`` section, the outputs
    folder, the labelling options, the scratch folder (``<outputs>/bench``), the tiles and the
    machine (:func:`~.tables.machine`)."""

    params: dict
    eng: dict
    outputs: Path
    opts: LabelOptions
    work: Path
    files: list[Path]
    machine: dict[str, Any]
    n_scenes: int


def setup_bench(params: dict, outputs_dir: str | os.PathLike, *, verbose: bool = True) -> Bench:
    """The tiles and labelling options of a profile, the dataset notebook 01 produced.

    Points ``params`` at the dataset notebook 01 used (:func:`resolve_source`), writes its tiles
    to ``<outputs>/tiles`` (shared with notebook 04), keeps the first ``engines.bench_tiles``
    (all when 0), records the machine as ``03_machine`` and prints what is benchmarked.
    """
    params = resolve_source(params, outputs_dir)
    eng = params["engines"]
    outputs = Path(outputs_dir)
    opts = LabelOptions(filter_params=filter_params(params) if eng["with_filter"] else None,
                        thresholds=thresholds(params),
                        expect_size=(params["global"]["tile_size"],) * 2)
    records = ensure_dataset(outputs, params)
    rows = prepare_tiles(records, outputs / "tiles", params)
    files = [tile_path(outputs / "tiles", "rgb", r["tile"]) for r in rows]
    if eng["bench_tiles"]:
        files = files[: eng["bench_tiles"]]
    info = machine()
    record(outputs, "03_machine", info)
    if verbose:
        print(f"{len(files)} tiles of {params['global']['tile_size']} px from {len(records)} "
              f"scenes; {'filter + segmentation' if eng['with_filter'] else 'segmentation only'}")
        print(f"machine: {info['cpu_count']} cores, {info['cpu_model']} ({info['platform']})")
    return Bench(params=params, eng=eng, outputs=outputs, opts=opts, work=outputs / "bench",
                 files=files, machine=info, n_scenes=len(records))


def with_machine(table, info: dict[str, Any], **columns: Any):
    """``table`` with ``columns`` and the machine's ``cpu_count`` and ``cpu_model`` added
    (in that order)."""
    return table.assign(**columns, cpu_count=info["cpu_count"], cpu_model=info["cpu_model"])


def kernel_table(bench: Bench):
    """Per-tile kernel timings (:func:`~.tables.summarise_kernels`) of
    ``engines.kernel_tiles`` tiles, ``engines.kernel_repeats`` calls each, with the machine
    (the filter is timed even when the profile labels without it)."""
    scenes = sample_scenes(bench.files, bench.eng["kernel_tiles"])
    per_tile = kernel_timings(scenes,
                              filter_params=bench.opts.filter_params or filter_params(bench.params),
                              thresholds=bench.opts.thresholds,
                              repeats=bench.eng["kernel_repeats"])
    return with_machine(summarise_kernels(per_tile), bench.machine)


def table1_figure(table1, bench: Bench):
    """Table I's speedups against processes, with the paper's (4224 tiles, 4-core i5)."""
    paper1 = {"paper, 4224 tiles, 4-core i5":
              (list(PAPER_TABLE1), [PAPER_TABLE1[1] / t for t in PAPER_TABLE1.values()])}
    return speedup_figure(table1["processes"], {"this run": table1["speedup"]},
                          xlabel="worker processes", cores=bench.machine["cpu_count"],
                          reference=paper1,
                          title=("Table I: multiprocessing auto-labelling, "
                                 f"{len(bench.files)} tiles"))


def table2_figure(table2, bench: Bench):
    """Table II's reduce, load and total speedups against task slots (each point labelled
    executors x cores), with the paper's reduce speedups on 4 nodes."""
    paper2 = {(e, c): v for (e, c), v in PAPER_TABLE2.items()}
    ref_reduce = paper2[(1, 1)][2]
    paper_slots = [e * c for e, c in paper2]
    return speedup_figure(
        table2["slots"], {"reduce (this run)": table2["reduce_speedup"],
                          "load (this run)": table2["load_speedup"],
                          "load + map + reduce (this run)": table2["total_speedup"]},
        xlabel="task slots (executors x cores)", cores=bench.machine["cpu_count"], lines=False,
        labels=[f"{e}x{c}" for e, c in zip(table2["executors"], table2["cores"])],
        reference={"paper reduce, 4 nodes": (paper_slots,
                                             [ref_reduce / v[2] for v in paper2.values()])},
        title=f"Table II: Spark ({bench.eng['spark_cluster']}), {len(bench.files)} tiles")


def bench_summary(bench: Bench, kernels, table1, table2) -> dict[str, Any]:
    """The headline figures of notebook 03 for the run manifest: the kernel speedups, the
    multiprocessing speedup and efficiency at 2 processes, Spark's total time per executors x
    cores, and Spark at 2 task slots relative to multiprocessing with 2 processes."""
    k = kernels.set_index("kernel")
    t1 = table1.set_index("processes")
    info = bench.machine
    summary = {
        "tiles": len(bench.files), "cpu_count": info["cpu_count"], "cpu_model": info["cpu_model"],
        "segmentation_speedup": float(k.loc["segmentation", "speedup"]),
        "filter_segmentation_speedup": float(k.loc["filter+segmentation", "speedup"]),
        "mp_speedup_2": float(t1.loc[2, "speedup"]) if 2 in t1.index else None,
        "mp_efficiency_1_to_2": (float(t1.loc[1, "parallel_s"] / t1.loc[2, "parallel_s"] / 2)
                                 if {1, 2} <= set(t1.index) else None),
        "spark_total_s": {f"{e}x{c}": float(t) for e, c, t in
                          zip(table2["executors"], table2["cores"], table2["total_s"])},
    }
    two = table2[table2["slots"] == 2]
    if 2 in t1.index and len(two):
        summary["spark_2_slots_over_mp_2"] = float(two["total_s"].min() / t1.loc[2, "parallel_s"])
    return summary
