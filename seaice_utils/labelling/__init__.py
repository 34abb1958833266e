"""Auto-labelling: thin-cloud/shadow filter, HSV thresholds, the per-image pipeline and the
labelling jobs on every engine.

Public face for the notebooks and the command line.
"""

from seaice_utils.labelling.autolabel import Thresholds, auto_label, segment
from seaice_utils.labelling.cloudfilter import FilterParams, thin_cloud_shadow_filter
from seaice_utils.labelling.jobs import run_label_job
from seaice_utils.labelling.pipeline import LabelOptions, label_file
from seaice_utils.labelling.settings import filter_params, thresholds

__all__ = ["Thresholds", "auto_label", "segment", "FilterParams", "thin_cloud_shadow_filter",
           "LabelOptions", "label_file", "filter_params", "thresholds", "run_label_job"]
