"""Time the 15-map set (5 methods × plain/SG/SG²) through our engine and the usual Captum way.

Same model, same slice, same settings, one run. Captum "the usual way": Saliency,
IntegratedGradients per baseline (IGBW = two IG calls), GradientShap for EG, Deconvolution, each
wrapped in NoiseTunnel once per variant. Also times a single plain IG map both ways.

The machine this was written on is shared and its speed drifts over minutes, so with
``--repeats 2`` (the default) the 15-map timings run in ABBA order (ours, Captum, Captum, ours) and
the ratio is that of the summed times, which cancels a linear drift; best-of times are printed too.

Usage: python benchmarks/explain_vs_captum.py [--model demo] [--threads 2] [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn


class _Scores(nn.Module):
    """Column c = the engine's target score of class c, so Captum explains the same number."""

    def __init__(self, clf) -> None:
        super().__init__()
        self.clf, self.net = clf, clf.module

    def forward(self, x):
        logits = self.net(x)
        return torch.stack([self.clf.target_score(logits, torch.full((len(x),), c)) for c in (0, 1)], 1)


def captum_15(clf, x, refs, target, *, steps, samples, sg_samples, sigma, batch):
    from captum.attr import Deconvolution, GradientShap, IntegratedGradients, NoiseTunnel, Saliency

    f = _Scores(clf)
    out = {}
    for v, nt in (("plain", None), ("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
        def run(method, **kw):
            if nt is None:
                return method.attribute(x, target=target, **kw)
            return NoiseTunnel(method).attribute(x, nt_type=nt, nt_samples=sg_samples, stdevs=sigma,
                                                 target=target, **kw)
        out["BP", v] = run(Saliency(f), abs=False)
        igb = run(IntegratedGradients(f), baselines=0.0, n_steps=steps, internal_batch_size=batch)
        igw = run(IntegratedGradients(f), baselines=1.0, n_steps=steps, internal_batch_size=batch)
        out["IGB", v], out["IGBW", v] = igb, 0.5 * (igb + igw)
        # GradientShap (stdevs 0 = EG) cannot sit inside NoiseTunnel with a baseline distribution, so SG/SG²
        # of EG is NoiseTunnel's loop written out: one GradientShap call per noisy copy.
        if nt is None:
            out["EG", v] = GradientShap(f).attribute(x, baselines=refs, n_samples=samples, target=target)
        else:
            gs = [GradientShap(f).attribute(x + sigma * torch.randn_like(x), baselines=refs, n_samples=samples,
                                            target=target) for _ in range(sg_samples)]
            out["EG", v] = torch.stack(gs).mean(0) if v == "SG" else (torch.stack(gs) ** 2).mean(0)
        out["D", v] = run(Deconvolution(f))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer samples (smoke run, not a benchmark)")
    ap.add_argument("--batch", type=int, default=0, help="engine batch size (0 = auto)")
    ap.add_argument("--ours-only", action="store_true", help="time only the engine")
    ap.add_argument("--repeats", type=int, default=2, help="15-map timings per side, in ABBA order (default 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.explain import demo_references, explain
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice

    clf = load(args.model, device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    refs_hu = demo_references()
    steps, samples, sg = (25, 50, 15) if not args.quick else (5, 5, 3)
    x = clf.preprocess(hu).contiguous()
    refs = clf.preprocess(refs_hu).contiguous()
    sigma = 0.15 * float(x.max() - x.min())
    target = int(clf.predict(hu) >= 0.5)
    print(f"machine: {platform.machine()} {platform.processor()}, torch {torch.__version__}, "
          f"{args.threads} threads, model {args.model} ({clf.card.architecture} {clf.card.input_size})")

    explain(clf, hu, methods=("BP",), variants=("plain",))  # warm-up both paths

    def run_ours() -> float:
        t0 = time.perf_counter()
        explain(clf, hu, steps=steps, samples=samples, sg_samples=sg, references=refs_hu, target=target,
                batch_size=args.batch or None)
        return time.perf_counter() - t0

    def run_captum() -> float:
        t0 = time.perf_counter()
        captum_15(clf, x, refs, target, steps=steps, samples=samples, sg_samples=sg, sigma=sigma, batch=32)
        return time.perf_counter() - t0

    if args.ours_only:
        print(f"15 maps  ours {run_ours():7.1f} s")
        return
    order = ["ours", "captum"] * args.repeats
    if args.repeats >= 2:  # ABBA...: ours, captum, captum, ours, ours, captum, ...
        order = [o for i in range(args.repeats) for o in (("ours", "captum") if i % 2 == 0 else ("captum", "ours"))]
    t15: dict[str, list[float]] = {"ours": [], "captum": []}
    for side in order:
        t15[side].append(run_ours() if side == "ours" else run_captum())
        print(f"15 maps  {side:6s} {t15[side][-1]:7.1f} s", flush=True)
    so, sc = sum(t15["ours"]), sum(t15["captum"])
    print(f"15 maps  ours {so / len(t15['ours']):7.1f} s   captum {sc / len(t15['captum']):7.1f} s   "
          f"ratio {sc / so:5.2f}x  (mean of {args.repeats}; best of each: "
          f"{min(t15['ours']):.1f} s vs {min(t15['captum']):.1f} s = {min(t15['captum']) / min(t15['ours']):.2f}x)")

    from captum.attr import IntegratedGradients

    times = {"ours": [], "captum": []}
    for _ in range(3):
        t0 = time.perf_counter()
        explain(clf, hu, methods=("IGB",), variants=("plain",), steps=steps, target=target)
        times["ours"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        # from the HU slice, as explain does (preprocessing ≈ 4 ms here)
        IntegratedGradients(_Scores(clf)).attribute(clf.preprocess(hu).contiguous(), baselines=0.0, target=target,
                                                    n_steps=steps)
        times["captum"].append(time.perf_counter() - t0)
    o, c = min(times["ours"]), min(times["captum"])
    print(f"1 IG map ours {o:7.2f} s   captum {c:7.2f} s   ratio {c / o:5.2f}x  (best of 3)")
    from napari_ctinterp.explain.plan import ExplainOptions, make_plan

    ours_n = make_plan(ExplainOptions(steps=steps, samples=samples, sg_samples=sg)).total
    captum_n = sum(n * (1 + 2 * steps + samples + 1) for n in (1, sg, sg))  # BP, IG black + white, EG, D
    print(f"gradient evaluations for the 15 maps: ours {ours_n}, Captum {captum_n} ({captum_n / ours_n:.2f}x)")


if __name__ == "__main__":
    main()
