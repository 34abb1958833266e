from pathlib import Path

import pytest

from seaice_utils.errors import ParamsError
from seaice_utils.params import SCHEMA, defaults, dump_params, load_params, load_params_dict
from seaice_utils.labelling.settings import filter_params, thresholds

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "params").glob("*.yml")))
def test_every_shipped_profile_is_valid(name):
    p = load_params(ROOT / "params" / f"{name}.yml")
    assert p["global"]["profile"] == name


def test_paper_profile_mirrors_the_paper():
    p = load_params("paper")
    assert p["data"]["n_scenes"] == 66 and p["data"]["scene_size"] == 2048
    assert p["global"]["tile_size"] == 256
    assert p["data"]["n_scenes"] * (p["data"]["scene_size"] // p["global"]["tile_size"]) ** 2 == 4224
    f = filter_params(p)
    assert (f.dilation, f.median_kernel, f.truncation, f.thick_threshold, f.water_v_max) == \
        (7, 155, 235, 205, 30)
    t = thresholds(p)
    assert t.thick.lower == (0, 0, 205) and t.water.upper == (185, 255, 30)


def test_defaults_cover_every_schema_key():
    d = defaults()
    assert {s: set(v) for s, v in d.items()} == {s: set(v) for s, v in SCHEMA.items()}


@pytest.mark.parametrize("raw,key", [
    ({"filter": {"median_kernal": 155}}, "filter.median_kernal"),
    ({"filters": {}}, "filters"),
    ({"filter": {"median_kernel": "155"}}, "filter.median_kernel"),
    ({"filter": {"median_kernel": 154}}, "filter.median_kernel"),
    ({"filter": {"dilation": True}}, "filter.dilation"),
    ({"data": {"cloud_cover": 1.5}}, "data.cloud_cover"),
    ({"data": {"source": "ftp"}}, "data.source"),
    ({"global": {"tile_size": 250}}, "global.tile_size"),
    ({"autolabel": {"thin": {"lower": [0, 0, 250], "upper": [179, 255, 200]}}}, "autolabel.thin"),
    ({"autolabel": {"thin": {"lower": [0, 0], "upper": [179, 255, 200]}}}, "autolabel.thin"),
    # sizes beyond what OpenCV (or memory) takes fail here, naming the key and the range
    ({"filter": {"median_kernel": 100001}}, "filter.median_kernel"),
    ({"filter": {"median_kernel": 257}}, "filter.median_kernel"),
    ({"filter": {"dilation": 1001}}, "filter.dilation"),
    ({"filter": {"truncation": 0}}, "filter.truncation"),
    ({"filter": {"thick_threshold": 0}}, "filter.thick_threshold"),
    ({"global": {"tile_size": 8192}}, "global.tile_size"),
    ({"data": {"scene_size": 100000}}, "data.scene_size"),
    ({"collect": {"scene_px": 20480}}, "collect.scene_px"),
    ({"collect": {"scale": 10000}}, "collect.scale"),
    ({"tuning": {"preview_size": 51200}}, "tuning.preview_size"),
    ({"training": {"batch_size": 32000}}, "training.batch_size"),
    ({"training": {"base_filters": 1600}}, "training.base_filters"),
    ({"training": {"shuffle_buffer": 10 ** 9}}, "training.shuffle_buffer"),
    ({"inference": {"overlap": 2000}}, "inference.overlap"),
    ({"inference": {"overlap": 256}}, "inference.overlap"),             # not below tile_size
    ({"inference": {"batch_size": 8000}}, "inference.batch_size"),
    ({"inference": {"pixel_size_m": 1e5}}, "inference.pixel_size_m"),
    ({"evaluation": {"ssim_window": 301}}, "evaluation.ssim_window"),
    ({"global": {"tile_size": 64}, "evaluation": {"ssim_window": 65}}, "evaluation.ssim_window"),
    ({"engines": {"spark_batch_size": 100000}}, "engines.spark_batch_size"),
    # contradicting keys
    ({"filter": {"water_v_max": 250, "thick_threshold": 100}}, "filter.water_v_max"),
    ({"autolabel": {"thin": {"lower": [0, 0, 31], "upper": [185, 255, 150]}}}, "autolabel: V 151"),
    ({"autolabel": {"thin": {"lower": [0, 0, 31], "upper": [185, 255, 230]}}}, "autolabel: V 205"),
])
def test_bad_values_name_the_key(raw, key):
    with pytest.raises(ParamsError) as e:
        load_params_dict(raw)
    assert str(e.value).startswith(key)


def test_file_errors(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "none.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("filter: [1, 2\n")
    with pytest.raises(ParamsError, match="YAML"):
        load_params(bad)
    lst = tmp_path / "list.yml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(lst)


def test_dump_roundtrip_and_refuses_invalid(tmp_path):
    p = load_params("quick")
    p["filter"]["median_kernel"] = 101
    dump_params(p, tmp_path / "t.yml")
    assert load_params(tmp_path / "t.yml")["filter"]["median_kernel"] == 101
    p["filter"]["median_kernel"] = 100
    with pytest.raises(ParamsError):
        dump_params(p, tmp_path / "u.yml")
    assert not (tmp_path / "u.yml").exists()


def test_size_errors_say_the_allowed_range():
    with pytest.raises(ParamsError) as e:
        load_params_dict({"filter": {"median_kernel": 100001}})
    assert str(e.value) == "filter.median_kernel: must be an integer in 3..255, odd (got 100001)"
    with pytest.raises(ParamsError) as e:
        load_params_dict({"global": {"tile_size": 8192}})
    assert str(e.value) == ("global.tile_size: must be an integer in 32..4096, multiple of 32 "
                            "(got 8192)")
    with pytest.raises(ParamsError, match=r"inference\.overlap: must be below global\.tile_size "
                       r"\(128\) \(got 128"):
        load_params_dict({"global": {"tile_size": 128}, "inference": {"overlap": 128}})
    p = load_params_dict({"filter": {"median_kernel": 255, "dilation": 255}})
    assert filter_params(p).median_kernel == 255


def test_inverted_filter_constants_name_both_keys():
    with pytest.raises(ParamsError) as e:
        load_params_dict({"filter": {"water_v_max": 250, "thick_threshold": 100}})
    assert str(e.value).startswith("filter.water_v_max (250) must be below "
                                   "filter.thick_threshold (100)")


def test_threshold_gaps_overlaps_and_order(recwarn):
    gap = {"thin": {"lower": [0, 0, 31], "upper": [185, 255, 150]}}
    with pytest.raises(ParamsError) as e:
        load_params_dict({"autolabel": gap})
    assert str(e.value) == (
        "autolabel: V 151..204 is in no class's range (autolabel.thin.upper.V = 150, "
        "autolabel.thick.lower.V = 205); set autolabel.allow_gaps: true to label such pixels "
        "'unlabelled' (code 254) and let the later class win overlaps")
    with pytest.raises(ParamsError, match="both the open water and thin ice ranges"):
        load_params_dict({"autolabel": {"water": {"lower": [0, 0, 0], "upper": [185, 255, 40]}}})
    inverted = {"water": {"lower": [0, 0, 205], "upper": [185, 255, 255]},
                "thick": {"lower": [0, 0, 0], "upper": [185, 255, 30]}}
    for allow in (False, True):                                      # order: always an error
        with pytest.raises(ParamsError, match="autolabel: the V ranges are inverted"):
            load_params_dict({"autolabel": {**inverted, "allow_gaps": allow}})
    assert not recwarn.list                                          # the defaults: no warning
    with pytest.warns(UserWarning, match=r"V 151\.\.204 is in no class's range"):
        p = load_params_dict({"autolabel": {**gap, "allow_gaps": True}})
    t = thresholds(p)
    assert t.allow_gaps and t.to_dict()["allow_gaps"] is True
    assert "allow_gaps" not in thresholds(defaults()).to_dict()       # sidecars stay as they were
