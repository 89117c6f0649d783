"""``python -m labyrinth``: the command line (see labyrinth.cli)."""

import sys

from .cli import main

sys.exit(main())
