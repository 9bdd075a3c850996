"""One study slice against its floor: ``run_study`` of demo slices at the study's settings, timed by
phase, against the model arithmetic it cannot avoid, in one run.

Floor = the slice's gradient time (the ``gradients`` phase: the attribution engine, already near
its own floor, see benchmarks/explain_vs_captum.py) + the images fidelity forwarded × the plain
forward time per image at its best batch (benchmarks/_floor.py). Everything else — loading the
slice, preprocessing, XRAI's segmentation and region maps, localisation, fidelity's overhead,
writing the slice's JSON and the tables and report — is overhead; the goal is study time per slice
≤ 1.2 × floor. With ``--slices N`` (N > 1) it also prints the ETA the progress line showed after the
first slice against the time the rest really took (goal: within 20 %).

Usage: python benchmarks/study_slice.py [--slices 1] [--small] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--slices", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--small", action="store_true", help="steps 4, samples 4, SG samples 2, fidelity step 10 (quick)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from _floor import forward_floor

    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice
    from napari_ctinterp.study import StudyConfig, run_study
    from napari_ctinterp.study.clock import FINISHED, STARTED, StudyClock, split_phase

    small = dict(steps=4, samples=4, sg_samples=2, fidelity_step=10.0) if args.small else {}
    cfg = StudyConfig(model=args.model, slices=args.slices, **small)
    clf = load(args.model, device="cpu")
    floor, how = forward_floor(clf, clf.preprocess(make_slice(70_001, contrast=True).hu))

    marks: list[tuple[str, str, float]] = []  # (slice, phase, when)
    done_at: list[float] = []
    clock = StudyClock()
    etas: list[float | None] = []
    counting = {"on": False, "n": 0}

    def progress(done: int, total: int, phase: str) -> None:
        now = time.perf_counter()
        clock.update(done, total, phase, now)
        if phase == FINISHED:
            done_at.append(now)
            etas.append(clock.eta(now))
            counting["on"] = False
        elif phase != STARTED:
            slice_id, name = split_phase(phase)
            marks.append((slice_id, name, now))
            counting["on"] = name == "fidelity"

    def count(_m, a):
        if counting["on"]:
            counting["n"] += len(a[0])

    hook = clf.module.register_forward_pre_hook(count)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_study(cfg, out, device="cpu", progress=progress)
        total = time.perf_counter() - t0
    hook.remove()
    order = list(dict.fromkeys(m[0] for m in marks))  # in-process slices finish in the order they start
    finished = dict(zip(order, done_at))
    ends: dict[str, list[float]] = {}
    for i, (sid, name, when) in enumerate(marks):
        same = i + 1 < len(marks) and marks[i + 1][0] == sid
        ends.setdefault(name, []).append((marks[i + 1][2] if same else finished[sid]) - when)
    grad, xrai, fid = (float(np.sum(ends.get(k, [0.0]))) for k in ("gradients", "XRAI", "fidelity"))
    fid_floor = counting["n"] * floor
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} threads; model {args.model}; "
          f"{args.slices} slice(s), steps {cfg.steps}, samples {cfg.samples}, SG samples {cfg.sg_samples}, "
          f"XRAI {cfg.xrai}, fidelity step {cfg.fidelity_step}")
    print(f"forward floor {floor * 1e3:.1f} ms/image ({how}); fidelity forwarded {counting['n']} images")
    print(f"per slice: study {total / args.slices:.1f} s = gradients {grad / args.slices:.1f} + XRAI "
          f"{xrai / args.slices:.1f} + fidelity {fid / args.slices:.1f} + the rest "
          f"{(total - grad - xrai - fid) / args.slices:.1f} s")
    print(f"floor per slice: gradients {grad / args.slices:.1f} s + fidelity at the forward floor "
          f"{fid_floor / args.slices:.1f} s; ratio study / floor = {total / (grad + fid_floor):.2f} (goal ≤ 1.2)")
    for sid in order:
        mine = [(name, when) for s_, name, when in marks if s_ == sid]
        steps = [f"{name} {(mine[i + 1][1] if i + 1 < len(mine) else finished[sid]) - when:.1f} s"
                 for i, (name, when) in enumerate(mine)]
        print(f"  {sid}: " + ", ".join(steps))
    if args.slices > 1 and etas[0] is not None:
        rest = done_at[-1] - done_at[0]
        print(f"ETA after the first slice {etas[0]:.1f} s, the rest took {rest:.1f} s: "
              f"{100 * (etas[0] / rest - 1):+.1f} % (goal within ±20 %)")


if __name__ == "__main__":
    main()
