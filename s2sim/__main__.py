"""``python -m s2sim``."""

import sys

from .cli import main

sys.exit(main())
