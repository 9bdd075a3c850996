"""Time ``explain_volume`` over a phantom volume against a Python loop of ``explain`` (same slices,
same settings, one run, alternating order AB BA), and check that both give the same maps.

The volume is written as a DICOM series by the phantom and read back (as a user's CT would be):
consecutive levels of one seed, 512² by default. Defaults are the issue's case — 48 slices,
BP + IGB + EG × plain / SG / SG² with the demo model — about 45 min per side on 2 CPU cores;
``--slices``, ``--size`` and ``--quick`` make a run that fits a smaller machine.

Usage: python benchmarks/explain_volume.py [--slices 48] [--size 512] [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=48)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="IG 5 steps, EG 5 samples, 3 SG copies")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.explain import explain, explain_volume
    from napari_ctinterp.io import read_ct, write_dicom_series
    from napari_ctinterp.model import load
    from napari_ctinterp.model.demos import demo_references
    from napari_ctinterp.phantom import make_slice

    steps, samples, sg = (5, 5, 3) if args.quick else (25, 50, 15)
    kw = dict(methods=("BP", "IGB", "EG"), variants=("plain", "SG", "SG2"), steps=steps, samples=samples,
              sg_samples=sg, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        levels = np.linspace(0.3, 0.7, args.slices)
        write_dicom_series([make_slice(2024, contrast=True, phase="arterial", level=float(lv), size=args.size)
                            for lv in levels], Path(tmp) / "ct", seed=0)
        vol = read_ct(Path(tmp) / "ct").hu
    clf = load("demo", device="cpu")
    refs = demo_references()
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} threads; volume {vol.shape}, "
          f"BP+IGB+EG x plain/SG/SG2, IG {steps} steps, EG {samples} samples, SG {sg} copies")
    explain(clf, vol[0], methods=("BP",), variants=("plain",))  # warm-up

    def loop() -> tuple[float, dict]:
        t0 = time.perf_counter()
        out = {k: explain(clf, vol[k], references=refs, **kw) for k in range(len(vol))}
        return time.perf_counter() - t0, out

    def volume() -> tuple[float, object]:
        t0 = time.perf_counter()
        out = explain_volume(clf, vol, references=refs, **kw)
        return time.perf_counter() - t0, out

    times = {"loop": [], "volume": []}
    results = {}
    for side in ("volume", "loop", "loop", "volume"):
        t, res = volume() if side == "volume" else loop()
        times[side].append(t)
        results[side] = res
        print(f"{side:6s} {t:8.1f} s", flush=True)
    worst = max(float(np.linalg.norm(results["volume"][key][k] - m) / (np.linalg.norm(m) or 1.0))
                for k, maps in results["loop"].items() for key, m in maps.items())
    lo, vo = sum(times["loop"]), sum(times["volume"])
    print(f"{len(vol)} slices: loop of explain {lo / 2:.1f} s, explain_volume {vo / 2:.1f} s, ratio {lo / vo:.2f}x "
          f"(mean of 2, ABBA); largest per-slice difference {worst:.1e} (relative L2)")


if __name__ == "__main__":
    main()
