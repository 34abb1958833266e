"""Stage 02, tuning: the thin-cloud/shadow filter and the HSV ranges (notebook 02).

* :mod:`~seaice_utils.tuning.samples` — preview samples cropped (or resized) from a dataset;
* :mod:`~seaice_utils.tuning.settings` — flat ``section.key`` settings applied to a profile,
  warnings about the HSV ranges, writing the tuned profile;
* :mod:`~seaice_utils.tuning.previews` — filter, labels, class fractions and agreement of one
  profile on the samples, and the class-fraction table;
* :mod:`~seaice_utils.tuning.figures` — the notebook's figures;
* :mod:`~seaice_utils.tuning.wording` — settings named by the tuner's controls, its fraction table;
* :mod:`~seaice_utils.tuning.widget` — the ipywidgets tuner (sliders, live preview, write button).
"""

from seaice_utils.tuning.figures import (filter_steps_figure, fraction_bars, panels_figure,
                                         tuner_figure, value_histogram_figure)
from seaice_utils.tuning.previews import class_fraction_table, preview_all
from seaice_utils.tuning.samples import cloudiest, load_samples
from seaice_utils.tuning.settings import (apply_settings, save_tuned_params, threshold_warnings,
                                          tuned_params_path)
from seaice_utils.tuning.widget import build_tuner

__all__ = ["apply_settings", "build_tuner", "class_fraction_table", "cloudiest",
           "filter_steps_figure", "fraction_bars", "load_samples", "panels_figure", "preview_all",
           "save_tuned_params", "threshold_warnings", "tuned_params_path", "tuner_figure",
           "value_histogram_figure"]
