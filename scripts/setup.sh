#!/usr/bin/env bash
# Shared set-up of the README's two commands: system libraries Qt needs under Xvfb, a virtual
# environment in the repository (.venv), and the package with its extras. Idempotent and quick
# when nothing changed (a stamp records the hash of pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-all}"

need=()
for pkg in xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0 libgl1 libegl1 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.ctinterp-installed-$EXTRAS"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing napari-ctinterp[$EXTRAS] (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch and torchvision first, pinned to the releases this machine serves from local disk.
  .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
  case ",$EXTRAS," in *,testing,*)
    # Quantus and pytorch-grad-cam (references the metrics and Grad-CAM++ are tested against)
    # without their opencv-python, whose Qt plugins would shadow PyQt6's: the headless opencv
    # comes with the testing extra instead.
    .venv/bin/python -m pip install -q --no-deps "quantus==0.6.0" "grad-cam==1.5.7" ;;
  esac
  echo "$want" > "$stamp"
fi
