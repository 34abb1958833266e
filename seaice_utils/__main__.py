"""``python -m seaice_utils`` is the ``seaice`` command."""

import sys

from .cli import main

sys.exit(main())
