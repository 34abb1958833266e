"""Keras callbacks of a training rank, and the run's per-epoch history file.

:func:`make_callbacks` gives the callbacks one rank trains with: Horovod's initial broadcast and
metric averaging (more than one rank), :func:`ThroughputCallback` (per-epoch time and images/s
over all ranks) and, on rank 0 alone, a logger that appends the epoch to ``history.csv``, saves a
checkpoint naming it and prints a progress line. :func:`read_history` reads ``history.csv`` back.

TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from pathlib import Path

from seaice_utils.report import write_rows_csv

_log = logging.getLogger("seaice.training")

__all__ = ["make_callbacks", "ThroughputCallback", "read_history"]


def read_history(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a run's ``history.csv`` (numbers as floats; empty list when there is none)."""
    p = Path(run_dir) / "history.csv"
    if not p.is_file():
        return []
    with p.open(newline="") as fh:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def _write_history(run_dir: Path, rows: list[dict]) -> None:
    write_rows_csv(run_dir / "history.csv", rows)


def make_callbacks(settings, hv, shard_size, run_dir: Path, ckpt, history: list[dict]):
    """The callbacks of one rank's ``model.fit`` and its :func:`ThroughputCallback`.

    Rank 0 also gets a logger that, at each epoch end, appends the epoch to ``history`` and
    ``<run_dir>/history.csv``, then saves checkpoint ``ckpt`` (numbered by the epoch, in
    ``<run_dir>/checkpoints``) and prints a progress line when ``settings["verbose"]``.
    """
    import tensorflow as tf

    rank, size = hv.rank(), hv.size()

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
                _log.info(f"[{settings['run_name']}] epoch {epoch + 1}/{settings['epochs']}  "
                          f"loss {row['loss']:.4f}  accuracy {row['accuracy']:.4f}{val}  "
                          f"{row['train_seconds']:.2f} s  {row['images_per_s']:.1f} img/s")

    cbs = []
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
