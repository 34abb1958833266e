"""A season run scored against the synthetic season's truth, date by date.

:func:`season_errors` compares each date of a ``seaice season`` run (its ``season_areas.csv``
and ``dates/<date>_classes.tif``) with the truth of :func:`seaice_utils.data.season.make_season`
(``truth/<date>.tif``), counted over **exactly the pixels the run classified** on that date: the
date's mosaic pixels with a class (no-data, cloud and unlabelled pixels are left out on both
sides), in ground km² (:func:`~seaice_utils.core.areas.ground_pixel_areas`). The relative
error of total ice is then the classifier's error alone, not a difference in what was seen.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from seaice_utils.core.classes import THICK, THIN, WATER
from seaice_utils.core.areas import ground_pixel_areas
from seaice_utils.core.mosaic import ClassLayer, mosaic_class_maps, read_class_layer
from seaice_utils.errors import InputError

__all__ = ["season_errors"]

_KEYS = {THICK: "thick", THIN: "thin", WATER: "water"}


def _truth_on(layer: ClassLayer, truth: ClassLayer) -> np.ndarray:
    """The truth resampled (by whole-pixel offset, nothing interpolated) onto ``layer``'s grid."""
    h, w = layer.classes.shape
    return mosaic_class_maps([truth], grid=(layer.transform, h, w)).classes


def season_errors(season_root, run_dir) -> list[dict]:
    """Per date of a season run: recovered and true areas over the pixels it classified.

    Parameters
    ----------
    season_root : path
        A synthetic season (``truth/<date>.tif``).
    run_dir : path
        The output folder of ``seaice season`` / :func:`seaice_utils.season.run_season`.

    Returns
    -------
    list of dict
        Per date: ``date``, ``ice_km2`` and ``true_ice_km2`` (thick + thin), ``rel_error_pct``
        (100 * (recovered - true) / true; positive: ice overcounted), ``thick_km2``,
        ``true_thick_km2``, ``thin_km2``, ``true_thin_km2``, ``water_km2``, ``true_water_km2``,
        and from the run ``observed_share``, ``cloud_share`` and ``quality``.

    Raises
    ------
    InputError
        A run without ``season_areas.csv``, a date without its truth or mosaic.
    """
    root, run = Path(season_root), Path(run_dir)
    table = run / "season_areas.csv"
    if not table.is_file():
        raise InputError(f"no season_areas.csv in {str(run)!r}: run `seaice season` first")
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out, areas = [], None
    for r in rows:
        day = r["date"]
        paths = (root / "truth" / f"{day}.tif", run / "dates" / f"{day}_classes.tif")
        for p in paths:
            if not p.is_file():
                raise InputError(f"{day}: {str(p)!r} not found")
        mosaic = read_class_layer(paths[1])
        truth = _truth_on(mosaic, read_class_layer(paths[0]))
        seen = mosaic.classes <= THICK
        grid = (mosaic.transform, mosaic.crs, mosaic.classes.shape)
        if areas is None or areas[0] != grid:          # the dates share one grid: once
            areas = (grid, ground_pixel_areas(*grid))
        w = areas[1][seen] / 1e6
        got = np.bincount(mosaic.classes[seen], weights=w, minlength=3)
        true = np.bincount(truth[seen], weights=w, minlength=256)[:3]
        if np.count_nonzero(truth[seen] > THICK):
            raise InputError(f"{day}: the run classified pixels outside the truth's region")
        row = {"date": day, "ice_km2": float(got[THICK] + got[THIN]),
               "true_ice_km2": float(true[THICK] + true[THIN])}
        row["rel_error_pct"] = (100 * (row["ice_km2"] - row["true_ice_km2"]) / row["true_ice_km2"]
                                if row["true_ice_km2"] else float("nan"))
        for k, name in _KEYS.items():
            row[f"{name}_km2"], row[f"true_{name}_km2"] = float(got[k]), float(true[k])
        row.update(observed_share=float(r["observed_share"]),
                   cloud_share=float(r["cloud_share"]), quality=r["quality"])
        out.append(row)
    return out
