"""Notebook 01 headless: asked for Earth Engine without credentials, it falls back loudly; its
query table names the georeferenced default format and the STAC collections in order."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

pytest.importorskip("papermill")

from seaice_utils.runner import run_notebooks  # noqa: E402

CLEAR = ("EARTHENGINE_PROJECT", "EE_PROJECT", "GOOGLE_CLOUD_PROJECT", "EE_SERVICE_ACCOUNT_KEY",
         "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG")


@pytest.mark.slow
def test_notebook_01_falls_back_to_synthetic(tmp_path, monkeypatch):
    for k in CLEAR:
        monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    profile = tmp_path / "ee.yml"
    profile.write_text(yaml.safe_dump({
        "global": {"profile": "ee-test", "progress": False},
        "data": {"source": "earthengine", "n_scenes": 2, "scene_size": 128},
        "collect": {"max_scenes": 2, "scene_px": 128}}))
    out = tmp_path / "out"
    manifest = run_notebooks(profile, out, only=["01"], progress=False)
    assert [nb["status"] for nb in manifest["notebooks"]] == ["ok"]
    rec = manifest["records"]["data_source"]
    assert rec["requested"] == "earthengine" and rec["effective"] == "synthetic"
    assert rec["fell_back"] is True and "no Earth Engine credentials" in rec["reason"]
    src = pd.read_csv(out / "tables" / "01_data_source.csv").set_index("item")["value"]
    assert src["fell back to synthetic"] == "YES" and src["scenes"] == "2"
    handover = pd.read_csv(out / "tables" / "01_handover.csv")
    assert handover.loc[0, "data.source"] == "synthetic" and bool(handover.loc[0, "same scenes as collected"])
    assert (out / "figures" / "01_scenes.png").stat().st_size > 0
    nb = json.loads((out / "notebooks" / "01_data_collection.ipynb").read_text())
    text = json.dumps(nb["cells"])
    assert "DATA SOURCE FALLBACK" in text and "WARNING" in text   # printed and in Markdown
    query = pd.read_csv(out / "tables" / "01_query.csv").set_index("setting")
    assert query.loc["collection", "earthengine"] == "COPERNICUS/S2_HARMONIZED"
    # STAC: Collection 1 first, the older collection when it gives nothing
    stac = query.loc["collection", "stac"]
    assert stac.index("sentinel-2-c1-l2a") < stac.index("sentinel-2-l2a")
    # scenes are georeferenced by default, and the table says what the format is
    assert query.loc["export", "earthengine"].startswith("geotiff8: 8-bit RGB Cloud-Optimised "
                                                         "GeoTIFF")
