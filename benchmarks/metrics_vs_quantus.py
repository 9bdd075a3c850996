"""The scores beyond the paper's on the 62 maps of a study slice: ours against Quantus (and
scikit-learn / scikit-image), same numbers, time ratio, and the perturbation metrics against the
forward floor — in one run.

(a) the map's own scores — AUPRC (scikit-learn ``average_precision_score``), IoU at Otsu's level
    (scikit-image ``threshold_otsu`` + numpy), top-k intersection, sparseness, complexity (Quantus
    ``TopKIntersection``, ``Sparseness``, ``Complexity``) — every map, one at a time both sides;
(b) faithfulness correlation of the 62 maps: ours (one set of 1 + 100 forwards shared by all maps)
    against Quantus ``FaithfulnessCorrelation`` one map at a time (100 forwards each, the same
    subsets), and against the forward floor (101 images at the model's best batch);
(c) max-sensitivity of the 30 pixel maps (5 methods × 3 variants × absolute / signed; n noisy
    inputs): ours (one gradient plan for the n + 1 inputs and every method) against Quantus
    ``MaxSensitivity`` one map at a time (its ``explain_func``: our engine, one method, the same
    noise), and against its floor: n + 1 explanations of the slice one after the other.

The maps come from ``explain`` at small gradient settings (the scores' cost does not depend on
them; (c)'s does, and uses the same small settings on both sides).

Usage: python benchmarks/metrics_vs_quantus.py [--threads 2] [--maps 62] [--sens-samples 5]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch


class Scores(torch.nn.Module):
    """Quantus' view of the classifier: column c = the score our maps explain for class c."""

    def __init__(self, clf) -> None:
        super().__init__()
        self.clf, self.net = clf, clf.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.stack([self.clf.target_score(logits, torch.full((len(x),), c))
                            for c in range(self.clf.card.n_classes)], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--maps", type=int, default=62, help="how many of the slice's maps (b) runs through Quantus")
    ap.add_argument("--sens-samples", type=int, default=5)
    ap.add_argument("--parts", default="abc", help="which of (a), (b), (c) to run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from napari_ctinterp.explain import ExplainOptions, explain
    from napari_ctinterp.metrics import random_map
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice
    from napari_ctinterp.study.slice_task import study_maps
    from napari_ctinterp.xrai import segment

    sys.path.insert(0, str(Path(__file__).parent))

    clf = load(args.model, device="cpu")
    sl = make_slice(70_001, contrast=True)
    hu, mask = sl.hu, sl.mask > 0
    x = clf.preprocess(hu)
    opts = ExplainOptions(steps=4, samples=4, sg_samples=2, seed=0)
    made = explain(clf, hu, opts)
    target = int(made.params["target"])
    maps = dict(made)
    maps["random", "plain"] = random_map(hu.shape, seed=0)
    scored = {"|".join(k): v for k, (v, _) in study_maps(maps, segment(hu), "full",
                                                           signed_maps=made.gc_signed).items()}
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{args.threads} threads; model {args.model}, input {tuple(x.shape[-2:])}; {len(scored)} maps")

    if "a" in args.parts:
        _map_scores(scored, mask)
    if "b" in args.parts:
        _faithfulness(clf, hu, x, scored, target, args.maps)
    if "c" in args.parts:
        _sensitivity(clf, x, target, opts, args.sens_samples)


def _map_scores(scored: dict, mask: np.ndarray) -> None:
    """(a): the map's own scores, ours against scikit-learn / scikit-image / Quantus."""
    import quantus
    from skimage.filters import threshold_otsu
    from sklearn.metrics import average_precision_score

    from napari_ctinterp.metrics import map_scores

    names = ("auprc", "iou_otsu", "topk_intersection", "sparseness", "complexity")
    t0 = time.perf_counter()
    ours = {k: map_scores(v, mask, names) for k, v in scored.items()}
    t_ours = time.perf_counter() - t0
    q = {"topk_intersection": quantus.TopKIntersection(k=1000, abs=True, disable_warnings=True),
         "sparseness": quantus.Sparseness(abs=True, disable_warnings=True),
         "complexity": quantus.Complexity(abs=True, disable_warnings=True)}
    t0 = time.perf_counter()
    ref: dict = {}
    for k, v in scored.items():
        a = np.abs(v)
        r = {"auprc": average_precision_score(mask.ravel(), a.ravel())}
        kept = a > threshold_otsu(a)
        r["iou_otsu"] = (kept & mask).sum() / (kept | mask).sum()
        for name, metric in q.items():
            r[name] = float(metric(model=None, x_batch=np.zeros((1, 1, *a.shape), np.float32), y_batch=np.zeros(1, int),
                                   a_batch=a[None, None], s_batch=mask[None, None].astype(np.float32))[0])
        ref[k] = r
    t_ref = time.perf_counter() - t0
    def worst(n: str, kind: str) -> float:
        return max(abs(ours[k][n] - ref[k][n]) / max(abs(ref[k][n]), 1e-12) for k in scored
                   if f"|{kind}|" in k and np.isfinite(ref[k][n]))

    print(f"(a) map scores, {len(scored)} maps × {len(names)}: ours {t_ours:.2f} s, references {t_ref:.2f} s "
          f"({t_ref / t_ours:.1f}×); largest relative difference, pixel maps: "
          + ", ".join(f"{n} {worst(n, 'pixel'):.1e}" for n in names) + "; region maps: "
          + ", ".join(f"{n} {worst(n, 'region'):.1e}" for n in names)
          + " (a region map's pixels tie by the thousand: Quantus' top-k takes argsort's order among them, ours "
            "their expected share; sparseness: Quantus adds 1e-7 to every value, which moves maps with many "
            "zeros most)")



def _faithfulness(clf, hu: np.ndarray, x: torch.Tensor, scored: dict, target: int, n_maps: int) -> None:
    """(b): faithfulness correlation of every map, ours against Quantus and the forward floor."""
    import quantus
    from _floor import forward_floor

    from napari_ctinterp.metrics import faithfulness_correlation

    before, how = forward_floor(clf, x)
    t0 = time.perf_counter()
    fc = faithfulness_correlation(clf, hu[None], {k: v[None] for k, v in scored.items()}, np.array([target]), seed=0)
    t_fc = time.perf_counter() - t0
    after, _ = forward_floor(clf, x)
    floor = (before + after) / 2 * 101
    small = {k: torch.nn.functional.interpolate(torch.as_tensor(np.asarray(v, np.float32))[None, None],
                                                size=x.shape[-2:], mode="bilinear", align_corners=False)[0].numpy()
             for k, v in list(scored.items())[:n_maps]}
    metric = quantus.FaithfulnessCorrelation(nr_runs=100, subset_size=224, perturb_baseline=float(clf.baseline(0.0)
                                             .flatten()[0]), abs=False, normalise=True, return_aggregate=False,
                                             disable_warnings=True)
    net = Scores(clf).eval()
    t0 = time.perf_counter()
    diffs = []
    for k, a in small.items():
        np.random.seed(0)
        r = metric(model=net, x_batch=x.cpu().numpy(), y_batch=np.array([target]), a_batch=a[None], softmax=False,
                   device="cpu")[0]
        diffs.append(abs(r - fc[k][0]) if np.isfinite(r) else 0.0)
    t_q = (time.perf_counter() - t0) * len(scored) / len(small)
    print(f"(b) faithfulness correlation, {len(scored)} maps: ours {t_fc:.2f} s (101 forwards for all), Quantus "
          f"{t_q:.1f} s{' (extrapolated from ' + str(len(small)) + ' maps)' if len(small) < len(scored) else ''}: "
          f"{t_q / t_fc:.0f}× in our favour; largest difference {max(diffs):.1e}; forward floor {floor:.2f} s "
          f"({before * 1e3:.1f} → {after * 1e3:.1f} ms/image, {how}): ours / floor {t_fc / floor:.2f}")



def _sensitivity(clf, x: torch.Tensor, target: int, opts, n: int) -> None:
    """(c): max-sensitivity of the pixel maps, ours against Quantus and n + 1 explanations."""
    import quantus

    from napari_ctinterp.explain import ExplainOptions, reference_inputs
    from napari_ctinterp.explain.engine import iter_run
    from napari_ctinterp.metrics import max_sensitivity
    from napari_ctinterp.progress import drive

    refs, _source = reference_inputs(clf, None)
    t0 = time.perf_counter()
    ms = max_sensitivity(clf, x, target, opts, refs, n_samples=n, seed=0)
    t_ms = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(n + 1):
        drive(iter_run(clf, x, target, opts, refs), None)
    floor_ms = time.perf_counter() - t0
    t0 = time.perf_counter()
    worst_ms = 0.0
    for method in opts.methods:
        one = ExplainOptions(**{**opts.__dict__, "methods": (method,)})
        for variant in opts.variants:
            for sign in ("absolute", "signed"):
                def explain_func(model, inputs, targets, **_kw):
                    out = []
                    for xi, t in zip(inputs, targets):
                        m = drive(iter_run(clf, torch.as_tensor(xi[None], dtype=torch.float32), int(t), one, refs),
                                  None)[method, variant].numpy()
                        out.append(np.abs(m) if sign == "absolute" else m)
                    return np.stack(out)[:, None]

                r = 0.05 * float(x.max() - x.min())
                metric = quantus.MaxSensitivity(nr_samples=n, lower_bound=r, norm_numerator=quantus.norm_func.fro_norm,
                                                norm_denominator=quantus.norm_func.fro_norm,
                                                similarity_func=quantus.similarity_func.difference, abs=False,
                                                normalise=False, return_aggregate=False, disable_warnings=True)
                a = explain_func(None, x.numpy(), np.array([target]))
                np.random.seed(0)
                value = metric(model=clf.module.eval(), x_batch=x.numpy(), y_batch=np.array([target]), a_batch=a,
                               explain_func=explain_func, device="cpu")[0]
                worst_ms = max(worst_ms, abs(value - ms[method, variant, sign]) / max(abs(value), 1e-12))
    t_qms = time.perf_counter() - t0
    print(f"(c) max-sensitivity, {len(ms)} pixel maps, {n} noisy inputs: ours {t_ms:.1f} s, Quantus {t_qms:.1f} s: "
          f"{t_qms / t_ms:.1f}× in our favour; largest relative difference {worst_ms:.1e}; floor ({n + 1} "
          f"explanations one after the other) {floor_ms:.1f} s: ours / floor {t_ms / floor_ms:.2f}")


if __name__ == "__main__":
    main()
