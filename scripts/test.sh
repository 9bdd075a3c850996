#!/usr/bin/env bash
# The whole test suite. napari tests drive a real viewer under Xvfb, which pytest-xvfb starts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all,testing
unset QT_QPA_PLATFORM  # napari cannot draw an Image layer offscreen
exec .venv/bin/python -m pytest "$@"
