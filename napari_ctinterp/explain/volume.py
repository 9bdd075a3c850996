"""``explain_volume``: attribution maps of many slices of a CT volume from one plan.

Why not a loop of ``explain``: the slices' gradient evaluations go through the engine together
(``engine.iter_run_slices``: the one-slice plan tiled over a chunk of slices), so batches stay
full across slice boundaries, progress and cancel cover the whole request, and each slice still
gets exactly its own maps. Per-slice equality with ``explain(clf, hu[k], seed=seed)`` holds
because every slice uses the *same* seed: its SmoothGrad noise, IG points and EG draws are those
that ``explain`` makes for that slice alone (the noise pattern repeats from slice to slice; its
statistics per slice are what SmoothGrad needs).

Memory: slices run in chunks whose accumulators fit ``memory_budget`` bytes (the kinds × base
inputs × channels × input pixels × 4 bytes per slice; 25 MB for the demo's 15 maps at 256²), and
each chunk's maps are written into preallocated (Z, H, W) float32 arrays — in RAM, or, with
``out_dir``, memory-mapped ``.npy`` files (a 300-slice 512² volume with 15 maps is 4.7 GB).
Slices not asked for hold NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..io.evidence import evidence_mask
from ..model.classifier import Classifier
from ..progress import Progress, Step, drive, map_partial, offset
from .engine import ExplainCancelled, iter_run_slices
from .gradcam import layer_name
from .options import ExplainOptions, from_call
from .plan import make_plan
from .reduce import resize_map

#: Default bound on one chunk's gradient accumulators (bytes).
MEMORY_BUDGET = 512 * 2**20

References = np.ndarray | Callable[[int], np.ndarray] | None


class VolumeMaps(dict):
    """``{(method, variant): float32 (Z, H, W)}`` (NaN on slices not explained) plus ``params``;
    ``slices``: the explained slice indices; ``targets`` / ``predicted``: per explained slice."""

    def __init__(self, maps: dict, params: dict) -> None:
        super().__init__(maps)
        self.params = params
        self.slices: list[int] = list(params["slices"])


def choose_slices(n: int, slices: int | Sequence[int] | range | str | None = None,
                  mask: np.ndarray | None = None) -> list[int]:
    """Slice indices to explain: all (None), given indices / a range, or ``"masked"``: every slice
    whose ``mask`` (Z, H, W) has a pixel > 0 (expected evidence, ``metrics.evidence_mask``)."""
    if isinstance(slices, str):
        if slices != "masked":
            raise ValueError(f"slices={slices!r}: give indices, a range, None (all) or 'masked'")
        if mask is None:
            raise ValueError("slices='masked' needs mask= (Z, H, W), the reference mask of the volume")
        m = np.asarray(mask)
        if m.ndim != 3 or m.shape[0] != n:
            raise ValueError(f"mask shape {m.shape} does not fit a volume of {n} slices")
        chosen = [int(z) for z in np.flatnonzero(evidence_mask(m).reshape(n, -1).any(1))]
        if not chosen:
            raise ValueError("the mask is empty on every slice: paint it first, or give slices=")
        return chosen
    if slices is None:
        return list(range(n))
    chosen = [int(slices)] if np.isscalar(slices) else [int(z) for z in slices]  # type: ignore[arg-type]
    bad = [z for z in chosen if not 0 <= z < n]
    if bad:
        raise IndexError(f"slice(s) {bad} out of range for a volume of {n} slices")
    if len(set(chosen)) != len(chosen):
        raise ValueError("a slice is listed twice")
    return sorted(chosen)


def bytes_per_slice(clf: Classifier, opts: ExplainOptions) -> int:
    """Accumulator bytes one slice needs in a chunk (what ``memory_budget`` divides)."""
    h, w = clf.card.input_size
    plan = make_plan(opts)
    return (plan.n_accumulators + 1) * plan.n_base * clf.card.in_channels * h * w * 4  # accumulators + bases


def explain_volume(
    clf: Classifier,
    hu: np.ndarray,
    options: ExplainOptions | None = None,
    *,
    slices: int | Sequence[int] | range | str | None = None,
    mask: np.ndarray | None = None,
    methods: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    steps: int | None = None,
    samples: int | None = None,
    sg_samples: int | None = None,
    sg_level: float | None = None,
    seed: int | None = None,
    ig_method: str | None = None,
    gc_layer: str | None = None,
    occ_window: int | None = None,
    occ_stride: int | None = None,
    occ_fill: str | None = None,
    references: References = None,
    target: int | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = MEMORY_BUDGET,
    out_dir: str | Path | None = None,
    full: bool = True,
    progress: Progress | None = None,
) -> VolumeMaps:
    """Attribution maps of slices of a (Z, H, W) HU volume, from one plan.

    Parameters
    ----------
    clf : Classifier
        A 2D or 2.5D model (2.5D channels come from the volume).
    hu : numpy.ndarray
        (Z, H, W) in HU.
    options : ExplainOptions, optional
        As ``explain``; every slice uses its ``seed`` (see the module docstring). OCC is refused
        here (occlusion runs one slice at a time, through ``explain``).
    slices : indices, range, ``"masked"`` or None
        Which slices (None: all; ``"masked"``: every slice with a mask pixel, needs ``mask``).
    mask : numpy.ndarray, optional
        (Z, H, W) reference mask, for ``slices="masked"``.
    methods, variants, steps, samples, sg_samples, sg_level, seed, ig_method, gc_layer, occ_window, \
occ_stride, occ_fill
        Overrides of the same-named fields of ``options`` (None: as in ``options``).
    references : array (K, H, W), callable or None
        EG reference slices: one set for every slice, or ``references(k)`` per slice. Default:
        the model's own set (demo models), else the volume's other slices
        (``volume_references(hu, k)``), an error when the volume has too few.
    target : int or str, optional
        One class for every slice; default each slice's predicted class.
    batch_size : int, optional
        Gradient batch; default from free memory.
    memory_budget : int
        Bytes of accumulators per chunk of slices (see the module docstring).
    out_dir : path, optional
        Write the maps as memory-mapped ``<method>_<variant>.npy`` files there instead of RAM.
    full : bool
        True: (Z, H, W) arrays, NaN on slices not asked for; False: (len(slices), H, W), row i
        = ``slices[i]`` (a few slices of a long CT without whole-volume arrays).
    progress : callable, optional
        ``progress(done, total, phase)`` in gradient evaluations over all slices; False cancels
        (``ExplainCancelled``).

    Returns
    -------
    VolumeMaps
    """
    opts = from_call(options, locals())
    gen = iter_explain_volume(clf, hu, opts, slices=slices, mask=mask, references=references, target=target,
                              batch_size=batch_size, memory_budget=memory_budget, out_dir=out_dir, full=full)
    return drive(gen, progress, ExplainCancelled)


def iter_explain_volume(
    clf: Classifier,
    hu: np.ndarray,
    options: ExplainOptions | None = None,
    *,
    slices: int | Sequence[int] | range | str | None = None,
    mask: np.ndarray | None = None,
    references: References = None,
    target: int | str | None = None,
    batch_size: int | None = None,
    memory_budget: int = MEMORY_BUDGET,
    out_dir: str | Path | None = None,
    full: bool = True,
    plain_first: bool = False,
) -> Generator[Step, None, VolumeMaps]:
    """``explain_volume`` as a generator of progress (``yield from`` it in a worker).

    ``plain_first``: each stage of plain maps is reported as the step's ``partial``, a
    ``VolumeMaps`` of the plain maps finished so far (``slices``: the slices they cover, in the
    layout of ``full``; the slices not reached yet are not in ``slices`` and hold NaN)."""
    from ..model.demos import default_references
    from .references import MIN_VOLUME_REFERENCES, volume_references

    vol = np.asarray(hu)
    if clf.card.is_3d:
        raise ValueError("this is a 3D model: it explains the whole volume at once, not slice by slice — call "
                         "explain(clf, volume) (its maps are (Z, H, W) on the CT's grid)")
    if vol.ndim != 3:
        raise ValueError(f"explain_volume takes a volume (Z, H, W) in HU, got shape {vol.shape}; "
                         f"for one slice use explain")
    opts = options or ExplainOptions()
    if "OCC" in opts.methods:
        raise ValueError("OCC (occlusion) is computed one slice at a time: choose the current slice, or leave "
                         "OCC out when explaining several slices")
    chosen = choose_slices(len(vol), slices, mask)
    reach = max((abs(o) for o in clf.card.slice_offsets), default=0)  # a 2.5D model's neighbours
    needed = sorted({min(max(k + d, 0), len(vol) - 1) for k in chosen for d in range(-reach, reach + 1)})
    bad = [k for k in needed if not np.isfinite(vol[k]).all()]
    if bad:
        raise ValueError(f"slice(s) {bad[:5]} hold NaN/inf pixels: fill or crop them, or leave them out of slices")
    fixed = None if target is None else clf.card.class_index(target)
    use_eg = "EG" in opts.methods
    ref_source = None
    if use_eg:
        own = default_references(clf) if references is None else None
        if own is not None:
            references, ref_source = own
        elif references is None:
            if volume_references(vol, chosen[0]) is None:
                raise ValueError(f"EG needs reference slices for this model: the volume has fewer than "
                                 f"{MIN_VOLUME_REFERENCES} other slices; pass references=(K, H, W) HU slices")
            references = lambda k: volume_references(vol, k)  # noqa: E731 - the others of the volume
            ref_source = "the volume's other slices"
        else:
            ref_source = "given per slice" if callable(references) else f"{len(np.asarray(references))} given slices"
    shared_refs = None
    if use_eg and not callable(references):
        arr = np.asarray(references)
        shared_refs = clf.preprocess(arr[None] if arr.ndim == 2 else arr)

    shape = vol.shape if full else (len(chosen), *vol.shape[1:])
    row_of = {k: (k if full else i) for i, k in enumerate(chosen)}
    keys = [(m, v) for m in opts.methods for v in opts.variants]
    out: dict = {}
    for key in keys:
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            out[key] = np.lib.format.open_memmap(Path(out_dir) / f"{key[0]}_{key[1]}.npy", mode="w+",
                                                 dtype=np.float32, shape=shape)
            out[key][:] = np.nan
        else:
            out[key] = np.full(shape, np.nan, dtype=np.float32)
    if opts.uses_gradcam:  # Grad-CAM's layer found once; every chunk's plan takes its name
        opts = replace(opts, gc_layer=layer_name(clf, opts.gc_layer))
    chunk = max(1, int(memory_budget // max(1, bytes_per_slice(clf, opts))))
    per_slice = make_plan(opts).total
    total, done = per_slice * len(chosen), 0
    predicted: dict[int, int] = {}
    targets: dict[int, int] = {}

    def params(done_slices: list[int]) -> dict:
        return {**opts.record(), "seed_per_slice": "the same seed for every slice", "slices": done_slices,
                "predicted": [predicted[k] for k in done_slices], "targets": [targets[k] for k in done_slices],
                "target": fixed, "target_name": None if fixed is None else clf.card.class_names[fixed],
                "references": ref_source, "model": clf.source, "model_sha256_12": clf.card.short_hash,
                "input_size": list(clf.card.input_size), "channels": [list(w) for w in clf.card.windows],
                "chunk_slices": chunk, "store": str(out_dir) if out_dir is not None else "memory", "full": full}

    for start in range(0, len(chosen), chunk):
        part = chosen[start:start + chunk]
        if reach == 0:  # one stack of the chosen slices (the finiteness was checked once above)
            run_of = part == list(range(part[0], part[-1] + 1))  # consecutive slices: a view, not a copy
            xs = clf.preprocess(vol[part[0]:part[-1] + 1] if run_of else vol[part])
        else:  # each slice with its neighbours, from a window of the volume (edges repeat as in the volume)
            xs = torch.cat([clf.preprocess(vol[max(k - reach, 0):k + reach + 1], index=k - max(k - reach, 0))
                            for k in part])
        pred = clf.predicted(clf.logits(xs))
        t = [int(p) if fixed is None else fixed for p in pred.tolist()]
        refs = None
        if use_eg:
            refs = [shared_refs] * len(part) if shared_refs is not None else \
                [clf.preprocess(references(k)) for k in part]  # type: ignore[operator]
        for k, p, tk in zip(part, pred.tolist(), t):
            predicted[k], targets[k] = int(p), int(tk)

        def so_far(plain: list[dict], part: list[int] = part, start: int = start) -> VolumeMaps:
            """The plain maps of the slices before this chunk and of the methods this chunk's stage completed."""
            maps = {}
            for key in plain[0]:
                arr = np.array(out[key])  # a copy: the worker goes on writing ``out``
                for k, m in zip(part, plain):
                    arr[row_of[k]] = resize_map(m[key], shape[1:])
                maps[key] = arr
            return VolumeMaps(maps, params(chosen[:start + len(part)]))

        run = iter_run_slices(clf, xs, t, opts, refs, batch_size=batch_size)
        maps = yield from offset(map_partial(run, so_far if plain_first else lambda _plain: None), done, total,
                                 "gradients")
        done += per_slice * len(part)
        for k, m in zip(part, maps):
            for key in keys:
                out[key][row_of[k]] = resize_map(m[key], shape[1:])

    return VolumeMaps(out, params(chosen))
