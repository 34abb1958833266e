"""Notebook 05's steps, one call each: the test tiles predicted, the auto-label quality, the
confusion matrices, whole scenes, the speedups, the real sample and the run's record.

Each ``save_*`` step computes with the other modules of :mod:`seaice_utils.evaluation`, writes its
tables (``<outputs>/tables/05_*.csv``) and figures (``<outputs>/figures/05_*.png``) and returns a
:class:`Shown`: what the notebook prints and displays. TensorFlow is imported only by the models'
loading (:func:`predict_test_set`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from seaice_utils.data.dataset import ensure_dataset
from seaice_utils.data.tiles import read_tile_index
from seaice_utils.evaluation.cloud import cloud_estimate_check, cloud_for_tiles, cloud_fractions
from seaice_utils.evaluation.figures import confusion_figure, real_sample_figure, scene_figure
from seaice_utils.evaluation.models import EvalModels, TileSet, index_cloud, load_tile_set
from seaice_utils.evaluation.scenes import real_sample, real_sample_path, scene_inference
from seaice_utils.evaluation.speedups import find_speedup_tables, speedup_figure, speedup_table
from seaice_utils.evaluation.tables import (autolabel_counts, autolabel_quality, confusion_table,
                                            predict_conditions)
from seaice_utils.inference.model import load_model
from seaice_utils.report import save_figure, save_table, shown_path

#: The columns of the real sample's summary the notebook shows.
REAL_SAMPLE_COLUMNS = ["map", "valid_pixels", "open_water_fraction", "thin_ice_fraction",
                       "thick_ice_fraction", "pixel_area_source"]
NO_SCENE_INFERENCE = ("no whole-scene inference (evaluation.scene_inference is off, max_scenes is "
                      "0, or the split holds out tiles rather than scenes)")


@dataclass
class Shown:
    """What a step wrote and the notebook shows: ``text`` to print, ``tables`` to display, the
    ``figures`` (PNG files) to display, and ``data``, the step's result for later steps."""

    text: str = ""
    tables: list = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    data: Any = None


@dataclass
class HeldOutSet:
    """The held-out test tiles, their cloud/shadow cover, the loaded models and their predictions
    (:func:`~seaice_utils.evaluation.tables.predict_conditions`)."""

    tiles: TileSet
    cloud: np.ndarray
    cloud_source: str
    loaded: dict
    preds: dict
    threshold: float

    def describe(self) -> str:
        return (f"{len(self.tiles)} test tiles of {len(set(self.tiles.scenes))} scene(s); "
                f"cloud/shadow cover: {self.cloud_source}; "
                f"{int((self.cloud > self.threshold).sum())} tiles above "
                f"{100 * self.threshold:g} %")


@dataclass
class AutoLabels:
    """The auto-labels' counts against the reference (:func:`autolabel_counts`), the known
    cloud cover of their tiles (NaN where unknown) and the quality table."""

    counts: dict
    known: np.ndarray
    quality: pd.DataFrame


def predict_test_set(models: EvalModels, params: dict) -> HeldOutSet:
    """Load notebook 04's test tiles and models, find the tiles' cloud cover and predict every
    tile with every model on the original and on the filtered image."""
    ev, progress = params["evaluation"], params["global"]["progress"]
    tiles = load_tile_set(models.tiles_root, models.split["test"], reference=models.reference)
    cloud, cloud_source = cloud_fractions(tiles, source=ev["cloud_source"], file=ev["cloud_file"])
    loaded = {name: load_model(m.path)[0] for name, m in models.models.items()}
    preds = predict_conditions(models, tiles, batch_size=params["inference"]["batch_size"],
                               loaded=loaded, progress=progress)
    return HeldOutSet(tiles, cloud, cloud_source, loaded, preds, ev["cloud_threshold"])


def save_autolabel_quality(models: EvalModels, params: dict,
                           outputs_dir: str | os.PathLike) -> AutoLabels:
    """The auto-labels against the reference on the tiles of ``evaluation.autolabel_tiles``
    (test tiles, or all), per cloud stratum; saved as ``05_autolabel_quality``."""
    ev, progress = params["evaluation"], params["global"]["progress"]
    names = (models.split["test"] if ev["autolabel_tiles"] == "test"
             else [r["tile"] for r in read_tile_index(models.tiles_root)])
    counts = autolabel_counts(models.tiles_root, names, reference=models.reference,
                              ssim_window=ev["ssim_window"], progress=progress)
    known, scenes = index_cloud(models.tiles_root, names)
    cloud, _ = cloud_for_tiles(known, counts["estimate"], names=names, scenes=scenes,
                               has_data=counts["valid"] > 0, source=ev["cloud_source"],
                               file=ev["cloud_file"])
    quality = save_table(autolabel_quality(counts, cloud, threshold=ev["cloud_threshold"]),
                         outputs_dir, "05_autolabel_quality")
    return AutoLabels(counts, known, quality)


def save_cloud_estimate_check(labels: AutoLabels, params: dict,
                              outputs_dir: str | os.PathLike) -> Shown:
    """Where the cloud cover of every auto-labelled tile with data is known, the filter's
    estimate against it (saved as ``05_cloud_estimate_check``); else only a message."""
    if not np.isfinite(labels.known[labels.counts["valid"] > 0]).all():
        return Shown("the cloud cover of these tiles is not known: no check of the estimate possible")
    check = save_table(cloud_estimate_check(labels.known, labels.counts["estimate"],
                                            threshold=params["evaluation"]["cloud_threshold"]),
                       outputs_dir, "05_cloud_estimate_check")
    return Shown(f"the filter's estimate against the known cover of "
                 f"{int((labels.counts['valid'] > 0).sum())} tiles", [check], data=check)


def save_confusion(test: HeldOutSet, outputs_dir: str | os.PathLike) -> Shown:
    """The confusion matrices: counts saved as ``05_confusion_matrices`` (shown as percent of
    the reference class), and their figure."""
    confusion = save_table(confusion_table(test.preds, test.tiles.reference), outputs_dir,
                           "05_confusion_matrices")
    shown = confusion.pivot_table(index=["model", "input", "predicted"], columns="reference",
                                  values="percent_of_reference", sort=False).round(1)
    png = save_figure(confusion_figure(test.preds, test.tiles.reference), outputs_dir,
                      "05_confusion_matrices")
    return Shown(tables=[shown], figures=[str(png)], data=confusion)


def scene_model(models: EvalModels) -> str:
    """The model that maps whole scenes and the real sample: U-Net-Auto, else the first."""
    return "U-Net-Auto" if "U-Net-Auto" in models.models else next(iter(models.models))


def save_scene_inference(models: EvalModels, test: HeldOutSet, params: dict,
                         outputs_dir: str | os.PathLike) -> Shown:
    """Whole-scene inference of the held-out scenes (at most ``evaluation.max_scenes``) with
    :func:`scene_model`: ``05_scene_inference``, ``05_scene_areas`` and the first scene's map;
    only a message when it is off or no scene is held out."""
    import pandas as pd

    ev, name = params["evaluation"], scene_model(models)
    held_out = models.split.get("test_scenes", [])
    scenes = [r for r in ensure_dataset(outputs_dir, params, progress=False)
              if r.name in held_out][:ev["max_scenes"]]
    if not (ev["scene_inference"] and scenes):
        return Shown(NO_SCENE_INFERENCE)
    settings = models.models[name].settings
    si = scene_inference(test.loaded[name], settings, scenes, params,
                         progress=params["global"]["progress"])
    rows = save_table(pd.DataFrame(si["rows"]).assign(model=name), outputs_dir,
                      "05_scene_inference")
    areas = save_table(pd.DataFrame(si["areas"]).assign(model=name), outputs_dir,
                       "05_scene_areas")
    png = save_figure(scene_figure(si["maps"], scenes[0].name, tile=settings.tile_size,
                                   model_name=name), outputs_dir, "05_scene_prediction")
    return Shown(f"{name} on {len(scenes)} held-out scene(s)", [rows, areas], [str(png)], si)


def save_speedups(outputs_dir: str | os.PathLike) -> Shown:
    """Tables I-III as notebooks 03 and 04 saved them, beside the paper's: ``05_speedups`` and
    its figure; ``data`` is :func:`find_speedup_tables`'s answer."""
    speed = find_speedup_tables(outputs_dir)
    text = "\n".join(f"{table}: " + (f"from {t['file']}" if "data" in t
                                     else f"MISSING - {t['missing']}")
                     for table, t in speed.items())
    speedups = save_table(speedup_table(speed), outputs_dir, "05_speedups")
    shown = speedups.pivot_table(index=["table", "workers"], columns="source", values="speedup",
                                 aggfunc="max").round(2)
    png = save_figure(speedup_figure(speed), outputs_dir, "05_speedups")
    return Shown(text, [shown], [str(png)], speed)


def save_real_sample(models: EvalModels, test: HeldOutSet, params: dict,
                     outputs_dir: str | os.PathLike) -> Shown:
    """The real sample of ``evaluation.real_sample`` mapped by :func:`scene_model`:
    ``05_real_sample_summary`` and its figure, or only the message why it is skipped."""
    import pandas as pd

    sample, message = real_sample_path(params)
    if sample is None:
        return Shown(message)
    name = scene_model(models)
    rs = real_sample(sample, test.loaded[name], models.models[name].settings, params,
                     progress=params["global"]["progress"])
    summary = save_table(pd.DataFrame(rs["rows"]), outputs_dir, "05_real_sample_summary")
    png = save_figure(real_sample_figure(rs, model_name=name), outputs_dir, "05_real_sample")
    return Shown(message, [summary[REAL_SAMPLE_COLUMNS]], [str(png)], rs)


def evaluation_record(models: EvalModels, test: HeldOutSet, table4: pd.DataFrame,
                      table5: pd.DataFrame, autolabel: pd.DataFrame,
                      speed: Mapping[str, dict], real_sample_message: str,
                      outputs_dir: str | os.PathLike) -> dict:
    """The run manifest's ``05_evaluation`` record: models, test set and the headline figures."""
    return {
        "models": {n: shown_path(m.path, outputs_dir) for n, m in models.models.items()},
        "notes": models.notes,
        "test_tiles": len(test.tiles), "test_scenes": sorted(set(test.tiles.scenes)),
        "cloud_source": test.cloud_source,
        "table4_accuracy_pct": {f"{r.model} / {r.input}": round(r.accuracy_pct, 3)
                                for r in table4.itertuples()},
        "table5_accuracy_pct": {f"{r.model} / {r.input} / {r.stratum}": round(r.accuracy_pct, 3)
                                for r in table5.itertuples()},
        "autolabel": {f"{r.input} / {r.stratum}": {"accuracy_pct": round(r.accuracy_pct, 3),
                                                   "ssim_pct": round(r.ssim_pct, 3)}
                      for r in autolabel.itertuples()},
        "speedup_tables": {k: v.get("file", v.get("missing")) for k, v in speed.items()},
        "real_sample": real_sample_message}
