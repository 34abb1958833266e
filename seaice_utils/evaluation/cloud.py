"""Cloud/shadow cover of the test tiles and the two strata of Table V.

The cover of a tile comes from the tile index (known for the synthetic data: share of valid
pixels under haze or shadow, :func:`seaice_utils.evaluation.models.index_cloud`), from a user's
CSV (``evaluation.cloud_file``), or is *estimated* (:func:`estimate_cloud_fraction`) as the share
of valid pixels whose class the filter changes (colour segmentation of the original image vs of
the filtered image) -- a proxy that measures what Table V is about, where the filter matters, and
is honest about being one: notebook 05 compares it with the known cover of the synthetic data
(:func:`cloud_estimate_check`). :func:`strata` splits tiles at ``cloud_threshold`` (10 %).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from seaice_utils.core.classes import NODATA
from seaice_utils.errors import InputError
from seaice_utils.evaluation.models import TileSet, resolve_path

__all__ = ["estimate_cloud_fraction", "cloud_for_tiles", "cloud_fractions", "strata",
           "cloud_estimate_check"]


def estimate_cloud_fraction(auto_original: np.ndarray, auto_filtered: np.ndarray) -> np.ndarray:
    """Estimated cloud/shadow cover of tiles: the share of valid pixels the filter re-classes.

    Parameters
    ----------
    auto_original, auto_filtered : (N, t, t) or (t, t) uint8 ndarray
        Colour-segmentation class maps of the original and of the filtered image.

    Returns
    -------
    (N,) float ndarray (or a float for one tile)
        NaN for tiles without valid pixels.

    Notes
    -----
    Haze lifts dark water and thin ice, shadow darkens thick ice: both change the colour classes,
    which the filter (comparing each pixel with its local background) restores. The estimate is
    therefore high where clouds changed the classes, not where haze is so thin that nothing
    changes, and it also counts the (few) pixels the filter re-classes without clouds. It is a
    proxy; use the known cover or a user's file when there is one.

    >>> a = np.array([[[0, 1], [2, 2]]], np.uint8); b = np.array([[[0, 1], [1, 255]]], np.uint8)
    >>> estimate_cloud_fraction(a, b).round(3).tolist()
    [0.333]
    """
    a, b = np.asarray(auto_original), np.asarray(auto_filtered)
    if a.shape != b.shape:
        raise InputError(f"auto-label shapes differ: {a.shape} vs {b.shape}")
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    valid = (a != NODATA) & (b != NODATA)
    n = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, ((a != b) & valid).sum(axis=(1, 2)) / np.maximum(n, 1), np.nan)
    return float(out[0]) if single else out


def _read_cloud_file(path: Path, names: Sequence[str], scenes: Sequence[str]) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"cloud cover file not found: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "cloud_fraction" not in rows[0] or not ({"tile", "scene"} & set(rows[0])):
        raise InputError(f"{path} needs columns 'tile' (or 'scene') and 'cloud_fraction' "
                         f"(got {list(rows[0]) if rows else 'no rows'})")
    by_tile = {r["tile"]: r["cloud_fraction"] for r in rows if r.get("tile")}
    by_scene = {r["scene"]: r["cloud_fraction"] for r in rows
                if r.get("scene") and not r.get("tile")}
    out = []
    for n, s in zip(names, scenes):
        v = by_tile.get(n, by_scene.get(s))
        if v is None:
            raise InputError(f"{path} gives no cloud_fraction for tile {n} (scene {s})")
        try:
            f = float(v)
        except ValueError:
            raise InputError(f"{path}: cloud_fraction of {n} is not a number ({v!r})") from None
        if not 0.0 <= f <= 1.0:
            raise InputError(f"{path}: cloud_fraction must lie in 0..1 (got {f} for {n})")
        out.append(f)
    return np.array(out, float)


def cloud_for_tiles(known: np.ndarray, estimate: np.ndarray | None = None, *,
                    names: Sequence[str] = (), scenes: Sequence[str] = (),
                    has_data: np.ndarray | None = None, source: str = "auto",
                    file: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """Cloud/shadow cover of tiles and a sentence saying where it came from.

    Parameters
    ----------
    known : (N,) float ndarray
        Cover from the tile index (NaN where unknown).
    estimate : (N,) float ndarray, optional
        :func:`estimate_cloud_fraction` of the same tiles.
    names, scenes : sequences of str, keyword-only
        Tile and scene names (for ``file``).
    has_data : (N,) bool ndarray, optional, keyword-only
        Tiles holding valid pixels (only they need a known cover); default all.
    source : {"auto", "index", "estimate", "file"}, keyword-only
        ``index`` (known; synthetic data), ``estimate``, ``file`` (a CSV, see
        ``evaluation.cloud_file``), ``auto`` (index when it knows every tile holding data, else
        estimate).
    """
    known = np.asarray(known, float)
    has = np.ones(len(known), bool) if has_data is None else np.asarray(has_data, bool)
    if source == "auto":
        source = "index" if np.isfinite(known[has]).all() else "estimate"
    if source == "index":
        if not np.isfinite(known[has]).all():
            raise InputError("the tile index does not know the cloud cover of every tile; use "
                             "evaluation.cloud_source: estimate or file")
        return known, "known cloud/shadow mask of the dataset (tile index)"
    if source == "estimate":
        if estimate is None:
            raise InputError("no estimate of the cloud cover was given")
        return (np.asarray(estimate, float),
                "estimated: share of valid pixels whose class the filter changes")
    if source == "file":
        if not file:
            raise InputError("evaluation.cloud_source is 'file' but evaluation.cloud_file is not "
                             "set")
        p = resolve_path(file)
        return _read_cloud_file(p, names, scenes), f"user file {p}"
    raise InputError(f"cloud source must be auto, index, estimate or file (got {source!r})")


def cloud_fractions(tiles: TileSet, *, source: str = "auto",
                    file: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """:func:`cloud_for_tiles` of a :class:`TileSet`."""
    return cloud_for_tiles(tiles.cloud_known,
                           estimate_cloud_fraction(tiles.auto_original, tiles.auto_filtered),
                           names=tiles.names, scenes=tiles.scenes,
                           has_data=tiles.valid_fraction > 0, source=source, file=file)


def strata(cloud: np.ndarray, threshold: float = 0.10) -> dict[str, np.ndarray]:
    """Boolean tile masks of the two strata: cover > threshold, and <= threshold (or unknown)."""
    c = np.asarray(cloud, float)
    above = np.nan_to_num(c, nan=0.0) > threshold
    pct = f"{100 * threshold:g}%"
    return {f"> {pct} cloud/shadow": above, f"<= {pct} cloud/shadow": ~above}


def cloud_estimate_check(known: np.ndarray, estimate: np.ndarray, *, threshold: float = 0.10):
    """How well the estimated cover stands in for the known one (synthetic data): correlation,
    and agreement of the stratum each tile falls in. Returns a one-row DataFrame."""
    import pandas as pd

    k, e = np.asarray(known, float), np.asarray(estimate, float)
    ok = np.isfinite(k) & np.isfinite(e)
    corr = float(np.corrcoef(k[ok], e[ok])[0, 1]) if ok.sum() > 2 and k[ok].std() > 0 and \
        e[ok].std() > 0 else np.nan
    ka, ea = k[ok] > threshold, e[ok] > threshold
    return pd.DataFrame([{"tiles": int(ok.sum()), "pearson_r": corr,
                          "same_stratum_pct": (100 * float((ka == ea).mean()) if ok.any()
                                               else np.nan),
                          "known_above": int(ka.sum()), "estimated_above": int(ea.sum()),
                          "both_above": int((ka & ea).sum()),
                          "mean_known": float(k[ok].mean()) if ok.any() else np.nan,
                          "mean_estimate": float(e[ok].mean()) if ok.any() else np.nan}])
