"""Stage 04, training: U-Net, tf.data pipeline, Horovod ranks and launches, Table III.

Modules: :mod:`~seaice_utils.training.unet` (the network), :mod:`~seaice_utils.training.data`
(split, shards, tf.data pipeline), :mod:`~seaice_utils.training.settings` (tiles, split and run
settings), :mod:`~seaice_utils.training.worker` and :mod:`~seaice_utils.training.callbacks` (one
rank), :mod:`~seaice_utils.training.launch` (starting a run), :mod:`~seaice_utils.training.runs`
(the runs of a profile, Table III, ``seaice train``).

Importing this package does not import TensorFlow or Horovod.
"""

from seaice_utils.training.runs import (heldout_table, plot_speedup, plot_training_curves,
                                        scaling_runs, scaling_table, train_models)
from seaice_utils.training.settings import prepare_training_data
from seaice_utils.training.unet import count_unet_params

__all__ = ["heldout_table", "plot_speedup", "plot_training_curves", "prepare_training_data",
           "scaling_runs", "scaling_table", "train_models", "count_unet_params"]
