"""The engine layer: run one function over many files, sequentially, with multiprocessing or
with Spark (local or a cluster)."""

from seaice_utils.engines.base import ENGINES, JobSummary

__all__ = ["ENGINES", "JobSummary"]
