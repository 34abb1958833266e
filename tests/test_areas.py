"""Ground areas of projected pixels (seaice_utils.core.areas) and area-weighted date areas."""

from __future__ import annotations

import numpy as np
import pytest

from seaice_utils.core.mosaic import date_areas
from seaice_utils.errors import InputError

pytest.importorskip("rasterio")
from rasterio.warp import transform as warp  # noqa: E402

from seaice_utils.core.areas import ground_pixel_areas  # noqa: E402


def _at(crs, lon, lat):
    x, y = warp("EPSG:4326", crs, [lon], [lat])
    return x[0], y[0]


def test_equal_area_grid_keeps_its_pixel_area():
    a = ground_pixel_areas((40.0, 0, -200000.0, 0, -40.0, -1000000.0), "EPSG:6932", (64, 80))
    assert a.shape == (64, 80) and np.allclose(a, 1600.0, rtol=1e-9)


def test_polar_stereographic_is_true_to_scale_at_71_south_and_not_poleward():
    scales = {}
    for lat in (-71.0, -78.0, -85.0):
        x, y = _at("EPSG:3031", -165.0, lat)
        a = ground_pixel_areas((40.0, 0, x, 0, -40.0, y), "EPSG:3031", (8, 8))
        scales[lat] = float(a.mean()) / 1600.0
    assert scales[-71.0] == pytest.approx(1.0, abs=1e-3)
    # spherical approximation of the areal scale: ((1 + sin 71) / (1 + sin |lat|))^-2
    for lat in (-78.0, -85.0):
        k = (1 + np.sin(np.radians(71))) / (1 + np.sin(np.radians(-lat)))
        assert scales[lat] == pytest.approx(1 / k**2, rel=2e-3)
    assert 1.0 < scales[-78.0] < scales[-85.0]


def test_utm_on_its_central_meridian_is_scaled_by_k0():
    x, y = _at("EPSG:32704", -159.0, -78.0)                  # zone 4 central meridian: 159 W
    a = ground_pixel_areas((10.0, 0, x - 5, 0, -10.0, y + 5), "EPSG:32704", (1, 1))
    assert a[0, 0] / 100.0 == pytest.approx(1 / 0.9996**2, rel=1e-6)


def test_interpolated_areas_match_the_measured_ones():
    x, y = _at("EPSG:3031", -165.0, -76.0)
    t = (40.0, 0, x, 0, -40.0, y)
    coarse = ground_pixel_areas(t, "EPSG:3031", (150, 170), step=64)
    fine = ground_pixel_areas(t, "EPSG:3031", (150, 170), step=1)
    assert np.abs(coarse - fine).max() / 1600.0 < 1e-6
    assert np.ptp(fine) > 100 * np.abs(coarse - fine).max()       # the scale does vary


@pytest.mark.parametrize("transform, crs, shape, words", [
    ((40.0, 1.0, 0.0, 0.0, -40.0, 0.0), "EPSG:3031", (4, 4), "north-up"),
    ((40.0, 0, 0.0, 0, -40.0, -1e6), "EPSG:3031", (0, 4), "non-empty"),
    ((40.0, 0, 0.0, 0, -40.0, -1e6), "EPSG:99999999", (4, 4), "cannot measure ground areas"),
])
def test_bad_grids_are_refused(transform, crs, shape, words):
    with pytest.raises(InputError, match=words):
        ground_pixel_areas(transform, crs, shape)


def test_date_areas_weighs_each_pixel():
    classes = np.array([[0, 1, 2], [2, 255, 254]], np.uint8)
    w = np.array([[1e6, 2e6, 3e6], [4e6, 5e6, 6e6]])
    a = date_areas(classes, w)
    assert (a["water_km2"], a["thin_km2"], a["thick_km2"]) == (1.0, 2.0, 7.0)
    assert a["unlabelled_km2"] == 6.0 and a["region_km2"] == 21.0
    assert a["observed_km2"] == 10.0 and a["observed_share"] == pytest.approx(10 / 21)
    assert a["pixels"][2] == 2
    region = np.array([[True, True, False], [True, True, True]])
    assert date_areas(classes, w, region)["thick_km2"] == 4.0
    with pytest.raises(InputError, match="positive areas of shape"):
        date_areas(classes, w[:, :2])
    with pytest.raises(InputError, match="positive areas of shape"):
        date_areas(classes, -w)
