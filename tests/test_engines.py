"""Local engines: identical bytes, every tile exactly once, failures by name, resume, CLI, reader."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.core.ledger import ForeignFilesError
from seaice_utils.core.png import encode_png
from seaice_utils.core.scenes import read_scene, write_png
from seaice_utils.core.tiling import split_tiles
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.engines import Task, run_job
from seaice_utils.engines.base import (ENGINES, JobSummary, check_engine, chunk,
                                       default_chunk_size, partition)
from seaice_utils.errors import InputError, ParamsError, SeaIceError
from seaice_utils.labelling import pipeline
from seaice_utils.labelling.jobs import LabelTask, run_label_job
from seaice_utils.labelling.pipeline import (LabelOptions, is_done, output_paths, read_input,
                                             scene_from_bytes)
from seaice_utils.params import load_params, load_params_dict

BAD = {"broken_0000_0000.png": "corrupt", "cut_0000_0000.png": "truncated",
       "small_0000_0000.png": "wrong size"}


def make_tile_folder(folder: Path, n_scenes: int = 2) -> list[str]:
    """Tiles of small synthetic scenes, plus a corrupt, a truncated and a wrong-sized tile."""
    names = []
    for seed in range(n_scenes):
        sc = synthesize_scene(40 + seed, size=512, cloud_cover=0.3 * seed, shadow_cover=0.1 * seed,
                              nodata_wedge=seed == 1)
        tiles, _ = split_tiles(sc.image, sc.name, 256, nodata=sc.nodata)
        for name, arr in tiles.items():
            write_png(folder / f"{name}.png", arr)
            names.append(name)
    (folder / "broken_0000_0000.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    good = (folder / f"{names[0]}.png").read_bytes()
    (folder / "cut_0000_0000.png").write_bytes(good[: len(good) // 2])
    write_png(folder / "small_0000_0000.png", np.full((200, 200, 3), 180, np.uint8))
    (folder / "readme.txt").write_text("not an image: ignored")
    return names


@pytest.fixture(scope="module")
def tile_folder(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("tiles")
    return folder, make_tile_folder(folder)


OPTS = LabelOptions(expect_size=(256, 256))


def outputs_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_chunks_and_partitions_hold_every_item_exactly_once():
    for n in range(0, 30):
        items = [f"t{i}" for i in range(n)]
        for k in range(1, 8):
            parts = partition(items, k)
            assert len(parts) == k and sum(parts, []) == items
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
            chunks = chunk(items, k)
            assert sum(chunks, []) == items and all(0 < len(c) <= k for c in chunks)
    assert default_chunk_size(4224, 2) == 64 and default_chunk_size(10, 2) == 1
    with pytest.raises(InputError, match="got 0"):
        chunk([1, 2], 0)


def test_sequential_and_multiprocessing_write_byte_identical_files(tile_folder, tmp_path):
    folder, names = tile_folder
    seq = run_label_job(folder, tmp_path / "seq", OPTS, engine="sequential", progress=False)
    mp = run_label_job(folder, tmp_path / "mp", OPTS, engine="multiprocessing", workers=2,
                       chunk_size=1, progress=False)
    for s in (seq, mp):
        assert isinstance(s, JobSummary) and s.n_inputs == len(names) + len(BAD)
        assert s.done == names                       # input order, whatever finished first
        assert sorted(n for n, _ in s.failures) == sorted(BAD)
        assert not s.ok and "3 failed" in s.describe()
    errors = dict(mp.failures)
    assert "expected 256x256" in errors["small_0000_0000.png"]
    assert "corrupt" in errors["broken_0000_0000.png"]
    a, b = outputs_of(tmp_path / "seq"), outputs_of(tmp_path / "mp")
    assert a == b and len(a) == 3 * len(names)
    assert not any(n.startswith(("broken", "cut", "small")) or n.endswith(".tmp") for n in a)
    # the labels are the pipeline's: a file labelled alone gives the same bytes
    one = folder / f"{names[3]}.png"
    pipeline.label_file(one, tmp_path / "one", OPTS,
                        fingerprint=LabelTask(tmp_path / "one", OPTS).fingerprint(one))
    for p in (tmp_path / "one").iterdir():
        assert p.read_bytes() == a[p.name]


def test_multiprocessing_labels_every_tile_exactly_once(tile_folder, tmp_path, monkeypatch):
    """Workers are forked after the patch, so each call is logged (append-only file)."""
    folder, names = tile_folder
    log = tmp_path / "calls.log"
    real = pipeline.label_file

    def logged(path, out_dir, opts=LabelOptions(), **kw):
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(fd, f"{Path(path).name}\n".encode())
        os.close(fd)
        return real(path, out_dir, opts, **kw)

    monkeypatch.setattr(pipeline, "label_file", logged)
    s = run_label_job(folder, tmp_path / "out", OPTS, engine="multiprocessing", workers=3,
                      chunk_size=2, progress=False, start_method="fork")
    calls = log.read_text().split()
    assert sorted(calls) == sorted(p.name for p in folder.glob("*.png"))   # once each
    assert len(s.done) == len(names)


def test_resume_skips_complete_outputs_and_redoes_damaged_ones(tile_folder, tmp_path):
    folder, names = tile_folder
    out = tmp_path / "out"
    run_label_job(folder, out, OPTS, engine="multiprocessing", workers=2, progress=False)
    output_paths(out, names[0])["sidecar"].write_text("{half a sidecar")
    output_paths(out, names[1])["classes"].unlink()
    kept = output_paths(out, names[2])["labels"].stat().st_mtime_ns
    with pytest.raises(ForeignFilesError, match="half|json"):   # not the sidecar seaice wrote
        run_label_job(folder, out, OPTS, engine="multiprocessing", workers=2, resume=True,
                      progress=False)
    s = run_label_job(folder, out, OPTS, engine="multiprocessing", workers=2, resume=True,
                      progress=False, overwrite=True)
    assert sorted(s.done) == sorted(names[:2])
    assert sorted(s.skipped) == sorted(names[2:])
    assert len(s.failures) == len(BAD)               # bad inputs are never "done"
    assert output_paths(out, names[2])["labels"].stat().st_mtime_ns == kept
    assert all(is_done(out, n) for n in names)


def test_cli_engine_flags_exit_non_zero_with_a_summary(tile_folder, tmp_path, capsys):
    folder, names = tile_folder
    rc = main(["label", str(folder), str(tmp_path / "o"), "--engine", "multiprocessing",
               "--workers", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"{len(names)} labelled, 0 already done, 3 failed" in out
    assert all(f"FAILED {b}" in out for b in BAD)
    assert "expected 256x256" in out                  # tile names -> tile size expected
    rc = main(["label", str(folder), str(tmp_path / "o"), "--engine", "multiprocessing",
               "--resume", "--expect-size", "none", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1 and f"1 labelled, {len(names)} already done, 2 failed" in out
    assert main(["label", str(folder), str(tmp_path / "o"), "--workers", "-1"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(["label", str(folder), str(tmp_path / "o"), "--spark-master", "local[2]"]) == 2


def test_bad_engine_arguments(tile_folder, tmp_path):
    folder, _ = tile_folder
    with pytest.raises(ParamsError, match="engine must be one of"):
        run_label_job(folder, tmp_path, engine="threads")
    with pytest.raises(ParamsError, match="workers must be"):
        run_label_job(folder, tmp_path, engine="multiprocessing", workers=-1)
    with pytest.raises(ParamsError, match="only apply to the spark engine"):
        run_label_job(folder, tmp_path, engine="sequential", master="local[2]")
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "a.png").write_bytes(b"x")
    (tmp_path / "a.tif").write_bytes(b"x")
    with pytest.raises(InputError, match="same outputs 'a'"):
        run_label_job([twin / "a.png", tmp_path / "a.tif"], tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        run_label_job(tmp_path / "empty", tmp_path / "o2")
    assert ENGINES == ("sequential", "multiprocessing", "spark")


def png_variants(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    rgb[:5, :7] = 0                                   # no-data (0 in every band)
    out = {"rgb": tmp_path / "rgb.png"}
    write_png(out["rgb"], rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[10:12, 10:20, 3] = 0                          # transparent -> no-data
    out["rgba"] = tmp_path / "rgba.png"
    cv2.imwrite(str(out["rgba"]), rgba[..., [2, 1, 0, 3]])
    out["grey"] = tmp_path / "grey.png"
    cv2.imwrite(str(out["grey"]), rgb[..., 0])
    out["16bit"] = tmp_path / "sixteen.png"
    cv2.imwrite(str(out["16bit"]), (rgb.astype(np.uint16) * 40)[..., ::-1])
    out["own encoder"] = tmp_path / "own.png"
    out["own encoder"].write_bytes(encode_png(rgb))
    return out


def test_fast_reader_gives_what_read_scene_gives(tmp_path):
    for kind, path in png_variants(tmp_path).items():
        ref = read_scene(path)
        for got in (read_input(path), scene_from_bytes(path.read_bytes(), path.name)):
            np.testing.assert_array_equal(got.rgb, ref.rgb, err_msg=kind)
            np.testing.assert_array_equal(got.nodata, ref.nodata, err_msg=kind)
            meta = {k: v for k, v in ref.meta.items() if k != "path"}
            assert {k: v for k, v in got.meta.items() if k != "path"} == meta, kind
            assert got.name == path.stem
    assert read_input(tmp_path / "rgb.png").nodata.sum() == 35
    zero = LabelOptions(nodata=0.0)                    # `--nodata 0` on the command line
    assert read_input(tmp_path / "rgb.png", zero).meta["nodata_value"] == \
        read_scene(tmp_path / "rgb.png", nodata=0.0).meta["nodata_value"] == 0.0


def test_scene_from_bytes_names_the_file_not_a_temporary_path():
    with pytest.raises(InputError, match="broken.tif") as e:
        scene_from_bytes(b"II*\x00 garbage", "broken.tif")
    assert "/tmp" not in str(e.value) and "seaice-" not in str(e.value)
    with pytest.raises(InputError, match="expected 8x8"):
        scene_from_bytes(encode_png(np.zeros((4, 4, 3), np.uint8)), "x.png",
                         LabelOptions(expect_size=(8, 8)))


def test_encode_png_round_trips_and_is_deterministic():
    rng = np.random.default_rng(9)
    for img in (rng.integers(0, 256, (17, 23), dtype=np.uint8),
                rng.integers(0, 256, (17, 23, 3), dtype=np.uint8), np.zeros((1, 1), np.uint8)):
        data = encode_png(img)
        assert data == encode_png(img.copy())
        dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(dec if img.ndim == 2 else dec[..., ::-1], img)
    with pytest.raises(InputError, match="uint8"):
        encode_png(np.zeros((3, 3), np.uint16))


def test_params_engines_section_defaults_and_checks():
    p = load_params("quick")["engines"]
    assert p["processes"][:2] == [1, 2] and p["spark_grid"][0] == [1, 1]
    assert load_params("paper")["engines"]["processes"] == [1, 2, 4, 6, 8]
    with pytest.raises(ParamsError, match="engines.spark_grid"):
        load_params_dict({"engines": {"spark_grid": [[1, 0]]}})
    with pytest.raises(ParamsError, match="engines.engine"):
        load_params_dict({"engines": {"engine": "dask"}})


def test_sidecar_records_input_and_fractions(tile_folder, tmp_path):
    folder, names = tile_folder
    fractions = []
    for name in names[4:]:                           # the scene with a no-data wedge
        meta = pipeline.label_file(folder / f"{name}.png", tmp_path, OPTS)
        disk = json.loads(output_paths(tmp_path, name)["sidecar"].read_text())
        assert meta == disk and disk["input"] == f"{name}.png" and disk["shape"] == [256, 256]
        assert abs(sum(disk["class_fractions"].values()) - 1) < 1e-9
        fractions.append(disk["nodata_fraction"])
    assert any(0 < f < 1 for f in fractions)


def test_bench_tables_on_a_tiny_tile_set(tmp_path):
    from benchmarks.bench_labelling import e2e_benchmark, paper_tiles
    from seaice_utils import timing

    files = paper_tiles(tmp_path / "b", n_scenes=1, size=512, progress=False)
    assert [f.name for f in files] == [f"synth_0000_{r:04d}_{c:04d}.png"
                                       for r in (0, 256) for c in (0, 256)]
    mtime = files[0].stat().st_mtime_ns
    assert paper_tiles(tmp_path / "b", n_scenes=1, size=512, progress=False) == files
    assert files[0].stat().st_mtime_ns == mtime          # resumed, not rewritten
    per_tile = timing.kernel_timings(timing.sample_scenes(files, 2), repeats=2)
    k = timing.summarise_kernels(per_tile).set_index("kernel")
    assert k.loc["segmentation", "tiles"] == 2 and k["identical"].all()
    assert (k["reference_ms"] > 0).all() and (k["speedup"] > 0).all()
    t1 = timing.table1_multiprocessing(files, tmp_path / "w", LabelOptions(), processes=[1, 2])
    assert t1["processes"].tolist() == [1, 2] and (t1["failed"] == 0).all()
    assert t1["oversubscribed"].tolist() == [1 > os.cpu_count(), 2 > os.cpu_count()]
    assert (t1["speedup"] * t1["parallel_s"] - t1["sequential_s"]).abs().max() < 1e-9
    e2e = e2e_benchmark(files, tmp_path / "e", LabelOptions(), workers=2)
    assert e2e["engine"].tolist() == ["reference", "sequential", "multiprocessing",
                                      "multiprocessing"]
    assert (e2e["labelled"] == 4).all() and e2e["speedup_vs_reference"].iloc[0] == 1
    fig = timing.speedup_figure(t1["processes"], {"run": t1["speedup"]}, xlabel="p", title="t",
                                cores=1, reference={"paper": ([1, 2], [1, 2])})
    assert len(fig.axes[0].lines) >= 3


class _Upper(Task):
    """A generic task for the engine layer: the upper-cased text of a file, no outputs."""

    desc, unit, verb = "reading", "file", "read"

    def setup(self, *, engine, workers, shipped):
        self.pid = os.getpid()
        return {"engine": engine, "workers": workers}

    def state(self, path):
        return "done" if Path(path).name.startswith("done") else "missing"

    def run(self, path):
        text = Path(path).read_text()
        if text == "bad":
            raise SeaIceError(f"{Path(path).name}: bad text")
        return text.upper(), os.getpid() == self.pid


@pytest.mark.parametrize("engine", ["sequential", "multiprocessing"])
def test_run_job_runs_any_task_in_input_order(tmp_path, engine):
    files = []
    for i, text in enumerate(["a", "bad", "c", "d", "e"]):
        files.append(tmp_path / f"f{i}.txt")
        files[-1].write_text(text)
    (tmp_path / "done_0.txt").write_text("z")
    files.append(tmp_path / "done_0.txt")
    s = run_job(_Upper(), files, engine=engine, workers=2, chunk_size=1, resume=True,
                progress=False)
    assert s.done == ["f0", "f2", "f3", "f4"] and s.skipped == ["done_0"]
    assert [r[0] for r in s.results] == ["A", "C", "D", "E"]
    assert all(r[1] for r in s.results)               # set up in the process that ran it
    assert s.failures == [("f1.txt", "f1.txt: bad text")]
    assert "4 read, 1 already done, 1 failed" in s.describe()
    workers = 1 if engine == "sequential" else 2
    assert set(map(str, s.setups.values())) == {str({"engine": engine, "workers": workers})}
    assert len(s.setups) <= workers and s.n_inputs == 6 and s.engine == engine


def test_check_engine_has_one_error_for_bad_engines_and_workers():
    check_engine("spark", 3)
    with pytest.raises(ParamsError, match="engine must be one of sequential, multiprocessing, "
                                          "spark"):
        check_engine("threads", 1)
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ParamsError, match="workers must be an integer >= 1"):
            check_engine("multiprocessing", bad)
    with pytest.raises(ParamsError, match="only apply to the spark engine"):
        run_job(_Upper(), [], engine="sequential", batch_size=4)


def test_prediction_jobs_reject_a_bad_engine_like_labelling_jobs(tmp_path):
    from seaice_utils.inference.predict import predict_inputs

    with pytest.raises(ParamsError, match="engine must be one of"):
        predict_inputs(tmp_path / "model.keras", tmp_path, tmp_path / "o", engine="threads")
    with pytest.raises(ParamsError, match="engine must be one of"):
        run_label_job(tmp_path, tmp_path / "o", engine="threads")
