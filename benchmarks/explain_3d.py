"""Time the 3D engine against Captum (the 15-map set) and MONAI (GC, OCC) at the 3D demo's input size.

One phantom series (32 slices 128², 5 mm, arterial), explained whole by a 3D classifier: the 3D
demo model when its weights are there (``--model demo-3d``), else a random-weight network of the
demo's architecture (``ctinterp.CompactCNN3d``, BatchNorm statistics randomised, one window, four
classes) at the demo's input size (its card's ``input_size``; before the card exists, the 3D
trainer's default ``Train3dOptions().input_size``; ``--size D H W`` overrides). ``--model r3d_18``
or ``--model monai.DenseNet121`` time a random torchvision / MONAI 3D network instead.

- **The 15-map set** (BP, IGB, IGBW, EG, D × plain / SG / SG² at ``ExplainOptions``' defaults: IG 25
  steps, EG 50 samples, SG 15 copies, σ = 0.15; EG references: the demo's own volumes, or 8 phantom
  series): ours (one ``explain`` call from the HU volume, maps back on the CT's grid) against Captum
  "the usual way" (as ``benchmarks/explain_vs_captum.py`` in 2D: Saliency, IntegratedGradients per
  baseline, GradientShap for EG with the same references, Deconvolution, each wrapped in
  NoiseTunnel once per variant, on the preprocessed (1, C, D, H, W) input). ABBA order with
  ``--repeats 2`` (the machine's speed drifts); the ratio is that of the summed times.
- **GC against MONAI** ``visualize.GradCAM`` (its default post-processing, the usual way), best of
  N alternating; **OCC against MONAI** ``visualize.OcclusionSensitivity`` with our settings (window
  16, stride 8 → ``overlap=0.5``, constant fill 0 = our black fill, ``activate=False``, its default
  ``n_batch=16``): the same occluded volumes, so the same work (MONAI's own defaults, a Gaussian
  fill with 60 % overlap, are another quantity; tests/explain/test_monai_3d.py has the exact
  correspondence). Both sides start from the HU volume and end with maps on the CT's grid (MONAI's
  input-space maps taken there by the card's geometry, as ours are), and the maps are checked equal
  before timing. MONAI runs on a copy of the net with in-place ReLUs off (its backward hooks need
  it for DenseNet; same arithmetic).
- **Memory**: the engine's budget (a quarter of the free memory; the gradient batch is chosen from a
  measured per-sample activation size under it), and the peak resident memory of each side's run
  above the process's memory before it (sampled every 2 ms), and ``ru_maxrss`` of the process.

``--quick``: IG 5 steps, EG 5 samples, SG 3 copies, one run per side, 3 GC rounds — a smoke run of
under 2 minutes, not a benchmark.

Usage: python benchmarks/explain_3d.py [--quick] [--parts maps gc occ]
       [--model demo-3d|compact|r3d_18|monai.DenseNet121]
       [--size D H W] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().parents[1] / "napari_ctinterp" / "model" / "weights"
CARDS = (WEIGHTS / "demo-3d.json", WEIGHTS / "demo-3d.card.json")  # the demo's card, by either name
CLASSES = ("no contrast", "arterial", "pulmonary", "venous")
MIB = 2**20
PARTS = ("maps", "gc", "occ")


class _Scores(nn.Module):
    """Column c = the engine's target score of class c, so Captum explains the same number."""

    def __init__(self, clf) -> None:
        super().__init__()
        self.clf, self.net = clf, clf.module

    def forward(self, x):
        logits = self.net(x)
        return torch.stack([self.clf.target_score(logits, torch.full((len(x),), c))
                            for c in range(self.clf.card.n_classes)], 1)


class PeakRSS:
    """Context manager: the peak resident memory of this process while inside, sampled every 2 ms."""

    def __enter__(self) -> PeakRSS:
        self._proc, self._stop = psutil.Process(), threading.Event()
        self.start = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def added(self) -> int:
        """Bytes above the memory at entry."""
        return self.peak - self.start


def demo_input_size() -> tuple[tuple[int, int, int], str]:
    """The 3D demo's input size and where it was read."""
    for card in CARDS:
        if card.exists():
            return tuple(json.loads(card.read_text())["input_size"]), card.name
    try:
        from napari_ctinterp.model.training_3d import Train3dOptions

        return tuple(Train3dOptions().input_size), "Train3dOptions().input_size (no demo card yet)"
    except ImportError:
        return (32, 32, 32), "default 32³ (no demo card, no 3D trainer)"


def _randomise_batchnorm(net: nn.Module) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():  # eval-mode BatchNorm with non-trivial statistics, as a trained net has
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return net.eval()


def make_classifier(name: str, size: tuple[int, int, int]):
    """The classifier to time and a note on what it is."""
    from napari_ctinterp.model import DEMOS, Classifier, ModelCard, build, load

    if name == "demo-3d":
        if "demo-3d" not in DEMOS:
            raise SystemExit("model.load('demo-3d') is not available yet: run with --model compact")
        return load("demo-3d", device="cpu"), "the 3D demo model, trained weights"
    torch.manual_seed(0)
    note = "random weights"
    if name == "compact":
        from napari_ctinterp.model.demo3d_net import ARCHITECTURE, build_demo3d
        from napari_ctinterp.model.training_3d import Train3dOptions

        args = dict(Train3dOptions().architecture_args)
        net, arch = build_demo3d(ARCHITECTURE, in_channels=1, n_logits=4, **args), ARCHITECTURE
        try:
            ModelCard(architecture=arch, spatial_dims=3, input_size=size)
        except ValueError:  # not registered with the cards yet: a MONAI name the engine treats generically
            arch, args = "monai.ResNet", {}
            note += (f" (card labelled {arch!r} until {ARCHITECTURE} is registered: no family rules, "
                     f"the engine's generic path)")
    else:
        args = {}
        net = build(name, "softmax", in_channels=1, n_logits=4, spatial_dims=3)
        arch = name
    card = ModelCard(architecture=arch, architecture_args=args, spatial_dims=3, input_size=size,
                     channels=({"window": [-300, 700]},), output="softmax", class_names=CLASSES,
                     name=f"random {name}")
    return Classifier(_randomise_batchnorm(net), card, torch.device("cpu"), source=f"random {name}"), note


def phantom_inputs(clf, n_refs: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The series explained, the EG reference volumes (HU) and where they come from."""
    from napari_ctinterp.model import default_references
    from napari_ctinterp.phantom import make_volume

    vol = make_volume(2024, contrast=True, phase="arterial", n_slices=32, spacing_mm=5.0, size=128).hu
    found = default_references(clf)
    if found is not None:
        return vol, np.asarray(found[0], np.float32), str(found[1])
    phases = ("arterial", "pulmonary", "venous")
    refs = [make_volume(300 + k, contrast=k % 4 != 0, phase=phases[k % 3], n_slices=24, spacing_mm=5.0,
                        size=128).hu for k in range(n_refs)]
    shapes = {r.shape for r in refs}
    return vol, np.stack(refs) if len(shapes) == 1 else refs, f"{n_refs} phantom series (seeds 300…)"


def captum_15(clf, x, refs, target, *, steps, samples, sg_samples, sigma, batch, methods):
    """The 15 maps the usual Captum way (one call per map, NoiseTunnel for SG / SG²)."""
    from captum.attr import Deconvolution, GradientShap, IntegratedGradients, NoiseTunnel, Saliency

    f = _Scores(clf)
    out = {}
    black, white = clf.baseline(0.0).expand_as(x), clf.baseline(1.0).expand_as(x)
    for v, nt in (("plain", None), ("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
        def run(method, **kw):
            if nt is None:
                return method.attribute(x, target=target, **kw)
            return NoiseTunnel(method).attribute(x, nt_type=nt, nt_samples=sg_samples, stdevs=sigma,
                                                 target=target, **kw)
        out["BP", v] = run(Saliency(f), abs=False)
        igb = run(IntegratedGradients(f), baselines=black, n_steps=steps, internal_batch_size=batch)
        igw = run(IntegratedGradients(f), baselines=white, n_steps=steps, internal_batch_size=batch)
        out["IGB", v], out["IGBW", v] = igb, 0.5 * (igb + igw)
        # GradientShap cannot sit inside NoiseTunnel with a baseline distribution: its loop written out
        if nt is None:
            out["EG", v] = GradientShap(f).attribute(x, baselines=refs, n_samples=samples, target=target)
        else:
            gs = [GradientShap(f).attribute(x + sigma * torch.randn_like(x), baselines=refs, n_samples=samples,
                                            target=target) for _ in range(sg_samples)]
            out["EG", v] = torch.stack(gs).mean(0) if v == "SG" else (torch.stack(gs) ** 2).mean(0)
        if "D" in methods:
            out["D", v] = run(Deconvolution(f))
    return out


def monai_twin(net: nn.Module) -> nn.Module:
    """A copy with in-place activations off, for MONAI's hooks (same arithmetic; our net stays unhooked)."""
    twin = copy.deepcopy(net)
    for m in twin.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return twin.eval()


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def abba(runs: dict, repeats: int) -> tuple[dict[str, list[float]], dict[str, PeakRSS]]:
    """Time each side ``repeats`` times in ABBA order; per side its times and its largest memory peak."""
    names = list(runs)
    order = [n for i in range(repeats) for n in (names if i % 2 == 0 else names[::-1])]
    times: dict[str, list[float]] = {n: [] for n in names}
    peaks: dict[str, PeakRSS] = {}
    for n in order:
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            runs[n]()
            times[n].append(time.perf_counter() - t0)
        if n not in peaks or mem.added > peaks[n].added:
            peaks[n] = mem
        print(f"    {n:6s} {times[n][-1]:8.2f} s   peak +{mem.added / MIB:7.0f} MiB", flush=True)
    return times, peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="demo-3d (default when its weights exist), compact, r3d_18, "
                                                  "monai.DenseNet121, …")
    ap.add_argument("--size", type=int, nargs=3, default=None, metavar=("D", "H", "W"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=None, help="15-map and OCC runs per side, ABBA (default 2; "
                                                              "--quick 1)")
    ap.add_argument("--quick", action="store_true", help="small settings (smoke run, not a benchmark)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="what to time (default: all): the 15-map set, Grad-CAM, occlusion")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from monai.visualize import GradCAM, OcclusionSensitivity

    from napari_ctinterp.explain import ExplainOptions, explain
    from napari_ctinterp.explain.deconv import OTHER_ACTIVATIONS
    from napari_ctinterp.explain.plan import make_plan
    from napari_ctinterp.model import DEMOS
    from napari_ctinterp.runtime.batching import (
        activation_bytes_per_image,
        auto_batch_size,
        forward_batch_size,
        free_memory_bytes,
    )

    model = args.model or ("demo-3d" if "demo-3d" in DEMOS and (WEIGHTS / DEMOS["demo-3d"]).exists() else "compact")
    size, size_src = (tuple(args.size), "--size") if args.size else demo_input_size()
    repeats = args.repeats or (1 if args.quick else 2)
    clf, note = make_classifier(model, size)
    size = tuple(clf.card.input_size)
    defaults = ExplainOptions()
    steps, samples, sg = (5, 5, 3) if args.quick else (defaults.steps, defaults.samples, defaults.sg_samples)
    gc_rounds = 3 if args.quick else 7
    methods = ("BP", "IGB", "IGBW", "EG") + (() if any(isinstance(m, OTHER_ACTIVATIONS)
                                                      for m in clf.module.modules()) else ("D",))
    vol, refs_hu, ref_src = phantom_inputs(clf, 4 if args.quick else 8)
    x = clf.preprocess(vol).contiguous()
    refs = torch.cat([clf.preprocess(np.asarray(r)) for r in refs_hu]).contiguous()
    sigma = defaults.sg_level * float(x.max() - x.min())
    target = int(clf.predicted(clf.logits(x))[0])
    opts = ExplainOptions(methods=methods, steps=steps, samples=samples, sg_samples=sg)
    n_maps = 3 * len(methods)
    free = free_memory_bytes(clf.device)
    per_sample, batch = activation_bytes_per_image(clf, size), auto_batch_size(clf, size)
    t_start = time.perf_counter()
    print(f"machine: {platform.machine()}, {psutil.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}, {args.threads} threads"
          f"{' — QUICK settings' if args.quick else ''}")
    print(f"model: {model} ({clf.card.architecture}, {note}), input {'x'.join(map(str, size))} from {size_src}, "
          f"{clf.card.in_channels} channel(s), {clf.card.n_classes} classes; series {vol.shape} HU; "
          f"target {target} ({clf.card.class_names[target]})")
    print(f"settings: IG {steps} steps, EG {samples} samples of {len(refs)} references ({ref_src}), "
          f"SG {sg} copies, sigma {sigma:.3f}; {n_maps} maps: {', '.join(methods)}")
    print(f"memory budget: a quarter of the free memory = {free / 4 / 2**30:.2f} GiB; per-sample activations "
          f"{per_sample / MIB:.1f} MiB → gradient batch {batch} ({batch * per_sample / MIB:.0f} MiB), "
          f"forward batch {forward_batch_size(clf, size)}")

    explain(clf, vol, methods=("BP",), variants=("plain",), target=target)  # warm-up both paths
    captum_15(clf, x, refs, target, steps=1, samples=1, sg_samples=1, sigma=sigma, batch=batch, methods=("BP",))

    so = sc = go = gm = oo = om = float("nan")
    m15: dict = {}
    mocc: dict = {}
    # -- the 15-map set -------------------------------------------------------------------------
    if "maps" in args.parts:
        ours_n = make_plan(opts).total
        captum_n = sum(n * (1 + 2 * steps + samples + ("D" in methods)) for n in (1, sg, sg))
        print(f"\n{n_maps} maps, ours vs Captum ({repeats} per side, ABBA; gradient evaluations ours {ours_n}, "
              f"Captum {captum_n})")
        t15, m15 = abba({"ours": lambda: explain(clf, vol, opts, references=refs_hu, target=target),
                         "captum": lambda: captum_15(clf, x, refs, target, steps=steps, samples=samples,
                                                     sg_samples=sg, sigma=sigma, batch=batch, methods=methods)},
                        repeats)
        so, sc = sum(t15["ours"]), sum(t15["captum"])
        print(f"  {n_maps} maps  ours {so / repeats:7.1f} s   captum {sc / repeats:7.1f} s   ratio {sc / so:5.2f}x")

    # -- Grad-CAM vs MONAI ------------------------------------------------------------------------
    geometry = clf.geometry(vol.shape)  # MONAI's maps are in the input space: onto the CT's grid as ours
    if "gc" in args.parts:
        layer = explain(clf, vol, methods=("GC",), variants=("plain",), target=target).params["gc_layer"]
        twin = monai_twin(clf.module)
        ours_gc = explain(clf, vol, methods=("GC",), variants=("plain",), target=target)["GC", "plain"]
        raw = geometry.to_ct(GradCAM(monai_twin(clf.module), layer, postprocessing=lambda a: a)(
            x.clone().requires_grad_(True), class_idx=target)[0, 0].detach().numpy())
        cam = GradCAM(twin, layer)

        def monai_gc():  # from the HU volume to a map on the CT's grid, as explain does
            xi = clf.preprocess(vol).requires_grad_(True)
            return geometry.to_ct(cam(xi, class_idx=target)[0, 0].detach().numpy())

        print(f"\nGC plain (layer {layer!r}, maps equal to relative L2 {rel_l2(ours_gc, raw):.1e} before MONAI's "
              f"min-max flip), best of {gc_rounds} alternating")
        tgc: dict[str, list[float]] = {"ours": [], "monai": []}
        for _ in range(gc_rounds):
            for side, fn in (("ours", lambda: explain(clf, vol, methods=("GC",), variants=("plain",), target=target)),
                             ("monai", monai_gc)):
                t0 = time.perf_counter()
                fn()
                tgc[side].append(time.perf_counter() - t0)
        go, gm = min(tgc["ours"]), min(tgc["monai"])
        print(f"  GC    ours {go:7.3f} s   monai {gm:7.3f} s   ratio {gm / go:5.2f}x")

    # -- occlusion vs MONAI ------------------------------------------------------------------------
    if "occ" in args.parts:
        window, stride = opts.occ_window, opts.occ_stride
        occ = OcclusionSensitivity(monai_twin(clf.module), mask_size=window, verbose=False, mode=0.0,
                                   overlap=1.0 - stride / window, activate=False)

        def monai_occ():  # from the HU volume to maps on the CT's grid, as explain does
            with torch.no_grad():
                return geometry.to_ct(torch.as_tensor(occ(clf.preprocess(vol))[0])[0].numpy())

        def ours_occ():
            return explain(clf, vol, methods=("OCC",), variants=("plain",), target=target, occ_window=window,
                           occ_stride=stride)["OCC", "plain"]

        n_win = int(np.prod([(s - window) // stride + 1 for s in size]))
        covered = all((s - window) % stride == 0 for s in size)
        with torch.no_grad():
            score = float(clf.target_score(clf.logits(x), torch.tensor([target]))[0])
        same = rel_l2(ours_occ(), score - monai_occ()[target]) if covered else float("nan")
        print(f"\nOCC plain (window {window}, stride {stride}: {n_win} occluded volumes; maps equal to relative L2 "
              f"{same:.1e}{'' if covered else ' — not compared: the last windows differ at this size'}), "
              f"{repeats} per side, ABBA")
        tocc, mocc = abba({"ours": ours_occ, "monai": monai_occ}, repeats)
        oo, om = sum(tocc["ours"]), sum(tocc["monai"])
        print(f"  OCC   ours {oo / repeats:7.2f} s   monai {om / repeats:7.2f} s   ratio {om / oo:5.2f}x")

    # -- summary --------------------------------------------------------------------------------
    budget = free / 4
    print("\nsummary" + (" (QUICK settings: a smoke run, not a benchmark)" if args.quick else ""))
    print(f"  {n_maps} maps vs Captum {sc / so:5.2f}x (goal ≥ 2), GC vs MONAI {gm / go:5.2f}x, "
          f"OCC vs MONAI {om / oo:5.2f}x (goal: never slower)")
    print(f"  ours' {n_maps} maps on one volume: {so / repeats:.0f} s (issue 29: ≤ 300 s at the default settings)")
    for what, mem in (("15 maps ours", m15.get("ours")), ("15 maps Captum", m15.get("captum")),
                      ("OCC ours", mocc.get("ours")), ("OCC MONAI", mocc.get("monai"))):
        if mem is None:  # not in --parts
            continue
        print(f"  peak memory {what:15s} +{mem.added / MIB:7.0f} MiB above {mem.start / MIB:.0f} MiB "
              f"({'within' if mem.added <= budget else 'OVER'} the budget of {budget / MIB:.0f} MiB)")
    print(f"  wall time of this script: {time.perf_counter() - t_start:.0f} s")
    print(f"  ru_maxrss of the process (all runs): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
