"""Stage 04, training: U-Net, tf.data pipeline, Horovod ranks and launches, Table III.

Importing this package does not import TensorFlow or Horovod.
"""

from seaice_utils.training.runs import (heldout_table, plot_speedup, plot_training_curves,
                                        prepare_training_data, scaling_runs, scaling_table,
                                        train_models)
from seaice_utils.training.unet import count_unet_params

__all__ = ["heldout_table", "plot_speedup", "plot_training_curves", "prepare_training_data",
           "scaling_runs", "scaling_table", "train_models", "count_unet_params"]
