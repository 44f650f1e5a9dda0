#!/usr/bin/env bash
# Build the one-folder desktop bundle into dist/avatarcam/ (run from anywhere).
# Needs the project installed with the build extra: pip install -e ".[build]"
set -euo pipefail
cd "$(dirname "$0")/.."
python -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller installer/avatarcam.spec
echo "bundle: dist/avatarcam/avatarcam  (try: dist/avatarcam/avatarcam doctor)"
