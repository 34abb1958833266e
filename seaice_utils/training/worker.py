"""One rank of a training run: Horovod (or a single process), TensorFlow set-up, training.

What each worker does (:func:`run_worker`): ``hvd.init()``; pins one GPU per local rank when GPUs
exist (else sets the intra/inter-op thread counts, 1 each by default so that N processes share N
cores, and pins each local rank to cores of its own, :func:`pin_cores`); reads its shard of the
training tiles (:func:`seaice_utils.training.data.make_dataset`: each rank a distinct, equal part
of every epoch); builds the U-Net; wraps Adam in ``hvd.DistributedOptimizer`` (ring all-reduce of
the gradients) with the learning rate multiplied by the number of workers (``training.scale_lr``,
on by default); restores the last checkpoint if there is one; broadcasts the initial state
(weights and optimizer slots) from rank 0; averages the metrics over ranks at each epoch end;
records per-epoch time and images/s over all ranks
(:func:`seaice_utils.training.callbacks.ThroughputCallback`). Rank 0 alone writes checkpoints
(every epoch, atomically through ``tf.train.CheckpointManager``), the history (``history.csv``),
the final model and ``result.json``.

:func:`seaice_utils.training.launch.launch` starts each rank as::

    python -m seaice_utils.training.worker --settings <run>/settings.json

(:func:`rank_entry`; the paths in ``settings.json`` are relative to the run folder and taken from
the folder of the file given, :func:`seaice_utils.training.settings.read_settings`); ``seaice train`` under ``horovodrun`` runs :func:`run_trainings` in its
ranks directly. A worker that raises prints ``seaice-train-failure rank=R size=N: <error>``
(:data:`FAILURE_MARK`) and exits 1; ``horovodrun`` then stops the other ranks.

Mixed precision (``mixed_precision``) and XLA (``xla``, auto-clustering, which leaves Horovod's
all-reduce outside the compiled clusters) are meant for GPU runs.

TensorFlow and Horovod are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from seaice_utils.core.scenes import write_json
from seaice_utils.training.callbacks import make_callbacks, read_history
from seaice_utils.training.data import make_dataset, shard_names
from seaice_utils.training.settings import fingerprint, portable_paths, read_settings
from seaice_utils.training.unet import build_unet, unet_config

__all__ = ["FAILURE_MARK", "under_horovodrun", "init_horovod", "pin_cores", "configure_tf",
           "run_worker", "run_trainings", "rank_entry"]

#: Start of the line a failing rank prints (``<mark> rank=R size=N: <error>``); the launcher
#: reads it back from the log to name the rank.
FAILURE_MARK = "seaice-train-failure"


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


def init_horovod(force: bool | None = None):
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


def configure_tf(settings: dict, hv) -> str:
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


def _weights_digest(model) -> str:
    """Short hash of a model's weights (equal on ranks that are in sync)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _save_model_atomic(model, settings: dict, path: Path) -> None:
    """Save an uncompiled float32 copy of ``model`` as ``.keras``, atomically."""
    import tensorflow as tf

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
        The result on rank 0 (paths as in ``settings``), None on other ranks. ``result.json``
        holds it with its paths relative to the run folder.
    """
    hv = hv or init_horovod()
    import tensorflow as tf

    device = configure_tf(settings, hv)
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

    callbacks, throughput = make_callbacks(settings, hv, len(shard), run_dir, ckpt, history)
    if rank == 0 and settings["verbose"]:
        logging.getLogger("seaice.training").info(
            f"[{settings['run_name']}] {size} worker(s) on {device}, "
            f"{len(settings['train'])} training tiles ({len(shard)} per worker), "
            f"batch {bs} per worker, lr {lr:g}, "
            f"{'resuming after epoch %d' % initial_epoch if initial_epoch else 'fresh start'}")
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
    write_json(run_dir / "result.json", portable_paths(result, run_dir))
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


def run_trainings(settings_list: list[dict] | None, hv, *, results: dict | None = None) -> int:
    """Run the trainings rank 0 lists (broadcast to all); rank 0's results go to ``results``.

    Returns 0, or 1 after printing the traceback and a :data:`FAILURE_MARK` line naming this
    rank when a training raised (``horovodrun`` then stops the other ranks).
    """
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
        print(f"{FAILURE_MARK} rank={rank} size={size}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        return 1


def rank_entry(argv: list[str] | None = None) -> int:
    """``python -m seaice_utils.training.worker --settings FILE``: one rank of a run prepared by
    :func:`seaice_utils.training.launch.launch` (what it starts, once per rank)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m seaice_utils.training.worker",
                                 description="one rank of a run prepared by launch()")
    ap.add_argument("--settings", required=True)
    a = ap.parse_args(argv)
    settings = read_settings(a.settings)
    hv = init_horovod()
    # this rank's log lines go to its stdout (launch() collects them into launch.log); only
    # rank 0 reports progress, the others warnings and errors
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("seaice")
    log.addHandler(handler)
    log.setLevel(logging.INFO if hv.rank() == 0 else logging.WARNING)
    if settings.get("pin_cores", True):
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cores = pin_cores(hv.local_rank(), int(settings.get("threads_per_worker") or 0))
            if cores is not None:
                _CONFIGURED["cores"] = ",".join(map(str, cores))
    configure_tf(settings, hv)
    return run_trainings([settings] if hv.rank() == 0 else None, hv)


if __name__ == "__main__":
    sys.exit(rank_entry())
