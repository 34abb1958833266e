"""Benchmark: a season in one command on each engine, against one command per scene.

::

    python tests/benchmarks/bench_season.py --model outputs/models/unet_auto.keras
    python tests/benchmarks/bench_season.py --labels auto --size 384 --json bench_season.json

A synthetic season (:func:`seaice_utils.data.make_season`, ``--n-dates`` dates of a ``--size``
px region, one to three scenes per date) is classified

* **one command per scene** — what a user without ``seaice season`` would script: for every
  scene, ``seaice predict MODEL SCENE OUT`` (or ``seaice label SCENE OUT`` with
  ``--labels auto``), a new process each time, so each pays the start-up, the imports and, for
  prediction, the model load;
* **``seaice season``** with ``--engine sequential`` (one worker), ``multiprocessing --workers
  2`` and ``spark --workers 2`` (``local[2]``): one process (and its pool or Spark executors)
  for all scenes, the model loaded once per worker, plus the per-date mosaics and areas, which
  the per-scene commands do not do at all.

Every side runs as a command in a fresh output folder, start-up included, in one run of the
script; the figures are scenes per second and the ratio to the per-scene commands. Every
side's per-scene class maps (``<scene>_classes.tif``) must be byte-identical to the per-scene
commands' (the script exits 1 otherwise), and the engines' ``season_areas.csv`` identical.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

ENGINES = (("season, sequential", ["--engine", "sequential", "--workers", "1"]),
           ("season, multiprocessing-2", ["--engine", "multiprocessing", "--workers", "2"]),
           ("season, Spark local[2]", ["--engine", "spark", "--workers", "2"]))


def _seaice() -> list[str]:
    return [sys.executable, "-m", "seaice_utils"]


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return seconds


def _maps(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*_classes.tif"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--model", help="trained U-Net (.keras)")
    how.add_argument("--labels", choices=("auto",))
    ap.add_argument("--root", default="/tmp/seaice-bench-season")
    ap.add_argument("--n-dates", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)

    from seaice_utils.data import make_season

    root = Path(a.root)
    season = make_season(root / "data", a.seed, n_dates=a.n_dates, size=a.size)
    scenes = [season.root / r["scene"] for r in season.scenes]
    n = len(scenes)
    mode = ["--model", a.model] if a.model else ["--labels", "auto"]
    print(f"{n} scenes of a {a.size} px season ({a.n_dates} dates), "
          f"{'U-Net ' + Path(a.model).name if a.model else 'auto-labels'}")

    rows = []
    base = root / "per_scene"
    shutil.rmtree(base, ignore_errors=True)
    t0 = time.perf_counter()
    for scene in scenes:
        cmd = (["predict", a.model, str(scene), str(base)] if a.model
               else ["label", str(scene), str(base)])
        _run(_seaice() + cmd + ["--no-progress", "-q"])
    per_scene = time.perf_counter() - t0
    rows.append(("one command per scene", per_scene))
    want = _maps(base)
    if len(want) != n:
        sys.exit(f"per-scene commands wrote {len(want)} class maps for {n} scenes")

    ok, areas = True, {}
    for name, engine in ENGINES:
        out = root / name.split(",")[1].strip().split()[0].lower().replace("-2", "")
        shutil.rmtree(out, ignore_errors=True)
        seconds = _run(_seaice() + ["season", str(season.root / "season.csv"), str(out)] + mode
                       + engine + ["--no-progress", "-q"])
        rows.append((name, seconds))
        if _maps(out / "scenes") != want:
            print(f"!! {name}: class maps differ from the per-scene commands'")
            ok = False
        areas[name] = (out / "season_areas.csv").read_bytes()
    if len(set(areas.values())) != 1:
        print("!! the engines' season_areas.csv differ")
        ok = False

    print(f"\n{'side':<28} {'seconds':>8} {'scenes/s':>9} {'vs per scene':>13}")
    figures = []
    for name, seconds in rows:
        figures.append({"side": name, "seconds": round(seconds, 2),
                        "scenes_per_s": round(n / seconds, 3),
                        "speedup_vs_per_scene": round(per_scene / seconds, 2)})
        print(f"{name:<28} {seconds:8.2f} {n / seconds:9.2f} {per_scene / seconds:12.2f}x")
    print("class maps identical to the per-scene commands' and engines' areas identical:",
          "yes" if ok else "NO")
    if a.json:
        Path(a.json).write_text(json.dumps({"scenes": n, "size": a.size, "n_dates": a.n_dates,
                                            "mode": "model" if a.model else "auto",
                                            "identical": ok, "rows": figures}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
