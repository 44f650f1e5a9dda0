"""Entry point of the bundled app: the same as the ``avatarcam`` console script."""

import sys

from engine.cli import main

sys.exit(main())
