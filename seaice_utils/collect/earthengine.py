"""Collecting the paper's scenes from Google Earth Engine (``data.source: earthengine``).

Authentication, the standard ways (nothing secret is ever written to code, params or outputs;
found offline by :func:`seaice_utils.collect.credentials.credential_status`):

1. a **service-account key** (JSON) named by ``EE_SERVICE_ACCOUNT_KEY`` or
   ``GOOGLE_APPLICATION_CREDENTIALS``; the project is ``EARTHENGINE_PROJECT`` or the key's own;
2. **user credentials** stored once with ``earthengine authenticate`` (or ``ee.Authenticate()``
   in a notebook; they live in ``~/.config/earthengine/credentials``), or Google application
   default credentials (``gcloud auth application-default login``), with the Cloud project
   registered for Earth Engine in ``EARTHENGINE_PROJECT`` (or ``GOOGLE_CLOUD_PROJECT``).

Without either, :func:`ee_initialize` raises
:class:`~seaice_utils.collect.CollectionUnavailable` with a message naming the variables to set;
errors from Earth Engine are passed on with any project id, key path or account e-mail replaced
by the name of the variable that holds it.

The query (:func:`seaice_utils.collect.query.ee_request`) becomes an ``ee.ImageCollection``
(:func:`build_collection`); one ``getInfo`` lists the products (id, date, tile, cloud cover, UTM
grid, footprint) and each scene is one ``ee.data.computePixels`` request (:func:`pixels_request`)
for a ``scene_px`` x ``scene_px`` GeoTIFF of ``B4, B3, B2`` (masked pixels 0) on the product's
grid, so no resampling happens at the paper's 10 m.

Cloud masks (``collect.cloud_masks``): the collection is joined to
``COPERNICUS/S2_CLOUD_PROBABILITY`` (s2cloudless, percent) by ``system:index``
(``ee.Join.saveFirst``, property :data:`CLOUD_PROPERTY`); each kept scene then gets a second
``computePixels`` on the same grid (:func:`mask_request`): for L2A the product's ``SCL`` band,
else the joined image's ``probability`` band (no match: no mask). The sink writes them by the rule
of :mod:`seaice_utils.collect.masks` (SCL cloud classes 100, snow/ice never masked).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from seaice_utils.collect.credentials import HOW_TO, credential_status
from seaice_utils.collect.products import CollectionUnavailable, Product
from seaice_utils.collect.query import ee_request
from seaice_utils.collect.sink import SceneSink, mask_counts, run_products
from seaice_utils.collect.windows import window_transform
from seaice_utils.errors import InputError

__all__ = ["ee_initialize", "build_collection", "product_from_info", "pixels_request",
           "mask_request", "decode_geotiff", "collect_earthengine", "CLOUD_COLLECTION",
           "CLOUD_PROPERTY"]

#: Sentinel-2 cloud probability (s2cloudless), one image per Sentinel-2 image, same system:index.
CLOUD_COLLECTION = "COPERNICUS/S2_CLOUD_PROBABILITY"
#: Property of a collection image holding its joined cloud-probability image.
CLOUD_PROPERTY = "cloud_probability"


def _scrub(text: str, secrets: list[str]) -> str:
    for value, name in secrets:
        if value:
            text = text.replace(value, f"<{name}>")
    return text


def ee_initialize(*, environ: dict | None = None, timeout_s: float = 60) -> dict[str, Any]:
    """Initialise the Earth Engine client from the environment.

    Returns
    -------
    dict
        :func:`credential_status` of what was used (names only, no values).

    Raises
    ------
    CollectionUnavailable
        No credentials or project, the library is missing, or Earth Engine cannot be reached;
        the message says which and how to fix it, and holds no secret.
    """
    env = os.environ if environ is None else environ
    st = credential_status(env)
    if not st["ready"]:
        raise CollectionUnavailable("Earth Engine is not available: " + st["problem"])
    try:
        import ee
    except ImportError:
        raise CollectionUnavailable("Earth Engine is not available: the earthengine-api package "
                                    "is not installed (pip install earthengine-api)") from None
    secrets: list[tuple[str, str]] = []
    project = env.get(st["project_var"]) if st["project_var"] else None
    if project:
        secrets.append((project, st["project_var"]))
    try:
        if st["key_var"]:
            key_path = str(Path(env[st["key_var"]]).expanduser())
            secrets.append((key_path, st["key_var"]))
            info = json.loads(Path(key_path).read_text())
            for k in ("client_email", "project_id", "private_key_id"):
                if info.get(k):
                    secrets.append((str(info[k]), f"{k} of ${st['key_var']}"))
            if info.get("type") == "service_account":
                credentials = ee.ServiceAccountCredentials(None, key_file=key_path)
                project = project or info.get("project_id")
            else:
                import google.auth

                credentials, _ = google.auth.load_credentials_from_file(
                    key_path, scopes=ee.oauth.SCOPES)
        else:
            credentials = "persistent"
        ee.Initialize(credentials=credentials, project=project)
        ee.data.setDeadline(int(timeout_s * 1000))
    except CollectionUnavailable:
        raise
    except Exception as exc:  # network, refused credentials, unregistered project, ...
        msg = _scrub(f"{type(exc).__name__}: {exc}", secrets)
        raise CollectionUnavailable(
            f"Earth Engine could not be initialised ({msg[:600]}). Check the network and that "
            f"the credentials ({st['method']}) and the project are valid. " + HOW_TO) from None
    return st


def build_collection(spec: dict, *, cloud_masks: bool = False):
    """The ``ee.ImageCollection`` of a request made by
    :func:`seaice_utils.collect.query.ee_request`.

    With ``cloud_masks`` each image carries its ``COPERNICUS/S2_CLOUD_PROBABILITY`` image
    (joined by ``system:index``) in the property :data:`CLOUD_PROPERTY`.

    Needs an initialised ``ee`` (or the offline test set-up of ``ee.apitestcase``).
    """
    import ee

    r = spec["region"]
    region = ee.Geometry.Rectangle([r["west"], r["south"], r["east"], r["north"]], None,
                                   spec["geodesic"])
    coll = (ee.ImageCollection(spec["collection"])
            .filterBounds(region)
            .filterDate(spec["start"], spec["end"])
            .filter(ee.Filter.lte(spec["cloud_property"], spec["max_cloud_cover"]))
            .select(spec["bands"])
            .limit(spec["max_products"], spec["cloud_property"]))
    if not cloud_masks:
        return coll
    probs = ee.ImageCollection(CLOUD_COLLECTION).filterBounds(region).filterDate(spec["start"],
                                                                                 spec["end"])
    same = ee.Filter.equals(leftField="system:index", rightField="system:index")
    return ee.ImageCollection(ee.Join.saveFirst(CLOUD_PROPERTY).apply(coll, probs, same))


def product_from_info(info: dict, spec: dict) -> Product:
    """A :class:`~seaice_utils.collect.products.Product` from one image of
    ``collection.getInfo()``."""
    from datetime import datetime, timezone

    props = info.get("properties", {})
    band = next((b for b in info.get("bands", []) if b.get("id") == spec["bands"][0]), None)
    if band is None or "crs_transform" not in band or "dimensions" not in band:
        raise InputError(f"Earth Engine image {info.get('id')} has no band {spec['bands'][0]} "
                         "grid in its description")
    w, h = band["dimensions"]
    t = band["crs_transform"]
    ts = props.get("system:time_start")
    when = datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
        if ts is not None else ""
    cloud = props.get(CLOUD_PROPERTY)
    foot = props.get("system:footprint") or {}
    rings = None
    if foot.get("type") == "LinearRing":
        rings = [foot["coordinates"]]
    elif foot.get("type") == "Polygon":
        rings = foot["coordinates"]
    return Product(
        id=props.get("PRODUCT_ID") or info["id"], crs=band["crs"],
        transform=(t[0], t[1], t[2], t[3], t[4], t[5]), height=int(h), width=int(w),
        datetime=when, tile=str(props.get("MGRS_TILE", "")),
        cloud_cover=props.get(spec["cloud_property"]), footprint=rings, offset=0.0,
        offset_source="Earth Engine harmonized collection (offset removed)",
        baseline=str(props["PROCESSING_BASELINE"]) if props.get("PROCESSING_BASELINE") else None,
        extra={"ee_id": info["id"], "level": spec.get("level", ""),
               "cloud_probability_id": cloud.get("id") if isinstance(cloud, dict) else None})


def pixels_request(spec: dict, product: Product, row: int, col: int, *,
                   image: Any = None) -> dict[str, Any]:
    """The ``ee.data.computePixels`` request of one scene (``expression`` is an ``ee.Image``:
    the product's bands, or ``image`` on the same grid)."""
    import ee

    a, _, c, _, e, f = window_transform(product, row, col, spec["scale"])
    if image is None:
        image = ee.Image(product.extra["ee_id"]).select(spec["bands"]).unmask(0).toUint16()
    return {
        "expression": image,
        "fileFormat": spec["file_format"],
        "grid": {
            "dimensions": {"width": spec["scene_px"], "height": spec["scene_px"]},
            "affineTransform": {"scaleX": a, "shearX": 0.0, "translateX": c,
                                "shearY": 0.0, "scaleY": e, "translateY": f},
            "crsCode": product.crs,
        },
    }


def mask_request(spec: dict, product: Product, row: int, col: int
                 ) -> tuple[dict[str, Any], str] | None:
    """The ``computePixels`` request of a scene's cloud layer and its source, or None.

    L2A: the product's ``SCL`` band (``scl``); else the joined ``S2_CLOUD_PROBABILITY`` image's
    ``probability`` band (``cloud_probability``); None when the product has no match.
    """
    import ee

    if str(product.extra.get("level", "")).upper() == "L2A":
        image, source = ee.Image(product.extra["ee_id"]).select(["SCL"]), "scl"
    elif product.extra.get("cloud_probability_id"):
        image = ee.Image(product.extra["cloud_probability_id"]).select(["probability"])
        source = "cloud_probability"
    else:
        return None
    return pixels_request(spec, product, row, col, image=image.unmask(0).toUint8()), source


def decode_geotiff(data: bytes, *, shape: tuple[int, int], what: str = "GeoTIFF",
                   bands: int = 3) -> np.ndarray:
    """The (H, W, bands) array of GeoTIFF bytes (as ``computePixels`` returns them)."""
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mem, mem.open() as src:
            arr = src.read()
    except Exception as exc:
        raise InputError(f"{what}: not a readable GeoTIFF ({exc})") from None
    if arr.shape != (bands, *shape):
        raise InputError(f"{what}: expected {bands} band(s) of {shape[0]} x {shape[1]} px "
                         f"(got {arr.shape})")
    return np.moveaxis(arr, 0, -1)


def collect_earthengine(params: dict, root: str | os.PathLike, *, progress: bool = True,
                        environ: dict | None = None) -> tuple[list[dict], dict]:
    """Collect the profile's scenes from Earth Engine into ``root``.

    Returns
    -------
    rows : list of dict
        Catalogue rows (also in ``root/catalogue.csv``).
    details : dict
        The request (without secrets), the credential method and the product count.

    Raises
    ------
    CollectionUnavailable
        No credentials, no network, or Earth Engine refused a request.
    """
    spec = ee_request(params)
    status = ee_initialize(environ=environ, timeout_s=params["collect"]["timeout_s"])
    import ee

    try:
        info = build_collection(spec, cloud_masks=params["collect"]["cloud_masks"]).getInfo()
    except Exception as exc:
        raise CollectionUnavailable(f"Earth Engine query failed ({type(exc).__name__}: "
                                    f"{str(exc)[:400]})") from None
    products = [product_from_info(f, spec) for f in info.get("features", [])]
    sink = SceneSink(root, source="earthengine", query=spec, params=params)
    px = spec["scene_px"]

    def fetch(product: Product, row: int, col: int) -> np.ndarray:
        try:
            data = ee.data.computePixels(pixels_request(spec, product, row, col))
        except Exception as exc:
            raise CollectionUnavailable(
                f"Earth Engine refused the pixels of {product.id} at row {row}, col {col} "
                f"({type(exc).__name__}: {str(exc)[:400]}); rerun to resume") from None
        return decode_geotiff(data, shape=(px, px), what=f"{product.id} r{row} c{col}")

    def fetch_mask(product: Product, row: int, col: int):
        req = mask_request(spec, product, row, col)
        if req is None:
            return None, "none"
        try:
            data = ee.data.computePixels(req[0])
        except Exception as exc:
            raise CollectionUnavailable(
                f"Earth Engine refused the cloud mask of {product.id} at row {row}, col {col} "
                f"({type(exc).__name__}: {str(exc)[:400]}); rerun to resume") from None
        arr = decode_geotiff(data, shape=(px, px), what=f"{product.id} r{row} c{col} mask",
                             bands=1)
        return arr[..., 0], req[1]

    rows = run_products(sink, products, fetch, region=spec["region"], progress=progress,
                        desc="Earth Engine scenes", fetch_mask=fetch_mask)
    details = {"collection": spec["collection"], "credentials": status["method"],
               "project_from": status["project"], "products": len(products),
               "cloud_masks": mask_counts(rows),
               "request": {k: v for k, v in spec.items()}}
    return rows, details
