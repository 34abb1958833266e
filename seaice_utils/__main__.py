"""``python -m seaice_utils`` is the ``seaice`` command."""

import sys

from seaice_utils.cli import main

sys.exit(main())
