import numpy as np
import pytest

from seaice_utils.errors import InputError
from seaice_utils.core.tiling import (pad_to_multiple, parse_tile_name, split_tiles, stitch_tiles,
                                      tile_name)


def test_2048_scene_gives_64_named_tiles_and_stitches_exactly(rng):
    img = rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    tiles, masks = split_tiles(img, "s2_vis_06")
    assert len(tiles) == 64
    assert "s2_vis_06_0256_1280" in tiles
    assert np.array_equal(tiles["s2_vis_06_0256_1280"], img[256:512, 1280:1536])
    assert not any(m.any() for m in masks.values())
    assert np.array_equal(stitch_tiles(tiles, img.shape), img)


def test_non_multiple_size_is_padded_with_nodata_and_cropped_back(rng):
    img = rng.integers(1, 256, (300, 520), dtype=np.uint8)
    tiles, masks = split_tiles(img, "s", 256)
    assert len(tiles) == 2 * 3
    m = masks["s_0256_0512"]
    assert m[:44, :8].sum() == 0 and m[44:, :].all() and m[:, 8:].all()
    assert tiles["s_0256_0512"][50, 50] == 0
    assert np.array_equal(stitch_tiles(tiles, img.shape), img)


def test_pad_keeps_existing_nodata():
    img = np.ones((3, 3), np.uint8)
    nd = np.zeros((3, 3), bool)
    nd[0, 0] = True
    p, m = pad_to_multiple(img, 4, nodata=nd)
    assert p.shape == (4, 4) and m[0, 0] and m[3, :].all() and m[:, 3].all() and m.sum() == 8


def test_tile_names_roundtrip():
    assert parse_tile_name(tile_name("a_b", 0, 12288)) == ("a_b", 0, 12288)
    with pytest.raises(InputError, match="tile name"):
        parse_tile_name("scene_12_34")


def test_stitch_detects_missing_tile(rng):
    tiles, _ = split_tiles(rng.integers(0, 9, (512, 512), dtype=np.uint8), "s")
    del tiles["s_0256_0000"]
    with pytest.raises(InputError, match="missing"):
        stitch_tiles(tiles)


def test_bad_tile_size():
    with pytest.raises(InputError, match="tile size"):
        split_tiles(np.zeros((4, 4), np.uint8), "s", 0)
