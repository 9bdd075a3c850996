"""The batched gradient engine behind ``explain``.

Why our own engine rather than one Captum call per map: the 15 maps of the study need 3,162 gradient
evaluations the usual Captum way (NoiseTunnel re-draws noise per method and per variant; one IG call
per baseline) but only 1,632 when planned together (``plan.py``: one set of noisy inputs, IGB inside
IGBW). The engine runs the plan in batches, channels_last, with frozen parameters (no weight
gradients), through the model's gradient twin (``fast_backward.py``: same forward bits, cheaper
backward), on CPU as two workers side by side, each on half of torch's threads
(``runtime.parallel``; batch sizes from ``runtime.batching``), and accumulates ``coefficient ×
gradient`` per (kind, base input) with one ``index_add_`` per batch, in plan order (one pass and its
accumulation: ``gradients.py``). Captum remains the reference the tests compare against.

Several target classes in one run (``explain_targets``): every point of the plan is the same
whatever the class, so each batch takes one forward and one backward per target (retained graph).
The clean input's rows run first, so the plain maps exist long before the SmoothGrad variants.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..model.classifier import Classifier
from ..progress import Cancelled, Step, map_partial, offset
from ..runtime.batching import auto_batch_size
from ..runtime.parallel import gradient_workers, intra_op_threads, ordered_map, split_rows
from .deconv import check_relus_reachable, deconvolution_rule, functional_deconvolution, functional_relus
from .fast_backward import gradient_twin
from .gradcam import captured, target_layer
from .gradients import Predicted, accumulate, input_gradients, layer_gradients
from .occlusion import count_windows, iter_occlusion
from .plan import (
    DECONV,
    GUIDED,
    KINDS,
    LAYER,
    ORDINARY,
    ExplainOptions,
    Plan,
    base_inputs,
    draw_expected_gradients,
    ig_quadrature,
    make_plan,
    needed_kinds,
    tile_plan,
)
from .reduce import reduce_maps


class ExplainCancelled(Cancelled):
    """Raised when the progress callback asked to stop (returned False)."""


def noisy_copies(x: torch.Tensor, opts: ExplainOptions) -> torch.Tensor:
    """The SG samples: x + N(0, σ²), σ = sg_level × (max − min) of x; drawn once for all methods."""
    _, n = base_inputs(opts)
    if n == 0:
        return x[:0]
    sigma = opts.sg_level * float(x.max() - x.min())
    gen = torch.Generator().manual_seed(int(opts.seed))
    noise = torch.randn((n, *x.shape[1:]), generator=gen, dtype=torch.float32) * sigma
    return x + noise.to(x.device)


def _per_row(x: torch.Tensor) -> tuple[int, ...]:
    """The view of one value per row that broadcasts over ``x``'s (C, h, w) or (C, D, h, w)."""
    return (-1,) + (1,) * (x.ndim - 1)


def _points(kind: np.ndarray, base: np.ndarray, index: np.ndarray, bases: torch.Tensor,
            alphas: torch.Tensor, refs: torch.Tensor | None, eg_idx: torch.Tensor | None,
            eg_alpha: torch.Tensor | None, black: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Inputs at which the rows of one batch take their gradient (IG paths from the black and
    white baselines, (1, C, 1, 1): 0 and 1 in the unnormalised one-channel case)."""
    xb = bases[torch.as_tensor(base, device=bases.device)]
    out = xb.clone()
    k = torch.as_tensor(kind, device=bases.device)
    j = torch.as_tensor(index, device=bases.device)
    ig_b = k == KINDS.index("IGB")
    ig_w = k == KINDS.index("IGW")
    eg = k == KINDS.index("EG")
    if ig_b.any():
        out[ig_b] = black + alphas[j[ig_b]].view(_per_row(xb)) * (xb[ig_b] - black)
    if ig_w.any():
        out[ig_w] = white + alphas[j[ig_w]].view(_per_row(xb)) * (xb[ig_w] - white)
    if eg.any():
        b_idx, s_idx = torch.as_tensor(base, device=bases.device)[eg], j[eg]
        r = refs[eg_idx[b_idx, s_idx]]
        a = eg_alpha[b_idx, s_idx].view(_per_row(xb))
        # Captum's GradientShap rounding (α·x + (1 − α)·r): r + α(x − r) differs from it by one ulp,
        # and on DenseNet-121 that ulp moved some EG points across a ReLU / max-pool kink (EG maps
        # 1e-3 apart, relative L2); with the same arithmetic they agree exactly.
        out[eg] = a * xb[eg] + (1 - a) * r
    return out


def _coefficients(kind: np.ndarray, base: np.ndarray, index: np.ndarray, bases: torch.Tensor,
                  weights: torch.Tensor, refs: torch.Tensor | None, eg_idx: torch.Tensor | None,
                  samples: int) -> torch.Tensor:
    """Per-row factor on the gradient: IG weights, (x − reference)/samples for EG, 1 otherwise."""
    dev = bases.device
    k = torch.as_tensor(kind, device=dev)
    j = torch.as_tensor(index, device=dev)
    coef = torch.ones((len(kind),) + (1,) * (bases.ndim - 1), device=dev).expand(-1, *bases.shape[1:]).clone()
    ig = (k == KINDS.index("IGB")) | (k == KINDS.index("IGW"))
    if ig.any():
        coef[ig] = weights[j[ig]].view(_per_row(bases)).expand(-1, *bases.shape[1:])
    eg = k == KINDS.index("EG")
    if eg.any():
        b = torch.as_tensor(base, device=dev)[eg]
        coef[eg] = (bases[b] - refs[eg_idx[b, j[eg]]]) / samples
    return coef


#: Run the plain maps' rows (the clean inputs) before the noisy copies' rows — of them first the
#: one-evaluation methods' (BP, D, GBP, Grad-CAM) — and report each stage (``Step.partial``) as
#: soon as it is done. Each accumulator slot still sums its rows in plan order; ``False`` runs every
#: rule's rows in one stage (the order before progressive display).
STAGED = True
#: Kinds with one gradient evaluation per base input: the first stage, maps within a second.
QUICK_KINDS = ("BP", "D", "GBP", "GC")
#: Their indices in ``KINDS``; a row of one of these kinds takes its gradient at its base input itself.
QUICK_IDX = [KINDS.index(k) for k in QUICK_KINDS]


class Partial(NamedTuple):
    """A stage's report: the accumulators (the return value's layout) and the methods whose plain
    maps they already hold complete."""

    acc: torch.Tensor
    methods: tuple[str, ...]


def run_plan(clf: Classifier, plan: Plan, bases: torch.Tensor,
             target: int | Predicted | Sequence[int | Predicted] | torch.Tensor,
             opts: ExplainOptions, refs: torch.Tensor | None, *, batch_size: int | None = None,
             net: nn.Module | None = None, eg_draws: tuple[np.ndarray, np.ndarray] | None = None,
             clean_every: int | None = None, seen: Predicted | None = None) -> Generator[Step, None, torch.Tensor]:
    """Execute the plan, yielding (done, total) after each batch; returns the accumulators
    (K, n_base, C, h, w), or (T, K, n_base, C, h, w) for a sequence of T targets (one forward
    per batch, shared); K = ``plan.n_accumulators``, the leading kinds of ``KINDS``. A tensor
    ``target`` gives each base input its own class (several slices in one plan); ``eg_draws``
    (reference indices into ``refs``, α), one row per base input, replace the draws made from
    ``opts.seed``. Stopping the generator between batches cancels cleanly.

    ``clean_every``: every ``clean_every``-th base input (0, k, 2k, …) is a clean input (1: all
    are); its rows run first (``STAGED``), the one-evaluation methods' before the others, and the
    step after each stage that is not the last carries ``partial``, a ``Partial``.

    ``seen`` (a ``Predicted``; a ``Predicted`` target is its own): the class predicted for the clean
    input, read from the first batch's forward when that batch holds the clean input (base 0 with
    ``clean_every``; that batch then runs alone, before the others), else from a forward of its own."""
    dev = bases.device
    c, sp = int(bases.shape[1]), tuple(bases.shape[2:])  # (h, w), or (D, h, w) for a 3D model
    per_base = isinstance(target, torch.Tensor)
    scalar = np.isscalar(target) or isinstance(target, Predicted)
    targets: list = [0] if per_base else [target] if scalar else list(target)  # type: ignore[arg-type]
    seen = target if isinstance(target, Predicted) else seen
    black, white = clf.baseline(0.0).to(dev), clf.baseline(1.0).to(dev)
    n_kinds = plan.n_accumulators  # the leading KINDS these rows fill (the paper's five: 5, not 8)
    acc = torch.zeros((len(targets), n_kinds * plan.n_base, c, *sp), device=dev)
    a_np, w_np = ig_quadrature(opts.steps, opts.ig_method)
    alphas = torch.as_tensor(a_np, dtype=torch.float32, device=dev)
    weights = torch.as_tensor(w_np, dtype=torch.float32, device=dev)
    eg_idx = eg_alpha = None
    if refs is not None:
        i_np, al_np = eg_draws if eg_draws is not None else \
            draw_expected_gradients(opts.seed, plan.n_base, opts.samples, len(refs))
        eg_idx = torch.as_tensor(i_np, device=dev)
        eg_alpha = torch.as_tensor(al_np, dtype=torch.float32, device=dev)
    net = clf.module if net is None else net
    twin = gradient_twin(net, bases[:1])  # same forward, cheaper backward (hooks on net's ReLUs still apply)
    bs = batch_size or auto_batch_size(clf, sp)
    layer = target_layer(net, clf.card.architecture, bases[:1], opts.gc_layer) if (plan.rule == LAYER).any() \
        else None
    with_bp = "BP" in opts.methods  # Backprop's gradient comes with Grad-CAM's rows (see plan.py)
    with_pp = "GCPP" in plan.kinds  # so does Grad-CAM++

    functional = functional_relus(net) > 0

    def slots(kind: str, base: np.ndarray) -> np.ndarray:
        return KINDS.index(kind) * plan.n_base + base

    hooked: dict = {}  # the capture on Grad-CAM's layer while the layer rule's batches run

    def one_batch(sel: np.ndarray) -> tuple[int, np.ndarray, torch.Tensor]:
        kind, base, index = plan.kind[sel], plan.base[sel], plan.index[sel]
        rule = int(plan.rule[sel[0]])
        rows_t = target[torch.as_tensor(base)] if per_base else targets  # type: ignore[index]
        pts = _points(kind, base, index, bases, alphas, refs, eg_idx, eg_alpha, black, white)
        if rule == LAYER:
            bp, gc, gcs, pp = layer_gradients(clf, pts, rows_t, layer, hooked["capture"], net=net,  # type: ignore[arg-type]
                                              with_input=with_bp, seen=seen, plus_plus=with_pp)
            every = (-1,) * len(sp)
            parts = [(slots("GC", base), gc.unsqueeze(2).expand(-1, -1, c, *every)),
                     (slots("GCS", base), gcs.unsqueeze(2).expand(-1, -1, c, *every))]
            if pp is not None:
                parts.append((slots("GCPP", base), pp.unsqueeze(2).expand(-1, -1, c, *every)))
            if bp is not None:
                parts.append((slots("BP", base), bp))
            return len(sel), np.concatenate([p[0] for p in parts]), torch.cat([p[1] for p in parts], 1)
        # ReLUs applied as functions get the rule from a mode, entered in the thread that runs the batch
        mode = {DECONV: "deconv", GUIDED: "guided"}.get(rule) if functional else None
        with functional_deconvolution(mode) if mode else contextlib.nullcontext():
            grads = input_gradients(clf, pts, rows_t, net=twin, seen=seen)
        grads = grads[None] if per_base else grads  # (T, B, C, h, w)
        coef = _coefficients(kind, base, index, bases, weights, refs, eg_idx, opts.samples)[None]
        return len(sel), kind * plan.n_base + base, grads * coef

    def shaped() -> torch.Tensor:
        out = acc.view(len(targets), n_kinds, plan.n_base, c, *sp)
        return out[0] if per_base or scalar else out

    staged = STAGED and clean_every is not None
    clean_rows = plan.base % clean_every == 0 if staged else np.ones(plan.total, bool)
    quick = clean_rows & np.isin(plan.kind, QUICK_IDX)
    stages = [s for s in ([quick, clean_rows & ~quick, ~clean_rows] if staged else [clean_rows]) if s.any()]
    done = 0
    for stage, in_stage in enumerate(stages):
        for rule in (ORDINARY, LAYER, DECONV, GUIDED):
            rows = np.flatnonzero((plan.rule == rule) & in_stage)
            if len(rows) == 0:
                continue
            workers = gradient_workers(clf, len(rows))
            chunks = split_rows(rows, bs, workers)
            n_workers = min(workers, len(chunks))
            # the modified rules' hooks are on the shared ReLU modules: a rule's batches all finish in its context
            ctx = (deconvolution_rule(net, "deconv" if rule == DECONV else "guided") if rule in (DECONV, GUIDED)
                   else captured(layer) if rule == LAYER else contextlib.nullcontext())  # type: ignore[arg-type]
            head: list = []  # the batch that gives the predicted class, run before the others
            if seen is not None and seen.value is None:
                at = np.flatnonzero(np.isin(plan.kind[chunks[0]], QUICK_IDX) & (plan.base[chunks[0]] == 0))
                if clean_every is not None and len(at):
                    seen.row, head, chunks = int(at[0]), chunks[:1], chunks[1:]
                elif clean_every is not None:
                    seen.resolve(clf, bases[:1])
                else:
                    raise ValueError("no clean input among the bases: resolve the predicted class first")
            with ctx as capture, intra_op_threads(torch.get_num_threads() // n_workers if n_workers > 1 else None):
                hooked["capture"] = capture
                with contextlib.closing(ordered_map(one_batch, chunks, n_workers)) as rest:
                    for n_rows, sel_slots, contribution in itertools.chain(map(one_batch, head), rest):
                        for t in range(len(targets)):
                            accumulate(acc[t], sel_slots, contribution[t])
                        done += n_rows
                        yield Step(done, plan.total, "gradients")
        if stage < len(stages) - 1 and (stages[stage] & clean_rows).any():
            ran = np.logical_or.reduce(stages[:stage + 1]) & clean_rows
            yield Step(done, plan.total, "plain maps",
                       Partial(shaped(), complete_methods(plan, ran, clean_rows & ~ran, opts, with_bp)))
    return shaped()


def complete_methods(plan: Plan, ran: np.ndarray, pending: np.ndarray, opts: ExplainOptions,
                     with_bp: bool) -> tuple[str, ...]:
    """The methods of ``opts`` whose clean-input rows have all run (``ran``; ``pending``: those not)."""
    done = {KINDS[k] for k in np.unique(plan.kind[ran])} - {KINDS[k] for k in np.unique(plan.kind[pending])}
    if "GC" in done:
        done |= {"GCS", "GCPP", "BP"} if with_bp else {"GCS", "GCPP"}  # Grad-CAM's rows fill GCS, GCPP (and BP)
    return tuple(m for m in opts.methods if m != "OCC" and set(needed_kinds((m,)) or ("-",)) <= done)


def occlusion_images(opts: ExplainOptions, size: tuple[int, int], n_targets: int = 1) -> int:
    """Occluded images (forward passes) OCC takes for an input of ``size`` (0 without OCC)."""
    if "OCC" not in opts.methods:
        return 0
    return count_windows(size, opts.occ_window, opts.occ_stride) * (n_targets if opts.occ_fill == "label" else 1)


def job_size(opts: ExplainOptions, size: tuple[int, int], n_targets: int = 1) -> int:
    """The progress units ``iter_run`` reports for one slice: the plan's gradient evaluations plus
    OCC's occluded images."""
    return make_plan(opts).total + occlusion_images(opts, size, n_targets)


def iter_run(clf: Classifier, x: torch.Tensor, target: int | Predicted | Sequence[int | Predicted],
             opts: ExplainOptions, refs: torch.Tensor | None, *, batch_size: int | None = None,
             channels: bool = False, seen: Predicted | None = None) -> Generator[Step, None, dict | list[dict]]:
    """Plan, execute, reduce for preprocessed ``x`` (1, C, h, w); yields progress, returns model-space
    maps ``{(method, variant): (h, w)}`` — per target, a list, for a sequence of targets — and with
    ``channels=True`` a second dict of (C, h, w) per-channel maps (a pair, or a list of pairs).

    A ``Predicted`` target (or ``seen``) is the class predicted for ``x``: read from the plan's
    first forward when that holds ``x`` itself, else from a forward of its own (see ``run_plan``)."""
    net = clf.module
    check_rules(net, x, opts)
    if "EG" in opts.methods and (refs is None or len(refs) == 0):
        raise ValueError("EG needs reference images (references=...)")
    plan = make_plan(opts)
    clean, _ = base_inputs(opts)
    bases = torch.cat([x[:int(clean)], noisy_copies(x, opts)]) if plan.n_base else x
    scalar = np.isscalar(target) or isinstance(target, Predicted)
    targets: list = [target] if scalar else list(target)  # type: ignore[arg-type]
    seen = next((t for t in [seen, *targets] if isinstance(t, Predicted)), None)
    if seen is not None and not (plan.total and clean):  # no batch holds x itself: a forward of its own
        seen.resolve(clf, x)
    n_occ = occlusion_images(opts, tuple(x.shape[2:]), len(targets))
    total = plan.total + n_occ
    centre = clf.card.slice_offsets.index(0) if clf.card.is_2_5d else None
    black, white = clf.baseline(0.0), clf.baseline(1.0)

    def plain_maps(partial: Partial) -> dict | list[dict]:
        """The plain maps of the methods a stage completed (the clean input's rows are done)."""
        plain = replace(opts, methods=partial.methods, variants=("plain",))

        def one(a: torch.Tensor) -> dict:
            return reduce_maps(a[:, :1], bases[:1], plain, black=black, white=white, centre=centre)

        acc = partial.acc
        return one(acc) if scalar else [one(acc[t]) for t in range(len(targets))]

    acc = None
    if plan.total:
        staged = plan.n_base if clean else None  # plain maps first (one-evaluation methods first), then SG / SG²
        run = run_plan(clf, plan, bases, target, opts, refs if "EG" in opts.methods else None,
                       batch_size=batch_size, net=net, clean_every=staged, seen=seen)
        acc = yield from offset(map_partial(run, plain_maps), 0, total, "gradients")
    occ = None
    if n_occ:
        classes = [int(t) for t in targets]  # a Predicted target is known by now
        occ = yield from offset(iter_occlusion(clf, x, classes, window=opts.occ_window, stride=opts.occ_stride,
                                                  fill=opts.occ_fill, own=own_channels(clf, x)), plan.total, total,
                                "occlusion")

    def reduce(a: torch.Tensor | None, t: int) -> dict | tuple[dict, dict]:
        one = {} if a is None else reduce_maps(a, bases, opts, black=black, white=white, centre=centre)
        if occ is not None:
            one["OCC", "plain"] = occ[t]
        if not channels:
            return one
        return one, {} if a is None else reduce_maps(a, bases, opts, black=black, white=white, channels=True)

    if scalar:
        return reduce(acc, 0)
    return [reduce(None if acc is None else acc[i], i) for i in range(len(targets))]


def check_rules(net: nn.Module, x: torch.Tensor, opts: ExplainOptions) -> None:
    """Refuse, with the reason, methods whose modified ReLU rule cannot reach the model's activations."""
    relu_methods = [m for m in ("D", "GBP", "GGC") if m in opts.methods]
    if relu_methods:
        check_relus_reachable(net, x, ", ".join(relu_methods))


def own_channels(clf: Classifier, x: torch.Tensor) -> torch.Tensor | None:
    """(1, C, 1, 1) bool: the channels of the slice explained (a 2.5D model's offset 0), or None (all)."""
    if not clf.card.is_2_5d:
        return None
    return torch.tensor([o == 0 for o in clf.card.slice_offsets], device=x.device).view(1, -1, 1, 1)


def iter_run_slices(clf: Classifier, xs: torch.Tensor, targets: Sequence[int], opts: ExplainOptions,
                    refs: Sequence[torch.Tensor] | None, *, batch_size: int | None = None
                    ) -> Generator[Step, None, list[dict]]:
    """Several slices' maps from one plan (``tile_plan``): ``xs`` (n, C, h, w) preprocessed slices,
    one target class and (for EG) one reference set per slice. Batches mix the slices' gradient
    evaluations; each slice's maps equal ``iter_run`` of that slice alone with the same seed (the
    same noisy copies, IG points and EG draws — the draws index into that slice's references)."""
    n = len(xs)
    net = clf.module
    if "OCC" in opts.methods:
        raise ValueError("OCC (occlusion) is computed one slice at a time: explain each slice (explain(...)), "
                         "or leave OCC out of a volume's methods")
    check_rules(net, xs[:1], opts)
    one = make_plan(opts)
    plan = tile_plan(one, n)
    clean, _ = base_inputs(opts)
    bases = torch.cat([torch.cat([xs[i:i + 1][:int(clean)], noisy_copies(xs[i:i + 1], opts)]) for i in range(n)])
    per_base = torch.as_tensor(np.repeat(np.asarray(targets, dtype=np.int64), one.n_base), device=xs.device)
    all_refs, draws = None, None
    if "EG" in opts.methods:
        if refs is None or any(len(r) == 0 for r in refs):
            raise ValueError("EG needs reference images (references=...)")
        all_refs = torch.cat(list(refs))
        idx, alpha = [], []
        first = 0  # each slice's first reference in all_refs
        for r in refs:  # each slice's own draws, as a call of its own would make them
            i_np, al_np = draw_expected_gradients(opts.seed, one.n_base, opts.samples, len(r))
            idx.append(i_np + first)
            alpha.append(al_np)
            first += len(r)
        draws = (np.concatenate(idx), np.concatenate(alpha))
    # every slice's plain rows first (the same order as one slice's), each stage reported as
    # ``partial``: per slice, the plain maps of the methods the stage completed
    staged = one.n_base if clean else None
    run = run_plan(clf, plan, bases, per_base, opts, all_refs, batch_size=batch_size, net=net, eg_draws=draws,
                   clean_every=staged)
    centre = clf.card.slice_offsets.index(0) if clf.card.is_2_5d else None
    black, white = clf.baseline(0.0), clf.baseline(1.0)
    nb = one.n_base

    def plain_maps(partial: Partial) -> list[dict]:
        plain = replace(opts, methods=partial.methods, variants=("plain",))
        return [reduce_maps(partial.acc[:, i * nb:i * nb + 1], bases[i * nb:i * nb + 1], plain, black=black,
                            white=white, centre=centre) for i in range(n)]

    acc = yield from offset(map_partial(run, plain_maps), 0, None, "gradients")
    return [reduce_maps(acc[:, i * nb:(i + 1) * nb], bases[i * nb:(i + 1) * nb], opts, black=black, white=white,
                        centre=centre) for i in range(n)]
