"""``python -m fomo_host``: the ``fomo-host`` command line."""

import sys

from .cli import main

sys.exit(main())
