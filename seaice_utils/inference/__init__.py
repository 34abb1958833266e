"""Full-scene inference: model loading (TensorFlow / TFLite), blended tiling, file outputs.

Importing this package does not import TensorFlow.
"""

from seaice_utils.inference.model import (input_from_layers, load_model, model_input,
                                          read_model_settings)
from seaice_utils.engines.scene_outputs import class_summary
from seaice_utils.core.areas import pixel_area_m2
from seaice_utils.inference.predict import PredictOptions, predict_inputs, predict_options
from seaice_utils.inference.runtime import make_predict_fn
from seaice_utils.inference.stitch import predict_scene, predict_tiles

__all__ = ["PredictOptions", "load_model", "make_predict_fn", "predict_inputs", "predict_options",
           "predict_scene", "predict_tiles", "model_input", "read_model_settings",
           "input_from_layers", "class_summary", "pixel_area_m2"]
