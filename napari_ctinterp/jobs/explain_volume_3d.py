"""The Explain job of a 3D model: maps of the whole volume (and XRAI over supervoxels), with the
volume's domain check.

A 3D model (card ``spatial_dims`` 3) sees the whole CT volume at once: there is no slice range,
the volume is the input, and every map is one (Z, H, W) array on the CT's grid (``explain.explain``
of a 3D classifier: the inverse of the card's resize / resampling and crop; 0 where the model saw no
CT voxel). Progress units are gradient evaluations of the volume (+ OCC's occluded volumes), then
one per XRAI region map; the plain maps come first and each stage is the step's ``partial`` result
(an ``ExplainedVolume`` without regions), as the 2D job's. EG's references are the model's own set
(the 3D demo's phantom volumes); a model without one has EG left out, with a note.

XRAI of a 3D map needs 3D supervoxels (``xrai.segment(volume, spacing_mm=...)``);
``xrai_3d_available`` says whether this installation's ``xrai.segment`` takes a volume.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..explain import ExplainOptions, iter_explain, job_size
from ..model import Classifier
from ..progress import Progress, Step, drive, map_partial, offset
from .explain_slices import ExplainedSlices


@dataclass
class ExplainedVolume(ExplainedSlices):
    """The Explain job's result for a 3D model: ``maps[None]`` the volume's AttributionMaps, each
    map (Z, H, W) on the CT's grid (``.regions`` when XRAI ran: (values, ranks), each (Z, H, W));
    ``domain[None]`` the volume's out-of-domain check; ``note`` what was left out and why;
    ``spacing_mm`` the CT's (z, y, x) spacing the model was given; ``outside`` the CT voxels
    outside the model's crop (bool (Z, H, W); None when it saw them all)."""

    spacing_mm: tuple[float, float, float] | None = None
    outside: np.ndarray | None = None

    @property
    def volume_maps(self):
        """The volume's AttributionMaps (``maps[None]``)."""
        return self.maps[None]


def xrai_3d_available() -> bool:
    """Whether ``xrai.segment`` takes a volume (3D supervoxels, ``spacing_mm=``) here."""
    from ..xrai import segment

    return "spacing_mm" in inspect.signature(segment).parameters


def job_units_3d(options: ExplainOptions, input_size: Sequence[int], xrai: str = "off") -> int:
    """Progress units of a 3D model's Explain job: the plan's gradient evaluations of the volume +
    OCC's occluded volumes, + one per XRAI region map."""
    return job_size(options, tuple(input_size)) + (0 if xrai == "off" else len(options.pairs()))


def without_eg_note_3d() -> str:
    """What the job says when a 3D model has no reference volumes for EG."""
    return ("EG skipped: this 3D model has no reference volumes (from Python: explain.explain(clf, volume, "
            "references=[other series of its training data])). ")


def explain_3d(clf: Classifier, volume: np.ndarray, options: ExplainOptions, *,
               spacing_mm: tuple[float, float, float] | None = None, target: int | str | None = None,
               xrai: str = "off", batch_size: int | None = None, progress: Progress | None = None) -> ExplainedVolume:
    """``iter_explain_3d`` run to its end, telling ``progress(done, total, phase)``."""
    return drive(iter_explain_3d(clf, volume, options, spacing_mm=spacing_mm, target=target, xrai=xrai,
                                 batch_size=batch_size), progress)


def check_volume(clf: Classifier, volume: np.ndarray, spacing_mm: tuple[float, float, float] | None) -> None:
    """``ValueError`` saying what to open when ``volume`` cannot be a 3D model's input (one slice,
    too few slices, a thumbnail, no spacing where the card resamples to one, NaN voxels)."""
    name = clf.card.name or clf.source or "this model"
    if not clf.card.is_3d:
        raise ValueError(f"{name} is not a 3D model: explain its slices with jobs.iter_explain_slices")
    try:
        clf.geometry(np.shape(volume), spacing_mm)
    except ValueError as e:
        raise ValueError(f"{name} is a 3D model (it sees the whole volume): {e}") from e
    bad = int(np.count_nonzero(~np.isfinite(np.asarray(volume))))
    if bad:
        raise ValueError(f"the volume has {bad} NaN/inf voxels (unreadable slices?): a 3D model needs every slice "
                         "of the series")


def iter_explain_3d(clf: Classifier, volume: np.ndarray, options: ExplainOptions, *,
                    spacing_mm: tuple[float, float, float] | None = None, target: int | str | None = None,
                    xrai: str = "off", batch_size: int | None = None) -> Generator[Step, None, ExplainedVolume]:
    """Maps (and XRAI regions) of a 3D model over the whole ``volume``, as a generator of progress.

    Parameters
    ----------
    clf : Classifier
        A 3D model (``clf.card.is_3d``).
    volume : numpy.ndarray
        The CT (Z, H, W) in HU (at least ``model.volume_input.MIN_SLICES`` slices).
    options : ExplainOptions
        Methods, variants and settings; EG is left out (with a note) when the model has no
        reference volumes (``ValueError`` when EG is the only method).
    spacing_mm : tuple of float, optional
        The CT's (z, y, x) spacing in mm (needed when the card resamples to a spacing).
    target : int or str, optional
        The class explained (default: the predicted class).
    xrai : {"off", "full", "fast"}
        XRAI region maps of every map's absolute values over 3D supervoxels
        (``ValueError`` when ``xrai.segment`` takes no volume here: ``xrai_3d_available``).
    batch_size : int, optional
        Gradient batch (default from free memory).

    Yields
    ------
    Step
        ``(done, total, phase, partial)``; ``partial``: an ``ExplainedVolume`` of the plain maps
        finished so far.

    Returns
    -------
    ExplainedVolume
    """
    from ..model import default_references

    check_volume(clf, volume, spacing_mm)
    if xrai != "off" and not xrai_3d_available():
        raise ValueError("3D XRAI (supervoxels) is not available in this version: choose XRAI off for a 3D model")
    vol = np.asarray(volume, dtype=np.float32)
    sp = None if spacing_mm is None else tuple(float(v) for v in spacing_mm)
    note = ""
    if "EG" in options.methods and default_references(clf) is None:
        note = without_eg_note_3d()
        methods = tuple(m for m in options.methods if m != "EG")
        if not methods:
            raise ValueError(note)
        options = replace(options, methods=methods)
    total = job_units_3d(options, clf.card.input_size, xrai)
    outside = clf.geometry(vol.shape, sp).outside  # voxels the model never saw: in no region (as the study)
    outside = outside if outside.any() else None
    domain = {None: clf.domain_check(vol, spacing_mm=sp, batch_size=batch_size or 32)}  # one forward, no gradient
    run = iter_explain(clf, vol, options, target=target, batch_size=batch_size, spacing_mm=sp)
    # the plain maps arrive first (``Step.partial``), as this job's partial result
    shown = map_partial(run, lambda maps: ExplainedVolume(maps={None: maps[0]}, domain=domain, note=note,
                                                           spacing_mm=sp, outside=outside))
    maps = yield from offset(shown, 0, total)
    done = job_size(options, tuple(clf.card.input_size))
    if xrai != "off":
        from ..xrai import region_map, segment

        seg = segment(vol, spacing_mm=sp)  # type: ignore[call-arg]  # 3D supervoxels (xrai_3d_available)
        maps.regions = {}
        for key, m in maps.items():
            reg = region_map(np.abs(m), seg, algorithm=xrai, outside=outside)
            maps.regions[key] = (reg.values, reg.ranks)
            done += 1
            yield Step(done, total, "XRAI")
    return ExplainedVolume(maps={None: maps}, domain=domain, note=note, spacing_mm=sp, outside=outside)
