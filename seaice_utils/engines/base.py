"""Engine layer base: job summary, partitioning, unique output names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from seaice_utils.errors import InputError
from seaice_utils.labelling.pipeline import LabelSummary

ENGINES = ("sequential", "multiprocessing", "spark")


T = TypeVar("T")


@dataclass
class JobSummary(LabelSummary):
    """Outcome of a labelling job: :class:`~seaice_utils.pipeline.LabelSummary` plus how it ran.

    Attributes
    ----------
    engine : str
    workers : int
        Processes (multiprocessing), 1 (sequential) or Spark task slots.
    n_inputs : int
        Files the job was given.
    seconds : dict of str to float
        Wall-clock phases. Local engines: ``startup`` (pool start), ``run``, ``total``.
        Spark: ``startup`` (session, when the job made it), ``load``, ``map``, ``reduce``,
        ``total`` (load + map + reduce).
    """

    engine: str = "sequential"
    workers: int = 1
    n_inputs: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        head = (f"{self.engine} x{self.workers}: {self.n_inputs} inputs in "
                f"{self.seconds.get('total', float('nan')):.2f} s; ")
        return head + super().describe()


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
        if f.stem in seen:
            raise InputError(f"two inputs would write the same outputs {f.stem!r}: {seen[f.stem]} "
                             f"and {f}")
        seen[f.stem] = f
