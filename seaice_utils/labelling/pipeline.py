"""Auto-label image files: read -> (filter) -> segment -> write class map, palette PNG, sidecar.

For each input image ``<name>.<ext>`` the output folder receives

* ``<name>_classes.png`` — class map, single-channel uint8 (0 water, 1 thin, 2 thick, 255 no-data);
* ``<name>_labels.png``  — the same in the paper's palette (red thick, blue thin, green water,
  black no-data): an indexed-colour PNG whose pixel indices are the class codes and whose
  palette holds those colours. OpenCV, matplotlib and browsers decode it to RGB; PIL opens it
  in mode ``"P"`` (``.convert("RGB")`` for colours, the indices are the classes);
* ``<name>.json``        — what was done: input dtype, band order, stretch, no-data share, filter
  and thresholds used, class fractions.

Files are written atomically and the sidecar last, so a sidecar marks a finished image: with
``resume=True`` an image whose three outputs exist and decode is skipped. A bad input (missing,
corrupt, wrong dtype or band count) is reported in the failures list and the others go on.

The per-image work is split so that every engine of :mod:`seaice_utils.engines.local` (sequential,
multiprocessing, Spark) shares it and writes the same bytes: :func:`read_input` (or
:func:`scene_from_bytes` for bytes a Spark source read) -> :func:`label_scene` ->
:func:`encode_outputs` (PNG and JSON bytes, deterministic) -> :func:`write_outputs` (atomic,
sidecar last). :func:`label_path` chains them for one file and never raises on bad input.

Output PNGs are encoded by :func:`encode_png` (no row filter, zlib level 1): standard 8-bit
PNGs, several times faster to write than OpenCV's encoder for label images, and byte-for-byte
reproducible for a given zlib. The labels PNG shares the class map's compressed pixel data.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from seaice_utils.labelling.autolabel import Thresholds, auto_label
from seaice_utils.core.classes import class_fractions
from seaice_utils.labelling.cloudfilter import FilterParams, _value
from seaice_utils.errors import InputError, SeaIceError
from seaice_utils.core.scenes import Scene, Stretch, atomic_write_bytes, list_images, read_scene

__all__ = ["LabelOptions", "LabelSummary", "label_scene", "label_file", "label_inputs",
           "output_paths", "is_done", "read_input", "scene_from_bytes", "encode_outputs",
           "write_outputs", "label_path", "encode_png", "list_inputs", "OUTPUT_KEYS",
           "LABEL_PALETTE"]

#: Output files of one input, in the order they are written (the sidecar last).
OUTPUT_KEYS = ("classes", "labels", "sidecar")


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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Chunks that may precede the image data of a PNG the fast reader takes (none changes pixels).
_PLAIN_CHUNKS = {b"IHDR", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"tEXt", b"zTXt", b"iTXt", b"tIME"}
_FAST_FLAGS = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: np.ndarray, *, palette: np.ndarray | None = None) -> bytes:
    """PNG bytes of an 8-bit grey, indexed-colour or RGB image: no row filter, zlib level 1.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 ndarray
        Grey (or palette indices), or RGB in RGB order (as stored in the file).
    palette : (N, 3) uint8 ndarray, optional
        With a 2-D image: write an indexed-colour PNG with this palette (N <= 256; every
        index in the image must be < N).

    Returns
    -------
    bytes
        A standard PNG; the same array always gives the same bytes (for a given zlib).

    Examples
    --------
    >>> import numpy as np, cv2
    >>> img = np.zeros((2, 3, 3), np.uint8); img[0, 0] = (255, 0, 0)
    >>> cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_COLOR_RGB)[0, 0].tolist()
    [255, 0, 0]
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and
                                                              image.shape[2] != 3):
        raise InputError(f"encode_png takes uint8 (H, W) or (H, W, 3) arrays (got {image.dtype} "
                         f"{image.shape})")
    grey = image.ndim == 2
    if palette is not None:
        palette = np.asarray(palette, np.uint8)
        if not grey or palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= len(palette) <= 256:
            raise InputError(f"an indexed PNG takes a 2-D image and an (N <= 256, 3) palette "
                             f"(got {image.shape} and {palette.shape})")
        if image.size and int(image.max()) >= len(palette):
            raise InputError(f"image index {int(image.max())} beyond the palette of "
                             f"{len(palette)} colours")
    return _png_from_idat(image.shape[1], image.shape[0], _idat(image),
                          colour_type=(3 if palette is not None else 0) if grey else 2,
                          palette=palette)


def _idat(image: np.ndarray) -> bytes:
    """zlib stream of an image's PNG rows (filter byte 0 on every row)."""
    h = image.shape[0]
    raw = np.zeros((h, 1 + image.shape[1] * (1 if image.ndim == 2 else 3)), np.uint8)
    raw[:, 1:] = image.reshape(h, -1)
    comp = zlib.compressobj(1, zlib.DEFLATED, 15, 9,
                            zlib.Z_RLE if image.ndim == 2 else zlib.Z_DEFAULT_STRATEGY)
    return comp.compress(raw) + comp.flush()


def _png_from_idat(w: int, h: int, idat: bytes, *, colour_type: int,
                   palette: np.ndarray | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    plte = b"" if palette is None else _png_chunk(b"PLTE", palette.tobytes())
    return (_PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + plte + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _label_palette() -> np.ndarray:
    """256-entry palette: the class code's colour (PALETTE), black for codes without one."""
    from seaice_utils.core.classes import PALETTE

    pal = np.zeros((256, 3), np.uint8)
    for code, rgb in PALETTE.items():
        pal[code] = rgb
    return pal


LABEL_PALETTE = _label_palette()


def _plain_rgb8_png(data: bytes) -> bool:
    """True for an 8-bit RGB PNG without transparency, colour profile or orientation chunks."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return False
    if data[24] != 8 or data[25] != 2:             # bit depth 8, colour type 2 (RGB)
        return False
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        if tag == b"IDAT":
            return True
        if tag not in _PLAIN_CHUNKS:
            return False
        pos += 12 + length
    return False


def _fast_reader_applies(suffix: str, opts: LabelOptions) -> bool:
    return suffix.lower() == ".png" and opts.bands is None and opts.nodata in (None, 0)


def _fast_scene(data: bytes, name: str, nodata_value: float | None = None) -> Scene | None:
    """Decode a plain 8-bit RGB PNG exactly as :func:`~seaice_utils.scenes.read_scene` does.

    An 8-bit RGB image is used as is; no-data is "0 in every band", i.e. max(R, G, B) == 0.
    Returns None when the bytes are not such a PNG (the caller falls back to ``read_scene``).
    """
    if not _plain_rgb8_png(data):
        return None
    rgb = cv2.imdecode(np.frombuffer(data, np.uint8), _FAST_FLAGS)
    if rgb is None or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        return None
    nodata = _value(rgb) == 0
    meta = {"dtype_in": "uint8", "bands_rgb": [1, 2, 3],
            "nodata_value": 0 if nodata_value is None else nodata_value,
            "stretch": "none (8-bit input)"}
    return Scene(rgb=rgb, nodata=nodata, name=name, meta=meta)


def _check_size(scene: Scene, filename: str, opts: LabelOptions) -> None:
    if opts.expect_size is not None and scene.shape != tuple(opts.expect_size):
        raise InputError(f"{filename}: size {scene.shape[0]}x{scene.shape[1]}, expected "
                         f"{opts.expect_size[0]}x{opts.expect_size[1]}")


def read_input(path: str | os.PathLike, opts: LabelOptions = LabelOptions()) -> Scene:
    """Read one input image as a :class:`~seaice_utils.scenes.Scene` (same result as
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
            scene = _fast_scene(path.read_bytes(), path.stem, opts.nodata)
        except OSError:
            scene = None                       # read_scene says what is wrong
    if scene is None:
        scene = read_scene(path, bands=opts.bands, nodata=opts.nodata, stretch=opts.stretch)
    _check_size(scene, path.name, opts)
    return scene


def scene_from_bytes(data: bytes, filename: str, opts: LabelOptions = LabelOptions()) -> Scene:
    """:func:`read_input` for the bytes of a file (as Spark's ``binaryFile`` source gives them).

    ``filename`` (no folder) names the scene and says the format by its suffix.
    """
    filename = Path(filename).name
    stem, suffix = Path(filename).stem, Path(filename).suffix
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


def _sidecar(scene: Scene, classes: np.ndarray, opts: LabelOptions, input_name: str) -> dict:
    meta = {k: v for k, v in scene.meta.items() if k != "path"}
    nodata = int(np.count_nonzero(scene.nodata))
    meta.update(input=input_name, shape=list(classes.shape),
                nodata_fraction=float(nodata) / scene.nodata.size,
                filter=opts.filter_params.to_dict() if opts.filter_params else None,
                thresholds=opts.thresholds.to_dict(), class_fractions=class_fractions(classes))
    return meta


def _json_bytes(obj) -> bytes:
    # the format of seaice_utils.scenes.write_json
    return (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode()


def encode_outputs(scene: Scene, classes: np.ndarray, opts: LabelOptions = LabelOptions(), *,
                   input_name: str) -> dict[str, bytes]:
    """The three output files of one labelled image, as bytes keyed by :data:`OUTPUT_KEYS`.

    Parameters
    ----------
    scene : Scene
        The input as read (for the sidecar: provenance and no-data share).
    classes : (H, W) uint8 ndarray
        Class map of ``scene`` (0, 1, 2, 255).
    opts : LabelOptions
    input_name : str
        File name of the input, recorded in the sidecar.
    """
    classes = np.ascontiguousarray(classes)
    h, w = classes.shape
    idat = _idat(classes)                        # one compression for both PNGs
    return {"classes": _png_from_idat(w, h, idat, colour_type=0),
            "labels": _png_from_idat(w, h, idat, colour_type=3, palette=LABEL_PALETTE),
            "sidecar": _json_bytes(_sidecar(scene, classes, opts, input_name))}


def write_outputs(out_dir: str | os.PathLike, name: str, outputs: dict[str, bytes]) -> None:
    """Write the outputs of :func:`encode_outputs` atomically, the sidecar last."""
    paths = output_paths(out_dir, name)
    for key in OUTPUT_KEYS:
        atomic_write_bytes(paths[key], outputs[key])


def label_file(path: str | os.PathLike, out_dir: str | os.PathLike,
               opts: LabelOptions = LabelOptions()) -> dict:
    """Label one image file and write its outputs; return the sidecar dict.

    Raises
    ------
    InputError
        Missing, corrupt or unusable input, or a size other than ``opts.expect_size``.
    """
    path = Path(path)
    scene = read_input(path, opts)
    classes, _ = label_scene(scene, opts)
    outputs = encode_outputs(scene, classes, opts, input_name=path.name)
    write_outputs(out_dir, scene.name, outputs)
    return json.loads(outputs["sidecar"])


#: Errors of one input that are reported, not raised, when many inputs are labelled.
INPUT_ERRORS = (SeaIceError, cv2.error, OSError)


def label_path(path: str | os.PathLike, out_dir: str | os.PathLike,
               opts: LabelOptions = LabelOptions(), *, resume: bool = False
               ) -> tuple[str, str, str | None]:
    """Label one file for a batch job; never raises on bad input.

    Returns
    -------
    (status, name, error)
        status is ``"done"``, ``"skipped"`` (``resume`` and complete outputs exist) or
        ``"failed"``; name is the file name for failures and the output name otherwise; error
        is the message of a failure, else None.
    """
    path = Path(path)
    if resume and is_done(out_dir, path.stem):
        return "skipped", path.stem, None
    try:
        label_file(path, out_dir, opts)
    except INPUT_ERRORS as exc:
        return "failed", path.name, str(exc) or type(exc).__name__
    return "done", path.stem, None


def list_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The files a job works on: a file, the images directly inside a folder, or a list."""
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            files = list_images(p)
            if not files:
                raise InputError(f"no images (.png, .tif, .jpg, .jp2) in {p}")
            return files
        if p.exists():
            return [p]
        raise InputError(f"input not found: {p}")
    return [Path(f) for f in inputs]


def label_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike],
                 out_dir: str | os.PathLike, opts: LabelOptions = LabelOptions(), *,
                 resume: bool = False, progress: bool = True) -> LabelSummary:
    """Label a file, a folder of images or a list of files, one after the other.

    Failures are collected, not raised, so one bad file does not stop the others. (This is the
    ``sequential`` engine of :func:`seaice_utils.engines.run_label_job`.)
    """
    from tqdm.auto import tqdm

    files = list_inputs(inputs)
    summary = LabelSummary()
    for f in tqdm(files, desc="auto-labelling", unit="image", disable=not progress):
        status, name, err = label_path(f, out_dir, opts, resume=resume)
        if status == "failed":
            summary.failures.append((name, err))
        else:
            (summary.done if status == "done" else summary.skipped).append(name)
    return summary
