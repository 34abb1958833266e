"""Training data for the U-Net: the train/test split of a tile folder and a tf.data pipeline.

Tiles come from :func:`seaice_utils.data.tiles.prepare_tiles` (one PNG per layer and
tile). A sample is

* input ``x``: the filtered image's grey levels 0 / 155 / 255 (layer ``filtered``, one channel, as
  published) or the original colours (layer ``rgb``, three channels), scaled to 0..1 float32;
* target ``y``: a class map (0 water, 1 thin, 2 thick) from a label layer: ``truth`` (the
  reference labels: synthetic ground truth or a user's manual labels) for U-Net-Man,
  ``auto_filtered`` (colour segmentation of the filtered image, the paper's auto-labels) for
  U-Net-Auto, or any folder of class-map tiles named ``<tile>.png``;
* weight ``w``: 1 on valid pixels, 0 where the class map says no-data (255), so no-data pixels
  carry no weight in the loss and in the (weighted) metrics. Their target is set to 0 so that a
  sparse cross-entropy never sees an out-of-range class.

Pipeline (:func:`make_dataset`): file names -> seeded permutation -> shard by rank (each rank keeps
a distinct, equal-sized part: every epoch, the ranks together see every training tile once) ->
parallel PNG decode -> cache (decoded uint8, in memory or in a file) -> per-epoch seeded shuffle
-> batch -> vectorised cast to float / weights -> prefetch. After the first epoch a tile is never
decoded again, so the pipeline delivers far more images per second than training consumes
(``tests/benchmarks/bench_train.py pipeline``).

The split (:func:`split_tiles`) is reproducible: a seeded shuffle of tiles (as the paper) or of
whole scenes (the default here: tiles of one scene share its ice, clouds and light, so a tile
split leaks scene statistics into the test set).

Only :func:`make_dataset` and :func:`pipeline_throughput` import TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seaice_utils.core.classes import NODATA, from_palette
from seaice_utils.core.scenes import list_images, read_image, write_png
from seaice_utils.data.tiles import tile_path
from seaice_utils.errors import InputError

__all__ = ["LABEL_LAYERS", "INPUT_LAYERS", "label_folder", "input_folder", "split_tiles",
           "shard_names", "make_dataset", "pipeline_throughput", "load_tiles",
           "convert_manual_labels"]

#: Label sources by name -> tile layer (see :mod:`seaice_utils.data.tiles`).
LABEL_LAYERS = {"man": "truth", "truth": "truth", "auto": "auto_filtered",
                "auto_filtered": "auto_filtered", "auto_original": "auto_original"}
#: Input layers -> channels.
INPUT_LAYERS = {"filtered": 1, "rgb": 3}


def input_folder(tiles_root: str | os.PathLike, layer: str = "filtered") -> Path:
    """Folder of the input tiles of ``layer`` (``filtered`` or ``rgb``)."""
    if layer not in INPUT_LAYERS:
        raise InputError(f"input layer must be one of {', '.join(INPUT_LAYERS)} (got {layer!r})")
    return Path(tiles_root) / layer


def label_folder(tiles_root: str | os.PathLike, labels: str) -> Path:
    """Folder of the class-map tiles a label source names.

    ``labels`` is a name of :data:`LABEL_LAYERS` (``man``/``truth``, ``auto``/``auto_filtered``,
    ``auto_original``) or the path of a folder of class-map tiles ``<tile>.png``.
    """
    if labels in LABEL_LAYERS:
        return Path(tiles_root) / LABEL_LAYERS[labels]
    p = Path(labels)
    if not p.is_dir():
        raise InputError(f"labels must be one of {', '.join(LABEL_LAYERS)} or a folder of "
                         f"class-map tiles (got {labels!r}, which is neither)")
    return p


def split_tiles(rows: Sequence[dict], *, test_fraction: float = 0.2, seed: int = 0,
                by: str = "scene") -> dict[str, Any]:
    """Reproducible train/test split of the tiles of an index.

    Parameters
    ----------
    rows : sequence of dict
        Tile index rows with at least ``tile`` and ``scene``
        (:func:`seaice_utils.data.tiles.read_tile_index`).
    test_fraction : float, keyword-only
        Share of tiles (``by="tile"``) or of scenes (``by="scene"``, rounded, at least one scene
        each side when there are two or more) held out.
    seed : int, keyword-only
    by : {"scene", "tile"}, keyword-only
        Shuffle whole scenes (no scene in both sets) or single tiles (the paper).

    Returns
    -------
    dict
        ``train`` and ``test`` (sorted tile names), ``test_scenes`` (sorted), ``by``, ``seed``,
        ``test_fraction``.

    Examples
    --------
    >>> rows = [{"tile": f"s{s}_{r:04d}_0000", "scene": f"s{s}"} for s in range(5) for r in (0, 256)]
    >>> sp = split_tiles(rows, seed=1)
    >>> len(sp["train"]), len(sp["test"]), sp["test_scenes"] == split_tiles(rows, seed=1)["test_scenes"]
    (8, 2, True)
    """
    if by not in ("scene", "tile"):
        raise InputError(f"split by must be 'scene' or 'tile' (got {by!r})")
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"test_fraction must lie in [0, 1) (got {test_fraction!r})")
    names = sorted({r["tile"] for r in rows})
    if len(names) != len(rows):
        raise InputError(f"tile index lists {len(rows) - len(names)} tile(s) twice")
    if not names:
        raise InputError("no tiles to split")
    rng = np.random.default_rng(seed)
    scene_of = {r["tile"]: r["scene"] for r in rows}
    if by == "tile":
        perm = [names[i] for i in rng.permutation(len(names))]
        n_test = int(round(test_fraction * len(names)))
        test = set(perm[:n_test])
    else:
        scenes = sorted(set(scene_of.values()))
        n_test = int(round(test_fraction * len(scenes)))
        if test_fraction > 0 and len(scenes) >= 2:
            n_test = min(max(n_test, 1), len(scenes) - 1)
        held = {scenes[i] for i in rng.permutation(len(scenes))[:n_test]}
        test = {t for t in names if scene_of[t] in held}
    return {"train": [t for t in names if t not in test], "test": sorted(test),
            "test_scenes": sorted({scene_of[t] for t in test}), "by": by, "seed": int(seed),
            "test_fraction": float(test_fraction)}


def shard_names(names: Sequence[str], *, num_shards: int = 1, index: int = 0,
                seed: int = 0) -> list[str]:
    """The part of ``names`` that rank ``index`` of ``num_shards`` trains on.

    Names are permuted with ``seed`` (the same on every rank, so shards mix scenes) and dealt out
    round-robin; the last ``len(names) % num_shards`` names of the permutation are left out, so
    that all shards have the same size and every rank runs the same number of steps (Horovod's
    all-reduce needs that). Shards are disjoint; their union is the (trimmed) set. With one shard
    the names are returned as given (order kept).

    >>> a = shard_names([str(i) for i in range(7)], num_shards=2, index=0)
    >>> b = shard_names([str(i) for i in range(7)], num_shards=2, index=1)
    >>> len(a), len(b), set(a) & set(b)
    (3, 3, set())
    """
    if not isinstance(num_shards, int) or num_shards < 1 or not 0 <= index < num_shards:
        raise InputError(f"shard index must lie in 0..num_shards-1 (got {index} of {num_shards})")
    if num_shards == 1:
        if not names:
            raise InputError("no tiles to read")
        return list(names)
    names = sorted(names)
    per = len(names) // num_shards
    if per == 0:
        raise InputError(f"{len(names)} tiles cannot feed {num_shards} workers (need at least one "
                         "tile per worker)")
    perm = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return perm[: per * num_shards][index::num_shards]


def _paths(tiles_root, names, input_layer, labels) -> tuple[list[str], list[str]]:
    xdir, ydir = input_folder(tiles_root, input_layer), label_folder(tiles_root, labels)
    xs = [str(xdir / f"{n}.png") for n in names]
    ys = [str(ydir / f"{n}.png") for n in names]
    missing = [p for p in xs + ys if not os.path.isfile(p)]
    if missing:
        raise InputError(f"{len(missing)} tile file(s) missing, e.g. {missing[0]} (run "
                         "prepare_tiles first, or check the label folder)")
    return xs, ys


def make_dataset(tiles_root: str | os.PathLike, names: Sequence[str], *, batch_size: int,
                 input_layer: str = "filtered", labels: str = "auto", shuffle: bool = True,
                 seed: int = 0, cache: bool | str = True, num_shards: int = 1, shard_index: int = 0,
                 shuffle_buffer: int | None = None, with_names: bool = False,
                 num_parallel_calls: int | None = None, threads: int | None = None,
                 drop_remainder: bool = False):
    """A ``tf.data.Dataset`` of training batches read from tile files.

    Parameters
    ----------
    tiles_root : path
        Tile folder of :func:`seaice_utils.data.tiles.prepare_tiles`.
    names : sequence of str
        Tiles to use (e.g. ``split["train"]``); sharded here by ``num_shards``/``shard_index``.
    batch_size : int, keyword-only
        Batch per worker.
    input_layer : {"filtered", "rgb"}, keyword-only
    labels : str, keyword-only
        Label source (see :func:`label_folder`).
    shuffle : bool, keyword-only
        Reshuffle every epoch (seeded with ``seed + shard_index``: reproducible).
    cache : bool or str, keyword-only
        Cache decoded tiles in memory (True), in files with this prefix (str), or not (False).
    num_shards, shard_index : int, keyword-only
        Horovod size and rank (see :func:`shard_names`).
    shuffle_buffer : int, optional, keyword-only
        Default: the whole shard (a full shuffle).
    with_names : bool, keyword-only
        Also yield the tile names (a string tensor), for inspection and tests.
    num_parallel_calls : int, optional, keyword-only
        Parallel decodes (default: ``tf.data.AUTOTUNE``, which takes tf.data's fixed default
        as its autotuning model is off; see the comment at the end).
    threads : int, optional, keyword-only
        Size of the pipeline's private thread pool (default: TensorFlow's).
    drop_remainder : bool, keyword-only

    Returns
    -------
    tf.data.Dataset
        Elements ``(x, y, w)`` (plus ``names`` when asked): ``x`` (B, H, W, C) float32 in 0..1,
        ``y`` (B, H, W) int32 classes, ``w`` (B, H, W) float32 0/1 weights.
    """
    import tensorflow as tf

    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (got {batch_size!r})")
    shard = shard_names(names, num_shards=num_shards, index=shard_index, seed=seed)
    xs, ys = _paths(tiles_root, shard, input_layer, labels)
    channels = INPUT_LAYERS[input_layer]
    auto = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls

    def decode(xp, yp, name):
        x = tf.io.decode_png(tf.io.read_file(xp), channels=channels)
        y = tf.io.decode_png(tf.io.read_file(yp), channels=1)[..., 0]
        return x, y, name

    def finish(x, y, name):
        valid = tf.not_equal(y, NODATA)
        w = tf.cast(valid, tf.float32)
        y = tf.where(valid, tf.cast(y, tf.int32), 0)
        x = tf.cast(x, tf.float32) * (1.0 / 255.0)
        return (x, y, w, name) if with_names else (x, y, w)

    ds = tf.data.Dataset.from_tensor_slices((xs, ys, list(shard)))
    ds = ds.map(decode, num_parallel_calls=auto, deterministic=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(shuffle_buffer or len(shard), seed=seed + shard_index,
                        reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(finish, num_parallel_calls=auto, deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    opts = tf.data.Options()
    opts.deterministic = True
    # No autotuning model: with it on, destroying an iterator (Keras makes a new one every epoch
    # and every validation pass) waits for the model's optimisation thread, which only notices
    # the cancellation when its timed wait ends: 1-5 s of idle time per epoch measured with TF
    # 2.15 (seen in a gdb stack trace), and under Horovod the other ranks wait too. Without it,
    # AUTOTUNE takes tf.data's fixed defaults; the pipeline still feeds training hundreds of times
    # faster than it trains here (tests/benchmarks/bench_train.py pipeline).
    opts.autotune.enabled = False
    if threads:
        opts.threading.private_threadpool_size = int(threads)
    return ds.with_options(opts)


def pipeline_throughput(ds, *, epochs: int = 3) -> dict[str, Any]:
    """Images per second a dataset delivers, per pass (the first pass decodes, later ones read the
    cache).

    Returns
    -------
    dict
        ``images`` per pass, ``seconds`` per pass (list), ``images_per_s`` per pass (list),
        ``cold_images_per_s`` (first pass) and ``warm_images_per_s`` (median of later passes).
    """
    import time

    secs, n = [], 0
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for batch in ds:
            n += int(batch[0].shape[0])
        secs.append(time.perf_counter() - t0)
    ips = [n / s if s > 0 else float("inf") for s in secs]
    return {"images": n, "seconds": secs, "images_per_s": ips, "cold_images_per_s": ips[0],
            "warm_images_per_s": float(np.median(ips[1:])) if len(ips) > 1 else ips[0]}


def load_tiles(tiles_root: str | os.PathLike, names: Sequence[str], layer: str) -> np.ndarray:
    """Stack the tiles of one layer as a uint8 array (no TensorFlow; for evaluation).

    Returns
    -------
    (N, H, W) or (N, H, W, 3) uint8 ndarray
        RGB order for ``rgb``.
    """
    if not names:
        raise InputError("no tiles to load")
    out = []
    for n in names:
        p = tile_path(tiles_root, layer, n) if not Path(layer).is_dir() else Path(layer) / f"{n}.png"
        if not p.is_file():
            raise InputError(f"tile file missing: {p}")
        arr, _ = read_image(p)
        out.append(arr)
    return np.stack(out)


def convert_manual_labels(folder: str | os.PathLike, out_dir: str | os.PathLike, *,
                          names: Sequence[str] | None = None) -> Path:
    """Turn a folder of manual label tiles into class-map tiles usable as ``labels``.

    Parameters
    ----------
    folder : path
        ``<tile>.png`` files: either class maps (one channel, 0/1/2/255) or RGB palette images
        (red thick, blue thin, green water, black no-data, as the paper's manual labels).
        A ``s2_seg_`` prefix (the published naming) is dropped.
    out_dir : path
        Where the class maps are written (``<tile>.png``); existing files are kept (resumable).
    names : sequence of str, optional
        Only these tiles.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out = Path(out_dir)
    files = list_images(folder)
    if not files:
        raise InputError(f"no label images in {folder}")
    want = set(names) if names is not None else None
    for p in files:
        stem = p.stem[len("s2_seg_"):] if p.stem.startswith("s2_seg_") else p.stem
        if want is not None and stem not in want:
            continue
        dst = out / f"{stem}.png"
        if dst.is_file():
            continue
        arr, _ = read_image(p)
        if arr.ndim == 3:
            arr = from_palette(arr[..., :3])
        if arr.dtype != np.uint8 or not np.isin(arr, (0, 1, 2, NODATA)).all():
            raise InputError(f"{p} is neither a class map (0/1/2/255) nor a palette RGB label")
        write_png(dst, arr)
    return out
