"""Ingesting Sentinel-2 products a user already downloaded (``data.source: folder``).

Point ``data.folder`` at a folder (searched recursively) holding any of

* **band files**: single-band GeoTIFF or JPEG 2000 files whose names carry the band token, e.g.
  ``T01CDK_20191115T202851_B04_10m.jp2`` (L2A ``.SAFE``, ``IMG_DATA/R10m``),
  ``T01CDK_20191115T202851_B04.jp2`` (L1C ``.SAFE``) or ``scene_B04.tif``. Files that differ only
  by the band token (and a resolution token ``_10m``/``_20m``/``_60m``) form one product; the
  red, green and blue bands of ``collect.bands`` (B04, B03, B02) must all be there. Where a band
  exists at several resolutions the one at ``collect.scale`` (else the finest) is used.
  ``QI_DATA`` and ``MSK_*`` files are ignored.
* **multi-band GeoTIFFs** of 16-bit DNs without a band token (e.g. an Earth Engine export of
  B4, B3, B2): ``data.bands`` (1-based) says which bands are red, green, blue (default 1, 2, 3;
  required when the file has more than 3 bands).

DNs must be 16-bit integers (reflectance x 10000). Each product is cut into ``scene_px`` windows
on its own grid (edge windows padded with no-data 0; windows with less than
``min_valid_fraction`` data skipped), all windows of a product up to ``max_scenes`` in all, and
written by :class:`seaice_utils.collect.sink.SceneSink` to ``<outputs>/data/local`` with the CRS
and transform of every scene in the catalogue (and in the file itself for ``geotiff8``, the
default, and ``geotiff16``).

Cloud masks (``collect.cloud_masks``): the product's scene classification (``SCL_20m``,
``IMG_DATA/R20m`` of an L2A ``.SAFE``), else its cloud probability (``MSK_CLDPRB_20m``,
``QI_DATA``), the finest resolution found (:func:`find_mask`), resampled to each scene's 10 m
grid by nearest neighbour and written by the rule of :mod:`seaice_utils.collect.masks`. Outside
a ``.SAFE`` folder a mask file is used only when its name has the product's date and tile
tokens (``T01CDK_20191115T202851_SCL_20m.tif``).

Reflectance offset (``collect.reflectance_offset: auto``), in order: ``collect.processing_baseline``;
the ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` of the product's ``MTD_MSIL2A.xml`` /
``MTD_MSIL1C.xml`` when the ``.SAFE`` folder has it; the ``_Nxxxx`` baseline token of the
``.SAFE`` or file name (``_N0400`` and later: -0.1, i.e. ``Stretch(offset=-0.1)``, since
``BOA_ADD_OFFSET = -1000``); else 0 (older baselines, harmonized exports).

A folder without such products (8-bit images, or a dataset folder with ``scenes/``) is not
ingested: :func:`seaice_utils.data.dataset.ensure_dataset` reads it as it is.

Bad input raises :class:`~seaice_utils.errors.InputError` naming the file: a band missing from a
product, bands of different size, CRS or transform, a file that is not 16-bit, not georeferenced
or unreadable.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seaice_utils.collect.masks import read_on_grid
from seaice_utils.collect.products import (Product, band_id, offset_for_baseline,
                                           parse_baseline)
from seaice_utils.collect.sink import SceneSink, read_window, run_products
from seaice_utils.collect.windows import window_transform
from seaice_utils.errors import InputError

__all__ = ["LocalProduct", "BAND_TOKEN", "band_token", "find_products", "find_mask",
           "product_offset", "ingest_products"]

#: A Sentinel-2 band token in a file name (``B04``, ``B4``, ``B8A``), not inside a longer word.
BAND_TOKEN = re.compile(r"(?<![A-Za-z0-9])(B(?:0?[1-9]|1[0-2]|8A))(?![A-Za-z0-9])", re.IGNORECASE)
_RES_TOKEN = re.compile(r"_(\d{2,3})m(?=$|[_.])")
#: Cloud-mask files of a product: (name pattern, source), in order of preference.
_MASK_NAMES = ((re.compile(r"(?:^|_)SCL(?:_\d{2,3}m)?$", re.IGNORECASE), "scl"),
               (re.compile(r"(?:^|_)(?:MSK_)?CLDPRB(?:_\d{2,3}m)?$", re.IGNORECASE),
                "cloud_probability"))
_SUFFIXES = (".tif", ".tiff", ".jp2")
#: Band order of the ``band_id`` attribute in Sentinel-2 metadata (MTD_MSIL1C/2A.xml).
_MTD_ORDER = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
              "B11", "B12"]


@dataclass
class LocalProduct:
    """A downloaded product: one file per band, or one multi-band file.

    Attributes
    ----------
    id : str
        ``.SAFE`` name (without suffix) or the file name without the band token.
    files : list of Path
        Red, green, blue band files (three entries, possibly the same multi-band file).
    indexes : list of int
        1-based band index in each file.
    datetime, tile, baseline : str
    offset : float
    offset_source : str
    """

    id: str
    files: list
    indexes: list
    datetime: str = ""
    tile: str = ""
    baseline: str | None = None
    offset: float = 0.0
    offset_source: str = ""
    grid: dict = field(default_factory=dict)
    mask: tuple | None = None


def band_token(name: str) -> str | None:
    """The band of a file name (``B04`` style), or None.

    >>> band_token("T01CDK_20191115T202851_B04_10m.jp2"), band_token("scene_b2.tif")
    ('B04', 'B02')
    >>> band_token("S2B_MSIL2A_20191115T202851_N0213.tif") is None
    True
    """
    hits = BAND_TOKEN.findall(Path(name).stem)
    return band_id(hits[-1], style="file") if hits else None


def _safe_dir(path: Path) -> Path | None:
    return next((p for p in path.parents if p.name.upper().endswith(".SAFE")), None)


def _when_tile(text: str) -> tuple[str, str]:
    m = re.search(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", text)
    when = f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}Z" if m else ""
    t = re.search(r"(?:^|_)T(\d{2}[A-Z]{3})(?=_|$)", text)
    return when, t[1] if t else ""


def find_mask(band_file: str | os.PathLike) -> tuple[Path, str] | None:
    """``(file, source)`` of the cloud mask of the product holding ``band_file``, or None.

    In a ``.SAFE`` folder: its ``SCL`` file (source ``scl``), else its ``MSK_CLDPRB`` file
    (``cloud_probability``), the finest resolution first. Elsewhere: such a file in the band
    file's folder whose date and tile tokens are the band file's.
    """
    band_file = Path(band_file)
    safe = _safe_dir(band_file)
    where = band_file.parent
    files = sorted(p for p in (safe.rglob("*") if safe is not None else where.iterdir())
                   if p.is_file() and p.suffix.lower() in _SUFFIXES)
    tokens = _when_tile(band_file.name)
    for pattern, source in _MASK_NAMES:
        hits = [p for p in files if pattern.search(p.stem)]
        if safe is None:
            hits = [p for p in hits if tokens[0] and _when_tile(p.name) == tokens]
        if hits:
            res = {p: _RES_TOKEN.search(p.stem) for p in hits}
            return min(hits, key=lambda p: (float(res[p][1]) if res[p] else 1e9, str(p))), source
    return None


def _mtd_offsets(safe: Path | None, bands: list[str]) -> tuple[float | None, str | None]:
    """Offset (reflectance) of the bands from the product metadata XML, and the baseline."""
    if safe is None:
        return None, None
    for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
        xml = safe / name
        if not xml.is_file():
            continue
        text = xml.read_text(errors="replace")
        base = re.search(r"<PROCESSING_BASELINE>\s*([\d.]+)\s*<", text)
        baseline = parse_baseline(base[1]) if base else None
        found = {int(i): float(v) for i, v in re.findall(
            r"<(?:BOA|RADIO)_ADD_OFFSET\s+band_id=\"(\d+)\"\s*>\s*(-?[\d.]+)\s*<", text)}
        if not found:
            return 0.0 if baseline else None, baseline
        vals = {found.get(_MTD_ORDER.index(b)) for b in bands}
        if None in vals:
            return None, baseline
        if len(vals) != 1:
            raise InputError(f"{xml}: the bands {', '.join(bands)} have different offsets "
                             f"{sorted(vals)}; set collect.reflectance_offset")
        quant = re.search(r"<(?:BOA_)?QUANTIFICATION_VALUE[^>]*>\s*([\d.]+)\s*<", text)
        q = float(quant[1]) if quant else 10000.0
        return vals.pop() / q, baseline
    return None, None


def product_offset(name: str, safe: Path | None, bands: list[str], params: dict
                   ) -> tuple[float, str, str | None]:
    """``(offset, where it came from, baseline)`` of a local product (see the module docstring).

    >>> from seaice_utils.params import defaults
    >>> product_offset("S2A_MSIL2A_20220301T000000_N0400_R001_T01CDK_x", None, ["B04"], defaults())
    (-0.1, 'baseline 04.00 from the name token', '04.00')
    """
    c = params["collect"]
    token = parse_baseline(safe.name if safe is not None else "") or parse_baseline(name)
    if c["reflectance_offset"] != "auto":
        return float(c["reflectance_offset"]), "collect.reflectance_offset", token
    if c["processing_baseline"]:
        b = parse_baseline(c["processing_baseline"])
        return offset_for_baseline(b), f"collect.processing_baseline {b}", b
    off, base = _mtd_offsets(safe, bands)
    if off is not None:
        return off, f"{'BOA/RADIO_ADD_OFFSET'} of the product metadata", base or token
    if token:
        return offset_for_baseline(token), f"baseline {token} from the name token", token
    return 0.0, "baseline unknown: no offset assumed", None


def _candidates(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in _SUFFIXES or p.name.startswith("."):
            continue
        parts = {q.upper() for q in p.relative_to(folder).parts}
        if "QI_DATA" in parts or p.name.upper().startswith(("MSK_", "PVI")):
            continue
        out.append(p)
    return out


def _open(path: Path):
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return rasterio.open(path)
    except Exception as exc:
        raise InputError(f"{path}: cannot be read as a raster ({exc})") from None


def _check_16bit(path: Path, dtype: str) -> None:
    if dtype not in ("uint16", "int16"):
        raise InputError(f"{path}: expected 16-bit integer Sentinel-2 DNs (reflectance x 10000), "
                         f"got {dtype}")


def find_products(folder: str | os.PathLike, params: dict) -> list[LocalProduct]:
    """The Sentinel-2 products in a folder, checked (see the module docstring).

    Returns an empty list when the folder is a dataset folder (``catalogue.csv`` or
    ``scenes/``) or holds no band files and no 16-bit multi-band GeoTIFFs (it is then a folder
    of ready scenes).

    Raises
    ------
    InputError
        Missing folder, missing band, mismatched grids, wrong dtype, no CRS; names the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"data.folder {folder} is not a folder")
    if (folder / "catalogue.csv").is_file() or (folder / "scenes").is_dir():
        return []  # a dataset folder (e.g. an earlier collection): read as it is
    want = [band_id(b, style="file") for b in params["collect"]["bands"]]
    scale = float(params["collect"]["scale"])
    groups: dict[tuple, dict[str, list[Path]]] = {}
    multi: list[Path] = []
    for p in _candidates(folder):
        b = band_token(p.name)
        if b is None:
            if p.suffix.lower() in (".tif", ".tiff"):
                multi.append(p)
            continue
        hits = list(BAND_TOKEN.finditer(p.stem))
        m = hits[-1]
        key_stem = _RES_TOKEN.sub("", p.stem[:m.start()] + "{band}" + p.stem[m.end():])
        # L2A .SAFE: IMG_DATA/R10m, R20m, R60m hold one product at three resolutions
        parent = p.parent.parent if re.fullmatch(r"R\d{2,3}m", p.parent.name) else p.parent
        groups.setdefault((str(parent), key_stem), {}).setdefault(b, []).append(p)
    products = []
    for (parent, key_stem), files in sorted(groups.items()):
        present = [b for b in want if b in files]
        if not present:
            continue
        if len(present) < len(want):
            missing = [b for b in want if b not in files]
            some = files[present[0]][0]
            raise InputError(f"{some}: band {', '.join(missing)} missing for this product (found "
                             f"{', '.join(sorted(files))} in {parent}); need "
                             f"{', '.join(want)}")
        chosen = []
        for b in want:
            cands = files[b]
            res = {p: _RES_TOKEN.search(p.stem) for p in cands}
            exact = [p for p in cands if res[p] and float(res[p][1]) == scale]
            finest = sorted(cands, key=lambda p: float(res[p][1]) if res[p] else 0.0)
            chosen.append((exact or finest)[0])
        safe = _safe_dir(chosen[0])
        pid = safe.name[:-5] if safe is not None else key_stem.replace("_{band}", "").replace(
            "{band}", "").strip("_") or chosen[0].stem
        when, tile = _when_tile(chosen[0].name)
        if safe is not None and not when:
            when, tile = _when_tile(safe.name)
        off, src, base = product_offset(chosen[0].name, safe, want, params)
        products.append(LocalProduct(pid, chosen, [1, 1, 1], when, tile, base, off, src))
    for p in multi:
        with _open(p) as ds:
            dtype, count = ds.dtypes[0], ds.count
        if dtype == "uint8":
            continue  # an 8-bit image: a ready scene, not a product
        _check_16bit(p, dtype)
        idx = list(params["data"]["bands"] or [1, 2, 3])
        if count < 3 or (count > 3 and params["data"]["bands"] is None) or max(idx) > count:
            raise InputError(f"{p}: a {count}-band file; set data.bands to the 1-based bands "
                             f"holding red, green, blue (e.g. [4, 3, 2] for a B1..B12 stack)"
                             if count != 3 else f"{p}: data.bands {idx} exceed its {count} bands")
        when, tile = _when_tile(p.name)
        off, src, base = product_offset(p.name, _safe_dir(p), want, params)
        if src.startswith("baseline unknown"):
            src = "multi-band file without baseline token: offset 0 assumed"
        products.append(LocalProduct(p.stem, [p] * 3, idx, when, tile, base, off, src))
    for prod in products:
        _check_grid(prod)
        if params["collect"].get("cloud_masks", True):
            prod.mask = find_mask(prod.files[0])
    return products


def _check_grid(prod: LocalProduct) -> None:
    ref = None
    for path, idx in zip(prod.files, prod.indexes):
        with _open(path) as ds:
            _check_16bit(path, ds.dtypes[idx - 1])
            if ds.crs is None:
                raise InputError(f"{path}: has no CRS; Sentinel-2 products are georeferenced "
                                 "(keep the original GeoTIFF/JP2 files)")
            grid = {"crs": ds.crs, "transform": tuple(ds.transform)[:6], "shape": ds.shape}
        if tuple(grid["transform"][i] for i in (1, 3)) != (0.0, 0.0) or grid["transform"][4] >= 0:
            raise InputError(f"{path}: only north-up grids are supported "
                             f"(transform {grid['transform']})")
        if ref is None:
            ref = (path, grid)
            continue
        rpath, rgrid = ref
        if grid["shape"] != rgrid["shape"]:
            raise InputError(f"{path}: {grid['shape'][0]} x {grid['shape'][1]} px, but {rpath.name} "
                             f"is {rgrid['shape'][0]} x {rgrid['shape'][1]} px (bands must share "
                             "one grid; use files of the same resolution)")
        if grid["crs"] != rgrid["crs"]:
            raise InputError(f"{path}: CRS {grid['crs'].to_string()} differs from "
                             f"{rgrid['crs'].to_string()} of {rpath.name}")
        if not np.allclose(grid["transform"], rgrid["transform"]):
            raise InputError(f"{path}: transform {grid['transform']} differs from "
                             f"{rgrid['transform']} of {rpath.name}")
    crs = ref[1]["crs"]
    prod.grid = {"crs": f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_wkt(),
                 "transform": ref[1]["transform"], "height": ref[1]["shape"][0],
                 "width": ref[1]["shape"][1]}


def ingest_products(products: list[LocalProduct], root: str | os.PathLike, params: dict, *,
                    progress: bool = True) -> list[dict]:
    """Cut checked products (:func:`find_products`) into scenes under ``root``; resumable.

    Every window of every product with enough data is kept, up to ``collect.max_scenes``
    (``collect.scenes_per_product`` applies to remote sources only).

    Returns
    -------
    list of dict
        Catalogue rows (also in ``root/catalogue.csv``).
    """
    p = copy.deepcopy(params)
    p["collect"]["scenes_per_product"] = 10 ** 9
    query = {"source": "local", "products": [(x.id, [str(f) for f in x.files], x.indexes, x.offset)
                                             for x in products],
             "scene_px": p["collect"]["scene_px"], "scale": p["collect"]["scale"],
             "export_format": p["collect"]["export_format"],
             "min_valid_fraction": p["collect"]["min_valid_fraction"]}
    sink = SceneSink(root, source="local", query=query, params=p)
    everywhere = {"west": -180.0, "south": -90.0, "east": 180.0, "north": 90.0}
    opened: dict[str, list] = {}
    stack = ExitStack()

    def prods():
        for lp in products:
            dss = [stack.enter_context(_open(f)) for f in dict.fromkeys(lp.files)]
            by_path = dict(zip(dict.fromkeys(lp.files), dss))
            opened[lp.id] = [(by_path[f], i) for f, i in zip(lp.files, lp.indexes)]
            if lp.mask is not None:
                masks[lp.id] = (stack.enter_context(_open(lp.mask[0])), lp.mask[1])
            yield Product(id=lp.id, crs=lp.grid["crs"], transform=lp.grid["transform"],
                          height=lp.grid["height"], width=lp.grid["width"], datetime=lp.datetime,
                          tile=lp.tile, footprint=None, offset=lp.offset,
                          offset_source=lp.offset_source, baseline=lp.baseline,
                          extra={"files": [str(f) for f in lp.files]})
            for ds in dss:
                ds.close()
            opened.pop(lp.id, None)
            if lp.id in masks:
                masks.pop(lp.id)[0].close()

    def fetch(product: Product, row: int, col: int) -> np.ndarray:
        ratio = float(p["collect"]["scale"]) / product.native_res
        return read_window(opened[product.id], row, col, p["collect"]["scene_px"], ratio)

    def fetch_mask(product: Product, row: int, col: int):
        if product.id not in masks:
            return None, "none"
        ds, source = masks[product.id]
        t = window_transform(product, row, col, float(p["collect"]["scale"]))
        try:
            return read_on_grid(ds, t, p["collect"]["scene_px"], crs=product.crs), source
        except ValueError as exc:
            raise InputError(f"{lp_mask[product.id]}: cannot be put on the grid of "
                             f"{product.id} ({exc})") from None

    lp_mask = {x.id: x.mask[0] for x in products if x.mask is not None}
    masks: dict[str, tuple] = {}
    with stack:
        return run_products(sink, prods(), fetch, region=everywhere, progress=progress,
                            desc="local scenes", fetch_mask=fetch_mask)
