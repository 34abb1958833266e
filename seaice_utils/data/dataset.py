"""Datasets on disk: the embedded synthetic dataset and the catalogue every source writes.

Layout of a dataset folder (the same for every data source)::

    <root>/
      scenes/<name>.png     RGB uint8 scene (no-data = 0 in every band); collected scenes are
                            GeoTIFFs (scenes/<name>.tif, 8-bit RGB or 16-bit reflectance with
                            CRS and transform) by default, named by the catalogue's file column
      truth/<name>.png      reference class map, uint8 (0 water, 1 thin, 2 thick, 255 no-data);
                            synthetic ground truth, or a user's manual labels (optional)
      cloud/<name>.png      cloud mask, uint8 (0 clear, 1 haze, 2 shadow; optional)
      catalogue.csv         one row per scene: name, source, size and provenance columns

Generation is resumable: a scene whose three files already exist and decode to the expected size
is not generated again, and each file is written atomically, so an interrupted run never leaves a
half-written scene behind.

Which dataset a later notebook reads is decided by the profile and by notebook 01's record of the
source it actually used (``<outputs>/records/data_source.json``): :func:`resolve_source` turns
the one into the other (after a fallback to synthetic data, or after ingesting local products).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from seaice_utils.core.classes import NODATA
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.errors import InputError
from seaice_utils.core.scenes import Scene, list_images, read_scene, write_png
from seaice_utils.report import write_rows_csv

__all__ = ["SceneRecord", "DATA_SOURCE_RECORD", "dataset_root", "resolve_source", "ensure_dataset",
           "synthetic_specs", "ensure_synthetic_dataset", "read_catalogue", "write_catalogue",
           "load_scene", "load_truth", "load_cloud"]

CATALOGUE = "catalogue.csv"
#: Key of the provenance record (``<outputs>/records/data_source.json``) notebook 01 leaves.
DATA_SOURCE_RECORD = "data_source"


@dataclass(frozen=True)
class SceneRecord:
    """One scene of a dataset folder."""

    root: Path
    name: str
    meta: dict

    @property
    def scene_path(self) -> Path:
        rel = self.meta.get("file")   # collected datasets may hold 16-bit GeoTIFF scenes
        return self.root / rel if rel else self.root / "scenes" / f"{self.name}.png"

    @property
    def truth_path(self) -> Path:
        return self.root / "truth" / f"{self.name}.png"

    @property
    def cloud_path(self) -> Path:
        return self.root / "cloud" / f"{self.name}.png"


def synthetic_specs(params: dict) -> list[dict[str, Any]]:
    """The scenes a profile asks for: name, seed, size, cover and wedge of each.

    Cloudy scenes and wedges are spread evenly over the scene list (deterministic, no random
    draw), so that a profile with 4 scenes and ``cloudy_fraction: 0.5`` has 2 cloudy scenes.
    """
    d, seed = params["data"], params["global"]["seed"]
    n = d["n_scenes"]

    def spread(frac: float) -> set[int]:
        k = int(round(frac * n))
        return {int(i) for i in np.floor(np.arange(k) * n / k)} if k else set()

    cloudy, wedge = spread(d["cloudy_fraction"]), spread(d["nodata_wedge_fraction"])
    # offset the wedges so cloudy and wedged scenes are not always the same ones
    wedge = {(i + 1) % n for i in wedge} if n > 1 else wedge
    specs = []
    for i in range(n):
        s = 1000 * seed + i
        specs.append(dict(name=f"synth_{s:04d}", seed=s, size=d["scene_size"],
                          cloud_cover=d["cloud_cover"] if i in cloudy else 0.0,
                          shadow_cover=d["shadow_cover"] if i in cloudy else 0.0,
                          nodata_wedge=i in wedge))
    return specs


def _valid_png(path: Path, shape: tuple[int, ...]) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return arr is not None and arr.shape[:2] == shape[:2]


def ensure_synthetic_dataset(root: str | os.PathLike, params: dict, *,
                             progress: bool | None = None) -> list[SceneRecord]:
    """Generate (or complete) the synthetic dataset a profile describes under ``root``.

    Returns the records of all scenes, in order. Already complete scenes are kept as they are.
    """
    from tqdm import tqdm

    root = Path(root)
    specs = synthetic_specs(params)
    show = params["global"]["progress"] if progress is None else progress
    records, rows = [], []
    for spec in tqdm(specs, desc="synthetic scenes", disable=not show, unit="scene"):
        rec = SceneRecord(root, spec["name"], {})
        size = (spec["size"], spec["size"])
        done = all(_valid_png(p, size) for p in (rec.scene_path, rec.truth_path, rec.cloud_path))
        row = {"name": spec["name"], "source": "synthetic", "seed": spec["seed"],
               "height": spec["size"], "width": spec["size"],
               "cloud_cover_requested": spec["cloud_cover"],
               "shadow_cover_requested": spec["shadow_cover"],
               "nodata_wedge": spec["nodata_wedge"]}
        if done:
            cloud = cv2.imread(str(rec.cloud_path), cv2.IMREAD_UNCHANGED)
            truth = cv2.imread(str(rec.truth_path), cv2.IMREAD_UNCHANGED)
        else:
            sc = synthesize_scene(spec["seed"], size=spec["size"], cloud_cover=spec["cloud_cover"],
                                  shadow_cover=spec["shadow_cover"],
                                  nodata_wedge=spec["nodata_wedge"], name=spec["name"])
            cloud, truth = sc.cloud, sc.truth
            # scene last: its presence is what marks nothing else is missing after a crash
            write_png(rec.truth_path, sc.truth)
            write_png(rec.cloud_path, sc.cloud)
            write_png(rec.scene_path, sc.image)
        valid = truth != NODATA
        n_valid = max(int(valid.sum()), 1)
        row.update(cloud_fraction=round(float(((cloud > 0) & valid).sum()) / n_valid, 4),
                   nodata_fraction=round(1 - float(valid.sum()) / truth.size, 4))
        rows.append(row)
        records.append(SceneRecord(root, spec["name"], row))
    write_catalogue(root, rows)
    return records


def write_catalogue(root: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write ``catalogue.csv`` (atomically) from dict rows; columns in first-seen order."""
    write_rows_csv(Path(root) / CATALOGUE, rows)


def read_catalogue(root: str | os.PathLike) -> list[SceneRecord]:
    """Records of a dataset folder, from its catalogue (or from ``scenes/`` if it has none)."""
    root = Path(root)
    cat = root / CATALOGUE
    if cat.is_file():
        with cat.open(newline="") as fh:
            return [SceneRecord(root, r["name"], dict(r)) for r in csv.DictReader(fh)]
    scenes = root / "scenes"
    if not scenes.is_dir():
        raise InputError(f"not a dataset folder (no {CATALOGUE} and no scenes/): {root}")
    return [SceneRecord(root, p.stem, {} if p.suffix == ".png" else {"file": f"scenes/{p.name}"})
            for p in sorted(scenes.iterdir())
            if p.is_file() and p.suffix in (".png", ".tif") and not p.name.startswith(".")]


def load_scene(rec: SceneRecord) -> Scene:
    """The RGB scene of a record, with its no-data mask."""
    return read_scene(rec.scene_path, name=rec.name)


def _read_mask(path: Path, what: str) -> np.ndarray | None:
    if not path.is_file():
        return None
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 2 or arr.dtype != np.uint8:
        raise InputError(f"{what} {path} is not a single-channel 8-bit PNG")
    return arr


def load_truth(rec: SceneRecord) -> np.ndarray | None:
    """The reference class map of a record, or None if the dataset has none for it."""
    return _read_mask(rec.truth_path, "reference class map")


def load_cloud(rec: SceneRecord) -> np.ndarray | None:
    """The cloud mask of a record (0 clear, 1 haze, 2 shadow), or None."""
    return _read_mask(rec.cloud_path, "cloud mask")


def dataset_root(outputs: str | os.PathLike, params: dict) -> Path:
    """Folder of the dataset a profile uses: ``<outputs>/data/<source>`` (or the user's folder)."""
    src = params["data"]["source"]
    if src == "folder":
        if not params["data"]["folder"]:
            raise InputError("data.folder must name a folder of scenes when data.source is 'folder'")
        return Path(params["data"]["folder"])
    return Path(outputs) / "data" / src


def resolve_source(params: dict, outputs: str | os.PathLike) -> dict:
    """The profile with ``data`` pointing at the dataset notebook 01 actually produced.

    Notebook 01 records the source it used (``<outputs>/records/data_source.json``). If that was
    a fallback to synthetic data, the returned profile has ``data.source: synthetic`` (and a
    :class:`UserWarning` says so); if local products were ingested, ``data.source: folder`` with
    ``data.folder: <outputs>/data/local``. Otherwise, or when the record belongs to another
    profile (another ``data.source`` or ``data.folder``), or there is no record, the profile is
    returned unchanged. Later notebooks call it right after ``load_params``::

        params = resolve_source(load_params(params_file), outputs_dir)
        records = ensure_dataset(outputs_dir, params)

    Returns a new dict; ``params`` is not modified.
    """
    out = copy.deepcopy(params)
    path = Path(outputs) / "records" / f"{DATA_SOURCE_RECORD}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return out
    src = params["data"]["source"]
    if rec.get("requested") != src or rec.get("requested_folder") != params["data"]["folder"]:
        return out
    eff = rec.get("effective")
    if eff == "synthetic" and src != "synthetic":
        out["data"]["source"] = "synthetic"
        warnings.warn(f"data.source is {src!r}, but notebook 01 could not use it "
                      f"({rec.get('reason', 'no reason recorded')}); using the synthetic dataset "
                      "it fell back to", UserWarning, stacklevel=2)
    elif eff == "local":
        out["data"]["source"] = "folder"
        out["data"]["folder"] = str(Path(outputs) / "data" / "local")
    return out


def ensure_dataset(outputs: str | os.PathLike, params: dict, *,
                   progress: bool | None = None) -> list[SceneRecord]:
    """The scenes a profile works on, generating the synthetic dataset when that is the source.

    ``folder`` sources are read as they are (a dataset folder with ``scenes/``, or a plain folder
    of images, whose reference labels are then unknown). ``earthengine`` and ``stac`` sources are
    collected by notebook 01 into ``<outputs>/data/<source>``; this function reads what is there.

    Pass the profile through :func:`resolve_source` first (``ensure_dataset(outputs,
    resolve_source(params, outputs))``) to read what notebook 01 actually produced. A profile
    that was not resolved is still redirected by notebook 01's record (after a fallback to the
    synthetic data, or after ingesting local products), with a :class:`UserWarning` naming the
    dataset read instead.
    """
    resolved = resolve_source(params, outputs)
    if resolved["data"] != params["data"]:
        warnings.warn(f"ensure_dataset: the profile says data.source {params['data']['source']!r}, "
                      f"but notebook 01 recorded another dataset: reading data.source "
                      f"{resolved['data']['source']!r} in {dataset_root(outputs, resolved)} "
                      "(call resolve_source(params, outputs) first to make this explicit)",
                      UserWarning, stacklevel=2)
    params = resolved
    src = params["data"]["source"]
    root = dataset_root(outputs, params)
    if src == "synthetic":
        return ensure_synthetic_dataset(root, params, progress=progress)
    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist (data.source is {src!r}; "
                         "run notebook 01 first, or use data.source: synthetic)")
    if (root / "scenes").is_dir() or (root / CATALOGUE).is_file():
        return read_catalogue(root)

    files = list_images(root)
    if not files:
        raise InputError(f"no scenes in {root}")
    return [_FlatRecord(root, p.stem, {"path": str(p)}) for p in files]


@dataclass(frozen=True)
class _FlatRecord(SceneRecord):
    """A scene in a plain folder of images (no truth/ or cloud/ beside it)."""

    @property
    def scene_path(self) -> Path:
        return Path(self.meta["path"])
