"""The ``seaice`` argument parser: every command, its options and their help."""

from __future__ import annotations

import argparse

from seaice_utils import __version__
from seaice_utils.engines.base import ENGINES

__all__ = ["build_parser", "SET_COMMANDS"]

SET_COMMANDS = ("synth", "label", "reproduce", "collect", "train", "predict", "params",
                "season")


def _bands(text: str) -> tuple[int, int, int]:
    try:
        b = tuple(int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands takes three comma-separated band numbers "
                                         f"such as 4,3,2 (got {text!r})") from None
    if len(b) != 3 or min(b) < 1:
        raise argparse.ArgumentTypeError(f"--bands takes three 1-based band numbers (got {text!r})")
    return b  # type: ignore[return-value]


def _add_input_options(p: argparse.ArgumentParser, bands_help: str) -> None:
    """How input files are read (bands, no-data, reflectance stretch): label and predict."""
    p.add_argument("--bands", type=_bands, help=bands_help)
    p.add_argument("--nodata", type=float, help="fill value marking no-data (default 0)")
    p.add_argument("--reflectance-max", type=float, default=1.0,
                   help="reflectance mapped to 255 for 16-bit input (default 1.0)")
    p.add_argument("--scale", type=float, help="file units per reflectance 1 (default: 10000 "
                   "for integer input; float input whose values lie within -0.2..1.5 is "
                   "reflectance, scale 1; other float input needs --scale)")
    p.add_argument("--offset", type=float, default=0.0,
                   help="reflectance offset added after scaling (-0.1 for L2A baseline >= 04.00)")


def _add_engine_options(p: argparse.ArgumentParser, section: str) -> None:
    """How the work is spread, the same options for every command that runs on the engines;
    their defaults come from the profile section ``section``."""
    p.add_argument("--engine", choices=ENGINES, help=f"how to spread the work (default: "
                   f"{section}.engine of the profile, sequential)")
    p.add_argument("--workers", type=int, help=f"worker processes or Spark task slots, 0 = all "
                   f"cores (default: {section}.workers of the profile)")
    p.add_argument("--spark-master", help="Spark master: local[N], local[N,F] or "
                   "spark://host:port (default: engines.spark_master, else local[workers]); on a "
                   "cluster OUTPUT must be on storage every executor can write to")


def _add_overwrite(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"let {what} replace files seaice "
                   "did not write (without it such files stop the command before any work)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="seaice", description="Sea-ice classification of Sentinel-2 "
                                 "imagery: auto-labelling, U-Net training, evaluation.")
    ap.add_argument("--version", action="version", version=f"seaice {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate the synthetic Sentinel-2-like dataset")
    s.add_argument("out", nargs="?",
                   help="dataset folder to create (scenes/, truth/, cloud/, catalogue.csv)")
    s.add_argument("--agreement", action="store_true", help="print the auto-label agreement with "
                   "the synthetic truth (clear/cloudy, without/with filter) instead of writing a "
                   "dataset")
    s.add_argument("--seeds", type=int, default=4, help="scenes (seeds 0..N-1) for --agreement")
    s.add_argument("--params", default="quick", help="profile whose data section to use (quick)")
    s.add_argument("--n-scenes", type=int)
    s.add_argument("--size", type=int, help="scene side in pixels")
    s.add_argument("--seed", type=int)
    s.add_argument("--cloudy-fraction", type=float)
    s.add_argument("--cloud-cover", type=float)
    s.add_argument("--shadow-cover", type=float)
    s.add_argument("--nodata-wedge-fraction", type=float)
    _add_overwrite(s, "the dataset")
    s.add_argument("--no-progress", action="store_true")

    lb = sub.add_parser("label", help="auto-label a scene or a folder of scenes/tiles")
    lb.add_argument("input", help="image file or folder (8-bit RGB PNG/TIFF, 16-bit reflectance TIFF)")
    lb.add_argument("output", help="output folder")
    lb.add_argument("--params", help="profile for filter constants and HSV ranges (paper defaults)")
    lb.add_argument("--no-filter", action="store_true", help="skip the thin-cloud/shadow filter")
    lb.add_argument("--filter-on", choices=("scene", "tile"), help="apply the filter per scene "
                    "(default) or per tile")
    _add_input_options(lb, "1-based file bands of red,green,blue (default 1,2,3; e.g. 4,3,2 "
                       "for a B1..B12 stack)")
    lb.add_argument("--resume", action="store_true", help="skip inputs whose outputs are complete "
                    "and made with the same settings from the same input; redo the others")
    _add_engine_options(lb, "engines")
    _add_overwrite(lb, "the outputs")
    lb.add_argument("--spark-output", choices=("executors", "driver"),
                    help="Spark: executors write the labels, or the driver collects and writes "
                    "them (default: engines.spark_output)")
    lb.add_argument("--expect-size", help="fail inputs whose size is not PX (square) or HxW; "
                    "'auto' (default): the profile's tile size when every input is named like a "
                    "tile (<scene>_<row>_<col>), 'none': no check")
    lb.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("reproduce", help="run every notebook headless and regenerate all outputs")
    r.add_argument("--params", action="append", help="profile (file or name in params/; "
                   "quick). Give it more than once, or a folder of *.yml, for a batch: each "
                   "profile runs into OUTPUTS/<profile>/ (the name: global.profile, else the "
                   "file's stem) and OUTPUTS/comparison.csv compares their headline figures")
    r.add_argument("--outputs", default="outputs", help="outputs folder (outputs)")
    r.add_argument("--only", help="comma-separated notebook numbers to run, e.g. 02,03")
    r.add_argument("--notebooks", help="folder of the numbered notebooks (default: notebooks/ "
                   "of the working directory or a folder above it)")
    _add_overwrite(r, "the tables, figures and records")
    r.add_argument("--no-progress", action="store_true")

    v = sub.add_parser("verify", help="compare two runs (outputs folders or manifest.json): "
                       "tables cell by cell outside timing columns, figures by hash; exit 0 "
                       "when the tables agree, 1 when some differ")
    v.add_argument("a", metavar="A", help="outputs folder or its manifest.json")
    v.add_argument("b", metavar="B", nargs="?", help="the other run (or --reference)")
    v.add_argument("--reference", metavar="MANIFEST", help="the run to compare A with (same as B)")
    v.add_argument("--tolerance", type=float, default=0.0,
                   help="absolute difference under which numbers agree (default 0: exact)")

    c = sub.add_parser("collect", help="collect the profile's scenes (Earth Engine, STAC, local "
                       "products or synthetic) into OUTPUTS/data/<source> (what notebook 01 does)")
    c.add_argument("--params", default="quick", help="profile (file or name in params/; quick)")
    c.add_argument("--outputs", default="outputs", help="outputs folder (outputs)")
    c.add_argument("--source", choices=("synthetic", "folder", "earthengine", "stac"),
                   help="override data.source")
    c.add_argument("--folder", help="override data.folder (downloaded products or scenes); "
                   "implies --source folder")
    c.add_argument("--max-scenes", type=int, help="override collect.max_scenes")
    c.add_argument("--format", dest="export_format", choices=("geotiff8", "geotiff16", "png8"),
                   help="override collect.export_format")
    _add_overwrite(c, "the collected scenes and catalogue")
    c.add_argument("--no-fallback", action="store_true", help="fail (exit 1) instead of "
                   "falling back to the synthetic dataset when the source cannot be used")
    c.add_argument("--no-progress", action="store_true")

    tr = sub.add_parser("train", help="train U-Net-Man and U-Net-Auto (one process, or Horovod: "
                        "--workers N, or run under horovodrun)")
    tr.add_argument("--params", default="quick", help="profile (file or name in params/; quick)")
    tr.add_argument("--outputs", default="outputs", help="outputs folder (outputs)")
    tr.add_argument("--labels", choices=("man", "auto", "both"), default="both",
                    help="which model: U-Net-Man (reference labels), U-Net-Auto (auto-labels) "
                    "or both (default)")
    tr.add_argument("--workers", type=int, default=1,
                    help="Horovod processes to spawn with horovodrun --gloo (default 1: this "
                    "process, no Horovod); ignored when already run by horovodrun")
    tr.add_argument("--hosts", help="horovodrun -H for multi-host runs, e.g. node1:4,node2:4")
    tr.add_argument("--epochs", type=int, help="override training.epochs")
    tr.add_argument("--mixed-precision", action="store_true", default=None,
                    help="mixed_float16 (GPU runs)")
    tr.add_argument("--xla", action="store_true", default=None, help="XLA auto-clustering (GPU)")
    _add_overwrite(tr, "the models and their records")
    tr.add_argument("--no-progress", action="store_true")

    pr = sub.add_parser("predict", help="sea-ice maps of scenes with a trained U-Net (class map "
                        "PNG, palette PNG, GeoTIFF when georeferenced, per-scene area summary)")
    pr.add_argument("model", help="saved model (.keras); its settings JSON beside it says what "
                    "input it was trained on")
    pr.add_argument("input", help="scene file (PNG, TIFF, georeferenced Sentinel-2 GeoTIFF) or a "
                    "folder of them")
    pr.add_argument("output", help="output folder (<name>_classes.png, <name>_labels.png, "
                    "<name>_classes.tif, <name>.json, summary.csv)")
    pr.add_argument("--params", help="profile for the filter and inference settings (default: "
                    "the filter constants recorded with the model in training.json, else the "
                    "paper's; inference section defaults)")
    pr.add_argument("--input", dest="input_kind", choices=("filtered", "grey", "rgb"),
                    help="what the model was trained on (default: from its settings JSON, else "
                    "its channel count)")
    flt = pr.add_mutually_exclusive_group()
    flt.add_argument("--no-filter", action="store_true", help="skip the thin-cloud/shadow filter "
                     "(a one-channel model then sees the grey of the original colours)")
    flt.add_argument("--filter", action="store_true", help="run the filter even for a model not "
                     "trained on filtered images")
    pr.add_argument("--filter-on", choices=("scene", "tile"), help="filter per scene (default) or "
                    "per tile")
    pr.add_argument("--overlap", type=int, help="px shared by neighbouring windows, blended "
                    "(default: inference.overlap, 32; 0 = plain tiling)")
    pr.add_argument("--blend", choices=("linear", "cosine", "none"))
    pr.add_argument("--batch-size", type=int, help="windows per model call (default: "
                    "inference.batch_size)")
    pr.add_argument("--runtime", choices=("auto", "tensorflow", "tflite"),
                    help="model runtime (default: inference.runtime, auto: TensorFlow Lite on a "
                    "CPU-only machine, TensorFlow with a GPU)")
    _add_input_options(pr, "1-based file bands of red,green,blue (e.g. 4,3,2 for a B1..B12 "
                       "stack)")
    pr.add_argument("--pixel-size", type=float, help="pixel side in metres for the areas "
                    "(default: from the GeoTIFF's transform, else inference.pixel_size_m, 10)")
    pr.add_argument("--no-geotiff", action="store_true", help="no GeoTIFF output")
    _add_engine_options(pr, "inference")
    _add_overwrite(pr, "the outputs")
    pr.add_argument("--resume", action="store_true", help="skip scenes whose outputs are complete "
                    "and made with the same model and options from the same input; redo the others")
    pr.add_argument("--no-progress", action="store_true")

    se = sub.add_parser("season", help="a season: classify every dated scene, mosaic each date "
                        "on one grid, write per-date class areas (season_areas.csv)")
    se.add_argument("input", help="folder of georeferenced dated scenes, or season.csv / a "
                    "catalogue CSV (date and scene-file columns, optional cloud_mask)")
    se.add_argument("output", help="output folder (scenes/, dates/, season_areas.csv)")
    how = se.add_mutually_exclusive_group()
    how.add_argument("--model", help="trained U-Net (.keras) to classify with")
    how.add_argument("--labels", choices=("auto",), default="auto",
                     help="without a model: auto-labels (default)")
    se.add_argument("--params", help="profile (default: the paper's constants)")
    _add_engine_options(se, "season")
    se.add_argument("--resume", action="store_true", help="redo no scene whose outputs are "
                    "complete and made the same way (a rerun of the season a folder holds "
                    "always does)")
    _add_overwrite(se, "this season (an OUTPUT holding another season: its files are "
                   "replaced as a set)")
    se.add_argument("--cloud-masks", metavar="DIR", help="folder of cloud-probability masks "
                    "(percent) named like the scenes; pixels >= season.cloud_probability are "
                    "not observed")
    se.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("params", help="validate a profile and print it with defaults filled in")
    p.add_argument("file")

    nb = sub.add_parser("notebooks", help="notebook hygiene: strip outputs (before a commit) or "
                        "check the conventions")
    nb.add_argument("action", choices=("strip", "check"))
    nb.add_argument("files", nargs="+", metavar="NOTEBOOK")
    for name, sp in sub.choices.items():           # the conventions every command shares
        sp.add_argument("-v", "--verbose", action="store_true", help="also log details")
        sp.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and errors (no progress bars)")
        if name in SET_COMMANDS:
            sp.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                            help="override one profile key (repeatable), validated like the "
                                 "profile: e.g. --set filter.median_kernel=101")
    return ap


#: Commands that read a profile and so take ``--set``.
