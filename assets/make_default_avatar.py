#!/usr/bin/env python3
"""Write avatarcam's default avatar, ``assets/default_avatar.glb`` and ``.vrm``, from numbers alone.

The generator is ``engine/avatar/generator.py`` (the engine also builds the gallery's looks and
avatars from photos with it); this script writes the committed default::

    python assets/make_default_avatar.py [--out PATH] [--no-vrm]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from engine.avatar.generator import DEFAULT_OUT, build  # noqa: E402  (needs the repo root on sys.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where to write the .glb; the VRM 1.0 file is written beside it (.vrm)")
    parser.add_argument("--no-vrm", action="store_true", help="write the .glb only")
    args = parser.parse_args(argv)
    vrm_out = None if args.no_vrm else args.out.with_suffix(".vrm")
    stats = build(args.out, vrm_out)
    print(f"wrote {args.out}: {stats['triangles']} triangles, {stats['vertices']} vertices, "
          f"{stats['bytes'] / 1e6:.2f} MB")
    if vrm_out is not None:
        print(f"wrote {vrm_out}: VRM 1.0, {stats['vrm_bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
