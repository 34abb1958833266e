"""Auto-label image files: read -> (filter) -> segment -> write class map, palette PNG, sidecar.

For each input image ``<name>.<ext>`` the output folder receives the scene output set of
:mod:`seaice_utils.engines.scene_outputs` (``<name>_classes.png``, ``<name>_labels.png``, a
``<name>_classes.tif`` COG for a georeferenced input, and the sidecar ``<name>.json``: input dtype,
band order, stretch, no-data share, filter and thresholds used, class fractions).

Files are written atomically and the sidecar last, so a sidecar marks a finished image: with
``resume=True`` an image whose three outputs exist and decode is skipped. A bad input (missing,
corrupt, wrong dtype or band count) is reported in the failures list and the others go on.

The per-image work is split so that every engine (sequential, multiprocessing, Spark; the
labelling job is :func:`seaice_utils.labelling.jobs.run_label_job`) shares it and writes the same
bytes: :func:`read_input` (or :func:`scene_from_bytes` for bytes a Spark source read) ->
:func:`label_scene` -> :func:`encode_outputs` (PNG and JSON bytes, deterministic) ->
:func:`write_outputs` (atomic, sidecar last). :func:`label_file` chains them for one file.

Output PNGs are encoded once, by the scene output layer (:mod:`seaice_utils.core.png`: no row
filter, zlib level 1; standard 8-bit PNGs, byte-for-byte reproducible for a given zlib).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from seaice_utils.core.classes import class_fractions
from seaice_utils.core.areas import pixel_area_m2
from seaice_utils.core.budget import check_scene_size
from seaice_utils.core.blocks import WINDOWED_SUFFIXES, open_bands
from seaice_utils.core.headers import header_from_bytes, scene_header
from seaice_utils.core.png import is_plain_rgb8_png
from seaice_utils.core.scenes import Scene, Stretch, read_scene
from seaice_utils.engines.base import INPUT_ERRORS as ENGINE_INPUT_ERRORS
from seaice_utils.engines.outputs import set_state
from seaice_utils.engines.scene_outputs import (SCENE_OUTPUT_KEYS, class_summary, encode_scene,
                                                publish_scene, scene_output_paths)
from seaice_utils.errors import InputError
from seaice_utils.labelling.autolabel import Thresholds, auto_label
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.labelling.kernels import value_channel
from seaice_utils.labelling.windowed import (BAND_SHARE, KEPT_BYTES_PER_PIXEL, band_rows,
                                             halo_rows, label_bands)

__all__ = ["LabelOptions", "label_scene", "label_file", "label_outputs", "sidecar_of", "output_paths", "is_done", "read_input",
           "scene_from_bytes", "sidecar", "encode_outputs", "write_outputs", "OUTPUT_KEYS",
           "NO_DATA_WARNING",
           "INPUT_ERRORS"]

#: Recorded in the sidecar of an input without a single data pixel.
NO_DATA_WARNING = "every pixel is no-data: nothing was labelled"

#: Output files of one input (the scene output set), the sidecar last.
OUTPUT_KEYS = SCENE_OUTPUT_KEYS


@dataclass(frozen=True)
class LabelOptions:
    """How to read and label input images."""

    filter_params: FilterParams | None = FilterParams()
    thresholds: Thresholds = field(default_factory=Thresholds)
    bands: tuple[int, int, int] | None = None
    nodata: float | None = None
    stretch: Stretch = Stretch()
    expect_size: tuple[int, int] | None = None
    #: Memory one worker may use for a scene (bytes; None: no limit): a larger scene is refused
    #: by name before it is decoded.
    max_bytes: int | None = None
    #: Full-size PNGs: auto, always, never (:func:`~seaice_utils.engines.scene_outputs.full_pngs`).
    png_renders: str = "auto"


#: The scene output set's naming rule (:func:`~seaice_utils.engines.scene_outputs.scene_output_paths`).
output_paths = scene_output_paths


def is_done(out_dir: str | os.PathLike, name: str) -> bool:
    """True when the outputs of ``name`` form a complete set: the sidecar is there and every
    file it records has the recorded size and checksum (whatever settings made them; the jobs'
    resume also compares fingerprints, :meth:`~seaice_utils.engines.base.Task.state`)."""
    return set_state(output_paths(out_dir, name), None) == "done"


def label_scene(scene: Scene, opts: LabelOptions = LabelOptions()):
    """Class map (and filtered levels or None) of a scene, honouring its no-data mask."""
    return auto_label(scene.rgb, nodata=scene.nodata, filter_params=opts.filter_params,
                      thresholds=opts.thresholds)


_FAST_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def _fast_reader_applies(suffix: str, opts: LabelOptions) -> bool:
    return suffix.lower() == ".png" and opts.bands is None and opts.nodata in (None, 0)


def _fast_scene(data: bytes, name: str, nodata_value: float | None = None) -> Scene | None:
    """Decode a plain 8-bit RGB PNG exactly as :func:`~seaice_utils.core.scenes.read_scene` does.

    An 8-bit RGB image is used as is; no-data is "0 in every band", i.e. max(R, G, B) == 0.
    Returns None when the bytes are not such a PNG (the caller falls back to ``read_scene``).
    """
    if not is_plain_rgb8_png(data):
        return None
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _FAST_FLAGS)
    if rgb is None or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        return None
    nodata = value_channel(rgb) == 0
    meta = {"dtype_in": "uint8", "bands_rgb": [1, 2, 3],
            "nodata_value": 0 if nodata_value is None else nodata_value,
            "stretch": "none (8-bit input)"}
    return Scene(rgb=rgb, nodata=nodata, name=name, meta=meta)


def _check_size(scene: Scene, filename: str, opts: LabelOptions) -> None:
    _check_shape(scene.shape, filename, opts)


def _check_shape(shape: tuple[int, int], filename: str, opts: LabelOptions) -> None:
    if opts.expect_size is not None and tuple(shape) != tuple(opts.expect_size):
        raise InputError(f"{filename}: size {shape[0]}x{shape[1]}, expected "
                         f"{opts.expect_size[0]}x{opts.expect_size[1]}")


def read_input(path: str | os.PathLike, opts: LabelOptions = LabelOptions()) -> Scene:
    """Read one input image as a :class:`~seaice_utils.core.scenes.Scene` (same result as
    ``read_scene``; plain 8-bit RGB PNGs take a faster path).

    Raises
    ------
    InputError
        Missing, corrupt or unusable input, or a size other than ``opts.expect_size``.
    """
    path = Path(path)
    scene = None
    if _fast_reader_applies(path.suffix, opts):
        try:
            data = path.read_bytes()
        except OSError:
            data = None                        # read_scene says what is wrong
        if data is not None:
            check_scene_size(header_from_bytes(data, path.name), path.name,
                             max_bytes=opts.max_bytes)
            scene = _fast_scene(data, path.stem, opts.nodata)
    if scene is None:
        scene = read_scene(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch,
                           max_bytes=opts.max_bytes)
    _check_size(scene, path.name, opts)
    return scene


def scene_from_bytes(data: bytes, filename: str, opts: LabelOptions = LabelOptions()) -> Scene:
    """:func:`read_input` for the bytes of a file (as Spark's ``binaryFile`` source gives them).

    ``filename`` (no folder) names the scene and says the format by its suffix.
    """
    filename = Path(filename).name
    stem, suffix = Path(filename).stem, Path(filename).suffix
    check_scene_size(header_from_bytes(data, filename), filename, max_bytes=opts.max_bytes)
    scene = _fast_scene(data, stem, opts.nodata) if _fast_reader_applies(suffix, opts) else None
    if scene is None:
        with tempfile.TemporaryDirectory(prefix="seaice-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(data)
            try:
                scene = read_scene(path, bands=opts.bands, nodata=opts.nodata,
                                   stretch=opts.stretch)
            except InputError as exc:
                raise InputError(str(exc).replace(str(path), filename)) from None
        scene.meta.pop("path", None)
    _check_size(scene, filename, opts)
    return scene


def sidecar(scene: Scene, classes: np.ndarray, opts: LabelOptions, input_name: str, *,
            fingerprint: dict | None = None) -> dict:
    """:func:`sidecar_of` a scene read whole."""
    return sidecar_of(scene.meta, scene.name, int(np.count_nonzero(scene.nodata)), classes, opts,
                      input_name, fingerprint=fingerprint)


def sidecar_of(scene_meta: dict, name: str, n_nodata: int, classes: np.ndarray,
               opts: LabelOptions, input_name: str, *, fingerprint: dict | None = None) -> dict:
    """The sidecar of one labelled image: provenance, no-data share, settings, class fractions
    and the scene's summary row (:func:`~seaice_utils.engines.scene_outputs.class_summary`, as
    ``seaice predict`` records it).

    A scene without a single data pixel is labelled (all no-data) and says so in its
    ``warnings`` (:data:`NO_DATA_WARNING`; the jobs warn once for all such inputs); its class
    fractions are undefined and written as null.
    """
    meta = {k: v for k, v in scene_meta.items() if k != "path"}
    nodata = int(n_nodata)
    area, area_src = pixel_area_m2(scene_meta, classes.shape)
    meta.update(input=input_name, shape=list(classes.shape),
                nodata_fraction=float(nodata) / classes.size,
                filter=opts.filter_params.to_dict() if opts.filter_params else None,
                thresholds=opts.thresholds.to_dict(), class_fractions=class_fractions(classes),
                summary=class_summary(classes, pixel_area=area, name=name,
                                      area_source=area_src))
    if nodata == classes.size:
        meta["warnings"] = [NO_DATA_WARNING]
    if fingerprint is not None:
        meta["fingerprint"] = fingerprint
    return meta


def encode_outputs(scene: Scene, classes: np.ndarray, opts: LabelOptions = LabelOptions(), *,
                   input_name: str, fingerprint: dict | None = None) -> dict[str, bytes]:
    """The output files of one labelled image, as bytes keyed by :data:`OUTPUT_KEYS`: the class
    map and palette PNGs, a Cloud-Optimised GeoTIFF of the class map when the input has a CRS
    and transform (:func:`~seaice_utils.core.geotiff.class_map_cog`), the sidecar.

    Parameters
    ----------
    scene : Scene
        The input as read (for the sidecar: provenance and no-data share).
    classes : (H, W) uint8 ndarray
        Class map of ``scene`` (0, 1, 2, 255; 254 where thresholds with allowed gaps leave
        a pixel unlabelled).
    opts : LabelOptions
    input_name : str
        File name of the input, recorded in the sidecar.
    fingerprint : dict, optional
        What made the outputs (:func:`seaice_utils.engines.outputs.fingerprint`), recorded in
        the sidecar for ``resume``.
    """
    return encode_scene(classes, sidecar(scene, classes, opts, input_name,
                                         fingerprint=fingerprint),
                        crs=scene.meta.get("crs"), transform=scene.meta.get("transform"),
                        png_renders=opts.png_renders)


def write_outputs(out_dir: str | os.PathLike, name: str, outputs: dict[str, bytes]) -> dict:
    """Publish the outputs of :func:`encode_outputs` as a set (each file atomically, the sidecar
    last, recording the others' sizes and checksums; :func:`~seaice_utils.engines.outputs.
    publish_set`); return the sidecar as written."""
    return publish_scene(out_dir, name, outputs)


def label_file(path: str | os.PathLike, out_dir: str | os.PathLike,
               opts: LabelOptions = LabelOptions(), *, fingerprint: dict | None = None) -> dict:
    """Label one image file and write its outputs; return the sidecar dict.

    Raises
    ------
    InputError
        Missing, corrupt or unusable input, or a size other than ``opts.expect_size``.
    """
    name, outputs = label_outputs(path, opts, input_name=Path(path).name,
                                  fingerprint=fingerprint)
    return write_outputs(out_dir, name, outputs)


def label_outputs(path: str | os.PathLike, opts: LabelOptions = LabelOptions(), *,
                  input_name: str, fingerprint: dict | None = None
                  ) -> tuple[str, dict[str, bytes]]:
    """(name, encoded outputs) of one image file. A TIFF or JPEG 2000 file is read and labelled
    in bands of rows (:mod:`seaice_utils.labelling.windowed`: the memory a band takes derives
    from ``opts.max_bytes``; byte-identical outputs), anything else whole.

    Raises
    ------
    InputError
        Missing, corrupt or unusable input, too big for ``opts.max_bytes``, or a size other
        than ``opts.expect_size``.
    """
    path = Path(path)
    if path.suffix.lower() in WINDOWED_SUFFIXES and path.is_file():
        header = scene_header(path)
        check_scene_size(header, path.name, max_bytes=opts.max_bytes, whole=False,
                         bytes_per_pixel=KEPT_BYTES_PER_PIXEL / (1 - BAND_SHARE))
        fp = opts.filter_params
        halo = halo_rows(fp)
        sample = 0 if header is None else header.bands * np.dtype(header.dtype).itemsize
        first = 256 if header is None else band_rows((header.height, header.width), sample,
                                                       opts.max_bytes)
        src = open_bands(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch,
                         rows=first)
        if src is not None:
            with src:
                _check_shape(src.shape, path.name, opts)
                rows = band_rows(src.shape, sample, opts.max_bytes, halo=halo)
                classes, n_nodata = label_bands(src, fp, opts.thresholds, rows=rows)
                meta = sidecar_of(src.meta, src.name, n_nodata, classes, opts, input_name,
                                  fingerprint=fingerprint)
                return src.name, encode_scene(classes, meta, crs=src.meta.get("crs"),
                                              transform=src.meta.get("transform"),
                                              png_renders=opts.png_renders)
    scene = read_input(path, opts)
    classes, _ = label_scene(scene, opts)
    return scene.name, encode_outputs(scene, classes, opts, input_name=input_name,
                                      fingerprint=fingerprint)


#: Errors of one input that are reported, not raised, when many inputs are labelled.
INPUT_ERRORS = ENGINE_INPUT_ERRORS
