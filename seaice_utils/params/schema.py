"""The profile schema: every section and key a profile may hold, its type, default and rule.

:mod:`seaice_utils.params` loads and validates profiles against :data:`SCHEMA`; its module
documentation lists the rules in words.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Callable

from seaice_utils.engines.base import ENGINES
from seaice_utils.labelling.autolabel import Thresholds
from seaice_utils.labelling.cloudfilter import DILATION_MAX
from seaice_utils.labelling.kernels import MEDIAN_KERNEL_MAX

__all__ = ["SCHEMA", "Key"]


@dataclass(frozen=True)
class Key:
    """Declaration of one parameter: type(s), default, a check and what it means."""

    types: tuple
    default: Any
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    doc: str = ""


def _int(lo=None, hi=None, odd=False):
    def check(v):
        return (lo is None or v >= lo) and (hi is None or v <= hi) and (not odd or v % 2 == 1)
    rule = "an integer" + (" >= %d" % lo if lo is not None and hi is None else "") + \
        (" in %d..%d" % (lo, hi) if lo is not None and hi is not None else "") + (", odd" if odd else "")
    return check, rule


def _frac(lo=0.0, hi=1.0, hi_open=False):
    return (lambda v: lo <= v < hi if hi_open else lo <= v <= hi,
            f"a number in [{lo}, {hi}{')' if hi_open else ']'}")


def _choice(*opts):
    return (lambda v: v in opts), "one of " + ", ".join(repr(o) for o in opts)


def _hsv_range(v):
    if not isinstance(v, dict) or set(v) != {"lower", "upper"}:
        return False
    for b in (v["lower"], v["upper"]):
        if not (isinstance(b, list) and len(b) == 3 and all(isinstance(x, int) and not
                                                             isinstance(x, bool) for x in b)):
            return False
    lo, hi = v["lower"], v["upper"]
    return all(0 <= lo[i] <= hi[i] for i in range(3)) and hi[1] <= 255 and hi[2] <= 255 and hi[0] <= 255


def _int_list(lo=1):
    return (lambda v: isinstance(v, list) and len(v) > 0 and
            all(isinstance(x, int) and not isinstance(x, bool) and x >= lo for x in v),
            f"a non-empty list of integers >= {lo}")


def _k(types, default, checkrule=None, doc=""):
    check, rule = checkrule if checkrule else (None, "")
    return Key(types if isinstance(types, tuple) else (types,), default, check, rule, doc)


_DROPOUTS = (lambda v: all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 1
                         for x in v), "null or a list of numbers in [0, 1), one per U-Net step")
_HSV_RULE = (_hsv_range, "{lower: [H, S, V], upper: [H, S, V]} with 0 <= lower <= upper, S, V <= 255")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bbox(v) -> bool:
    return (isinstance(v, list) and len(v) == 4 and all(_num(x) for x in v) and
            -180 <= v[0] < v[2] <= 180 and -90 <= v[1] < v[3] <= 90)


def _iso_day(v) -> bool:
    try:
        _dt.date.fromisoformat(str(v))
        return True
    except ValueError:
        return False


def _s2_bands(v) -> bool:
    return isinstance(v, list) and len(v) == 3 and all(
        isinstance(b, str) and re.fullmatch(r"[Bb]0*([1-9]|1[0-2]|8[Aa])", b.strip()) for b in v)


def _stac_collections(v) -> bool:
    items = v if isinstance(v, list) else [v]
    return bool(items) and all(isinstance(x, str) and x.strip() for x in items)


def _offset(v) -> bool:
    return v == "auto" or (_num(v) and -1.0 <= v <= 1.0)


_DAY_TYPES = (str, _dt.date)

#: Every section and key a profile may hold.
SCHEMA: dict[str, dict[str, Key]] = {
    "global": {
        "profile": _k(str, "custom", doc="name of the profile, recorded in the manifest"),
        "seed": _k(int, 0, _int(0), "master random seed"),
        "tile_size": _k(int, 256, (lambda v: 32 <= v <= 4096 and v % 32 == 0,
                                   "an integer in 32..4096, multiple of 32"),
                        "tile side in pixels"),
        "progress": _k(bool, True, doc="show progress bars"),
        "png_renders": _k(str, "auto", _choice("auto", "always", "never"),
                          "full-size class-map PNGs (<name>_classes.png, <name>_labels.png): "
                          "auto writes them for every scene but a georeferenced one larger than "
                          "4096 x 4096 px, which gets its COG and a <name>_preview.png instead"),
        "worker_memory_gb": _k((int, float), 8, (lambda v: 0.01 <= v <= 4096,
                                                 "a number in [0.01, 4096]"),
                               "memory one worker (process, Spark task) may use for a scene; a "
                               "scene that would need more is refused by name, with its size, "
                               "before it is decoded (label, predict, season); scenes read in "
                               "bands of rows (TIFF, JPEG 2000) take bands of a sixteenth of it"),
    },
    "data": {
        "source": _k(str, "synthetic", _choice("synthetic", "folder", "earthengine", "stac"),
                     "where scenes come from; synthetic is the embedded default dataset"),
        "folder": _k((str, type(None)), None, doc="folder of scenes when source is 'folder'"),
        "bands": _k((list, type(None)), None, (lambda v: v is None or (len(v) == 3 and all(
            isinstance(x, int) and x >= 1 for x in v)), "three 1-based band numbers"),
            "file bands holding red, green, blue (default 1, 2, 3)"),
        "n_scenes": _k(int, 4, _int(1), "synthetic scenes to generate"),
        "scene_size": _k(int, 2048, _int(64, 8192), "side of synthetic scenes in pixels"),
        "cloudy_fraction": _k((int, float), 0.5, _frac(), "share of synthetic scenes with haze/shadow"),
        "cloud_cover": _k((int, float), 0.3, _frac(0.0, 0.9), "haze cover of a cloudy scene"),
        "shadow_cover": _k((int, float), 0.1, _frac(0.0, 0.9), "cloud-shadow cover of a cloudy scene"),
        "nodata_wedge_fraction": _k((int, float), 0.25, _frac(),
                                    "share of synthetic scenes with a no-data wedge"),
    },
    "filter": {
        "water_v_max": _k(int, 30, _int(0, 255),
                          "step 1: V <= this is water (below thick_threshold)"),
        "dilation": _k(int, 7, _int(1, DILATION_MAX), "step 4: dilation kernel side"),
        "median_kernel": _k(int, 155, _int(3, MEDIAN_KERNEL_MAX, odd=True),
                            "step 5: median blur aperture (at most 255: OpenCV's 8-bit median "
                            "counts the window in 16-bit histogram buckets)"),
        "truncation": _k(int, 235, _int(1, 255), "step 9: truncation level"),
        "thick_threshold": _k(int, 205, _int(1, 255), "step 11: thick ice at or above"),
        "apply_to": _k(str, "scene", _choice("scene", "tile"), "whole scene (default) or per tile"),
    },
    "autolabel": {
        # one HSV range per class, keyed and defaulted as the paper's Thresholds (Table of
        # HSV ranges): thick, thin, water
        **{key: _k(dict, rng, _HSV_RULE) for key, rng in Thresholds().to_dict().items()},
        "allow_gaps": _k(bool, False, doc="allow ranges that leave colours in no class (their "
                         "pixels are labelled 'unlabelled', code 254, and counted apart from "
                         "no-data) or overlap (the later of water, thin, thick wins); each is "
                         "then a warning instead of an error"),
    },
    "collect": {  # notebook 01 / `seaice collect`: the paper's query (Iqrah et al. 2024, data)
        "collection": _k(str, "L1C", _choice("L1C", "L2A"),
                         "processing level: L1C top-of-atmosphere (the paper's; Earth Engine "
                         "COPERNICUS/S2_HARMONIZED) or L2A surface reflectance "
                         "(COPERNICUS/S2_SR_HARMONIZED)"),
        "region": _k(list, [-180.0, -78.0, -140.0, -70.0],
                     (_bbox, "[west, south, east, north] in degrees, west < east, south < north"),
                     "query box in degrees (the paper's Ross Sea: lon -180..-140, lat -78..-70)"),
        "start_date": _k(_DAY_TYPES, "2019-11-01", (_iso_day, "a date YYYY-MM-DD"),
                         "first acquisition day (inclusive, UTC)"),
        "end_date": _k(_DAY_TYPES, "2019-12-01", (_iso_day, "a date YYYY-MM-DD"),
                       "day after the last acquisition day (exclusive, UTC)"),
        "max_cloud_cover": _k((int, float), 30, _frac(0, 100),
                              "keep products whose cloud cover (percent; CLOUDY_PIXEL_PERCENTAGE "
                              "or eo:cloud_cover) is at most this; not stated by the paper"),
        "bands": _k(list, ["B4", "B3", "B2"], (_s2_bands, "three Sentinel-2 band names"),
                    "red, green, blue bands (B4 or B04 style)"),
        "scale": _k((int, float), 10, (lambda v: 0 < v <= 1000, "a number in (0, 1000]"),
                    "pixel size in metres"),
        "scene_px": _k(int, 2048, _int(64, 8192), "scene side in pixels (the paper's 2048)"),
        "max_scenes": _k(int, 66, _int(1), "scenes to collect (the paper's 66)"),
        "scenes_per_product": _k(int, 4, _int(1),
                                 "at most this many scenes from one Sentinel-2 product"),
        "max_products": _k(int, 50, _int(1), "products (tiles x dates) to look at"),
        "min_valid_fraction": _k((int, float), 0.5, _frac(),
                                 "skip scenes with a smaller share of pixels holding data"),
        "export_format": _k(str, "geotiff8", _choice("geotiff8", "geotiff16", "png8"),
                            "scene files: geotiff8 (default) 8-bit RGB with the project's stretch "
                            "(reflectance 0..1 -> 0..255) as a Cloud-Optimised GeoTIFF with the "
                            "CRS, transform and no-data 0 (labels and predictions of it are "
                            "GeoTIFFs too); geotiff16 16-bit reflectance x 10000 GeoTIFF, same "
                            "georeference; png8 the 8-bit RGB as PNG, not georeferenced (CRS "
                            "and transform only in catalogue.csv)"),
        "reflectance_offset": _k((str, int, float), "auto",
                                 (_offset, "'auto' or a number in [-1, 1]"),
                                 "offset added to DN / 10000 (-0.1 for baseline >= 04.00); auto: "
                                 "from item metadata, MTD XML or the product name's _Nxxxx token"),
        "processing_baseline": _k((str, type(None)), None,
                                  (lambda v: re.fullmatch(r"\d{2}\.\d{2}", v) is not None,
                                   "a baseline such as '04.00'"),
                                  "baseline of local products whose names do not carry _Nxxxx"),
        "stac_url": _k(str, "https://earth-search.aws.element84.com/v1",
                       (lambda v: v.startswith(("http://", "https://")), "an http(s) URL"),
                       "STAC API searched when data.source is 'stac' (no account needed)"),
        "stac_collection": _k((str, list, type(None)), ["sentinel-2-c1-l2a", "sentinel-2-l2a"],
                              (_stac_collections, "a collection id or a non-empty list of them"),
                              "STAC collection id, or ids tried in order (the next when one gives "
                              "no items or does not exist): Earth Search's Collection 1 L2A "
                              "(DNs with BOA_ADD_OFFSET -1000), then the older sentinel-2-l2a "
                              "(offset removed in some items); null: sentinel-2-l1c / these two "
                              "by collect.collection (Earth Search's L1C assets are not public)"),
        "timeout_s": _k((int, float), 60, (lambda v: v > 0, "a number > 0"),
                        "network timeout per request in seconds"),
        "cloud_masks": _k(bool, True, doc="collect each scene's cloud mask with it "
                                          "(masks/<name>.tif on the scene's grid, named in "
                                          "catalogue.csv's cloud_mask column): the L2A scene "
                                          "classification where there is one (cloud, cirrus, "
                                          "shadow -> 100; snow/ice never masked), else the cloud "
                                          "probability (percent; season.cloud_probability is "
                                          "the threshold)"),
        "fallback": _k(str, "synthetic", _choice("synthetic", "error"),
                       "when the source cannot be used: continue with the synthetic dataset "
                       "(saying so, recorded in the manifest) or stop with an error"),
    },
    "tuning": {
        "scenes": _k(int, 2, _int(1), "scenes shown in notebook 02's panels"),
        "preview_size": _k(int, 512, _int(64, 4096), "side of the preview crops in pixels"),
        "preview_mode": _k(str, "crop", _choice("crop", "resize"),
                           "crop: centre window at full resolution (filter kernels keep their "
                           "meaning); resize: shrink the whole scene"),
        "write_params": _k((str, type(None)), None,
                           doc="path of a params file to write the tuned thresholds to (None: "
                               "don't); relative to the folder of the profile naming it"),
    },
    "training": {  # notebook 04 / `seaice train`: U-Net, Horovod (Iqrah et al. 2024, U-Net; Table III)
        "input": _k(str, "filtered", _choice("filtered", "rgb"),
                    "U-Net input tiles: filtered grey levels (the paper's) or original RGB"),
        "depth": _k(int, 5, _int(1, 8), "U-Net contracting steps (the paper's 5)"),
        "base_filters": _k(int, 16, _int(1, 128),
                           "filters of the first step, doubled per step (16)"),
        "encoder_dropouts": _k((list, type(None)), None, _DROPOUTS,
                               "one per step; null: the paper's 0.1, 0.1, 0.2, 0.2, 0.2 cut to depth"),
        "decoder_dropouts": _k((list, type(None)), None, _DROPOUTS,
                               "one per step, deepest first; null: encoder's reversed"),
        "bottleneck_dropout": _k((int, float), 0.3, _frac(0.0, 1.0, hi_open=True),
                                 "dropout of the bottleneck (0.3)"),
        "batch_size": _k(int, 32, _int(1, 1024), "batch per worker (the paper's 32 per GPU)"),
        "epochs": _k(int, 50, _int(1), "training epochs (the paper's 50)"),
        "learning_rate": _k((int, float), 1e-3, (lambda v: v > 0, "a number > 0"),
                            "Adam learning rate for one worker (1e-3)"),
        "scale_lr": _k(bool, True, doc="multiply the learning rate by the number of workers"),
        "split_by": _k(str, "scene", _choice("scene", "tile"),
                       "held-out set: whole scenes (no leakage; default) or tiles (the paper)"),
        "test_fraction": _k((int, float), 0.2, _frac(0.0, 1.0, hi_open=True),
                            "held-out share (the paper's 80/20)"),
        "man_labels": _k((str, type(None)), None,
                         doc="folder of manual label tiles <tile>.png (class maps or red/blue/green "
                             "palette) for U-Net-Man; null: the dataset's reference labels"),
        "models": _k(list, ["man", "auto"], (lambda v: len(v) > 0 and set(v) <= {"man", "auto"},
                                              "a non-empty list of 'man' and/or 'auto'"),
                     "models to train: U-Net-Man (reference labels), U-Net-Auto (auto-labels)"),
        "workers": _k(list, [1, 2], _int_list(1),
                      "Horovod process counts of Table III; the models train with the largest"),
        "threads_per_worker": _k(int, 1, _int(0), "intra-op threads per process (0: TF default)"),
        "inter_op_threads": _k(int, 1, _int(0), "inter-op threads per process (0: TF default)"),
        "cycle_time_ms": _k((int, float), 0, (lambda v: v >= 0, "a number >= 0"),
                            "Horovod's background cycle (HOROVOD_CYCLE_TIME) for launched runs, "
                            "a tuning knob (0: Horovod's default; the environment variable "
                            "wins)"),
        "pin_cores": _k(bool, True, doc="CPU runs: pin each worker process to threads_per_worker "
                        "cores of its own (local rank r: cores r*t .. r*t+t-1), as one GPU per "
                        "rank; skipped with threads_per_worker 0, GPUs, or too few cores"),
        "hosts": _k((str, type(None)), None,
                    doc="horovodrun -H for multi-host runs, e.g. 'node1:4,node2:4' (null: local)"),
        "mixed_precision": _k(bool, False, doc="mixed_float16 (GPU runs)"),
        "xla": _k(bool, False, doc="XLA auto-clustering (GPU runs)"),
        "cache": _k(bool, True, doc="cache decoded tiles in memory after the first epoch"),
        "shuffle_buffer": _k((int, type(None)), None, _int(1, 1_000_000),
                             "shuffle buffer in tiles (null: the whole shard)"),
        "timeout_s": _k((int, float, type(None)), None, (lambda v: v > 0, "a number > 0"),
                        "stop a training run after this many seconds (null: no limit)"),
    },
    "inference": {  # `seaice predict` and notebook 05: full-scene prediction (seaice_utils.inference.predict)
        "overlap": _k(int, 32, _int(0, 1024), "pixels shared by neighbouring windows, blended (must be "
                      "below global.tile_size; 0: the paper's plain tiling, seams possible)"),
        "blend": _k(str, "linear", _choice("linear", "cosine", "none"),
                    "weight ramp of a window's predictions towards its edges"),
        "border": _k(str, "reflect", _choice("reflect", "none"),
                     "mirror the scene by overlap/2 px so its edges are predicted with context"),
        "batch_size": _k(int, 8, _int(1, 1024), "windows per model call (8 on a CPU with the tflite "
                         "runtime; 16-64 on a GPU)"),
        "runtime": _k(str, "auto", _choice("auto", "tensorflow", "tflite"),
                      "auto: TensorFlow Lite (XNNPACK) on a machine without a GPU, else "
                      "TensorFlow; tflite agrees with tensorflow to ~1e-6 in probability"),
        "pixel_size_m": _k((int, float), 10.0, (lambda v: 0 < v <= 1000, "a number in (0, 1000]"),
                           "pixel side for areas when a scene has no georeference (Sentinel-2: 10)"),
        "engine": _k(str, "sequential", _choice(*ENGINES),
                     "how many scenes are spread over cores/executors"),
        "workers": _k(int, 0, _int(0), "processes or Spark cores (0: all cores)"),
        "geotiff": _k(bool, True, doc="also write a GeoTIFF when the input is georeferenced"),
    },
    "evaluation": {  # notebook 05: Tables IV, V, auto-label quality, figures (seaice_utils.evaluation.tables)
        "models_dir": _k((str, type(None)), None,
                         doc="folder of notebook 04's unet_man.keras, unet_auto.keras, "
                             "training.json / split.json (null: <outputs>/models)"),
        "cloud_threshold": _k((int, float), 0.10, _frac(0.0, 1.0, hi_open=True),
                              "Table V: tiles above this cloud/shadow cover vs at or below (0.10)"),
        "cloud_source": _k(str, "auto", _choice("auto", "index", "estimate", "file"),
                           "cover per tile: index (known, synthetic data), estimate (share of "
                           "pixels the filter re-classes), file (cloud_file); auto: index if "
                           "known for every tile, else estimate"),
        "cloud_file": _k((str, type(None)), None,
                         doc="CSV with columns tile (or scene) and cloud_fraction (0..1), for "
                             "cloud_source: file; relative to the project root"),
        "autolabel_tiles": _k(str, "test", _choice("test", "all"),
                              "tiles on which auto-labels are compared with the reference"),
        "ssim_window": _k(int, 7, _int(3, 255, odd=True),
                          "SSIM window side (odd, at most global.tile_size)"),
        "examples": _k(int, 3, _int(1, 8), "example tiles in the figures"),
        "scene_inference": _k(bool, True, doc="also predict whole test scenes with and without "
                                              "overlap (seams, areas)"),
        "max_scenes": _k(int, 2, _int(0), "at most this many test scenes predicted whole"),
        "real_sample": _k((str, type(None)), "../shared/real-samples/ross_sea_2019-11_render_1086px.png",
                          doc="optional real scene shown with its U-Net-Auto map and auto-labels "
                              "(relative to the project root; skipped when absent; null: never)"),
    },
    "engines": {  # `seaice label` engines and notebook 03 (Tables I, II; seaice_utils.labelling.jobs)
        "engine": _k(str, "sequential", _choice(*ENGINES),
                     "default engine of `seaice label`"),
        "workers": _k(int, 2, _int(0), "default worker processes / Spark task slots of "
                      "`seaice label` (0: all cores)"),
        "spark_master": _k((str, type(None)), None,
                           doc="Spark master of every command run with --engine spark (null: "
                               "local[workers]; or spark://host:port)"),
        "spark_output": _k(str, "executors", _choice("executors", "driver"),
                           "who writes Spark's outputs: the executors, or the driver after "
                           "collecting them (the paper's reduce)"),
        "spark_batch_size": _k(int, 64, _int(1, 4096), "files per Arrow batch in a Spark task"),
        "with_filter": _k(bool, True, doc="benchmarks label with the thin-cloud/shadow filter "
                                          "(false: colour segmentation only)"),
        "processes": _k(list, [1, 2, 4, 6, 8], _int_list(1),
                        "Table I: multiprocessing worker counts"),
        "spark_grid": _k(list, [[1, 1], [1, 2], [1, 4], [2, 1], [2, 2], [2, 4], [4, 1], [4, 2],
                                [4, 4]],
                         (lambda v: len(v) > 0 and all(
                             isinstance(x, list) and len(x) == 2 and all(
                                 isinstance(y, int) and not isinstance(y, bool) and y >= 1
                                 for y in x) for x in v),
                          "a non-empty list of [executors, cores] pairs of integers >= 1"),
                         "Table II: Spark executors x cores"),
        "spark_cluster": _k(str, "local", _choice("local", "standalone"),
                            "how notebook 03 emulates executors x cores on one machine: "
                            "local[executors*cores], or a local standalone cluster with one "
                            "worker running `executors` executors of `cores` cores"),
        "bench_tiles": _k((int, type(None)), None, _int(1),
                          "tiles used by Tables I and II (null: all tiles of the dataset)"),
        "repeats": _k(int, 1, _int(1), "timed runs per table row (the fastest is kept)"),
        "kernel_tiles": _k(int, 8, _int(1), "tiles timed per kernel (reference vs fast)"),
        "kernel_repeats": _k(int, 20, _int(1), "timed calls per tile and kernel"),
    },
    "season": {  # notebook 06: a synthetic season (seaice_utils.data.season, seaice_utils.season)
        "catalogue": _k((str, type(None)), None,
                        (lambda v: v is None or bool(v.strip()), "null or a CSV path"),
                        "a collected season for notebook 06 instead of the synthetic one: a "
                        "catalogue.csv of `seaice collect` (or a season CSV), relative to the "
                        "outputs folder, e.g. data/stac/catalogue.csv (null: the synthetic "
                        "season, with its truth)"),
        "n_dates": _k(int, 12, _int(12, 20),
                      "dates of the synthetic season, spread over November and December "
                      "(make_season draws 12..20)"),
        "size": _k(int, 256, _int(128, 2048), "side of the season's square region in pixels"),
        "pixel_m": _k((int, float), 40.0, (lambda v: 10 <= v <= 1000, "a number in [10, 1000]"),
                      "pixel size of the season grid in metres (EPSG:3031)"),
        "seed": _k((int, type(None)), None, _int(0),
                   "seed of the synthetic season (null: global.seed)"),
        "engine": _k(str, "sequential", _choice(*ENGINES),
                     "engine that classifies the season's scenes"),
        "workers": _k(int, 0, _int(0), "worker processes / Spark task slots (0: all cores)"),
        "missing_cloud_mask": _k(str, "error", _choice("error", "unobserved", "clear"),
                                 "a scene without its cloud mask when masks are given: error "
                                 "(refused by name before any work), unobserved (the whole "
                                 "scene counts as cloud), clear (no pixel is cloud)"),
        "cloud_probability": _k(int, 20, _int(1, 100),
                                "cloud-mask pixels at or above this probability (percent) are "
                                "cloud: not observed, filled by another scene of the date"),
        "crs": _k((str, type(None)), None, (lambda v: v is None or bool(v.strip()), "a CRS"),
                  "CRS of the season grid when the scenes have several (null: EASE-Grid 2.0, "
                  "equal-area, of their hemisphere)"),
    },
}
