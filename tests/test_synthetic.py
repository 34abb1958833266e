"""Tests of the embedded synthetic dataset (seaice_utils.data.synthetic)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from seaice_utils.core.classes import NODATA, THICK, THIN, WATER
from seaice_utils.labelling.autolabel import auto_label
from seaice_utils.labelling.cloudfilter import FilterParams
from seaice_utils.errors import InputError
from seaice_utils.core.metrics import pixel_accuracy
from seaice_utils.core.scenes import nodata_mask
from seaice_utils.data.synthetic import SyntheticScene, synthesize_scene

SIZE = 512


@lru_cache(maxsize=None)
def scene(seed: int, size: int = SIZE, cloud: float = 0.0, shadow: float = 0.0,
          wedge: bool = False) -> SyntheticScene:
    return synthesize_scene(seed, size=size, cloud_cover=cloud, shadow_cover=shadow,
                            nodata_wedge=wedge)


def value(s: SyntheticScene) -> np.ndarray:
    return s.image.max(axis=2)


def accuracies(s: SyntheticScene) -> tuple[float, float]:
    """Agreement with the truth of auto-labels without and with the paper's filter."""
    plain, _ = auto_label(s.image, nodata=s.nodata, filter_params=None)
    filtered, _ = auto_label(s.image, nodata=s.nodata, filter_params=FilterParams())
    return pixel_accuracy(plain, s.truth), pixel_accuracy(filtered, s.truth)


# ------------------------------------------------------------------------------ structure

def test_shapes_dtypes_and_name():
    s = synthesize_scene(7, size=256, cloud_cover=0.2, shadow_cover=0.1, nodata_wedge=True)
    assert isinstance(s, SyntheticScene)
    assert s.image.shape == (256, 256, 3) and s.image.dtype == np.uint8
    assert s.truth.shape == (256, 256) and s.truth.dtype == np.uint8
    assert s.cloud.shape == (256, 256) and s.cloud.dtype == np.uint8
    assert s.nodata.shape == (256, 256) and s.nodata.dtype == bool
    assert set(np.unique(s.truth).tolist()) <= {WATER, THIN, THICK, NODATA}
    assert set(np.unique(s.cloud).tolist()) <= {0, 1, 2}
    assert s.name == "synth_0007"
    assert synthesize_scene(7, size=64, name="custom").name == "custom"
    assert synthesize_scene(12345, size=64).name == "synth_12345"
    m = s.meta
    assert m["seed"] == 7 and m["size"] == 256
    assert m["cloud_cover_requested"] == 0.2 and m["shadow_cover_requested"] == 0.1
    assert set(m["class_fractions"]) == {"open water", "thin ice", "thick ice"}
    assert sum(m["class_fractions"].values()) == pytest.approx(1.0)


def test_minimum_size_and_to_scene():
    s = synthesize_scene(0, size=64, nodata_wedge=True)
    assert s.image.shape == (64, 64, 3)
    sc = s.to_scene()
    assert sc.rgb is s.image and sc.nodata is s.nodata and sc.name == s.name
    assert sc.meta["seed"] == 0 and sc.meta["source"] == "synthetic"


def test_deterministic_from_seed():
    a = synthesize_scene(3, size=256, cloud_cover=0.25, shadow_cover=0.1, nodata_wedge=True)
    b = synthesize_scene(3, size=256, cloud_cover=0.25, shadow_cover=0.1, nodata_wedge=True)
    for key in ("image", "truth", "cloud", "nodata"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert a.meta == b.meta
    c = synthesize_scene(4, size=256, cloud_cover=0.25, shadow_cover=0.1, nodata_wedge=True)
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.truth, c.truth)


def test_ground_truth_independent_of_atmosphere():
    clear = scene(5)
    cloudy = scene(5, cloud=0.3, shadow=0.1)
    assert np.array_equal(clear.truth, cloudy.truth)
    assert not clear.cloud.any()
    assert clear.meta["cloud_cover"] == 0.0 and clear.meta["shadow_cover"] == 0.0
    # whitish haze brightens dark ground (and leaves snow about as bright), shadow darkens
    v0 = value(clear).astype(float)
    v1 = value(cloudy).astype(float)
    haze, shadow = cloudy.cloud == 1, cloudy.cloud == 2
    dark = clear.truth != THICK
    assert v1[haze & dark].mean() > v0[haze & dark].mean() + 20
    assert abs(v1[haze & ~dark].mean() - v0[haze & ~dark].mean()) < 15
    assert np.median(v1[haze & (clear.truth == WATER)]) > 30
    assert v1[shadow].mean() < v0[shadow].mean() - 10
    assert (v1[shadow] <= v0[shadow] + 3).mean() > 0.9


# ------------------------------------------------------------------------------ no-data

def test_nodata_wedge_consistent():
    for seed in (0, 1, 2, 3):
        s = scene(seed, size=256, cloud=0.2, shadow=0.1, wedge=True)
        nd = s.nodata
        assert 0.02 < nd.mean() < 0.2
        assert (s.image[nd] == 0).all()
        assert np.array_equal(s.truth == NODATA, nd)
        assert np.array_equal(nodata_mask(s.image), nd)   # the project's fill-value convention
        assert not s.cloud[nd].any()
        # a triangle in a corner: exactly one corner pixel is no-data
        corners = [nd[0, 0], nd[0, -1], nd[-1, 0], nd[-1, -1]]
        assert sum(corners) == 1
        assert s.meta["nodata_fraction"] == pytest.approx(nd.mean())
    assert not scene(0, size=256, cloud=0.2, shadow=0.1).nodata.any()


# ------------------------------------------------------------------------------ clouds

@pytest.mark.parametrize("cloud,shadow", [(0.3, 0.1), (0.1, 0.0), (0.0, 0.2), (0.5, 0.3)])
def test_realised_cover_close_to_requested(cloud, shadow):
    s = synthesize_scene(11, size=256, cloud_cover=cloud, shadow_cover=shadow,
                         nodata_wedge=True)
    valid = ~s.nodata
    got_c = float((s.cloud[valid] == 1).mean())
    got_s = float((s.cloud[valid] == 2).mean())
    assert got_c == pytest.approx(cloud, abs=0.02)
    assert got_s == pytest.approx(shadow, abs=0.02)
    assert s.meta["cloud_cover"] == pytest.approx(got_c)
    assert s.meta["shadow_cover"] == pytest.approx(got_s)


# ------------------------------------------------------------------------------ classes

def test_all_classes_present_and_mix_varies():
    fracs = []
    for seed in range(6):
        s = scene(seed)
        f = s.meta["class_fractions"]
        assert f["open water"] > 0.02 and f["thin ice"] > 0.01 and f["thick ice"] > 0.2, f
        assert f["thick ice"] > f["thin ice"]          # a lot of bright ice, some thin ice
        fracs.append([f["open water"], f["thin ice"], f["thick ice"]])
    fracs = np.array(fracs)
    assert np.ptp(fracs[:, 0]) > 0.08                  # water share differs between seeds
    assert np.ptp(fracs[:, 2]) > 0.08


def test_class_colours_ordered_and_overlapping():
    vs = {k: [] for k in (WATER, THIN, THICK)}
    for seed in (0, 1, 2):
        s = scene(seed)
        v = value(s)
        for k in vs:
            vs[k].append(v[s.truth == k])
        # water is dark blue-black: blue above red
        rgb = s.image[s.truth == WATER].astype(float)
        assert rgb[:, 2].mean() > rgb[:, 0].mean() + 3
    v = {k: np.concatenate(x) for k, x in vs.items()}
    med = {k: float(np.median(x)) for k, x in v.items()}
    assert med[WATER] <= 30 < med[THIN] < 205 <= med[THICK]
    assert med[WATER] < med[THIN] < med[THICK]
    # overlapping distributions near the paper's thresholds (V = 30 and V = 205)
    assert ((v[THIN] >= 205) | (v[THIN] <= 30)).mean() > 0.002
    assert (v[WATER] > 30).mean() > 0.01
    assert (v[THICK] < 205).mean() > 0.005
    # ... but the bulk of each class lies in its own range
    assert (v[WATER] <= 30).mean() > 0.7
    assert ((v[THIN] > 30) & (v[THIN] < 205)).mean() > 0.8
    assert (v[THICK] >= 205).mean() > 0.85


def test_colours_resemble_the_real_ross_sea_sample(ross_sea_path):
    """Mean RGB of the pixels in each V range is close to the real render's (skips without it)."""
    from seaice_utils.core.scenes import read_scene

    def range_means(rgb, nodata):
        v = rgb.max(axis=2)
        out = {}
        for k, (lo, hi) in {WATER: (0, 30), THIN: (31, 204), THICK: (205, 255)}.items():
            m = (v >= lo) & (v <= hi) & ~nodata
            out[k] = (rgb[m].astype(float).mean(axis=0), m.sum() / (~nodata).sum())
        return out

    real = read_scene(ross_sea_path)
    ref = range_means(real.rgb, real.nodata)
    for seed in (0, 1):
        s = scene(seed)
        got = range_means(s.image, s.nodata)
        for k in (WATER, THIN, THICK):
            assert np.abs(got[k][0] - ref[k][0]).max() < 20, (seed, k, got[k][0], ref[k][0])
        assert abs(got[THICK][1] - ref[THICK][1]) < 0.2          # mostly bright ice, like the real
        assert got[WATER][0][2] > got[WATER][0][0] + 4           # blue-black water


def test_truth_is_not_a_threshold_of_the_colours():
    s = scene(1)
    plain, _ = auto_label(s.image, nodata=s.nodata, filter_params=None)
    assert not np.array_equal(plain, s.truth)


# ------------------------------------------------------------------------------ auto-labels

def test_clear_scene_agreement_plausible():
    accs = []
    for seed in (0, 1, 2, 3):
        acc, _ = accuracies(scene(seed))
        assert 0.85 < acc < 0.995, (seed, acc)
        accs.append(acc)
    assert 0.88 < np.mean(accs) < 0.99


def test_filter_helps_under_clouds():
    plain, filt, clear = [], [], []
    for seed in (0, 1, 2):
        a0, a1 = accuracies(scene(seed, cloud=0.3, shadow=0.1))
        plain.append(a0)
        filt.append(a1)
        clear.append(accuracies(scene(seed))[0])
    # clouds hurt the plain colour segmentation, and the filter recovers part of it
    assert np.mean(plain) < np.mean(clear) - 0.03
    assert np.mean(filt) > np.mean(plain) + 0.02


def test_shadow_turns_thick_ice_thin_without_filter():
    s = scene(2, cloud=0.0, shadow=0.3)
    plain, _ = auto_label(s.image, nodata=s.nodata, filter_params=None)
    thick_shadow = (s.truth == THICK) & (s.cloud == 2)
    assert thick_shadow.sum() > 1000
    assert (plain[thick_shadow] == THIN).mean() > 0.3


# ------------------------------------------------------------------------------ arguments

@pytest.mark.parametrize("kwargs", [
    dict(size=63), dict(size=0), dict(size=512.0), dict(size="512"), dict(size=True),
    dict(cloud_cover=-0.01), dict(cloud_cover=0.9), dict(cloud_cover=1.5),
    dict(cloud_cover=float("nan")), dict(cloud_cover="0.3"),
    dict(shadow_cover=-0.1), dict(shadow_cover=0.95),
    dict(cloud_cover=0.6, shadow_cover=0.35),
    dict(nodata_wedge="yes"), dict(name=""), dict(name=5),
])
def test_bad_arguments_raise(kwargs):
    kw = dict(size=64) | kwargs
    with pytest.raises(InputError):
        synthesize_scene(0, **kw)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", None, True])
def test_bad_seed_raises(seed):
    with pytest.raises(InputError):
        synthesize_scene(seed, size=64)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        synthesize_scene(0, 64)  # type: ignore[misc]


def test_agreement_table_rows_and_mean():
    from seaice_utils.data.synthetic import agreement_lines, agreement_table

    rows = agreement_table(range(2), size=256)
    assert [r["seed"] for r in rows] == [0, 1, "mean"]
    for r in rows:
        for k in ("clear_no_filter", "clear_filter", "cloudy_no_filter", "cloudy_filter"):
            assert 0.5 < r[k] <= 1.0
    assert rows[-1]["clear_no_filter"] == pytest.approx(
        (rows[0]["clear_no_filter"] + rows[1]["clear_no_filter"]) / 2)
    # clouds hurt the plain thresholds
    assert rows[-1]["cloudy_no_filter"] < rows[-1]["clear_no_filter"]
    # the command line's table: a header and one fixed-width line per row
    lines = agreement_lines(rows)
    assert lines[0].split() == ["seed", "clear/no", "filter", "clear/filter", "cloudy/no",
                                "filter", "cloudy/filter"]
    assert len(lines) == 4 and len({len(s) for s in lines}) == 1
    assert lines[-1].split()[0] == "mean" and float(lines[-1].split()[1]) == pytest.approx(
        rows[-1]["clear_no_filter"], abs=5e-5)


def test_synth_agreement_command_prints_the_table(capsys):
    from seaice_utils.cli import main

    assert main(["synth", "--agreement", "--size", "128", "--seeds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["seed", "clear/no", "filter", "clear/filter", "cloudy/no",
                                "filter", "cloudy/filter"]
    assert lines[1].split()[0] == "0" and lines[-1].split()[0] == "mean"
    assert all(0.5 < float(v) <= 1.0 for v in lines[1].split()[1:])
    assert main(["synth"]) == 2
