"""Stage 05, evaluation: Tables IV and V, cloud strata, auto-label quality, figures."""

from seaice_utils.evaluation.tables import (autolabel_counts, autolabel_examples_figure,
                                            autolabel_quality, cloud_estimate_check,
                                            cloud_for_tiles, cloud_fractions, confusion_figure,
                                            confusion_table, estimate_cloud_fraction, find_models,
                                            find_speedup_tables, index_cloud, load_tile_set,
                                            per_class_table, pick_examples, predict_conditions,
                                            predictions_figure, real_sample, real_sample_figure,
                                            real_sample_path, scene_figure, scene_inference,
                                            speedup_figure, speedup_table, table4, table5)

__all__ = ["autolabel_counts", "autolabel_examples_figure", "autolabel_quality",
           "cloud_estimate_check", "cloud_for_tiles", "cloud_fractions", "confusion_figure",
           "confusion_table", "estimate_cloud_fraction", "find_models", "find_speedup_tables",
           "index_cloud", "load_tile_set", "per_class_table", "pick_examples",
           "predict_conditions", "predictions_figure", "real_sample", "real_sample_figure",
           "real_sample_path", "scene_figure", "scene_inference", "speedup_figure",
           "speedup_table", "table4", "table5"]
