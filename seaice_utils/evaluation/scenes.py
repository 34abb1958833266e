"""Whole scenes in notebook 05: full-scene inference with and without overlap, the real sample.

:func:`scene_inference` predicts the held-out scenes whole (as ``seaice predict`` does): accuracy,
seams at the window borders, time and class areas. :func:`real_sample` maps the optional real
scene of ``evaluation.real_sample`` (no reference labels: agreement with the auto-labels only).
Their figures are in :mod:`seaice_utils.evaluation.figures`. TensorFlow is not imported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seaice_utils.core.metrics import pixel_accuracy
from seaice_utils.core.scenes import read_scene
from seaice_utils.data.dataset import load_scene, load_truth
from seaice_utils.evaluation.models import resolve_path
from seaice_utils.inference import class_summary, pixel_area_m2
from seaice_utils.inference.model import model_input
from seaice_utils.inference.runtime import make_predict_fn
from seaice_utils.inference.stitch import predict_scene, seam_statistics, tile_windows
from seaice_utils.labelling.autolabel import auto_label
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.report import shown_path

__all__ = ["scene_inference", "real_sample_path", "real_sample"]


def scene_inference(model, settings, records: Sequence, params: dict, *,
                    overlaps: Sequence[int] | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Predict whole scenes with and without overlap: accuracy, seams, time and class areas.

    Parameters
    ----------
    model : Keras model or callable
    settings : seaice_utils.inference.model.ModelSettings
    records : sequence of seaice_utils.data.dataset.SceneRecord
        The scenes (e.g. the test scenes).
    params : dict
        Profile (``filter``, ``inference`` sections).
    overlaps : sequence of int, optional
        Default ``(0, inference.overlap)``.

    Returns
    -------
    dict
        ``rows`` (scene, overlap, windows, seconds, accuracy_pct, seam_ratio, border and interior
        change rates; border = the edges of the windows used for that overlap), ``areas``
        (:func:`seaice_utils.engines.scene_outputs.class_summary` rows, largest overlap),
        ``maps`` {scene: {"rgb", "truth", overlap: classes}}.
    """
    import time

    inf = params["inference"]
    fp = filter_params(params)                    # the same for every scene
    overlaps = list(overlaps) if overlaps is not None else sorted({0, inf["overlap"]})
    predict = make_predict_fn(model, runtime=inf.get("runtime", "auto"),
                              batch_size=inf["batch_size"])
    rows, areas, maps = [], [], {}
    for rec in records:
        sc = load_scene(rec)
        truth = load_truth(rec)
        x = model_input(sc.rgb, kind=settings.input, nodata=sc.nodata, filter_params=fp)
        maps[rec.name] = {"rgb": sc.rgb, "truth": truth}
        for ov in overlaps:
            t0 = time.perf_counter()
            cl = predict_scene(predict, x, nodata=sc.nodata, tile=settings.tile_size, overlap=ov,
                               batch_size=inf["batch_size"], blend=inf["blend"],
                               border=inf["border"], progress=progress, desc=rec.name)
            dt = time.perf_counter() - t0
            seams = seam_statistics(cl, tile=settings.tile_size, overlap=ov,
                                    border=inf["border"])
            rows.append({"scene": rec.name, "overlap_px": ov,
                         "windows": len(tile_windows(
                             tuple(n + 2 * (ov // 2 if inf["border"] == "reflect" else 0)
                                   for n in sc.shape), settings.tile_size, ov)),
                         "seconds": dt,
                         "accuracy_pct": 100 * pixel_accuracy(cl, truth) if truth is not None
                         else np.nan,
                         "seam_ratio": seams["ratio"], "border_change_rate": seams["border_rate"],
                         "interior_change_rate": seams["interior_rate"]})
            maps[rec.name][ov] = cl
        area, src = pixel_area_m2(sc.meta, sc.shape,
                                  default_pixel_size_m=inf["pixel_size_m"])
        areas.append(class_summary(maps[rec.name][overlaps[-1]], pixel_area=area, name=rec.name,
                                   area_source=src))
    return {"rows": rows, "areas": areas, "maps": maps, "overlaps": overlaps}


def real_sample_path(params: dict) -> tuple[Path | None, str]:
    """The optional real scene of ``evaluation.real_sample`` and a sentence about it."""
    rs = params.get("evaluation", {}).get("real_sample")
    if not rs:
        return None, "evaluation.real_sample is not set: no real sample shown"
    p = resolve_path(rs)
    if not p.is_file():
        where = shown_path(p) if Path(rs).is_absolute() else rs
        return None, (f"real sample {where} not found (evaluation.real_sample, relative to the "
                      "project folder; the paper's lives outside the project, in "
                      "../shared/real-samples/, and is absent on most machines): skipped")
    return p, f"real sample {p.name}"


def real_sample(path: str | os.PathLike, model, settings, params: dict, *,
                progress: bool = False) -> dict[str, Any]:
    """U-Net map and auto-labels of a real scene (no reference: agreement, not accuracy).

    Returns
    -------
    dict
        ``rgb``, ``nodata``, ``levels`` (filtered), ``auto`` (auto-labels of the filtered image),
        ``pred`` (the model's map, blended windows), ``agreement_pct`` (pixels where both agree),
        ``rows`` (class summaries of both, with the area source).
    """
    sc = read_scene(path)
    fp = filter_params(params)
    auto, levels = auto_label(sc.rgb, nodata=sc.nodata, filter_params=fp,
                              thresholds=thresholds(params))
    x = model_input(sc.rgb, kind=settings.input, nodata=sc.nodata, filter_params=fp)
    inf = params["inference"]
    pred = predict_scene(model, x, nodata=sc.nodata, tile=settings.tile_size,
                         overlap=inf["overlap"], batch_size=inf["batch_size"], blend=inf["blend"],
                         border=inf["border"], progress=progress, desc=sc.name)
    area, src = pixel_area_m2(sc.meta, sc.shape, default_pixel_size_m=inf["pixel_size_m"])
    rows = [dict(class_summary(auto, pixel_area=area, name=sc.name, area_source=src),
                 map="auto-labels (filtered)"),
            dict(class_summary(pred, pixel_area=area, name=sc.name, area_source=src),
                 map="U-Net prediction")]
    return {"name": sc.name, "rgb": sc.rgb, "nodata": sc.nodata, "levels": levels, "auto": auto,
            "pred": pred, "agreement_pct": 100 * pixel_accuracy(pred, auto), "rows": rows}
