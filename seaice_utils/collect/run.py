"""Collecting the scenes: Earth Engine, an open STAC catalogue, local products, or synthetic data.

The paper collected 66 Sentinel-2 scenes of 2048 x 2048 px (bands B4, B3, B2 at 10 m) over the
Ross Sea (latitude -78..-70, longitude -180..-140) in November 2019 with Google Earth Engine.
The ``collect`` section of a profile states that query once (:mod:`seaice_utils.collect.query`);
every way of getting data reads it and writes the same dataset folder (the layout of
:mod:`seaice_utils.data.dataset`, written by :class:`seaice_utils.collect.sink.SceneSink`) under
``<outputs>/data/<source>``, where ``<source>`` is ``earthengine``, ``stac``, ``local`` (products
ingested from ``data.folder``) or ``synthetic``. :func:`collect` dispatches by ``data.source``;
this module (with the package's ``__init__``) is the only importer of the source modules.

Sources (``data.source``)
-------------------------
``earthengine``
    :mod:`seaice_utils.collect.earthengine`: the harmonized Sentinel-2 collection (L1C
    ``COPERNICUS/S2_HARMONIZED`` by default, L2A ``COPERNICUS/S2_SR_HARMONIZED``), filtered by
    region, dates and cloud cover, each scene fetched with ``ee.data.computePixels`` on the
    product's own UTM grid. Needs an Earth Engine account (credentials from the environment).
``stac``
    :mod:`seaice_utils.collect.stac`: the same query against a public STAC API (Earth Search by
    default), reading windows of the B04/B03/B02 cloud-optimised GeoTIFFs over HTTP. No account.
``folder``
    :mod:`seaice_utils.collect.local`: Sentinel-2 products the user already downloaded (band files
    or multi-band GeoTIFFs) are cut into scenes under ``<outputs>/data/local``. A folder that
    already holds scenes (8-bit images or a dataset folder) is used as it is.
``synthetic``
    the embedded synthetic dataset (:func:`seaice_utils.data.dataset.ensure_synthetic_dataset`).

How products are cut into scenes is described in :mod:`seaice_utils.collect.windows`, the
reflectance offset of baseline 04.00 and later in :mod:`seaice_utils.collect.products`.

Fallback and the run manifest
-----------------------------
When Earth Engine or the STAC API cannot be used (no credentials, no network, nothing matched),
:func:`collect` says why, continues with the synthetic dataset (unless ``collect.fallback`` is
``error``) and records the source used with :func:`seaice_utils.report.record` under
``data_source``. Later notebooks call :func:`seaice_utils.data.dataset.resolve_source` so that
they read the dataset notebook 01 actually produced.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from seaice_utils.collect.earthengine import collect_earthengine
from seaice_utils.collect.local import find_products, ingest_products
from seaice_utils.collect.products import CollectionUnavailable
from seaice_utils.collect.stac import collect_stac
from seaice_utils.data.dataset import (DATA_SOURCE_RECORD, SceneRecord, ensure_dataset,
                                       ensure_synthetic_dataset, resolve_source)
from seaice_utils.errors import InputError
from seaice_utils.report import record, shown_path

__all__ = ["CollectResult", "collect"]


@dataclass
class CollectResult:
    """What :func:`collect` did: the source asked for, the one used, and why they differ.

    Attributes
    ----------
    requested : str
        ``data.source`` of the profile.
    effective : str
        ``earthengine``, ``stac``, ``local``, ``folder`` or ``synthetic``.
    root : Path
        The dataset folder the later notebooks read.
    records : list of SceneRecord
    reason : str
        Why ``effective`` differs from ``requested`` ('' when it does not).
    details : dict
        Query, credential method (names of environment variables only), counts.
    outputs : Path, optional
        The outputs folder: messages, tables and the record show ``root`` (and the input
        folder) relative to it (:func:`seaice_utils.report.shown_path`).
    """

    requested: str
    effective: str
    root: Path
    records: list
    reason: str = ""
    details: dict = field(default_factory=dict)
    outputs: Path | None = None

    @property
    def shown_root(self) -> str:
        """``root`` as written into outputs, e.g. ``data/synthetic``."""
        return shown_path(self.root, self.outputs)

    @property
    def fell_back(self) -> bool:
        return self.effective == "synthetic" and self.requested != "synthetic"

    @property
    def label(self) -> str:
        """Short description for titles, e.g. ``synthetic (FALLBACK: earthengine unavailable)``."""
        if self.fell_back:
            return f"{self.effective} (FALLBACK: {self.requested} unavailable)"
        return self.effective

    def message(self) -> str:
        n = len(self.records)
        if self.fell_back:
            return (f"DATA SOURCE FALLBACK: data.source is {self.requested!r} but it could not be "
                    f"used: {self.reason}\nContinuing with the embedded SYNTHETIC dataset "
                    f"({n} scenes in {self.shown_root}). Results are not the paper's Ross Sea "
                    "scenes.")
        what = {"earthengine": "Sentinel-2 scenes from Google Earth Engine",
                "stac": "Sentinel-2 scenes from the STAC API",
                "local": "scenes cut from the local Sentinel-2 products",
                "folder": "scenes of the folder, used as they are",
                "synthetic": "scenes of the embedded synthetic dataset"}[self.effective]
        return f"data source: {self.effective}: {n} {what} in {self.shown_root}"

    def markdown(self) -> str:
        """The message as a Markdown block for notebooks (a warning block when it fell back)."""
        lines = self.message().splitlines()
        if self.fell_back:
            return "> **WARNING: " + lines[0] + "**\n>\n> " + "\n> ".join(lines[1:])
        return "> " + "\n> ".join(lines)

    def as_record(self) -> dict:
        return {"requested": self.requested, "effective": self.effective,
                "fell_back": self.fell_back, "reason": self.reason, "n_scenes": len(self.records),
                "root": self.shown_root, "details": self.details,
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = [("requested source (data.source)", self.requested),
                ("source used", self.effective),
                ("fell back to synthetic", "YES" if self.fell_back else "no"),
                ("reason", self.reason or "-"), ("scenes", len(self.records)),
                ("dataset folder", self.shown_root)]
        rows += [(k, v) for k, v in self.details.items() if not isinstance(v, (dict, list))]
        return [{"item": k, "value": str(v)} for k, v in rows]


def _records(root: Path, rows: list[dict]) -> list[SceneRecord]:
    return [SceneRecord(root, r["name"], dict(r)) for r in rows]


def collect(params: dict, outputs: str | os.PathLike, *, progress: bool | None = None,
            environ: dict | None = None) -> CollectResult:
    """Collect the scenes a profile asks for; fall back to synthetic data, loudly, if needed.

    Parameters
    ----------
    params : dict
        Loaded profile (``data`` and ``collect`` sections).
    outputs : path
        Outputs folder; datasets go to ``<outputs>/data/<source>``.
    progress : bool, optional
        Progress bars (default ``global.progress``).
    environ : mapping, optional
        Environment for the Earth Engine credentials (default ``os.environ``).

    Returns
    -------
    CollectResult
        Also recorded as ``data_source`` in ``<outputs>/records`` (for the run manifest and
        :func:`seaice_utils.data.dataset.resolve_source`). A fallback emits a
        :class:`UserWarning` as well.

    Raises
    ------
    CollectionUnavailable
        When the source is unavailable and ``collect.fallback`` is ``error``.
    InputError
        On bad local input (missing band, mismatched grids, wrong dtype), naming the file.
    """
    outputs = Path(outputs)
    show = params["global"]["progress"] if progress is None else progress
    src = params["data"]["source"]
    data_dir = outputs / "data"
    if src == "synthetic":
        root = data_dir / "synthetic"
        result = CollectResult(src, "synthetic", root, ensure_synthetic_dataset(
            root, params, progress=show), details={"generator": "seaice_utils.data.synthetic"})
    elif src == "folder":
        folder = params["data"]["folder"]
        if not folder:
            raise InputError("data.folder must name a folder when data.source is 'folder'")
        products = find_products(folder, params)
        if products:
            root = data_dir / "local"
            rows = ingest_products(products, root, params, progress=show)
            if not rows:
                raise InputError(f"no scene of {params['collect']['scene_px']} px with at least "
                                 f"{params['collect']['min_valid_fraction']:.0%} valid pixels in the "
                                 f"products of {folder}")
            result = CollectResult(src, "local", root, _records(root, rows),
                                   details={"products": len(products),
                                            "input_folder": shown_path(folder, outputs)})
        else:
            # a folder of ready scenes, read as it is; an earlier run's record of products
            # ingested from this same folder still points at <outputs>/data/local
            recs = ensure_dataset(outputs, resolve_source(params, outputs), progress=show)
            result = CollectResult(src, "folder", Path(folder), recs,
                                   details={"input_folder": shown_path(folder, outputs)})
    elif src in ("earthengine", "stac"):
        root = data_dir / src
        try:
            if src == "earthengine":
                rows, details = collect_earthengine(params, root, progress=show, environ=environ)
            else:
                rows, details = collect_stac(params, root, progress=show)
            if not rows:
                raise CollectionUnavailable(
                    f"no scene matched the query ({details.get('products', 0)} products found; "
                    "widen collect.max_cloud_cover, the dates or the region, or lower "
                    "collect.min_valid_fraction)")
            result = CollectResult(src, src, root, _records(root, rows), details=details)
        except CollectionUnavailable as exc:
            if params["collect"]["fallback"] == "error":
                raise
            sroot = data_dir / "synthetic"
            synth = copy.deepcopy(params)
            synth["data"]["source"] = "synthetic"
            recs = ensure_synthetic_dataset(sroot, synth, progress=show)
            result = CollectResult(src, "synthetic", sroot, recs, reason=str(exc),
                                   details={"generator": "seaice_utils.data.synthetic"},
                                   outputs=outputs)
            warnings.warn(result.message(), UserWarning, stacklevel=2)
    else:  # load_params rejects other values; guard direct dict use
        raise InputError(f"data.source must be synthetic, folder, earthengine or stac (got {src!r})")
    result.outputs = outputs
    rec = result.as_record()
    rec["requested_folder"] = params["data"]["folder"]
    record(outputs, DATA_SOURCE_RECORD, rec)
    return result
