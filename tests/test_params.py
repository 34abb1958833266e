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
