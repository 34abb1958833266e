"""Stage 05, evaluation: Tables IV and V, cloud strata, auto-label quality, figures.

Modules: :mod:`~seaice_utils.evaluation.models` (notebook 04's models, split and test tiles),
:mod:`~seaice_utils.evaluation.cloud` (cloud cover and strata),
:mod:`~seaice_utils.evaluation.tables` (Tables IV and V, auto-label quality, confusion matrices),
:mod:`~seaice_utils.evaluation.figures`, :mod:`~seaice_utils.evaluation.scenes` (whole scenes,
the real sample), :mod:`~seaice_utils.evaluation.speedups` (Tables I-III beside the paper's),
:mod:`~seaice_utils.evaluation.heldout` (notebook 05's steps, each saving its outputs), and
for notebook 06 :mod:`~seaice_utils.evaluation.season` (a season's runs scored against its truth)
and :mod:`~seaice_utils.evaluation.season_figures` (the synthetic season, or a collected
catalogue without truth).
"""

from seaice_utils.evaluation.cloud import (cloud_estimate_check, cloud_for_tiles, cloud_fractions,
                                           estimate_cloud_fraction)
from seaice_utils.evaluation.figures import (autolabel_examples_figure, confusion_figure,
                                             pick_examples, predictions_figure,
                                             real_sample_figure, scene_figure)
from seaice_utils.evaluation.models import find_models, index_cloud, load_tile_set
from seaice_utils.evaluation.heldout import (AutoLabels, HeldOutSet, Shown, evaluation_record,
                                                predict_test_set, save_autolabel_quality,
                                                save_cloud_estimate_check, save_confusion,
                                                save_real_sample, save_scene_inference,
                                                save_speedups, scene_model)
from seaice_utils.evaluation.scenes import real_sample, real_sample_path, scene_inference
from seaice_utils.evaluation.season import (NO_TRUTH_NOTE, SEASON_AREA_COLUMNS,
                                            SEASON_ERROR_COLUMNS, CatalogueSeason, SeasonMethod,
                                            SeasonPlan, hazy_dates, has_truth, load_season,
                                            read_catalogue, season_area_table, season_columns,
                                            season_error_table, season_errors, season_methods,
                                            season_plan, season_record, season_summary,
                                            season_summary_lines, season_table)
from seaice_utils.evaluation.season_figures import (season_areas_figure, season_coverage_figure,
                                                    season_maps_figure)
from seaice_utils.evaluation.speedups import find_speedup_tables, speedup_figure, speedup_table
from seaice_utils.evaluation.tables import (autolabel_counts, autolabel_quality, confusion_table,
                                            per_class_table, predict_conditions, table4, table5)

__all__ = ["autolabel_counts", "autolabel_examples_figure", "autolabel_quality",
           "cloud_estimate_check", "cloud_for_tiles", "cloud_fractions", "confusion_figure",
           "confusion_table", "estimate_cloud_fraction", "find_models", "find_speedup_tables",
           "index_cloud", "load_tile_set", "per_class_table", "pick_examples",
           "predict_conditions", "predictions_figure", "real_sample", "real_sample_figure",
           "real_sample_path", "scene_figure", "scene_inference", "speedup_figure",
           "speedup_table", "table4", "table5",
           "AutoLabels", "HeldOutSet", "Shown", "evaluation_record", "predict_test_set",
           "save_autolabel_quality", "save_cloud_estimate_check", "save_confusion",
           "save_real_sample", "save_scene_inference", "save_speedups", "scene_model",
           "NO_TRUTH_NOTE", "SEASON_AREA_COLUMNS", "SEASON_ERROR_COLUMNS", "CatalogueSeason",
           "SeasonMethod", "SeasonPlan", "has_truth", "hazy_dates", "load_season",
           "read_catalogue", "season_area_table", "season_columns", "season_table",
           "season_areas_figure", "season_coverage_figure", "season_error_table",
           "season_errors", "season_maps_figure", "season_methods", "season_plan",
           "season_record", "season_summary", "season_summary_lines"]
