"""Benchmark: batched full-scene prediction against predicting a scene's tiles one by one.

::

    python tests/benchmarks/bench_infer.py                  # the paper's U-Net, a 2048 px scene
    python tests/benchmarks/bench_infer.py --depth 4 --base-filters 8 --batch-sizes 1,2,4,8
    python tests/benchmarks/bench_infer.py --model outputs/models/unet_auto.keras --json bench.json

Both sides get the same model input (the filtered grey levels of one synthetic 2048 x 2048 scene,
filter time excluded) and the same untrained U-Net with fixed weights (speed does not depend on the
weights). The scene has 64 tiles of 256 px.

* **one by one** — what the published workflow did: for each of the 64 tiles,
  ``model.predict(tile[None])`` (Keras' ``predict`` for every tile, argmax, paste into the map).
* **batched** — :func:`seaice_utils.inference.predict_scene` with ``overlap=0``: the tiles go in
  batches through the model, probabilities are stitched in row bands. Timed for each runtime of
  :func:`seaice_utils.inference.make_predict_fn`: ``tensorflow`` (one compiled ``tf.function``, no
  per-call overhead of ``Model.predict``) and ``tflite`` (the model converted to TensorFlow Lite,
  float32, run by XNNPACK; the default on a machine without a GPU). The one-time conversion is
  timed apart, like the tracing of the ``tf.function``. Also timed with the default overlap
  (32 px, blended), which predicts more windows (81 instead of 64) and removes tile seams.

The figure quoted is ``one-by-one seconds / batched seconds`` for the best runtime and batch
size, median of ``--repeats`` runs after one warm-up. Every class map is compared with the
one-by-one map (they must agree on all but a handful of pixels: float summation order differs
between batch sizes and runtimes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["one_by_one", "bench", "main"]


def one_by_one(model, image: np.ndarray, *, tile: int = 256) -> np.ndarray:
    """The naive loop: ``model.predict`` on each tile separately; returns the class map."""
    h, w = image.shape[:2]
    x = image[..., None] if image.ndim == 2 else image
    out = np.empty((h, w), np.uint8)
    for r in range(0, h, tile):
        for c in range(0, w, tile):
            t = x[r:r + tile, c:c + tile].astype(np.float32)[None] / 255.0
            out[r:r + tile, c:c + tile] = np.argmax(model.predict(t, verbose=0)[0], axis=-1)
    return out


def _median_time(fn, repeats: int) -> tuple[float, list[float], Any]:
    res = fn()                                      # warm-up (tracing, oneDNN primitives)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, res


def bench(*, size: int = 2048, depth: int = 5, base_filters: int = 16,
          model_path: str | None = None,
          batch_sizes: Sequence[int] = (2, 4, 8), overlap: int = 32, repeats: int = 3,
          seed: int = 0, threads: int | None = None,
          runtimes: Sequence[str] = ("tensorflow", "tflite")) -> dict[str, Any]:
    """Time one-by-one and batched prediction of one scene; return the figures (see module doc)."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    from seaice_utils.labelling.cloudfilter import thin_cloud_shadow_filter
    from seaice_utils.inference import load_model, make_predict_fn, predict_scene
    from seaice_utils.data.synthetic import synthesize_scene
    from seaice_utils.training.unet import build_unet

    sc = synthesize_scene(seed, size=size, cloud_cover=0.3, shadow_cover=0.1)
    levels = thin_cloud_shadow_filter(sc.image)
    if model_path:
        model, settings = load_model(model_path)
        tile = settings.tile_size
        desc = f"{model_path} ({model.count_params():,} parameters)"
    else:
        tf.keras.utils.set_random_seed(seed)
        model = build_unet(depth=depth, base_filters=base_filters)
        tile = 256
        desc = (f"U-Net depth {depth}, base filters {base_filters} "
                f"({model.count_params():,} parameters)")
    x = levels if model.input_shape[-1] == 1 else np.repeat(levels[..., None], 3, -1)
    n_tiles = (-(-size // tile)) ** 2
    out: dict[str, Any] = {"scene_px": size, "tiles": n_tiles, "model": desc,
                           "cpu_count": os.cpu_count(),
                           "gpu": bool(tf.config.list_physical_devices("GPU")), "repeats": repeats}
    t_one, times_one, ref = _median_time(lambda: one_by_one(model, x, tile=tile), repeats)
    out["one_by_one_s"], out["one_by_one_runs"] = t_one, times_one
    out["batched"] = []
    for rt in runtimes:
        for b in batch_sizes:
            t0 = time.perf_counter()
            predict = make_predict_fn(model, runtime=rt, batch_size=b, threads=threads)
            prep = time.perf_counter() - t0
            t_b, times_b, got = _median_time(lambda: predict_scene(
                predict, x, tile=tile, overlap=0, batch_size=b), repeats)
            out["batched"].append({"runtime": rt, "batch_size": b, "overlap": 0,
                                   "seconds": t_b, "runs": times_b, "speedup": t_one / t_b,
                                   "conversion_s": prep if rt == "tflite" else 0.0,
                                   "pixels_differing": int((got != ref).sum())})
    best = min(out["batched"], key=lambda r: r["seconds"])
    if overlap:
        predict = make_predict_fn(model, runtime=best["runtime"], batch_size=best["batch_size"],
                                  threads=threads)
        t_o, times_o, _ = _median_time(lambda: predict_scene(
            predict, x, tile=tile, overlap=overlap, batch_size=best["batch_size"]), repeats)
        out["overlap"] = {"runtime": best["runtime"], "batch_size": best["batch_size"],
                          "overlap": overlap, "seconds": t_o, "runs": times_o,
                          "speedup": t_one / t_o}
    out["best_batch_size"] = best["batch_size"]
    out["best_runtime"] = best["runtime"]
    out["speedup"] = best["speedup"]
    return out


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tests/benchmarks/bench_infer.py",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=2048, help="scene side in px (2048: 64 tiles)")
    ap.add_argument("--depth", type=int, default=5, help="U-Net depth (the paper's 5)")
    ap.add_argument("--base-filters", type=int, default=16, help="U-Net base filters (16)")
    ap.add_argument("--model", help="a saved model instead of an untrained U-Net")
    ap.add_argument("--batch-sizes", type=_ints, default=[2, 4, 8])
    ap.add_argument("--overlap", type=int, default=32, help="also time blended prediction")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="TensorFlow intra-op threads")
    ap.add_argument("--runtimes", default="tensorflow,tflite",
                    help="comma-separated runtimes of the batched path (tensorflow, tflite)")
    ap.add_argument("--json", help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    r = bench(size=a.size, depth=a.depth, base_filters=a.base_filters, model_path=a.model,
              batch_sizes=a.batch_sizes, overlap=a.overlap, repeats=a.repeats, threads=a.threads,
              runtimes=[v.strip() for v in a.runtimes.split(",") if v.strip()])
    print(f"{r['model']}, {r['scene_px']} px scene = {r['tiles']} tiles, "
          f"{r['cpu_count']} CPUs, GPU: {r['gpu']}")
    print(f"  one by one (model.predict per tile): {r['one_by_one_s']:.2f} s")
    for b in r["batched"]:
        conv = f", conversion {b['conversion_s']:.1f} s once" if b["conversion_s"] else ""
        print(f"  batched, {b['runtime']:<10} batch {b['batch_size']:>3}: {b['seconds']:.2f} s  "
              f"x{b['speedup']:.2f}  ({b['pixels_differing']} px differ{conv})")
    if "overlap" in r:
        o = r["overlap"]
        print(f"  batched, {o['runtime']:<10} + {o['overlap']} px overlap, blended: "
              f"{o['seconds']:.2f} s  x{o['speedup']:.2f}")
    print(f"speedup of batched prediction: x{r['speedup']:.2f} ({r['best_runtime']}, batch "
          f"{r['best_batch_size']})")
    if a.json:
        from seaice_utils.core.scenes import write_json

        write_json(a.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
