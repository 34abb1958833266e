"""The engine layer: run one task over many files, sequentially, with multiprocessing or with
Spark (local or a cluster); see :mod:`seaice_utils.engines.base` for the task protocol."""

from seaice_utils.engines.base import ENGINES, JobSummary, Task, check_engine
from seaice_utils.engines.jobs import run_job

__all__ = ["ENGINES", "JobSummary", "Task", "check_engine", "run_job"]
