"""The ``seaice`` command line.

::

    seaice synth OUT [--params FILE] [--n-scenes N] [--size PX] [--seed S] ...
    seaice synth --agreement [--size PX] [--seeds N]   auto-label agreement with the synthetic truth
    seaice label INPUT OUTPUT [--engine {sequential,multiprocessing,spark}] [--workers N]
                 [--spark-master URL] [--no-filter] [--bands R,G,B] [--nodata V]
                 [--params FILE] [--resume]
    seaice reproduce [--params FILE] [--outputs DIR] [--only 02,03] [--notebooks DIR]
    seaice reproduce --params A.yml --params B.yml | --params DIR ...   batch: OUTPUTS/<profile>/,
                 OUTPUTS/comparison.csv
    seaice verify A B | A --reference MANIFEST [--tolerance X]   compare two runs' tables
    seaice collect [--params FILE] [--outputs DIR] [--source S] [--folder DIR] [--no-fallback]
    seaice train [--params FILE] [--outputs DIR] [--labels man|auto|both] [--workers N]
                 [--hosts H] [--epochs N] [--mixed-precision] [--xla]
                 (also: horovodrun --gloo -np N -H localhost:N seaice train --params FILE)
    seaice predict MODEL INPUT OUTPUT [--params FILE] [--input filtered|grey|rgb] [--no-filter]
                 [--overlap PX] [--batch-size N] [--runtime auto|tensorflow|tflite]
                 [--engine {sequential,multiprocessing,spark}]
                 [--workers N] [--bands R,G,B] [--pixel-size M] [--resume]
    seaice season INPUT OUTPUT [--model MODEL | --labels auto] [--params FILE] [--engine E]
                 [--workers N] [--resume] [--cloud-masks DIR]
                                             per-date class areas of a season of scenes
    seaice params FILE            validate a profile and print it with defaults filled in
    seaice notebooks strip|check NOTEBOOK...   notebook hygiene (outputs stripped, conventions)

Exit status: 0 on success, 1 when some inputs failed (listed), 2 on bad arguments or parameters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seaice_utils.errors import InputError, ParamsError, SeaIceError
from seaice_utils import __version__

__all__ = ["main", "build_parser"]


def _bands(text: str) -> tuple[int, int, int]:
    try:
        b = tuple(int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands takes three comma-separated band numbers "
                                         f"such as 4,3,2 (got {text!r})") from None
    if len(b) != 3 or min(b) < 1:
        raise argparse.ArgumentTypeError(f"--bands takes three 1-based band numbers (got {text!r})")
    return b  # type: ignore[return-value]


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
    s.add_argument("--no-progress", action="store_true")

    lb = sub.add_parser("label", help="auto-label a scene or a folder of scenes/tiles")
    lb.add_argument("input", help="image file or folder (8-bit RGB PNG/TIFF, 16-bit reflectance TIFF)")
    lb.add_argument("output", help="output folder")
    lb.add_argument("--params", help="profile for filter constants and HSV ranges (paper defaults)")
    lb.add_argument("--no-filter", action="store_true", help="skip the thin-cloud/shadow filter")
    lb.add_argument("--filter-on", choices=("scene", "tile"), help="apply the filter per scene "
                    "(default) or per tile")
    lb.add_argument("--bands", type=_bands, help="1-based file bands of red,green,blue (default "
                    "1,2,3; e.g. 4,3,2 for a B1..B12 stack)")
    lb.add_argument("--nodata", type=float, help="fill value marking no-data (default 0)")
    lb.add_argument("--reflectance-max", type=float, default=1.0,
                    help="reflectance mapped to 255 for 16-bit input (default 1.0)")
    lb.add_argument("--scale", type=float, help="file units per reflectance 1 (default: 10000 "
                    "for integer input; float input whose values lie within -0.2..1.5 is "
                    "reflectance, scale 1; other float input needs --scale)")
    lb.add_argument("--offset", type=float, default=0.0,
                    help="reflectance offset added after scaling (-0.1 for L2A baseline >= 04.00)")
    lb.add_argument("--resume", action="store_true", help="skip inputs whose outputs are complete "
                    "and made with the same settings from the same input; redo the others")
    lb.add_argument("--engine", choices=("sequential", "multiprocessing", "spark"),
                    help="how to spread the work (default: engines.engine of the profile, "
                    "sequential)")
    lb.add_argument("--workers", type=int, help="worker processes or Spark task slots "
                    "(default: engines.workers, 2)")
    lb.add_argument("--spark-master", help="Spark master: local[N], local[N,F] or "
                    "spark://host:port (default local[workers])")
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
    tr.add_argument("--no-progress", action="store_true")

    pr = sub.add_parser("predict", help="sea-ice maps of scenes with a trained U-Net (class map "
                        "PNG, palette PNG, GeoTIFF when georeferenced, per-scene area summary)")
    pr.add_argument("model", help="saved model (.keras); its settings JSON beside it says what "
                    "input it was trained on")
    pr.add_argument("input", help="scene file (PNG, TIFF, georeferenced Sentinel-2 GeoTIFF) or a "
                    "folder of them")
    pr.add_argument("output", help="output folder (<name>_classes.png, <name>_map.png, "
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
    pr.add_argument("--bands", type=_bands, help="1-based file bands of red,green,blue (e.g. "
                    "4,3,2 for a B1..B12 stack)")
    pr.add_argument("--nodata", type=float, help="fill value marking no-data (default 0)")
    pr.add_argument("--reflectance-max", type=float, default=1.0,
                    help="reflectance mapped to 255 for 16-bit input (default 1.0)")
    pr.add_argument("--scale", type=float, help="file units per reflectance 1 (default: 10000 "
                    "for integer input; float input whose values lie within -0.2..1.5 is "
                    "reflectance, scale 1; other float input needs --scale)")
    pr.add_argument("--offset", type=float, default=0.0,
                    help="reflectance offset added after scaling (-0.1 for L2A baseline >= 04.00)")
    pr.add_argument("--pixel-size", type=float, help="pixel side in metres for the areas "
                    "(default: from the GeoTIFF's transform, else inference.pixel_size_m, 10)")
    pr.add_argument("--no-geotiff", action="store_true", help="no GeoTIFF output")
    pr.add_argument("--engine", choices=("sequential", "multiprocessing", "spark"),
                    help="how scenes are spread (default: inference.engine, sequential)")
    pr.add_argument("--workers", type=int, help="processes or Spark cores (default: "
                    "inference.workers; 0 = all cores)")
    pr.add_argument("--spark-master", help="Spark master (default local[workers]); on a cluster "
                    "OUTPUT must be on storage every executor can write to")
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
    se.add_argument("--engine", choices=("sequential", "multiprocessing", "spark"),
                    default="sequential")
    se.add_argument("--workers", type=int, default=1)
    se.add_argument("--resume", action="store_true", help="redo no scene whose outputs are "
                    "complete and made the same way")
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
SET_COMMANDS = ("synth", "label", "reproduce", "collect", "train", "predict", "params",
                "season")


def _log():
    import logging

    return logging.getLogger("seaice")


def _configure_logging(a) -> None:
    """The ``seaice`` logger: INFO to stderr by default, DEBUG with -v, WARNING with -q."""
    import logging

    level = (logging.WARNING if getattr(a, "quiet", False)
             else logging.DEBUG if getattr(a, "verbose", False) else logging.INFO)
    class CurrentStderr(logging.Handler):
        """Writes to whatever ``sys.stderr`` is when a record comes (a notebook's, a test's)."""

        def emit(self, record):
            try:
                sys.stderr.write(self.format(record) + "\n")
            except Exception:
                self.handleError(record)

    log = logging.getLogger("seaice")
    if not any(getattr(h, "_seaice_cli", False) for h in log.handlers):
        handler = CurrentStderr()
        handler._seaice_cli = True
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    if getattr(a, "quiet", False) and hasattr(a, "no_progress"):
        a.no_progress = True


def _cmd_synth(a) -> int:
    from seaice_utils.data.dataset import ensure_synthetic_dataset
    from seaice_utils.params import load_params, load_params_dict

    if a.agreement:
        import cv2

        from seaice_utils.data.synthetic import agreement_lines, agreement_table

        cv2.setNumThreads(1)
        print("\n".join(agreement_lines(agreement_table(range(a.seeds), size=a.size or 2048))))
        return 0
    if a.out is None:
        raise ParamsError("give the dataset folder OUT (or --agreement)")
    params = load_params(a.params, a.set)
    over = {"n_scenes": a.n_scenes, "scene_size": a.size, "cloudy_fraction": a.cloudy_fraction,
            "cloud_cover": a.cloud_cover, "shadow_cover": a.shadow_cover,
            "nodata_wedge_fraction": a.nodata_wedge_fraction}
    params["data"].update({k: v for k, v in over.items() if v is not None})
    if a.seed is not None:
        params["global"]["seed"] = a.seed
    params = load_params_dict(params, source="command line")
    recs = ensure_synthetic_dataset(a.out, params, progress=not a.no_progress)
    print(f"{len(recs)} synthetic scenes in {a.out}")
    return 0


def _expect_size(text: str | None, inputs, tile_size: int):
    from seaice_utils.core.tiling import parse_tile_name

    def is_tile(name: str) -> bool:
        try:
            parse_tile_name(name)
        except InputError:
            return False
        return True

    text = (text or "auto").strip().lower()
    if text == "none":
        return None
    if text == "auto":
        names = [p.stem for p in inputs]
        return (tile_size, tile_size) if names and all(map(is_tile, names)) else None
    try:
        parts = [int(x) for x in text.split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise InputError(f"--expect-size takes PX, HxW, auto or none (got {text!r})")
    return (parts[0], parts[-1])


def _cmd_label(a) -> int:
    from seaice_utils.labelling.jobs import run_label_job
    from seaice_utils.params import load_params
    from seaice_utils.labelling.settings import filter_params, thresholds
    from seaice_utils.core.scenes import list_inputs
    from seaice_utils.labelling.pipeline import LabelOptions
    from seaice_utils.core.scenes import Stretch

    params = load_params(a.params, a.set)
    if a.filter_on:
        params["filter"]["apply_to"] = a.filter_on
    eng = params["engines"]
    engine = a.engine or eng["engine"]
    workers = a.workers if a.workers is not None else eng["workers"]
    if workers < 1:
        raise ParamsError(f"--workers must be >= 1 (got {workers})")
    files = list_inputs(a.input)
    opts = LabelOptions(filter_params=None if a.no_filter else filter_params(params),
                        thresholds=thresholds(params), bands=a.bands, nodata=a.nodata,
                        stretch=Stretch(scale=a.scale, offset=a.offset,
                                        reflectance_max=a.reflectance_max),
                        expect_size=_expect_size(a.expect_size, files,
                                                 params["global"]["tile_size"]))
    spark = {}
    if engine == "spark":
        spark = dict(master=a.spark_master or eng["spark_master"],
                     output=a.spark_output or eng["spark_output"],
                     batch_size=eng["spark_batch_size"])
    elif a.spark_master or a.spark_output:
        raise ParamsError("--spark-master and --spark-output need --engine spark")
    summary = run_label_job(files, a.output, opts, engine=engine, workers=workers,
                            resume=a.resume, progress=not a.no_progress, **spark)
    print(summary.describe())
    return 0 if summary.ok else 1


def _cmd_reproduce(a) -> int:
    from seaice_utils.runner import run_notebooks

    only = [x.strip() for x in a.only.split(",")] if a.only else None
    specs = a.params or ["quick"]
    batch = len(specs) > 1 or Path(specs[0]).is_dir()
    if a.set:
        specs = _profiles_with_set(specs, a.set, a.outputs)
    if batch:
        from seaice_utils.runner import run_batch
        from seaice_utils.verify import comparison_text

        rows = run_batch(specs, a.outputs, only=only, notebook_dir=a.notebooks,
                         progress=not a.no_progress)
        print(comparison_text(rows))
        print(f"comparison: {Path(a.outputs) / 'comparison.csv'}   runs: "
              f"{', '.join(str(Path(a.outputs) / r['profile']) for r in rows)}")
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    m = run_notebooks(specs[0], a.outputs, only=only, notebook_dir=a.notebooks,
                      progress=not a.no_progress)
    for nb in m["notebooks"]:
        print(f"{nb['notebook']:<40} {nb['status']:>6} {nb['seconds']:8.1f} s")
    print(f"tables: {Path(a.outputs) / 'tables'}   figures: {Path(a.outputs) / 'figures'}   "
          f"manifest: {Path(a.outputs) / 'manifest.json'}")
    return 0


def _profiles_with_set(specs: list[str], sets: list[str], outputs: str) -> list[str]:
    """Each profile of ``specs`` (files, names or folders) with the ``--set`` items applied,
    validated and written to ``<outputs>/profiles/<stem>.yml`` (the notebooks read those, and
    the manifest names them)."""
    from seaice_utils.params import dump_params, load_params
    from seaice_utils.runner import batch_profiles

    files = [f for _, f in batch_profiles(specs)]
    out = []
    for f in files:
        path = Path(outputs) / "profiles" / f"{f.stem}.yml"
        if path.resolve() == f.resolve():
            raise InputError(f"--set would overwrite the profile {f}")
        path.parent.mkdir(parents=True, exist_ok=True)
        dump_params(load_params(f, sets), path)
        out.append(str(path))
    return out


def _cmd_verify(a) -> int:
    from seaice_utils.verify import compare_runs

    if (a.b is None) == (a.reference is None):
        raise InputError("give the other run as B or as --reference MANIFEST (one of them)")
    result = compare_runs(a.a, a.b or a.reference, tolerance=a.tolerance)
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def _cmd_collect(a) -> int:
    import warnings

    from seaice_utils.collect.run import collect
    from seaice_utils.params import load_params, load_params_dict

    params = load_params(a.params, a.set)
    if a.folder:
        params["data"].update(source="folder", folder=a.folder)
    if a.source:
        params["data"]["source"] = a.source
    over = {"max_scenes": a.max_scenes, "export_format": a.export_format,
            "fallback": "error" if a.no_fallback else None}
    params["collect"].update({k: v for k, v in over.items() if v is not None})
    params = load_params_dict(params, source="command line")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fallback is printed below
        res = collect(params, a.outputs, progress=not a.no_progress)
    print(res.message(), file=sys.stderr if res.fell_back else sys.stdout)
    print(f"catalogue: {res.root / 'catalogue.csv'}   record: "
          f"{Path(a.outputs) / 'records' / 'data_source.json'}")
    return 0


def _cmd_train(a) -> int:
    from seaice_utils.training.runs import train_cli

    if a.workers < 1:
        raise SystemExit(f"seaice train: --workers must be >= 1 (got {a.workers})")
    labels = ("man", "auto") if a.labels == "both" else (a.labels,)
    return train_cli(a.params, a.outputs, labels=labels, workers=a.workers, hosts=a.hosts,
                     epochs=a.epochs, mixed_precision=a.mixed_precision, xla=a.xla,
                     progress=not a.no_progress, overrides=a.set)


def _cmd_predict(a) -> int:
    from seaice_utils.inference import predict_inputs, predict_options
    from seaice_utils.params import load_params
    from seaice_utils.core.scenes import Stretch

    params = load_params(a.params, a.set)
    if not a.params:           # the filter constants the model was trained with, when recorded
        from seaice_utils.inference import read_model_settings

        try:
            recorded = read_model_settings(a.model).filter_params()
        except Exception:      # a missing or unreadable model is reported by predict_inputs
            recorded = None
        if recorded is not None:
            constants = recorded.to_dict()
            params["filter"].update({k: v for k, v in constants.items() if k in params["filter"]})
            _log().info(f"filter constants: from the model's training settings "
                        f"({', '.join(f'{k}={v}' for k, v in constants.items())})")
    if a.filter_on:
        params["filter"]["apply_to"] = a.filter_on
    inf = params["inference"]
    if a.workers is not None and a.workers < 0:
        raise ParamsError(f"--workers must be >= 0 (got {a.workers})")
    opts = predict_options(
        params, input=a.input_kind, apply_filter=False if a.no_filter else (True if a.filter
                                                                            else None),
        overlap=a.overlap, blend=a.blend, batch_size=a.batch_size, runtime=a.runtime,
        bands=a.bands,
        nodata=a.nodata, pixel_size_m=a.pixel_size, geotiff=False if a.no_geotiff else None,
        stretch=Stretch(scale=a.scale, offset=a.offset, reflectance_max=a.reflectance_max))
    engine = a.engine or inf["engine"]
    workers = a.workers if a.workers is not None else inf["workers"]
    spark = None
    if a.spark_master:
        if engine != "spark":
            raise ParamsError("--spark-master needs --engine spark")
        from seaice_utils.engines.spark import spark_session

        spark = spark_session(a.spark_master, app_name="seaice-predict",
                              progress=not a.no_progress)
    summary = predict_inputs(a.model, a.input, a.output, opts, engine=engine,
                             workers=workers or None, resume=a.resume,
                             progress=not a.no_progress, spark=spark)
    print(summary.describe())
    return 0 if summary.ok else 1


def _cmd_season(a) -> int:
    from seaice_utils.params import load_params
    from seaice_utils.season import run_season

    if a.workers < 1:
        raise ParamsError(f"--workers must be >= 1 (got {a.workers})")
    res = run_season(a.input, a.output, model=a.model, labels=a.labels,
                     params=load_params(a.params, a.set), engine=a.engine, workers=a.workers,
                     resume=a.resume, progress=not a.no_progress, cloud_mask_dir=a.cloud_masks)
    print(res.job.describe())
    print("\n".join(res.lines()))
    for name, msg in res.failures:
        print(f"failed: {name}: {msg}", file=sys.stderr)
    print(f"areas: {res.areas_csv}   dates: {res.out_dir / 'dates'}   scenes: "
          f"{res.out_dir / 'scenes'}   ({res.seconds['total']:.2f} s)")
    return 0 if res.ok else 1


def _cmd_params(a) -> int:
    import yaml

    from seaice_utils.params import load_params

    print(yaml.safe_dump(load_params(a.file, a.set), sort_keys=False), end="")
    return 0


def _cmd_notebooks(a) -> int:
    from seaice_utils.notebooks import check_notebook, strip_notebook

    if a.action == "strip":
        for f in a.files:
            if strip_notebook(f):
                print(f"stripped {f}")
        return 0
    problems = [p for f in a.files for p in check_notebook(f)]
    print("\n".join(problems) or "notebooks follow the conventions")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    _configure_logging(a)
    handler = {"synth": _cmd_synth, "label": _cmd_label, "reproduce": _cmd_reproduce,
               "verify": _cmd_verify,
               "params": _cmd_params, "collect": _cmd_collect, "train": _cmd_train,
               "predict": _cmd_predict, "notebooks": _cmd_notebooks,
               "season": _cmd_season}[a.command]
    try:
        return handler(a)
    except SeaIceError as exc:

        print(f"seaice {a.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ParamsError, InputError)) else 1


if __name__ == "__main__":
    sys.exit(main())
