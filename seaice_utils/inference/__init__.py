"""Full-scene inference: model loading (TensorFlow / TFLite), blended tiling, file outputs.

Importing this package does not import TensorFlow.
"""

from seaice_utils.inference.predict import (PredictOptions, load_model, make_predict_fn,
                                            predict_inputs, predict_options, predict_scene)

__all__ = ["PredictOptions", "load_model", "make_predict_fn", "predict_inputs", "predict_options",
           "predict_scene"]
