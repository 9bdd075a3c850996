"""Time the 15-map set (5 methods × plain/SG/SG²) through our engine and the usual Captum way.

Same model, same slice, same settings, one run. Captum "the usual way": Saliency,
IntegratedGradients per baseline (IGBW = two IG calls), GradientShap for EG, Deconvolution, each
wrapped in NoiseTunnel once per variant. Also times a single plain IG map both ways.

The machine this was written on is shared and its speed drifts over minutes, so with
``--repeats 2`` (the default) the 15-map timings run in ABBA order (ours, Captum, Captum, ours) and
the ratio is that of the summed times, which cancels a linear drift; best-of times are printed too.

Other models (``--model densenet121``, ``efficientnet_b0``, any torchvision builder): random weights
(BatchNorm statistics randomised as in the tests), 256², three HU windows with ImageNet
normalisation, four classes; the generic engine (no ResNet fast path). IG baselines are the
card's black / white images for both sides. A network without ReLUs (EfficientNet: SiLU) has no
Deconvolution, so its set is the other 12 maps.

``--methods GC GBP GGC OCC`` times the methods beyond the paper instead, each as its own map set
(GC, GBP, GGC × plain/SG/SG²; OCC plain), ours against Captum's LayerGradCam + interpolate
(bilinear), GuidedBackprop, GuidedGradCam (bilinear) and Occlusion (``perturbations_per_eval`` 32),
wrapped in NoiseTunnel for SG/SG²; then all of them in one ``explain`` call (shared passes).

``--all-classes`` (ours only) times explaining every class in one call (``explain_targets``, shared
forward passes) against one call per class.

Usage: python benchmarks/explain_vs_captum.py [--model demo|demo-phase|densenet121|...] [--threads 2]
       [--repeats 2] [--quick] [--all-classes] [--methods GC GBP GGC OCC]
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
        return torch.stack([self.clf.target_score(logits, torch.full((len(x),), c))
                            for c in range(self.clf.card.n_classes)], 1)


def random_model(architecture: str, size: int = 256):
    """A random-weight 3-window, 4-class classifier of any torchvision family (the engine's generic path)."""
    from napari_ctinterp.model import Classifier, ModelCard, build

    card = ModelCard(architecture=architecture, input_size=(size, size), output="softmax",
                     class_names=("no contrast", "arterial", "pulmonary", "venous"),
                     channels=({"window": [-1350, 150]}, {"window": [-160, 240]}, {"window": [-500, 1300]}),
                     normalize={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                     name=f"random {architecture}")
    torch.manual_seed(0)
    net = build(architecture, "softmax", in_channels=3, n_logits=4)
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():  # eval-mode BatchNorm with non-trivial statistics, as a trained net has
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return Classifier(net.eval(), card, torch.device("cpu"), source=f"random {architecture}")


def captum_15(clf, x, refs, target, *, steps, samples, sg_samples, sigma, batch, methods):
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
        black, white = clf.baseline(0.0).expand_as(x), clf.baseline(1.0).expand_as(x)
        igb = run(IntegratedGradients(f), baselines=black, n_steps=steps, internal_batch_size=batch)
        igw = run(IntegratedGradients(f), baselines=white, n_steps=steps, internal_batch_size=batch)
        out["IGB", v], out["IGBW", v] = igb, 0.5 * (igb + igw)
        # GradientShap (stdevs 0 = EG) cannot sit inside NoiseTunnel with a baseline distribution, so SG/SG²
        # of EG is NoiseTunnel's loop written out: one GradientShap call per noisy copy.
        if nt is None:
            out["EG", v] = GradientShap(f).attribute(x, baselines=refs, n_samples=samples, target=target)
        else:
            gs = [GradientShap(f).attribute(x + sigma * torch.randn_like(x), baselines=refs, n_samples=samples,
                                            target=target) for _ in range(sg_samples)]
            out["EG", v] = torch.stack(gs).mean(0) if v == "SG" else (torch.stack(gs) ** 2).mean(0)
        if "D" in methods:
            out["D", v] = run(Deconvolution(f))
    return out


def captum_beyond(clf, x, target, method, *, sg_samples, sigma, window, stride, batch):
    """One method beyond the paper, the usual Captum way: plain, then SG and SG² with NoiseTunnel."""
    from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion

    from napari_ctinterp.explain.gradcam import target_layer

    f = _Scores(clf)
    if method == "OCC":
        c = x.shape[1]
        return {("OCC", "plain"): Occlusion(f).attribute(x, target=target, sliding_window_shapes=(c, window, window),
                                                         strides=(c, stride, stride),
                                                         baselines=clf.baseline(0.0).expand_as(x),
                                                         perturbations_per_eval=batch)}
    layer = target_layer(clf.module, clf.card.architecture, x, None).module
    attr = {"GC": lambda: LayerGradCam(f, layer), "GBP": lambda: GuidedBackprop(f),
            "GGC": lambda: GuidedGradCam(f, layer)}[method]()
    kw = {"GC": {"relu_attributions": True}, "GBP": {}, "GGC": {"interpolate_mode": "bilinear"}}[method]
    out = {}
    for v, nt in (("plain", None), ("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
        a = attr.attribute(x, target=target, **kw) if nt is None else NoiseTunnel(attr).attribute(
            x, nt_type=nt, nt_samples=sg_samples, stdevs=sigma, target=target, **kw)
        out[method, v] = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), "bilinear") if method == "GC" else a
    return out


def beyond(clf, hu, x, target, methods, *, sg, sigma, repeats, batch) -> None:
    """Ours vs Captum per method beyond the paper (ABBA order), then ours for all of them at once."""
    from napari_ctinterp.explain import explain

    window, stride = 16, 8
    rows = []
    for m in methods:
        variants = ("plain",) if m == "OCC" else ("plain", "SG", "SG2")
        times: dict[str, list[float]] = {"ours": [], "captum": []}
        order = [o for i in range(repeats) for o in (("ours", "captum") if i % 2 == 0 else ("captum", "ours"))]
        for side in order:
            t0 = time.perf_counter()
            if side == "ours":
                explain(clf, hu, methods=(m,), variants=variants, sg_samples=sg, target=target,
                        occ_window=window, occ_stride=stride, batch_size=batch or None)
            else:
                captum_beyond(clf, x, target, m, sg_samples=sg, sigma=sigma, window=window, stride=stride, batch=32)
            times[side].append(time.perf_counter() - t0)
        o, c = sum(times["ours"]), sum(times["captum"])
        rows.append((m, len(variants), o / repeats, c / repeats))
        print(f"{m:4s} ({len(variants)} map(s))  ours {o / repeats:7.2f} s   captum {c / repeats:7.2f} s   "
              f"ratio {c / o:5.2f}x  (mean of {repeats}, ABBA)", flush=True)
    t0 = time.perf_counter()
    maps = explain(clf, hu, methods=tuple(methods), sg_samples=sg, target=target, occ_window=window,
                   occ_stride=stride, batch_size=batch or None)
    together = time.perf_counter() - t0
    apart = sum(r[3] for r in rows)
    print(f"all of {' '.join(methods)} ({len(maps)} maps) in one call: ours {together:7.2f} s   "
          f"Captum one method at a time {apart:7.2f} s   ratio {apart / together:5.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="fewer samples (smoke run, not a benchmark)")
    ap.add_argument("--batch", type=int, default=0, help="engine batch size (0 = auto)")
    ap.add_argument("--ours-only", action="store_true", help="time only the engine")
    ap.add_argument("--repeats", type=int, default=2, help="15-map timings per side, in ABBA order (default 2)")
    ap.add_argument("--size", type=int, default=256, help="input size of a random-weight --model")
    ap.add_argument("--all-classes", action="store_true",
                    help="time explain_targets (all classes) vs one call per class")
    ap.add_argument("--methods", nargs="+", choices=["GC", "GBP", "GGC", "OCC"],
                    help="time these methods beyond the paper (ours vs Captum) instead of the 15-map set")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.explain import ExplainOptions, explain, explain_targets
    from napari_ctinterp.explain.deconv import OTHER_ACTIVATIONS
    from napari_ctinterp.model import DEMOS, load
    from napari_ctinterp.model.demos import demo_references
    from napari_ctinterp.phantom import make_slice

    clf = load(args.model, device="cpu") if args.model in DEMOS or args.model.endswith(
        (".safetensors", ".pt", ".pth", ".ts", ".pt2")) else random_model(args.model, args.size)
    has_relu_only = not any(isinstance(m, OTHER_ACTIVATIONS) for m in clf.module.modules())
    methods = ("BP", "IGB", "IGBW", "EG", "D") if has_relu_only else ("BP", "IGB", "IGBW", "EG")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    refs_hu = demo_references()
    steps, samples, sg = (25, 50, 15) if not args.quick else (5, 5, 3)
    x = clf.preprocess(hu).contiguous()
    refs = clf.preprocess(refs_hu).contiguous()
    sigma = 0.15 * float(x.max() - x.min())
    target = int(clf.predicted(clf.logits(x))[0])
    n_maps = 3 * len(methods)
    shown = (f"{n_maps} maps: {', '.join(methods)}" if not args.methods
             else f"beyond the paper: {' '.join(args.methods)}")
    print(f"machine: {platform.machine()} {platform.processor()}, torch {torch.__version__}, "
          f"{args.threads} threads, model {args.model} ({clf.card.architecture} {clf.card.input_size}, "
          f"{clf.card.in_channels} channel(s), {clf.card.n_classes} classes); {shown}")

    explain(clf, hu, methods=("BP",), variants=("plain",), target=target)  # warm-up both paths

    opts = ExplainOptions(methods=methods, steps=steps, samples=samples, sg_samples=sg)

    def run_ours(target=target, targets=None) -> float:
        t0 = time.perf_counter()
        if targets is None:
            explain(clf, hu, opts, references=refs_hu, batch_size=args.batch or None, target=target)
        else:
            explain_targets(clf, hu, targets, opts, references=refs_hu, batch_size=args.batch or None)
        return time.perf_counter() - t0

    def run_captum() -> float:
        t0 = time.perf_counter()
        captum_15(clf, x, refs, target, steps=steps, samples=samples, sg_samples=sg, sigma=sigma, batch=32,
                  methods=methods)
        return time.perf_counter() - t0

    if args.methods:
        beyond(clf, hu, x, target, args.methods, sg=sg, sigma=sigma, repeats=args.repeats, batch=args.batch)
        return
    if args.all_classes:
        names = list(clf.class_names)
        apart = sum(run_ours(target=t) for t in names)
        together = run_ours(targets=names)
        print(f"{n_maps} maps × {len(names)} classes  one call per class {apart:7.1f} s   explain_targets "
              f"{together:7.1f} s   ratio {apart / together:5.2f}x")
        return
    if args.ours_only:
        print(f"{n_maps} maps  ours {run_ours():7.1f} s")
        return
    order = ["ours", "captum"] * args.repeats
    if args.repeats >= 2:  # ABBA...: ours, captum, captum, ours, ours, captum, ...
        order = [o for i in range(args.repeats) for o in (("ours", "captum") if i % 2 == 0 else ("captum", "ours"))]
    t15: dict[str, list[float]] = {"ours": [], "captum": []}
    for side in order:
        t15[side].append(run_ours() if side == "ours" else run_captum())
        print(f"{n_maps} maps  {side:6s} {t15[side][-1]:7.1f} s", flush=True)
    so, sc = sum(t15["ours"]), sum(t15["captum"])
    print(f"{n_maps} maps  ours {so / len(t15['ours']):7.1f} s   captum {sc / len(t15['captum']):7.1f} s   "
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
        xi = clf.preprocess(hu).contiguous()
        IntegratedGradients(_Scores(clf)).attribute(xi, baselines=clf.baseline(0.0).expand_as(xi), target=target,
                                                    n_steps=steps)
        times["captum"].append(time.perf_counter() - t0)
    o, c = min(times["ours"]), min(times["captum"])
    print(f"1 IG map ours {o:7.2f} s   captum {c:7.2f} s   ratio {c / o:5.2f}x  (best of 3)")
    from napari_ctinterp.explain.plan import ExplainOptions, make_plan

    ours_n = make_plan(ExplainOptions(methods=methods, steps=steps, samples=samples, sg_samples=sg)).total
    captum_n = sum(n * (1 + 2 * steps + samples + ("D" in methods)) for n in (1, sg, sg))  # BP, IG b+w, EG, D
    print(f"gradient evaluations for the {n_maps} maps: ours {ours_n}, Captum {captum_n} ({captum_n / ours_n:.2f}x)")


if __name__ == "__main__":
    main()
