"""Stage 03, timing of the auto-labelling engines: kernel timings, Tables I and II, speedups."""

from seaice_utils.timing.tables import (kernel_timings, machine, sample_scenes, speedup_figure,
                                        summarise_kernels, table1_multiprocessing, table2_spark)

__all__ = ["kernel_timings", "machine", "sample_scenes", "speedup_figure", "summarise_kernels",
           "table1_multiprocessing", "table2_spark"]
