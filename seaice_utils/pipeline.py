"""Auto-label image files: read -> (filter) -> segment -> write class map, palette PNG, sidecar.

For each input image ``<name>.<ext>`` the output folder receives

* ``<name>_classes.png`` — class map, single-channel uint8 (0 water, 1 thin, 2 thick, 255 no-data);
* ``<name>_labels.png``  — the same in the paper's palette (red thick, blue thin, green water);
* ``<name>.json``        — what was done: input dtype, band order, stretch, no-data share, filter
  and thresholds used, class fractions.

Files are written atomically and the sidecar last, so a sidecar marks a finished image: with
``resume=True`` an image whose three outputs exist and decode is skipped. A bad input (missing,
corrupt, wrong dtype or band count) is reported in the failures list and the others go on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2

from .autolabel import Thresholds, auto_label, class_fractions, to_palette
from .cloudfilter import FilterParams
from .errors import InputError, SeaIceError
from .scenes import Scene, Stretch, list_images, read_scene, write_json, write_png

__all__ = ["LabelOptions", "LabelSummary", "label_scene", "label_file", "label_inputs",
           "output_paths", "is_done"]


@dataclass(frozen=True)
class LabelOptions:
    """How to read and label input images."""

    filter_params: FilterParams | None = FilterParams()
    thresholds: Thresholds = field(default_factory=Thresholds)
    bands: tuple[int, int, int] | None = None
    nodata: float | None = None
    stretch: Stretch = Stretch()
    expect_size: tuple[int, int] | None = None


@dataclass
class LabelSummary:
    """Outcome of labelling many files."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        s = f"{len(self.done)} labelled, {len(self.skipped)} already done, {len(self.failures)} failed"
        for name, err in self.failures:
            s += f"\n  FAILED {name}: {err}"
        return s


def output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    out = Path(out_dir)
    return {"classes": out / f"{name}_classes.png", "labels": out / f"{name}_labels.png",
            "sidecar": out / f"{name}.json"}


def is_done(out_dir: str | os.PathLike, name: str) -> bool:
    """True when all outputs of ``name`` exist and are readable (sidecar valid JSON, PNGs decode)."""
    paths = output_paths(out_dir, name)
    if not all(p.is_file() and p.stat().st_size > 0 for p in paths.values()):
        return False
    try:
        meta = json.loads(paths["sidecar"].read_text())
    except (OSError, json.JSONDecodeError):
        return False
    cls = cv2.imread(str(paths["classes"]), cv2.IMREAD_UNCHANGED)
    shape = meta.get("shape")
    return cls is not None and shape is not None and list(cls.shape) == list(shape)


def label_scene(scene: Scene, opts: LabelOptions = LabelOptions()):
    """Class map (and filtered levels or None) of a scene, honouring its no-data mask."""
    return auto_label(scene.rgb, nodata=scene.nodata, filter_params=opts.filter_params,
                      thresholds=opts.thresholds)


def label_file(path: str | os.PathLike, out_dir: str | os.PathLike,
               opts: LabelOptions = LabelOptions()) -> dict:
    """Label one image file and write its outputs; return the sidecar dict.

    Raises
    ------
    InputError
        Missing, corrupt or unusable input, or a size other than ``opts.expect_size``.
    """
    path = Path(path)
    scene = read_scene(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch)
    if opts.expect_size is not None and scene.shape != tuple(opts.expect_size):
        raise InputError(f"{path.name}: size {scene.shape[0]}x{scene.shape[1]}, expected "
                         f"{opts.expect_size[0]}x{opts.expect_size[1]}")
    classes, _ = label_scene(scene, opts)
    paths = output_paths(out_dir, scene.name)
    write_png(paths["classes"], classes)
    write_png(paths["labels"], to_palette(classes))
    meta = {k: v for k, v in scene.meta.items() if k != "path"}
    meta.update(input=path.name, shape=list(classes.shape),
                nodata_fraction=float(scene.nodata.mean()),
                filter=opts.filter_params.to_dict() if opts.filter_params else None,
                thresholds=opts.thresholds.to_dict(), class_fractions=class_fractions(classes))
    write_json(paths["sidecar"], meta)
    return meta


def label_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike],
                 out_dir: str | os.PathLike, opts: LabelOptions = LabelOptions(), *,
                 resume: bool = False, progress: bool = True) -> LabelSummary:
    """Label a file, a folder of images or a list of files, one after the other.

    Failures are collected, not raised, so one bad file does not stop the others.
    """
    from tqdm.auto import tqdm

    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise InputError(f"no images (.png, .tif, .jpg, .jp2) in {p}")
        elif p.exists():
            files = [p]
        else:
            raise InputError(f"input not found: {p}")
    else:
        files = [Path(f) for f in inputs]
    summary = LabelSummary()
    for f in tqdm(files, desc="auto-labelling", unit="image", disable=not progress):
        if resume and is_done(out_dir, f.stem):
            summary.skipped.append(f.stem)
            continue
        try:
            label_file(f, out_dir, opts)
            summary.done.append(f.stem)
        except SeaIceError as exc:
            summary.failures.append((f.name, str(exc)))
    return summary
