"""Evaluation as the paper does it (PAPER.md, Evaluation), and a little further: notebook 05.

What is measured, on the held-out test tiles of notebook 04's split (``<outputs>/models``):

* **Table IV** — pixel accuracy of U-Net-Man (trained on the reference labels) and U-Net-Auto
  (trained on the auto-labels of the filtered image) when fed the *original* image (its grey, or
  RGB for RGB models) and the *filtered* image (the filter's levels, as in training); plus
  precision, recall, F1 and IoU per class, their **macro** mean (unweighted over the classes
  present in the reference) and their **weighted** mean (each class weighted by its reference
  pixel count, scikit-learn's ``average="weighted"``). Pixel accuracy is pooled over all valid
  pixels of all test tiles (no-data excluded).
* **Table V** — the same on two strata of tiles: cloud/shadow cover above ``cloud_threshold``
  (10 %) and at or below it. The "overall" row is the pixel-weighted mean of the two strata, as
  the paper computes its overall figures (for accuracy it equals the pooled accuracy of Table IV).
  The cover of a tile comes from the tile index (known for the synthetic data: share of valid
  pixels under haze or shadow), from a user's CSV (``evaluation.cloud_file``), or is *estimated*
  (:func:`estimate_cloud_fraction`) as the share of valid pixels whose class the filter changes
  (colour segmentation of the original image vs of the filtered image) — a proxy that measures
  what Table V is about, where the filter matters, and is honest about being one: notebook 05
  compares it with the known cover of the synthetic data.
* **Auto-label quality** — accuracy, macro F1 and SSIM (:func:`seaice_utils.metrics.label_ssim`,
  per tile, mean weighted by valid pixels) of the auto-labels of the original and of the
  filtered image against the reference (the paper: SSIM 89 % and 99.64 %).
* Confusion matrices in the paper's orientation (row = predicted class, column = reference class,
  each column sums to 100 %).

Everything is computed from per-tile confusion counts (:func:`tile_confusions`), so strata are
sums of tiles and no metric needs the maps twice. Figures are drawn without pyplot
(:mod:`seaice_utils.core.figures`). TensorFlow is imported only when models are loaded.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from seaice_utils.core.classes import CLASS_NAMES, NODATA
from seaice_utils.errors import InputError
from seaice_utils.core.metrics import report_from_counts
from seaice_utils.paper import PAPER_AUTOLABEL_SSIM, PAPER_SPEEDUPS, PAPER_TABLE4, PAPER_TABLE5

__all__ = ["PROJECT_ROOT", "MODEL_NAMES", "CONDITIONS", "PAPER_TABLE4", "PAPER_TABLE5",
           "PAPER_AUTOLABEL_SSIM", "PAPER_SPEEDUPS", "ModelsMissing", "ModelEntry", "EvalModels",
           "find_models", "TileSet", "load_tile_set", "estimate_cloud_fraction",
           "cloud_for_tiles", "cloud_fractions", "index_cloud", "strata", "tile_confusions",
           "report_from_counts", "metrics_row", "predict_conditions", "table4",
           "per_class_table", "table5", "autolabel_counts", "autolabel_quality",
           "cloud_estimate_check", "confusion_table", "confusion_figure", "pick_examples",
           "autolabel_examples_figure", "predictions_figure", "find_speedup_tables",
           "speedup_table", "speedup_figure", "scene_inference", "scene_figure", "resolve_path",
           "real_sample_path", "real_sample", "real_sample_figure"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAMES = {"man": "U-Net-Man", "auto": "U-Net-Auto"}
CONDITIONS = ("original", "filtered")
N_CLASSES = 3


class ModelsMissing(InputError):
    """Notebook 04's models (or its split) are not where notebook 05 looks."""


# ------------------------------------------------------------------------------------------
# models, split, tiles
# ------------------------------------------------------------------------------------------

def resolve_path(path: str | os.PathLike) -> Path:
    """A path from a profile: absolute as is, relative to the project root otherwise."""
    p = Path(path)
    return p if p.is_absolute() else (PROJECT_ROOT / p)


@dataclass(frozen=True)
class ModelEntry:
    """One trained model: display name, label source, file and input settings."""

    name: str
    labels: str
    path: Path
    settings: Any  # seaice_utils.infer.ModelSettings
    info: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class EvalModels:
    """What notebook 04 left for notebook 05."""

    models: dict[str, ModelEntry]
    split: dict
    tiles_root: Path
    reference: str
    models_dir: Path
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        s = [f"models in {self.models_dir}:"]
        for m in self.models.values():
            s.append(f"  {m.name}: {m.path.name}, input {m.settings.input!r} "
                     f"({m.settings.tile_size} px; settings from {m.settings.source})")
        sp = self.split
        s.append(f"test set: {len(sp['test'])} tiles of {len(sp.get('test_scenes', []))} "
                 f"scene(s) (split by {sp.get('by', '?')}, seed {sp.get('seed', '?')})")
        s.append(f"reference labels: {self.reference}")
        return "\n".join(s + [f"note: {n}" for n in self.notes])


def find_models(outputs_dir: str | os.PathLike, params: dict | None = None, *,
                models_dir: str | os.PathLike | None = None) -> EvalModels:
    """Locate notebook 04's U-Net-Man and U-Net-Auto, its split and its tiles.

    Looks in ``models_dir`` (default ``evaluation.models_dir`` of the profile, else
    ``<outputs>/models``) for ``unet_man.keras`` and ``unet_auto.keras``, ``training.json``
    (:func:`seaice_utils.train.train_models`) and ``split.json``. No TensorFlow needed.

    Raises
    ------
    ModelsMissing
        When no model or no split is there, saying which files were expected and how to make them.
    """
    from seaice_utils.inference.predict import read_model_settings

    if models_dir is None and params is not None:
        md = params.get("evaluation", {}).get("models_dir")
        models_dir = resolve_path(md) if md else None
    mdir = Path(models_dir) if models_dir is not None else Path(outputs_dir) / "models"
    how = ("run notebook 04 first (seaice reproduce --params <profile> --only 04, or seaice "
           "train --params <profile>), or set evaluation.models_dir to a folder holding them")
    info: dict = {}
    tj = mdir / "training.json"
    if tj.is_file():
        try:
            info = json.loads(tj.read_text())
        except json.JSONDecodeError as exc:
            raise ModelsMissing(f"{tj} is not valid JSON ({exc}); {how}") from exc
    notes: list[str] = []
    models: dict[str, ModelEntry] = {}
    for labels, name in MODEL_NAMES.items():
        entry = (info.get("models") or {}).get(labels) or {}
        path = mdir / f"unet_{labels}.keras"          # beside training.json, even if moved
        if not path.is_file() and entry.get("path"):
            path = Path(entry["path"])
        if not path.is_file():
            if entry.get("skipped"):
                notes.append(f"{name} was not trained: {entry['skipped']}")
            continue
        models[name] = ModelEntry(name, labels, path, read_model_settings(path), entry)
    if not models:
        raise ModelsMissing(f"notebook 04's models are missing: no unet_man.keras or "
                            f"unet_auto.keras in {mdir}; {how}")
    for name in MODEL_NAMES.values():
        if name not in models and not any(name in n for n in notes):
            notes.append(f"{name} is missing from {mdir}: its rows are left out")
    split = info.get("split")
    if split is None and (mdir / "split.json").is_file():
        split = json.loads((mdir / "split.json").read_text())
    if not split or not split.get("test"):
        raise ModelsMissing(f"notebook 04's train/test split is missing or has no test tiles "
                            f"(expected training.json or split.json in {mdir}); {how}")
    tiles_root = Path(info.get("tiles_root") or Path(outputs_dir) / "tiles")
    if not (tiles_root / "index.csv").is_file():
        tiles_root = Path(outputs_dir) / "tiles"
    if not (tiles_root / "index.csv").is_file():
        raise ModelsMissing(f"the tiles the models were trained on are missing ({tiles_root}/"
                            f"index.csv); {how}")
    reference = "truth"
    man = (info.get("models") or {}).get("man") or {}
    src = man.get("label_source")
    if isinstance(src, str) and src not in ("truth", "man") and Path(src).is_dir():
        reference = src          # a user's manual labels, converted to class maps
    return EvalModels(models, split, tiles_root, reference, mdir, notes)


@dataclass
class TileSet:
    """Layers of a list of tiles, stacked.

    Attributes
    ----------
    names, scenes : list of str
    rgb : (N, t, t, 3) uint8 ndarray
    filtered : (N, t, t) uint8 ndarray
        The filter's levels 0 / 155 / 255.
    auto_original, auto_filtered, reference : (N, t, t) uint8 ndarray
        Class maps (255 no-data).
    cloud_known : (N,) float ndarray
        Cloud/shadow cover from the tile index (NaN where unknown).
    """

    names: list[str]
    scenes: list[str]
    rgb: np.ndarray
    filtered: np.ndarray
    auto_original: np.ndarray
    auto_filtered: np.ndarray
    reference: np.ndarray
    cloud_known: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def valid_fraction(self) -> np.ndarray:
        return (self.reference != NODATA).mean(axis=(1, 2))


def load_tile_set(tiles_root: str | os.PathLike, names: Sequence[str], *,
                  reference: str = "truth") -> TileSet:
    """Read the layers of ``names`` from a tile folder (:mod:`seaice_utils.data.tiles`).

    ``reference`` is a layer name (``truth``) or a folder of class-map tiles ``<tile>.png``.
    """
    from seaice_utils.training.data import load_tiles

    names = list(names)
    if not names:
        raise InputError("no tiles to evaluate")
    cloud, scenes = index_cloud(tiles_root, names)
    return TileSet(names=names, scenes=scenes,
                   rgb=load_tiles(tiles_root, names, "rgb"),
                   filtered=load_tiles(tiles_root, names, "filtered"),
                   auto_original=load_tiles(tiles_root, names, "auto_original"),
                   auto_filtered=load_tiles(tiles_root, names, "auto_filtered"),
                   reference=load_tiles(tiles_root, names, reference), cloud_known=cloud)


# ------------------------------------------------------------------------------------------
# cloud cover and strata
# ------------------------------------------------------------------------------------------

def estimate_cloud_fraction(auto_original: np.ndarray, auto_filtered: np.ndarray) -> np.ndarray:
    """Estimated cloud/shadow cover of tiles: the share of valid pixels the filter re-classes.

    Parameters
    ----------
    auto_original, auto_filtered : (N, t, t) or (t, t) uint8 ndarray
        Colour-segmentation class maps of the original and of the filtered image.

    Returns
    -------
    (N,) float ndarray (or a float for one tile)
        NaN for tiles without valid pixels.

    Notes
    -----
    Haze lifts dark water and thin ice, shadow darkens thick ice: both change the colour classes,
    which the filter (comparing each pixel with its local background) restores. The estimate is
    therefore high where clouds changed the classes, not where haze is so thin that nothing
    changes, and it also counts the (few) pixels the filter re-classes without clouds. It is a
    proxy; use the known cover or a user's file when there is one.

    >>> a = np.array([[[0, 1], [2, 2]]], np.uint8); b = np.array([[[0, 1], [1, 255]]], np.uint8)
    >>> estimate_cloud_fraction(a, b).round(3).tolist()
    [0.333]
    """
    a, b = np.asarray(auto_original), np.asarray(auto_filtered)
    if a.shape != b.shape:
        raise InputError(f"auto-label shapes differ: {a.shape} vs {b.shape}")
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    valid = (a != NODATA) & (b != NODATA)
    n = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, ((a != b) & valid).sum(axis=(1, 2)) / np.maximum(n, 1), np.nan)
    return float(out[0]) if single else out


def _read_cloud_file(path: Path, names: Sequence[str], scenes: Sequence[str]) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"cloud cover file not found: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "cloud_fraction" not in rows[0] or not ({"tile", "scene"} & set(rows[0])):
        raise InputError(f"{path} needs columns 'tile' (or 'scene') and 'cloud_fraction' "
                         f"(got {list(rows[0]) if rows else 'no rows'})")
    by_tile = {r["tile"]: r["cloud_fraction"] for r in rows if r.get("tile")}
    by_scene = {r["scene"]: r["cloud_fraction"] for r in rows
                if r.get("scene") and not r.get("tile")}
    out = []
    for n, s in zip(names, scenes):
        v = by_tile.get(n, by_scene.get(s))
        if v is None:
            raise InputError(f"{path} gives no cloud_fraction for tile {n} (scene {s})")
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"{path}: cloud_fraction of {n} is not a number ({v!r})") from None
        if not 0.0 <= f <= 1.0:
            raise InputError(f"{path}: cloud_fraction must lie in 0..1 (got {f} for {n})")
        out.append(f)
    return np.array(out, float)


def cloud_for_tiles(known: np.ndarray, estimate: np.ndarray | None = None, *,
                    names: Sequence[str] = (), scenes: Sequence[str] = (),
                    has_data: np.ndarray | None = None, source: str = "auto",
                    file: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """Cloud/shadow cover of tiles and a sentence saying where it came from.

    Parameters
    ----------
    known : (N,) float ndarray
        Cover from the tile index (NaN where unknown).
    estimate : (N,) float ndarray, optional
        :func:`estimate_cloud_fraction` of the same tiles.
    names, scenes : sequences of str, keyword-only
        Tile and scene names (for ``file``).
    has_data : (N,) bool ndarray, optional, keyword-only
        Tiles holding valid pixels (only they need a known cover); default all.
    source : {"auto", "index", "estimate", "file"}, keyword-only
        ``index`` (known; synthetic data), ``estimate``, ``file`` (a CSV, see
        ``evaluation.cloud_file``), ``auto`` (index when it knows every tile holding data, else
        estimate).
    """
    known = np.asarray(known, float)
    has = np.ones(len(known), bool) if has_data is None else np.asarray(has_data, bool)
    if source == "auto":
        source = "index" if np.isfinite(known[has]).all() else "estimate"
    if source == "index":
        if not np.isfinite(known[has]).all():
            raise InputError("the tile index does not know the cloud cover of every tile; use "
                             "evaluation.cloud_source: estimate or file")
        return known, "known cloud/shadow mask of the dataset (tile index)"
    if source == "estimate":
        if estimate is None:
            raise InputError("no estimate of the cloud cover was given")
        return (np.asarray(estimate, float),
                "estimated: share of valid pixels whose class the filter changes")
    if source == "file":
        if not file:
            raise InputError("evaluation.cloud_source is 'file' but evaluation.cloud_file is not "
                             "set")
        p = resolve_path(file)
        return _read_cloud_file(p, names, scenes), f"user file {p}"
    raise InputError(f"cloud source must be auto, index, estimate or file (got {source!r})")


def cloud_fractions(tiles: TileSet, *, source: str = "auto",
                    file: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """:func:`cloud_for_tiles` of a :class:`TileSet`."""
    return cloud_for_tiles(tiles.cloud_known,
                           estimate_cloud_fraction(tiles.auto_original, tiles.auto_filtered),
                           names=tiles.names, scenes=tiles.scenes,
                           has_data=tiles.valid_fraction > 0, source=source, file=file)


def index_cloud(tiles_root: str | os.PathLike,
                names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Known cover (NaN where unknown) and scene of ``names`` from a tile index."""
    from seaice_utils.data.tiles import read_tile_index

    idx = {r["tile"]: r for r in read_tile_index(tiles_root)}
    missing = [n for n in names if n not in idx]
    if missing:
        raise InputError(f"{len(missing)} tile(s) are not in {tiles_root}/index.csv, e.g. "
                         f"{missing[0]} (was the split made on another tile folder?)")
    return (np.array([np.nan if idx[n]["cloud_fraction"] is None else idx[n]["cloud_fraction"]
                      for n in names], float), [idx[n]["scene"] for n in names])


def strata(cloud: np.ndarray, threshold: float = 0.10) -> dict[str, np.ndarray]:
    """Boolean tile masks of the two strata: cover > threshold, and <= threshold (or unknown)."""
    c = np.asarray(cloud, float)
    above = np.nan_to_num(c, nan=0.0) > threshold
    pct = f"{100 * threshold:g}%"
    return {f"> {pct} cloud/shadow": above, f"<= {pct} cloud/shadow": ~above}


# ------------------------------------------------------------------------------------------
# counts and metrics
# ------------------------------------------------------------------------------------------

def tile_confusions(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Confusion counts of every tile, paper orientation: C[i, a, b] = pixels of tile i with
    reference class b predicted as a (no-data in either map left out).

    Parameters
    ----------
    pred, ref : (N, H, W) uint8 ndarray

    Returns
    -------
    (N, 3, 3) int64 ndarray

    >>> tile_confusions(np.array([[[0, 1, 1, 255]]]), np.array([[[0, 0, 1, 2]]]))[0].tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise InputError(f"tile_confusions takes two (N, H, W) maps of one shape (got {pred.shape} "
                         f"and {ref.shape})")
    n = pred.shape[0]
    valid = (pred != NODATA) & (ref != NODATA)
    p = pred.astype(np.int64)
    r = ref.astype(np.int64)
    if (p[valid] >= N_CLASSES).any() or (r[valid] >= N_CLASSES).any():
        raise InputError(f"class maps hold values outside 0..{N_CLASSES - 1} and {NODATA}")
    tile = np.broadcast_to(np.arange(n)[:, None, None], pred.shape)
    idx = (tile * N_CLASSES * N_CLASSES + p * N_CLASSES + r)[valid]
    return np.bincount(idx, minlength=n * N_CLASSES ** 2).reshape(n, N_CLASSES, N_CLASSES)


def metrics_row(report: Mapping) -> dict[str, float]:
    """Flat table columns (percent) of a report: accuracy, macro and pixel-weighted P/R/F1/IoU."""
    row = {"accuracy_pct": 100 * report["accuracy"]}
    for avg in ("macro", "weighted"):
        for k in ("precision", "recall", "f1", "iou"):
            row[f"{avg}_{k}_pct"] = 100 * report[avg][k]
    row["n_pixels"] = report["n_pixels"]
    return row


def predict_conditions(models: EvalModels | Mapping[str, ModelEntry], tiles: TileSet, *,
                       batch_size: int = 2, progress: bool = False,
                       loaded: Mapping[str, Any] | None = None
                       ) -> dict[tuple[str, str], np.ndarray]:
    """Class maps of every test tile by every model, fed the original and the filtered image.

    The original image is fed as its grey (one-channel models) or RGB; the filtered image as the
    filter's levels (stacked to three channels for RGB models). ``loaded`` may map model names
    to already loaded models (or callables).

    Returns
    -------
    dict (model name, "original" | "filtered") -> (N, t, t) uint8 ndarray
    """
    from seaice_utils.inference.predict import input_from_layers, load_model, predict_tiles

    entries = models.models if isinstance(models, EvalModels) else models
    out = {}
    for name, m in entries.items():
        model = loaded[name] if loaded and name in loaded else load_model(m.path)[0]
        for cond in CONDITIONS:
            x = (input_from_layers(m.settings.input, levels=tiles.filtered) if cond == "filtered"
                 else input_from_layers(m.settings.input, rgb=tiles.rgb))
            pred = predict_tiles(model, x, batch_size=batch_size, progress=progress,
                                 desc=f"{name}, {cond}")
            pred[tiles.reference == NODATA] = NODATA
            out[(name, cond)] = pred
    return out


def _counts(preds, ref) -> dict[tuple[str, str], np.ndarray]:
    return {k: tile_confusions(p, ref) for k, p in preds.items()}


def table4(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Table IV: one row per model and input, pooled over the test tiles (pandas DataFrame)."""
    import pandas as pd

    rows = []
    for (name, cond), c in _counts(preds, reference).items():
        rep = report_from_counts(c.sum(axis=0))
        rows.append({"model": name, "input": cond, **metrics_row(rep),
                     "n_tiles": int((c.sum(axis=(1, 2)) > 0).sum()),
                     "paper_accuracy_pct": PAPER_TABLE4.get((name, cond), np.nan)})
    return pd.DataFrame(rows)


def per_class_table(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Precision, recall, F1, IoU (percent) and support of each class, per model and input."""
    import pandas as pd

    rows = []
    for (name, cond), c in _counts(preds, reference).items():
        rep = report_from_counts(c.sum(axis=0))
        for cls, v in rep["per_class"].items():
            rows.append({"model": name, "input": cond, "class": cls,
                         "precision_pct": 100 * v["precision"], "recall_pct": 100 * v["recall"],
                         "f1_pct": 100 * v["f1"], "iou_pct": 100 * v["iou"],
                         "support_pixels": v["support"]})
    return pd.DataFrame(rows)


def _strata_rows(counts: np.ndarray, masks: Mapping[str, np.ndarray], base: dict,
                 paper: Mapping[str, float] | None = None) -> list[dict]:
    rows, parts = [], []
    for i, (label, m) in enumerate(masks.items()):
        c = counts[m]
        rep = report_from_counts(c.sum(axis=0))
        row = {**base, "stratum": label, "n_tiles": int((c.sum(axis=(1, 2)) > 0).sum()),
               **metrics_row(rep)}
        if paper is not None:
            row["paper_accuracy_pct"] = paper.get("above" if i == 0 else "below", np.nan)
        rows.append(row)
        parts.append(row)
    # overall: pixel-weighted mean of the strata (the paper's way)
    n = np.array([r["n_pixels"] for r in parts], float)
    overall = {**base, "stratum": "overall (pixel-weighted mean of strata)",
               "n_tiles": sum(r["n_tiles"] for r in parts)}
    for k in parts[0]:
        if k.endswith("_pct") and k != "paper_accuracy_pct":
            v = np.array([r[k] for r in parts], float)
            ok = (n > 0) & np.isfinite(v)
            overall[k] = float((v[ok] * n[ok]).sum() / n[ok].sum()) if ok.any() else np.nan
    overall["n_pixels"] = int(n.sum())
    if paper is not None:
        overall["paper_accuracy_pct"] = paper.get("overall", np.nan)
    rows.append(overall)
    return rows


def table5(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray,
           cloud: np.ndarray, *, threshold: float = 0.10):
    """Table V: Table IV per cloud/shadow stratum, plus the pixel-weighted overall row."""
    import pandas as pd

    masks = strata(cloud, threshold)
    rows = []
    for (name, cond), c in _counts(preds, reference).items():
        paper = {s: PAPER_TABLE5.get((name, cond, s), np.nan) for s in ("above", "below")}
        paper["overall"] = PAPER_TABLE4.get((name, cond), np.nan)
        rows += _strata_rows(c, masks, {"model": name, "input": cond}, paper)
    return pd.DataFrame(rows)


def autolabel_counts(tiles_root: str | os.PathLike, names: Sequence[str], *,
                     reference: str = "truth", ssim_window: int = 7, chunk: int = 64,
                     progress: bool = False) -> dict[str, Any]:
    """Per-tile confusion counts and SSIM of the auto-labels against the reference, streamed
    (memory independent of the number of tiles).

    Returns
    -------
    dict
        ``counts``: {"original", "filtered"} -> (N, 3, 3); ``ssim``: same keys -> (N,) SSIM per
        tile (NaN without valid pixels); ``valid``: (N,) valid reference pixels; ``estimate``:
        (N,) :func:`estimate_cloud_fraction`.
    """
    from tqdm.auto import tqdm

    from seaice_utils.training.data import load_tiles
    from seaice_utils.core.metrics import label_ssim

    names = list(names)
    counts = {c: [] for c in CONDITIONS}
    ssim = {c: [] for c in CONDITIONS}
    valid, est = [], []
    for i in tqdm(range(0, len(names), chunk), desc="auto-labels vs reference",
                  disable=not progress, leave=False):
        part = names[i:i + chunk]
        ref = load_tiles(tiles_root, part, reference)
        layers = {"original": load_tiles(tiles_root, part, "auto_original"),
                  "filtered": load_tiles(tiles_root, part, "auto_filtered")}
        for cond, lab in layers.items():
            counts[cond].append(tile_confusions(lab, ref))
            for a, b in zip(lab, ref):
                m = (a != NODATA) & (b != NODATA)
                ssim[cond].append(label_ssim(a, b, win_size=ssim_window) if m.any() else np.nan)
        valid.append((ref != NODATA).sum(axis=(1, 2)))
        est.append(estimate_cloud_fraction(layers["original"], layers["filtered"]))
    return {"counts": {c: np.concatenate(v) for c, v in counts.items()},
            "ssim": {c: np.array(v, float) for c, v in ssim.items()},
            "valid": np.concatenate(valid), "estimate": np.concatenate(est), "names": names}


def autolabel_quality(al: Mapping[str, Any], cloud: np.ndarray | None = None, *,
                      threshold: float = 0.10):
    """Auto-label quality table: accuracy, macro F1 and SSIM (percent) against the reference, on
    the original and the filtered image, for all tiles and per cloud stratum.

    ``al`` is :func:`autolabel_counts`'s result; ``cloud`` the cover of the same tiles.
    """
    import pandas as pd

    masks = {"all tiles": np.ones(len(al["valid"]), bool)}
    if cloud is not None:
        masks.update(strata(cloud, threshold))
    rows = []
    for cond in CONDITIONS:
        for label, m in masks.items():
            c = al["counts"][cond][m]
            rep = report_from_counts(c.sum(axis=0))
            s, w = al["ssim"][cond][m], al["valid"][m].astype(float)
            ok = np.isfinite(s) & (w > 0)
            rows.append({"labels": f"auto-labels of the {cond} image", "input": cond,
                         "stratum": label, "n_tiles": int(ok.sum()),
                         "accuracy_pct": 100 * rep["accuracy"],
                         "macro_f1_pct": 100 * rep["macro"]["f1"],
                         "weighted_f1_pct": 100 * rep["weighted"]["f1"],
                         "ssim_pct": 100 * float((s[ok] * w[ok]).sum() / w[ok].sum())
                         if ok.any() else np.nan,
                         "n_pixels": rep["n_pixels"],
                         "paper_ssim_pct": PAPER_AUTOLABEL_SSIM[cond] if label == "all tiles"
                         else np.nan})
    return pd.DataFrame(rows)


def cloud_estimate_check(known: np.ndarray, estimate: np.ndarray, *, threshold: float = 0.10):
    """How well the estimated cover stands in for the known one (synthetic data): correlation,
    and agreement of the stratum each tile falls in. Returns a one-row DataFrame."""
    import pandas as pd

    k, e = np.asarray(known, float), np.asarray(estimate, float)
    ok = np.isfinite(k) & np.isfinite(e)
    corr = float(np.corrcoef(k[ok], e[ok])[0, 1]) if ok.sum() > 2 and k[ok].std() > 0 and \
        e[ok].std() > 0 else np.nan
    ka, ea = k[ok] > threshold, e[ok] > threshold
    return pd.DataFrame([{"tiles": int(ok.sum()), "pearson_r": corr,
                          "same_stratum_pct": (100 * float((ka == ea).mean()) if ok.any()
                                               else np.nan),
                          "known_above": int(ka.sum()), "estimated_above": int(ea.sum()),
                          "both_above": int((ka & ea).sum()),
                          "mean_known": float(k[ok].mean()) if ok.any() else np.nan,
                          "mean_estimate": float(e[ok].mean()) if ok.any() else np.nan}])


# ------------------------------------------------------------------------------------------
# confusion matrices
# ------------------------------------------------------------------------------------------

def confusion_table(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Confusion matrices in long form: model, input, predicted, reference, pixels, percent of
    the reference class (each reference column sums to 100 %)."""
    import pandas as pd

    from seaice_utils.core.metrics import confusion_percent

    rows = []
    for (name, cond), c in _counts(preds, reference).items():
        tot = c.sum(axis=0)
        pct = confusion_percent(tot)
        for a in range(N_CLASSES):
            for b in range(N_CLASSES):
                rows.append({"model": name, "input": cond, "predicted": CLASS_NAMES[a],
                             "reference": CLASS_NAMES[b], "pixels": int(tot[a, b]),
                             "percent_of_reference": float(pct[a, b])})
    return pd.DataFrame(rows)


def confusion_figure(preds: Mapping[tuple[str, str], np.ndarray], reference: np.ndarray):
    """Confusion matrices of every model (rows of panels) and input (columns), in percent.

    Paper orientation: row = predicted class, column = reference class, each column sums to
    100 %. Classes in the order thick ice, thin ice, open water.
    """
    from seaice_utils.core.figures import CLASS_ORDER, new_figure
    from seaice_utils.core.metrics import confusion_percent

    counts = {k: c.sum(axis=0) for k, c in _counts(preds, reference).items()}
    names = list(dict.fromkeys(k[0] for k in counts))
    conds = list(dict.fromkeys(k[1] for k in counts))
    fig = new_figure((3.4 * len(conds) + 0.8, 2.9 * len(names) + 0.4))
    axes = fig.subplots(len(names), len(conds), squeeze=False)
    order = list(CLASS_ORDER)
    labels = [CLASS_NAMES[c].replace(" ", "\n") for c in order]
    im = None
    for i, name in enumerate(names):
        for j, cond in enumerate(conds):
            ax = axes[i][j]
            c = counts.get((name, cond))
            if c is None:
                ax.axis("off")
                continue
            pct = confusion_percent(c)[np.ix_(order, order)]
            im = ax.imshow(np.nan_to_num(pct), cmap="Blues", vmin=0, vmax=100)
            for a in range(N_CLASSES):
                for b in range(N_CLASSES):
                    v = pct[a, b]
                    ax.text(b, a, "n/a" if np.isnan(v) else f"{v:.1f}%", ha="center",
                            va="center", fontsize=8, color="white" if v > 60 else "black")
            ax.set_xticks(range(N_CLASSES))
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_yticks(range(N_CLASSES))
            ax.set_yticklabels(labels, fontsize=7)
            acc = 100 * np.trace(c) / c.sum() if c.sum() else np.nan
            ax.set_title(f"{name}, {cond} image\naccuracy {acc:.2f}%", fontsize=9)
            if i == len(names) - 1:
                ax.set_xlabel("reference class", fontsize=8)
            if j == 0:
                ax.set_ylabel("predicted class", fontsize=8)
    fig.subplots_adjust(hspace=0.3, wspace=0.35, left=0.12, right=0.84, bottom=0.1, top=0.92)
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="% of reference class")
    return fig


# ------------------------------------------------------------------------------------------
# example figures
# ------------------------------------------------------------------------------------------

def pick_examples(cloud: np.ndarray, valid_fraction: np.ndarray, k: int = 3) -> list[int]:
    """Indices of ``k`` example tiles with at least 90 % valid pixels whose covers spread from
    the cloudiest to the clearest (deterministic): for ``k`` cover values evenly spaced between
    the largest and the smallest, the tile closest to each, cloudiest first.

    >>> pick_examples(np.array([0.1, 0.9, 0.5, 0.0]), np.ones(4), 3)
    [1, 2, 3]
    """
    c = np.nan_to_num(np.asarray(cloud, float), nan=0.0)
    good = np.flatnonzero(np.asarray(valid_fraction) >= 0.9)
    if good.size == 0:
        good = np.argsort(-np.asarray(valid_fraction), kind="stable")[:max(k, 1)]
    order = good[np.argsort(-c[good], kind="stable")]
    if len(order) <= k:
        return order.tolist()
    picked: list[int] = []
    for target in np.linspace(c[order[0]], c[order[-1]], k):
        free = [i for i in order if i not in picked]
        picked.append(int(min(free, key=lambda i: (abs(c[i] - target), -c[i]))))
    return sorted(picked, key=lambda i: -c[i])


def autolabel_examples_figure(tiles: TileSet, idx: Sequence[int], cloud: np.ndarray | None = None):
    """Rows of image | filtered | auto-label (original) | auto-label (filtered) | reference."""
    from seaice_utils.core.figures import Panel, panel_figure
    from seaice_utils.core.metrics import pixel_accuracy

    rows, titles = [], []
    for i in idx:
        ref = tiles.reference[i]
        ao, af = tiles.auto_original[i], tiles.auto_filtered[i]
        rows.append([Panel(tiles.rgb[i], "rgb", "image"),
                     Panel(tiles.filtered[i], "grey", "filtered"),
                     Panel(ao, "labels",
                           f"auto-label, original\n{100 * pixel_accuracy(ao, ref):.1f}% agree"),
                     Panel(af, "labels",
                           f"auto-label, filtered\n{100 * pixel_accuracy(af, ref):.1f}% agree"),
                     Panel(ref, "labels", "reference")])
        cov = "" if cloud is None or not np.isfinite(cloud[i]) else f"\n{100 * cloud[i]:.0f}% cloud"
        titles.append(f"{tiles.names[i]}{cov}")
    return panel_figure(rows, row_titles=titles, panel_size=2.3)


def predictions_figure(tiles: TileSet, preds: Mapping[tuple[str, str], np.ndarray],
                       idx: Sequence[int], cloud: np.ndarray | None = None):
    """Rows of image | filtered | reference | each model's prediction (filtered, then original)."""
    from seaice_utils.core.figures import Panel, panel_figure
    from seaice_utils.core.metrics import pixel_accuracy

    names = list(MODEL_NAMES.values())
    keys = sorted(preds, key=lambda k: (k[1] != "filtered",
                                        names.index(k[0]) if k[0] in names else 99, k[0]))
    rows, titles = [], []
    for i in idx:
        ref = tiles.reference[i]
        row = [Panel(tiles.rgb[i], "rgb", "image"), Panel(tiles.filtered[i], "grey", "filtered"),
               Panel(ref, "labels", "reference")]
        for name, cond in keys:
            p = preds[(name, cond)][i]
            row.append(Panel(p, "labels", f"{name}, {cond}\n{100 * pixel_accuracy(p, ref):.1f}%"))
        rows.append(row)
        cov = "" if cloud is None or not np.isfinite(cloud[i]) else f"\n{100 * cloud[i]:.0f}% cloud"
        titles.append(f"{tiles.names[i]}{cov}")
    return panel_figure(rows, row_titles=titles, panel_size=2.1)


# ------------------------------------------------------------------------------------------
# speedups of notebooks 03 and 04
# ------------------------------------------------------------------------------------------

_TABLE_PATTERNS = {
    "Table I": ("03", re.compile(r"table_?1|table_?i\b|multiproc", re.I)),
    "Table II": ("03", re.compile(r"table_?2|table_?ii\b|spark", re.I)),
    "Table III": ("04", re.compile(r"table_?3|table_?iii\b|horovod|scaling", re.I)),
}
_X_COLUMNS = ("processes", "workers", "gpus", "ranks", "total_cores", "cores_total", "slots",
              "cores")


def _speedup_columns(df) -> tuple[str | None, str | None]:
    cols = {c.lower(): c for c in df.columns}
    x = None
    if "executors" in cols and "cores" in cols:
        x = "__total_cores"
    else:
        x = next((cols[c] for c in _X_COLUMNS if c in cols), None)
    sp = [c for c in df.columns if "speedup" in c.lower()]
    pref = [c for c in sp if c.lower() in ("speedup", "reduce_speedup", "total_speedup")]
    return x, (pref or sp or [None])[0]


def find_speedup_tables(outputs_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The speedup tables notebooks 03 (Tables I, II) and 04 (Table III) saved, if they ran.

    Looks in ``<outputs>/tables`` for ``03_*.csv`` / ``04_*.csv`` whose names say which table
    (``table1``, ``multiprocessing``; ``table2``, ``spark``; ``table3``, ``horovod``,
    ``scaling``) and that have a speedup column.

    Returns
    -------
    dict
        "Table I" / "Table II" / "Table III" -> ``{"file", "data" (DataFrame), "x", "speedup"}``,
        or ``{"missing": "<why>"}``.
    """
    import pandas as pd

    tdir = Path(outputs_dir) / "tables"
    out: dict[str, dict[str, Any]] = {}
    for table, (nb, pat) in _TABLE_PATTERNS.items():
        files = sorted(tdir.glob(f"{nb}_*.csv")) if tdir.is_dir() else []
        hit = None
        for f in files:
            if not pat.search(f.stem):
                continue
            try:
                df = pd.read_csv(f)
            except (OSError, ValueError, pd.errors.ParserError):
                continue
            x, sp = _speedup_columns(df)
            if x and sp:
                if x == "__total_cores":
                    cols = {c.lower(): c for c in df.columns}
                    df = df.assign(total_cores=df[cols["executors"]] * df[cols["cores"]])
                    x = "total_cores"
                hit = {"file": f.name, "data": df, "x": x, "speedup": sp}
                break
        if hit is None:
            why = (f"notebook {nb} did not run (no {nb}_*.csv in {tdir})" if not files else
                   f"no {nb}_*.csv in {tdir} holds {table} with a speedup column "
                   f"(found {', '.join(f.name for f in files)})")
            hit = {"missing": why}
        out[table] = hit
    return out


def speedup_table(tables: Mapping[str, Mapping[str, Any]]):
    """Measured (this run) and published speedups of Tables I-III in one long table."""
    import pandas as pd

    rows = []
    for table, ref in PAPER_SPEEDUPS.items():
        for x, sp in ref["points"]:
            rows.append({"table": table, "what": ref["what"], "source": "paper",
                         "workers": x, "speedup": sp, "file": ""})
        t = tables.get(table, {})
        if "data" in t:
            for x, sp in zip(t["data"][t["x"]], t["data"][t["speedup"]]):
                rows.append({"table": table, "what": ref["what"], "source": "this run",
                             "workers": x, "speedup": sp, "file": t["file"]})
    return pd.DataFrame(rows)


def speedup_figure(tables: Mapping[str, Mapping[str, Any]]):
    """Measured speedups (Tables I-III) beside the paper's published ones and the ideal line."""
    from seaice_utils.core.figures import new_figure

    fig = new_figure((12.0, 3.6))
    axes = fig.subplots(1, 3)
    for ax, (table, ref) in zip(axes, PAPER_SPEEDUPS.items()):
        pts = sorted(ref["points"])
        px, py = [p[0] for p in pts], [p[1] for p in pts]
        if table == "Table II":   # several executors x cores layouts per core count
            ax.plot(px, py, "s", color="0.5", label="paper", markersize=4)
        else:
            ax.plot(px, py, "s--", color="0.5", label="paper", markersize=4)
        t = tables.get(table, {})
        top = max(px)
        if "data" in t:
            df = t["data"].sort_values(t["x"])
            ax.plot(df[t["x"]], df[t["speedup"]], "o-", color="tab:blue",
                    label=f"this run ({t['file']})")
            top = max(top, float(df[t["x"]].max()))
        else:
            ax.text(0.5, 0.55, "not measured:\n" + t.get("missing", "table missing").split(" (")[0],
                    transform=ax.transAxes, ha="center", va="center", fontsize=7, wrap=True,
                    color="tab:red")
        ax.plot([1, top], [1, top], ":", color="0.7", label="ideal")
        ax.set_title(f"{table}: {ref['what']}", fontsize=9)
        ax.set_xlabel(ref["x"])
        ax.set_ylabel("speedup")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------
# whole scenes and the real sample
# ------------------------------------------------------------------------------------------

def scene_inference(model, settings, records: Sequence, params: dict, *,
                    overlaps: Sequence[int] | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Predict whole scenes with and without overlap: accuracy, seams, time and class areas.

    Parameters
    ----------
    model : Keras model or callable
    settings : seaice_utils.infer.ModelSettings
    records : sequence of seaice_utils.dataset.SceneRecord
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
        (:func:`seaice_utils.infer.class_summary` rows, largest overlap),
        ``maps`` {scene: {"rgb", "truth", overlap: classes}}.
    """
    import time

    from seaice_utils.data.dataset import load_scene, load_truth
    from seaice_utils.inference.predict import (class_summary, make_predict_fn, model_input,
                                                pixel_area_m2, predict_scene, seam_statistics,
                                                tile_windows)
    from seaice_utils.core.metrics import pixel_accuracy
    from seaice_utils.labelling.settings import filter_params

    inf = params["inference"]
    overlaps = list(overlaps) if overlaps is not None else sorted({0, inf["overlap"]})
    predict = make_predict_fn(model, runtime=inf.get("runtime", "auto"),
                              batch_size=inf["batch_size"])
    rows, areas, maps = [], [], {}
    for rec in records:
        sc = load_scene(rec)
        truth = load_truth(rec)
        x = model_input(sc.rgb, kind=settings.input, nodata=sc.nodata,
                        filter_params=filter_params(params))
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


def scene_figure(maps: Mapping[str, Any], scene: str, *, tile: int = 256, model_name: str = ""):
    """image | prediction per overlap | where the first two differ | reference.

    The plain tile grid (multiples of ``tile``) is marked by ticks on the axes: without overlap
    the differences line up on it (seams), with blended overlap they do not.
    """
    from seaice_utils.core.figures import Panel, panel_figure
    from seaice_utils.core.metrics import pixel_accuracy

    m = maps[scene]
    ovs = sorted(k for k in m if isinstance(k, int))
    row = [Panel(m["rgb"], "rgb", scene)]
    for ov in ovs:
        acc = f", {100 * pixel_accuracy(m[ov], m['truth']):.1f}%" if m["truth"] is not None else ""
        row.append(Panel(m[ov], "labels", f"{model_name}\noverlap {ov} px{acc}"))
    if len(ovs) >= 2:
        diff = (m[ovs[0]] != m[ovs[-1]])
        row.append(Panel(diff, "mask", f"differ: {100 * diff.mean():.2f}% of pixels"))
    if m["truth"] is not None:
        row.append(Panel(m["truth"], "labels", "reference"))
    fig = panel_figure([row], panel_size=3.3)
    h, w = m["rgb"].shape[:2]
    for ax in fig.axes[:len(row)]:
        ax.set_xticks(range(tile, w, tile))
        ax.set_yticks(range(tile, h, tile))
        ax.tick_params(length=4, labelbottom=False, labelleft=False)
    return fig


def real_sample_path(params: dict) -> tuple[Path | None, str]:
    """The optional real scene of ``evaluation.real_sample`` and a sentence about it."""
    rs = params.get("evaluation", {}).get("real_sample")
    if not rs:
        return None, "evaluation.real_sample is not set: no real sample shown"
    p = resolve_path(rs)
    if not p.is_file():
        return None, (f"real sample not found at {p} (it lives outside the project, in "
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
    from seaice_utils.labelling.autolabel import auto_label
    from seaice_utils.inference.predict import (class_summary, model_input, pixel_area_m2,
                                                predict_scene)
    from seaice_utils.core.metrics import pixel_accuracy
    from seaice_utils.labelling.settings import filter_params, thresholds
    from seaice_utils.core.scenes import read_scene

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


def real_sample_figure(rs: Mapping[str, Any], *, model_name: str = "U-Net-Auto"):
    """image | filtered | auto-labels | the model's map of a real scene."""
    from seaice_utils.core.figures import Panel, panel_figure

    return panel_figure([[Panel(rs["rgb"], "rgb", f"{rs['name']}"),
                          Panel(rs["levels"], "grey", "filtered"),
                          Panel(rs["auto"], "labels", "auto-labels (filter + HSV)"),
                          Panel(rs["pred"], "labels",
                                f"{model_name}\n{rs['agreement_pct']:.1f}% agree with "
                                "auto-labels")]],
                        panel_size=3.6, suptitle="real scene: no reference labels, agreement only")
