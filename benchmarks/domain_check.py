"""Cost of the out-of-domain check: classification with the check (``clf.proba_and_domain``)
against classification alone (``clf.predict_proba``), same slices, one run, alternating order.

The check reuses the forward pass (hooks take each stage's output and the penultimate features)
and adds a spatial mean and a Mahalanobis distance per layer; the issue's goal is ≤ 10 % of one
classification.

Usage: python benchmarks/domain_check.py [--model demo] [--slices 16] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice

    clf = load(args.model, device="cpu")
    stack = np.stack([make_slice(60_000 + s, contrast=bool(s % 2)).hu for s in range(args.slices)])
    clf.predict_proba(stack[:2])
    clf.proba_and_domain(stack[:2])  # warm-up, statistics loaded
    times: dict[str, list[float]] = {"classify": [], "classify + domain check": []}
    for r in range(args.repeats):
        order = ("classify", "classify + domain check") if r % 2 == 0 else ("classify + domain check", "classify")
        for name in order:
            t0 = time.perf_counter()
            if name == "classify":
                clf.predict_proba(stack)
            else:
                clf.proba_and_domain(stack)
            times[name].append(time.perf_counter() - t0)
    a, b = (float(np.median(times[k])) for k in ("classify", "classify + domain check"))
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {args.threads} threads; model {args.model}, "
          f"{args.slices} slices of {stack.shape[1]}², median of {args.repeats}")
    print(f"classify {a / args.slices * 1e3:.1f} ms/slice, with the domain check {b / args.slices * 1e3:.1f} "
          f"ms/slice: overhead {100 * (b / a - 1):+.1f} % (goal ≤ 10 %)")


if __name__ == "__main__":
    main()
