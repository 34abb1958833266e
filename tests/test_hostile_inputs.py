"""Every writing command against hostile inputs: nothing of the user's lost, no traceback.

Each case runs the ``seaice`` command line (in this process, or in a subprocess where stderr must
be checked whole) and asserts the documented exit status (0 done, 1 some inputs failed and are
listed, 2 refused before any work), one-line messages, the user's files byte-identical and the
good inputs done. Label runs on every engine (Spark ``local[2]`` marked slow).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from seaice_utils.cli import main
from seaice_utils.core.ledger import LEDGER
from seaice_utils.core.scenes import write_png
from seaice_utils.data.season import make_season
from seaice_utils.data.synthetic import synthesize_scene

ENGINES = ["sequential", "multiprocessing",
           pytest.param("spark", marks=[pytest.mark.slow, pytest.mark.skipif(
               shutil.which("java") is None, reason="needs Java for Spark")])]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _one_line(err: str) -> None:
    assert "Traceback" not in err
    lines = [x for x in err.strip().splitlines() if x.startswith("seaice")]
    assert len(lines) == 1, err


def _scenes(folder: Path, n: int = 2, size: int = 96) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"scene{i}.png"
        write_png(p, synthesize_scene(80 + i, size=size).image)
        out.append(p)
    return out


def _lying_png(path: Path, side: int = 50000) -> None:
    """A PNG whose header claims side x side RGB pixels, with a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _engine_args(engine: str) -> list[str]:
    return ["--engine", engine, "--workers", "2"] if engine != "sequential" else []


# ------------------------------------------------------------------ ownership: label
@pytest.mark.parametrize("engine", ENGINES)
def test_label_into_its_input_folder_keeps_the_users_json(tmp_path, capsys, engine):
    d = tmp_path / "in"
    _scenes(d, 1)
    (d / "scene0.json").write_text('{"my": "notes"}')
    before = _files(d)
    rc = main(["label", str(d), str(d), "--no-progress", *_engine_args(engine)])
    err = capsys.readouterr().err
    assert rc == 2 and "scene0.json" in err and "--overwrite" in err
    _one_line(err)
    assert _files(d) == before                         # nothing written, nothing replaced


@pytest.mark.parametrize("engine", ENGINES)
def test_label_never_replaces_files_it_did_not_write(tmp_path, capsys, engine):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 2)
    out.mkdir()
    (out / "scene1_labels.png").write_bytes(b"my drawing")
    (out / "scene1.json").write_text("{}")
    rc = main(["label", str(src), str(out), "--no-progress", *_engine_args(engine)])
    err = capsys.readouterr().err
    assert rc == 2 and "scene1_labels.png" in err and "scene1.json" in err
    assert (out / "scene1_labels.png").read_bytes() == b"my drawing"
    assert not (out / "scene0_classes.png").exists()  # refused before any work
    rc = main(["label", str(src), str(out), "--no-progress", "--overwrite",
               *_engine_args(engine)])
    assert rc == 0 and (out / "scene1_labels.png").read_bytes()[:4] == b"\x89PNG"
    # seaice's own outputs are replaced on a rerun without --overwrite
    assert main(["label", str(src), str(out), "--no-progress", *_engine_args(engine)]) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_label_lists_bad_inputs_and_resumes_to_a_clean_runs_bytes(tmp_path, capsys, engine):
    src = tmp_path / "in"
    _scenes(src, 3)
    clean = tmp_path / "clean"
    assert main(["label", str(src), str(clean), "--no-progress", "-q"]) == 0
    good = (src / "scene2.png").read_bytes()
    (src / "scene2.png").write_bytes(good[:200])                      # truncated
    _lying_png(src / "huge.png")
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["label", str(src), str(out), "--no-progress", *_engine_args(engine)])
    cap = capsys.readouterr()
    assert rc == 1 and "Traceback" not in cap.err + cap.out
    for name in ("scene2.png", "huge.png", "empty.png"):
        assert f"FAILED {name}" in cap.out
    assert (out / "scene0.json").is_file() and (out / "scene1.json").is_file()
    (src / "scene2.png").write_bytes(good)
    for f in ("huge.png", "empty.png"):
        (src / f).unlink()
    assert main(["label", str(src), str(out), "--resume", "--no-progress", "-q"]) == 0
    assert _files(out) == _files(clean)


# ------------------------------------------------------------------ predict
@pytest.fixture
def model(tiny_unet):
    return tiny_unet


PREDICT_ENGINES = ["sequential", pytest.param("multiprocessing", marks=pytest.mark.slow),
                   *ENGINES[2:]]


@pytest.mark.parametrize("engine", PREDICT_ENGINES)
def test_predict_one_bad_file_never_stops_the_others(tmp_path, model, engine):
    src, out = tmp_path / "in", tmp_path / "out"
    _scenes(src, 3)
    _lying_png(src / "huge.png")
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish")
    mine = out / "scene0_labels.png"
    out.mkdir()
    mine.write_bytes(b"mine")
    r = subprocess.run([sys.executable, "-m", "seaice_utils", "predict", str(model), str(src),
                        str(out), "-q"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "scene0_labels.png" in r.stderr and "--overwrite" in r.stderr
    _one_line(r.stderr)
    assert mine.read_bytes() == b"mine"
    mine.unlink()
    r = subprocess.run([sys.executable, "-m", "seaice_utils", "predict", str(model), str(src),
                        str(out), "-q", *_engine_args(engine)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "3 predicted" in r.stdout
    assert "FAILED huge.png" in r.stdout and "50000 x 50000" in r.stdout
    assert "FAILED corrupt.png" in r.stdout
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 4                                # header + the 3 good scenes


def test_predict_refuses_a_wrong_model_before_any_scene(tmp_path):
    src = tmp_path / "in"
    _scenes(src, 1)
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    r = subprocess.run([sys.executable, "-m", "seaice_utils", "predict", str(bad), str(src),
                        str(tmp_path / "out"), "-q"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "bad.keras" in r.stderr
    _one_line(r.stderr)
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


# ------------------------------------------------------------------ disk full
def _tiny_tmpfs(path: Path, size: str = "40k") -> bool:
    path.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def test_a_full_disk_is_one_line_and_nothing_half_published(tmp_path):
    out = tmp_path / "full"
    if not _tiny_tmpfs(out):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        src = tmp_path / "in"
        _scenes(src, 3, size=384)
        r = subprocess.run([sys.executable, "-m", "seaice_utils", "label", str(src), str(out),
                            "-q"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr
        assert f"no space left on {out}" in r.stdout
        for side in out.glob("*.json"):              # a sidecar only for a complete set
            meta = json.loads(side.read_text())
            for rec in meta["outputs"].values():
                assert (out / rec["file"]).stat().st_size == rec["bytes"]
        assert not list(out.glob(".*.tmp"))          # no temporary left behind
    finally:
        subprocess.run(["umount", str(out)], capture_output=True, timeout=20)


# ------------------------------------------------------------------ season
@pytest.fixture(scope="module")
def seasons(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_season")
    return make_season(root / "a", 5, n_dates=12, size=128), make_season(
        root / "b", 6, n_dates=14, size=128), root


def test_a_second_season_never_mixes_with_the_first(seasons, tmp_path, capsys):
    a, b, _ = seasons
    out = tmp_path / "out"
    assert main(["season", str(b.root / "season.csv"), str(out), "--no-progress", "-q"]) == 0
    first = _files(out)
    rc = main(["season", str(a.root / "season.csv"), str(out), "--no-progress", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "another season" in err and "--overwrite" in err
    _one_line(err)
    assert _files(out) == first
    assert main(["season", str(a.root / "season.csv"), str(out), "--no-progress", "-q",
                 "--overwrite"]) == 0
    clean = tmp_path / "clean"
    assert main(["season", str(a.root / "season.csv"), str(clean), "--no-progress", "-q"]) == 0
    dates = sorted(p.name for p in (out / "dates").glob("*.tif"))
    rows = (out / "season_areas.csv").read_text().splitlines()[1:]
    assert len(dates) == len(rows) == len(set(a.dates))   # no date of the other season left
    assert _files(out) == _files(clean)              # as if the folder had been empty
    # the same season again redoes nothing and changes nothing
    assert main(["season", str(a.root / "season.csv"), str(out), "--no-progress"]) == 0
    assert f"0 labelled, {len(list((a.root / 'scenes').glob('*.tif')))} already done" in \
        capsys.readouterr().out
    assert _files(out) == _files(clean)


def test_a_missing_cloud_mask_is_an_error_unless_the_profile_says_otherwise(seasons, tmp_path,
                                                                            capsys):
    a, _, _ = seasons
    masks = tmp_path / "masks"
    masks.mkdir()
    for row in _csv(a.root / "season.csv"):       # masks named like their scenes
        shutil.copy(a.root / row["cloud_mask"], masks / Path(row["scene"]).name)
    scenes = sorted((a.root / "scenes").glob("*.tif"))
    victim = scenes[0].name
    (masks / victim).unlink()
    cmd = ["season", str(a.root / "scenes"), str(tmp_path / "o"), "--cloud-masks", str(masks),
           "--no-progress", "-q"]
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert victim in err and "season.missing_cloud_mask" in err
    _one_line(err)
    assert not (tmp_path / "o" / "scenes").exists()  # refused before any work
    assert main(cmd + ["--set", "season.missing_cloud_mask=unobserved"]) == 0
    assert main(cmd + ["--set", "season.missing_cloud_mask=clear", "--overwrite"]) == 0


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("engine", ENGINES)
def test_season_lists_an_unreadable_scene_and_does_the_others(seasons, tmp_path, capsys,
                                                              engine):
    a, _, _ = seasons
    folder = tmp_path / "scenes"
    shutil.copytree(a.root / "scenes", folder)
    bad = sorted(folder.glob("*.tif"))[1]
    bad.write_bytes(b"II*\x00garbage")
    rc = main(["season", str(folder), str(tmp_path / "o"), "--no-progress", "-q",
               *_engine_args(engine)])
    cap = capsys.readouterr()
    assert rc == 1 and bad.name in cap.err and "Traceback" not in cap.err + cap.out
    assert len((tmp_path / "o" / "season_areas.csv").read_text().splitlines()) > 1


def test_season_checks_its_output_folder_before_reading_anything(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    rc = main(["season", str(tmp_path / "no_such_input"), str(f), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "is a file" in err and "no_such_input" not in err
    assert f.read_text() == "x"


# ------------------------------------------------------------------ other writing commands
def test_synth_and_reproduce_refuse_to_replace_a_users_files(tmp_path, capsys):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "catalogue.csv").write_text("my own catalogue\n")
    rc = main(["synth", str(ds), "--n-scenes", "1", "--size", "128", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "catalogue.csv" in err and "--overwrite" in err
    assert (ds / "catalogue.csv").read_text() == "my own catalogue\n"
    assert main(["synth", str(ds), "--n-scenes", "1", "--size", "128", "--no-progress",
                 "--overwrite"]) == 0
    assert main(["synth", str(ds), "--n-scenes", "1", "--size", "128", "--no-progress"]) == 0
    assert (ds / LEDGER).is_file()
    outputs = tmp_path / "outputs"
    (outputs / "tables").mkdir(parents=True)
    (outputs / "tables" / "03_table1.csv").write_text("mine\n")
    rc = main(["reproduce", "--outputs", str(outputs), "--only", "02", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "03_table1.csv" in err
    assert (outputs / "tables" / "03_table1.csv").read_text() == "mine\n"
    assert not (outputs / "notebooks").exists()      # no notebook ran


def test_train_and_collect_refuse_to_replace_a_users_files(tmp_path, capsys):
    out = tmp_path / "outputs"
    (out / "models").mkdir(parents=True)
    (out / "models" / "unet_auto.keras").write_bytes(b"my model")
    rc = main(["train", "--outputs", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "unet_auto.keras" in err and "--overwrite" in err
    assert (out / "models" / "unet_auto.keras").read_bytes() == b"my model"
    (out / "data" / "synthetic").mkdir(parents=True)
    (out / "data" / "synthetic" / "catalogue.csv").write_text("mine\n")
    rc = main(["collect", "--outputs", str(out), "--source", "synthetic", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "catalogue.csv" in err
    assert (out / "data" / "synthetic" / "catalogue.csv").read_text() == "mine\n"


def test_a_core_install_never_reads_a_16bit_tiff_as_grey(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    p = tmp_path / "in" / "refl.tif"
    p.parent.mkdir()
    with rasterio.open(p, "w", driver="GTiff", width=64, height=64, count=3,
                       dtype="uint16") as dst:
        dst.write(np.full((3, 64, 64), 3000, np.uint16))
    code = ("import sys; sys.modules['rasterio'] = None\n"
            "from seaice_utils.cli import main\n"
            f"sys.exit(main(['label', {str(p.parent)!r}, {str(tmp_path / 'o')!r}, '-q']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    assert "rasterio" in r.stdout + r.stderr
    assert not list((tmp_path / "o").glob("*.json"))   # never labelled as band 1


def test_an_unforeseen_library_error_is_one_line(tmp_path, capsys, monkeypatch):
    from seaice_utils.cli import commands

    def boom(a):
        raise RuntimeError("Py4JJavaError: java.lang.OutOfMemoryError: Java heap space\n\tat x")

    monkeypatch.setitem(commands.COMMANDS, "label", boom)
    assert main(["label", str(tmp_path), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "OutOfMemoryError" in err and "-v" in err
    _one_line(err)
    assert main(["label", str(tmp_path), str(tmp_path / "o"), "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err          # -v shows where
