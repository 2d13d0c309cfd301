"""``python -m handprop walkthrough``: see handprop.cli."""

import sys

from .cli import main

sys.exit(main())
