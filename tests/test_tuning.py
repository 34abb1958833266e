"""Notebook 02's machinery: settings, previews, the fraction table, the widget UI, the notebook."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from seaice_utils import tuning
from seaice_utils.core.classes import NODATA, THICK, THIN, UNLABELLED, WATER
from seaice_utils.core.scenes import write_png
from seaice_utils.data.dataset import read_catalogue
from seaice_utils.errors import InputError, ParamsError
from seaice_utils.params import defaults, load_params, load_params_dict
from seaice_utils.report import OUTSIDE
from seaice_utils.tuning.previews import (FRACTION_COLUMNS, VARIANTS, agreement, class_shares,
                                          preview)
from seaice_utils.tuning.samples import TuningSample, crop_or_resize
from seaice_utils.tuning.settings import settings_of, write_tuned_params

SIZE = 96


@pytest.fixture
def params() -> dict:
    # a small median kernel, so the filter means something on a 96 px scene
    return load_params_dict({"filter": {"median_kernel": 31}, "global": {"progress": False}})


def _scene(seed: int = 0, *, with_truth: bool = True) -> TuningSample:
    """Three vertical bands: water (V 15), thin ice (V 120), thick ice (V 235), light noise,
    a no-data block in a corner."""
    rng = np.random.default_rng(seed)
    v = np.empty((SIZE, SIZE), np.int32)
    truth = np.empty((SIZE, SIZE), np.uint8)
    third = SIZE // 3
    v[:, :third], truth[:, :third] = 15, WATER
    v[:, third:2 * third], truth[:, third:2 * third] = 120, THIN
    v[:, 2 * third:], truth[:, 2 * third:] = 235, THICK
    v = np.clip(v + rng.integers(-5, 6, v.shape), 0, 255).astype(np.uint8)
    rgb = np.repeat(v[..., None], 3, axis=2)
    nodata = np.zeros((SIZE, SIZE), bool)
    nodata[:8, -8:] = True
    rgb[nodata] = 0
    truth[nodata] = NODATA
    cloud = np.zeros((SIZE, SIZE), np.uint8)
    cloud[40:60, :] = 1
    return TuningSample(f"tiny_{seed}", rgb, nodata, truth if with_truth else None, cloud)


# ------------------------------------------------------------------------------ settings
def test_settings_round_trip(params):
    s = settings_of(params)
    assert s["filter.median_kernel"] == 31
    assert s["autolabel.water.upper.V"] == 30 and s["autolabel.thick.upper.H"] == 185
    assert tuning.apply_settings(params, s) == params


def test_apply_settings_changes_a_copy(params):
    new = tuning.apply_settings(params, {"autolabel.thin.upper.V": np.int64(220),
                                         "autolabel.thick.lower.V": 221,
                                         "autolabel.thin.lower.V": 26,
                                         "filter.apply_to": "tile",
                                         "autolabel.water": {"lower": [0, 0, 0],
                                                             "upper": [179, 255, 25]}})
    assert new["autolabel"]["thin"]["upper"] == [185, 255, 220]
    assert type(new["autolabel"]["thin"]["upper"][2]) is int
    assert new["filter"]["apply_to"] == "tile"
    assert new["autolabel"]["water"]["upper"] == [179, 255, 25]
    assert params["autolabel"]["thin"]["upper"] == [185, 255, 204]   # input untouched
    assert params["filter"]["apply_to"] == "scene"


@pytest.mark.parametrize("settings, match", [
    ({"autolabel.thin.lower.V": 210}, r"autolabel\.thin: must be"),             # lower > upper
    ({"filter.median_kernel": 154}, r"filter\.median_kernel: must be .*odd"),
    ({"filter.truncation": 300}, r"filter\.truncation"),
    ({"filter.nonsense": 1}, r"filter\.nonsense: unknown setting"),
    ({"autolabel.thin.middle.V": 1}, r"unknown setting"),
    ({"autolabel.thin.upper.X": 1}, r"unknown setting"),
    ({"autolabel.thin.upper.V": 1.5}, r"must be an integer"),
    ({"nosection.x": 1}, r"unknown setting"),
])
def test_apply_settings_rejects_invalid(params, settings, match):
    with pytest.raises(ParamsError, match=match):
        tuning.apply_settings(params, settings)


def test_gaps_and_overlaps_are_errors_unless_allowed(params):
    with pytest.raises(ParamsError, match=r"V 21\.\.30 is in no class's range "
                       r"\(autolabel\.water\.upper\.V = 20, autolabel\.thin\.lower\.V = 31\)"):
        tuning.apply_settings(params, {"autolabel.water.upper.V": 20})
    with pytest.raises(ParamsError, match=r"V 205\.\.230 is in both the thin ice and thick ice"):
        tuning.apply_settings(params, {"autolabel.thin.upper.V": 230})


def test_threshold_warnings_gap_overlap_and_levels(params):
    assert tuning.threshold_warnings(params) == []
    allow = {"autolabel.allow_gaps": True}
    with pytest.warns(UserWarning, match="allowed by autolabel.allow_gaps"):
        gap = tuning.apply_settings(params, {"autolabel.water.upper.V": 20, **allow})
    assert tuning.threshold_warnings(gap) == [
        "V 21..30 is in no class's range (autolabel.water.upper.V = 20, "
        "autolabel.thin.lower.V = 31)"]
    with pytest.warns(UserWarning):
        overlap = tuning.apply_settings(params, {"autolabel.thin.upper.V": 230, **allow})
    assert tuning.threshold_warnings(overlap) == [
        "V 205..230 is in both the thin ice and thick ice ranges (autolabel.thick.lower.V = 205, "
        "autolabel.thin.upper.V = 230); thick ice is painted last and wins there"]
    # a thick range that starts above 255 is impossible, one that misses level 255 is not
    with pytest.warns(UserWarning):
        miss = tuning.apply_settings(params, {"autolabel.thick.upper.V": 250, **allow})
    w = tuning.threshold_warnings(miss)
    assert "V 251..255 is in no class's range (autolabel.thick.upper.V = 250)" in w
    assert "filter level 255 is labelled unlabelled, not thick ice" in w


# ------------------------------------------------------------------------------ previews
def test_preview_of_a_clean_scene(params):
    s = _scene()
    pv = preview(s.rgb, s.nodata, s.truth, params)
    for key in ("labels_raw", "labels_filtered", "filtered"):
        assert pv[key].shape == (SIZE, SIZE)
    assert set(np.unique(pv["filtered"])) <= {0, 155, 255}
    assert pv["n_pixels"] == SIZE * SIZE - 64 == pv["n_reference"]
    for variant in VARIANTS:
        assert sum(pv["fractions"][variant].values()) == pytest.approx(1.0)
    # the bands sit well inside the paper's V ranges: plain thresholds are exact
    assert pv["agreement"]["no filter"] == 1.0
    assert pv["fractions"]["no filter"] == pytest.approx(pv["fractions"]["reference"])
    assert 0.0 <= pv["agreement"]["filter"] <= 1.0
    assert (pv["labels_raw"][s.nodata] == NODATA).all()


def test_preview_without_truth(params):
    s = _scene(with_truth=False)
    pv = preview(s.rgb, s.nodata, None, params)
    assert pv["agreement"] == {} and "reference" not in pv["fractions"]
    assert pv["n_reference"] == 0


def test_moving_thin_thick_boundary_moves_pixels(params):
    s = _scene()
    before = preview(s.rgb, s.nodata, s.truth, params)
    moved = tuning.apply_settings(params, {"autolabel.thin.upper.V": 245,
                                           "autolabel.thick.lower.V": 246})
    after = preview(s.rgb, s.nodata, s.truth, moved)
    fb, fa = before["fractions"]["no filter"], after["fractions"]["no filter"]
    # the thick band (V 230..240) becomes thin; water is unchanged
    assert fa["thick_ice"] == pytest.approx(0.0, abs=1e-3)
    assert fa["thin_ice"] == pytest.approx(fb["thin_ice"] + fb["thick_ice"], abs=1e-3)
    assert fa["open_water"] == fb["open_water"]
    assert after["agreement"]["no filter"] < 0.7


def test_unlabelled_pixels_count_as_disagreement(params):
    s = _scene()
    with pytest.warns(UserWarning, match=r"V 31\.\.129 is in no class's range"):
        gap = tuning.apply_settings(params, {"autolabel.thin.lower.V": 130,   # V 31..129: none
                                             "autolabel.allow_gaps": True})
    pv = preview(s.rgb, s.nodata, s.truth, gap)
    thin_share = pv["fractions"]["reference"]["thin_ice"]
    assert pv["fractions"]["no filter"]["unlabelled"] == pytest.approx(thin_share)
    assert pv["agreement"]["no filter"] == pytest.approx(1 - thin_share)
    # unlabelled pixels have their own code, apart from no-data
    labels = pv["labels_raw"]
    assert (labels[s.truth == THIN] == UNLABELLED).all() and (labels[s.nodata] == NODATA).all()


def test_class_shares_and_agreement_edge_cases():
    empty = class_shares(np.zeros((2, 2), np.uint8), np.ones((2, 2), bool))
    assert all(np.isnan(v) for v in empty.values())
    assert np.isnan(agreement(np.zeros(3, np.uint8), np.full(3, 255, np.uint8)))
    with pytest.raises(InputError, match="shapes differ"):
        agreement(np.zeros(3, np.uint8), np.zeros(4, np.uint8))


def test_class_fraction_table_rows_and_weights(params):
    a, b = _scene(0), _scene(1)
    b = TuningSample("other", b.rgb, b.nodata | (np.arange(SIZE)[None, :] < 48), b.truth,
                            None)
    pvs = tuning.preview_all([a, b], params)
    df = tuning.class_fraction_table(pvs)
    assert list(df.columns) == ["scene", "labels", "cloud_fraction", "open_water", "thin_ice",
                                "thick_ice", "unlabelled", "pixels", "agreement"]
    assert list(df["scene"]) == ["tiny_0"] * 3 + ["other"] * 3 + ["all"] * 3
    np.testing.assert_allclose(df[list(FRACTION_COLUMNS)].sum(axis=1), 1.0)
    assert df["agreement"][df["labels"] == "reference"].isna().all()
    assert np.isnan(df.loc[3, "cloud_fraction"]) and df.loc[0, "cloud_fraction"] == pytest.approx(
        20 * SIZE / (SIZE * SIZE - 64))
    # "other" has no water (columns < 48 are no-data), so the overall water share is
    # pixel-weighted, not the plain mean of the two scenes
    ref = df[df["labels"] == "reference"].set_index("scene")
    assert ref.loc["other", "open_water"] == 0
    w = ref["pixels"]
    expected = (ref.loc["tiny_0", "open_water"] * w["tiny_0"]) / (w["tiny_0"] + w["other"])
    assert ref.loc["all", "open_water"] == pytest.approx(expected)
    assert ref.loc["all", "pixels"] == w["tiny_0"] + w["other"]
    with pytest.raises(InputError):
        tuning.class_fraction_table([])


def test_figures_render(params):
    samples = [_scene(0), _scene(1, with_truth=False)]
    pvs = tuning.preview_all(samples, params)
    fig = tuning.panels_figure(pvs, panel_size=1.0)
    assert len([ax for ax in fig.axes if ax.axison]) == 5 + 4   # reference only where known
    assert "agree" in fig.axes[2].get_title()
    steps = tuning.filter_steps_figure(tuning.cloudiest(samples), params, panel_size=1.0)
    titles = [ax.get_title() for ax in steps.axes]
    assert "5 median 31 (background)" in titles and "reference" in titles
    hist = tuning.value_histogram_figure(samples, params)   # one sample lacks truth: pooled
    assert len(hist.axes) == 2
    hist2 = tuning.value_histogram_figure([samples[0]], tuning.apply_settings(
        params, {"filter.apply_to": "tile", "filter.median_kernel": 15}))
    labels = [p.get_label() for p in hist2.axes[0].patches]
    assert any(lb.startswith("thin ice") for lb in labels)
    bars = tuning.fraction_bars(tuning.class_fraction_table(pvs))
    assert len(bars.axes[0].patches) == 4 * 8   # 4 columns x (3 + 2 + 3 "all") rows


def test_cloudiest():
    a, b = _scene(0), _scene(1)
    clear = TuningSample("clear", a.rgb, a.nodata, a.truth, np.zeros_like(a.cloud))
    assert tuning.cloudiest([clear, b]).name == "tiny_1"
    plain = TuningSample("plain", a.rgb, a.nodata)
    assert tuning.cloudiest([plain]).name == "plain"


# ------------------------------------------------------------------------------ samples
def test_crop_or_resize():
    img = np.arange(100 * 60, dtype=np.int32).reshape(100, 60).astype(np.uint8)
    crop = crop_or_resize(img, 50)
    assert crop.shape == (50, 50)
    assert crop[0, 0] == img[25, 5]                       # centre window
    assert crop_or_resize(img, 200) is img
    mask = np.zeros((100, 60), bool)
    mask[:50] = True
    small = crop_or_resize(mask, 50, mode="resize", nearest=True)
    assert small.shape == (50, 30) and small.dtype == bool
    assert small[:25].all() and not small[25:].any()
    with pytest.raises(InputError, match="'crop' or 'resize'"):
        crop_or_resize(img, 50, mode="zoom")


def test_load_samples_from_a_dataset_folder(tmp_path, params):
    for i in range(3):
        s = _scene(i)
        big = cv2.resize(s.rgb, (200, 160), interpolation=cv2.INTER_NEAREST)
        big[:10, :10] = 0
        write_png(tmp_path / "scenes" / f"s{i}.png", big)
        if i != 1:
            write_png(tmp_path / "truth" / f"s{i}.png",
                      cv2.resize(s.truth, (200, 160), interpolation=cv2.INTER_NEAREST))
    records = read_catalogue(tmp_path)
    p = tuning.apply_settings(params, {"tuning.scenes": 2, "tuning.preview_size": 64})
    samples = tuning.load_samples(records, p)
    assert [s.name for s in samples] == ["s0", "s1"]
    assert samples[0].rgb.shape == (64, 64, 3) and samples[0].truth.shape == (64, 64)
    assert samples[1].truth is None and samples[1].cloud is None
    resized = tuning.load_samples(records, p, mode="resize", n=1)[0]
    assert resized.rgb.shape == (51, 64, 3) and resized.nodata.shape == (51, 64)
    assert resized.nodata[:2, :2].all()                    # the no-data corner survives
    assert set(np.unique(resized.truth)) <= {0, 1, 2, 255}   # nearest: no blended classes
    with pytest.raises(InputError, match="no scenes"):
        tuning.load_samples([], p)


# ------------------------------------------------------------------------------ params output
def test_write_tuned_params(tmp_path, params):
    p = tuning.apply_settings(params, {"filter.thick_threshold": 190,
                                       "tuning.write_params": "tuned.yml"})
    prof = tmp_path / "prof" / "quick.yml"
    target = tuning.tuned_params_path(p, prof)
    assert target == tmp_path / "prof" / "tuned.yml"
    assert tuning.save_tuned_params(p, prof) == target
    back = load_params(target)
    assert back["filter"]["thick_threshold"] == 190 and back["filter"]["median_kernel"] == 31
    assert back["tuning"]["write_params"] is None
    assert tuning.save_tuned_params(params, prof) is None
    assert tuning.tuned_params_path(params, prof, default=tmp_path / "d.yml") == tmp_path / "d.yml"
    with pytest.raises(ParamsError, match=r"\.yml or \.yaml"):
        write_tuned_params(p, tmp_path / "tuned.txt")


# ------------------------------------------------------------------------------ widget UI
@pytest.fixture
def tuner(params, tmp_path):
    widget = tuning.build_tuner([_scene(0), _scene(1)], params, write_path=tmp_path / "t.yml",
                                panel_size=1.0, dpi=40)
    return widget.tuner


def test_tuner_is_a_widget_with_controls(tuner):
    import ipywidgets

    assert isinstance(tuner.widget, ipywidgets.VBox)
    assert set(tuner.controls) == set(settings_of(tuner.base_params))
    assert tuner.error is None and tuner.image.value[:4] == b"\x89PNG"
    assert "thin ice" in tuner.metrics.value and "agreement" in tuner.metrics.value


def test_slider_moves_pixels_thick_to_thin(tuner):
    before = tuner.result["fractions"]["no filter"]
    png = tuner.image.value
    tuner.controls["autolabel.thin.upper.V"].value = 245
    # linked: thick starts right above thin, so the thick band (V ~235) becomes thin
    assert tuner.controls["autolabel.thick.lower.V"].value == 246
    after = tuner.result["fractions"]["no filter"]
    assert after["thick_ice"] < before["thick_ice"] - 0.3
    assert after["thin_ice"] > before["thin_ice"] + 0.3
    assert tuner.params["autolabel"]["thin"]["upper"][2] == 245
    assert tuner.image.value != png
    assert tuner.result["agreement"]["no filter"] < 0.7


def test_unlinked_overlap_is_an_error_unless_allowed(tuner):
    good = tuner.params
    tuner.link.value = False
    tuner.controls["autolabel.thin.upper.V"].value = 245
    assert tuner.controls["autolabel.thick.lower.V"].value == 205
    assert tuner.error is not None and tuner.params == good      # keeps the last valid
    assert "invalid" in tuner.message.value
    assert "V 205..245 is in both the thin ice and thick ice ranges" in tuner.message.value
    assert "'V lower' of thick ice = 205" in tuner.error          # said by its slider
    assert "autolabel.thick" not in tuner.error


def test_unlinked_overlap_is_a_warning_when_allowed(params):
    allowed = load_params_dict({**params, "autolabel": {**params["autolabel"],
                                                        "allow_gaps": True}})
    tuner = tuning.build_tuner([_scene(0)], allowed, panel_size=1.0, dpi=40).tuner
    tuner.link.value = False
    before = tuner.result["fractions"]["no filter"]
    tuner.controls["autolabel.thin.upper.V"].value = 245
    assert tuner.error is None
    assert tuner.result["fractions"]["no filter"] == before      # thick wins the overlap
    assert "note:" in tuner.message.value and "V 205..245 is in both" in tuner.message.value


def test_invalid_combination_is_reported_not_raised(tuner, tmp_path):
    good = tuner.params
    tuner.link.value = False
    tuner.controls["autolabel.thin.lower.V"].value = 250          # lower > upper (204)
    # said in the tuner's terms: which class, which slider, which bound, the values
    assert tuner.error is not None and "thin ice" in tuner.error
    assert "'V lower' bound (250) is above its 'V upper' bound (204)" in tuner.error
    assert "invalid" in tuner.message.value and "thin ice" in tuner.message.value
    assert "V lower" in tuner.message.value and "must be {" not in tuner.message.value
    assert tuner.params == good                                   # preview keeps the last valid
    assert tuner.write(tmp_path / "bad.yml") is None
    assert not (tmp_path / "bad.yml").exists()
    assert "not written" in tuner.message.value
    tuner.controls["filter.median_kernel"].value = 154            # still invalid: now two errors
    tuner.controls["autolabel.thin.lower.V"].value = 31
    assert "median kernel" in tuner.message.value and "odd" in tuner.message.value
    assert "filter tab" in tuner.message.value and "(got 154)" in tuner.message.value
    tuner.controls["filter.median_kernel"].value = 31
    assert tuner.error is None and "valid" in tuner.message.value


def test_inverted_filter_constants_are_reported_by_their_sliders(tuner):
    tuner.controls["filter.water_v_max"].value = 250             # above thick threshold 205
    assert tuner.error is not None and tuner.error.startswith(
        "'water V max' (250) must be below 'thick threshold' (205)")
    assert tuner.controls["filter.median_kernel"].max == 255     # OpenCV's bound, not 301
    tuner.controls["filter.water_v_max"].value = 30
    assert tuner.error is None


def test_filter_sliders_change_the_filtered_labels(tuner):
    before = tuner.result["labels_filtered"].copy()
    tuner.controls["filter.water_v_max"].value = 130    # the thin band (V ~120) becomes water
    after = tuner.result["fractions"]["filter"]
    assert after["open_water"] > 0.6
    assert not np.array_equal(before, tuner.result["labels_filtered"])
    assert tuner.result["fractions"]["no filter"]["open_water"] < 0.4   # HSV ranges unchanged
    tuner.controls["filter.apply_to"].value = "tile"
    assert tuner.params["filter"]["apply_to"] == "tile" and tuner.error is None


def test_write_button_writes_the_tuned_profile(tuner, tmp_path):
    tuner.controls["autolabel.water.upper.V"].value = 40
    tuner.controls["filter.thick_threshold"].value = 190
    tuner.write_button.click()
    written = load_params(tmp_path / "t.yml")
    assert written["autolabel"]["water"]["upper"][2] == 40
    assert written["autolabel"]["thin"]["lower"][2] == 41                  # linked
    assert written["filter"]["thick_threshold"] == 190
    assert written["filter"]["median_kernel"] == 31                        # rest of the profile
    assert "wrote" in tuner.message.value
    tuner.path.value = ""
    assert tuner.write() is None and "type the path" in tuner.message.value


def test_scene_selector_and_reset(tuner):
    tuner.scene.value = 1
    assert tuner.result["name"] == "tiny_1"
    tuner.controls["filter.dilation"].value = 3
    tuner.controls["autolabel.thin.upper.V"].value = 150
    tuner.reset_button.click()
    assert tuner.settings() == settings_of(tuner.base_params)
    assert tuner.params == tuner.base_params


def test_allow_gaps_makes_a_narrowed_h_range_valid(tuner, tmp_path):
    tuner.controls["autolabel.thin.lower.H"].value = 20           # opens a gap in H
    assert tuner.error is not None
    assert "tick 'allow gaps'" in tuner.error and "allow_gaps" not in tuner.error
    assert "'H lower' of thin ice" in tuner.error
    tuner.allow_gaps.value = True
    assert tuner.error is None and tuner.params["autolabel"]["allow_gaps"] is True
    assert tuner.result["fractions"]["no filter"]["unlabelled"] >= 0
    assert "#ff00ff" in tuner.metrics.value                       # unlabelled in magenta
    assert tuner.write(tmp_path / "gaps.yml") is not None
    written = load_params(tmp_path / "gaps.yml")
    assert written["autolabel"]["allow_gaps"] is True
    assert written["autolabel"]["thin"]["lower"][0] == 20


def test_second_write_says_replaced(tuner, tmp_path):
    assert tuner.write() == tmp_path / "t.yml"
    assert "wrote" in tuner.message.value and "replaced" not in tuner.message.value
    assert tuner.write() == tmp_path / "t.yml"
    assert "replaced" in tuner.message.value


def test_build_tuner_reads_records(tmp_path, params):
    s = _scene()
    write_png(tmp_path / "scenes" / "a.png", s.rgb)
    widget = tuning.build_tuner(read_catalogue(tmp_path), params, dpi=30, panel_size=1.0)
    assert widget.tuner.result["name"] == "a" and widget.tuner.result["truth"] is None
    assert widget.tuner.path.value == ""


# ------------------------------------------------------------------------------ notebook
@pytest.mark.slow
def test_notebook_02_headless(tmp_path):
    import pandas as pd

    from seaice_utils.runner import run_notebooks

    profile = tmp_path / "small.yml"
    profile.write_text(
        "global: {profile: test-02, progress: false}\n"
        "data: {n_scenes: 2, scene_size: 512, cloudy_fraction: 0.5, nodata_wedge_fraction: 0.5}\n"
        "filter: {thick_threshold: 200}\n"
        "tuning: {scenes: 2, preview_size: 512, write_params: tuned.yml}\n")
    out = tmp_path / "out"
    manifest = run_notebooks(profile, out, only=["02"], progress=False)
    assert [n["status"] for n in manifest["notebooks"]] == ["ok"]

    df = pd.read_csv(out / "tables" / "02_class_fractions.csv")
    assert len(df) == 9 and set(df["labels"]) == {"no filter", "filter", "reference"}
    fr = df[["open_water", "thin_ice", "thick_ice", "unlabelled"]]
    np.testing.assert_allclose(fr.sum(axis=1), 1.0, atol=1e-4)
    assert (fr >= 0).all().all() and (df["unlabelled"] == 0).all()   # paper ranges: no gaps
    auto = df[df["labels"] != "reference"]
    assert ((auto["agreement"] > 0.5) & (auto["agreement"] <= 1)).all()
    assert df["agreement"][df["labels"] == "reference"].isna().all()
    assert (df["pixels"] > 0.5 * 512 * 512).all()
    # every class occurs in the synthetic reference
    assert (df[(df["scene"] == "all") & (df["labels"] == "reference")][
        ["open_water", "thin_ice", "thick_ice"]] > 0.02).all().all()

    for name in ("02_filter_tuning_panels", "02_class_fractions", "02_filter_steps",
                 "02_value_histograms"):
        png = cv2.imread(str(out / "figures" / f"{name}.png"))
        assert png is not None and min(png.shape[:2]) > 200, name
    tuned = load_params(tmp_path / "tuned.yml")
    assert tuned["filter"]["thick_threshold"] == 200 and tuned["tuning"]["write_params"] is None
    # shown without this machine's folders (the file is outside the outputs and project)
    assert manifest["records"]["02_filter_tuning"]["written_params"] == f"tuned.yml {OUTSIDE}"
    assert defaults()["filter"]["thick_threshold"] == 205
