"""The engine layer: run one task over many files, sequentially, with processes or with Spark.

An *engine* decides where the per-file work runs; a *task* (:class:`Task`) says what that work
is. The engine knows nothing of labelling or prediction: it takes a picklable task object and a
list of files, calls the task once per file, and gathers the outcome in a :class:`JobSummary`
(done, skipped and failed inputs by name, in input order, plus timings). The labelling jobs
(:mod:`seaice_utils.labelling.jobs`) and the prediction jobs (:mod:`seaice_utils.inference`)
are tasks run by the same engines, through one entry point,
:func:`seaice_utils.engines.jobs.run_job`.

===================  ========================================================================
engine               how the work is spread
===================  ========================================================================
``sequential``       one loop in this process (the paper's baseline)
``multiprocessing``  a pool of ``workers`` processes (:mod:`seaice_utils.engines.local`); the
                     file list is cut into contiguous, disjoint chunks (:func:`chunk`), each
                     chunk is run by exactly one worker, exactly once
``spark``            a Spark job (:mod:`seaice_utils.engines.spark`), ``local[N]`` or a
                     ``spark://`` cluster: Spark's ``binaryFile`` source and ``mapInPandas``
                     for tasks that work on bytes, ``mapPartitions`` over paths otherwise
===================  ========================================================================

The task protocol
-----------------
``setup(*, engine, workers, shipped)``
    Once per worker process, before its first file (set library threads, load a model);
    ``shipped`` maps the base name of every file of ``ship()`` to a local path there. Its return
    value is recorded per process id in :attr:`JobSummary.setups`.
``teardown()``
    After an in-process (``sequential``) run, to undo ``setup`` in the caller's process.
``before_fork()`` / ``after_fork(state)``
    In the parent around the start of a forked worker pool (e.g. shrink a library's thread pool,
    which a forked child could otherwise not reconfigure), and to undo that.
``output_paths(name) -> dict``, ``settings() -> dict``
    The files one input named ``name`` gives (the sidecar, key ``"sidecar"``, last) and what
    determines them (filter, thresholds, model hash, ...). From these the engine layer checks
    the output folder before any work and :meth:`Task.state` answers the resume check with
    :mod:`seaice_utils.engines.outputs` (complete set, checksums, fingerprint).
``state(path) -> "done" | "changed" | "missing"``
    Resume check: ``done`` skips the input, ``changed`` (outputs intact but made with other
    settings or from another input) redoes it and counts it in :attr:`JobSummary.redone`.
``run(path) -> payload``
    The work on one file; raises one of ``errors`` for a bad input (reported by name in
    :attr:`JobSummary.failures`; anything else stops the job).
``ship() -> list of paths``
    Files every Spark executor needs (sent once per executor with ``SparkContext.addFile``).
``run_bytes(content, filename) -> (name, outputs)`` and ``publish(name, outputs)``
    Optional bytes mode (``bytes_mode = True``): the work on a file's bytes, returning its
    encoded outputs, and writing them (:func:`~seaice_utils.engines.outputs.publish_set`: atomically, as a set, the
    sidecar last). Spark's ``binaryFile`` path uses it, so outputs can be written by the
    executors or collected to the driver. ``scratch(folder)`` gives a copy that writes
    elsewhere, for Spark's warm-up run.

Examples
--------
>>> chunk(list("abcdefg"), 3)
[['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
>>> partition(list("abcdefg"), 3)
[['a', 'b', 'c'], ['d', 'e'], ['f', 'g']]
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import cv2

from seaice_utils.engines.outputs import fingerprint, input_record, set_state, settings_digest
from seaice_utils.errors import InputError, ParamsError, SeaIceError

__all__ = ["ENGINES", "INPUT_ERRORS", "describe_error", "JobSummary", "Task", "chunk", "partition", "default_chunk_size",
           "check_unique_names", "check_engine", "resolve_workers", "run_one"]

#: The engines, by name: the one list every option, profile key and check derives from.
ENGINES = ("sequential", "multiprocessing", "spark")

T = TypeVar("T")

#: Errors of one input that are reported by name, never raised, when many inputs run: bad input
#: (seaice's checks), an undecodable file (OpenCV), a file system error (a full disk included),
#: an allocation that failed.
INPUT_ERRORS: tuple[type[BaseException], ...] = (SeaIceError, OSError, MemoryError, cv2.error)


def describe_error(exc: BaseException) -> str:
    """One line saying why an input failed (no traceback, no OpenCV source locations).

    >>> describe_error(OSError(errno.ENOSPC, "No space left on device", "/data/out/a.png"))
    'no space left on /data/out: No space left on device'
    """
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = Path(exc.filename).parent if exc.filename else "the output folder"
        return f"no space left on {where}: {exc.strerror or 'disk full'}"
    if isinstance(exc, MemoryError):
        return "not enough memory to process it (see global.worker_memory_gb)"
    if isinstance(exc, cv2.error):
        text = (getattr(exc, "err", "") or str(exc)).strip().splitlines()
        return f"cannot be decoded (OpenCV: {text[-1].strip() if text else 'error'})"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

#: One file's outcome: (status, name, payload or error message); status is ``"done"``,
#: ``"redone"``, ``"skipped"`` or ``"failed"``, name the file's stem (its name, with suffix, for failures).
Result = tuple[str, str, Any]


@dataclass
class JobSummary:
    """Outcome of a job: what was done, skipped or failed, and how it ran.

    Attributes
    ----------
    done, skipped : list of str
        Names (file stems) in input order.
    redone : list of str
        Names among ``done`` whose earlier outputs were made with other settings or from
        another input (``resume`` redid them).
    failures : list of (file name, error message)
    results : list
        The task's payload of each ``done`` name (same order).
    setups : dict of int to object
        What the task's ``setup`` returned in each worker process, by process id.
    engine : str
    workers : int
        Processes (multiprocessing), 1 (sequential) or Spark task slots.
    n_inputs : int
        Files the job was given.
    seconds : dict of str to float
        Wall-clock phases. Local engines: ``startup`` (pool start), ``run``, ``total``.
        Spark: ``startup`` (session, when the job made it), ``warmup``, ``load``, ``map``,
        ``reduce``, ``total`` (load + map + reduce).
    verb : str
        What ``done`` means, for :meth:`describe` (``"labelled"``, ``"predicted"``).
    rows : list of dict
        Per-scene summary rows (:func:`~seaice_utils.engines.scene_outputs.class_summary`) of
        the done and skipped inputs, in input order, when the job keeps them (prediction).
    summary_csv : Path or None
        Where those rows were written (``summary.csv``).
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redone: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    setups: dict[int, Any] = field(default_factory=dict)
    engine: str = "sequential"
    workers: int = 1
    n_inputs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    verb: str = "done"
    rows: list[dict] = field(default_factory=list)
    summary_csv: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def model_loads(self) -> dict[int, Any]:
        """What each worker process's ``setup`` returned (prediction: how many times it loaded
        the model; 1 each)."""
        return self.setups

    def add(self, result: Result) -> None:
        """Record one file's outcome."""
        status, name, payload = result
        if status == "failed":
            self.failures.append((name, payload or "failed"))
        elif status == "skipped":
            self.skipped.append(name)
        else:
            self.done.append(name)
            self.results.append(payload)
            if status == "redone":
                self.redone.append(name)

    def describe(self) -> str:
        s = (f"{self.engine} x{self.workers}: {self.n_inputs} inputs in "
             f"{self.seconds.get('total', float('nan')):.2f} s; ")
        s += f"{len(self.done)} {self.verb}"
        if self.redone:
            s += f" ({len(self.redone)} redone: settings or input changed)"
        s += f", {len(self.skipped)} already done, {len(self.failures)} failed"
        if self.summary_csv:
            s += f"; summary: {self.summary_csv}"
        for name, err in self.failures:
            s += f"\n  FAILED {name}: {err}"
        return s


class Task:
    """Base of the work an engine runs over files (see the module docstring for the protocol).

    Subclasses must pickle (module-level classes, plain attributes): the multiprocessing engine
    sends them to its workers and Spark to its executors.
    """

    #: Exceptions of one input that are reported as failures, not raised.
    errors: tuple[type[BaseException], ...] = INPUT_ERRORS
    #: Progress bar text and unit; :attr:`JobSummary.verb`.
    desc, unit, verb = "processing", "file", "done"
    #: Spark application name when the engine starts the session.
    app_name = "seaice"
    #: Multiprocessing start method (None: ``fork`` on Linux, else ``spawn``).
    start_method: str | None = None
    #: True when :meth:`run_bytes` and :meth:`publish` are implemented.
    bytes_mode = False
    #: Keys of the outputs :meth:`run_bytes` returns (bytes mode).
    output_keys: tuple[str, ...] = ()

    def setup(self, *, engine: str, workers: int, shipped: Mapping[str, str]) -> Any:
        """Prepare this process (once per worker process); the result goes to ``setups``."""
        return None

    def teardown(self) -> None:
        """Undo :meth:`setup` after an in-process run."""

    def before_fork(self) -> Any:
        """In the parent, just before worker processes are forked; returns what
        :meth:`after_fork` needs to undo it (a library's thread pool that a forked child cannot
        reconfigure is made safe here)."""
        return None

    def after_fork(self, state: Any) -> None:
        """In the parent, once the workers are started: undo :meth:`before_fork`."""

    def ship(self) -> list[str | os.PathLike]:
        """Files to send once to every Spark executor."""
        return []

    #: Output folder (absolute: Spark executors may run in another working directory).
    out_dir: Path

    def output_paths(self, name: str) -> dict[str, Path]:
        """The output files of the input named ``name`` (file stem), the sidecar last."""
        raise NotImplementedError

    def job_outputs(self) -> list[Path]:
        """Files the job writes besides each input's set (e.g. ``summary.csv``): checked for
        ownership with the sets before any work."""
        return []

    def settings(self) -> dict:
        """Everything besides the input that determines its outputs (for the fingerprint)."""
        return {}

    def digest(self) -> str:
        """Digest of :meth:`settings`, computed once per task object."""
        d = self.__dict__.get("_digest")
        if d is None:
            d = self.__dict__["_digest"] = settings_digest(self.settings())
        return d

    def fingerprint(self, path: str | os.PathLike | None = None, *,
                    content: bytes | None = None, name: str | None = None) -> dict:
        """The fingerprint of one input's outputs (from its file, or its bytes and name)."""
        return fingerprint(self.digest(), input_record(path, content=content, name=name))

    def state(self, path: str | os.PathLike) -> str:
        """``"done"``, ``"changed"`` or ``"missing"`` (see :func:`~.outputs.set_state`)."""
        path = Path(path)
        try:
            fp = self.fingerprint(path)
        except OSError:
            return "missing"                     # unreadable input: run it and report why
        return set_state(self.output_paths(path.stem), fp)

    def run(self, path: str | os.PathLike) -> Any:
        """Process one file and return its payload; raise one of :attr:`errors` on bad input."""
        raise NotImplementedError

    def run_bytes(self, content: bytes, filename: str) -> tuple[str, dict[str, bytes]]:
        """Bytes mode: (output name, encoded outputs keyed by :attr:`output_keys`)."""
        raise NotImplementedError

    def publish(self, name: str, outputs: Mapping[str, bytes]) -> None:
        """Bytes mode: write the outputs of :meth:`run_bytes`."""
        raise NotImplementedError

    def scratch(self, folder: str | os.PathLike) -> "Task | None":
        """A copy of this task writing under ``folder`` (for warm-up runs), or None."""
        return None


def run_one(task: Task, path: str | os.PathLike, *, resume: bool = False) -> Result:
    """Run ``task`` on one file for a batch job; never raises on bad input.

    With ``resume``, an input whose outputs are ``done`` is skipped and one whose outputs were
    made with other settings (``changed``) is redone and reported as ``"redone"``.
    """
    path = Path(path)
    redo = False
    if resume:
        state = task.state(path)
        if state == "done":
            return "skipped", path.stem, None
        redo = state == "changed"
    try:
        payload = task.run(path)
    except task.errors as exc:
        return "failed", path.name, describe_error(exc)
    return ("redone" if redo else "done"), path.stem, payload


def check_engine(engine: str, workers: int) -> None:
    """Raise :class:`ParamsError` for an unknown engine or a worker count below 1."""
    if engine not in ENGINES:
        raise ParamsError(f"engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ParamsError(f"workers must be an integer >= 1 (got {workers!r})")


def resolve_workers(workers: int | None) -> int:
    """The one meaning of a worker count, for every command and profile: N >= 1 processes (or
    Spark task slots), 0 or None all cores of this machine.

    >>> resolve_workers(3)
    3
    >>> resolve_workers(0) == (os.cpu_count() or 1)
    True
    """
    if workers is None or workers == 0:
        return os.cpu_count() or 1
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ParamsError(f"--workers / workers must be an integer >= 0, 0 for all cores "
                          f"(got {workers!r})")
    return workers


def chunk(items: Sequence[T], size: int) -> list[list[T]]:
    """Cut ``items`` into contiguous chunks of ``size`` (the last may be shorter).

    Every item is in exactly one chunk, in order: ``sum(chunks, []) == list(items)``.
    """
    if not isinstance(size, int) or size < 1:
        raise InputError(f"chunk size must be an integer >= 1 (got {size!r})")
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def partition(items: Sequence[T], n_parts: int) -> list[list[T]]:
    """Split ``items`` into ``n_parts`` contiguous parts whose sizes differ by at most one.

    Unlike the published script's slices, the parts do not overlap: every item is in exactly
    one part. Parts are empty when there are fewer items than parts.
    """
    if not isinstance(n_parts, int) or n_parts < 1:
        raise InputError(f"number of parts must be an integer >= 1 (got {n_parts!r})")
    items = list(items)
    q, r = divmod(len(items), n_parts)
    out, start = [], 0
    for i in range(n_parts):
        stop = start + q + (1 if i < r else 0)
        out.append(items[start:stop])
        start = stop
    return out


def default_chunk_size(n_items: int, workers: int) -> int:
    """About eight chunks per worker (load balance, progress), at most 64 items per chunk."""
    return max(1, min(64, -(-n_items // (8 * max(1, workers)))))


def check_unique_names(files: Sequence[Path]) -> None:
    """Raise :class:`InputError` when two inputs would write the same outputs (same stem)."""
    seen: dict[str, Path] = {}
    for f in files:
        f = Path(f)
        if f.stem in seen:
            raise InputError(f"two inputs would write the same outputs {f.stem!r}: {seen[f.stem]} "
                             f"and {f}")
        seen[f.stem] = f
