"""Loads avatar files one after another under a memory cap, for tests/test_avatar_fuzz.py.

Usage: python avatar_fuzz_worker.py MEMORY_MB FILE...  For each file it prints ``start N`` and then
``done N OUTCOME`` (``ok``, ``error`` for the loader's own AvatarLoadError, ``crash:<type>`` for
anything else, ``blowup`` for MemoryError), flushed, so the parent sees a hang or a death as a
``start`` without its ``done``.
"""

from __future__ import annotations

import resource
import sys

import numpy as np

from engine.avatar import load_avatar
from engine.errors import AvatarLoadError


def outcome(path: str) -> str:
    try:
        avatar = load_avatar(path)
    except AvatarLoadError as error:
        message = str(error)
        return "error" if message and "\n" not in message and "Traceback" not in message else "crash:multiline"
    except MemoryError:
        return "blowup"
    except Exception as error:  # the loader let something else escape: a crash
        return f"crash:{type(error).__name__}"
    # A file that loads must render: every transform finite (the renderer multiplies them).
    if not np.isfinite(avatar.rest_world_matrices).all():
        return "crash:non-finite-transform"
    return "ok"


def main() -> None:
    extra = int(sys.argv[1]) * 2**20
    with open("/proc/self/status") as status:
        size = int(status.read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))
    for number, path in enumerate(sys.argv[2:]):
        print(f"start {number}", flush=True)
        print(f"done {number} {outcome(path)}", flush=True)


if __name__ == "__main__":
    main()
