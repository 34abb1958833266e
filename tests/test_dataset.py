"""Dataset folders: synthetic generation (resumable), catalogue, tile layers."""

import csv

import cv2
import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.data.dataset import (ensure_dataset, ensure_synthetic_dataset, load_cloud,
                                       load_scene, load_truth, synthetic_specs)
from seaice_utils.errors import InputError
from seaice_utils.params import load_params_dict
from seaice_utils.data.tiles import LAYERS, prepare_tiles, read_tile_index, tile_path
from seaice_utils.core.tiling import stitch_tiles


def tiny(n=2, size=192, **data):
    return load_params_dict({"global": {"progress": False, "tile_size": 64},
                             "data": {"n_scenes": n, "scene_size": size, "cloudy_fraction": 0.5,
                                      "nodata_wedge_fraction": 0.5, **data}})


def test_specs_spread_clouds_and_wedges_deterministically():
    specs = synthetic_specs(tiny(n=4))
    assert [s["cloud_cover"] > 0 for s in specs] == [True, False, True, False]
    assert sum(s["nodata_wedge"] for s in specs) == 2
    assert specs == synthetic_specs(tiny(n=4))
    assert len({s["seed"] for s in specs}) == 4


def test_generation_is_resumable_and_catalogued(tmp_path):
    p = tiny()
    recs = ensure_synthetic_dataset(tmp_path, p)
    assert [r.name for r in recs] == ["synth_0000", "synth_0001"]
    sc = load_scene(recs[0])
    assert sc.shape == (192, 192) and load_truth(recs[0]).shape == (192, 192)
    assert set(np.unique(load_cloud(recs[0]))) <= {0, 1, 2}
    stamp = recs[1].scene_path.stat().st_mtime_ns
    recs[0].truth_path.unlink()                      # an interrupted run lost one file
    again = ensure_synthetic_dataset(tmp_path, p)
    assert again[0].truth_path.is_file()
    assert recs[1].scene_path.stat().st_mtime_ns == stamp   # finished scene not redone
    with open(tmp_path / "catalogue.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["synth_0000", "synth_0001"]
    assert float(rows[0]["cloud_fraction"]) > 0.05 and float(rows[1]["cloud_fraction"]) == 0


def test_truth_nodata_matches_black_wedge(tmp_path):
    recs = ensure_synthetic_dataset(tmp_path, tiny(n=2))
    for r in recs:
        sc, truth = load_scene(r), load_truth(r)
        assert np.array_equal(sc.nodata, truth == 255)


def test_folder_source_needs_a_folder(tmp_path):
    p = tiny()
    p["data"]["source"] = "folder"
    with pytest.raises(InputError, match="data.folder"):
        ensure_dataset(tmp_path, p)
    p["data"]["folder"] = str(tmp_path / "none")
    with pytest.raises(InputError, match="does not exist"):
        ensure_dataset(tmp_path, p)


def test_tiles_cover_every_layer_and_stitch_back(tmp_path):
    p = tiny(n=1, size=160)                          # 160 is not a multiple of 64: padding
    recs = ensure_synthetic_dataset(tmp_path / "data", p)
    rows = prepare_tiles(recs, tmp_path / "tiles", p)
    assert len(rows) == 9 and rows == read_tile_index(tmp_path / "tiles")
    for layer in LAYERS:
        assert all(tile_path(tmp_path / "tiles", layer, r["tile"]).is_file() for r in rows)
    tiles = {r["tile"]: cv2.imread(str(tile_path(tmp_path / "tiles", "truth", r["tile"])),
                                   cv2.IMREAD_UNCHANGED) for r in rows}
    truth = stitch_tiles(tiles, (160, 160))
    assert np.array_equal(truth, load_truth(recs[0]))
    edge = [r for r in rows if r["row"] == 128 and r["col"] == 128][0]
    assert edge["nodata_fraction"] > 0.5              # mostly padding
    pad = cv2.imread(str(tile_path(tmp_path / "tiles", "auto_filtered", edge["tile"])),
                     cv2.IMREAD_UNCHANGED)
    assert (pad[40:, :] == 255).all()                # padding is no-data in class maps


def test_tiles_resume_from_scene_markers(tmp_path):
    p = tiny(n=2, size=128)
    recs = ensure_synthetic_dataset(tmp_path / "data", p)
    prepare_tiles(recs[:1], tmp_path / "tiles", p)
    first = tile_path(tmp_path / "tiles", "rgb", "synth_0000_0000_0000")
    stamp = first.stat().st_mtime_ns
    rows = prepare_tiles(recs, tmp_path / "tiles", p)
    assert len(rows) == 8 and first.stat().st_mtime_ns == stamp


def test_seaice_synth_command(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "d"), "--n-scenes", "1", "--size", "96", "--seed", "3",
                 "--no-progress"]) == 0
    assert (tmp_path / "d" / "scenes" / "synth_3000.png").is_file()
    assert main(["synth", str(tmp_path / "d"), "--cloud-cover", "2"]) == 2
    assert "data.cloud_cover" in capsys.readouterr().err
