"""``python -m s2sim.cli``."""

import sys

from . import main

sys.exit(main())
