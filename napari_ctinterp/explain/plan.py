"""What gradient evaluations a set of maps needs, and every random draw, decided up front.

Sharing is planned here: one set of noisy inputs serves every method and both SG variants (SG and
SG² are two reductions of the same samples); IGB's path is computed once and reused inside IGBW.
Each plan row is one gradient evaluation ``(rule, slot, base, point kind, index)``; the engine
runs rows in large batches and adds ``coefficient × gradient`` into the row's accumulator slot.

Beyond the paper's five: Grad-CAM (``GC``) takes one evaluation per base input through the
model with its target layer captured (rule ``LAYER``); that evaluation's input gradient *is*
Backprop's at the same input, so when both are asked BP has no rows of its own (one forward and
one backward serve both). Guided Backprop (``GBP``) has its own rows under the guided ReLU rule;
Guided Grad-CAM (``GGC``) is GBP × GC and adds no rows; Grad-CAM++ (``GCPP``) reads the same layer
in Grad-CAM's rows (kind ``GCPP`` has no rows of its own, only an accumulator). Occlusion (``OCC``) is forward-only and
is not in the gradient plan (``occlusion.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .options import ExplainOptions


def ig_quadrature(steps: int, method: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Path positions α and weights of the IG integral over [0, 1] (Captum's conventions).

    ``gausslegendre`` (Captum's default): Gauss–Legendre nodes and weights mapped to [0, 1].
    ``riemann_*``: equal weights 1/n at the left/right/middle points; trapezoid at linspace(0, 1, n).
    """
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (1 + nodes), 0.5 * weights
    n = steps
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs steps >= 2")
        w = np.full(n, 1.0 / (n - 1))
        w[0] = w[-1] = 0.5 / (n - 1)
        return np.linspace(0, 1, n), w
    alphas = {"riemann_left": np.linspace(0, 1 - 1 / n, n), "riemann_right": np.linspace(1 / n, 1, n),
              "riemann_middle": np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)}[method]
    return alphas, np.full(n, 1.0 / n)


def draw_expected_gradients(seed: int, n_base: int, samples: int, n_refs: int) -> tuple[np.ndarray, np.ndarray]:
    """EG draws per base input: reference indices (n_base, samples) and α ~ U(0, 1), same shape."""
    rng = np.random.default_rng([int(seed), 0xE6])
    return rng.integers(0, n_refs, size=(n_base, samples)), rng.uniform(0.0, 1.0, size=(n_base, samples))


#: Accumulator kinds: what a slot sums before the final per-method formula. ``GC`` holds the
#: Grad-CAM map (after its ReLU), ``GCS`` the signed map before it and ``GCPP`` Grad-CAM++, each
#: copied into every channel.
KINDS = ("BP", "IGB", "IGW", "EG", "D", "GBP", "GC", "GCS", "GCPP")
#: Plan rules: how a row's gradient is taken.
ORDINARY, DECONV, GUIDED, LAYER = 0, 1, 2, 3
RULE_OF_KIND = {"BP": ORDINARY, "IGB": ORDINARY, "IGW": ORDINARY, "EG": ORDINARY, "D": DECONV, "GBP": GUIDED,
                "GC": LAYER}


@dataclass(frozen=True)
class Plan:
    """All gradient evaluations: parallel arrays, one entry per evaluation."""

    n_base: int
    kinds: tuple[str, ...]
    rule: np.ndarray  # ORDINARY, DECONV, GUIDED or LAYER (see RULE_OF_KIND)
    kind: np.ndarray  # index into KINDS
    base: np.ndarray  # which base input (0 = clean when plain is asked, then noisy copies)
    index: np.ndarray  # step k (IG) or sample j (EG); 0 otherwise

    @property
    def total(self) -> int:
        """Number of gradient evaluations."""
        return len(self.kind)

    @property
    def n_accumulators(self) -> int:
        """Accumulator kinds the engine allocates: the leading ``KINDS`` up to the last one these
        rows fill (Grad-CAM's rows fill GC and GCS, and BP, and GCPP when asked); 5 for the paper's
        methods, as before the methods beyond them."""
        filled = set(self.kinds) | ({"GC", "GCS"} if "GC" in self.kinds else set())
        return 1 + max((KINDS.index(k) for k in filled), default=0)


def needed_kinds(methods: tuple[str, ...]) -> tuple[str, ...]:
    """Kinds of plan rows the methods need (IGB is shared by IGB and IGBW; GGC is GBP × GC; OCC
    needs none; BP rides on GC's rows when both are asked; GCPP rides on GC's rows, and its kind
    in the result has no rows of its own)."""
    need: set[str] = set()
    for m in methods:
        need |= {"BP": {"BP"}, "IGB": {"IGB"}, "IGBW": {"IGB", "IGW"}, "EG": {"EG"}, "D": {"D"},
                 "GC": {"GC"}, "GBP": {"GBP"}, "GGC": {"GBP", "GC"}, "OCC": set(),
                 "GCPP": {"GC", "GCPP"}}[m]
    if "GC" in need:
        need.discard("BP")
    return tuple(k for k in KINDS if k in need)


def base_inputs(opts: ExplainOptions) -> tuple[bool, int]:
    """(clean input needed, number of noisy copies)."""
    clean = "plain" in opts.variants
    noisy = opts.sg_samples if ({"SG", "SG2"} & set(opts.variants)) else 0
    return clean, noisy


def make_plan(opts: ExplainOptions) -> Plan:
    """Every gradient evaluation the requested maps need, grouped by rule (ordinary rows first)."""
    clean, noisy = base_inputs(opts)
    n_base = int(clean) + noisy
    kinds = needed_kinds(opts.methods)
    per_kind = {"BP": 1, "IGB": opts.steps, "IGW": opts.steps, "EG": opts.samples, "D": 1, "GBP": 1, "GC": 1,
                "GCPP": 0}
    rows = []
    for k in kinds:
        for b in range(n_base):
            for j in range(per_kind[k]):
                rows.append((RULE_OF_KIND[k], KINDS.index(k), b, j))
    rows.sort(key=lambda r: r[0])  # one rule at a time: the modified rules need hooks installed
    arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return Plan(n_base=n_base, kinds=kinds, rule=arr[:, 0], kind=arr[:, 1], base=arr[:, 2], index=arr[:, 3])


def tile_plan(plan: Plan, n: int) -> Plan:
    """``n`` copies of a one-slice plan, copy i on base inputs ``i·n_base …``: the plan of n slices
    run together (each slice's rows keep their order, so each slot sums in the same order)."""
    reps = np.arange(n).repeat(plan.total)
    return Plan(n_base=plan.n_base * n, kinds=plan.kinds, rule=np.tile(plan.rule, n), kind=np.tile(plan.kind, n),
                base=np.tile(plan.base, n) + reps * plan.n_base, index=np.tile(plan.index, n))
