"""Entry point of the bundled app: the same as the ``avatarcam`` console script."""

import sys

from app.launcher import main

sys.exit(main())
