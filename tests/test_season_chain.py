"""The whole chain offline (issue 22, item 4): archive -> ``seaice collect`` -> ``seaice season``
-> STAC and NetCDF, on scenes of a known truth.

A loopback STAC API (``test_collect_masks.serve_stac``) serves four dates of one 256 px UTM
product at 10 m: red, green, blue and a 20 m ``scl`` asset. Each date's truth is a class map
drawn as the synthetic season draws its own (a smooth field thresholded at the shares of
:func:`~seaice_utils.data.season.season_curve`, drifting a few pixels per date) and rendered by
:func:`~seaice_utils.data.season.render_scene` (the season's colours, texture, blur and noise);
the third date is under the season's thin haze. The SCL says snow/ice (11) over ice, water (6)
over water, and cloud where the haze is: thin cirrus (10) from a cloud probability of 10 %,
cloud medium (8) from 40 %, high (9) from 80 % (the worst 10 m pixel of each 20 m pixel).

``seaice collect`` (masks on, then ``collect.cloud_masks: false``) -> ``seaice season`` on the
catalogue as it is -> the STAC Collection and ``season.nc`` load and agree with
``season_areas.csv`` -> each date is scored with
:func:`~seaice_utils.evaluation.season.season_errors` against its truth, over the pixels the run
classified: with masks the hazy date's ice-area error is within the season's 3 % target, without
masks it is larger (the haze lifts dark water into the thin-ice range). At this writing: +0.9,
+1.2, +1.8 % on the clear dates (mixed pixels at ice edges read as ice; the same with and
without masks), and on the hazy date +1.45 % with masks (0.44 of the product masked) against
+13.0 % without.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pystac = pytest.importorskip("pystac")
xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

from rasterio.transform import from_origin  # noqa: E402

from seaice_utils.cli import main  # noqa: E402
from seaice_utils.core.classes import THICK, THIN, WATER  # noqa: E402
from seaice_utils.data.season import render_scene, season_curve  # noqa: E402
from seaice_utils.data.synthetic_noise import noise_field  # noqa: E402
from seaice_utils.evaluation import season_errors  # noqa: E402
from test_collect_masks import CRS, SIZE, _origin, serve_stac  # noqa: E402

DATES = ("2019-11-04", "2019-11-13", "2019-11-21", "2019-12-02")
HAZY = DATES[2]
SEED = 3
TARGET_PCT = 3.0          # the season's target: |ice-area error| per date
_OCTAVES = ((SIZE / 3, 1.0), (SIZE / 10, 0.5), (SIZE / 32, 0.1))


def _truths() -> list[np.ndarray]:
    """Per date the class map (0 water, 1 thin, 2 thick) of the product, exact season shares."""
    margin = 16
    big = noise_field(np.random.default_rng(SEED), SIZE + 2 * margin, SIZE + 2 * margin,
                      _OCTAVES)
    out, n = [], SIZE * SIZE
    for i, (thick, thin, _) in enumerate(season_curve(len(DATES))):
        win = big[margin - 3 * i:margin - 3 * i + SIZE, margin - 2 * i:margin - 2 * i + SIZE]
        order = np.argsort(-win.ravel(), kind="stable")
        k_thick, k_thin = round(thick * n), round(thin * n)
        flat = np.full(n, WATER, np.uint8)
        flat[order[:k_thick]] = THICK
        flat[order[k_thick:k_thick + k_thin]] = THIN
        out.append(flat.reshape(SIZE, SIZE))
    return out


def _scl(truth: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """The 20 m scene classification of a 10 m truth and its haze's cloud probability."""
    worst = prob.reshape(SIZE // 2, 2, SIZE // 2, 2).max(axis=(1, 3))
    scl = np.where(truth[::2, ::2] == WATER, 6, 11).astype(np.uint8)
    for code, lo in ((10, 10), (8, 40), (9, 80)):
        scl[worst >= lo] = code
    return scl


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Served, collected (masks on and off) and run as a season; the truth on the scene grid."""
    tmp = tmp_path_factory.mktemp("chain")
    truths, scenes = _truths(), []
    x0, y0 = _origin()
    (tmp / "truth" / "truth").mkdir(parents=True)
    for i, (day, truth) in enumerate(zip(DATES, truths)):
        rgb, prob = render_scene(truth, SEED * 100 + i, cloudy=day == HAZY)
        assert (prob > 0).any() == (day == HAZY)
        # DNs that the collection's stretch (255 * DN / 10000) turns back into these 8-bit values
        dn = np.rint(rgb.astype(np.float64) * 10000 / 255).astype(np.uint16)
        scenes.append((day, dn, _scl(truth, prob)))
        with rasterio.open(tmp / "truth" / "truth" / f"{day}.tif", "w", driver="GTiff",
                           width=SIZE, height=SIZE, count=1, dtype="uint8", crs=CRS,
                           transform=from_origin(x0, y0, 10, 10)) as dst:
            dst.write(truth, 1)
    runs = {}
    with serve_stac(scenes) as base:
        for masks in (True, False):
            profile = tmp / f"masks_{masks}.yml"
            profile.write_text(
                "global: {progress: false}\ndata: {source: stac}\n"
                f"collect: {{stac_url: '{base}', scene_px: {SIZE}, max_scenes: {len(DATES)}, "
                "scenes_per_product: 1, timeout_s: 10, fallback: error, "
                f"cloud_masks: {str(masks).lower()}}}\n")
            out = tmp / f"outputs_{masks}"
            assert main(["collect", "--params", str(profile), "--outputs", str(out),
                         "--no-progress"]) == 0
            catalogue = out / "data" / "stac" / "catalogue.csv"
            season = tmp / f"season_{masks}"
            assert main(["season", str(catalogue), str(season), "--no-progress", "-q"]) == 0
            runs[masks] = (catalogue, season)
    return tmp / "truth", runs


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_catalogue_names_the_masks(chain):
    _, runs = chain
    for masks, (catalogue, _) in runs.items():
        rows = sorted(_rows(catalogue), key=lambda r: r["datetime"])
        assert [r["datetime"][:10] for r in rows] == list(DATES)
        assert {r["cloud_mask_source"] for r in rows} == ({"scl"} if masks else {"none"})
        assert all(bool(r["cloud_mask"]) == masks for r in rows)


def test_stac_and_netcdf_agree_with_the_csv(chain):
    _, runs = chain
    for _, season in runs.values():
        rows = _rows(season / "season_areas.csv")
        assert [r["date"] for r in rows] == list(DATES)
        coll = pystac.Collection.from_file(str(season / "stac" / "collection.json"))
        items = sorted(coll.get_items(), key=lambda i: i.datetime)
        assert [i.id for i in items] == [r["date"] for r in rows]
        for item, r in zip(items, rows):
            assert item.datetime == dt.datetime.fromisoformat(r["date"]).replace(
                tzinfo=dt.timezone.utc)
            assert item.properties["seaice:ice_km2"] == pytest.approx(float(r["ice_km2"]),
                                                                      abs=1e-6)
            assert Path(item.assets["classes"].get_absolute_href()).is_file()
            scenes = [ln for ln in item.links if ln.rel == "derived_from"]
            assert any("data/stac/scenes/" in ln.get_absolute_href() for ln in scenes)
        with xr.open_dataset(season / "season.nc", mask_and_scale=False) as ds:
            assert [str(t)[:10] for t in ds["time"].values] == list(DATES)
            for k in ("thick_km2", "thin_km2", "water_km2", "ice_km2", "observed_km2",
                      "cloud_share", "observed_share"):
                np.testing.assert_allclose(ds[k].values, [float(r[k]) for r in rows], atol=1e-6)
            assert ds["classes"].shape == (len(DATES), SIZE, SIZE)


def test_haze_is_masked_on_the_cloudy_date(chain):
    truth_root, runs = chain
    errs = {masks: {r["date"]: r for r in season_errors(truth_root, season)}
            for masks, (_, season) in runs.items()}
    with_masks, without = errs[True], errs[False]
    for day in DATES:
        assert abs(with_masks[day]["rel_error_pct"]) <= TARGET_PCT, day
        if day != HAZY:       # clear dates: the masks remove nothing, the runs agree
            assert with_masks[day]["cloud_share"] == 0.0
            assert with_masks[day]["rel_error_pct"] == pytest.approx(
                without[day]["rel_error_pct"], abs=1e-9)
    assert with_masks[HAZY]["cloud_share"] > 0.05 and without[HAZY]["cloud_share"] == 0.0
    assert without[HAZY]["rel_error_pct"] > TARGET_PCT
    assert without[HAZY]["rel_error_pct"] > abs(with_masks[HAZY]["rel_error_pct"]) + 2.0


@pytest.mark.slow
def test_notebook_06_runs_on_the_collected_catalogue(chain, tmp_path):
    """Notebook 06 with ``season.catalogue`` naming the collected catalogue: areas, coverage and
    maps of its four dates, the comparison with a truth skipped with a note."""
    pytest.importorskip("papermill")
    import shutil

    import pandas as pd
    import yaml
    from test_privacy import find_private, private_patterns
    from test_runner import ROOT, smoke_profile

    from seaice_utils.evaluation import NO_TRUTH_NOTE
    from seaice_utils.runner import run_notebooks

    catalogue, _ = chain[1][True]
    out = tmp_path / "outputs"
    shutil.copytree(catalogue.parent, out / "data" / "stac")
    profile = smoke_profile(tmp_path)
    p = yaml.safe_load(profile.read_text())
    p["season"]["catalogue"] = "data/stac/catalogue.csv"
    profile.write_text(yaml.safe_dump(p))
    m = run_notebooks(profile, out, only=["06"], progress=False)
    assert [(n["notebook"], n["status"]) for n in m["notebooks"]] == [("06_season.ipynb", "ok")]
    table = pd.read_csv(out / "tables" / "06_season_collected_areas.csv")
    assert not (out / "tables" / "06_season_errors.csv").exists()
    assert set(table["method"]) == {"auto-labels", "auto-labels, no cloud mask"}
    assert sorted(set(table["date"])) == list(DATES) and len(table) == 2 * len(DATES)
    hazy = table[(table["date"] == HAZY) & (table["method"] == "auto-labels")]
    assert bool(hazy["hazy"].item()) and hazy["cloud_share"].item() > 0.05
    for name in ("06_season_areas", "06_season_coverage", "06_season_maps"):
        assert (out / "figures" / f"{name}.png").is_file(), name
    executed = (out / "notebooks" / "06_season.ipynb").read_text()
    assert NO_TRUTH_NOTE.split(":")[0] in executed and "no truth: errors not computed" in executed
    leaks = find_private(out, private_patterns(out, ROOT))
    assert leaks == [], "\n".join(leaks)
