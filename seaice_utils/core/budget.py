"""How much memory a scene needs, and the refusal of one that would not fit a worker.

:func:`check_scene_size` takes a :class:`~seaice_utils.core.headers.SceneHeader` (read from the
file's header, before anything is decoded) and raises one clear
:class:`~seaice_utils.errors.InputError` when the scene would need more than the worker memory
limit (the profile's ``global.worker_memory_gb``)::

    big.png: 50000 x 50000 px (2500 Mpx) would need about 47 GiB to process, over the worker
    memory limit of 8 GiB (global.worker_memory_gb)

(one line). The need is ``pixels x max(bytes_per_pixel, decode_bytes_per_pixel(header))``:
the work after reading (labelling or prediction, one constant each below) or the reading of
the file itself (raw samples and the float32 stretch to 8-bit), whichever is more.

How the constants were measured
-------------------------------
``tests/benchmarks/bench_memory.py`` measures them again. Each figure is the peak resident
memory of a fresh Python process (``VmHWM`` from ``/proc/self/status``, reset with
``/proc/self/clear_refs`` after the imports and one run on a tiny image, minus ``VmRSS`` at that
point), divided by the scene's pixels; synthetic scenes
(:func:`seaice_utils.data.synthetic.synthesize_scene`, 8-bit RGB PNG), NumPy 1.26, OpenCV 4.11,
rasterio 1.4, Linux x86-64:

* :func:`seaice_utils.labelling.label_file` with the default options (thin-cloud filter on):
  17.96, 17.99, 17.99, 18.01 bytes per pixel at 2048, 4096 (cloud cover 0 and 0.6) and
  6144 px square; without the filter 10.4.
* prediction of a 4096 px scene (read, model input, blended stitching, the two PNGs) with a
  stand-in NumPy model: 17.8-18.0 (filtered input), 13.1-13.4 (RGB input).
* reading (:func:`~seaice_utils.core.scenes.read_scene`) of 4096 x 4096 px files: 8-bit RGB
  PNG 7.4; GeoTIFF of 3 bands uint16 47.9, float32 55.0, float64 78.9-79.5; 13 bands uint16
  with ``bands=(4, 3, 2)`` 73.9-74.0 bytes per pixel.
"""

from __future__ import annotations

import numpy as np

from seaice_utils.core.headers import SceneHeader
from seaice_utils.errors import InputError

__all__ = ["LABEL_BYTES_PER_PIXEL", "PREDICT_BYTES_PER_PIXEL", "STRETCH_BYTES_PER_PIXEL",
           "LIMIT_KEY", "decode_bytes_per_pixel", "scene_bytes", "check_scene_size"]

#: Labelling (read an 8-bit RGB scene, thin-cloud filter, thresholds, encode and write the
#: outputs): measured 18.0 bytes per pixel (module docstring), rounded up to 20 for the
#: allocator's slack and the small per-scene buffers that do not scale with the area.
LABEL_BYTES_PER_PIXEL = 20

#: Prediction: the same reading and thin-cloud filter as labelling (20, see above; measured
#: about 18 for the whole prediction of a 4096 px scene with a stand-in NumPy model and filtered
#: input, about 13 with RGB input) plus 12 for the class probabilities, float32 x 3 classes, which
#: ``inference.stitch.predict_scene(return_probs=True)`` holds for the whole scene. The default
#: (``predict_file``) streams them instead in bands of ``tile`` rows: float32 sums of the
#: probabilities and of the blend weights over ``tile`` rows (12 + 4 bytes a pixel) and the
#: finished ``tile - overlap`` rows (probabilities, their copy, weights, argmax: 37 bytes a
#: pixel), about 12.4 kB per column for tile 256 and overlap 32, which the 12 bytes also cover
#: for scenes of more than about 1000 rows. The model's weights and one batch of activations do
#: not grow with the scene and are not counted.
PREDICT_BYTES_PER_PIXEL = LABEL_BYTES_PER_PIXEL + 12

#: Reading a non-8-bit file, beyond its raw samples and the three bands picked from them: the
#: float32 temporaries of the stretch to 8-bit, the no-data masks and the 8-bit result. Measured
#: (module docstring): 47.9 - 6 = 41.9 (3 x uint16), 74.0 - 26 - 6 = 42.0 (13 x uint16, bands
#: picked), 55.0 - 12 = 43.0 (3 x float32); rounded up to 44.
STRETCH_BYTES_PER_PIXEL = 44

#: The profile key that sets the limit (named in the refusal).
LIMIT_KEY = "global.worker_memory_gb"


def decode_bytes_per_pixel(header: SceneHeader) -> int:
    """Bytes per pixel that reading the file takes at its peak (an upper bound).

    Raw samples (``bands x itemsize``), a copy of the three bands picked as red, green and blue
    (counted even when no copy is made), and for other than 8-bit samples the stretch
    (:data:`STRETCH_BYTES_PER_PIXEL`) or, for float samples wider than 4 bytes, the search of
    their range (two copies of the valid values, which measured 55 bytes for float64).

    >>> from seaice_utils.core.headers import SceneHeader
    >>> decode_bytes_per_pixel(SceneHeader(10, 10, 3, "uint8")), \
decode_bytes_per_pixel(SceneHeader(10, 10, 3, "uint16"))
    (11, 56)
    """
    size = np.dtype(header.dtype).itemsize
    raw, picked = header.bands * size, 3 * size
    if header.dtype == "uint8":
        return raw + picked + 5                 # + no-data mask and the 8-bit copy
    work = STRETCH_BYTES_PER_PIXEL
    if np.issubdtype(np.dtype(header.dtype), np.floating):
        work = max(work, 2 * picked + 8)
    return raw + picked + work


def scene_bytes(header: SceneHeader, bytes_per_pixel: float = LABEL_BYTES_PER_PIXEL, *,
                whole: bool = True) -> int:
    """Memory a scene needs: pixels x the larger of ``bytes_per_pixel`` (the work) and
    :func:`decode_bytes_per_pixel` (reading the file whole); for a scene read in bands of rows
    (``whole=False``) only ``bytes_per_pixel``, what is kept of every pixel."""
    if not whole:
        return int(header.pixels * bytes_per_pixel)
    return int(header.pixels * max(bytes_per_pixel, decode_bytes_per_pixel(header)))


def _gib(n: float) -> str:
    g = n / 2**30
    if g >= 9.95:
        return f"{g:.0f} GiB"
    if g >= 0.995:
        return f"{g:.1f} GiB"
    return f"{n / 2**20:.0f} MiB"


def check_scene_size(header: SceneHeader | None, name: str, *, max_bytes: float | None,
                     bytes_per_pixel: float = LABEL_BYTES_PER_PIXEL,
                     limit_key: str = LIMIT_KEY, whole: bool = True) -> None:
    """Refuse a scene that would need more than ``max_bytes`` (module docstring).

    Parameters
    ----------
    header : SceneHeader or None
        From :func:`~seaice_utils.core.headers.scene_header` or
        :func:`~seaice_utils.core.headers.header_from_bytes`; None (a format that is not
        probed) is not checked.
    name : str
        The file's name, first in the message.
    max_bytes : number or None, keyword-only
        The limit (``global.worker_memory_gb * 2**30``); None: no limit.
    bytes_per_pixel : number, keyword-only
        :data:`LABEL_BYTES_PER_PIXEL` or :data:`PREDICT_BYTES_PER_PIXEL`.
    limit_key : str, keyword-only
        The setting named in the message.
    whole : bool, keyword-only
        False for a scene read in bands of rows (:func:`scene_bytes`).

    Raises
    ------
    InputError
        ``"<name>: W x H px (N Mpx) would need about X GiB to process, over the worker memory
        limit of L GiB (global.worker_memory_gb)"``.

    Examples
    --------
    >>> from seaice_utils.core.headers import SceneHeader
    >>> check_scene_size(SceneHeader(50000, 50000, 3, "uint8"), "big.png", max_bytes=8 * 2**30)
    Traceback (most recent call last):
    ...
    seaice_utils.errors.InputError: big.png: 50000 x 50000 px (2500 Mpx) would need about 47 GiB \
to process, over the worker memory limit of 8 GiB (global.worker_memory_gb)
    """
    if header is None or max_bytes is None:
        return
    need = scene_bytes(header, bytes_per_pixel, whole=whole)
    if need <= max_bytes:
        return
    mpx = header.pixels / 1e6
    mpx_text = f"{mpx:.0f}" if mpx >= 100 else f"{mpx:.3g}"
    raise InputError(f"{name}: {header.width} x {header.height} px ({mpx_text} Mpx) would need "
                     f"about {_gib(need)} to process, over the worker memory limit of "
                     f"{max_bytes / 2**30:.3g} GiB ({limit_key})")
