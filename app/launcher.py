"""The ``avatarcam`` console script: the engine's command line, with the desktop app plugged in.

The engine never imports the UI; it is handed ``open_window`` for the commands that show a window
(``gui``, and ``demo`` when there is no virtual camera driver but a display).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.commands import cli


def open_window(args: argparse.Namespace) -> int:
    from app.main import run_app  # PySide6 loads only when a window is wanted

    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, open_window=open_window)


if __name__ == "__main__":
    sys.exit(main())
