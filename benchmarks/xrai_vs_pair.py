"""Time XRAI segmentation and region growing against PAIR ``saliency`` 0.2.1 on the same inputs.

Prints both times, the ratio, and whether the outputs are identical.
Usage: python benchmarks/xrai_vs_pair.py [--size 224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from saliency.core.xrai import XRAI, XRAIParameters, _get_segments_felzenszwalb

from napari_ctinterp import xrai
from napari_ctinterp.phantom import make_slice


def best_of(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs="+", default=[224, 512])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.processor()}, best of {args.repeat}")
    for size in args.size:
        im = make_slice(2024, size=size, level=0.58).hu
        attr = np.abs(np.random.default_rng(0).normal(size=im.shape)).astype(np.float32)
        t_pair_seg, masks = best_of(lambda: _get_segments_felzenszwalb(im), args.repeat)
        t_our_seg, seg = best_of(lambda: xrai.segment(im, cache=False), args.repeat)
        same_seg = len(masks) == len(seg) and all(np.array_equal(seg.mask(i), m) for i, m in enumerate(masks))
        print(f"{size}x{size} segmentation  PAIR {t_pair_seg:6.3f} s  ours {t_our_seg:6.3f} s  "
              f"ratio {t_pair_seg / t_our_seg:5.1f}x  identical={same_seg}  ({len(seg)} masks)")
        for algorithm in ("full", "fast"):
            params = XRAIParameters(algorithm=algorithm, return_xrai_segments=True)
            t_pair, ref = best_of(lambda: XRAI().GetMaskWithDetails(im, None, segments=masks, base_attribution=attr,
                                                                      extra_parameters=params), args.repeat)
            # Our segmentation time above includes building the mask incidence, reused by every map.
            t_ours, ours = best_of(lambda: xrai.region_map(attr, seg, algorithm=algorithm), args.repeat)
            same = np.array_equal(ours.values, ref.attribution_mask) and np.array_equal(ours.ranks, ref.segments)
            print(f"{size}x{size} region map {algorithm:4s} PAIR {t_pair:6.3f} s  ours {t_ours:6.3f} s  "
                  f"ratio {t_pair / t_ours:5.1f}x  identical={same}")


if __name__ == "__main__":
    main()
