"""What a training run is asked to do: its tiles and split, and its settings (no TensorFlow).

:func:`prepare_training_data` gets the tiles and the train/test split of a profile ready;
:func:`training_settings` turns the profile's ``training`` section, the data and any overrides into
the JSON-able dict every rank of a run reads (written to ``settings.json``); :func:`fingerprint`
hashes the part of it that decides whether checkpoints can be reused.

In memory the settings hold paths as given (absolute, or relative to the working directory);
what a run folder's files hold is :func:`portable_settings` (and :func:`portable_paths` for
``result.json``): every path relative to the run folder, so that the folder can be shared, and
moved with the outputs folder it lies in, without naming a user's folders.
:func:`read_settings` turns a ``settings.json`` back into absolute paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from seaice_utils.core.scenes import write_json
from seaice_utils.data.dataset import ensure_dataset, resolve_source
from seaice_utils.data.tiles import prepare_tiles
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.training.data import LABEL_LAYERS, convert_manual_labels, split_tiles
from seaice_utils.training.unet import unet_config

__all__ = ["TrainingFailed", "prepare_training_data", "training_settings", "process_settings",
           "run_dir_of", "fingerprint", "portable_paths", "absolute_paths", "portable_settings",
           "read_settings"]

_NOT_FINGERPRINTED = ("verbose", "model_path", "run_dir", "run_name", "epochs", "fingerprint",
                      "pin_cores", "cycle_time_ms")
#: Keys of settings (and of a run's result) that may hold paths. ``label_source`` is a path only
#: when it is not a label-layer name (``truth``, ``auto_filtered``, ...), ``cache`` only when it is
#: a string (a cache-file prefix; else True/False).
_PATH_KEYS = ("run_dir", "tiles_root", "model_path", "label_source", "cache")
#: Settings that configure a rank's process (threads, precision, XLA) before TensorFlow starts.
_PROCESS_KEYS = ("threads_per_worker", "inter_op_threads", "mixed_precision", "xla")


class TrainingFailed(SeaIceError):
    """A training run exited non-zero; the message names the failing rank(s) and the log."""


def prepare_training_data(params: dict, outputs_dir: str | os.PathLike, *,
                          progress: bool | None = None) -> dict[str, Any]:
    """Tiles and the train/test split a profile trains on (resumable; no TensorFlow).

    Generates the dataset if needed (:func:`seaice_utils.data.dataset.ensure_dataset`), writes
    its tile layers to ``<outputs>/tiles`` (:func:`seaice_utils.data.tiles.prepare_tiles`),
    converts ``training.man_labels`` (a user's manual labels) to class maps if given, splits the
    tiles (:func:`seaice_utils.training.data.split_tiles`) and writes the split to
    ``<outputs>/models/split.json``.

    Returns
    -------
    dict
        ``tiles_root``, ``split`` (see ``split_tiles``), ``n_tiles``, ``man_labels`` (label source
        of U-Net-Man: ``"truth"`` or the converted folder, None when there are no reference
        labels), ``outputs_dir`` (what the paths ``training.json`` records are relative to).
    """
    t = params["training"]
    outputs_dir = Path(outputs_dir)
    tiles_root = outputs_dir / "tiles"
    rows = prepare_tiles(ensure_dataset(outputs_dir, resolve_source(params, outputs_dir),
                                       progress=progress), tiles_root,
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
    return {"tiles_root": str(tiles_root), "split": split, "n_tiles": len(rows), "man_labels": man,
            "outputs_dir": str(outputs_dir)}


def process_settings(params: dict, **overrides: Any) -> dict[str, Any]:
    """The settings that configure a rank's process (intra/inter-op threads, mixed precision,
    XLA): the profile's ``training`` values, replaced by ``overrides`` where given; the same
    values :func:`training_settings` records."""
    t = params["training"]
    return {k: overrides.get(k, t[k]) for k in _PROCESS_KEYS}


def run_dir_of(outputs_dir: str | os.PathLike, labels: str, workers: int) -> Path:
    """Folder of the run that trains on ``labels`` with ``workers`` processes:
    ``<outputs>/training/<labels>_w<workers>``."""
    return Path(outputs_dir) / "training" / f"{labels}_w{workers}"


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
        :func:`seaice_utils.training.data.label_folder`.
    workers : int, keyword-only
        Number of processes the run is launched with (recorded; learning-rate scaling uses the
        actual Horovod size).
    run_dir : path, keyword-only
    **overrides
        Any key of the returned dict (e.g. ``epochs=1``, ``batch_size=8``, ``scale_lr=False``).
    """
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
    proc = process_settings(params)
    s = {"run_name": run_name or run_dir.name, "run_dir": str(run_dir), "labels": labels,
         "label_source": label_source, "input": t["input"], "tiles_root": data["tiles_root"],
         "train": list(data["split"]["train"]), "test": list(data["split"]["test"]),
         "split_by": data["split"]["by"], "model": cfg.to_dict(), "batch_size": t["batch_size"],
         "epochs": t["epochs"], "learning_rate": t["learning_rate"], "scale_lr": t["scale_lr"],
         "seed": g["seed"], "workers": workers,
         "threads_per_worker": proc["threads_per_worker"],
         "inter_op_threads": proc["inter_op_threads"], "pin_cores": t["pin_cores"],
         "cycle_time_ms": t["cycle_time_ms"],
         "mixed_precision": proc["mixed_precision"], "xla": proc["xla"], "cache": t["cache"],
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


def _is_path(key: str, value: Any) -> bool:
    if key not in _PATH_KEYS or not isinstance(value, str) or not value:
        return False
    return value not in LABEL_LAYERS if key == "label_source" else True


def portable_paths(d: dict, run_dir: str | os.PathLike) -> dict:
    """``d`` with its paths (:data:`_PATH_KEYS`) relative to ``run_dir`` (POSIX form); relative
    paths in ``d`` and a relative ``run_dir`` are taken from the working directory. The other
    values are kept. A path on another drive (Windows) stays as it is.

    >>> run = "/o/training/auto_w1"
    >>> portable_paths({"run_dir": run, "tiles_root": "/o/tiles", "label_source": "truth",
    ...                 "model_path": run + "/model.keras"}, run)
    {'run_dir': '.', 'tiles_root': '../../tiles', 'label_source': 'truth', 'model_path': 'model.keras'}
    """
    base = os.path.abspath(run_dir)
    out = dict(d)
    for k, v in d.items():
        if _is_path(k, v):
            try:
                out[k] = Path(os.path.relpath(os.path.abspath(v), base)).as_posix()
            except ValueError:
                pass
    return out


def absolute_paths(d: dict, run_dir: str | os.PathLike) -> dict:
    """``d`` with its relative paths (:data:`_PATH_KEYS`) taken from ``run_dir`` (the inverse of
    :func:`portable_paths`)."""
    base = os.path.abspath(run_dir)
    return {k: (os.path.normpath(os.path.join(base, v)) if _is_path(k, v)
                and not os.path.isabs(v) else v) for k, v in d.items()}


def portable_settings(settings: dict) -> dict:
    """What ``settings.json`` holds: the settings with their paths relative to the run folder
    (``run_dir`` itself ``"."``)."""
    return portable_paths(settings, settings.get("run_dir") or ".")


def read_settings(path: str | os.PathLike) -> dict:
    """A ``settings.json`` with its paths made absolute: ``run_dir`` is taken from the file's
    folder, the other paths from the run folder."""
    path = Path(os.path.abspath(path))
    s = json.loads(path.read_text())
    run_dir = os.path.normpath(os.path.join(path.parent, s.get("run_dir") or "."))
    return absolute_paths({**s, "run_dir": run_dir}, run_dir)


def fingerprint(settings: dict) -> str:
    """Hash of the settings that make checkpoints compatible: everything but the number of epochs
    (so that a run asked for more epochs continues from its checkpoint), paths of outputs and
    verbosity. Paths count in their form relative to the run folder
    (:func:`portable_settings`): a run moved with its outputs folder keeps its fingerprint."""
    keep = {k: v for k, v in portable_settings(settings).items() if k not in _NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]
