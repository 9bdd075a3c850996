#!/usr/bin/env bash
# The main job: napari with the plugin's widgets docked and the demo data loaded.
# Extra arguments go to `ctinterp demo` (e.g. --screenshot out.png saves the window and exits).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display found, running napari on a virtual X display (xvfb-run)" >&2
  exec xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/ctinterp demo "$@"
fi
exec .venv/bin/ctinterp demo "$@"
