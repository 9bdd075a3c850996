#!/usr/bin/env bash
# Train the 3D demo model ("demo-3d": contrast phase of a whole phantom CT volume) on this machine's CPU.
#
#   scripts/train_demo3d.sh [--threads N] [--epochs 20] [--n-train 1000] [--cache DIR] [--out DIR]
#
# Makes 1000 training, 200 validation and 200 held-out test volumes from seeds (phantom.make_volume;
# nothing is downloaded), trains a compact 3D CNN at 32x64x64 for 20 epochs, evaluates it on the fresh
# test volumes and writes napari_ctinterp/model/weights/demo-3d.{safetensors,card.json,references.npy}.
# Measured: 41 minutes on one thread of a busy 2-core CPU (--threads 1, the default): 12 min making the
# 1200 training + validation volumes, 24 min training, 3 min the test volumes. --threads 2 speeds up the
# training part only (making volumes is single-threaded numpy). --cache keeps the made volumes so that a
# re-run goes straight to training.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
exec "$PY" -m napari_ctinterp.model.demo3d_run "$@"
