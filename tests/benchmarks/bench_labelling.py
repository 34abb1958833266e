"""Developer benchmarks of auto-labelling: per-tile kernels, engines end to end, Spark vs
multiprocessing, at paper scale.

Run from the project folder (each subcommand prints a table and writes CSV and JSON)::

    .venv/bin/python tests/benchmarks/bench_labelling.py kernels [--root DIR] [--tiles 16] [--repeats 50]
    .venv/bin/python tests/benchmarks/bench_labelling.py dataset --root DIR [--scenes 66] [--size 2048]
    .venv/bin/python tests/benchmarks/bench_labelling.py e2e     --root DIR [--workers 2] [--no-filter] [--limit N]
    .venv/bin/python tests/benchmarks/bench_labelling.py spark   --root DIR [--workers 2] [--spark-output executors]
    .venv/bin/python tests/benchmarks/bench_labelling.py all     --root DIR          # all of the above (the default)
    .venv/bin/python tests/benchmarks/bench_labelling.py all     --root DIR --scratch /dev/shm/seaice-bench

``--root`` is the benchmark folder: the paper-scale synthetic dataset (66 scenes of 2048 px,
:func:`seaice_utils.data.dataset.ensure_synthetic_dataset`) is generated there on first use and
cut into 4224 tiles of 256 px (:func:`seaice_utils.core.tiling.split_tiles`, written as
``<root>/tiles/rgb/<tile>.png`` like :func:`seaice_utils.data.tiles.prepare_tiles` lays them
out). Results go to ``<root>/results`` (``--out`` to change). The timing functions themselves
are the package's (:mod:`seaice_utils.timing.tables`, notebook 03's Tables I and II).

What is compared
----------------
``kernels``
    One 256 px tile on one core (``cv2.setNumThreads(1)``): the literal reference
    (:mod:`seaice_utils.labelling.reference`) against the production kernels, for colour
    segmentation (class map + palette image), the filter, and filter + segmentation. Calls
    alternate between the two implementations so that a busy machine slows both alike; outputs
    are checked to be bit-identical.
``e2e``
    PNG tiles in, label files out: the reference run
    (:func:`seaice_utils.labelling.reference.reference_label_files`, sequential) against the
    ``sequential`` engine and ``multiprocessing`` with 1 and ``workers`` processes. Parallel
    efficiency = speedup(1 -> N) / N.
``spark``
    ``multiprocessing`` with N workers and ``spark`` with ``local[N]`` on the same tiles, side by
    side; Spark's session start-up and worker warm-up are timed apart and excluded.

Every job writes into a fresh output folder (no resume effects) under ``<root>/runs``, or under
``--scratch DIR``. Each job writes about 12,700 small files (labels, classes, sidecars); on a
virtual disk whose write rate is throttled after a burst, the later jobs of a session get slower
than the earlier ones (measured: the same multiprocessing-2 job took 9.2 s early and 15-17 s
after some twenty jobs, but 10.3 s with ``--scratch /dev/shm/...``), which distorts side-by-side
ratios. ``--scratch`` on a RAM folder takes the disk out of the comparison. Timings on a shared
machine are indicative only; rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from seaice_utils.timing.tables import (kernel_timings, machine, sample_scenes,
                                        summarise_kernels, time_job)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def paper_tiles(root: str | Path, *, n_scenes: int = 66, size: int = 2048, tile: int = 256,
                seed: int = 0, progress: bool = True) -> list[Path]:
    """The paper-scale tile set under ``root`` (generated on first use, resumable).

    Scenes come from :func:`seaice_utils.data.dataset.ensure_synthetic_dataset` with the paper
    profile's data section (``n_scenes`` and ``size`` overriding it) into ``<root>/data``; each
    scene is cut by :func:`seaice_utils.core.tiling.split_tiles` and written to
    ``<root>/tiles/rgb/<tile>.png``. A scene's marker ``<root>/tiles/done/<scene>`` is written
    after its tiles, so an interrupted run redoes only unfinished scenes.

    Returns
    -------
    list of Path
        Tile files, sorted (66 x 64 = 4224 with the defaults).
    """
    from tqdm.auto import tqdm

    from seaice_utils.data.dataset import ensure_synthetic_dataset, load_scene
    from seaice_utils.params import load_params, load_params_dict
    from seaice_utils.core.scenes import atomic_write_bytes, write_png
    from seaice_utils.data.tiles import tile_path
    from seaice_utils.core.tiling import split_tiles

    root = Path(root)
    params = load_params("paper")
    params["data"].update(n_scenes=n_scenes, scene_size=size)
    params["global"].update(seed=seed, tile_size=tile)
    params = load_params_dict(params, source="bench")
    records = ensure_synthetic_dataset(root / "data", params, progress=progress)
    tiles_root = root / "tiles"
    files: list[Path] = []
    for rec in tqdm(records, desc="tiling scenes", unit="scene", disable=not progress):
        marker = tiles_root / "done" / rec.name
        scene = None if marker.is_file() else load_scene(rec)
        names = []
        if scene is None:
            names = [ln for ln in marker.read_text().split()]
        else:
            split, _ = split_tiles(scene.rgb, rec.name, tile, nodata=scene.nodata)
            for name, arr in split.items():
                write_png(tile_path(tiles_root, "rgb", name), arr)
                names.append(name)
            atomic_write_bytes(marker, ("\n".join(names) + "\n").encode())
        files += [tile_path(tiles_root, "rgb", n) for n in names]
    return sorted(files)


def _synthetic_tiles(n: int, tile: int = 256):
    """Tiles of a few synthetic scenes (half cloudy), when no benchmark folder is given."""
    from seaice_utils.core.scenes import Scene
    from seaice_utils.data.synthetic import synthesize_scene
    from seaice_utils.core.tiling import split_tiles

    out = []
    seed = 0
    while len(out) < n:
        sc = synthesize_scene(seed, size=1024, cloud_cover=0.3 if seed % 2 else 0.0,
                              shadow_cover=0.1 if seed % 2 else 0.0, nodata_wedge=seed % 3 == 2)
        tiles, masks = split_tiles(sc.image, sc.name, tile, nodata=sc.nodata)
        for name in list(tiles)[::3]:
            out.append(Scene(rgb=tiles[name], nodata=masks[name], name=name))
        seed += 1
    return out[:n]


def e2e_benchmark(files: Sequence[Path], work: str | Path, opts, *, workers: int = 2,
                  repeats: int = 1, progress: bool = False):
    """Reference run vs the engines on the same tiles (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per run: engine, workers, seconds, ms_per_tile, speedup_vs_reference; the
        multiprocessing rows also carry ``efficiency_vs_1`` (speedup over 1 process / workers).
    """
    import pandas as pd

    work = Path(work)
    runs = [("reference", 1), ("sequential", 1), ("multiprocessing", 1),
            ("multiprocessing", workers)]
    recs = [time_job(files, work / f"{e}{w}", opts, engine=e, workers=w, repeats=repeats,
                     progress=progress) for e, w in runs]
    _check_same_labels(files, [Path(r["output"]) for r in recs])
    ref = recs[0]["seconds"]
    mp1 = recs[2]["seconds"]
    rows = []
    for r in recs:
        row = {"engine": r["engine"], "workers": r["workers"], "seconds": r["seconds"],
               "ms_per_tile": 1e3 * r["seconds"] / len(files),
               "speedup_vs_reference": ref / r["seconds"], "labelled": r["labelled"],
               "failed": r["failed"], "efficiency_vs_1": float("nan")}
        if r["engine"] == "multiprocessing":
            row["efficiency_vs_1"] = mp1 / r["seconds"] / r["workers"]
        rows.append(row)
    return pd.DataFrame(rows)


def _check_same_labels(files: Sequence[Path], outs: Sequence[Path], sample: int = 16) -> None:
    """The runs wrote the same label images (checked on a sample of tiles)."""
    from seaice_utils.labelling.pipeline import output_paths

    for f in list(files)[:: max(1, len(files) // sample)]:
        imgs = [cv2.imread(str(output_paths(o, f.stem)["labels"]), cv2.IMREAD_UNCHANGED)
                for o in outs]
        if any(i is None for i in imgs):
            continue    # a failed input: no outputs anywhere
        if not all(np.array_equal(imgs[0], i) for i in imgs[1:]):
            raise AssertionError(f"runs disagree on the labels of {f.name}")


def spark_benchmark(files: Sequence[Path], work: str | Path, opts, *, workers: int = 2,
                    output: str = "executors", batch_size: int = 64, repeats: int = 1,
                    progress: bool = False):
    """``multiprocessing`` (N workers) vs ``spark`` (``local[N]``), timed side by side.

    Spark's session start-up and warm-up are timed but excluded from ``seconds``. The runs
    alternate (mp, spark, mp, spark ...) when ``repeats`` > 1; the fastest of each is kept.

    Returns
    -------
    pandas.DataFrame
        engine, workers, seconds, startup_s, warmup_s, load_s, map_s, reduce_s,
        ratio_to_multiprocessing.
    """
    import pandas as pd

    from seaice_utils.engines.spark import spark_session, warm_up
    from seaice_utils.labelling.jobs import LabelTask, run_label_job

    work = Path(work)
    t0 = time.perf_counter()
    spark = spark_session(f"local[{workers}]", app_name=LabelTask.app_name, progress=progress,
                          batch_size=batch_size)
    startup = time.perf_counter() - t0
    best_mp = best_sp = None
    try:
        warm = warm_up(spark, files[:2 * workers], LabelTask(work, opts), output=output)
        for _ in range(repeats):
            mp = time_job(files, work / f"mp{workers}", opts, engine="multiprocessing",
                          workers=workers, progress=progress)
            out = _fresh(work / f"spark{workers}")
            sp = run_label_job(files, out, opts, engine="spark", spark=spark, output=output,
                               batch_size=batch_size, warm=False, progress=progress)
            if best_mp is None or mp["seconds"] < best_mp["seconds"]:
                best_mp = mp
            if best_sp is None or sp.seconds["total"] < best_sp.seconds["total"]:
                best_sp = sp
    finally:
        spark.stop()
    _check_same_labels(files, [Path(best_mp["output"]), work / f"spark{workers}"])
    s = best_sp.seconds
    rows = [{"engine": "multiprocessing", "workers": workers, "seconds": best_mp["seconds"],
             "startup_s": best_mp["phases"].get("startup", 0.0), "warmup_s": 0.0,
             "load_s": float("nan"), "map_s": float("nan"), "reduce_s": float("nan"),
             "failed": best_mp["failed"]},
            {"engine": f"spark local[{workers}] ({output})", "workers": workers,
             "seconds": s["total"], "startup_s": startup, "warmup_s": warm, "load_s": s["load"],
             "map_s": s["map"], "reduce_s": s["reduce"], "failed": len(best_sp.failures)}]
    df = pd.DataFrame(rows)
    df["ratio_to_multiprocessing"] = df["seconds"] / best_mp["seconds"]
    return df


def _save(df, out: Path, name: str, extra: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    payload = {"benchmark": name, "machine": machine(), **extra,
               "rows": json.loads(df.to_json(orient="records"))}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


def _print(title: str, df) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20,
                           "display.float_format", "{:.4g}".format):
        print(f"\n== {title}\n{df.to_string(index=False)}")


def _opts(no_filter: bool):
    from seaice_utils.labelling.pipeline import LabelOptions

    return LabelOptions(filter_params=None) if no_filter else LabelOptions()


def _files(a) -> list[Path]:
    files = paper_tiles(a.root, n_scenes=a.scenes, size=a.size, progress=not a.no_progress)
    if a.limit:
        files = files[:a.limit]
    return files


def _cmd_kernels(a) -> None:
    if a.root and (Path(a.root) / "tiles" / "rgb").is_dir():
        scenes = sample_scenes(sorted((Path(a.root) / "tiles" / "rgb").glob("*.png")), a.tiles)
    else:
        scenes = _synthetic_tiles(a.tiles)
    per_tile = kernel_timings(scenes, repeats=a.repeats, progress=not a.no_progress)
    summary = summarise_kernels(per_tile)
    _print("per-tile kernels, one core (ms; speedup = reference / fast)", summary)
    _save(summary, a.out, "kernels", {"repeats": a.repeats, "per_tile": json.loads(
        per_tile.to_json(orient="records"))})


def _cmd_dataset(a) -> None:
    files = _files(a)
    print(f"{len(files)} tiles under {Path(a.root) / 'tiles' / 'rgb'}")


def _runs(a) -> Path:
    """Where the timed jobs write their label files (``--scratch`` or ``<root>/runs``)."""
    return Path(a.scratch) if a.scratch else Path(a.root) / "runs"


def _cmd_e2e(a) -> None:
    files = _files(a)
    df = e2e_benchmark(files, _runs(a), _opts(a.no_filter), workers=a.workers,
                       repeats=a.repeats, progress=not a.no_progress)
    _print(f"end to end, {len(files)} tiles, {'no filter' if a.no_filter else 'filter'}", df)
    _save(df, a.out, "e2e" + ("_nofilter" if a.no_filter else ""),
          {"tiles": len(files), "filter": not a.no_filter})


def _cmd_spark(a) -> None:
    files = _files(a)
    df = spark_benchmark(files, _runs(a), _opts(a.no_filter), workers=a.workers,
                         output=a.spark_output, batch_size=a.batch_size, repeats=a.repeats,
                         progress=not a.no_progress)
    _print(f"spark vs multiprocessing, {len(files)} tiles", df)
    _save(df, a.out, "spark" + ("_nofilter" if a.no_filter else ""),
          {"tiles": len(files), "filter": not a.no_filter, "output": a.spark_output})


def _add_common(p: argparse.ArgumentParser, *, repeats: int = 1) -> None:
    p.add_argument("--root", default="outputs/bench",
                   help="benchmark folder: dataset, tiles, runs, results (outputs/bench)")
    p.add_argument("--out", type=Path, help="results folder (<root>/results)")
    p.add_argument("--scratch", type=Path,
                   help="where the timed jobs write their label files (<root>/runs); a RAM "
                   "folder such as /dev/shm/seaice-bench keeps a throttled disk out of the "
                   "engine comparison")
    p.add_argument("--scenes", type=int, default=66, help="paper-scale scenes (66)")
    p.add_argument("--size", type=int, default=2048, help="scene side in px (2048)")
    p.add_argument("--limit", type=int, help="use only the first N tiles")
    p.add_argument("--workers", type=int, default=2, help="parallel workers (2)")
    p.add_argument("--repeats", type=int, default=repeats,
                   help=f"timed runs (kernels: calls per tile), fastest kept ({repeats})")
    p.add_argument("--no-filter", action="store_true",
                   help="segmentation only (default: filter + segmentation)")
    p.add_argument("--spark-output", choices=("executors", "driver"), default="executors")
    p.add_argument("--batch-size", type=int, default=64, help="Spark Arrow batch (64)")
    p.add_argument("--tiles", type=int, default=16, help="tiles for the kernel timings (16)")
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tests/benchmarks/bench_labelling.py",
                                 description="auto-labelling benchmarks (see module docstring)")
    sub = ap.add_subparsers(dest="command")
    _add_common(sub.add_parser("kernels", help="per-tile kernels, reference vs fast"),
                repeats=50)
    _add_common(sub.add_parser("dataset", help="generate the paper-scale tiles"))
    _add_common(sub.add_parser("e2e", help="reference run vs engines, end to end"))
    _add_common(sub.add_parser("spark", help="spark local[N] vs multiprocessing N"))
    _add_common(sub.add_parser("all", help="kernels (50 calls per tile), e2e (filter and "
                               "not), spark"))
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    a = build_parser().parse_args(argv or ["all"])
    a.out = a.out or Path(a.root) / "results"
    if a.command == "all":
        _cmd_kernels(argparse.Namespace(**{**vars(a), "repeats": 50}))
        _cmd_e2e(a)
        _cmd_e2e(argparse.Namespace(**{**vars(a), "no_filter": True}))
        _cmd_spark(a)
    else:
        {"kernels": _cmd_kernels, "dataset": _cmd_dataset, "e2e": _cmd_e2e,
         "spark": _cmd_spark}[a.command](a)
    print(f"\nresults in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
