"""Whole scenes through a model of fixed window size: windows, batches, blended stitching.

Done here so that the result has no seams and big scenes fit in memory (Iqrah et al. 2024, "Inference":
split big scenes into 256 px tiles, filter them, predict, reassemble):

1. **Windows.** Model-sized windows (``tile``) with ``overlap`` pixels shared between neighbours
   (:func:`tile_windows`); the last window of a row/column is aligned with the scene's edge, so
   no padding is fed to the model except for scenes smaller than one tile. With ``border=
   "reflect"`` the scene is first mirrored by ``overlap // 2`` pixels on every side, so that scene
   edges too are seen with context. Windows holding no valid pixel are not predicted.
2. **Batched prediction** of the windows (``batch_size`` per call to one compiled
   ``tf.function``, no per-call overhead of ``Model.predict``; on CPU small batches of 1-4 are
   fastest, larger ones spill the caches; on a GPU take 16-64).
3. **Blended stitching.** Each window's class probabilities are weighted by a window that ramps
   from ~0 at its edges to 1 at ``overlap`` pixels inside (:func:`blend_window`, linear or
   cosine), summed, and divided by the summed weights. Predictions near a window's edge, where
   the U-Net's zero padding lacks context, thus hand over smoothly to the neighbouring window:
   no grid artefact (``tests/test_infer.py`` checks that class changes are not concentrated on
   window borders, :func:`seam_statistics`). Rows are finished and released band by band, so
   memory grows with the scene's width, not its area.

>>> import numpy as np
>>> fake = lambda x: np.stack([x[..., 0] < 0.5, x[..., 0] >= 0.5, 0 * x[..., 0]], -1)
>>> img = np.zeros((300, 200, 1), np.uint8); img[:, 100:] = 255
>>> classes = predict_scene(fake, img, tile=64, overlap=16)
>>> classes.shape, np.unique(classes[:, :100]).tolist(), np.unique(classes[:, 100:]).tolist()
((300, 200), [0], [1])
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from seaice_utils.core.classes import NODATA
from seaice_utils.errors import InputError
from seaice_utils.inference.runtime import PredictFn, make_predict_fn

__all__ = ["BLENDS", "BORDERS", "tile_windows", "blend_window", "predict_probabilities",
           "predict_scene", "predict_tiles", "window_edges", "seam_statistics"]

BLENDS = ("linear", "cosine", "none")
BORDERS = ("reflect", "none")


def _check_window(tile: int, overlap: int) -> None:
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise InputError(f"tile size must be a positive integer (got {tile!r})")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < tile:
        raise InputError(f"overlap must be an integer in 0..tile-1 = 0..{tile - 1} "
                         f"(got {overlap!r})")


def tile_windows(shape: tuple[int, int], tile: int = 256,
                 overlap: int = 0) -> list[tuple[int, int]]:
    """Top-left corners of the ``tile`` windows covering an image, ``overlap`` px shared.

    The stride is ``tile - overlap``; the last window of each row and column ends at the image's
    edge (it may overlap its neighbour by more). An axis shorter than ``tile`` has one window at
    0 (the caller pads).

    >>> tile_windows((512, 600), 256)
    [(0, 0), (0, 256), (0, 344), (256, 0), (256, 256), (256, 344)]
    >>> [c for r, c in tile_windows((256, 512), 256, 32)]
    [0, 224, 256]
    """
    _check_window(tile, overlap)
    stride = tile - overlap

    def axis(n: int) -> list[int]:
        if n <= tile:
            return [0]
        pos = list(range(0, n - tile + 1, stride))
        if pos[-1] != n - tile:
            pos.append(n - tile)
        return pos

    h, w = shape[:2]
    return [(r, c) for r in axis(h) for c in axis(w)]


def blend_window(tile: int, overlap: int, *, kind: str = "linear") -> np.ndarray:
    """Weights of one window's predictions in the blend, shape (tile, tile) float32.

    1 in the window's interior; within ``overlap`` px of an edge it falls to ``0.5 / overlap``
    (linear) or close to 0 (cosine), never 0, so that pixels seen by one window only keep their
    prediction. ``overlap`` 0 or ``kind="none"``: all ones (plain averaging where windows meet).

    >>> w = blend_window(8, 4)
    >>> [round(float(v), 3) for v in w[0]]
    [0.016, 0.047, 0.078, 0.109, 0.109, 0.078, 0.047, 0.016]
    """
    _check_window(tile, overlap)
    if kind not in BLENDS:
        raise InputError(f"blend must be one of {', '.join(BLENDS)} (got {kind!r})")
    if overlap == 0 or kind == "none":
        return np.ones((tile, tile), np.float32)
    i = np.arange(tile, dtype=np.float64)
    d = np.minimum(i, tile - 1 - i) + 0.5
    ramp = np.minimum(d / overlap, 1.0)
    if kind == "cosine":
        ramp = np.maximum(0.5 - 0.5 * np.cos(np.pi * ramp), 1e-3)
    return np.outer(ramp, ramp).astype(np.float32)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.dtype != np.uint8:
        raise InputError(f"model input must be a uint8 (H, W) or (H, W, C) image (got "
                         f"{image.dtype} {image.shape})")
    return image


def _predict_batches(predict: PredictFn, image: np.ndarray, wins: Sequence[tuple[int, int]],
                     tile: int, batch_size: int, bar) -> Iterator[tuple[int, int, np.ndarray]]:
    for i in range(0, len(wins), batch_size):
        chunk = wins[i:i + batch_size]
        x = np.stack([image[r:r + tile, c:c + tile] for r, c in chunk]).astype(np.float32)
        x *= np.float32(1.0 / 255.0)
        p = np.asarray(predict(x), dtype=np.float32)
        if p.ndim != 4 or p.shape[:3] != x.shape[:3]:
            raise InputError(f"the model returned shape {p.shape} for a batch of shape {x.shape}; "
                             "expected (N, tile, tile, classes)")
        if bar is not None:
            bar.update(len(chunk))
        for (r, c), pi in zip(chunk, p):
            yield r, c, pi


def predict_probabilities(predict, image: np.ndarray, *, tile: int = 256, overlap: int = 0,
                          batch_size: int = 2, blend: str = "linear", border: str = "reflect",
                          nodata: np.ndarray | None = None, progress: bool = False,
                          desc: str = "predicting") -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Blended class probabilities of a whole image, yielded in bands of finished rows.

    Parameters
    ----------
    predict : Keras model or callable
        See :func:`make_predict_fn`.
    image : (H, W) or (H, W, C) uint8 ndarray
        Model input (:func:`model_input`), any size.
    tile, overlap : int, keyword-only
        Window side (the model's) and pixels shared by neighbouring windows.
    batch_size : int, keyword-only
    blend : {"linear", "cosine", "none"}, keyword-only
    border : {"reflect", "none"}, keyword-only
        ``reflect`` mirrors the image by ``overlap // 2`` px on each side before windowing.
    nodata : (H, W) bool ndarray, optional, keyword-only
        Windows with no valid pixel are not predicted.
    progress : bool, keyword-only
        tqdm bar over windows.

    Yields
    ------
    row0 : int
        First image row of the band.
    probs : (rows, W, K) float32 ndarray
        Blended probabilities (0 where no window was predicted).
    weight : (rows, W) float32 ndarray
        Summed blend weights (0 where no window was predicted).
    """
    image = _as_hwc(image)
    _check_window(tile, overlap)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    if border not in BORDERS:
        raise InputError(f"border must be one of {', '.join(BORDERS)} (got {border!r})")
    predict = make_predict_fn(predict)
    h, w = image.shape[:2]
    valid = np.ones((h, w), bool) if nodata is None else ~nodata
    if valid.shape != (h, w):
        raise InputError(f"no-data mask shape {valid.shape} does not match image {(h, w)}")
    pad = overlap // 2 if border == "reflect" else 0
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
        valid = np.pad(valid, pad, mode="symmetric")
    ph, pw = max(image.shape[0], tile), max(image.shape[1], tile)
    if (ph, pw) != image.shape[:2]:   # smaller than one window: zero padding, no-data
        extra = ((0, ph - image.shape[0]), (0, pw - image.shape[1]))
        image = np.pad(image, extra + ((0, 0),))
        valid = np.pad(valid, extra)
    wins = tile_windows((ph, pw), tile, overlap)
    todo = [(r, c) for r, c in wins if valid[r:r + tile, c:c + tile].any()]
    rows = sorted({r for r, _ in wins})
    weight = blend_window(tile, overlap, kind=blend)
    flat = bool(np.all(weight == 1.0))

    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc=desc, unit="window", disable=not progress, leave=False)
    gen = _predict_batches(predict, image, todo, tile, batch_size, bar)
    pending = next(gen, None)
    k = pending[2].shape[-1] if pending is not None else 3
    acc = np.zeros((tile, pw, k), np.float32)
    wsum = np.zeros((tile, pw), np.float32)
    try:
        for i, r in enumerate(rows):
            while pending is not None and pending[0] == r:
                _, c, p = pending
                if flat:
                    acc[:, c:c + tile] += p
                else:
                    acc[:, c:c + tile] += p * weight[..., None]
                wsum[:, c:c + tile] += weight
                pending = next(gen, None)
            r_next = rows[i + 1] if i + 1 < len(rows) else r + tile
            d = r_next - r
            lo, hi = max(r, pad), min(r_next, pad + h)      # finished rows inside the image
            if hi > lo:
                a, b = lo - r, hi - r
                ws = wsum[a:b, pad:pad + w]
                probs = np.zeros((b - a, w, k), np.float32)
                np.divide(acc[a:b, pad:pad + w], ws[..., None], out=probs,
                          where=ws[..., None] > 0)
                yield lo - pad, probs.astype(np.float32), ws.copy()
            acc[:tile - d] = acc[d:]
            acc[tile - d:] = 0
            wsum[:tile - d] = wsum[d:]
            wsum[tile - d:] = 0
    finally:
        bar.close()


def predict_scene(predict, image: np.ndarray, *, nodata: np.ndarray | None = None,
                  tile: int = 256, overlap: int = 0, batch_size: int = 2, blend: str = "linear",
                  border: str = "reflect", return_probs: bool = False, progress: bool = False,
                  desc: str = "predicting"):
    """Class map of a whole image (see :func:`predict_probabilities` for the options).

    Returns
    -------
    classes : (H, W) uint8 ndarray
        0 water, 1 thin ice, 2 thick ice; 255 where ``nodata`` (or where nothing was predicted).
    probs : (H, W, K) float32 ndarray
        Only with ``return_probs=True``.
    """
    image = _as_hwc(image)
    h, w = image.shape[:2]
    classes = np.full((h, w), NODATA, np.uint8)
    probs_all = None
    for r0, probs, ws in predict_probabilities(
            predict, image, tile=tile, overlap=overlap, batch_size=batch_size, blend=blend,
            border=border, nodata=nodata, progress=progress, desc=desc):
        r1 = r0 + probs.shape[0]
        cl = np.argmax(probs, axis=-1).astype(np.uint8)
        cl[ws <= 0] = NODATA
        classes[r0:r1] = cl
        if return_probs:
            if probs_all is None:
                probs_all = np.zeros((h, w, probs.shape[-1]), np.float32)
            probs_all[r0:r1] = probs
    if nodata is not None:
        classes[nodata] = NODATA
    return (classes, probs_all) if return_probs else classes


def predict_tiles(predict, tiles: np.ndarray, *, batch_size: int = 2,
                  progress: bool = False, desc: str = "predicting tiles") -> np.ndarray:
    """Class maps of model-sized tiles, in batches (no stitching).

    Parameters
    ----------
    predict : Keras model or callable
    tiles : (N, t, t) or (N, t, t, C) uint8 ndarray
        Model input tiles (:func:`input_from_layers`).

    Returns
    -------
    (N, t, t) uint8 ndarray
    """
    from tqdm import tqdm

    x = np.asarray(tiles)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8:
        raise InputError(f"predict_tiles takes uint8 (N, t, t[, C]) tiles (got {x.dtype} "
                         f"{x.shape})")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    predict = make_predict_fn(predict)
    out = np.empty(x.shape[:3], np.uint8)
    for i in tqdm(range(0, len(x), batch_size), desc=desc, disable=not progress, leave=False):
        b = x[i:i + batch_size].astype(np.float32) * np.float32(1.0 / 255.0)
        out[i:i + batch_size] = np.argmax(np.asarray(predict(b)), axis=-1)
    return out


def window_edges(shape: tuple[int, int], tile: int, overlap: int = 0, *,
                 border: str = "none") -> tuple[list[int], list[int]]:
    """Rows and columns (inside the image) where a window of :func:`predict_probabilities`
    starts or ends, for the same ``tile``, ``overlap`` and ``border``.

    >>> window_edges((512, 512), 256)
    ([256], [256])
    """
    h, w = shape[:2]
    pad = overlap // 2 if border == "reflect" else 0
    wins = tile_windows((max(h + 2 * pad, tile), max(w + 2 * pad, tile)), tile, overlap)
    rows = sorted({e - pad for r, _ in wins for e in (r, r + tile) if 0 < e - pad < h})
    cols = sorted({e - pad for _, c in wins for e in (c, c + tile) if 0 < e - pad < w})
    return rows, cols


def seam_statistics(classes: np.ndarray, *, tile: int, overlap: int = 0,
                    border: str = "none") -> dict[str, float]:
    """Are class changes concentrated on window borders? (a grid-artefact detector)

    Counts, between horizontally and vertically adjacent valid pixels, how often the class
    changes across the borders of the windows that :func:`predict_probabilities` places with
    these ``tile``, ``overlap`` and ``border`` (:func:`window_edges`), and across all other
    pixel boundaries.

    Returns
    -------
    dict
        ``border_rate`` and ``interior_rate`` (changes per adjacent pair), ``ratio``
        (border / interior; about 1 without seams, much larger with them), ``border_pairs``.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.zeros((64, 64), np.uint8); grid[:, 32:] = 1   # one change at a window border
    >>> seam_statistics(grid, tile=32)["ratio"] > 10
    True
    """
    if classes.ndim != 2:
        raise InputError(f"seam_statistics takes a (H, W) class map (got shape {classes.shape})")
    edges_r, edges_c = window_edges(classes.shape, tile, overlap, border=border)
    valid = classes != NODATA
    border_changes = border_pairs = all_changes = all_pairs = 0
    for axis, edges in ((1, edges_c), (0, edges_r)):
        a = classes if axis == 1 else classes.T
        v = valid if axis == 1 else valid.T
        pair_valid = v[:, 1:] & v[:, :-1]
        change = (a[:, 1:] != a[:, :-1]) & pair_valid
        idx = np.array(edges, int) - 1           # pair (e-1, e) is column e-1 of the diff
        all_changes += int(change.sum())
        all_pairs += int(pair_valid.sum())
        if idx.size:
            border_changes += int(change[:, idx].sum())
            border_pairs += int(pair_valid[:, idx].sum())
    inner_pairs = all_pairs - border_pairs
    br = border_changes / border_pairs if border_pairs else float("nan")
    ir = (all_changes - border_changes) / inner_pairs if inner_pairs else float("nan")
    ratio = br / ir if ir and ir > 0 else (float("inf") if br and br > 0 else float("nan"))
    return {"border_rate": br, "interior_rate": ir, "ratio": ratio, "border_pairs": border_pairs}
