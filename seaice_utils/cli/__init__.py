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

import sys

from seaice_utils.cli.commands import COMMANDS, configure_logging
from seaice_utils.cli.parser import SET_COMMANDS, build_parser
from seaice_utils.errors import InputError, ParamsError, SeaIceError

__all__ = ["main", "build_parser", "SET_COMMANDS"]


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    configure_logging(a)
    try:
        return COMMANDS[a.command](a)
    except SeaIceError as exc:
        print(f"seaice {a.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ParamsError, InputError)) else 1


if __name__ == "__main__":
    sys.exit(main())
