"""U-Net training runs of a profile: Table III scaling runs, the two models, ``seaice train``.

One entry, three ways to run it::

    seaice train --params params/quick.yml                     # one process, no Horovod needed
    seaice train --params params/quick.yml --workers 2         # spawns horovodrun --gloo -np 2
    horovodrun --gloo -np 2 -H localhost:2 seaice train --params params/quick.yml
    horovodrun --gloo -np 8 -H node1:4,node2:4 seaice train --params params/paper.yml

and from Python (notebook 04): :func:`seaice_utils.training.settings.prepare_training_data`,
:func:`scaling_runs`, :func:`scaling_table`, :func:`train_models`, :func:`heldout_table`.

A run is one :func:`seaice_utils.training.launch.launch` of settings from
:func:`seaice_utils.training.settings.training_settings`; its ranks run
:func:`seaice_utils.training.worker.run_worker` (synchronous data parallelism with Horovod). The
runs of a profile live in ``<outputs>/training/<labels>_w<workers>/``; the final models are
copied to ``<outputs>/models/unet_<labels>.keras`` with ``<outputs>/models/training.json``.

Mixed precision (``training.mixed_precision``) and XLA (``training.xla``) are meant for GPU runs,
e.g. on an 8-GPU node::

    horovodrun -np 8 -H localhost:8 seaice train --params params/paper.yml --mixed-precision --xla

TensorFlow and Horovod are imported inside functions only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from seaice_utils.core.metrics import classification_report
from seaice_utils.core.scenes import atomic_write_bytes, write_json
from seaice_utils.core.speedup_plot import draw_speedups
from seaice_utils.data.tiles import tile_path
from seaice_utils.labelling.settings import filter_params
from seaice_utils.paper import PAPER_TABLE3
from seaice_utils.params import load_params
from seaice_utils.report import shown_path, shown_paths
from seaice_utils.training.data import load_tiles
from seaice_utils.training.launch import launch, prepare_run_dir
from seaice_utils.training.settings import (prepare_training_data, process_settings, run_dir_of,
                                            training_settings)
from seaice_utils.training.unet import load_unet, predict_classes
from seaice_utils.training.worker import configure_tf, init_horovod, run_trainings, under_horovodrun

__all__ = ["scaling_runs", "train_models", "record_models", "scaling_table", "evaluate_model",
           "heldout_table", "plot_speedup", "plot_training_curves", "train_cli"]


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
                              run_dir=run_dir_of(outputs_dir, labels, n), **overrides)
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
                              run_dir=run_dir_of(outputs_dir, labels, n), **overrides)
        results[labels] = launch(s, hosts=hosts or t["hosts"], timeout=t["timeout_s"], echo=echo,
                                 launcher=launcher)
    return record_models(params, outputs_dir, data, results)


def record_models(params: dict, outputs_dir: str | os.PathLike, data: dict,
                  results: dict[str, dict | None]) -> dict:
    """Copy each run's model to ``<outputs>/models/unet_<labels>.keras`` and write
    ``<outputs>/models/training.json`` (settings, split, histories); returns that dict.

    Its paths (``tiles_root``, each model's ``path``, a ``label_source`` folder) are relative to
    the outputs folder (:func:`seaice_utils.report.shown_path`): the file can be shared.
    """
    outputs_dir = Path(outputs_dir)

    info = {"split": data["split"], "tiles_root": shown_path(data["tiles_root"], outputs_dir),
            "training": shown_paths(params["training"], outputs_dir),
            "seed": params["global"]["seed"],
            "filter": filter_params(params).to_dict(), "models": {}}
    prev_path = outputs_dir / "models" / "training.json"
    if prev_path.is_file():  # keep models trained earlier on the same split (e.g. --labels man)
        try:
            prev = json.loads(prev_path.read_text())
            if prev.get("split") == data["split"]:
                info["models"] = {k: v for k, v in prev.get("models", {}).items()
                                  if k not in results and v.get("path")
                                  and (outputs_dir / v["path"]).is_file()}
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
        source = info["models"][labels]["label_source"]
        if isinstance(source, str) and ("/" in source or os.sep in source):   # a folder
            info["models"][labels]["label_source"] = shown_path(source, outputs_dir)
        info["models"][labels]["path"] = shown_path(dst, outputs_dir)
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
        reference name -> :func:`seaice_utils.core.metrics.classification_report` of the predictions
        (no-data of the reference excluded); references whose tiles are missing are left out.
    """
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

    ``info`` is :func:`record_models`'s (model paths relative to ``data["outputs_dir"]``).

    Each model is scored against the reference labels (``truth``, when the dataset has them) and
    against the auto-labels of the filtered image; a first row scores the auto-labels themselves
    against the reference (the accuracy U-Net-Auto can reach by reproducing its labels).
    """
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
        ev = evaluate_model(Path(data.get("outputs_dir", "")) / m["path"], root, names,
                            input_layer=m["input"])
        for ref, rep in ev.items():
            rows.append({"model": f"U-Net-{lab.capitalize()}", "reference": ref,
                         "accuracy": rep["accuracy"], "macro_f1": rep["macro"]["f1"],
                         "pixels": rep["n_pixels"]})
    return rows


def plot_speedup(rows: Sequence[dict], *, label: str = "this machine", paper: bool = True):
    """Speedup against workers with the ideal line (and the paper's A100 figures); a pyplot
    Figure (:func:`~seaice_utils.core.speedup_plot.draw_speedups`), labels: efficiency."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    w = [r["workers"] for r in rows]
    measured = {f"{label}, all epochs": (w, [r["speedup"] for r in rows])}
    if "steady_speedup" in rows[0]:
        measured[f"{label}, steady state"] = (w, [r["steady_speedup"] for r in rows])
    reference = {"paper (DGX A100 GPUs)": ([r["workers"] for r in PAPER_TABLE3],
                                           [r["speedup"] for r in PAPER_TABLE3])} if paper else None
    draw_speedups(ax, measured, xlabel="Horovod workers", reference=reference,
                  ylabel="speedup (training time, 1 worker / N)", ideal_label="ideal (linear)",
                  styles={f"{label}, steady state": "o:"},
                  notes={f"{label}, all epochs": [f"{100 * r['efficiency']:.0f}%" for r in rows]},
                  xticks=sorted(set(w) | ({1, 2, 4, 6, 8} if paper else set())),
                  title="U-Net training: Horovod speedup (labels: efficiency)")
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
# command line (``seaice train``)
# --------------------------------------------------------------------------------------------

def train_cli(params_file: str, outputs_dir: str, *, labels: Sequence[str] = ("man", "auto"),
              workers: int = 1, hosts: str | None = None, epochs: int | None = None,
              mixed_precision: bool | None = None, xla: bool | None = None,
              progress: bool = True, overrides: Sequence[str] = ()) -> int:
    """What ``seaice train`` does (see the module docstring); ``overrides`` are ``--set``
    items."""
    params = load_params(params_file, overrides)
    over: dict[str, Any] = {}
    if epochs is not None:
        over["epochs"] = epochs
    for k, v in (("mixed_precision", mixed_precision), ("xla", xla)):
        if v is not None:
            over[k] = v

    if under_horovodrun():  # we are one rank of `horovodrun ... seaice train`
        hv = init_horovod(True)
        configure_tf(process_settings(params, **over), hv)
        todo, done, data = None, {}, None
        if hv.rank() == 0:
            data = prepare_training_data(params, outputs_dir, progress=False)
            todo = []
            for lab in labels:
                if lab == "man" and data.get("man_labels") is None:
                    done[lab] = None
                    continue
                s = training_settings(params, data, labels=lab, workers=hv.size(),
                                      run_dir=run_dir_of(outputs_dir, lab, hv.size()), **over)
                res = prepare_run_dir(s)
                if res is None:
                    todo.append(s)
                else:
                    done[lab] = res
        rc = run_trainings(todo, hv, results=done)
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
    """Log one line per model of ``training.json``: epochs, workers, time, accuracy, path."""
    import logging

    log = logging.getLogger("seaice.training")
    for lab, m in info["models"].items():
        if "path" not in m:
            log.info(f"U-Net-{lab.capitalize()}: skipped ({m.get('skipped')})")
            continue
        sm = m["summary"]
        log.info(f"U-Net-{lab.capitalize()}: {m['epochs']} epochs on {m['workers']} worker(s), "
                 f"{sm['total_s']:.1f} s training, {sm['images_per_s']:.1f} img/s, held-out "
                 f"accuracy (own labels) {sm['final_val_accuracy']:.4f} -> {m['path']}")
