"""The ``seaice`` command line.

::

    seaice synth OUT [--params FILE] [--n-scenes N] [--size PX] [--seed S] ...
    seaice label INPUT OUTPUT [--no-filter] [--bands R,G,B] [--nodata V] [--params FILE] [--resume]
    seaice reproduce [--params FILE] [--outputs DIR] [--only 02,03]
    seaice params FILE            validate a profile and print it with defaults filled in

Exit status: 0 on success, 1 when some inputs failed (listed), 2 on bad arguments or parameters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import SeaIceError

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
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate the synthetic Sentinel-2-like dataset")
    s.add_argument("out", help="dataset folder to create (scenes/, truth/, cloud/, catalogue.csv)")
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
    lb.add_argument("--scale", type=float, default=10000.0, help="DN per unit reflectance (10000)")
    lb.add_argument("--offset", type=float, default=0.0,
                    help="reflectance offset added after scaling (-0.1 for L2A baseline >= 04.00)")
    lb.add_argument("--resume", action="store_true", help="skip inputs whose outputs are complete")
    lb.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("reproduce", help="run every notebook headless and regenerate all outputs")
    r.add_argument("--params", default="quick", help="profile (file or name in params/; quick)")
    r.add_argument("--outputs", default="outputs", help="outputs folder (outputs)")
    r.add_argument("--only", help="comma-separated notebook numbers to run, e.g. 02,03")
    r.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("params", help="validate a profile and print it with defaults filled in")
    p.add_argument("file")
    return ap


def _cmd_synth(a) -> int:
    from .dataset import ensure_synthetic_dataset
    from .params import load_params, load_params_dict

    params = load_params(a.params)
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


def _cmd_label(a) -> int:
    from .pipeline import LabelOptions, label_inputs
    from .params import defaults, filter_params, load_params, thresholds
    from .scenes import Stretch

    params = load_params(a.params) if a.params else defaults()
    if a.filter_on:
        params["filter"]["apply_to"] = a.filter_on
    opts = LabelOptions(filter_params=None if a.no_filter else filter_params(params),
                        thresholds=thresholds(params), bands=a.bands, nodata=a.nodata,
                        stretch=Stretch(scale=a.scale, offset=a.offset,
                                        reflectance_max=a.reflectance_max))
    summary = label_inputs(a.input, a.output, opts, resume=a.resume, progress=not a.no_progress)
    print(summary.describe())
    return 0 if summary.ok else 1


def _cmd_reproduce(a) -> int:
    from .runner import run_notebooks

    only = [x.strip() for x in a.only.split(",")] if a.only else None
    m = run_notebooks(a.params, a.outputs, only=only, progress=not a.no_progress)
    for nb in m["notebooks"]:
        print(f"{nb['notebook']:<40} {nb['status']:>6} {nb['seconds']:8.1f} s")
    print(f"tables: {Path(a.outputs) / 'tables'}   figures: {Path(a.outputs) / 'figures'}   "
          f"manifest: {Path(a.outputs) / 'manifest.json'}")
    return 0


def _cmd_params(a) -> int:
    import yaml

    from .params import load_params

    print(yaml.safe_dump(load_params(a.file), sort_keys=False), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    handler = {"synth": _cmd_synth, "label": _cmd_label, "reproduce": _cmd_reproduce,
               "params": _cmd_params}[a.command]
    try:
        return handler(a)
    except SeaIceError as exc:
        from .errors import InputError, ParamsError

        print(f"seaice {a.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ParamsError, InputError)) else 1


if __name__ == "__main__":
    sys.exit(main())
