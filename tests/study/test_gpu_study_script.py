"""``benchmarks/gpu_study.py`` runs on CPU as a smoke test (``--device cpu --slices 1``): a ResNet-50
with random weights and a card, every map, XRAI and fidelity, two runs compared bit for bit. Not a
timing: the figures it prints are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_study.py"


def test_gpu_study_script_runs_on_cpu(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--slices", "1", "--size", "64",
                           "--models", "resnet50", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_study.json").read_text())
    entry = report["models"]["resnet50"]
    assert entry["slices"] == 1 and entry["bit_identical_rerun"] is True
    assert set(entry["phases_per_slice_s"]) == {"gradients", "XRAI", "fidelity", "faithfulness"}
    assert entry["projected_290_slices_min"] > 0 and "smoke test" in report["device"]
    assert "resnet50: 1 slices" in done.stdout
