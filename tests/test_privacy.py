"""Nothing private in shareable outputs: no absolute paths (a user's home folder, the machine's
folder layout), no hostname, no network address, no Spark start-up chatter.

The writers of the outputs folder are called on a temporary outputs folder and what they wrote is
scanned; the papermill smoke run of every notebook (tests/test_runner.py) scans a whole run with
:func:`find_private`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from seaice_utils.report import OUTSIDE, environment_info, shown_path, shown_paths

ROOT = Path(__file__).resolve().parent.parent
HOST = socket.gethostname()
TEXT_SUFFIXES = {".json", ".csv", ".ipynb", ".log", ".md", ".txt", ".yml", ".yaml", ".html"}


def machine_ips() -> set[str]:
    """This machine's IPv4 addresses other than the loopback ones (as far as can be told)."""
    ips: set[str] = set()
    try:
        ips.update(socket.gethostbyname_ex(HOST)[2])
    except OSError:
        pass
    try:
        import fcntl
        import struct

        for _, name in socket.if_nameindex():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:                              # SIOCGIFADDR: the interface's IPv4 address
                    packed = fcntl.ioctl(s.fileno(), 0x8915,
                                         struct.pack("256s", name[:15].encode()))
                    ips.add(socket.inet_ntoa(packed[20:24]))
                except OSError:
                    pass
    except (ImportError, OSError):
        pass
    return {ip for ip in ips if not ip.startswith("127.")}


def private_patterns(*folders: str | os.PathLike) -> dict[str, re.Pattern]:
    """What must not appear: ``folders`` (absolute, as given and resolved), the home folder,
    the hostname (as a word), this machine's non-loopback addresses."""
    out = {}
    for f in (*folders, Path.home()):
        for form in {str(f), str(Path(f).resolve())}:
            if len(form) > 1:
                out[f"folder {form}"] = re.compile(re.escape(form) + r"(?![\w-])")
    if len(HOST) > 1:
        out[f"hostname {HOST}"] = re.compile(rf"(?<![\w.-]){re.escape(HOST)}(?![\w-])")
    for ip in machine_ips():
        out[f"address {ip}"] = re.compile(rf"(?<![\d.]){re.escape(ip)}(?![\d])")
    return out


def _png_text(data: bytes) -> str:
    """The text chunks (tEXt, iTXt, zTXt keywords and text) of a PNG file."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            out.append(data[pos + 8:pos + 8 + n].decode("latin-1"))
        pos += 12 + n
    return "\n".join(out)


def _notebook_text(path: Path) -> str:
    """An .ipynb without its images (base64 could spell anything)."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not str(k).startswith("image/")}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return json.dumps(strip(json.loads(path.read_text())), ensure_ascii=False)


def shareable_text(path: Path) -> str | None:
    """What a reader of ``path`` sees as text: text files, notebooks without images, the text
    chunks of PNGs; None for other binary files."""
    if path.suffix == ".ipynb":
        return _notebook_text(path)
    data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_text(data)
    if path.suffix not in TEXT_SUFFIXES:
        return None
    return data.decode("utf-8", errors="replace")


def find_private(folder: Path, patterns: dict[str, re.Pattern], *,
                 skip=lambda rel: False) -> list[str]:
    """``file: what (context)`` for every private string in the files under ``folder``."""
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if not p.is_file() or skip(rel):
            continue
        text = shareable_text(p)
        if not text:
            continue
        for what, pat in patterns.items():
            m = pat.search(text)
            if m:
                ctx = text[max(0, m.start() - 60):m.end() + 40].replace("\n", " ")
                found.append(f"{rel}: {what} ({ctx!r})")
    return found


# ------------------------------------------------------------------------------------------
# the helper
# ------------------------------------------------------------------------------------------

def test_shown_path_is_relative_to_the_outputs_then_the_project(tmp_path, monkeypatch):
    out, proj = tmp_path / "proj" / "outputs", tmp_path / "proj"
    (out / "models").mkdir(parents=True)
    assert shown_path(out / "models" / "unet.keras", out, proj) == "models/unet.keras"
    assert shown_path(out, out, proj) == "."
    assert shown_path(proj / "params" / "quick.yml", out, proj) == "params/quick.yml"
    assert shown_path(tmp_path / "elsewhere" / "x.png", out, proj) == f"x.png {OUTSIDE}"
    assert shown_path(proj / ".." / "shared" / "x.png", out, proj) == f"x.png {OUTSIDE}"
    assert shown_path(None, out) is None
    link = tmp_path / "link"
    link.symlink_to(out)                      # the same folder under another name
    assert shown_path(link / "models" / "a.keras", out, proj) == "models/a.keras"
    monkeypatch.chdir(proj)                   # relative paths and the default project
    (proj / "params").mkdir()
    assert shown_path("outputs/tables/t.csv", "outputs") == "tables/t.csv"
    assert shown_path(proj / "params" / "a.yml", out) == "params/a.yml"
    assert shown_paths({"a": [str(out / "x.csv"), "rel/y", 3], "b": str(Path.home() / "z")},
                       out, proj) == {"a": ["x.csv", "rel/y", 3], "b": f"z {OUTSIDE}"}


def test_the_machine_description_names_no_host_or_user():
    text = json.dumps(environment_info())
    assert {"python", "platform", "cpu_count", "cpu_model", "packages"} <= set(environment_info())
    for what, pat in private_patterns().items():
        assert not pat.search(text), what
    import getpass

    user = getpass.getuser()
    if len(user) > 2:
        assert not re.search(rf"(?<![\w-]){re.escape(user)}(?![\w-])", text), user


# ------------------------------------------------------------------------------------------
# the writers: data source, training.json, evaluation records, the manifest
# ------------------------------------------------------------------------------------------

def test_the_data_source_table_and_record_are_relative(tmp_path):
    import pandas as pd

    from seaice_utils.collect.run import collect
    from seaice_utils.params import load_params_dict
    from seaice_utils.report import save_table

    out = tmp_path / "outputs"
    params = load_params_dict({"global": {"progress": False},
                               "data": {"n_scenes": 1, "scene_size": 128}})
    res = collect(params, out)
    rows = {r["item"]: r["value"] for r in res.summary_rows()}
    assert rows["dataset folder"] == "data/synthetic"
    assert res.message().endswith("in data/synthetic")
    save_table(pd.DataFrame(res.summary_rows()), out, "01_data_source")
    rec = json.loads((out / "records" / "data_source.json").read_text())
    assert rec["root"] == "data/synthetic"
    assert find_private(out, private_patterns(tmp_path, ROOT)) == []


def test_training_json_paths_are_relative_and_still_found(tmp_path):
    from seaice_utils.evaluation.models import find_models
    from seaice_utils.params import load_params_dict
    from seaice_utils.training.runs import record_models

    out = tmp_path / "outputs"
    (out / "tiles" / "manual").mkdir(parents=True)
    (out / "tiles" / "index.csv").write_text("tile,scene,row,col,nodata_fraction,cloud_fraction,"
                                             "has_truth\na_0000_0000,a,0,0,0,,True\n")
    run = tmp_path / "run" / "model.keras"
    run.parent.mkdir()
    run.write_bytes(b"not really a model")
    params = load_params_dict({"training": {"man_labels": str(tmp_path / "my-labels")}})
    split = {"train": ["a_0000_0000"], "test": ["a_0000_0000"], "test_scenes": ["a"],
             "by": "scene"}
    data = {"split": split, "tiles_root": str(out / "tiles"), "outputs_dir": str(out),
            "man_labels": str(out / "tiles" / "manual")}
    res = {"model_path": str(run), "input": "filtered",
           "model": {"tile_size": 256, "input_channels": 1}}
    info = record_models(params, out, data, {
        "auto": {**res, "labels": "auto", "label_source": "auto_filtered"},
        "man": {**res, "labels": "man", "label_source": data["man_labels"]}})
    assert info["models"]["auto"]["path"] == "models/unet_auto.keras"
    assert info["models"]["man"]["label_source"] == "tiles/manual"
    assert info["tiles_root"] == "tiles"
    assert info["training"]["man_labels"] == f"my-labels {OUTSIDE}"
    assert json.loads((out / "models" / "training.json").read_text()) == info
    assert find_private(out, private_patterns(tmp_path, ROOT)) == []
    # notebook 05 finds the models, the tiles and the manual labels from the relative paths
    found = find_models(out)
    assert found.tiles_root == out / "tiles" and found.reference == str(out / "tiles" / "manual")
    assert {m.path for m in found.models.values()} == {out / "models" / "unet_auto.keras",
                                                       out / "models" / "unet_man.keras"}
    assert str(tmp_path) not in found.describe()
    # models trained earlier (recorded relative) are kept when one model is trained again
    again = record_models(params, out, data, {"auto": {**res, "labels": "auto",
                                                       "label_source": "auto_filtered"}})
    assert set(again["models"]) == {"auto", "man"}


def test_evaluation_messages_are_relative(tmp_path):
    from seaice_utils.evaluation.scenes import real_sample_path
    from seaice_utils.evaluation.speedups import find_speedup_tables
    from seaice_utils.params import defaults

    out = tmp_path / "outputs"
    missing = find_speedup_tables(out)
    assert all("tables" in t["missing"] and str(tmp_path) not in t["missing"]
               for t in missing.values())
    p = defaults()
    p["evaluation"]["real_sample"] = str(tmp_path / "absent.png")
    path, msg = real_sample_path(p)
    assert path is None and "absent.png" in msg and str(tmp_path) not in msg


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('params_file: str = ""\noutputs_dir: str = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


def test_the_manifest_and_the_executed_notebooks_hold_no_absolute_path(tmp_path):
    """papermill records the paths it was given; notebooks print paths and libraries warn with
    file names: the runner shows them relative to the outputs and project folders."""
    pytest.importorskip("papermill")
    from seaice_utils.runner import run_notebooks

    nbdir, profile = tmp_path / "project" / "notebooks", tmp_path / "project" / "params" / "tiny.yml"
    nbdir.mkdir(parents=True)
    profile.parent.mkdir()
    _notebook(nbdir / "01_paths.ipynb",
              "import sys\nfrom pathlib import Path\nfrom seaice_utils import report\n"
              "print('outputs:', outputs_dir, 'profile:', params_file)\n"
              "print(f'{Path.home()}/lib/x.py:1: UserWarning: a library warns', file=sys.stderr)\n"
              "report.record(outputs_dir, 'probe', {'folder': str(Path(outputs_dir, 'data'))})")
    profile.write_text(f"global: {{profile: tiny}}\ndata: {{folder: {Path.home() / 'scenes'}}}\n")
    out = tmp_path / "outputs"
    m = run_notebooks(profile, out, notebook_dir=nbdir, progress=False)
    assert m["params_file"] == "params/tiny.yml"
    assert m["params"]["data"]["folder"] == f"scenes {OUTSIDE}"
    assert m["records"]["probe"] == {"folder": "data"}
    assert json.loads((out / "manifest.json").read_text()) == m
    executed = json.loads((out / "notebooks" / "01_paths.ipynb").read_text())
    pm = executed["metadata"]["papermill"]
    assert pm["parameters"] == {"params_file": "params/tiny.yml", "outputs_dir": "."}
    assert pm["input_path"] == "notebooks/01_paths.ipynb"
    assert pm["output_path"] == "notebooks/01_paths.ipynb"
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"]
                      for o in c.get("outputs", []))
    assert "outputs: <outputs> profile: <project>/params/tiny.yml" in printed
    assert "~/lib/x.py:1: UserWarning" in printed
    leaks = find_private(out, private_patterns(tmp_path, ROOT),
                         skip=lambda rel: rel == "records/probe.json")   # the notebook's own
    assert leaks == []


# ------------------------------------------------------------------------------------------
# Spark's start-up
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for Spark")
def test_a_local_spark_session_prints_no_hostname_address_or_start_up_chatter(tmp_path):
    pytest.importorskip("pyspark")
    script = textwrap.dedent("""
        import os, time
        from seaice_utils.engines.spark import spark_session

        spark = spark_session("local[1]", progress=False)
        print("rows", spark.range(5).count())
        print("env after start:", os.environ.get("SPARK_LOCAL_IP"),
              os.environ.get("SPARK_LOCAL_HOSTNAME"))
        spark.sparkContext._jvm.java.lang.System.err.println("the JVM still speaks")
        time.sleep(1)
        spark.stop()
    """)
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "rows 5" in proc.stdout
    assert "env after start: None None" in proc.stdout      # set for the JVM only
    assert "the JVM still speaks" in proc.stderr            # the JVM's stderr is not lost
    both = proc.stdout + proc.stderr
    for what, pat in private_patterns().items():
        assert not pat.search(both), f"{what} in:\n{both}"
    for chatter in ("WARN Utils", "NativeCodeLoader", "log4j profile",
                    "Setting default log level", "setLogLevel", "incubator modules"):
        assert chatter not in both, f"{chatter!r} in:\n{both}"
