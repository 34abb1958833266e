"""Helper package of the sea-ice classification compendium.

The notebooks under ``notebooks/`` tell the story; this package does the work. Data flows one
way: scenes -> tiles -> filtered -> labels -> models -> maps -> tables/figures.

Only numpy, OpenCV and the standard library are imported at package import time. TensorFlow,
Spark and Horovod are imported inside the modules that need them, so ``import seaice_utils``
works without them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
