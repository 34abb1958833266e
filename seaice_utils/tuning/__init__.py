"""Stage 02, tuning: filter and threshold panels, class-fraction tables, the widget tuner."""

from seaice_utils.tuning.panels import (apply_settings, build_tuner, class_fraction_table,
                                        cloudiest, filter_steps_figure, fraction_bars,
                                        load_samples, panels_figure, preview_all,
                                        save_tuned_params, threshold_warnings, tuned_params_path,
                                        value_histogram_figure)

__all__ = ["apply_settings", "build_tuner", "class_fraction_table", "cloudiest",
           "filter_steps_figure", "fraction_bars", "load_samples", "panels_figure", "preview_all",
           "save_tuned_params", "threshold_warnings", "tuned_params_path",
           "value_histogram_figure"]
