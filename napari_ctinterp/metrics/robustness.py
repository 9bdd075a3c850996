"""Max-sensitivity (Yeh et al., NeurIPS 2019): how far a map moves when the input moves a little.

Draw ``n_samples`` inputs x + u, u uniform in [−r, r] per input value, r = ``radius`` × the
input's range (max − min, in the model's input space); explain each with the same method,
options and seed; the metric is ``max_s ‖a(x + u_s) − a(x)‖ / ‖a(x)‖`` (Frobenius norms).
**Lower is better** (0: the map does not move; 1: it moves by as much as it is). Absolute maps
are compared as |a|, signed maps as they are (Grad-CAM's signed map is its map before the ReLU).

Equal to Quantus' ``MaxSensitivity(nr_samples, lower_bound=r, norm_numerator=fro_norm,
norm_denominator=fro_norm, similarity_func=difference, abs=False, normalise=False)`` with the same
draws: ours come from ``numpy.random.RandomState(seed)`` in Quantus' order (per sample, one
``uniform(−r, r)`` over the image's values), so ``np.random.seed(seed)`` before Quantus gives the
same noise (tests). Quantus' ``lower_bound`` (0.2) is in raw input units; ours is relative to
the input's range so that it means the same for a [0, 1] CT window and an ImageNet-normalised
input: the default 0.05 is ±100 HU on a 2000-HU window, heavy CT noise but no anatomy changed.

Why not Quantus itself: it explains the perturbed inputs one map at a time and one method at a
time. Here the perturbed inputs of every method and variant go through one gradient plan
(``explain.iter_explain_inputs``: the n + 1 inputs share batches, SmoothGrad's noisy copies of
each perturbed input are drawn as ``explain`` would draw them, one SG set serves SG and SG²), so a
slice's 15 maps cost n + 1 explanations, not 15 × n. Still, that is n + 1 times the slice's
maps: a study computes it only when asked (``--metrics max_sensitivity``). Occlusion (forward
only, its windows × n) and XRAI region maps (a segmentation per perturbed map) are not scored.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

import numpy as np
import torch

from ..explain import GC_SIGNED, ExplainOptions, iter_explain_inputs, job_size
from ..model.classifier import Classifier
from ..progress import Progress, Step, drive, offset

#: Draws per map (Quantus' default is 200: each costs one explanation of the slice).
N_SAMPLES = 10
#: Half-width of the uniform noise, as a fraction of the input's range.
RADIUS = 0.05
#: Gradient evaluations a plan should hold at least: inputs are explained together in chunks that
#: fill batches (a plain-only Backprop is one evaluation per input) but no more, so that the
#: accumulators of a 3D model's n + 1 inputs are not all held at once.
CHUNK_ROWS = 64


def perturbed_inputs(x: torch.Tensor, n_samples: int, radius: float, seed: int) -> torch.Tensor:
    """(n_samples, C, *spatial): x + U(−r, r), r = radius × (max − min) of x, drawn as Quantus'
    ``uniform_noise`` draws them after ``np.random.seed(seed)``."""
    r = radius * float(x.max() - x.min())
    rng = np.random.RandomState(int(seed))
    flat = x.reshape(1, -1).cpu().numpy()
    out = [torch.as_tensor(flat + rng.uniform(low=-r, high=r, size=flat.shape), dtype=x.dtype) for _ in
           range(n_samples)]
    return torch.cat(out).reshape(n_samples, *x.shape[1:]).to(x.device)


def iter_max_sensitivity(clf: Classifier, x: torch.Tensor, target: int, options: ExplainOptions,
                         references: torch.Tensor | None = None, *, n_samples: int = N_SAMPLES,
                         radius: float = RADIUS, seed: int = 0, batch_size: int | None = None
                         ) -> Generator[Step, None, dict[tuple[str, str, str], float]]:
    """Max-sensitivity of every map ``options`` make of the preprocessed input ``x`` (1, C, *spatial)
    for class ``target``; yields the gradient plan's progress, returns {(method, variant, sign):
    value} for sign ``absolute`` and ``signed`` (NaN where the map at x is 0). OCC is left out.
    ``references``: EG's preprocessed reference inputs."""
    if n_samples < 1:
        raise ValueError("max-sensitivity needs n_samples >= 1")
    opts = replace(options, methods=tuple(m for m in options.methods if m != "OCC"))
    if not opts.methods:
        return {}
    xs = torch.cat([x, perturbed_inputs(x, n_samples, radius, seed)])
    per_input = max(1, job_size(opts, tuple(x.shape[2:])))
    chunk = max(1, -(-CHUNK_ROWS // per_input))
    runs: list = []
    for start in range(0, len(xs), chunk):
        part = xs[start:start + chunk]
        runs += yield from offset(iter_explain_inputs(clf, part, [int(target)] * len(part), opts, references,
                                                      batch_size=batch_size), start * per_input,
                                  len(xs) * per_input)
    out = {}
    for (method, variant), base in runs[0].items():
        if method == GC_SIGNED:
            continue
        for sign in ("absolute", "signed"):
            key = GC_SIGNED if (sign == "signed" and method == "GC") else method

            def form(m: torch.Tensor) -> np.ndarray:
                a = m.detach().double().cpu().numpy().ravel()
                return np.abs(a) if sign == "absolute" else a

            a0 = form(runs[0][key, variant])
            norm = np.linalg.norm(a0)
            if norm == 0:
                out[method, variant, sign] = float("nan")
                continue
            out[method, variant, sign] = float(max(np.linalg.norm(form(run[key, variant]) - a0) / norm
                                                   for run in runs[1:]))
    return out


def max_sensitivity(clf: Classifier, x: torch.Tensor, target: int, options: ExplainOptions,
                    references: torch.Tensor | None = None, *, progress: Progress | None = None,
                    **kwargs) -> dict[tuple[str, str, str], float]:
    """``iter_max_sensitivity`` run to its end, telling ``progress(done, total, phase)``."""
    return drive(iter_max_sensitivity(clf, x, target, options, references, **kwargs), progress)
