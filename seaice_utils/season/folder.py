"""A season output folder holds one season: what it records, what a rerun may do to it.

``<out>/season.json`` records the season a folder holds: its scenes (file names and sizes), how
they are classified (auto-labels or a model's SHA-256, and a digest of the options) and the
package version. On a new run (:meth:`SeasonFolder.open`, before any scene is classified):

* **the same scenes** (whatever the settings): the same season; the run resumes, so it redoes
  exactly what changed (a scene whose input or settings changed, a date whose mosaic changed);
* **other scenes**, or season files without a record: another season; refused (exit 2) unless
  ``overwrite``, which removes the old season's files as a set first (``season.json``,
  ``season_areas.csv``, the date COGs, ``stac/`` and ``season.nc``
  (:mod:`seaice_utils.season.export`) and every scene output set it recorded; files seaice did
  not write are never removed);
* any output that would replace a file seaice did not write is refused the same way
  (:func:`~seaice_utils.core.ledger.claim`).

:meth:`SeasonFolder.finish` then leaves ``dates/`` and ``stac/`` holding exactly the dates of
``season_areas.csv``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Iterable, Sequence

from seaice_utils import __version__
from seaice_utils.core.ledger import LEDGER, claim, foreign, publish_file, remove_owned
from seaice_utils.core.scenes import json_bytes
from seaice_utils.engines.outputs import settings_digest
from seaice_utils.engines.scene_outputs import CLASS_MAP_SUFFIX, scene_output_paths
from seaice_utils.errors import InputError
from seaice_utils.report import sha256_file

__all__ = ["SeasonFolder", "RECORD"]

#: The record of the season a folder holds.
RECORD = "season.json"


class SeasonFolder:
    """The output folder of one season (see the module)."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.scenes_dir = self.out / "scenes"
        self.dates_dir = self.out / "dates"
        self.areas_csv = self.out / "season_areas.csv"
        self.record_path = self.out / RECORD
        self.stac_dir = self.out / "stac"
        self.collection_path = self.stac_dir / "collection.json"
        self.cube_path = self.out / "season.nc"

    def date_path(self, day: str) -> Path:
        return self.dates_dir / f"{day}{CLASS_MAP_SUFFIX}"

    def item_path(self, day: str) -> Path:
        """The STAC Item of a date (pystac's layout: ``stac/<id>/<id>.json``)."""
        return self.stac_dir / day / f"{day}.json"

    def _exports(self) -> list[Path]:
        """The season's STAC catalogue and NetCDF cube as they are in the folder."""
        files = [self.collection_path, self.cube_path]
        if self.stac_dir.is_dir():
            files += sorted(self.stac_dir.glob("*/*.json"))
        return [f for f in files if f.is_file()]

    def _record(self) -> dict | None:
        if not self.record_path.is_file() or foreign([self.record_path]):
            return None
        try:
            rec = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and isinstance(rec.get("scenes"), list) else None

    def _old_files(self, old_scenes: Iterable[str]) -> list[Path]:
        """The files of the season the folder holds (seaice's and not), for replacing it."""
        files = [self.record_path, self.areas_csv] + self._exports()
        if self.dates_dir.is_dir():
            files += sorted(self.dates_dir.glob(f"*{CLASS_MAP_SUFFIX}"))
        for name in old_scenes:
            files += list(scene_output_paths(self.scenes_dir, Path(name).stem).values())
        return [f for f in files if f.is_file()]

    def open(self, scenes: Sequence[tuple], opts, model=None, *, overwrite: bool = False) -> bool:
        """Take the folder for the season of ``scenes`` ((date, path) pairs) before any work;
        return True when it already holds it (the run then resumes). See the module."""
        identity = sorted([f.name, f.stat().st_size] for _, f in scenes)
        how = {"classifier": "auto-label" if model is None else sha256_file(model),
               "options": settings_digest(_describe(opts))}
        rec = self._record()
        held = rec is not None and rec["scenes"] == identity
        if not held:
            old = [s[0] for s in rec["scenes"]] if rec else []
            there = self._old_files(old) if rec else self._unrecorded()
            if there and not overwrite:
                what = (f"another season ({len(old)} scenes, recorded in {self.record_path})"
                        if rec else f"season files without a record ({there[0]})")
                raise InputError(f"{self.out} holds {what}; choose another output folder, or "
                                 f"pass --overwrite to replace that season's files as a set")
            if there:
                claim(there, overwrite=True, what="new season")   # adopt, then remove as a set
                self._drop_empty_items(remove_owned(there))
        days = sorted({d.isoformat() for d, _ in scenes})
        claim([self.record_path, self.areas_csv, self.collection_path, self.cube_path]
              + [self.date_path(d) for d in days] + [self.item_path(d) for d in days],
              overwrite=overwrite, what="season's outputs")
        publish_file(self.record_path, json_bytes({"scenes": identity, **how,
                                                   "version": __version__}), overwrite=True)
        return held

    def _unrecorded(self) -> list[Path]:
        files = ([self.areas_csv] if self.areas_csv.is_file() else []) + self._exports()
        if self.dates_dir.is_dir():
            files += sorted(self.dates_dir.glob(f"*{CLASS_MAP_SUFFIX}"))
        return files

    def finish(self, rows: Sequence[dict]) -> list[Path]:
        """Remove seaice's date COGs and STAC Items of dates this season no longer has (and an
        Item's folder left empty); return the files removed."""
        keep = {self.date_path(r["date"]) for r in rows} | {self.item_path(r["date"])
                                                           for r in rows}
        stale = [p for p in sorted(self.dates_dir.glob(f"*{CLASS_MAP_SUFFIX}")) if p not in keep]
        if self.stac_dir.is_dir():
            stale += [p for p in sorted(self.stac_dir.glob("*/*.json")) if p not in keep]
        if not stale:
            return []
        gone = remove_owned(stale)
        self._drop_empty_items(gone)
        return gone

    def _drop_empty_items(self, removed: Sequence[Path]) -> None:
        """Remove the Item folders that ``removed`` left holding nothing but seaice's ledger."""
        for folder in sorted({p.parent for p in removed if p.parent.parent == self.stac_dir}):
            left = list(folder.iterdir())
            if all(f.name == LEDGER and f.is_file() for f in left):
                for f in left:
                    f.unlink()
                folder.rmdir()


def _describe(opts) -> dict:
    """What of the options determines the maps (not which scenes are refused)."""
    if hasattr(opts, "describe"):
        return opts.describe()
    return {k: v for k, v in dataclasses.asdict(opts).items()
            if k not in ("expect_size", "max_bytes")}
