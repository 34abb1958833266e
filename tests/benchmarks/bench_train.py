"""Benchmarks of U-Net training: input pipeline, single-process speed, Horovod scaling.

Run from the project folder with the project's environment::

    .venv/bin/python tests/benchmarks/bench_train.py pipeline --params quick --outputs /tmp/bench
    .venv/bin/python tests/benchmarks/bench_train.py model --depth 5 --base-filters 16 --batch 32
    .venv/bin/python tests/benchmarks/bench_train.py ceiling --params quick --copies 2
    .venv/bin/python tests/benchmarks/bench_train.py scaling --params quick --outputs /tmp/bench \\
        --workers 1,2 --global-batch 8 --epochs 4

* ``pipeline``: images/s the tf.data pipeline delivers alone (first pass: decoding; later passes:
  from the cache) against the images/s training consumes (the profile's model, batch and threads,
  same process, data already in memory). Target: pipeline >= 5x training.
* ``model``: training images/s of a U-Net on random tiles in memory (default: the paper's model,
  batch 32) with a given number of intra-op threads.
* ``ceiling``: the machine's own limit for the scaling target: the ``model`` benchmark run alone,
  then as N independent copies at the same time (no Horovod, no communication), copy i pinned
  to core i as training pins its ranks (``training.pin_cores``). Aggregate
  images/s of the copies over the solo run is the best speedup any data-parallel training of that
  model can reach here; on machines whose cores share their vector units (SMT siblings) it stays
  near 1 however good the all-reduce is.
* ``scaling``: the same training with 1 and N Horovod processes at the same *global* batch (batch
  per worker = global / N, learning rate not scaled, so the runs do the same arithmetic), one
  intra-op thread each; reports speedup and efficiency (steady state: median epoch after the first;
  and over all epochs). Target on a 2-core machine: efficiency >= 85 % for 2 x 1 thread.
  ``--repeats R`` runs the worker counts in turn R times and adds the median, minimum and maximum
  steady speedup (``summary``): a shared virtual machine drifts by tens of percent within minutes.

Each prints a JSON object (and writes it with ``--json FILE``). Timings depend on what else runs
on the machine: quote them from a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["bench_pipeline", "bench_model", "bench_scaling", "main"]


def _set_threads(intra: int, inter: int = 1) -> None:
    import tensorflow as tf

    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass


def _train_speed(model, x, y, w, *, batch: int, steps: int) -> dict[str, float]:
    """Images/s of ``model.fit`` on in-memory arrays (one warm-up epoch of ``steps`` batches)."""
    import numpy as np
    import tensorflow as tf

    model.compile(optimizer=tf.keras.optimizers.legacy.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(),
                  weighted_metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    n = batch * steps
    idx = np.arange(n) % len(x)
    xs, ys, ws = x[idx], y[idx], w[idx]
    model.fit(xs[:batch], ys[:batch], sample_weight=ws[:batch], batch_size=batch, epochs=1,
              verbose=0)  # tracing
    t0 = time.perf_counter()
    model.fit(xs, ys, sample_weight=ws, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": dt, "images_per_s": n / dt}


def bench_model(*, depth: int = 5, base_filters: int = 16, batch: int = 32, steps: int = 2,
                tile: int = 256, channels: int = 1, threads: int = 1) -> dict[str, Any]:
    """Training images/s of a U-Net on random data in memory."""
    _set_threads(threads)
    import numpy as np

    from seaice_utils.training.unet import build_unet

    rng = np.random.default_rng(0)
    x = rng.random((batch, tile, tile, channels), np.float32)
    y = rng.integers(0, 3, (batch, tile, tile)).astype(np.int32)
    w = np.ones((batch, tile, tile), np.float32)
    m = build_unet(depth=depth, base_filters=base_filters, input_channels=channels, tile_size=tile)
    r = _train_speed(m, x, y, w, batch=batch, steps=steps)
    return {"benchmark": "model", "depth": depth, "base_filters": base_filters,
            "parameters": int(m.count_params()), "batch": batch, "tile": tile, "threads": threads,
            **r}


def bench_pipeline(params: dict, outputs_dir: str | os.PathLike, *, batch: int | None = None,
                   passes: int = 3, train_steps: int = 3) -> dict[str, Any]:
    """Pipeline images/s (cold and warm) against training images/s, same process and settings."""
    t = params["training"]
    _set_threads(t["threads_per_worker"], t["inter_op_threads"])
    import numpy as np

    from seaice_utils.training.data import make_dataset
    from seaice_utils.training.settings import prepare_training_data
    from seaice_utils.training.unet import build_unet, unet_config

    data = prepare_training_data(params, outputs_dir, progress=False)
    names = data["split"]["train"]
    bs = batch or t["batch_size"]
    ds = make_dataset(data["tiles_root"], names, batch_size=bs, input_layer=t["input"],
                      labels="auto", seed=params["global"]["seed"])
    from seaice_utils.training.data import pipeline_throughput

    pipe = pipeline_throughput(ds, epochs=passes)
    xs, ys, ws = [], [], []
    for x, y, w in ds.take(max(1, train_steps)):
        xs.append(x.numpy()), ys.append(y.numpy()), ws.append(w.numpy())
    x, y, w = (np.concatenate(a) for a in (xs, ys, ws))
    cfg = unet_config(input_channels=x.shape[-1], tile_size=params["global"]["tile_size"],
                      depth=t["depth"], base_filters=t["base_filters"],
                      encoder_dropouts=t["encoder_dropouts"], decoder_dropouts=t["decoder_dropouts"],
                      bottleneck_dropout=t["bottleneck_dropout"])
    train = _train_speed(build_unet(cfg), x, y, w, batch=bs, steps=train_steps)
    return {"benchmark": "pipeline", "profile": params["global"]["profile"], "batch": bs,
            "tiles": len(names), "model": cfg.to_dict(), "threads": t["threads_per_worker"],
            "pipeline": pipe, "training_images_per_s": train["images_per_s"],
            "ratio_cold": pipe["cold_images_per_s"] / train["images_per_s"],
            "ratio_warm": pipe["warm_images_per_s"] / train["images_per_s"]}


def bench_ceiling(*, copies: int = 2, **model_kw) -> dict[str, Any]:
    """Solo vs ``copies`` concurrent independent runs of :func:`bench_model` (separate processes)."""
    import subprocess
    import tempfile

    def cmd(out: str) -> list[str]:
        c = [sys.executable, str(Path(__file__).resolve()), "model", "--json", out]
        for k, v in model_kw.items():
            c += [f"--{k.replace('_', '-')}", str(v)]
        return c

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = len(cores) >= copies

    def on_core(i: int):
        """Pin copy ``i`` to core ``i`` before it starts (as training pins its ranks)."""
        return (lambda: os.sched_setaffinity(0, {cores[i]})) if pin else None

    with tempfile.TemporaryDirectory() as tmp:
        solo = os.path.join(tmp, "solo.json")
        subprocess.run(cmd(solo), check=True, capture_output=True, preexec_fn=on_core(0))
        outs = [os.path.join(tmp, f"copy{i}.json") for i in range(copies)]
        procs = [subprocess.Popen(cmd(o), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=on_core(i))
                 for i, o in enumerate(outs)]
        if any(p.wait() for p in procs):
            raise SystemExit("a concurrent copy of the model benchmark failed")
        solo_ips = json.loads(Path(solo).read_text())["images_per_s"]
        each = [json.loads(Path(o).read_text())["images_per_s"] for o in outs]
    return {"benchmark": "ceiling", "copies": copies, "model": model_kw, "pinned": pin,
            "solo_images_per_s": solo_ips, "each_images_per_s": each,
            "aggregate_images_per_s": sum(each), "ceiling_speedup": sum(each) / solo_ips,
            "ceiling_efficiency": sum(each) / solo_ips / copies}


def bench_scaling(params: dict, outputs_dir: str | os.PathLike, *,
                  workers: Sequence[int] = (1, 2), global_batch: int = 8, epochs: int = 4,
                  repeats: int = 1, echo: bool = False, **overrides) -> dict[str, Any]:
    """1 vs N Horovod processes at the same global batch (strong scaling).

    With ``repeats`` > 1 the worker counts are run in turn ``repeats`` times (1, N, 1, N, ...),
    so slow phases of a shared machine hit both sides alike; each round gives its own table and
    ``summary`` the median, minimum and maximum steady speedup of every worker count over the
    rounds.
    """
    import statistics

    from seaice_utils.training.launch import launch
    from seaice_utils.training.runs import scaling_table
    from seaice_utils.training.settings import prepare_training_data, training_settings

    if repeats < 1:
        raise SystemExit(f"--repeats must be >= 1 (got {repeats})")
    data = prepare_training_data(params, outputs_dir, progress=False)
    rounds = []
    for r in range(repeats):
        results = []
        for n in workers:
            if global_batch % n:
                raise SystemExit(f"--global-batch {global_batch} is not divisible by {n} workers")
            name = f"scaling_gb{global_batch}_w{n}" + (f"_r{r}" if repeats > 1 else "")
            s = training_settings(params, data, labels="auto", workers=n,
                                  run_dir=Path(outputs_dir) / "bench" / name,
                                  batch_size=global_batch // n, scale_lr=False, epochs=epochs,
                                  validate=False, **overrides)
            results.append(launch(s, hosts=params["training"]["hosts"], echo=echo))
        rounds.append({"table": scaling_table(results),
                       "skipped_because_done": [x.get("skipped", False) for x in results]})
    summary = {}
    for i, n in enumerate(sorted(workers)):
        sp = [rd["table"][i]["steady_speedup"] for rd in rounds]
        ratio = n / min(workers)
        summary[str(n)] = {"steady_speedups": sp, "median": statistics.median(sp),
                           "min": min(sp), "max": max(sp),
                           "median_efficiency": statistics.median(sp) / ratio}
    return {"benchmark": "scaling", "profile": params["global"]["profile"],
            "global_batch": global_batch, "epochs": epochs, "repeats": repeats,
            "model": results[0]["model"],
            "threads_per_worker": params["training"]["threads_per_worker"],
            "skipped_because_done": rounds[-1]["skipped_because_done"],
            "table": rounds[-1]["table"], "rounds": rounds, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    from seaice_utils.params import load_params

    ap = argparse.ArgumentParser(prog="bench_train.py",
                                 description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("pipeline", "scaling", "ceiling"):
        s = sub.add_parser(name)
        s.add_argument("--params", default="quick")
        s.add_argument("--outputs", default="outputs")
        s.add_argument("--depth", type=int)
        s.add_argument("--base-filters", type=int)
        s.add_argument("--json")
    sub.choices["pipeline"].add_argument("--batch", type=int)
    sub.choices["pipeline"].add_argument("--passes", type=int, default=3)
    sub.choices["pipeline"].add_argument("--train-steps", type=int, default=3)
    sc = sub.choices["scaling"]
    sc.add_argument("--workers", default="1,2")
    sc.add_argument("--global-batch", type=int, default=8)
    sc.add_argument("--epochs", type=int, default=4)
    sc.add_argument("--threads", type=int, help="intra-op threads per worker (profile's)")
    sc.add_argument("--repeats", type=int, default=1,
                    help="rounds of all worker counts, run in turn (median reported)")
    ce = sub.choices["ceiling"]
    ce.add_argument("--copies", type=int, default=2)
    m = sub.add_parser("model")
    m.add_argument("--depth", type=int, default=5)
    m.add_argument("--base-filters", type=int, default=16)
    m.add_argument("--batch", type=int, default=32)
    m.add_argument("--steps", type=int, default=2)
    m.add_argument("--tile", type=int, default=256)
    m.add_argument("--channels", type=int, default=1)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--json")
    a = ap.parse_args(argv)
    if a.cmd == "ceiling":
        params = load_params(a.params)
        t = params["training"]
        out = bench_ceiling(copies=a.copies, depth=a.depth or t["depth"],
                            base_filters=a.base_filters or t["base_filters"],
                            batch=max(1, 8 // a.copies), steps=20,
                            threads=t["threads_per_worker"])
    elif a.cmd == "model":
        out = bench_model(depth=a.depth, base_filters=a.base_filters, batch=a.batch,
                          steps=a.steps, tile=a.tile, channels=a.channels, threads=a.threads)
    else:
        params = load_params(a.params)
        params["global"]["progress"] = False
        if a.depth:
            params["training"]["depth"] = a.depth
        if a.base_filters:
            params["training"]["base_filters"] = a.base_filters
        if a.cmd == "pipeline":
            out = bench_pipeline(params, a.outputs, batch=a.batch, passes=a.passes,
                                 train_steps=a.train_steps)
        else:
            if a.threads is not None:
                params["training"]["threads_per_worker"] = a.threads
            out = bench_scaling(params, a.outputs,
                                workers=[int(x) for x in a.workers.split(",")],
                                global_batch=a.global_batch, epochs=a.epochs,
                                repeats=a.repeats, echo=True)
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if a.json:
        from seaice_utils.core.scenes import atomic_write_bytes

        atomic_write_bytes(a.json, (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
