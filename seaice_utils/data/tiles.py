"""Tile datasets: scenes -> filtered scenes, auto-labels -> 256 px tiles for training/evaluation.

The filter runs on whole scenes (or per tile, as the profile says) *before* tiling, so tiles carry
the scene-wide background estimate. For every tile ``<scene>_<row:04d>_<col:04d>`` the tile folder
holds one PNG per layer::

    <root>/rgb/<tile>.png            original RGB (no-data black)
    <root>/filtered/<tile>.png       filtered grey levels 0 / 155 / 255
    <root>/auto_original/<tile>.png  auto-label class map of the original colours
    <root>/auto_filtered/<tile>.png  auto-label class map of the filtered image (the paper's labels)
    <root>/truth/<tile>.png          reference class map (when the dataset has one)
    <root>/cloud/<tile>.png          cloud mask 0 clear / 1 haze / 2 shadow (when known)
    <root>/index.csv                 tile, scene, row, col, nodata_fraction, cloud_fraction, ...

Class maps use 0 water, 1 thin, 2 thick, 255 no-data. A scene is finished when its marker
``<root>/done/<scene>.json`` exists (written last); reruns skip finished scenes.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from seaice_utils.core.classes import NODATA
from seaice_utils.labelling.autolabel import Thresholds, segment
from seaice_utils.labelling.cloudfilter import FilterParams, levels_to_rgb, thin_cloud_shadow_filter
from seaice_utils.labelling.settings import filter_params, thresholds
from seaice_utils.data.dataset import SceneRecord, load_cloud, load_scene, load_truth
from seaice_utils.errors import InputError
from seaice_utils.core.scenes import atomic_write_bytes, write_json, write_png
from seaice_utils.core.tiling import split_tiles

__all__ = ["LAYERS", "prepare_tiles", "read_tile_index", "tile_path", "scene_layers"]

LAYERS = ("rgb", "filtered", "auto_original", "auto_filtered", "truth", "cloud")
INDEX = "index.csv"


def tile_path(root: str | os.PathLike, layer: str, tile: str) -> Path:
    """Path of one layer of one tile."""
    if layer not in LAYERS:
        raise InputError(f"unknown tile layer {layer!r} (known: {', '.join(LAYERS)})")
    return Path(root) / layer / f"{tile}.png"


def scene_layers(rec: SceneRecord, fparams: FilterParams, thr: Thresholds
                 ) -> dict[str, np.ndarray]:
    """All layers of one scene at full size (no-data: black RGB, 0 levels, 255 class maps).

    ``fparams`` and ``thr`` are the profile's filter constants and HSV thresholds
    (:func:`seaice_utils.labelling.settings.filter_params` / ``thresholds``).
    """
    scene = load_scene(rec)
    levels = thin_cloud_shadow_filter(scene.rgb, fparams, nodata=scene.nodata)
    out = {"rgb": scene.rgb, "nodata": scene.nodata, "filtered": levels,
           "auto_original": segment(scene.rgb, thr, nodata=scene.nodata),
           "auto_filtered": segment(levels_to_rgb(levels), thr, nodata=scene.nodata)}
    truth = load_truth(rec)
    if truth is not None:
        if truth.shape != scene.shape:
            raise InputError(f"reference labels of {rec.name} are {truth.shape}, scene is {scene.shape}")
        truth = truth.copy()
        truth[scene.nodata] = NODATA
        out["truth"] = truth
    cloud = load_cloud(rec)
    if cloud is not None:
        out["cloud"] = cloud
    return out


def prepare_tiles(records: Sequence[SceneRecord], root: str | os.PathLike, params: dict, *,
                  progress: bool | None = None) -> list[dict]:
    """Write the tile layers of every scene (resumable) and return the tile index rows."""
    from tqdm import tqdm

    root = Path(root)
    tile = params["global"]["tile_size"]
    show = params["global"]["progress"] if progress is None else progress
    thr, fparams = thresholds(params), filter_params(params)
    rows: list[dict] = []
    for rec in tqdm(records, desc="tiling scenes", unit="scene", disable=not show):
        marker = root / "done" / f"{rec.name}.json"
        if marker.is_file():
            try:
                rows += json.loads(marker.read_text())["tiles"]
                continue
            except (OSError, json.JSONDecodeError, KeyError):
                pass  # damaged marker: redo the scene
        layers = scene_layers(rec, fparams, thr)
        nodata = layers.pop("nodata")
        split = {}
        for name, arr in layers.items():
            fill = NODATA if name in ("auto_original", "auto_filtered", "truth") else 0
            split[name], masks = split_tiles(arr, rec.name, tile, nodata=nodata, fill=fill)
        scene_rows = []
        for tname, mask in masks.items():
            r, c = (int(x) for x in tname.rsplit("_", 2)[1:])
            for name in split:
                write_png(tile_path(root, name, tname), split[name][tname])
            cloud = split.get("cloud", {}).get(tname)
            valid = ~mask
            n_valid = int(valid.sum())
            scene_rows.append({
                "tile": tname, "scene": rec.name, "row": r, "col": c,
                "nodata_fraction": round(float(mask.mean()), 5),
                "cloud_fraction": (round(float(((cloud > 0) & valid).sum()) / n_valid, 5)
                                   if cloud is not None and n_valid else ""),
                "has_truth": "truth" in split})
        write_json(marker, {"scene": rec.name, "tiles": scene_rows})
        rows += scene_rows
    _write_index(root, rows)
    return rows


def _write_index(root: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    cols = ["tile", "scene", "row", "col", "nodata_fraction", "cloud_fraction", "has_truth"]
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(root / INDEX, buf.getvalue().encode())


def read_tile_index(root: str | os.PathLike) -> list[dict]:
    """Rows of ``index.csv`` (numbers parsed; cloud_fraction None when unknown)."""
    path = Path(root) / INDEX
    if not path.is_file():
        raise InputError(f"no tile index at {path}; run prepare_tiles first")
    out = []
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            out.append({"tile": r["tile"], "scene": r["scene"], "row": int(r["row"]),
                        "col": int(r["col"]), "nodata_fraction": float(r["nodata_fraction"]),
                        "cloud_fraction": float(r["cloud_fraction"]) if r["cloud_fraction"] else None,
                        "has_truth": r["has_truth"] == "True"})
    return out
