"""What notebook 04 left for notebook 05: its models, its train/test split and its tiles.

:func:`find_models` locates U-Net-Man and U-Net-Auto (``unet_man.keras``, ``unet_auto.keras``),
``training.json`` / ``split.json`` and the tile folder (no TensorFlow needed);
:func:`load_tile_set` stacks the layers of the test tiles and :func:`index_cloud` reads their
known cloud/shadow cover from the tile index.

Relative paths in a profile (``evaluation.models_dir``, ``cloud_file``, ``real_sample``) are
resolved against the project folder (:func:`resolve_path`): the nearest folder at or above the
working directory that holds ``notebooks/`` -- the checkout, whether the code runs from the
project folder (``seaice reproduce``, the tests) or from ``notebooks/`` (papermill runs each
notebook there).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seaice_utils.core.classes import NODATA
from seaice_utils.data.tiles import read_tile_index
from seaice_utils.errors import InputError
from seaice_utils.inference.model import read_model_settings
from seaice_utils.params import project_folder
from seaice_utils.report import shown_path
from seaice_utils.training.data import load_tiles

__all__ = ["MODEL_NAMES", "CONDITIONS", "ModelsMissing", "project_root", "resolve_path",
           "ModelEntry", "EvalModels", "find_models", "TileSet", "load_tile_set", "index_cloud"]

MODEL_NAMES = {"man": "U-Net-Man", "auto": "U-Net-Auto"}
CONDITIONS = ("original", "filtered")


class ModelsMissing(InputError):
    """Notebook 04's models (or its split) are not where notebook 05 looks."""


# ------------------------------------------------------------------------------------------
# models, split, tiles
# ------------------------------------------------------------------------------------------

def project_root(start: str | os.PathLike | None = None) -> Path:
    """The project folder: the nearest folder at or above ``start`` (default: the working
    directory) that holds ``notebooks/``; ``start`` itself when none does."""
    found = project_folder("notebooks", start)
    return found.parent if found is not None else Path(start or Path.cwd()).resolve()


def resolve_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A path from a profile: absolute as is, relative to ``root`` otherwise (default: the project
    folder, :func:`project_root`)."""
    p = Path(path)
    if p.is_absolute():
        return p
    return (Path(root) if root is not None else project_root()) / p


@dataclass(frozen=True)
class ModelEntry:
    """One trained model: display name, label source, file and input settings."""

    name: str
    labels: str
    path: Path
    settings: Any  # seaice_utils.inference.model.ModelSettings
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
    outputs: Path | None = None

    def describe(self) -> str:
        """What was found, paths shown relative to the outputs folder (as in the outputs)."""
        s = [f"models in {shown_path(self.models_dir, self.outputs)}:"]
        for m in self.models.values():
            src = m.settings.source
            src = shown_path(src, self.outputs) if Path(str(src)).is_file() else src
            s.append(f"  {m.name}: {m.path.name}, input {m.settings.input!r} "
                     f"({m.settings.tile_size} px; settings from {src})")
        sp = self.split
        s.append(f"test set: {len(sp['test'])} tiles of {len(sp.get('test_scenes', []))} "
                 f"scene(s) (split by {sp.get('by', '?')}, seed {sp.get('seed', '?')})")
        ref = self.reference
        if os.sep in ref or "/" in ref:                       # a folder of manual labels
            ref = shown_path(ref, self.outputs)
        s.append(f"reference labels: {ref}")
        return "\n".join(s + [f"note: {n}" for n in self.notes])


def find_models(outputs_dir: str | os.PathLike, params: dict | None = None, *,
                models_dir: str | os.PathLike | None = None) -> EvalModels:
    """Locate notebook 04's U-Net-Man and U-Net-Auto, its split and its tiles.

    Looks in ``models_dir`` (default ``evaluation.models_dir`` of the profile, else
    ``<outputs>/models``) for ``unet_man.keras`` and ``unet_auto.keras``, ``training.json``
    (:func:`seaice_utils.training.runs.train_models`) and ``split.json``. No TensorFlow needed.
    Relative paths in ``training.json`` (how it records them) are relative to ``outputs_dir``.

    Raises
    ------
    ModelsMissing
        When no model or no split is there, saying which files were expected and how to make them.
    """
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
            path = Path(outputs_dir) / entry["path"]
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
            notes.append(f"{name} is missing from {shown_path(mdir, outputs_dir)}: its rows are "
                         "left out")
    split = info.get("split")
    if split is None and (mdir / "split.json").is_file():
        split = json.loads((mdir / "split.json").read_text())
    if not split or not split.get("test"):
        raise ModelsMissing(f"notebook 04's train/test split is missing or has no test tiles "
                            f"(expected training.json or split.json in {mdir}); {how}")
    tiles_root = Path(outputs_dir) / (info.get("tiles_root") or "tiles")
    if not (tiles_root / "index.csv").is_file():
        tiles_root = Path(outputs_dir) / "tiles"
    if not (tiles_root / "index.csv").is_file():
        raise ModelsMissing(f"the tiles the models were trained on are missing ({tiles_root}/"
                            f"index.csv); {how}")
    reference = "truth"
    man = (info.get("models") or {}).get("man") or {}
    src = man.get("label_source")
    if isinstance(src, str) and src not in ("truth", "man") and (Path(outputs_dir) / src).is_dir():
        reference = str(Path(outputs_dir) / src)   # a user's manual labels, as class maps
    return EvalModels(models, split, tiles_root, reference, mdir, notes, Path(outputs_dir))


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


def index_cloud(tiles_root: str | os.PathLike,
                names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Known cover (NaN where unknown) and scene of ``names`` from a tile index."""
    idx = {r["tile"]: r for r in read_tile_index(tiles_root)}
    missing = [n for n in names if n not in idx]
    if missing:
        raise InputError(f"{len(missing)} tile(s) are not in {tiles_root}/index.csv, e.g. "
                         f"{missing[0]} (was the split made on another tile folder?)")
    return (np.array([np.nan if idx[n]["cloud_fraction"] is None else idx[n]["cloud_fraction"]
                      for n in names], float), [idx[n]["scene"] for n in names])
