"""The spark engine: same bytes as the local engines, task retries, a real standalone cluster.

All tests here start JVMs (a local session, then a standalone master, worker and executor on
127.0.0.1): they are marked slow. The cluster is stopped in a fixture finaliser, even on failure.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from seaice_utils.core.scenes import list_inputs, write_png
from seaice_utils.core.tiling import split_tiles
from seaice_utils.data.synthetic import synthesize_scene
from seaice_utils.engines import run_job
from seaice_utils.labelling.jobs import LabelTask, run_label_job
from seaice_utils.labelling.pipeline import LabelOptions

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for Spark")]

OPTS = LabelOptions(expect_size=(256, 256))
BAD = ["broken_0000_0000.png", "small_0000_0000.png"]


@pytest.fixture(scope="module")
def tiles(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiles")
    sc = synthesize_scene(7, size=512, cloud_cover=0.3, shadow_cover=0.1, nodata_wedge=True)
    split, _ = split_tiles(sc.image, sc.name, 256, nodata=sc.nodata)
    for name, arr in split.items():
        write_png(folder / f"{name}.png", arr)
    (folder / "broken_0000_0000.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    write_png(folder / "small_0000_0000.png", np.full((100, 100, 3), 200, np.uint8))
    # not inputs (the local engines take the images directly inside the folder): Spark must
    # skip a subfolder, even a file there named like an input
    first = sorted(split)[0]
    write_png(folder / "sub" / f"{first}.png", np.zeros((256, 256, 3), np.uint8))
    write_png(folder / "sub" / "other_0000_0000.png", np.zeros((256, 256, 3), np.uint8))
    return folder


@pytest.fixture(scope="module")
def expected(tiles, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("sequential")
    s = run_label_job(tiles, out, OPTS, engine="sequential", progress=False)
    assert len(s.done) == 4 and sorted(n for n, _ in s.failures) == BAD
    return files_of(out)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def spark():
    """One local session for the module; ``local[2,3]``: 2 task slots, 3 attempts per task."""
    from seaice_utils.engines.spark import spark_session

    session = spark_session("local[2,3]", progress=False)
    yield session
    session.stop()


@pytest.mark.parametrize("output", ["executors", "driver"])
def test_spark_local_writes_the_same_bytes_as_sequential(tiles, expected, spark, tmp_path, output):
    s = run_label_job(tiles, tmp_path, OPTS, engine="spark", spark=spark, output=output,
                      batch_size=2, warm=False, progress=False)
    assert s.engine == "spark" and s.workers == 2
    assert sorted(s.done) == sorted(n[:-5] for n in expected if n.endswith(".json"))
    assert sorted(n for n, _ in s.failures) == BAD
    assert "expected 256x256" in dict(s.failures)["small_0000_0000.png"]
    assert files_of(tmp_path) == expected
    assert set(s.seconds) >= {"load", "map", "reduce", "total"}


def failing_once(out: Path, marker: Path) -> LabelTask:
    """A labelling task whose first Spark task fails once, after writing its first tile.

    The class is made here, not at module level, so that Spark's cloudpickle ships it by value
    (the executors cannot import this test module).
    """

    class FailOnce(LabelTask):
        def run_bytes(self, content, filename):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 2:
                try:   # the first task to get here fails once, after writing its first batch
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    raise RuntimeError("test: a task failure on the first attempt")
                except FileExistsError:
                    pass
            return super().run_bytes(content, filename)

    return FailOnce(out.resolve(), OPTS)


def test_spark_retries_a_failed_task_and_the_output_is_complete(tiles, expected, spark, tmp_path):
    marker = tmp_path / "failed-once"
    out = tmp_path / "out"
    out.mkdir()
    s = run_job(failing_once(out, marker), list_inputs(tiles), engine="spark", spark=spark,
                batch_size=1, tasks_per_slot=1, warm=False, progress=False)
    assert marker.exists(), "no task failed: the test did not test retries"
    assert len(s.done) == 4 and sorted(n for n, _ in s.failures) == BAD
    assert files_of(out) == expected


def test_spark_resume_skips_finished_tiles(tiles, expected, spark, tmp_path):
    first = sorted(n for n in expected if n.endswith(".json"))[0][:-5]
    for suffix in ("_classes.png", "_labels.png", ".json"):
        (tmp_path / f"{first}{suffix}").write_bytes(expected[f"{first}{suffix}"])
    s = run_label_job(tiles, tmp_path, OPTS, engine="spark", spark=spark, resume=True,
                      warm=False, progress=False)
    assert s.skipped == [first] and len(s.done) == 3
    assert files_of(tmp_path) == expected


@pytest.fixture
def cluster(spark):
    """A standalone master and one 2-core worker on 127.0.0.1; stopped even if the test fails."""
    from seaice_utils.engines.cluster import LocalStandaloneCluster

    spark.stop()                        # one SparkContext per process: leave local mode first
    c = LocalStandaloneCluster(workers=1, cores=2, memory="1g")
    try:
        c.start()
        yield c
    finally:
        pids = [p.pid for p in c.procs]
        c.stop()
    from seaice_utils.engines.cluster import _group_alive

    assert not c.procs and not any(_group_alive(pid) for pid in pids)


def test_spark_on_a_local_standalone_cluster(tiles, expected, cluster, tmp_path):
    status = cluster.status()
    assert status["status"] == "ALIVE" and len(status["workers"]) == 1
    s = run_label_job(tiles, tmp_path, OPTS, engine="spark", master=cluster.url,
                      conf={"spark.executor.memory": "512m"}, warm=False, progress=False)
    assert s.workers == 2 and len(s.done) == 4 and sorted(n for n, _ in s.failures) == BAD
    assert files_of(tmp_path) == expected
    apps = cluster.status()["completedapps"]
    assert len(apps) == 1 and apps[0]["name"] == "seaice-autolabel"


def test_cli_label_with_the_spark_engine(tiles, expected, tmp_path, capsys):
    from pyspark.sql import SparkSession

    from seaice_utils.cli import main

    assert SparkSession.getActiveSession() is None   # the cluster test stopped the local one
    rc = main(["label", str(tiles), str(tmp_path), "--engine", "spark", "--workers", "2",
               "--spark-output", "driver", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1 and "spark x2" in out and "4 labelled, 0 already done, 2 failed" in out
    summary = tmp_path / "summary.csv"                # the command's table: a row per scene
    assert len(summary.read_text().splitlines()) == 5
    summary.unlink()
    assert {k: v for k, v in files_of(tmp_path).items() if not k.startswith(".")} == expected
    assert SparkSession.getActiveSession() is None   # the job stopped the session it made
