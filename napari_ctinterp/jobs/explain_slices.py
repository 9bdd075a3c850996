"""The Explain job: maps and XRAI regions of the slices asked, with each slice's domain check.

One slice of a 2D image, one slice of a volume (a 2.5D model takes its neighbours from the
volume), or several slices (one plan through ``explain_volume``: batches stay full across slices).
EG's references follow ``reference_plan``: the model's own set (``model.default_references``: the
demo models), a folder of DICOM training slices when one is chosen, the other slices of the open
volume, or none (EG is then left out, with a note).
Progress units: gradient evaluations (+ OCC's occluded images) of every slice, then one per XRAI
region map. The plain maps are done first — the one-evaluation methods' (BP, D) before IG's and
EG's, every slice's before any SmoothGrad copy (a few percent of the evaluations at the study's
settings) — and each stage is reported as the step's ``partial`` result (an ``ExplainedSlices``
without regions; with several slices, those reached so far), so a viewer can show them while the
SmoothGrad variants are computed.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..explain import (
    MIN_VOLUME_REFERENCES,
    AttributionMaps,
    ExplainOptions,
    VolumeMaps,
    folder_references,
    iter_explain,
    iter_explain_volume,
    job_size,
    volume_references,
)
from ..model import Classifier
from ..progress import Progress, Step, drive, map_partial, offset


@dataclass
class ExplainedSlices:
    """The Explain job's result: ``maps[i]`` the AttributionMaps of slice ``i`` (``None``: a 2D
    image), with ``.regions`` when XRAI ran; ``domain[i]`` that slice's out-of-domain check;
    ``note``: what was left out and why (e.g. EG without references)."""

    maps: dict[int | None, AttributionMaps]
    domain: dict = field(default_factory=dict)
    note: str = ""


def per_slice_maps(clf: Classifier, vm: VolumeMaps) -> dict[int, AttributionMaps]:
    """``explain_volume``'s maps (``full=False``: row j = slice ``vm.slices[j]``) as one
    AttributionMaps per slice, each with its own target and prediction."""
    out = {}
    for j, i in enumerate(vm.slices):
        t = vm.params["targets"][j]
        out[i] = AttributionMaps({k: m[j] for k, m in vm.items()},
                                 {**vm.params, "target": t, "target_name": clf.class_names[t],
                                  "predicted": vm.params["predicted"][j], "index": i})
    return out


def reference_plan(has_own: bool, data_shape: tuple[int, ...], folder: str | Path | None = None
                   ) -> tuple[str, Path | None]:
    """``(kind, folder)`` of EG's references: ``"demo"`` when the model brings its own set
    (``has_own``), ``"folder"`` when a folder is chosen (``ValueError`` if it is no folder),
    ``"volume"`` when the open volume has at least ``MIN_VOLUME_REFERENCES`` other slices, else
    ``"none"``."""
    if has_own:
        return "demo", None
    if folder is not None:
        path = Path(str(folder))
        if not path.is_dir():
            raise ValueError("choose the EG reference folder (DICOM slices of the model's training data)")
        return "folder", path
    if len(data_shape) == 3 and data_shape[0] - 1 >= MIN_VOLUME_REFERENCES:
        return "volume", None
    return "none", None


def without_eg_note() -> str:
    """What the job says when EG has no references."""
    return (f"EG skipped: this model has no reference slices — open a volume with more than "
            f"{MIN_VOLUME_REFERENCES} slices or choose a reference folder. ")


def check_scope(options: ExplainOptions, n_slices: int) -> None:
    """``ValueError`` for options that cannot run over ``n_slices`` slices (Occlusion: one at a time)."""
    if "OCC" in options.methods and n_slices > 1:
        raise ValueError("OCC (Occlusion) explains one slice at a time: choose 'current slice', "
                         "or leave OCC out for several slices")


def job_units(options: ExplainOptions, input_size: Sequence[int], n_slices: int, xrai: str = "off") -> int:
    """Progress units of the job: per slice the plan's gradient evaluations + OCC's occluded
    images, + one per XRAI region map (``ValueError`` for options the engine refuses)."""
    per_slice = job_size(options, tuple(input_size))
    regions = 0 if xrai == "off" else len(options.pairs())
    return (per_slice + regions) * n_slices


def explain_slices(clf: Classifier, data: np.ndarray, indices: Sequence[int | None], options: ExplainOptions, *,
                   folder: str | Path | None = None, target: int | str | None = None, xrai: str = "off",
                   batch_size: int | None = None, progress: Progress | None = None) -> ExplainedSlices:
    """``iter_explain_slices`` run to its end, telling ``progress(done, total, phase)``."""
    return drive(iter_explain_slices(clf, data, indices, options, folder=folder, target=target, xrai=xrai,
                                     batch_size=batch_size), progress)


def iter_explain_slices(clf: Classifier, data: np.ndarray, indices: Sequence[int | None], options: ExplainOptions,
                        *, folder: str | Path | None = None, target: int | str | None = None, xrai: str = "off",
                        batch_size: int | None = None) -> Generator[Step, None, ExplainedSlices]:
    """Maps (and XRAI regions) of the slices ``indices`` of ``data``, as a generator of progress.

    Parameters
    ----------
    clf : Classifier
        The model (``model.load``).
    data : numpy.ndarray
        A slice (H, W) — then ``indices == [None]`` — or a volume (Z, H, W) in HU.
    indices : sequence of int or None
        The slices to explain; several slices run as one plan (OCC is refused there).
    options : ExplainOptions
        Methods, variants and settings; EG is left out (with a note) when it has no references
        (``reference_plan``; ``ValueError`` when EG is the only method).
    folder : path, optional
        A DICOM folder of the model's training slices, as EG's references.
    target : int or str, optional
        The class explained (default: each slice's predicted class).
    xrai : {"off", "full", "fast"}
        XRAI region maps of every map's absolute values (``xrai.region_map``).
    batch_size : int, optional
        Gradient batch (and the domain check's forward batch; 32 when None).

    Returns
    -------
    ExplainedSlices
    """
    from ..model import default_references
    from ..xrai import region_map, segment

    indices = list(indices)
    if clf.card.is_3d:
        raise ValueError("this is a 3D model: it sees the whole volume, so it has no slice range; explain the whole "
                         "volume with jobs.iter_explain_3d(clf, volume, options, spacing_mm=...) "
                         "(or explain.explain(clf, volume))")
    note = ""
    references, folder = reference_plan(default_references(clf) is not None, np.shape(data), folder) \
        if "EG" in options.methods else ("demo", None)
    if references == "none":
        note = without_eg_note()
        methods = tuple(m for m in options.methods if m != "EG")
        if not methods:
            raise ValueError(note)
        options = replace(options, methods=methods)
    check_scope(options, len(indices))
    per_slice = job_size(options, tuple(clf.card.input_size))
    total = job_units(options, clf.card.input_size, len(indices), xrai)
    # the domain check of each explained slice: one batched forward pass, no gradients
    if indices == [None]:
        domain = {None: clf.domain_check(data)}
    else:
        domain = dict(zip(indices, clf.domain_checks(data, indices, batch_size=batch_size or 32)))
    folder_refs = folder_references(folder) if references == "folder" else None
    results: dict = {}
    if len(indices) > 1:  # several slices: one plan, shared batches
        refs_arg = {"volume": lambda k: volume_references(data, k), "folder": folder_refs}.get(references)
        run = iter_explain_volume(clf, data, options, slices=indices, references=refs_arg, target=target,
                                  batch_size=batch_size, full=False, plain_first=True)
        # the plain maps arrive first, stage by stage (``Step.partial``: the slices reached so far)
        shown = map_partial(run, lambda vm: ExplainedSlices(maps=per_slice_maps(clf, vm), domain=domain, note=note))
        results.update(per_slice_maps(clf, (yield from offset(shown, 0, total))))
    base = per_slice * len(indices) if len(indices) > 1 else 0
    for i in indices:
        slice_hu = data if i is None else data[i]
        if len(indices) == 1:
            refs = {"volume": lambda: volume_references(data, i), "folder": lambda: folder_refs}.get(
                references, lambda: None)()
            if clf.card.is_2_5d and i is not None:  # neighbouring-slice channels come from the volume
                step = iter_explain(clf, data, options, index=i, references=refs, target=target,
                                    batch_size=batch_size)
            else:
                step = iter_explain(clf, slice_hu, options, references=refs, target=target, batch_size=batch_size)
            # the plain maps arrive first (``Step.partial``), as this job's partial result
            shown = map_partial(step, lambda maps, i=i: ExplainedSlices(maps={i: maps[0]}, domain=domain, note=note))
            results[i] = yield from offset(shown, base, total)
            base += per_slice
        maps = results[i]
        if xrai != "off":
            seg = segment(slice_hu)
            maps.regions = {}
            for key, m in maps.items():
                reg = region_map(np.abs(m), seg, algorithm=xrai)
                maps.regions[key] = (reg.values, reg.ranks)
                base += 1
                yield Step(base, total, "XRAI")
    return ExplainedSlices(maps=results, domain=domain, note=note)
