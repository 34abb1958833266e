"""U-Net training, single-process or distributed with Horovod (synchronous data parallelism).

One entry, three ways to run it::

    seaice train --params params/quick.yml                     # one process, no Horovod needed
    seaice train --params params/quick.yml --workers 2         # spawns horovodrun --gloo -np 2
    horovodrun --gloo -np 2 -H localhost:2 seaice train --params params/quick.yml
    horovodrun --gloo -np 8 -H node1:4,node2:4 seaice train --params params/paper.yml

and from Python (notebook 04): :func:`prepare_training_data`, :func:`training_settings`,
:func:`launch`, :func:`scaling_runs`, :func:`train_models`, :func:`scaling_table`.

What each worker does (:func:`run_worker`): ``hvd.init()``; pins one GPU per local rank when GPUs
exist (else sets the intra/inter-op thread counts, 1 each by default so that N processes share N
cores); reads its shard of the training tiles (:func:`seaice_utils.data_tf.make_dataset`: each rank
a distinct, equal part of every epoch); builds the U-Net; wraps Adam in
``hvd.DistributedOptimizer`` (ring all-reduce of the gradients) with the learning rate multiplied
by the number of workers (``training.scale_lr``, on by default); restores the last checkpoint if
there is one; broadcasts the initial state (weights and optimizer slots) from rank 0; averages the
metrics over ranks at each epoch end; records per-epoch time and images/s over all ranks
(:class:`ThroughputCallback`). Rank 0 alone writes checkpoints (every epoch, atomically through
``tf.train.CheckpointManager``), the history (``history.csv``) and the final model.

A run lives in ``<outputs>/training/<run>/``: ``settings.json`` (what was asked, with a
fingerprint), ``checkpoints/``, ``history.csv``, ``launch.log`` (all ranks' output, appended per launch), ``model.keras``
and ``result.json`` (written last: its presence means the run is complete). Launching a run whose
``result.json`` has the same fingerprint returns it without training again; a run interrupted
after some epochs resumes from its last checkpoint; changed settings start afresh.

A worker that raises prints ``seaice-train-failure rank=R size=N: <error>`` and exits 1;
``horovodrun`` then stops the other ranks and :func:`launch` raises :class:`TrainingFailed` naming
the rank. Checkpoints are only ever replaced atomically, so the last one stays valid.

Mixed precision (``training.mixed_precision``) and XLA (``training.xla``, auto-clustering, which
leaves Horovod's all-reduce outside the compiled clusters) are meant for GPU runs, e.g. on an
8-GPU node::

    horovodrun -np 8 -H localhost:8 seaice train --params params/paper.yml --mixed-precision --xla

TensorFlow and Horovod are imported inside functions only.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.core.scenes import atomic_write_bytes, write_json
from seaice_utils.paper import PAPER_TABLE3

__all__ = ["TrainingFailed", "prepare_training_data", "training_settings", "fingerprint",
           "run_worker", "launch", "scaling_runs", "train_models", "scaling_table",
           "evaluate_model", "heldout_table", "prepare_run_dir", "record_models", "plot_speedup", "plot_training_curves",
           "PAPER_TABLE3", "read_history", "under_horovodrun", "horovodrun_path", "train_cli",
           "ThroughputCallback", "main"]

FAIL_MARK = "seaice-train-failure"
#: Test hook: ``SEAICE_TRAIN_FAIL="R:E"`` makes rank R raise at the start of epoch E (0-based).
FAIL_ENV = "SEAICE_TRAIN_FAIL"
_NOT_FINGERPRINTED = ("verbose", "model_path", "run_dir", "run_name", "epochs", "fingerprint",
                      "pin_cores", "cycle_time_ms")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class TrainingFailed(SeaIceError):
    """A training run exited non-zero; the message names the failing rank(s) and the log."""


# --------------------------------------------------------------------------------------------
# data and settings (no TensorFlow)
# --------------------------------------------------------------------------------------------

def prepare_training_data(params: dict, outputs_dir: str | os.PathLike, *,
                          progress: bool | None = None) -> dict[str, Any]:
    """Tiles and the train/test split a profile trains on (resumable; no TensorFlow).

    Generates the dataset if needed (:func:`seaice_utils.dataset.ensure_dataset`), writes its tile
    layers to ``<outputs>/tiles`` (:func:`seaice_utils.tiles.prepare_tiles`), converts
    ``training.man_labels`` (a user's manual labels) to class maps if given, splits the tiles
    (:func:`seaice_utils.data_tf.split_tiles`) and writes the split to
    ``<outputs>/models/split.json``.

    Returns
    -------
    dict
        ``tiles_root``, ``split`` (see ``split_tiles``), ``n_tiles``, ``man_labels`` (label source
        of U-Net-Man: ``"truth"`` or the converted folder, None when there are no reference
        labels).
    """
    from seaice_utils.training.data import convert_manual_labels, split_tiles
    from seaice_utils.data.dataset import ensure_dataset
    from seaice_utils.data.tiles import prepare_tiles

    t = params["training"]
    outputs_dir = Path(outputs_dir)
    tiles_root = outputs_dir / "tiles"
    rows = prepare_tiles(ensure_dataset(outputs_dir, params, progress=progress), tiles_root,
                         params, progress=progress)
    if not rows:
        raise InputError(f"the dataset gave no tiles (tiles folder {tiles_root})")
    split = split_tiles(rows, test_fraction=t["test_fraction"], seed=params["global"]["seed"],
                        by=t["split_by"])
    if t["man_labels"]:
        man = str(convert_manual_labels(t["man_labels"], tiles_root / "manual",
                                        names=[r["tile"] for r in rows]))
        missing = [r["tile"] for r in rows if not (Path(man) / f"{r['tile']}.png").is_file()]
        if missing:
            raise InputError(f"training.man_labels {t['man_labels']} has no label for "
                             f"{len(missing)} tile(s), e.g. {missing[0]}")
    else:
        man = "truth" if all(r["has_truth"] for r in rows) else None
    write_json(outputs_dir / "models" / "split.json", split)
    return {"tiles_root": str(tiles_root), "split": split, "n_tiles": len(rows), "man_labels": man}


def training_settings(params: dict, data: dict, *, labels: str = "auto", workers: int = 1,
                      run_dir: str | os.PathLike, run_name: str | None = None,
                      **overrides: Any) -> dict[str, Any]:
    """Everything a worker needs, as a JSON-able dict (written to ``settings.json``).

    Parameters
    ----------
    params : dict
        Loaded profile (``training`` and ``global`` sections are used).
    data : dict
        From :func:`prepare_training_data`.
    labels : {"auto", "man"} or str, keyword-only
        ``man`` trains on the reference labels (``data["man_labels"]``), ``auto`` on the
        auto-labels of the filtered image; any other value is passed to
        :func:`seaice_utils.data_tf.label_folder`.
    workers : int, keyword-only
        Number of processes the run is launched with (recorded; learning-rate scaling uses the
        actual Horovod size).
    run_dir : path, keyword-only
    **overrides
        Any key of the returned dict (e.g. ``epochs=1``, ``batch_size=8``, ``scale_lr=False``).
    """
    from seaice_utils.training.unet import unet_config

    t, g = params["training"], params["global"]
    if labels == "man":
        if data.get("man_labels") is None:
            raise InputError("U-Net-Man needs reference labels: the dataset has no truth/ for some "
                             "scenes and training.man_labels is not set")
        label_source = data["man_labels"]
    else:
        label_source = "auto_filtered" if labels == "auto" else labels
    cfg = unet_config(input_channels=3 if t["input"] == "rgb" else 1, tile_size=g["tile_size"],
                      depth=t["depth"], base_filters=t["base_filters"],
                      encoder_dropouts=t["encoder_dropouts"], decoder_dropouts=t["decoder_dropouts"],
                      bottleneck_dropout=t["bottleneck_dropout"])
    run_dir = Path(run_dir)
    s = {"run_name": run_name or run_dir.name, "run_dir": str(run_dir), "labels": labels,
         "label_source": label_source, "input": t["input"], "tiles_root": data["tiles_root"],
         "train": list(data["split"]["train"]), "test": list(data["split"]["test"]),
         "split_by": data["split"]["by"], "model": cfg.to_dict(), "batch_size": t["batch_size"],
         "epochs": t["epochs"], "learning_rate": t["learning_rate"], "scale_lr": t["scale_lr"],
         "seed": g["seed"], "workers": workers, "threads_per_worker": t["threads_per_worker"],
         "inter_op_threads": t["inter_op_threads"], "pin_cores": t["pin_cores"],
         "cycle_time_ms": t["cycle_time_ms"],
         "mixed_precision": t["mixed_precision"], "xla": t["xla"], "cache": t["cache"],
         "shuffle_buffer": t["shuffle_buffer"],
         "validate": True, "verbose": g["progress"],
         "model_path": str(run_dir / "model.keras")}
    unknown = set(overrides) - set(s)
    if unknown:
        raise InputError(f"unknown training setting(s) {sorted(unknown)} (known: {', '.join(s)})")
    s.update(overrides)
    if s["epochs"] < 1 or s["batch_size"] < 1:
        raise InputError(f"epochs and batch_size must be >= 1 (got {s['epochs']}, {s['batch_size']})")
    return s


def fingerprint(settings: dict) -> str:
    """Hash of the settings that make checkpoints compatible: everything but the number of epochs
    (so that a run asked for more epochs continues from its checkpoint), paths of outputs and
    verbosity."""
    keep = {k: v for k, v in settings.items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a run's ``history.csv`` (numbers as floats; empty list when there is none)."""
    p = Path(run_dir) / "history.csv"
    if not p.is_file():
        return []
    with p.open(newline="") as fh:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def _write_history(run_dir: Path, rows: list[dict]) -> None:
    from seaice_utils.report import write_rows_csv

    write_rows_csv(run_dir / "history.csv", rows)


# --------------------------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------------------------

def under_horovodrun() -> bool:
    """True when this process was started by ``horovodrun`` (or ``mpirun`` with Horovod)."""
    return any(k in os.environ for k in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"))


class _Single:
    """Stand-in for Horovod in a plain single process (no horovod import needed)."""

    @staticmethod
    def rank() -> int:
        return 0

    @staticmethod
    def size() -> int:
        return 1

    @staticmethod
    def local_rank() -> int:
        return 0

    @staticmethod
    def broadcast_object(obj, root_rank=0):
        return obj

    @staticmethod
    def allgather_object(obj):
        return [obj]

    @staticmethod
    def broadcast_variables(variables, root_rank=0):
        return None

    @staticmethod
    def DistributedOptimizer(opt):  # noqa: N802 (Horovod's name)
        return opt

    callbacks = None


class _Horovod:
    """The parts of ``horovod.tensorflow(.keras)`` the worker uses, initialised."""

    def __init__(self):
        import horovod.tensorflow as hvd_tf
        import horovod.tensorflow.keras as hvd_k

        hvd_k.init()
        self._tf, self._k = hvd_tf, hvd_k
        self.rank, self.size, self.local_rank = hvd_k.rank, hvd_k.size, hvd_k.local_rank
        self.callbacks = hvd_k.callbacks

    def broadcast_object(self, obj, root_rank=0):
        return self._tf.broadcast_object(obj, root_rank=root_rank)

    def allgather_object(self, obj):
        return self._tf.allgather_object(obj)

    def broadcast_variables(self, variables, root_rank=0):
        return self._tf.broadcast_variables(variables, root_rank=root_rank)

    def DistributedOptimizer(self, opt):  # noqa: N802
        return self._k.DistributedOptimizer(opt)


def _init_horovod(force: bool | None = None):
    """Horovod when under horovodrun (or ``force``), else the single-process stand-in."""
    if force or (force is None and under_horovodrun()):
        return _Horovod()
    return _Single()


_CONFIGURED: dict[str, str] = {}


def pin_cores(local_rank: int, threads: int) -> list[int] | None:
    """Pin this process (all its threads, and the threads they start later) to ``threads`` cores
    of its own: local rank ``r`` gets the ``r``-th group of ``threads`` cores among those it may
    use. Returns the cores, or None (nothing changed) when ``threads`` is 0, the platform cannot
    pin, or the machine has too few cores for every local rank to get its own.

    TensorFlow with one intra-op thread still runs kernels on more than one thread (the caller
    and the pool); unpinned, two such processes on two cores contend for the same cores, and a
    single process borrows the second core, so "1 process x 1 thread" is not one core's work.
    """
    if not threads or threads < 1 or not hasattr(os, "sched_setaffinity"):
        return None
    avail = sorted(os.sched_getaffinity(0))
    lo = int(local_rank) * int(threads)
    if lo + threads > len(avail):
        return None
    cores = set(avail[lo:lo + threads])
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:       # a thread that ended meanwhile
            pass
    return sorted(cores)


def _configure_tf(settings: dict, hv) -> str:
    """Threads, GPU pinning, precision policy, XLA; returns a description of the device.

    Must run before TensorFlow's runtime starts (before any Horovod collective): thread counts
    cannot change afterwards. Only the first call in a process configures.
    """
    import tensorflow as tf

    if "device" in _CONFIGURED:
        return _CONFIGURED["device"]

    try:
        if settings["threads_per_worker"]:
            tf.config.threading.set_intra_op_parallelism_threads(settings["threads_per_worker"])
        if settings["inter_op_threads"]:
            tf.config.threading.set_inter_op_parallelism_threads(settings["inter_op_threads"])
    except RuntimeError:  # TensorFlow already running in this process (e.g. a notebook kernel)
        pass
    gpus = tf.config.list_physical_devices("GPU")
    device = f"cpu (pinned to cores {_CONFIGURED['cores']})" if "cores" in _CONFIGURED else "cpu"
    if gpus:
        gpu = gpus[hv.local_rank() % len(gpus)]
        try:
            for g in gpus:
                tf.config.experimental.set_memory_growth(g, True)
            tf.config.set_visible_devices(gpu, "GPU")
        except RuntimeError:
            pass
        device = f"gpu:{gpu.name}"
    if settings["mixed_precision"]:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    if settings["xla"]:
        tf.config.optimizer.set_jit("autoclustering")
    _CONFIGURED["device"] = device
    return device


def _make_callbacks(settings, hv, shard_size, run_dir: Path, ckpt, history: list[dict]):
    import tensorflow as tf

    rank, size = hv.rank(), hv.size()
    fail = os.environ.get(FAIL_ENV, "")

    class FailureInjection(tf.keras.callbacks.Callback):
        """Test hook (see FAIL_ENV)."""

        def on_epoch_begin(self, epoch, logs=None):
            if fail and fail == f"{rank}:{epoch}":
                raise RuntimeError(f"injected failure ({FAIL_ENV}={fail})")

    class RankZeroLogger(tf.keras.callbacks.Callback):
        """History, checkpoint and a progress line (rank 0 only)."""

        def __init__(self):
            super().__init__()
            self.mgr = tf.train.CheckpointManager(ckpt, str(run_dir / "checkpoints"), max_to_keep=2)

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            history.append(row)
            _write_history(run_dir, history)     # history first, then the checkpoint naming it
            ckpt.epoch.assign(epoch + 1)
            self.mgr.save(checkpoint_number=epoch + 1)
            if settings["verbose"]:
                val = (f"  val_loss {row['val_loss']:.4f}  val_accuracy {row['val_accuracy']:.4f}"
                       if "val_loss" in row else "")
                print(f"[{settings['run_name']}] epoch {epoch + 1}/{settings['epochs']}  "
                      f"loss {row['loss']:.4f}  accuracy {row['accuracy']:.4f}{val}  "
                      f"{row['train_seconds']:.2f} s  {row['images_per_s']:.1f} img/s", flush=True)

    cbs = [FailureInjection()]
    if size > 1:
        cbs += [hv.callbacks.BroadcastGlobalVariablesCallback(0),
                hv.callbacks.MetricAverageCallback()]
    tp = ThroughputCallback(hv, shard_size)
    cbs.append(tp)
    if rank == 0:
        cbs.append(RankZeroLogger())
    return cbs, tp


def _throughput_callback_class():
    import tensorflow as tf

    class _ThroughputCallback(tf.keras.callbacks.Callback):
        """Per-epoch training time and images/s, aggregated over ranks.

        Each rank times its epoch from ``on_epoch_begin`` to the end of its last training batch
        (validation excluded); the epoch's time is the slowest rank's, its images the sum over
        ranks. Adds ``train_seconds``, ``epoch_seconds`` (with validation), ``images``,
        ``images_per_s`` and ``cpu_seconds`` (process CPU time of the training part, summed over
        ranks: with N processes on N idle cores it stays flat when scaling costs nothing) to the
        epoch logs (after metric averaging).
        """

        def __init__(self, hv, shard_size: int):
            super().__init__()
            self.hv, self.shard_size = hv, int(shard_size)
            self.images_seen = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = self.t_last = time.perf_counter()
            self.c0 = self.c_last = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.t_last = time.perf_counter()
            self.c_last = time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.images_seen += self.shard_size
            mine = (self.t_last - self.t0, now - self.t0, self.shard_size, self.c_last - self.c0)
            allr = self.hv.allgather_object(mine)
            train_s = max(a[0] for a in allr)
            images = sum(a[2] for a in allr)
            if logs is not None:
                logs.update(train_seconds=train_s, epoch_seconds=max(a[1] for a in allr),
                            images=float(images), images_per_s=images / train_s if train_s else 0.0,
                            cpu_seconds=float(sum(a[3] for a in allr)))

    return _ThroughputCallback


def ThroughputCallback(hv, shard_size: int):  # noqa: N802 (a class factory: TF imported lazily)
    """Keras callback recording per-epoch time and images/s over all ranks (see
    ``_ThroughputCallback``)."""
    return _throughput_callback_class()(hv, shard_size)


def _weights_digest(model) -> str:
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _save_model_atomic(model, settings: dict, path: Path) -> None:
    """Save an uncompiled float32 copy of ``model`` as ``.keras``, atomically."""
    import tensorflow as tf

    from seaice_utils.training.unet import build_unet, unet_config

    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        export = build_unet(unet_config(**settings["model"]), name=f"unet_{settings['labels']}")
        export.set_weights(model.get_weights())
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    export.save(str(tmp))
    os.replace(tmp, path)


def run_worker(settings: dict, *, hv=None) -> dict | None:
    """Train one model in this process, as one Horovod rank (or alone).

    Parameters
    ----------
    settings : dict
        From :func:`training_settings` (rank 0's copy is broadcast to all ranks).
    hv : optional
        An initialised Horovod adapter; default: Horovod under horovodrun, else single-process.

    Returns
    -------
    dict or None
        The result (also ``result.json``) on rank 0, None on other ranks.
    """
    hv = hv or _init_horovod()
    import tensorflow as tf

    from seaice_utils.training.data import make_dataset, shard_names
    from seaice_utils.training.unet import build_unet, unet_config

    device = _configure_tf(settings, hv)
    rank, size = hv.rank(), hv.size()
    settings = hv.broadcast_object(settings, 0)
    run_dir = Path(settings["run_dir"])
    t_start = time.perf_counter()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(settings["seed"])

    seed, bs = settings["seed"], settings["batch_size"]
    model = build_unet(unet_config(**settings["model"]), name=f"unet_{settings['labels']}")
    lr = settings["learning_rate"] * (size if settings["scale_lr"] else 1)
    opt = hv.DistributedOptimizer(tf.keras.optimizers.legacy.Adam(learning_rate=lr))
    model.compile(optimizer=opt, loss=tf.keras.losses.SparseCategoricalCrossentropy(),
                  weighted_metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    opt = model.optimizer                     # may be wrapped in a LossScaleOptimizer
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt,
                               epoch=tf.Variable(0, dtype=tf.int64, trainable=False))

    initial_epoch, history = 0, []
    if rank == 0:
        latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
        if latest:
            ep = int(tf.train.load_variable(latest, "epoch/.ATTRIBUTES/VARIABLE_VALUE"))
            hist = read_history(run_dir)[:ep]
            # a checkpoint without its history, or past the epochs asked for: start afresh
            if len(hist) == ep and ep <= settings["epochs"]:
                ckpt.restore(latest)
                initial_epoch, history = ep, hist
    initial_epoch, history = hv.broadcast_object((initial_epoch, history), 0)
    # create the optimizer's slots (restored on rank 0 from the checkpoint), then make every rank
    # start from rank 0's state
    inner = getattr(opt, "inner_optimizer", opt)
    inner._create_all_weights(model.trainable_variables)
    ckpt.epoch.assign(initial_epoch)
    hv.broadcast_variables(model.variables + opt.variables(), 0)

    # data: a distinct shard per rank; a resumed run continues with fresh shuffles (the seed moves
    # with the epoch it resumes at, so it does not replay the first epochs' order)
    common = dict(input_layer=settings["input"], labels=settings["label_source"],
                  cache=settings["cache"], num_shards=size, shard_index=rank)
    train_ds = make_dataset(settings["tiles_root"], settings["train"], batch_size=bs, shuffle=True,
                            seed=seed + 7919 * initial_epoch,
                            shuffle_buffer=settings["shuffle_buffer"], **common)
    shard = shard_names(settings["train"], num_shards=size, index=rank,
                        seed=seed + 7919 * initial_epoch)
    val_ds = None
    if settings["validate"] and len(settings["test"]) >= size:
        val_ds = make_dataset(settings["tiles_root"], settings["test"], batch_size=bs,
                              shuffle=False, seed=seed, **common)

    callbacks, throughput = _make_callbacks(settings, hv, len(shard), run_dir, ckpt, history)
    if rank == 0 and settings["verbose"]:
        print(f"[{settings['run_name']}] {size} worker(s) on {device}, "
              f"{len(settings['train'])} training tiles ({len(shard)} per worker), "
              f"batch {bs} per worker, lr {lr:g}, "
              f"{'resuming after epoch %d' % initial_epoch if initial_epoch else 'fresh start'}",
              flush=True)
    if initial_epoch < settings["epochs"]:
        model.fit(train_ds, validation_data=val_ds, epochs=settings["epochs"],
                  initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)
    ranks = hv.allgather_object({"rank": rank, "shard_size": len(shard), "shard": shard,
                                 "images_seen": throughput.images_seen,
                                 "weights_digest": _weights_digest(model),
                                 "cores": _CONFIGURED.get("cores"), "pid": os.getpid()})
    if rank != 0:
        return None
    _save_model_atomic(model, settings, Path(settings["model_path"]))
    history = read_history(run_dir)
    result = {"run_name": settings["run_name"], "fingerprint": fingerprint(settings),
              "workers": size, "device": device, "labels": settings["labels"],
              "label_source": settings["label_source"], "input": settings["input"],
              "model": settings["model"], "batch_size": bs, "global_batch": bs * size,
              "learning_rate": lr, "epochs": settings["epochs"], "resumed_at": initial_epoch,
              "n_train": len(settings["train"]), "n_test": len(settings["test"]),
              "images_per_epoch": len(shard) * size, "model_path": settings["model_path"],
              "worker_seconds": time.perf_counter() - t_start, "history": history,
              "ranks": ranks, "summary": _summary(history)}
    write_json(run_dir / "result.json", result)
    return result


def _summary(history: list[dict]) -> dict[str, float]:
    """Totals over epochs: training seconds, s/epoch, images/s (all epochs and steady state)."""
    if not history:
        return {}
    secs = np.array([h["train_seconds"] for h in history])
    imgs = np.array([h["images"] for h in history])
    steady = secs[1:] if len(secs) > 1 else secs
    steady_imgs = imgs[1:] if len(imgs) > 1 else imgs
    last = history[-1]
    return {"total_s": float(secs.sum()), "s_per_epoch": float(secs.mean()),
            "images_per_s": float(imgs.sum() / secs.sum()),
            "steady_s_per_epoch": float(np.median(steady)),
            "steady_images_per_s": float(np.median(steady_imgs / steady)),
            "steady_cpu_s_per_image": (float(np.median(
                np.array([h["cpu_seconds"] for h in history])[-len(steady):] / steady_imgs))
                if all("cpu_seconds" in h for h in history) else float("nan")),
            "final_loss": last.get("loss", float("nan")),
            "final_accuracy": last.get("accuracy", float("nan")),
            "final_val_loss": last.get("val_loss", float("nan")),
            "final_val_accuracy": last.get("val_accuracy", float("nan"))}


# --------------------------------------------------------------------------------------------
# launching
# --------------------------------------------------------------------------------------------

def horovodrun_path() -> str | None:
    """The ``horovodrun`` beside this Python, or on PATH (None if Horovod is not installed)."""
    here = Path(sys.executable).parent / "horovodrun"
    if here.is_file():
        return str(here)
    return shutil.which("horovodrun")


def _failure_message(log: str, rc: int) -> str:
    import re

    first = re.search(r"first process to do so was:\s*Process name:\s*(\d+)", log)
    ours = [ln.split(FAIL_MARK, 1)[1].strip() for ln in log.splitlines() if FAIL_MARK in ln]
    ours = list(dict.fromkeys(ours))
    if first:  # the rank that failed first (the others usually fail because it left)
        ours.sort(key=lambda m: not m.startswith(f"rank={first[1]} "))
    if ours:
        lead = f"rank {first[1]} failed first; " if first else ""
        return lead + "; ".join(ours)
    if first:
        return f"rank {first[1]} failed first (no error message; see the log)"

    procs = sorted(set(re.findall(r"Process (\d+) exit with status code (-?\d+)", log)))
    if procs:
        return "; ".join(f"rank={r}: exited with status {c}" for r, c in procs)
    tail = "\n".join(log.strip().splitlines()[-15:])
    return f"exit status {rc} (no rank reported an error); last lines:\n{tail}"


def prepare_run_dir(settings: dict) -> dict | None:
    """Get a run folder ready; return the finished result instead if there is one.

    A ``result.json`` with the same fingerprint and number of epochs (and its model) means the
    run is done: its result is returned with ``skipped: True``. Otherwise ``settings.json`` is
    (re)written; if it named other settings, the old checkpoints and history are removed (they do
    not fit), else they stay and the run resumes from them.
    """
    run_dir = Path(settings["run_dir"])
    fp = fingerprint(settings)
    res_path = run_dir / "result.json"
    if res_path.is_file():
        try:
            res = json.loads(res_path.read_text())
            if (res.get("fingerprint") == fp and res.get("epochs") == settings["epochs"]
                    and Path(res["model_path"]).is_file()):
                return {**res, "skipped": True}
        except (OSError, json.JSONDecodeError, KeyError):
            pass
    sj = run_dir / "settings.json"
    if sj.is_file():
        try:
            same = json.loads(sj.read_text()).get("fingerprint") == fp
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:  # different settings: the old checkpoints do not apply
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
            (run_dir / "history.csv").unlink(missing_ok=True)
    res_path.unlink(missing_ok=True)
    write_json(sj, {**settings, "fingerprint": fp})
    return None


def launch_env(settings: dict, env: dict | None = None) -> dict[str, str]:
    """Environment of the launched workers: this one, plus quiet TensorFlow, the project on
    ``PYTHONPATH``, ``OMP_NUM_THREADS`` = threads per worker, ``HOROVOD_CYCLE_TIME`` from
    ``cycle_time_ms`` (unless already set), then ``env``."""
    threads = str(settings.get("threads_per_worker") or "")
    penv = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT),
                                                        os.environ.get("PYTHONPATH")])),
            **({"OMP_NUM_THREADS": threads} if threads else {})}
    cycle = settings.get("cycle_time_ms")
    if cycle and "HOROVOD_CYCLE_TIME" not in penv:
        penv["HOROVOD_CYCLE_TIME"] = f"{float(cycle):g}"
    penv.update(env or {})
    return penv


def launch(settings: dict, *, hosts: str | None = None, launcher: str = "auto",
           timeout: float | None = None, echo: bool = False,
           env: dict[str, str] | None = None) -> dict:
    """Run one training (``settings["workers"]`` processes) and return its result.

    Parameters
    ----------
    settings : dict
        From :func:`training_settings`.
    hosts : str, optional, keyword-only
        ``horovodrun -H`` value for multi-host runs (default ``localhost:<workers>``).
    launcher : {"auto", "horovodrun", "python"}, keyword-only
        ``auto``: horovodrun when Horovod is installed (also for one worker, so that timings of 1
        and N workers are taken the same way), else a plain Python process (one worker only).
    timeout : float, optional, keyword-only
        Seconds before the run is stopped (TrainingFailed).
    echo : bool, keyword-only
        Copy the workers' output to this process's stdout as it comes.
    env : dict, optional, keyword-only
        Extra environment variables for the workers.

    Returns
    -------
    dict
        The run's ``result.json`` plus ``wall_seconds`` (launch to exit) and ``skipped`` (True
        when a complete run with the same settings existed).

    Raises
    ------
    TrainingFailed
        When the run exits non-zero or times out, naming the failing rank(s); the log is
        ``<run_dir>/launch.log``.
    """
    run_dir = Path(settings["run_dir"])
    done = prepare_run_dir(settings)
    if done is not None:
        return done
    res_path, old = run_dir / "result.json", run_dir / "settings.json"

    n = int(settings["workers"])
    hr = horovodrun_path()
    use_hr = launcher == "horovodrun" or (launcher == "auto" and hr is not None) or n > 1 or hosts
    worker = [sys.executable, "-m", "seaice_utils.training.runs", "worker", "--settings", str(old)]
    if use_hr:
        if hr is None:
            raise TrainingFailed(f"{n} workers need horovodrun, which is not installed "
                                 "(see requirements-horovod.txt)")
        cmd = [hr, "--gloo", "-np", str(n), "-H", hosts or f"localhost:{n}", *worker]
    else:
        cmd = worker
    penv = launch_env(settings, env)
    log_path = run_dir / "launch.log"
    t0 = time.perf_counter()
    lines: list[str] = []
    with log_path.open("a") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} $ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=penv, start_new_session=True, bufsize=1)
        import threading

        def pump():
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line)
                if echo and not _noise(line):
                    print(line, end="", flush=True)

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            th.join(10)
            raise TrainingFailed(f"training run {settings['run_name']} timed out after "
                                 f"{timeout:.0f} s and was stopped; log: {log_path}") from None
        except BaseException:
            _kill_group(proc)
            raise
        th.join(30)
    wall = time.perf_counter() - t0
    if rc != 0:
        msg = _failure_message("".join(lines), rc)
        raise TrainingFailed(f"training run {settings['run_name']} failed (exit status {rc}): "
                             f"{msg}\nlog: {log_path}; the last checkpoint is kept in "
                             f"{run_dir / 'checkpoints'} and a rerun resumes from it")
    if not res_path.is_file():
        raise TrainingFailed(f"training run {settings['run_name']} exited 0 but wrote no "
                             f"{res_path}; log: {log_path}")
    res = json.loads(res_path.read_text())
    res.update(wall_seconds=wall, skipped=False)
    write_json(res_path, res)
    return res


def _noise(line: str) -> bool:
    return any(s in line for s in ("Warning", "warnings.warn", "cpu_feature_guard",
                                   "rebuild TensorFlow", "oneDNN"))


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def scaling_runs(params: dict, outputs_dir: str | os.PathLike, data: dict, *,
                 workers: Sequence[int] | None = None, labels: str = "auto",
                 echo: bool = False, **overrides) -> list[dict]:
    """Train the same model with each number of workers (Table III); returns the results.

    Runs are ``<outputs>/training/<labels>_w<N>``; the run with the most workers is also the
    final model of ``labels`` (see :func:`train_models`).
    """
    t = params["training"]
    out = []
    for n in workers or t["workers"]:
        s = training_settings(params, data, labels=labels, workers=n,
                              run_dir=Path(outputs_dir) / "training" / f"{labels}_w{n}", **overrides)
        out.append(launch(s, hosts=t["hosts"], timeout=t["timeout_s"], echo=echo))
    return out


def train_models(params: dict, outputs_dir: str | os.PathLike, data: dict, *,
                 models: Sequence[str] | None = None, workers: int | None = None,
                 hosts: str | None = None, launcher: str = "auto", echo: bool = False,
                 **overrides) -> dict:
    """Train U-Net-Man and U-Net-Auto (``training.models``) with the same tiles and seed, save
    them as ``<outputs>/models/unet_<labels>.keras`` and write ``<outputs>/models/training.json``
    (settings, split, histories) for notebook 05.

    A model whose run already completed with the same settings (e.g. the largest run of
    :func:`scaling_runs`) is not trained again.
    """
    t = params["training"]
    n = workers or max(t["workers"])
    results: dict[str, dict | None] = {}
    for labels in models or t["models"]:
        if labels == "man" and data.get("man_labels") is None:
            results[labels] = None
            continue
        s = training_settings(params, data, labels=labels, workers=n,
                              run_dir=Path(outputs_dir) / "training" / f"{labels}_w{n}",
                              **overrides)
        results[labels] = launch(s, hosts=hosts or t["hosts"], timeout=t["timeout_s"], echo=echo,
                                 launcher=launcher)
    return record_models(params, outputs_dir, data, results)


def record_models(params: dict, outputs_dir: str | os.PathLike, data: dict,
                  results: dict[str, dict | None]) -> dict:
    """Copy each run's model to ``<outputs>/models/unet_<labels>.keras`` and write
    ``<outputs>/models/training.json`` (settings, split, histories); returns that dict."""
    outputs_dir = Path(outputs_dir)
    from seaice_utils.labelling.settings import filter_params

    info = {"split": data["split"], "tiles_root": data["tiles_root"],
            "training": params["training"], "seed": params["global"]["seed"],
            "filter": filter_params(params).to_dict(), "models": {}}
    prev_path = outputs_dir / "models" / "training.json"
    if prev_path.is_file():  # keep models trained earlier on the same split (e.g. --labels man)
        try:
            prev = json.loads(prev_path.read_text())
            if prev.get("split") == data["split"]:
                info["models"] = {k: v for k, v in prev.get("models", {}).items()
                                  if k not in results and Path(v.get("path", "")).is_file()}
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    for labels, res in results.items():
        if res is None:
            info["models"][labels] = {"skipped": "no reference labels for every tile"}
            continue
        dst = outputs_dir / "models" / f"unet_{labels}.keras"
        atomic_write_bytes(dst, Path(res["model_path"]).read_bytes())
        info["models"][labels] = {k: res.get(k) for k in (
            "run_name", "labels", "label_source", "input", "model", "batch_size", "global_batch",
            "learning_rate", "epochs", "workers", "history", "summary", "fingerprint")}
        info["models"][labels]["path"] = str(dst)
    write_json(outputs_dir / "models" / "training.json", info)
    return info


def scaling_table(results: Sequence[dict]) -> list[dict[str, float]]:
    """Table III rows from :func:`scaling_runs` results (speedup against the fewest workers).

    Columns: workers, epochs, global_batch, total_s (training time summed over epochs, validation
    and start-up excluded), s_per_epoch, images_per_s, speedup, efficiency, steady_s_per_epoch and
    steady_images_per_s (median over epochs after the first, which includes graph tracing and
    filling the cache), cpu_s_per_image (CPU seconds of all ranks per training image, steady
    state: equal for 1 and N workers when distribution costs no extra work; when it stays flat
    but the speedup does not, the workers were waiting for cores, e.g. on a busy machine),
    wall_s (launch to exit, when measured).
    """
    rows = []
    base = min(results, key=lambda r: r["workers"])
    b = base["summary"]
    for r in sorted(results, key=lambda r: r["workers"]):
        s = r["summary"]
        sp = b["total_s"] / s["total_s"]
        ratio = r["workers"] / base["workers"]
        rows.append({"workers": r["workers"], "epochs": r["epochs"],
                     "global_batch": r["global_batch"], "total_s": s["total_s"],
                     "s_per_epoch": s["s_per_epoch"], "images_per_s": s["images_per_s"],
                     "speedup": sp, "efficiency": sp / ratio,
                     "steady_s_per_epoch": s["steady_s_per_epoch"],
                     "steady_images_per_s": s["steady_images_per_s"],
                     "steady_speedup": b["steady_s_per_epoch"] / s["steady_s_per_epoch"],
                     "cpu_s_per_image": s.get("steady_cpu_s_per_image", float("nan")),
                     "wall_s": r.get("wall_seconds")})
    return rows


def evaluate_model(model_path: str | os.PathLike, tiles_root: str | os.PathLike,
                   names: Sequence[str], *, input_layer: str = "filtered",
                   references: Sequence[str] = ("truth", "auto_filtered"),
                   batch_size: int = 8) -> dict[str, dict]:
    """Pixel accuracy and confusion counts of a saved model on tiles, against label layers.

    Returns
    -------
    dict
        reference name -> :func:`seaice_utils.metrics.classification_report` of the predictions
        (no-data of the reference excluded); references whose tiles are missing are left out.
    """
    from seaice_utils.training.data import load_tiles
    from seaice_utils.core.metrics import classification_report
    from seaice_utils.data.tiles import tile_path
    from seaice_utils.training.unet import load_unet, predict_classes

    model = load_unet(model_path)
    x = load_tiles(tiles_root, names, input_layer)
    pred = predict_classes(model, x, batch_size=batch_size)
    out = {}
    for ref in references:
        if not all(tile_path(tiles_root, ref, n).is_file() for n in names):
            continue
        y = load_tiles(tiles_root, names, ref)
        out[ref] = classification_report(pred, y)
    return out


def heldout_table(info: dict, data: dict) -> list[dict[str, Any]]:
    """Pixel accuracy and macro F1 of the trained models on the held-out tiles.

    Each model is scored against the reference labels (``truth``, when the dataset has them) and
    against the auto-labels of the filtered image; a first row scores the auto-labels themselves
    against the reference (the accuracy U-Net-Auto can reach by reproducing its labels).
    """
    from seaice_utils.training.data import load_tiles
    from seaice_utils.core.metrics import classification_report
    from seaice_utils.data.tiles import tile_path

    names, root = data["split"]["test"], data["tiles_root"]
    if not names:
        return []
    rows = []
    has_truth = all(tile_path(root, "truth", n).is_file() for n in names)
    if has_truth:
        rep = classification_report(load_tiles(root, names, "auto_filtered"),
                                    load_tiles(root, names, "truth"))
        rows.append({"model": "auto-labels (filtered)", "reference": "truth",
                     "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
                     "pixels": rep["n_pixels"]})
    for lab, m in info["models"].items():
        if "path" not in m:
            continue
        ev = evaluate_model(m["path"], root, names, input_layer=m["input"])
        for ref, rep in ev.items():
            rows.append({"model": f"U-Net-{lab.capitalize()}", "reference": ref,
                         "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
                         "pixels": rep["n_pixels"]})
    return rows


def plot_speedup(rows: Sequence[dict], *, label: str = "this machine", paper: bool = True):
    """Speedup against workers with the ideal line (and the paper's A100 figures); a Figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    w = [r["workers"] for r in rows]
    top = max(w + ([8] if paper else []))
    ax.plot([1, top], [1, top], "k--", lw=1, label="ideal (linear)")
    if paper:
        ax.plot([r["workers"] for r in PAPER_TABLE3], [r["speedup"] for r in PAPER_TABLE3], "s-",
                color="0.6", label="paper (DGX A100 GPUs)")
    ax.plot(w, [r["speedup"] for r in rows], "o-", color="C0", lw=2, label=f"{label}, all epochs")
    if "steady_speedup" in rows[0]:
        ax.plot(w, [r["steady_speedup"] for r in rows], "o:", color="C1",
                label=f"{label}, steady state")
    for r in rows:
        ax.annotate(f"{100 * r['efficiency']:.0f}%", (r["workers"], r["speedup"]),
                    textcoords="offset points", xytext=(6, -12), fontsize=8, color="C0")
    ax.set_xlabel("Horovod workers")
    ax.set_ylabel("speedup (training time, 1 worker / N)")
    ax.set_xticks(sorted(set(w) | ({1, 2, 4, 6, 8} if paper else set())))
    ax.set_xlim(0.5, top + 0.5)
    ax.set_ylim(0, top + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("U-Net training: Horovod speedup (labels: efficiency)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves(models: dict[str, dict]):
    """Loss and pixel accuracy per epoch (training solid, held-out dashed) of each model."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (lab, m) in enumerate((k, v) for k, v in models.items() if "history" in v):
        h = m["history"]
        ep = [r["epoch"] for r in h]
        name = f"U-Net-{lab.capitalize()}"
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(ep, [r[key] for r in h], "-", color=f"C{i}", label=f"{name} train")
            if f"val_{key}" in h[0]:
                ax.plot(ep, [r[f"val_{key}"] for r in h], "--", color=f"C{i}",
                        label=f"{name} held-out")
    axes[0].set_ylabel("cross-entropy (no-data weighted 0)")
    axes[1].set_ylabel("pixel accuracy against its own labels")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# command line (``seaice train`` and ``python -m seaice_utils.training.runs``)
# --------------------------------------------------------------------------------------------

def _worker_entry(settings_list: list[dict] | None, hv, *, results: dict | None = None) -> int:
    """Run the trainings rank 0 lists (broadcast to all); rank 0's results go to ``results``."""
    rank, size = hv.rank(), hv.size()
    try:
        settings_list = hv.broadcast_object(settings_list, 0)
        for s in settings_list:
            res = run_worker(s, hv=hv)
            if results is not None and res is not None:
                results[s["labels"]] = res
        return 0
    except BaseException as exc:  # report which rank failed, then let horovodrun stop the rest
        import traceback

        traceback.print_exc()
        print(f"{FAIL_MARK} rank={rank} size={size}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        return 1


def train_cli(params_file: str, outputs_dir: str, *, labels: Sequence[str] = ("man", "auto"),
              workers: int = 1, hosts: str | None = None, epochs: int | None = None,
              mixed_precision: bool | None = None, xla: bool | None = None,
              progress: bool = True) -> int:
    """What ``seaice train`` does (see the module docstring)."""
    from seaice_utils.params import load_params

    params = load_params(params_file)
    over: dict[str, Any] = {}
    if epochs is not None:
        over["epochs"] = epochs
    for k, v in (("mixed_precision", mixed_precision), ("xla", xla)):
        if v is not None:
            over[k] = v

    t = params["training"]
    if under_horovodrun():  # we are one rank of `horovodrun ... seaice train`
        hv = _init_horovod(True)
        _configure_tf({"threads_per_worker": t["threads_per_worker"], "mixed_precision":
                       over.get("mixed_precision", t["mixed_precision"]),
                       "inter_op_threads": t["inter_op_threads"],
                       "xla": over.get("xla", t["xla"])}, hv)
        todo, done, data = None, {}, None
        if hv.rank() == 0:
            data = prepare_training_data(params, outputs_dir, progress=False)
            todo = []
            for lab in labels:
                if lab == "man" and data.get("man_labels") is None:
                    done[lab] = None
                    continue
                s = training_settings(params, data, labels=lab, workers=hv.size(),
                                      run_dir=Path(outputs_dir) / "training" / f"{lab}_w{hv.size()}",
                                      **over)
                res = prepare_run_dir(s)
                if res is None:
                    todo.append(s)
                else:
                    done[lab] = res
        rc = _worker_entry(todo, hv, results=done)
        if rc == 0 and hv.rank() == 0:
            info = record_models(params, outputs_dir, data, done)
            _print_models(info)
        return rc
    data = prepare_training_data(params, outputs_dir, progress=progress)
    info = train_models(params, outputs_dir, data, models=labels, workers=workers, hosts=hosts,
                        launcher="auto" if workers > 1 or hosts else "python", echo=progress,
                        **over)
    _print_models(info)
    return 0


def _print_models(info: dict) -> None:
    for lab, m in info["models"].items():
        if "path" not in m:
            print(f"U-Net-{lab.capitalize()}: skipped ({m.get('skipped')})")
            continue
        sm = m["summary"]
        print(f"U-Net-{lab.capitalize()}: {m['epochs']} epochs on {m['workers']} worker(s), "
              f"{sm['total_s']:.1f} s training, {sm['images_per_s']:.1f} img/s, held-out accuracy "
              f"(own labels) {sm['final_val_accuracy']:.4f} -> {m['path']}")


def main(argv: list[str] | None = None) -> int:
    """``python -m seaice_utils.training.runs worker --settings FILE`` (what :func:`launch` starts)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m seaice_utils.training.runs")
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="one rank of a run prepared by launch()")
    w.add_argument("--settings", required=True)
    a = ap.parse_args(argv)
    settings = json.loads(Path(a.settings).read_text())
    hv = _init_horovod()
    if settings.get("pin_cores", True) and not os.environ.get("SEAICE_NO_PIN"):
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cores = pin_cores(hv.local_rank(), int(settings.get("threads_per_worker") or 0))
            if cores is not None:
                _CONFIGURED["cores"] = ",".join(map(str, cores))
    _configure_tf(settings, hv)
    return _worker_entry([settings] if hv.rank() == 0 else None, hv)


if __name__ == "__main__":
    sys.exit(main())
