"""Files in and out: the input list of a job, atomic writes of bytes, PNGs and JSON.

Every output of the package is written through :func:`atomic_write_bytes` (a temporary file in
the same folder, then a rename), so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from seaice_utils.errors import InputError

__all__ = ["IMAGE_SUFFIXES", "list_images", "list_inputs", "atomic_write_bytes", "write_png",
           "json_bytes", "write_json"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".jp2")
_UMASK = os.umask(0)
os.umask(_UMASK)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files (by suffix) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"folder not found: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then rename.

    A reader never sees a half-written file, and an interrupted run leaves no partial output
    (only, at worst, a ``.tmp`` file that the next run ignores and overwrites).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_png(path: str | os.PathLike, image: np.ndarray, *, compression: int = 1) -> None:
    """Write a (H, W) or (H, W, 3) uint8 array as PNG, atomically. RGB order in, as stored.

    ``compression`` is the zlib level (0-9); 1 is fast and still lossless.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError(f"write_png takes uint8 (H, W) or (H, W, 3) arrays (got {image.dtype} "
                         f"{image.shape})")
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr),
                           [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:
        raise InputError(f"could not encode PNG for {path}")
    atomic_write_bytes(path, buf.tobytes())


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented, key-sorted JSON that strict parsers accept (NaN and inf -> null).

    >>> json_bytes({"b": float("nan"), "a": [1.5, float("inf")]}).decode()
    '{\\n  "a": [\\n    1.5,\\n    null\\n  ],\\n  "b": null\\n}\\n'
    """
    return (json.dumps(_finite(obj), indent=2, sort_keys=True, default=str,
                       allow_nan=False) + "\n").encode()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (:func:`json_bytes`), atomically."""
    atomic_write_bytes(path, json_bytes(obj))
