"""Fidelity at the forward-pass floor: the study's fidelity of one slice against the model's plain
forward pass, and one map's MiF + LiF curves against Quantus' ``PixelFlipping``, in one run.

(a) ``metrics.fidelity_many`` over every map the study scores on one demo slice (15 maps + the
    random map, absolute and signed, pixel and XRAI region maps: 62), per perturbed image of the
    protocol (41 p values × 2 curves per map) and per image actually forwarded;
(b) the plain forward pass of the same model per image at its best batch on this machine: the
    best of batches 4, 8, 16, 32 on all threads and of two one-thread workers (what the plan may
    use), inference mode, channels_last — the floor of (a);
(c) one map's MiF and LiF curves by Quantus 0.6 ``PixelFlipping`` (our fill value, the map's order,
    32 steps of 1/32 of the pixels, its own loop: one image per forward) against ours with the same
    steps and fill, and the largest difference of the curves (they must coincide).

Quantus lives only in the benchmark's environment, not in the package's::

    pip install --target .bench quantus==0.6.0 opencv-python-headless --no-deps
    PYTHONPATH=.bench python benchmarks/fidelity_speed.py

Usage: python benchmarks/fidelity_speed.py [--model demo] [--threads 2] [--no-quantus]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-quantus", action="store_true")
    ap.add_argument("--quantus-only", action="store_true", help="only (c)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.explain import explain
    from napari_ctinterp.metrics import fidelity_grid, fidelity_many, random_map
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice
    from napari_ctinterp.runtime import forward_batch_size
    from napari_ctinterp.study.slice_task import study_maps
    from napari_ctinterp.xrai import segment

    clf = load(args.model, device="cpu")
    hu = make_slice(70_001, contrast=True).hu
    label = 1
    x = clf.preprocess(hu)
    # the maps' content does not change fidelity's cost; small gradient settings keep this quick
    maps = dict(explain(clf, hu, steps=4, samples=4, sg_samples=2, seed=0))
    maps["random", "plain"] = random_map(hu.shape, seed=0)
    scored = {"|".join(k): v[None].astype(np.float32) for k, (v, _) in study_maps(maps, segment(hu), "full").items()}
    p = fidelity_grid(2.5)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{args.threads} threads; model {args.model}, input {tuple(x.shape[-2:])}")

    sys.path.insert(0, str(Path(__file__).parent))
    from _floor import forward_floor

    if args.quantus_only:
        return _quantus(clf, hu, x, maps, label)
    # the machine's speed drifts: the floor is measured before and after (a), and their mean is used
    before, how = forward_floor(clf, x)
    print(f"(b) plain forward before (a): {before * 1e3:.1f} ms/image at its best ({how})")

    seen = {"n": 0}
    hook = clf.module.register_forward_pre_hook(lambda _m, a: seen.__setitem__("n", seen["n"] + len(a[0])))
    t0 = time.perf_counter()
    fidelity_many(clf, hu[None], scored, np.array([label]), step=2.5, bootstrap=1)
    t_a = time.perf_counter() - t0
    hook.remove()
    protocol = len(scored) * 2 * len(p)
    after, how = forward_floor(clf, x)
    floor = (before + after) / 2
    print(f"(b) plain forward after (a): {after * 1e3:.1f} ms/image ({how}); floor = mean {floor * 1e3:.1f} ms/image")
    print(f"(a) fidelity_many: {len(scored)} maps, {protocol} protocol images, {seen['n']} forwarded "
          f"(batch {forward_batch_size(clf, tuple(x.shape[-2:]))}): {t_a:.1f} s = "
          f"{t_a / protocol * 1e3:.1f} ms per protocol image, {t_a / seen['n'] * 1e3:.1f} ms per forwarded image")
    print(f"    ratio (a)/(b): {t_a / protocol / floor:.2f} per protocol image, "
          f"{t_a / seen['n'] / floor:.2f} per forwarded image (goal ≤ 1.15)")

    if not args.no_quantus:
        _quantus(clf, hu, x, maps, label)


def _quantus(clf, hu: np.ndarray, x: torch.Tensor, maps: dict, label: int) -> None:
    """(c): one map's MiF + LiF curves by Quantus against ours, same steps and fill."""
    import quantus

    from napari_ctinterp.metrics import fidelity_many

    one = np.abs(maps["IGB", "plain"]).astype(np.float32)
    # the map in the model's input geometry, resized as fidelity does it (bilinear): Quantus ranks that
    small = torch.nn.functional.interpolate(torch.as_tensor(one)[None, None], size=x.shape[-2:], mode="bilinear",
                                            align_corners=False)[0, 0].numpy()
    n_pix = small.size
    steps = 32
    x_np = x.cpu().numpy()
    black = float(clf.baseline(0.0).flatten()[0])  # our label fill of a contrast slice, given to Quantus as a value

    class Probs(torch.nn.Module):  # Quantus applies softmax to the outputs: give it two logits
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, t):
            z = self.net(t)
            return torch.cat([torch.zeros_like(z), z], dim=1) if z.shape[1] == 1 else z

    wrapped = Probs(clf.module).eval()
    pred0 = int(clf.predicted(clf.logits(x))[0])
    metric = quantus.PixelFlipping(features_in_step=n_pix // steps, perturb_baseline=black, normalise=False,
                                   abs=False, disable_warnings=True, display_progressbar=False)
    t0 = time.perf_counter()
    curves = {}
    for name, a in (("mif", small), ("lif", small.max() - small)):  # LiF: the reversed order, kept ≥ 0
        curves[name] = np.asarray(metric(model=wrapped, x_batch=x_np, y_batch=np.array([pred0]), a_batch=a[None, None],
                                         device="cpu", softmax=True))[0]
    t_q = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = fidelity_many(clf, hu[None], {"IGB": one[None]}, np.array([label]), step=100 / steps, bootstrap=1)["IGB"]
    t_o = time.perf_counter() - t0
    with torch.no_grad():
        p0 = float(torch.softmax(wrapped(x), 1)[0, pred0])
    diff = max(float(np.abs(ours.prob_mif[0, 1:] * p0 - curves["mif"]).max()),
               float(np.abs(ours.prob_lif[0, 1:] * p0 - curves["lif"]).max()))
    print(f"(c) one map, MiF + LiF, {steps} steps: Quantus PixelFlipping {t_q:.2f} s, ours {t_o:.2f} s: "
          f"{t_q / t_o:.1f}× in our favour; largest curve difference {diff:.2e}")


if __name__ == "__main__":
    main()
