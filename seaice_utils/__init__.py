"""Helper package of the sea-ice classification compendium.

The notebooks under ``notebooks/`` tell the story; this package does the work. Data flows one
way: scenes -> tiles -> filtered -> labels -> models -> maps -> tables/figures.

Only numpy, OpenCV and the standard library are imported at package import time. TensorFlow,
Spark and Horovod are imported inside the modules that need them, so ``import seaice_utils``
works without them.

One warning is silenced: ``google.api_core`` (pulled in by TensorFlow through the Earth Engine
client's ``googleapiclient``) warns on every import, from a year before Python 3.11's end of
life, that its *future releases* will drop 3.11. The compendium pins Python 3.11 and that
library's version (``requirements.lock``), so the warning says nothing about a run.
"""

import warnings as _warnings

__version__ = "0.1.0"

__all__ = ["__version__"]

_warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.api_core\..*",
                         message=r"You are using a Python version .* google\.api_core")
