"""Time 3D XRAI (supervoxels + region growing) against the gradients of the map it explains.

Two phantom CTs: the 3D demo's input (one series of 32 slices 128², 5 mm, arterial, as
``benchmarks/explain_3d.py``) and a 48 × 512 × 512 CT (5 mm slices, the phantom's 0.65 mm pixels). For each:

- **gradients**: ``explain(load("demo-3d"), volume, BP × SG, spacing_mm=...)`` — the map XRAI
  explains (15 noisy gradients, from the HU volume to the map on the CT's grid);
- **segmentation**: ``xrai.segment(volume, spacing_mm=..., cache=False)`` (once per volume; every
  map of the volume reuses it);
- **growing**: ``xrai.region_map(|map|, seg)``, full and fast (once per map).

Best of ``--repeats`` runs each (after one warm-up of the gradients). Ratios: XRAI of one map
(segmentation + full growing) / its gradients — the goal is < 1 —, and for the 15-map set
(segmentation once + 15 full growings) / the 15-map set's time on the demo volume quoted from
docs/benchmarks.md (53.6 s, explain_3d.py, 2026-12-05, quiet machine). Memory: ``ru_maxrss`` of
the process and the size of the segments (incidence + masks). Timings on a shared machine are not
measurements: run it on a quiet one.

Usage: python benchmarks/xrai_3d.py [--repeats 3] [--threads 2] [--skip-large]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch

FIFTEEN_MAP_SET_S = 53.6  # docs/benchmarks.md, "3D models": ours, the 15-map set on one demo volume


def best_of(fn, repeats: int):
    """(best time in s, last result) of ``repeats`` calls."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def segments_mib(seg) -> float:
    csr, csc = seg.incidence()
    n = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (csr, csc))
    return (n + sum(m.nbytes for m in seg.local)) / 2**20


def case(name: str, hu: np.ndarray, spacing: tuple[float, float, float], clf, repeats: int) -> dict:
    from napari_ctinterp import xrai
    from napari_ctinterp.explain import ExplainOptions, explain

    opts = ExplainOptions(methods=("BP",), variants=("SG",))
    explain(clf, hu, opts, spacing_mm=spacing)  # warm-up
    t_grad, maps = best_of(lambda: explain(clf, hu, opts, spacing_mm=spacing), repeats)
    attr = np.abs(maps["BP", "SG"])
    t_seg, seg = best_of(lambda: xrai.segment(hu, spacing_mm=spacing, cache=False), repeats)
    t_full, reg = best_of(lambda: xrai.region_map(attr, seg, algorithm="full"), repeats)
    t_fast, reg_fast = best_of(lambda: xrai.region_map(attr, seg, algorithm="fast"), repeats)
    p = seg.params
    print(f"\n{name}: {hu.shape} at {tuple(round(s, 3) for s in spacing)} mm ({hu.size / 1e6:.1f} M voxels)")
    print(f"  supervoxels: {len(seg)} masks over {len(p['scale_ranges'])} scales {p['scales_mm']} mm; "
          f"SLIC grid {p['iso_mm']:.2f} mm; cells {seg.cell_shape} of "
          f"{tuple(round(c, 2) for c in p['cell_mm'])} mm; segments {segments_mib(seg):.0f} MiB")
    print(f"  gradients (BP SG, 15 gradients)   {t_grad:7.3f} s")
    print(f"  segmentation (once per volume)    {t_seg:7.3f} s")
    print(f"  growing, full ({len(reg.gains)} regions)       {t_full:7.3f} s")
    print(f"  growing, fast ({len(reg_fast.gains)} regions)       {t_fast:7.3f} s")
    one = t_seg + t_full
    print(f"  XRAI of one map (seg + full) / its gradients: {one / t_grad:.2f}  (goal < 1)")
    print(f"  full growing alone / gradients:               {t_full / t_grad:.2f}")
    return {"grad": t_grad, "seg": t_seg, "full": t_full, "fast": t_fast}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-large", action="store_true", help="only the demo volume")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_volume

    print(f"{platform.platform()}, {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__} ({args.threads} threads); best of {args.repeats}")
    clf = load("demo-3d", device="cpu")
    demo = make_volume(2024, contrast=True, phase="arterial", n_slices=32, spacing_mm=5.0, size=128)
    r = case("demo-3d input (phantom series)", demo.hu, demo.meta["spacing_mm"], clf, args.repeats)
    set15 = r["seg"] + 15 * r["full"]
    print(f"  15-map set: XRAI (seg once + 15 full growings) {set15:.2f} s vs the maps {FIFTEEN_MAP_SET_S} s "
          f"(docs/benchmarks.md): {set15 / FIFTEEN_MAP_SET_S:.3f}")
    if not args.skip_large:
        big = make_volume(7, contrast=True, phase="venous", n_slices=48, spacing_mm=5.0, size=512)
        case("48 × 512 × 512 phantom CT", big.hu, big.meta["spacing_mm"], clf, args.repeats)
        del big
    print(f"\npeak resident memory of the process (ru_maxrss): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
