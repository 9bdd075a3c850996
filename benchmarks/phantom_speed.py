"""Slices per second of the phantom generator, per noise mode and size (one process).

Usage: python benchmarks/phantom_speed.py [--n 20]
"""

from __future__ import annotations

import argparse
import platform
import time

from napari_ctinterp.phantom import make_slice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    for noise, size, n in (("fast", 512, args.n), ("fast", 256, args.n), ("none", 512, args.n),
                           ("fbp", 512, max(2, args.n // 10)), ("fbp", 256, max(3, args.n // 4))):
        make_slice(0, noise=noise, size=size)  # warm-up
        t0 = time.perf_counter()
        for seed in range(1, n + 1):
            make_slice(seed, noise=noise, size=size)
        dt = (time.perf_counter() - t0) / n
        print(f"noise={noise:5s} size={size}: {dt * 1000:7.1f} ms/slice = {1 / dt:5.2f} slices/s (n={n})")


if __name__ == "__main__":
    main()
