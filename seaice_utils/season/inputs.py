"""The scenes of a season and their cloud masks: a folder of dated GeoTIFFs, or a CSV of them.

A CSV (``season.csv``, notebook 01's ``catalogue.csv``) names each scene's file and date and,
optionally, its cloud mask (``cloud_mask``); a folder's scenes are dated by their tags or names
(:func:`~seaice_utils.core.mosaic.scene_date`). :func:`missing_masks` applies
``season.missing_cloud_mask`` when masks are given for some scenes only.
"""

from __future__ import annotations

import csv
import datetime as _dt
from pathlib import Path

from seaice_utils.core.mosaic import scene_date
from seaice_utils.core.scenes import list_inputs
from seaice_utils.engines.base import INPUT_ERRORS, describe_error
from seaice_utils.errors import InputError

__all__ = ["season_inputs", "season_scenes", "cloud_masks", "missing_masks", "UNOBSERVED"]

_DATE_COLUMNS = ("date", "acquisition_date", "datetime")
_SCENE_COLUMNS = ("scene", "path", "file", "filename", "image")
_CLOUD_COLUMNS = ("cloud_mask", "cloud_probability", "cloud")
#: Stands for the mask of a scene without one under ``season.missing_cloud_mask: unobserved``.
UNOBSERVED = "unobserved"


def _pick(columns, wanted, what: str, path: Path) -> str:
    low = {c.strip().lower(): c for c in columns or ()}
    for w in wanted:
        if w in low:
            return low[w]
    raise InputError(f"{str(path)!r}: no {what} column (one of {', '.join(wanted)}; "
                     f"got {', '.join(columns or ()) or 'none'})")


def _from_csv(path: Path) -> tuple[list[tuple], dict]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        dcol = _pick(reader.fieldnames, _DATE_COLUMNS, "date", path)
        scol = _pick(reader.fieldnames, _SCENE_COLUMNS, "scene-file", path)
        try:
            ccol = _pick(reader.fieldnames, _CLOUD_COLUMNS, "cloud-mask", path)
        except InputError:
            ccol = None
        out, masks = [], {}
        for i, row in enumerate(reader, start=2):
            text, name = (row.get(dcol) or "").strip(), (row.get(scol) or "").strip()
            try:
                day = _dt.date.fromisoformat(text[:10])
            except ValueError:
                raise InputError(f"{str(path)!r} line {i}: {dcol} {text!r} is not an ISO "
                                 f"date") from None
            if not name:
                raise InputError(f"{str(path)!r} line {i}: empty {scol}")
            scene = path.parent / name
            if not scene.is_file():
                raise InputError(f"{str(path)!r} line {i}: scene file not found: {scene}")
            out.append((day, scene))
            mask = (row.get(ccol) or "").strip() if ccol else ""
            if mask:
                if not (path.parent / mask).is_file():
                    raise InputError(f"{str(path)!r} line {i}: cloud mask not found: "
                                     f"{path.parent / mask}")
                masks[scene.stem] = path.parent / mask
    if not out:
        raise InputError(f"{str(path)!r} lists no scenes")
    return out, masks


def season_inputs(input, folder=None, failures: list | None = None) -> tuple[list[tuple], dict]:
    """The season's sorted (date, path) scenes and its cloud masks (stem -> path), the input
    read once: see :func:`season_scenes` and :func:`cloud_masks`. A scene of a folder that
    cannot be read (or dated) is appended to ``failures`` as (file name, reason) and left out;
    without ``failures`` it is an error."""
    p = Path(input)
    masks: dict = {}
    collect = failures is not None
    failures = failures if collect else []
    if p.is_dir():
        found = []
        for f in list_inputs(p):
            try:
                found.append((scene_date(f), f))
            except INPUT_ERRORS as exc:          # unreadable, or no date: listed, not fatal
                failures.append((f.name, describe_error(exc)))
        if not found:
            raise InputError(f"no readable dated scene in {str(p)!r}"
                             + (f" ({failures[0][0]}: {failures[0][1]})" if failures else ""))
    elif p.is_file() and p.suffix.lower() == ".csv":
        found, masks = _from_csv(p)
    elif p.exists():
        raise InputError(f"{str(p)!r}: a season is a folder of scenes or a CSV of them")
    else:
        raise InputError(f"season input not found: {str(p)!r}")
    seen: dict[str, Path] = {}
    for _, f in found:
        if f.stem in seen and seen[f.stem] != f:
            raise InputError(f"two scenes named {f.stem!r}: {seen[f.stem]} and {f}")
        seen[f.stem] = f
    if failures and not collect:
        raise InputError(f"{failures[0][0]}: {failures[0][1]}")
    scenes = sorted(set(found), key=lambda df: (df[0], df[1].name, str(df[1])))
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"cloud-mask folder not found: {str(folder)!r}")
        for _, scene in scenes:
            cand = folder / scene.name
            if cand.is_file():
                masks[scene.stem] = cand
    return scenes, masks


def cloud_masks(input, folder=None) -> dict:
    """Scene stem -> cloud-mask file of a season: the CSV's ``cloud_mask`` column (also
    ``cloud_probability``, ``cloud``; relative to the CSV's folder), or, from ``folder``, the
    file with the scene's name. Empty when there are none.

    Raises
    ------
    InputError
        As :func:`season_scenes`; a listed mask that is missing, a ``folder`` that is not one.
    """
    return season_inputs(input, folder)[1]


def season_scenes(input) -> list[tuple]:
    """The (date, path) of every scene of a season, sorted by date, then file name.

    Parameters
    ----------
    input : path
        A folder of georeferenced scenes (each dated by its tags or its name,
        :func:`~seaice_utils.core.mosaic.scene_date`), or a CSV (``season.csv``, a catalogue)
        with a date column (``date``, ``acquisition_date``, ``datetime``) and a scene-file
        column (``scene``, ``path``, ``file``, ``filename``, ``image``) relative to the CSV's
        folder.

    Raises
    ------
    InputError
        Missing input, a scene without a date (named), a CSV without those columns, a scene
        file that is not there, two scenes with the same file stem.
    """
    return season_inputs(input)[0]


def missing_masks(scenes: list[tuple], masks: dict, rule: str, *, given: bool) -> dict:
    """The cloud masks of a season's scenes under ``season.missing_cloud_mask`` (``rule``).

    When masks are ``given`` (a ``--cloud-masks`` folder, or a CSV that names some), a scene
    without one is an error naming the scenes (``error``, the default), counts as cloud over all
    its pixels (``unobserved``: the mask is :data:`UNOBSERVED`) or as clear sky (``clear``).
    """
    missing = [f for _, f in scenes if f.stem not in masks]
    if not given or not missing:
        return masks
    if rule == "error":
        shown = ", ".join(f.name for f in missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"{len(missing)} scene(s) have no cloud mask: {shown}; give their masks, "
                         "or set season.missing_cloud_mask to unobserved (the scene counts as "
                         "cloud) or clear (no cloud)")
    if rule == UNOBSERVED:
        return {**masks, **{f.stem: UNOBSERVED for f in missing}}
    return masks
