"""One scene's output set, the same for every command that classifies scenes.

``seaice label``, ``seaice predict`` and ``seaice season`` write, for each input ``<name>.<ext>``,

===========================  ==================================================================
``<name>_classes.png``       class map, single-channel uint8 (codes of :mod:`~seaice_utils.core.
                             classes`: 0 water, 1 thin, 2 thick, 254 unlabelled, 255 no-data)
``<name>_labels.png``        the same in the paper's palette: an indexed-colour PNG whose pixel
                             indices are the class codes (OpenCV, matplotlib and browsers decode
                             it to RGB; PIL opens it in mode ``"P"``)
``<name>_classes.tif``       a Cloud-Optimised GeoTIFF of the class map, for a georeferenced input
``<name>_preview.png``       for a georeferenced scene larger than 4096 x 4096 px, instead of the
                             two full-size PNGs (``global.png_renders``): the palette image, at
                             most 1024 px on a side; the COG is the full-resolution map
``<name>.json``              the sidecar: what was done and with what, the class summary row,
                             every other file's size and SHA-256, the fingerprint (written last)
===========================  ==================================================================

This module is their one definition: the naming rule (:func:`scene_output_paths`), the one
encoder (:func:`encode_class_maps`: both PNGs share one compression of the pixels), the one
per-scene summary row (:func:`class_summary`, :data:`SUMMARY_COLUMNS`, ``summary.csv``) and the
publication of a set (:func:`publish_scene`, atomically, the sidecar last;
:func:`~seaice_utils.engines.outputs.publish_set`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from seaice_utils.core.classes import CLASS_CODES, CLASS_KEYS, LABEL_PALETTE
from seaice_utils.core.geotiff import class_map_cog
from seaice_utils.core.ledger import publish_file
from seaice_utils.core.png import idat_stream, png_from_idat
from seaice_utils.core.scenes import json_bytes
from seaice_utils.engines.base import describe_error
from seaice_utils.engines.outputs import SIDECAR, publish_set
from seaice_utils.errors import InputError

__all__ = ["SCENE_OUTPUT_KEYS", "CLASS_MAP_SUFFIX", "scene_output_paths", "encode_class_maps",
           "encode_scene", "publish_scene", "class_summary", "SUMMARY_COLUMNS",
           "write_summary_csv", "summary_row_of", "summarise_job", "PNG_RENDERS",
           "full_pngs", "preview_png", "PNG_AUTO_MAX_PIXELS"]

#: The files of one scene, in the order they are written (the sidecar last).
SCENE_OUTPUT_KEYS = ("classes", "labels", "geotiff", "preview", SIDECAR)
#: ``png_renders`` settings: full-size PNGs ``always``, ``never``, or (``auto``) for every scene
#: but a georeferenced one larger than :data:`PNG_AUTO_MAX_PIXELS`.
PNG_RENDERS = ("auto", "always", "never")
#: Above this many pixels a georeferenced scene's full-size PNGs are left out under ``auto``
#: (4096 x 4096: the paper's 2048 px scenes and ordinary crops keep them; a full Sentinel-2 tile,
#: 121 Mpx, gets its COG and a preview).
PNG_AUTO_MAX_PIXELS = 4096 * 4096
#: Longest side of a preview PNG.
PREVIEW_PX = 1024
#: Ending of the class-map COG of a scene (what a season mosaics).
CLASS_MAP_SUFFIX = "_classes.tif"
_SUFFIXES = {"classes": "_classes.png", "labels": "_labels.png", "geotiff": CLASS_MAP_SUFFIX,
             "preview": "_preview.png", SIDECAR: ".json"}


def scene_output_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """The output files of the scene named ``name`` (its input's stem) in ``out_dir``."""
    out = Path(out_dir)
    return {key: out / f"{name}{_SUFFIXES[key]}" for key in SCENE_OUTPUT_KEYS}


def full_pngs(png_renders: str, shape: tuple[int, int], georeferenced: bool) -> bool:
    """Whether a scene gets its full-size PNGs (see :data:`PNG_RENDERS`).

    >>> full_pngs("auto", (10980, 10980), True), full_pngs("auto", (10980, 10980), False)
    (False, True)
    """
    if png_renders not in PNG_RENDERS:
        raise InputError(f"png_renders must be one of {', '.join(PNG_RENDERS)} "
                         f"(got {png_renders!r})")
    if png_renders != "auto":
        return png_renders == "always"
    return not (georeferenced and shape[0] * shape[1] > PNG_AUTO_MAX_PIXELS)


def preview_png(classes: np.ndarray, side: int | None = None) -> bytes:
    """A small palette PNG of a class map: every k-th pixel of every k-th row, k the smallest
    step that brings the longest side to at most ``side`` (:data:`PREVIEW_PX`)."""
    k = max(1, -(-max(classes.shape) // (side or PREVIEW_PX)))
    small = np.ascontiguousarray(classes[::k, ::k])
    h, w = small.shape
    return png_from_idat(w, h, idat_stream(small), colour_type=3, palette=LABEL_PALETTE)


def encode_class_maps(classes: np.ndarray, *, crs: Any = None, transform: Any = None,
                      geotiff: bool = True, png_renders: str = "auto"
                      ) -> dict[str, bytes | None]:
    """The class map as its files' bytes: plain and palette PNG (one compression of the pixels
    for both), a COG when ``geotiff`` and the scene has a CRS and a transform; for a big
    georeferenced scene (``png_renders``, :func:`full_pngs`) a preview PNG instead of the
    full-size ones. A file not made is ``None`` (an old file of that name is removed on
    publication)."""
    classes = np.ascontiguousarray(classes)
    h, w = classes.shape
    geo = bool(geotiff and crs and transform is not None)
    out: dict[str, bytes | None] = dict.fromkeys(("classes", "labels", "preview"))
    if full_pngs(png_renders, (h, w), bool(crs and transform is not None)):
        idat = idat_stream(classes)
        out["classes"] = png_from_idat(w, h, idat, colour_type=0)
        out["labels"] = png_from_idat(w, h, idat, colour_type=3, palette=LABEL_PALETTE)
    else:
        out["preview"] = preview_png(classes)
    out["geotiff"] = class_map_cog(classes, crs=crs, transform=transform) if geo else None
    return out


def encode_scene(classes: np.ndarray, sidecar: Mapping[str, Any], *, crs: Any = None,
                 transform: Any = None, geotiff: bool = True,
                 png_renders: str = "auto") -> dict[str, bytes | None]:
    """:func:`encode_class_maps` plus the sidecar's JSON bytes (key ``"sidecar"``)."""
    out = encode_class_maps(classes, crs=crs, transform=transform, geotiff=geotiff,
                            png_renders=png_renders)
    out[SIDECAR] = json_bytes(dict(sidecar))
    return out


def publish_scene(out_dir: str | os.PathLike, name: str, outputs: Mapping[str, bytes | None],
                  *, fingerprint: Mapping[str, Any] | None = None) -> dict:
    """Publish one scene's outputs as a set (each file atomically, the sidecar last, recording
    the others' sizes and checksums); return the sidecar as written."""
    return publish_set(scene_output_paths(out_dir, name), outputs, fingerprint=fingerprint)


#: Columns of the per-scene summary (one row per scene; ``summary.csv``).
SUMMARY_COLUMNS = (["scene", "height", "width", "pixel_area_m2", "pixel_area_source",
                    "valid_pixels", "nodata_pixels", "valid_km2"]
                   + [f"{CLASS_KEYS[c]}_{k}" for c in sorted(CLASS_CODES)
                      for k in ("pixels", "km2", "fraction")])


def class_summary(classes: np.ndarray, *, pixel_area: float = 100.0, name: str = "scene",
                  area_source: str = "") -> dict[str, Any]:
    """Pixels, area (km^2) and fraction of valid pixels of each class of one class map.

    >>> row = class_summary(np.array([[0, 1], [2, 255]], np.uint8), pixel_area=1e6)
    >>> row["thick_ice_km2"], row["open_water_fraction"], row["nodata_pixels"]
    (1.0, 0.3333333333333333, 1)
    """
    counts = _code_counts(classes, CLASS_CODES)
    valid = int(sum(counts[c] for c in CLASS_CODES))
    row: dict[str, Any] = {"scene": name, "height": int(classes.shape[0]),
                           "width": int(classes.shape[1]), "pixel_area_m2": float(pixel_area),
                           "pixel_area_source": area_source, "valid_pixels": valid,
                           "nodata_pixels": int(classes.size - valid),
                           "valid_km2": valid * pixel_area / 1e6}
    for c in sorted(CLASS_CODES):
        n = int(counts[c])
        key = CLASS_KEYS[c]
        row[f"{key}_pixels"] = n
        row[f"{key}_km2"] = n * pixel_area / 1e6
        row[f"{key}_fraction"] = n / valid if valid else float("nan")
    return row


def _code_counts(classes: np.ndarray, codes) -> dict[int, int]:
    """Pixels of each code (OpenCV's compare and count: no 8-byte copy of a big map)."""
    classes = np.ascontiguousarray(classes)
    if classes.ndim != 2 or classes.dtype != np.uint8 or classes.size < 16:
        return {c: int(np.count_nonzero(classes == c)) for c in codes}
    return {c: int(cv2.countNonZero(cv2.compare(classes, c, cv2.CMP_EQ))) for c in codes}


def summary_row_of(out_dir: str | os.PathLike, name: str) -> dict | None:
    """The summary row a scene's sidecar recorded (``None`` when it has none)."""
    try:
        meta = json.loads(scene_output_paths(out_dir, name)[SIDECAR].read_text())
        row = meta.get("summary")
    except (OSError, ValueError, AttributeError):
        return None
    return row if isinstance(row, dict) else None


def summarise_job(job, out_dir: str | os.PathLike, files: Sequence[Path], *,
                  payload_row: Callable[[Any], dict | None] = lambda p: p,
                  write: bool = True) -> list[dict]:
    """The summary rows of a job's scenes, in input order, into ``job.rows``, and (``write``)
    ``<out_dir>/summary.csv`` into ``job.summary_csv``: each done scene's row from its payload
    (``payload_row``), else (Spark's bytes mode, scenes ``resume`` skipped) from its sidecar.
    A summary that cannot be written (a full disk) is one more failure of the job."""
    rows: dict[str, dict] = {}
    for name, payload in zip(job.done, job.results):
        row = payload_row(payload) if payload is not None else None
        rows[name] = row if row is not None else summary_row_of(out_dir, name)
    for name in job.skipped:
        rows[name] = summary_row_of(out_dir, name)
    order = {Path(f).stem: i for i, f in enumerate(files)}
    job.rows = [rows[n] for n in sorted(rows, key=lambda n: order.get(n, len(order)))
                if rows[n] is not None]
    if write and job.rows:
        try:
            job.summary_csv = write_summary_csv(Path(out_dir) / "summary.csv", job.rows)
        except OSError as exc:
            job.failures.append(("summary.csv", describe_error(exc)))
    return job.rows


def write_summary_csv(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Write per-scene summary rows (:data:`SUMMARY_COLUMNS`) as CSV, atomically, recorded as
    seaice's own (:func:`~seaice_utils.core.ledger.publish_file`)."""
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(SUMMARY_COLUMNS), extrasaction="ignore")
    wr.writeheader()
    wr.writerows(rows)
    return publish_file(path, buf.getvalue().encode())
