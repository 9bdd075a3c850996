"""``explain``: signed attribution maps of a CT slice for the study's methods and variants."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace

import numpy as np
import torch

from ..model.classifier import Classifier
from .engine import GC_SIGNED, drive, iter_run, resize_map
from .plan import METHODS, VARIANTS, ExplainOptions

#: Number of phantom slices in the demo model's EG reference set.
DEMO_REFERENCES = 16


class AttributionMaps(dict):
    """``{(method, variant): signed float32 map (H, W)}`` plus ``params`` (every setting used).

    ``channels``: with ``explain(..., channels=True)``, ``{(method, variant): float32 (C, H, W)}``,
    the attribution to each input channel (else None; Grad-CAM and Occlusion have none).
    ``gc_signed``: ``{("GC", variant): float32 (H, W)}``, Grad-CAM before its ReLU (empty without GC).
    """

    params: dict

    def __init__(self, maps: dict, params: dict, channels: dict | None = None, gc_signed: dict | None = None) -> None:
        super().__init__(maps)
        self.params = params
        self.channels = channels
        self.gc_signed = gc_signed or {}
        self.regions: dict | None = None  # filled by callers that add XRAI region maps


@functools.lru_cache(maxsize=2)
def demo_references(n: int = DEMO_REFERENCES) -> np.ndarray:
    """The demo model's EG reference set: phantom slices from its *training* seed range (HU)."""
    from ..model.datasets import phantom_spec
    from ..phantom import make_slice

    specs = phantom_spec("train", n, seed=424242)
    return np.stack([make_slice(s["seed"], contrast=s["contrast"], phase=s["phase"]).hu for s in specs])


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The random baseline: i.i.d. U(0, 1) values (float32), fixed by ``seed``."""
    return np.random.default_rng([int(seed), 0xBA5E]).uniform(0, 1, size=shape).astype(np.float32)


def predicted_class(clf: Classifier, x: torch.Tensor) -> int:
    """Class the model predicts for a preprocessed (1, C, h, w) input (binary demo: 1 = contrast)."""
    return int(clf.predicted(clf.logits(x))[0])


def explain(clf: Classifier, hu: np.ndarray, *, progress: Callable[[int, int], object] | None = None,
            **kwargs) -> AttributionMaps | dict[str, AttributionMaps]:
    """Signed attribution maps of one slice (see ``iter_explain`` for every parameter).

    With ``targets=[...]`` a dict ``{class name: AttributionMaps}``, one per target, computed
    together (shared forward passes).

    ``progress(done, total)`` is called after each gradient batch; returning False cancels
    (``ExplainCancelled``).
    """
    return drive(iter_explain(clf, hu, **kwargs), progress)


def iter_explain(
    clf: Classifier,
    hu: np.ndarray,
    *,
    methods: Sequence[str] = METHODS,
    variants: Sequence[str] = VARIANTS,
    steps: int = 25,
    samples: int = 50,
    sg_samples: int = 15,
    sg_level: float = 0.15,
    references: np.ndarray | None = None,
    target: int | str | None = None,
    targets: Sequence[int | str] | None = None,
    channels: bool = False,
    index: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    ig_method: str = "gausslegendre",
    gc_layer: str | None = None,
    occ_window: int = 16,
    occ_stride: int = 8,
    occ_fill: str = "black",
) -> Generator[tuple[int, int], None, AttributionMaps | dict[str, AttributionMaps]]:
    """Signed attribution maps of one slice, as a generator of progress.

    Yields ``(done, total)`` gradient evaluations after each batch and returns the maps (drive it
    with ``explain``, or ``yield from`` it in a napari worker so the UI can show progress and
    cancel between batches).

    Parameters
    ----------
    clf : Classifier
        From ``model.load``. All work happens in its input space ([0, 1] over the HU window).
    hu : numpy.ndarray
        The slice (H, W) in HU.
    methods : sequence of {"BP", "IGB", "IGBW", "EG", "D", "GC", "GBP", "GGC", "OCC"}
        The paper's five (the default): Backprop; Integrated Gradients, black baseline (0); mean
        of IG with black and white (1) baselines; Expected Gradients; Deconvolution. Beyond them:
        Grad-CAM (at ``gc_layer``, upsampled bilinearly); Guided Backprop; Guided Grad-CAM
        (GBP × GC); Occlusion (plain only).
    variants : sequence of {"plain", "SG", "SG2"}
        Plain; SmoothGrad (mean over noisy copies); SmoothGrad² (mean of squares) — SG and SG2
        reduce the same noisy samples, shared by all methods. OCC has no SG variants: its plain
        map only (``params["not_computed"]`` lists the pairs left out); with OCC, plain is required.
    steps : int
        IG path points (25, the study's), Gauss–Legendre quadrature like Captum's default.
    samples : int
        EG samples (reference, α ~ U(0, 1)) per input.
    sg_samples, sg_level : int, float
        Noisy copies n and σ = sg_level × (max − min) of the input.
    references : numpy.ndarray, optional
        EG reference slices (K, H, W) in HU. Default for the demo model: its demo set (phantom
        slices from the training seed range). Other models need them: a folder of training slices
        or the other slices of the open volume.
    target : int or str, optional
        Class whose score is explained, by index or by name (``clf.class_names``); default the
        predicted class. The score is the target's logit (softmax / multilabel); a one-logit model
        explains z for class 1 and −z for class 0, so positive = evidence for the target.
    targets : sequence of int or str, optional
        Several classes at once (instead of ``target``): every gradient point of the plan is the
        same for every class, so each batch is one forward pass and one backward pass per class.
        The result is then ``{class name: AttributionMaps}`` in the order given.
    channels : bool
        Also keep per-input-channel maps in ``.channels`` (``{(method, variant): (C, H, W)}``);
        the main maps are unchanged (window channels summed, a 2.5D model's centre slice).
    index : int, optional
        The slice of a volume ``hu`` (Z, H, W) to explain: needed by 2.5D models, whose
        neighbouring-slice channels come from the volume.
    seed : int
        Fixes the SG noise and the EG draws.
    batch_size : int, optional
        Gradient batch; default from free memory.
    ig_method : str
        IG quadrature (``gausslegendre`` or a ``riemann_*`` rule).
    gc_layer : str, optional
        Grad-CAM's target layer by module name (``"layer3"``); default the family's last spatial
        block (``explain.gradcam``), recorded in ``params["gc_layer"]``.
    occ_window, occ_stride : int
        Occlusion's square window and its step, in pixels of the model's input (16 and 8).
    occ_fill : {"black", "label"}
        What fills the window: the black of the model's window, or the fidelity protocol's label
        fill (white when explaining class 0, black otherwise).

    Returns
    -------
    AttributionMaps
        dict ``{(method, variant): float32 (H, W)}`` resized back to the slice, with ``.params``
        (or, with ``targets``, one per class name).
    """
    opts = ExplainOptions(methods=tuple(methods), variants=tuple(variants), steps=int(steps),
                          samples=int(samples), sg_samples=int(sg_samples), sg_level=float(sg_level),
                          seed=int(seed), ig_method=ig_method, gc_layer=gc_layer or None,
                          occ_window=int(occ_window), occ_stride=int(occ_stride), occ_fill=occ_fill)
    arr = np.asarray(hu)
    if arr.ndim == 3 and index is not None:
        x, shape = clf.preprocess(arr, index=index), arr.shape[1:]
    elif arr.ndim != 2:
        raise ValueError(f"explain takes one slice (H, W), or a volume (Z, H, W) with index=k; got shape "
                         f"{arr.shape}. Loop over a stack's slices.")
    else:
        x, shape = clf.preprocess(arr), arr.shape
    refs = None
    ref_source = None
    if "EG" in opts.methods:
        if references is None:
            from ..model.loading import DEMOS

            if clf.source not in DEMOS:
                raise ValueError("EG needs reference slices for this model: pass references=(K, H, W) HU "
                                 "slices, e.g. training slices or the other slices of the open volume")
            references, ref_source = demo_references(), f"demo set ({DEMO_REFERENCES} phantom slices)"
        references = np.asarray(references)
        if references.ndim == 2:
            references = references[None]
        if references.ndim != 3 or len(references) == 0:
            raise ValueError(f"references must be HU slices (K, H, W), got shape {references.shape}")
        refs = clf.preprocess(references)
        ref_source = ref_source or f"{len(references)} given slices"
    if targets is not None and target is not None:
        raise ValueError("give target (one class) or targets (several), not both")
    if targets is not None:
        idx = [clf.card.class_index(t) for t in targets]
        if not idx:
            raise ValueError("targets is empty: name at least one class")
        if len(set(idx)) != len(idx):
            raise ValueError(f"targets names a class twice: {list(targets)}")
    predicted = predicted_class(clf, x)
    many = targets is not None
    idx = idx if many else [predicted if target is None else clf.card.class_index(target)]
    if {"GC", "GGC"} & set(opts.methods):  # the layer found once (by shape: a forward); the engine takes its name
        from .gradcam import layer_name

        opts = replace(opts, gc_layer=layer_name(clf, opts.gc_layer))
    runs = yield from iter_run(clf, x, idx if many else idx[0], opts, refs, batch_size=batch_size, channels=channels)
    made = set(opts.pairs())  # OCC: plain only
    params = {"methods": list(opts.methods), "variants": list(opts.variants), "steps": opts.steps,
              "samples": opts.samples, "sg_samples": opts.sg_samples, "sg_level": opts.sg_level,
              "seed": opts.seed, "ig_method": opts.ig_method, "predicted": int(predicted),
              "references": ref_source,
              "model": clf.source, "model_sha256_12": clf.card.short_hash, "input_size": list(clf.card.input_size),
              "hu_window": list(clf.card.hu_window), "index": index,
              "channels": [list(w) for w in clf.card.windows],
              "not_computed": [f"{m} {v}" for m in opts.methods for v in opts.variants if (m, v) not in made]}
    if {"GC", "GGC"} & set(opts.methods):
        params["gc_layer"] = opts.gc_layer
    if "OCC" in opts.methods:
        params.update(occ_window=opts.occ_window, occ_stride=opts.occ_stride, occ_fill=opts.occ_fill)

    def finish(run: dict | tuple[dict, dict], t: int) -> AttributionMaps:
        maps, per_channel = run if channels else (run, None)
        out = {key: resize_map(m, shape) for key, m in maps.items() if key[0] != GC_SIGNED}
        signed = {("GC", v): resize_map(m, shape) for (k, v), m in maps.items() if k == GC_SIGNED}
        chans = None if per_channel is None else {
            key: np.stack([resize_map(c, shape) for c in m]) for key, m in per_channel.items() if key[0] != GC_SIGNED}
        return AttributionMaps(out, {**params, "target": int(t), "target_name": clf.card.class_names[int(t)]}, chans,
                               signed)

    if not many:
        return finish(runs, idx[0])
    return {clf.card.class_names[t]: finish(run, t) for run, t in zip(runs, idx)}
