"""A season of sea ice, first slice: mosaics of a date's class maps, their areas, scene dates,
and the synthetic season (dated overlapping scenes with a known truth and curve)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from seaice_utils.core.mosaic import (ClassLayer, date_areas, date_from, mosaic_class_maps,
                                      pixel_area, read_class_layers, scene_date)
from seaice_utils.data.season import make_season, read_season_csv, read_truth_areas, season_curve
from seaice_utils.errors import InputError

rasterio = pytest.importorskip("rasterio")

CRS = "EPSG:3031"
T0 = (10.0, 0.0, 1000.0, 0.0, -10.0, 5000.0)


def _shift(t, rows, cols):
    return (t[0], 0.0, t[2] + cols * t[0], 0.0, t[4], t[5] + rows * t[4])


def _two(a_fill=2, b_fill=0):
    """A: 4x4 at the origin; B: 4x4 one row down, two columns right (overlap 3x2 = 6 px)."""
    a = ClassLayer(np.full((4, 4), a_fill, np.uint8), T0, CRS, "a")
    b = ClassLayer(np.full((4, 4), b_fill, np.uint8), _shift(T0, 1, 2), CRS, "b")
    return a, b


# --------------------------------------------------------------------------------------------
# mosaics and areas
# --------------------------------------------------------------------------------------------

def test_overlap_is_counted_once_first_layer_wins():
    a, b = _two()
    m = mosaic_class_maps([a, b])
    assert m.classes.shape == (5, 6)
    assert m.transform == T0
    counts = {k: int((m.classes == k).sum()) for k in (0, 2, 255)}
    assert counts == {2: 16, 0: 10, 255: 4}          # 16 + 16 - 6 seen, 4 corners unseen
    assert (m.classes[1:4, 2:4] == 2).all() and (m.source[1:4, 2:4] == 0).all()
    areas = date_areas(m, 100.0)
    assert areas["thick_km2"] == 16 * 100.0 / 1e6
    assert areas["water_km2"] == 10 * 100.0 / 1e6
    assert areas["thin_km2"] == 0.0
    assert areas["observed_km2"] == 26 * 100.0 / 1e6
    assert areas["observed_share"] == 26 / 30
    m2 = mosaic_class_maps([b, a])                    # the order decides the overlap
    assert int((m2.classes == 0).sum()) == 16 and int((m2.classes == 2).sum()) == 10


def test_union_grid_when_the_second_scene_is_up_and_left():
    a, b = _two()
    m = mosaic_class_maps([b, a])                     # first layer is not the top-left one
    assert m.transform == T0 and m.classes.shape == (5, 6)
    assert m.classes[0, 0] == 2 and m.classes[4, 5] == 0 and m.classes[4, 0] == 255


def test_nodata_in_one_scene_is_filled_by_the_other():
    a, b = _two()
    a.classes[2, 3] = 255                             # inside the overlap
    a.classes[0, 0] = 255                             # outside it: nobody else sees it
    m = mosaic_class_maps([a, b])
    assert m.classes[2, 3] == 0 and m.source[2, 3] == 1
    assert m.classes[0, 0] == 255 and m.source[0, 0] == -1
    areas = date_areas(m, 1e6)
    assert areas["pixels"][2] == 14 and areas["pixels"][0] == 11 and areas["pixels"][255] == 5


def test_nodata_in_both_stays_nodata_and_is_not_water():
    a, b = _two(a_fill=0, b_fill=0)
    a.classes[2, 3] = 255
    b.classes[1, 1] = 255                             # the same ground pixel (row 2, col 3)
    a.classes[1, 2] = 254                             # unlabelled in a, no-data in b
    b.classes[0, 0] = 255
    m = mosaic_class_maps([a, b])
    assert m.classes[2, 3] == 255 and m.classes[1, 2] == 254
    areas = date_areas(m, 1e6)
    assert areas["water_km2"] == 24.0                 # 26 seen minus the two holes
    assert areas["unlabelled_km2"] == 1.0
    assert areas["observed_share"] == 24 / 30


def test_mosaic_onto_a_given_grid_and_region_mask():
    a, b = _two()
    grid = (_shift(T0, -1, -1), 7, 8)                 # one pixel of margin all round
    m = mosaic_class_maps([a, b], grid=grid)
    assert m.classes.shape == (7, 8) and m.transform == grid[0]
    assert m.classes[1, 1] == 2 and m.classes[0, :].tolist() == [255] * 8
    cut = mosaic_class_maps([a, b], grid=(_shift(T0, 0, 0), 2, 2))   # clips
    assert cut.classes.tolist() == [[2, 2], [2, 2]]
    mask = np.zeros((7, 8), bool)
    mask[1:3, :] = True                               # rows 0 and 1 of A, B's row 0
    areas = date_areas(m, 1.0, region_mask=mask)
    assert areas["pixels"]["region"] == 16
    assert areas["pixels"][2] == 8 and areas["pixels"][0] == 2
    assert areas["observed_share"] == 10 / 16


@pytest.mark.parametrize("other, words", [
    (ClassLayer(np.zeros((4, 4), np.uint8), T0, "EPSG:3413", "b"), "CRS"),
    (ClassLayer(np.zeros((4, 4), np.uint8), (20.0, 0.0, 1000.0, 0.0, -20.0, 5000.0), CRS, "b"),
     "pixel size"),
    (ClassLayer(np.zeros((4, 4), np.uint8), (10.0, 0.0, 1003.0, 0.0, -10.0, 5000.0), CRS, "b"),
     "common pixel grid"),
    (ClassLayer(np.zeros((4, 4), np.uint8), (10.0, 1.0, 1000.0, 0.0, -10.0, 5000.0), CRS, "b"),
     "north-up"),
    (ClassLayer(np.full((4, 4), 7, np.uint8), T0, CRS, "b"), "codes other than"),
    (ClassLayer(np.zeros((4, 4), np.int32), T0, CRS, "b"), "uint8"),
])
def test_mismatched_layers_are_refused(other, words):
    a, _ = _two()
    with pytest.raises(InputError, match=words) as err:
        mosaic_class_maps([a, other])
    assert "layer 1 (b)" in str(err.value)


def test_same_crs_spelled_differently_and_empty_input():
    a, b = _two()
    b = ClassLayer(b.classes, b.transform, "epsg:3031", "b")
    assert mosaic_class_maps([a, b]).classes.shape == (5, 6)
    with pytest.raises(InputError, match="at least one"):
        mosaic_class_maps([])
    with pytest.raises(InputError, match="pixel_area_m2"):
        date_areas(np.zeros((2, 2), np.uint8), 0.0)
    assert pixel_area((40.0, 0.0, 0.0, 0.0, -40.0, 0.0)) == 1600.0


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

DAY = dt.date(2019, 11, 15)


@pytest.mark.parametrize("given", [
    "20191115.tif", "2019-11-15_2.tif", "classes_2019_11_15.tif",
    "S2B_MSIL2A_20191115T202851_N0213_R128_T58CEU_20191116T221425",
    "S2A_MSIL1C_20191115T202851_N0208_R128_T58CEU_20191115T215010.SAFE",
    Path("/data/20200101/scene_2019-11-15.tif"),       # the folder's date is not the scene's
    {"DATE": "2019-11-15"}, {"acquisition_date": "2019-11-15T20:28:51Z"},
    {"TIFFTAG_DATETIME": "2019:11:15 20:28:51"}, {"DATE": "2019-11-15", "OTHER": "20200101"},
])
def test_date_from_each_format(given):
    assert date_from(given) == DAY


@pytest.mark.parametrize("given, words", [
    ("scene.tif", "no acquisition date in 'scene.tif'"),
    ("20191341.tif", "no acquisition date in '20191341.tif'"),
    ("201911150.tif", "no acquisition date"),
    ("20191115_20191116.tif", "ambiguous acquisition date in '20191115_20191116.tif'"),
    ({"DATE": "2019-11-15", "ACQUISITION_DATE": "2019-11-16"}, "ambiguous .*2019-11-16"),
    ({"NAME": "x"}, "no acquisition date in tags"),
    (42, "file name or a mapping"),
])
def test_bad_dates_are_refused_naming_the_input(given, words):
    with pytest.raises(InputError, match=words):
        date_from(given)


# --------------------------------------------------------------------------------------------
# the synthetic season
# --------------------------------------------------------------------------------------------

N_DATES = 12


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    return make_season(tmp_path_factory.mktemp("season"), 3, n_dates=N_DATES, size=192)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read(path):
    """The bands and what the tests need of the dataset (read while it is open)."""
    with rasterio.open(path) as src:
        info = SimpleNamespace(crs=src.crs, transform=src.transform, bounds=src.bounds,
                               nodata=src.nodata, width=src.width, height=src.height,
                               tags_=src.tags())
        return src.read(), info


def test_same_seed_same_bytes_other_seed_other_truth(season, tmp_path):
    again = make_season(tmp_path / "again", 3, n_dates=N_DATES, size=192)
    mine, theirs = _files(season.root), _files(again.root)
    assert len(mine) == 2 + 1 + N_DATES + 2 * len(season.scenes)    # scenes and cloud masks
    assert mine == theirs
    other = make_season(tmp_path / "other", 4, n_dates=N_DATES, size=192)
    first = "truth/2019-11-01.tif"
    assert _files(other.root)[first] != mine[first]


def test_resume_keeps_files_and_redraws_only_what_is_missing(season, tmp_path):
    root = tmp_path / "r"
    make_season(root, 3, n_dates=N_DATES, size=192)
    before = _files(root)
    victim = root / season.scenes[3]["scene"]
    keep = root / season.scenes[0]["scene"]
    stamp = keep.stat().st_mtime_ns
    os.utime(keep, ns=(stamp - 10**9, stamp - 10**9))
    victim.unlink()
    make_season(root, 3, n_dates=N_DATES, size=192)
    assert _files(root) == before
    assert keep.stat().st_mtime_ns == stamp - 10**9           # not rewritten
    with pytest.raises(InputError, match="other|holds a season"):
        make_season(root, 5, n_dates=N_DATES, size=192)


def test_truth_areas_are_the_truth_pixels_ground_areas(season):
    from seaice_utils.core.areas import ground_pixel_areas

    assert [r["date"] for r in season.truth_areas] == [d.isoformat() for d in season.dates]
    assert season.pixel_area_m2 == 1600.0
    ground = ground_pixel_areas(season.transform, "EPSG:3031", season.shape)
    # EPSG:3031 is true to scale at 71 S; near 78.4 S a 40 m pixel covers ~3.5 % more ground
    assert 1.03 < ground.mean() / 1600.0 < 1.04 and np.ptp(ground) / ground.mean() < 1e-3
    for row in read_truth_areas(season.root):
        truth, src = _read(season.root / "truth" / f"{row['date']}.tif")
        assert src.crs.to_string() == "EPSG:3031"
        assert tuple(src.transform)[:6] == season.transform
        truth = truth[0]
        assert truth.shape == season.shape
        assert row["region_km2"] == pytest.approx(ground.sum() / 1e6, rel=1e-12)
        for key, code in (("thick_km2", 2), ("thin_km2", 1), ("water_km2", 0)):
            assert row[key] == pytest.approx(ground[truth == code].sum() / 1e6, rel=1e-12), key
        assert row["thick_km2"] + row["thin_km2"] + row["water_km2"] == pytest.approx(
            row["region_km2"], rel=1e-12)


def test_the_curve_thick_falls_thin_grows(season):
    rows = season.truth_areas
    thick = [r["thick_km2"] / r["region_km2"] for r in rows]
    thin = [r["thin_km2"] / r["region_km2"] for r in rows]
    assert all(b < a for a, b in zip(thick, thick[1:]))
    assert all(b > a for a, b in zip(thin, thin[1:]))
    n = season.shape[0] * season.shape[1]
    for i, day in enumerate(season.dates):                  # linear, to the pixel
        truth = _read(season.root / "truth" / f"{day.isoformat()}.tif")[0][0]
        x = i / (N_DATES - 1)
        assert abs((truth == 2).sum() / n - (0.70 - 0.30 * x)) <= 0.5 / n, i
        assert abs((truth == 1).sum() / n - (0.15 + 0.20 * x)) <= 0.5 / n, i
        # the areas' shares: the same, but for the ground area's variation over the region
        assert abs(thick[i] - (0.70 - 0.30 * x)) <= 1e-3 and abs(thin[i] - (0.15 + 0.20 * x)) <= 1e-3
    want = [(0.70, 0.15, 0.15), (0.55, 0.25, 0.20), (0.40, 0.35, 0.25)]
    assert np.allclose(season_curve(3), want, atol=1e-12, rtol=0)


def test_the_ice_drifts_between_dates(season):
    """Each date's thick ice matches the previous date's best shifted by a few pixels, not 0."""
    truths = [_read(season.root / "truth" / f"{d.isoformat()}.tif")[0][0] == 2
              for d in season.dates]
    best = []
    for a, b in zip(truths, truths[1:]):
        score = {}
        for dy in range(0, 5):
            for dx in range(0, 5):
                h, w = a.shape
                score[dy, dx] = (a[:h - dy, :w - dx] == b[dy:, dx:]).mean()
        best.append(max(score, key=score.get))
    assert sum(s != (0, 0) for s in best) >= len(best) // 2, best


def test_dates_scenes_and_footprints(season):
    dates = season.dates
    assert len(dates) == N_DATES and len(set(dates)) == N_DATES
    assert dates[0] == dt.date(2019, 11, 1) and dates[-1] == dt.date(2019, 12, 31)
    rows = read_season_csv(season.root)
    per_date = {d.isoformat(): [r for r in rows if r["date"] == d.isoformat()] for d in dates}
    assert all(1 <= len(v) <= 3 for v in per_date.values())
    assert max(len(v) for v in per_date.values()) >= 2
    left0, top0 = season.transform[2], season.transform[5]
    right0 = left0 + season.shape[1] * season.transform[0]
    bottom0 = top0 + season.shape[0] * season.transform[4]
    overlaps = 0
    for row in rows:
        path = season.root / row["scene"]
        rgb, src = _read(path)
        assert rgb.shape[0] == 3 and rgb.dtype == np.uint8 and src.nodata == 0
        assert src.crs.to_string() == "EPSG:3031"
        assert tuple(src.bounds) == (row["left"], row["bottom"], row["right"], row["top"])
        assert src.transform.a == 40.0 and src.transform.e == -40.0
        assert src.tags_["DATE"] == src.tags_["ACQUISITION_DATE"] == row["date"]
        assert path.name.startswith(row["date"] + "_")
        assert scene_date(path).isoformat() == row["date"]
        assert left0 <= row["left"] and row["right"] <= right0
        assert bottom0 <= row["bottom"] and row["top"] <= top0
    for group in per_date.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                overlaps += (min(a["right"], b["right"]) > max(a["left"], b["left"])
                             and min(a["top"], b["top"]) > max(a["bottom"], b["bottom"]))
    assert overlaps >= 1


def test_scene_date_refuses_tags_that_contradict_the_name(season, tmp_path):
    src_path = season.root / season.scenes[0]["scene"]
    wrong = tmp_path / "2020-01-05_1.tif"
    wrong.write_bytes(src_path.read_bytes())
    with pytest.raises(InputError, match="tags say 2019-11-01, the name 2020-01-05"):
        scene_date(wrong)


def test_scenes_look_like_their_truth_with_wedges_and_clouds(season):
    wedges = cloudy = 0
    for row in season.scenes:
        rgb, src = _read(season.root / row["scene"])
        nodata = (rgb == 0).all(axis=0)
        assert not (rgb[:, ~nodata] == 0).all(axis=0).any()
        wedges += bool(nodata.any())
        cloudy += src.tags_["CLOUDY"] == "True"
        if src.tags_["CLOUDY"] == "False":
            truth = _truth_window(season, row)
            v = rgb.max(axis=0).astype(float)
            means = [v[(truth == k) & ~nodata].mean() for k in (0, 1, 2)]
            assert means[0] < 40 < means[1] < 160 < means[2]
    assert wedges >= 1 and cloudy >= 1


def test_cloud_masks_mark_the_haze_on_the_scene_grid(season):
    hazy_water = []
    for row in season.scenes:
        rgb, src = _read(season.root / row["scene"])
        prob, msrc = _read(season.root / row["cloud_mask"])
        assert prob.shape == (1, *rgb.shape[1:]) and prob.dtype == np.uint8
        assert msrc.transform == src.transform and msrc.crs == src.crs
        assert prob.max() <= 100
        nodata = (rgb == 0).all(axis=0)
        assert not prob[0][nodata].any()                       # no cloud where there is no data
        if src.tags_["CLOUDY"] == "False":
            assert not prob.any()
            continue
        assert prob.max() == 100 and (prob[0] == 0).any()      # part of the scene, not all of it
        truth = _truth_window(season, row)
        v = rgb.max(axis=0).astype(float)
        water = (truth == 0) & ~nodata
        # haze lifts dark water: brighter where the mask says cloud
        if (water & (prob[0] >= 50)).any() and (water & (prob[0] == 0)).any():
            hazy_water.append(v[water & (prob[0] >= 50)].mean() - v[water & (prob[0] == 0)].mean())
    assert hazy_water and min(hazy_water) > 20


def _truth_window(season, row):
    with rasterio.open(season.root / "truth" / f"{row['date']}.tif") as src:
        win = src.window(row["left"], row["bottom"], row["right"], row["top"])
        return src.read(1, window=win)


def test_ground_truth_path_mosaic_of_truth_windows_gives_the_observed_areas(season):
    """Mosaic each date's truth windows (no-data where the scene has none) and count."""
    from seaice_utils.core.areas import ground_pixel_areas

    want = {r["date"]: r for r in season.truth_areas}
    grid = (season.transform, *season.shape)
    ground = ground_pixel_areas(season.transform, "EPSG:3031", season.shape)
    for day in season.dates:
        iso = day.isoformat()
        layers = []
        for row in sorted((r for r in season.scenes if r["date"] == iso),
                          key=lambda r: r["scene"]):
            rgb, src = _read(season.root / row["scene"])
            classes = _truth_window(season, row).copy()
            assert classes.shape == rgb.shape[1:]
            classes[(rgb == 0).all(axis=0)] = 255
            layers.append(ClassLayer(classes, tuple(src.transform)[:6], src.crs.to_string(),
                                     row["scene"]))
        mosaic = mosaic_class_maps(layers, grid=grid)
        areas = date_areas(mosaic, ground)
        w = want[iso]
        for key in ("thick_km2", "thin_km2", "water_km2"):
            assert areas[key] == w[f"observed_{key}"], (iso, key)
        assert areas["observed_km2"] == w["observed_km2"]
        assert areas["observed_share"] == w["observed_share"]
        assert areas["region_km2"] == w["region_km2"]
        union = mosaic_class_maps(layers)                       # same counts on the union grid
        got, ref = (date_areas(m, season.pixel_area_m2)["pixels"] for m in (union, mosaic))
        assert [got[k] for k in (0, 1, 2)] == [ref[k] for k in (0, 1, 2)]


def test_read_class_layers_sorts_by_name(season, tmp_path):
    rows = [r for r in season.scenes]
    iso = next(r["date"] for r in rows if sum(x["date"] == r["date"] for x in rows) >= 2)
    paths = []
    for row in reversed([r for r in rows if r["date"] == iso]):
        rgb, src = _read(season.root / row["scene"])
        p = tmp_path / Path(row["scene"]).name
        with rasterio.open(p, "w", driver="GTiff", width=src.width, height=src.height, count=1,
                           dtype="uint8", crs=src.crs, transform=src.transform) as dst:
            dst.write(_truth_window(season, row)[None])
        paths.append(p)
    layers = read_class_layers(paths)
    assert [x.name for x in layers] == sorted(p.name for p in paths)
    assert layers[0].crs == "EPSG:3031" and layers[0].transform[0] == 40.0


def test_common_crs_and_reprojection_onto_one_pixel_grid():
    from seaice_utils.core.mosaic import common_crs, reproject_layer

    a = ClassLayer(np.zeros((20, 30), np.uint8), (40.0, 0, -400000.0, 0, -40.0, -1200000.0),
                   "EPSG:3031", "a")
    b = ClassLayer(np.ones((20, 30), np.uint8), (40.0, 0, 500000.0, 0, -40.0, 1400000.0),
                   "EPSG:32704", "b")
    assert common_crs([a, a]) is None                      # one CRS: nothing is resampled
    assert common_crs([a, b]) == "EPSG:6932"                # southern: EASE-Grid 2.0 South
    assert common_crs([a, b], "EPSG:3031") == "EPSG:3031"
    with pytest.raises(InputError, match="not one PROJ knows"):
        common_crs([a, b], "EPSG:99999999")
    ra, rb = reproject_layer(a, "EPSG:6932", 40.0), reproject_layer(b, "EPSG:6932", 40.0)
    assert reproject_layer(a, "epsg:3031", 40.0) is a
    for r, code in ((ra, 0), (rb, 1)):
        assert r.crs == "EPSG:6932" and r.transform[0] == 40.0 and r.transform[4] == -40.0
        assert r.transform[2] % 40.0 == 0 and r.transform[5] % 40.0 == 0   # one pixel grid
        assert set(np.unique(r.classes)) <= {code, 255}          # codes never mixed
        # a rotated footprint: the area is kept to within the edge pixels
        assert abs(int((r.classes == code).sum()) - 600) < 80
    m = mosaic_class_maps([ra, rb])                         # aligned: mosaics without error
    assert {0, 1} <= set(np.unique(m.classes))
