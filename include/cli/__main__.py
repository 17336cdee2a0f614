"""``python -m include.cli``."""

import sys

from include.cli import main

sys.exit(main())
