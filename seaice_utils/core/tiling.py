"""Split scenes into square tiles and stitch them back.

Tiles are named ``<scene>_<row:04d>_<col:04d>`` where row and col are the pixel offsets of the
tile's top-left corner, as in the published data (``s2_vis_06_0256_1280``). A scene whose size is
not a multiple of the tile size is padded at the bottom and right; padding is no-data. A 2048 px
scene gives 64 tiles of 256 px.
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping

import numpy as np

from seaice_utils.errors import InputError

__all__ = ["TILE_SIZE", "tile_name", "parse_tile_name", "pad_to_multiple", "tile_offsets",
           "iter_tiles", "split_tiles", "stitch_tiles"]

TILE_SIZE = 256
_NAME_RE = re.compile(r"^(?P<scene>.+)_(?P<row>\d{4,})_(?P<col>\d{4,})$")


def tile_name(scene: str, row: int, col: int) -> str:
    """Name of the tile at pixel offset (row, col) of ``scene``.

    >>> tile_name("s2_vis_06", 256, 1280)
    's2_vis_06_0256_1280'
    """
    return f"{scene}_{row:04d}_{col:04d}"


def parse_tile_name(name: str) -> tuple[str, int, int]:
    """Inverse of :func:`tile_name`.

    >>> parse_tile_name("s2_vis_06_0256_1280")
    ('s2_vis_06', 256, 1280)
    """
    m = _NAME_RE.match(name)
    if not m:
        raise InputError(f"not a tile name of the form <scene>_<row:04d>_<col:04d>: {name!r}")
    return m["scene"], int(m["row"]), int(m["col"])


def _check_tile(tile: int) -> None:
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise InputError(f"tile size must be a positive integer (got {tile!r})")


def pad_to_multiple(image: np.ndarray, tile: int = TILE_SIZE, *, fill: int = 0,
                    nodata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pad an image at the bottom and right to a multiple of ``tile``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
    tile : int
    fill : int
        Value of padded pixels.
    nodata : (H, W) bool ndarray, optional
        Existing no-data mask; padding is added to it as no-data.

    Returns
    -------
    padded : (H', W', ...) ndarray
    nodata : (H', W') bool ndarray
    """
    _check_tile(tile)
    h, w = image.shape[:2]
    hp, wp = -(-h // tile) * tile, -(-w // tile) * tile
    mask = np.zeros((h, w), bool) if nodata is None else nodata
    if mask.shape != (h, w):
        raise InputError(f"no-data mask shape {mask.shape} does not match image {(h, w)}")
    if (hp, wp) == (h, w):
        return image, mask
    pad = [(0, hp - h), (0, wp - w)] + [(0, 0)] * (image.ndim - 2)
    return (np.pad(image, pad, constant_values=fill),
            np.pad(mask, [(0, hp - h), (0, wp - w)], constant_values=True))


def tile_offsets(shape: tuple[int, int], tile: int = TILE_SIZE) -> list[tuple[int, int]]:
    """Top-left pixel offsets of the tiles covering an image of ``shape`` (row-major)."""
    _check_tile(tile)
    h, w = shape[:2]
    return [(r, c) for r in range(0, h, tile) for c in range(0, w, tile)]


def iter_tiles(image: np.ndarray, tile: int = TILE_SIZE) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row, col, view)`` for each tile of an image whose size is a multiple of ``tile``."""
    h, w = image.shape[:2]
    if h % tile or w % tile:
        raise InputError(f"tile size must divide the image size (got {tile} for {h}x{w}); "
                         "pad with pad_to_multiple first")
    for r, c in tile_offsets((h, w), tile):
        yield r, c, image[r:r + tile, c:c + tile]


def split_tiles(image: np.ndarray, scene: str, tile: int = TILE_SIZE, *,
                nodata: np.ndarray | None = None, fill: int = 0
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split a scene into named tiles, padding it first if needed.

    Returns
    -------
    tiles : dict name -> (tile, tile, ...) ndarray (copies)
    nodata : dict name -> (tile, tile) bool ndarray

    Examples
    --------
    >>> import numpy as np
    >>> tiles, _ = split_tiles(np.zeros((2048, 2048, 3), np.uint8), "s")
    >>> len(tiles), next(iter(tiles))
    (64, 's_0000_0000')
    """
    padded, mask = pad_to_multiple(image, tile, fill=fill, nodata=nodata)
    tiles, masks = {}, {}
    for r, c, view in iter_tiles(padded, tile):
        name = tile_name(scene, r, c)
        tiles[name] = view.copy()
        masks[name] = mask[r:r + tile, c:c + tile].copy()
    return tiles, masks


def stitch_tiles(tiles: Mapping[str, np.ndarray], shape: tuple[int, int] | None = None,
                 *, scene: str | None = None) -> np.ndarray:
    """Reassemble named tiles into a scene, cropping padding to ``shape`` if given.

    Tiles may come from :func:`split_tiles` or from files named the same way. Every tile of the
    (padded) grid must be present exactly once.
    """
    if not tiles:
        raise InputError("no tiles to stitch")
    parsed = {}
    for name, arr in tiles.items():
        sc, r, c = parse_tile_name(name)
        if scene is not None and sc != scene:
            continue
        parsed[(r, c)] = arr
    if not parsed:
        raise InputError(f"no tiles of scene {scene!r} to stitch")
    first = next(iter(parsed.values()))
    th, tw = first.shape[:2]
    rows = sorted({r for r, _ in parsed})
    cols = sorted({c for _, c in parsed})
    hp, wp = rows[-1] + th, cols[-1] + tw
    expected = {(r, c) for r in range(0, hp, th) for c in range(0, wp, tw)}
    missing = expected - set(parsed)
    if missing or set(parsed) - expected:
        raise InputError(f"tiles do not form a complete grid: missing {sorted(missing)[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}")
    out = np.empty((hp, wp) + first.shape[2:], first.dtype)
    for (r, c), arr in parsed.items():
        if arr.shape != first.shape:
            raise InputError(f"tile at {(r, c)} has shape {arr.shape}, expected {first.shape}")
        out[r:r + th, c:c + tw] = arr
    if shape is not None:
        h, w = shape[:2]
        if h > hp or w > wp:
            raise InputError(f"target shape {shape} larger than the tiled grid {(hp, wp)}")
        out = out[:h, :w]
    return out
