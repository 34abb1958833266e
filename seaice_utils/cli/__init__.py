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

Exit status: 0 on success, 1 when some inputs failed (listed), 2 on bad arguments or parameters,
130 when interrupted (Ctrl-C). A full disk (or quota) is one line naming the file, exit 1.

``-v``/``--verbose`` and ``-q``/``--quiet`` go before or after the command (``seaice -q label
...`` is ``seaice label -q ...``). ``-q`` also silences the start-up chatter of TensorFlow (its
C++ and Python banners) and OpenCV: only their errors are shown.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys

from seaice_utils.cli.commands import COMMANDS, configure_logging
from seaice_utils.cli.parser import SET_COMMANDS, build_parser
from seaice_utils.errors import InputError, ParamsError, SeaIceError

__all__ = ["main", "build_parser", "SET_COMMANDS"]

#: The options every command takes that may also come before the command's name.
_COMMON_FLAG = re.compile(r"-[qv]+|--quiet|--verbose")

#: Environment read by the libraries when they start: TensorFlow's C++ log (3: none of its
#: start-up lines, which are info and warnings, nor its C++ errors; Python errors still show)
#: and OpenCV's log (errors only).
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "OPENCV_LOG_LEVEL": "ERROR"}
#: Python loggers of the libraries, set to errors only with -q (before the library makes them).
_QUIET_LOGGERS = ("tensorflow",)

_DISK_FULL = {errno.ENOSPC: "no space left on"}
if hasattr(errno, "EDQUOT"):
    _DISK_FULL[errno.EDQUOT] = "disk quota exceeded on"


def _common_flags_after_command(argv: list[str]) -> list[str]:
    """argv with -q/-v/--quiet/--verbose given before the command moved just after its name
    (argparse reads them as options of the command)."""
    for i, token in enumerate(argv):
        if token == "--":
            break
        if not token.startswith("-"):
            if token not in COMMANDS:
                break
            flags = [t for t in argv[:i] if _COMMON_FLAG.fullmatch(t)]
            if not flags:
                break
            others = [t for t in argv[:i] if not _COMMON_FLAG.fullmatch(t)]
            return [*others, token, *flags, *argv[i + 1:]]
    return argv


class _WhenImported(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` right after ``name`` is first imported (by whatever imports it),
    for a library that can only be configured once loaded: absl's logging (TensorFlow's)."""

    def __init__(self, name: str, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module):
            run(module)
            then(module)

        spec.loader.exec_module = exec_module    # this spec's own loader object
        return spec


def _absl_errors_only(absl_logging) -> None:
    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def _quiet_libraries(quiet: bool):
    """With -q: TensorFlow (C++ and Python log, absl) and OpenCV log errors only, set before
    the commands import them; the process's settings are put back afterwards."""
    if not quiet:
        yield
        return
    saved_env = {k: os.environ.get(k) for k in _QUIET_ENV}
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    os.environ.update(_QUIET_ENV)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    restore = []
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:           # loaded already: set it now, else once it loads
        restore.append(lambda v=absl_logging.get_verbosity(): absl_logging.set_verbosity(v))
        _absl_errors_only(absl_logging)
    else:
        hook = _WhenImported("absl.logging", _absl_errors_only)
        sys.meta_path.insert(0, hook)
        restore.append(lambda: hook in sys.meta_path and sys.meta_path.remove(hook))
    cv_log = getattr(getattr(sys.modules.get("cv2"), "utils", None), "logging", None)
    if cv_log is not None and hasattr(cv_log, "setLogLevel"):   # read OPENCV_LOG_LEVEL already
        restore.append(lambda v=cv_log.getLogLevel(): cv_log.setLogLevel(v))
        cv_log.setLogLevel(cv_log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        for undo in restore:
            undo()
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _drop_stdout() -> None:
    """Send what is left of standard output to /dev/null, so that Python's own flush at exit
    does not fail on it again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):   # not a real file (a test's capture)
        pass


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if parser.epilog is None:
        parser.epilog = ("-v/--verbose and -q/--quiet may come before the command or after it; "
                         "see `seaice COMMAND -h` for a command's options.")
    a = parser.parse_args(_common_flags_after_command(argv))
    flushing = False
    try:
        configure_logging(a)
        with _quiet_libraries(getattr(a, "quiet", False)):
            status = COMMANDS[a.command](a)
        flushing = True             # a full disk behind a redirected stdout shows up here
        sys.stdout.flush()
        return status
    except SeaIceError as exc:
        print(f"seaice {a.command}: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (ParamsError, InputError)) else 1
    except KeyboardInterrupt:
        print(f"seaice {a.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            return _unexpected(a, exc)
        where = exc.filename or ("standard output" if flushing else "device")
        if flushing:
            _drop_stdout()
        print(f"seaice {a.command}: error: {_DISK_FULL[exc.errno]} {where}: "
              f"{exc.strerror or exc}; free some space and run again", file=sys.stderr)
        return 1
    except Exception as exc:        # a library's failure (a Spark job, TensorFlow): one line
        return _unexpected(a, exc)


def _unexpected(a, exc: BaseException) -> int:
    """One line for an error seaice did not foresee (exit 1); with -v the traceback too."""
    if getattr(a, "verbose", False):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    print(f"seaice {a.command}: error: {type(exc).__name__}: "
          f"{lines[0][:300] if lines else 'no message'} (run with -v for the details)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
