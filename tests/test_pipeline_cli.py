"""The `seaice` command line as a user hands it files: 8-bit PNG, 16-bit TIFF, folders, bad files."""

import json
import subprocess
import sys

import cv2
import numpy as np

from seaice_utils.cli import main
from seaice_utils.labelling.pipeline import is_done, output_paths
from seaice_utils.core.scenes import write_png


def scene_rgb(size=96):
    img = np.full((size, size, 3), 235, np.uint8)
    img[10:30, 10:30] = 120
    img[:, 60:64] = 10
    return img


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_label_png_writes_class_map_palette_and_sidecar(tmp_path):
    write_png(tmp_path / "in" / "s1.png", scene_rgb())
    assert main(["label", str(tmp_path / "in" / "s1.png"), str(tmp_path / "out"),
                 "--no-progress"]) == 0
    p = output_paths(tmp_path / "out", "s1")
    cls = read(p["classes"])
    assert cls.dtype == np.uint8 and cls.shape == (96, 96)
    assert set(np.unique(cls)) <= {0, 1, 2}
    assert (cls[:, 60:64] == 0).all()
    pal = read(p["labels"])[..., ::-1]
    assert pal[0, 60].tolist() == [0, 255, 0]   # water green
    meta = json.loads(p["sidecar"].read_text())
    assert meta["stretch"].startswith("none") and meta["filter"]["median_kernel"] == 155


def test_label_16bit_tiff_with_band_order_records_stretch(tmp_path):
    refl = np.zeros((64, 64, 4), np.uint16)       # bands: B2, B3, B4, B8
    refl[..., 2] = 9000                           # red
    refl[..., 1] = 9000
    refl[..., 0] = 9000
    refl[:, :10, :3] = 500                        # dark water
    tif = tmp_path / "refl.tif"
    import rasterio

    with rasterio.open(tif, "w", driver="GTiff", width=64, height=64, count=4,
                       dtype="uint16") as dst:
        dst.write(np.moveaxis(refl, -1, 0))
    assert main(["label", str(tif), str(tmp_path / "out"), "--bands", "3,2,1", "--no-filter",
                 "--no-progress"]) == 0
    p = output_paths(tmp_path / "out", "refl")
    meta = json.loads(p["sidecar"].read_text())
    assert meta["dtype_in"] == "uint16" and meta["bands_rgb"] == [3, 2, 1]
    assert "10000" in meta["stretch"] and meta["filter"] is None
    cls = read(p["classes"])
    assert (cls[:, :10] == 0).all() and (cls[:, 10:] == 2).all()


def test_folder_with_corrupt_and_wrong_files_reports_them_and_does_the_rest(tmp_path, capsys):
    src = tmp_path / "in"
    write_png(src / "a.png", scene_rgb())
    write_png(src / "b.png", scene_rgb())
    (src / "broken.png").write_bytes(b"\x89PNG garbage")
    (src / "notes.txt").write_text("ignored: not an image suffix")
    rc = main(["label", str(src), str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "broken.png" in out and "2 labelled" in out and "1 failed" in out
    assert is_done(tmp_path / "out", "a") and is_done(tmp_path / "out", "b")
    assert not any(tmp_path.joinpath("out").glob("broken*"))
    assert not any(tmp_path.joinpath("out").glob("*.tmp"))


def test_resume_skips_finished_and_redoes_damaged(tmp_path, capsys):
    src = tmp_path / "in"
    for n in "abc":
        write_png(src / f"{n}.png", scene_rgb())
    assert main(["label", str(src), str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    output_paths(tmp_path / "out", "b")["sidecar"].write_text("{truncated")
    before = output_paths(tmp_path / "out", "a")["classes"].stat().st_mtime_ns
    # b.json is no longer the sidecar seaice wrote: refused by name before any work
    assert main(["label", str(src), str(tmp_path / "out"), "--resume", "--no-progress"]) == 2
    assert "b.json" in capsys.readouterr().err
    assert main(["label", str(src), str(tmp_path / "out"), "--resume", "--overwrite",
                 "--no-progress"]) == 0
    assert "1 labelled, 2 already done" in capsys.readouterr().out
    assert output_paths(tmp_path / "out", "a")["classes"].stat().st_mtime_ns == before
    assert is_done(tmp_path / "out", "b")


def test_filter_on_tile_changes_result_and_params_file_is_used(tmp_path):
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(180, 40, (300, 300, 3)), 0, 255).astype(np.uint8)
    write_png(tmp_path / "s.png", img)
    prof = tmp_path / "p.yml"
    prof.write_text("filter: {median_kernel: 31}\n")
    assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "o1"), "--params", str(prof),
                 "--no-progress"]) == 0
    assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "o2"), "--params", str(prof),
                 "--filter-on", "tile", "--no-progress"]) == 0
    m1 = json.loads(output_paths(tmp_path / "o1", "s")["sidecar"].read_text())
    m2 = json.loads(output_paths(tmp_path / "o2", "s")["sidecar"].read_text())
    assert m1["filter"]["median_kernel"] == 31 and m2["filter"]["apply_to"] == "tile"
    assert not np.array_equal(read(output_paths(tmp_path / "o1", "s")["classes"]),
                              read(output_paths(tmp_path / "o2", "s")["classes"]))


def test_bad_params_and_missing_input_exit_2_with_message(tmp_path, capsys):
    prof = tmp_path / "p.yml"
    prof.write_text("filter: {median_kernel: 10}\n")
    write_png(tmp_path / "s.png", scene_rgb())
    assert main(["label", str(tmp_path / "s.png"), str(tmp_path / "o"), "--params", str(prof)]) == 2
    assert "filter.median_kernel" in capsys.readouterr().err
    assert main(["label", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "seaice_utils", "params", "quick"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "median_kernel: 155" in r.stdout
