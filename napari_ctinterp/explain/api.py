"""``explain`` / ``explain_targets``: signed attribution maps of one CT slice.

Both take one ``ExplainOptions`` (``explain/options.py``: every option declared and checked once)
and, for convenience, keyword overrides of its fields; ``iter_explain`` is the generator form a
napari worker ``yield from``s (progress and cancel between gradient batches).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import replace

import numpy as np
import torch

from ..model.classifier import Classifier
from ..progress import Progress, Step, drive, map_partial
from .engine import ExplainCancelled, iter_run, iter_run_slices
from .gradients import Predicted
from .options import ExplainOptions, from_call
from .reduce import GC_SIGNED, resize_map


class AttributionMaps(dict):
    """``{(method, variant): signed float32 map (H, W)}`` plus ``params`` (every setting used).

    ``channels``: with ``explain(..., channels=True)``, ``{(method, variant): float32 (C, H, W)}``,
    the attribution to each input channel (else None; Grad-CAM and Occlusion have none).
    ``gc_signed``: ``{("GC", variant): float32 (H, W)}``, Grad-CAM before its ReLU (empty without GC).
    ``regions``: ``{(method, variant): (values, ranks)}`` XRAI region maps when a job adds them.
    """

    params: dict

    def __init__(self, maps: dict, params: dict, channels: dict | None = None, gc_signed: dict | None = None,
                 regions: dict | None = None) -> None:
        super().__init__(maps)
        self.params = params
        self.channels = channels
        self.gc_signed = gc_signed or {}
        self.regions = regions


def explain(
    clf: Classifier,
    hu: np.ndarray,
    options: ExplainOptions | None = None,
    *,
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
    references: np.ndarray | None = None,
    target: int | str | None = None,
    channels: bool = False,
    index: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    spacing_mm: tuple[float, float, float] | None = None,
) -> AttributionMaps:
    """Signed attribution maps of one slice — or, for a 3D model, of the whole volume.

    Parameters
    ----------
    clf : Classifier
        From ``model.load``. All work happens in its input space ([0, 1] over the HU window).
    hu : numpy.ndarray
        The slice (H, W) in HU, or a volume (Z, H, W) with ``index`` (2.5D models), or the
        volume (Z, H, W) a 3D model (card ``spatial_dims`` 3) sees whole: its maps are (Z, H, W) on
        the CT's grid (the inverse of the card's resize / resampling and crop; CT voxels outside
        the crop are 0, counted in ``params["outside_voxels"]``).
    options : ExplainOptions, optional
        Methods, variants and their settings (``help(ExplainOptions)``); default ``ExplainOptions()``:
        the paper's five methods × plain / SG / SG².
    methods, variants, steps, samples, sg_samples, sg_level, seed, ig_method, gc_layer, occ_window, \
occ_stride, occ_fill
        Overrides of the same-named fields of ``options`` (None: as in ``options``).
    references : numpy.ndarray, optional
        EG reference slices (K, H, W) in HU. Default for the demo models: their own set
        (``model.default_references``). Other models need them: training slices, or the other
        slices of the open volume (``explain.volume_references``).
    target : int or str, optional
        Class whose score is explained, by index or by name (``clf.class_names``); default the
        predicted class. The score is the target's logit (softmax / multilabel); a one-logit model
        explains z for class 1 and −z for class 0, so positive = evidence for the target.
    channels : bool
        Also keep per-input-channel maps in ``.channels`` (``{(method, variant): (C, H, W)}``);
        the main maps are unchanged (window channels summed, a 2.5D model's centre slice).
    index : int, optional
        The slice of a volume ``hu`` (Z, H, W) to explain: needed by 2.5D models, whose
        neighbouring-slice channels come from the volume.
    batch_size : int, optional
        Gradient batch; default from free memory.
    progress : callable, optional
        ``progress(done, total, phase)`` after each batch, in gradient evaluations (+ OCC's
        occluded images); returning False cancels (``ExplainCancelled``). See ``napari_ctinterp.progress``.
    spacing_mm : tuple of float, optional
        3D models whose card resamples to a spacing: the CT's (z, y, x) spacing in mm
        (``read_ct(...).spacing_mm``); EG's reference volumes are taken at the same spacing.

    Returns
    -------
    AttributionMaps
        dict ``{(method, variant): float32 (H, W)}`` resized back to the slice, with ``.params``
        (every setting; ``params["not_computed"]`` lists pairs left out, e.g. OCC's SG variants).
    """
    opts = from_call(options, locals())
    gen = iter_explain(clf, hu, opts, references=references, target=target, channels=channels, index=index,
                       batch_size=batch_size, spacing_mm=spacing_mm)
    return drive(gen, progress, ExplainCancelled)


def explain_targets(
    clf: Classifier,
    hu: np.ndarray,
    targets: Sequence[int | str],
    options: ExplainOptions | None = None,
    *,
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
    references: np.ndarray | None = None,
    channels: bool = False,
    index: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    spacing_mm: tuple[float, float, float] | None = None,
) -> dict[str, AttributionMaps]:
    """Maps of one slice for several classes at once: ``{class name: AttributionMaps}`` in the
    order of ``targets`` (indices or names of ``clf.class_names``).

    Every gradient point of the plan is the same for every class, so each batch is one forward
    pass and one backward pass per class (T classes cost one plan's forwards plus T backwards).

    Parameters
    ----------
    targets : sequence of int or str
        The classes, by index or name; each at most once.
    options, methods, variants, steps, samples, sg_samples, sg_level, seed, ig_method, gc_layer, \
occ_window, occ_stride, occ_fill, references, channels, index, batch_size, progress, spacing_mm
        As in ``explain``.
    """
    opts = from_call(options, locals())
    gen = iter_explain_targets(clf, hu, targets, opts, references=references, channels=channels, index=index,
                               batch_size=batch_size, spacing_mm=spacing_mm)
    return drive(gen, progress, ExplainCancelled)


def iter_explain(clf: Classifier, hu: np.ndarray, options: ExplainOptions | None = None, *,
                 references: np.ndarray | None = None, target: int | str | None = None, channels: bool = False,
                 index: int | None = None, batch_size: int | None = None,
                 spacing_mm: tuple[float, float, float] | None = None) -> Generator[Step, None, AttributionMaps]:
    """``explain`` as a generator: yields ``(done, total, phase)`` after each batch and returns the
    maps (``yield from`` it in a napari worker; closing it cancels between batches)."""
    opts = options or ExplainOptions()
    idx = None if target is None else [clf.card.class_index(target)]
    runs = yield from _iter_maps(clf, hu, opts, idx, references, channels, index, batch_size, spacing_mm=spacing_mm)
    return runs[0]


def iter_explain_targets(clf: Classifier, hu: np.ndarray, targets: Sequence[int | str],
                         options: ExplainOptions | None = None, *, references: np.ndarray | None = None,
                         channels: bool = False, index: int | None = None, batch_size: int | None = None,
                         spacing_mm: tuple[float, float, float] | None = None
                         ) -> Generator[Step, None, dict[str, AttributionMaps]]:
    """``explain_targets`` as a generator (see ``iter_explain``)."""
    idx = [clf.card.class_index(t) for t in targets]
    if not idx:
        raise ValueError("targets is empty: name at least one class")
    if len(set(idx)) != len(idx):
        raise ValueError(f"targets names a class twice: {list(targets)}")
    runs = yield from _iter_maps(clf, hu, options or ExplainOptions(), idx, references, channels, index, batch_size,
                                 many=True, spacing_mm=spacing_mm)
    return {clf.card.class_names[int(m.params["target"])]: m for m in runs}


def reference_inputs(clf: Classifier, references: np.ndarray | None,
                   spacing_mm: tuple[float, float, float] | None = None) -> tuple[torch.Tensor, str]:
    """EG's preprocessed reference inputs and their description (the model's default set when
    none is given). A 3D model's references are volumes (K, Z, H, W), or a list of volumes of any
    shape, taken at ``spacing_mm`` (the explained CT's) when the card resamples."""
    from ..model.demos import default_references

    source = None
    if references is None:
        found = default_references(clf)
        if found is None:
            if clf.card.is_3d:
                raise ValueError("EG needs reference volumes for this model: pass references=(K, Z, H, W) HU "
                                 "volumes or a list of volumes, e.g. other series of the training data")
            raise ValueError("EG needs reference slices for this model: pass references=(K, H, W) HU "
                             "slices, e.g. training slices or the other slices of the open volume")
        references, source = found
    if clf.card.is_3d:
        vols = list(references) if isinstance(references, (list, tuple)) else list(np.asarray(references)[None]) \
            if np.ndim(references) == 3 else list(np.asarray(references))
        if not vols or any(np.ndim(v) != 3 for v in vols):
            raise ValueError("a 3D model's EG references are HU volumes: (K, Z, H, W) or a list of (Z, H, W)")
        x = torch.cat([clf.preprocess(np.asarray(v), spacing_mm=spacing_mm) for v in vols])
        return x, source or f"{len(vols)} given volumes"
    references = np.asarray(references)
    if references.ndim == 2:
        references = references[None]
    if references.ndim != 3 or len(references) == 0:
        raise ValueError(f"references must be HU slices (K, H, W), got shape {references.shape}")
    return clf.preprocess(references), source or f"{len(references)} given slices"


def iter_explain_inputs(clf: Classifier, xs: torch.Tensor, targets: Sequence[int], options: ExplainOptions,
                        references: torch.Tensor | None = None, *, batch_size: int | None = None
                        ) -> Generator[Step, None, list[dict[tuple[str, str], torch.Tensor]]]:
    """Maps of several inputs already in the model's space, ``xs`` (n, C, *spatial), from one
    gradient plan (their evaluations share batches): per input, ``{(method, variant): map}`` on the
    model's grid, Grad-CAM's signed map under ``(GC_SIGNED, variant)``. Each input's maps equal
    ``explain``'s of that input alone with the same options (the same noisy copies and draws).
    ``references``: EG's preprocessed references (``reference_inputs``), shared by the inputs."""
    refs = None if references is None else [references] * len(xs)
    return (yield from iter_run_slices(clf, xs, [int(t) for t in targets], options, refs, batch_size=batch_size))


def _iter_maps(clf: Classifier, hu: np.ndarray, opts: ExplainOptions, idx: list[int] | None,
               references: np.ndarray | None, channels: bool, index: int | None, batch_size: int | None,
               many: bool = False, spacing_mm: tuple[float, float, float] | None = None
               ) -> Generator[Step, None, list[AttributionMaps]]:
    """The maps of one slice (a 3D model: of the volume) for the classes ``idx`` (None: the
    predicted class), one per class."""
    arr = np.asarray(hu)
    geometry = None
    if clf.card.is_3d:
        if index is not None:
            raise ValueError("a 3D model explains the whole volume: no slice index")
        geometry = clf.geometry(arr.shape, spacing_mm)
        x, shape = clf.preprocess(arr, spacing_mm=spacing_mm), arr.shape
    elif spacing_mm is not None:
        raise ValueError("spacing_mm is for 3D models (a 2D model's slice is resized to its input size)")
    elif arr.ndim == 3 and index is not None:
        x, shape = clf.preprocess(arr, index=index), arr.shape[1:]
    elif arr.ndim != 2:
        raise ValueError(f"explain takes one slice (H, W), or a volume (Z, H, W) with index=k; got shape "
                         f"{arr.shape}. Loop over a stack's slices, or use explain_volume.")
    else:
        x, shape = clf.preprocess(arr), arr.shape
    refs, ref_source = reference_inputs(clf, references, spacing_mm) if "EG" in opts.methods else (None, None)
    predicted = Predicted()  # read from the engine's first forward, not a forward of its own
    idx = idx if idx is not None else [predicted]
    if opts.uses_gradcam:  # the layer found once (by shape: a forward); the engine takes its name
        from .gradcam import layer_name

        opts = replace(opts, gc_layer=layer_name(clf, opts.gc_layer))
    params = {**opts.record(), "predicted": None, "references": ref_source,
              "model": clf.source, "model_sha256_12": clf.card.short_hash, "input_size": list(clf.card.input_size),
              "hu_window": list(clf.card.hu_window), "index": index,
              "channels": [list(w) for w in clf.card.windows], "not_computed": opts.not_computed()}
    if geometry is not None:  # the maps come back onto the CT's grid; what the crop left out is 0
        params.update(spatial_dims=3, spacing_mm=None if spacing_mm is None else list(spacing_mm),
                      outside_voxels=int(geometry.outside.sum()),
                      outside_note="CT voxels outside the model's crop hold 0 (the model never saw them)")

    def grid(m: np.ndarray | torch.Tensor) -> np.ndarray:
        """A model-space map on the CT's grid: resized back (2D), or through the card's geometry (3D)."""
        return geometry.to_ct(m) if geometry is not None else resize_map(m, shape)

    def finish(run: dict | tuple[dict, dict], t: int, with_channels: bool = channels) -> AttributionMaps:
        maps, per_channel = run if with_channels else (run, None)
        out = {key: grid(m) for key, m in maps.items() if key[0] != GC_SIGNED}
        signed = {("GC", v): grid(m) for (k, v), m in maps.items() if k == GC_SIGNED}
        chans = None if per_channel is None else {
            key: np.stack([grid(c) for c in m]) for key, m in per_channel.items() if key[0] != GC_SIGNED}
        return AttributionMaps(out, {**params, "predicted": int(predicted), "target": int(t),
                                     "target_name": clf.card.class_names[int(t)]}, chans, signed)

    def partial(plain: dict | list[dict]) -> list[AttributionMaps]:
        """The plain maps, finished like the final ones, before the SmoothGrad variants are."""
        return [finish(plain, idx[0], False)] if not many else [finish(p, t, False) for p, t in zip(plain, idx)]

    run = iter_run(clf, x, idx if many else idx[0], opts, refs, batch_size=batch_size, channels=channels,
                   seen=predicted)
    runs = yield from map_partial(run, partial)
    if not many:
        return [finish(runs, idx[0])]
    return [finish(run, t) for run, t in zip(runs, idx)]
