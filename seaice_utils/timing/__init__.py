"""Stage 03, timing of the auto-labelling engines: kernel timings, Tables I and II, speedups."""

from seaice_utils.timing.report import (Bench, bench_summary, kernel_table, setup_bench,
                                        table1_figure, table2_figure, with_machine)
from seaice_utils.timing.tables import (kernel_timings, machine, sample_scenes, speedup_figure,
                                        summarise_kernels, table1_multiprocessing, table2_spark)

__all__ = ["Bench", "bench_summary", "kernel_table", "kernel_timings", "machine",
           "sample_scenes", "setup_bench", "speedup_figure", "summarise_kernels",
           "table1_figure", "table1_multiprocessing", "table2_figure", "table2_spark",
           "with_machine"]
