"""Running a study: in-process or on Dask, resumable, one JSON per finished slice (series).

Results live in ``<out>/<config key>/``: ``config.json``, ``slices/<slice>.json`` (written
atomically as each slice finishes; a re-run skips them, so Ctrl-C or a crash loses at most the
slices in flight; a changed parameter set gets another key and never mixes with old results),
then ``table.csv``, ``summary.csv``, ``fidelity.csv`` and the report.

A 3D model (card ``spatial_dims`` 3) sees whole volumes: its study's unit is the series
(``series_data``, ``series_task``), stored and resumed the same way (``slices/<series>.json``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ..progress import Progress, report
from .clock import FINISHED, STARTED
from .config import StudyConfig
from .data import SliceRef, demo_slices, folder_slices
from .series_data import SeriesRef, demo_series, folder_series
from .series_task import run_series
from .slice_task import run_slice
from .store import _finished, _ref_record, _safe, write_atomic

#: ``StudyConfig.data`` of the demo set with a planted marker on every other pair of slices (the
#: shortcut benchmark; ``study.data.demo_slices(marker=True)``).
DEMO_MARKER = "demo-marker"
#: The marked slices of that set only (the shortcut benchmark: ground truth exists only there);
#: ``slices`` counts marked slices (the first n of the set's marked ones: prefix-stable too).
DEMO_MARKED = "demo-marked"


def _phantom_task(model: str) -> str:
    """The phantom labels that fit the model's classes (its card, read without the weights)."""
    from ..model.card import ModelCard, card_path_for
    from ..model.datasets import task_of
    from ..model.demos import DEMOS, demo_weights_path

    card = ModelCard.load(card_path_for(demo_weights_path(model) if model in DEMOS else Path(model)))
    trained = (card.training or {}).get("task")
    if trained == "marker":  # the shortcut demo answers by the marker: its labels are the markers
        return trained
    try:
        return task_of(card.class_names)
    except ValueError as e:
        raise ValueError(f"the demo data set cannot label slices for this model: {e}. Use a folder with "
                         f"labels.csv (--data) instead") from None


def study_slices(cfg: StudyConfig, labels_csv: str | None = None) -> list[SliceRef]:
    """The slices of the study (demo phantom set, or the user's folder)."""
    if cfg.data == DEMO_MARKED:  # every other pair is marked: 2n + 2 slices hold n marked ones
        refs = demo_slices(2 * cfg.slices + 2, cfg.explain.seed, task=_phantom_task(cfg.model), marker=True)
        return [r for r in refs if r.marker][: cfg.slices]
    if cfg.data in ("demo", DEMO_MARKER):
        return demo_slices(cfg.slices, cfg.explain.seed, task=_phantom_task(cfg.model), marker=cfg.data == DEMO_MARKER)
    refs = folder_slices(cfg.data, labels_csv)
    return refs[: cfg.slices] if cfg.slices else refs


def study_series(cfg: StudyConfig, labels_csv: str | None = None) -> list[SeriesRef]:
    """The series of a 3D model's study (the demo set's phantom series, or the user's folder;
    ``cfg.slices`` > 0 keeps the first that many series; the demo set needs a number)."""
    if cfg.data == "demo":
        if cfg.slices <= 0:
            raise ValueError("the demo set of phantom series needs a number of series (--slices N)")
        return demo_series(cfg.slices, cfg.explain.seed, task=_phantom_task(cfg.model))
    refs = folder_series(cfg.data, labels_csv)
    return refs[: cfg.slices] if cfg.slices else refs


def _execute(pending: Sequence[SliceRef | SeriesRef], cfg: dict, device: str, batch_size: int | None, workers: int,
             scheduler: str | None, example_id: str | None,
             phase: Callable[[str, str], object] | None = None, task: Callable[..., dict] = run_slice
             ) -> Iterable[dict]:
    """Yield unit results as they finish: in-process, on a LocalCluster, or on a given scheduler
    (``task``: ``run_slice``, or ``run_series`` for a 3D model)."""
    if not workers and not scheduler:
        for ref in pending:
            tell = None if phase is None else (lambda name, sid=ref.slice_id: phase(sid, name))
            yield task(ref, cfg, device, batch_size, ref.slice_id == example_id, phase=tell)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    futures = []
    try:
        futures = [client.submit(task, ref, cfg, device, batch_size, ref.slice_id == example_id, pure=False,
                                 key=f"slice-{_safe(ref.slice_id)}") for ref in pending]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        # stopped early (Ctrl-C, a cancel, an error): what is left must not go on running on the cluster
        unfinished = [f for f in futures if not f.done()]
        if unfinished:
            client.cancel(unfinished, force=True)
        client.close()
        if cluster is not None:
            cluster.close()


def check_methods(clf, cfg: StudyConfig) -> None:
    """Refuse, before any slice runs, a Grad-CAM layer the model does not have (``ValueError``
    with the model's module names), rather than failing every slice of the study."""
    if cfg.explain.uses_gradcam:
        from ..explain.gradcam import layer_name

        layer_name(clf, cfg.explain.gc_layer)


def run_study(cfg: StudyConfig, out: str | Path, *, device: str = "auto", batch_size: int | None = None,
              workers: int = 0, scheduler: str | None = None, labels_csv: str | None = None,
              progress: Progress | None = None, on_result: Callable[[dict], object] | None = None) -> Path:
    """Run (or resume) a study; returns its results folder (``<out>/<key>``).

    ``progress(done, total, phase)`` in slices (``napari_ctinterp.progress``): first with phase
    ``STARTED`` (``done``: the slices already stored), ``"<slice id>: <phase>"`` as a slice computed
    in this process enters each phase (``"gradients"``, ``"XRAI"``, ``"fidelity"``; not reported
    from Dask workers; ``clock.split_phase`` takes it apart), ``FINISHED`` after each slice; returning
    False stops the study (``progress.Cancelled``; the finished slices are kept).
    ``on_result(result)`` gets each slice's result as it is stored.

    A 3D model's unit is the series (counted as the slices are; ``cfg.slices`` > 0: the first that
    many series): maps of the whole volume, and with ``cfg.xrai`` full / fast their region maps over
    the series' supervoxels (3D XRAI, ``series_task``)."""
    from ..model import load

    clf = load(cfg.model, device="cpu")
    check_methods(clf, cfg)
    three_d = clf.card.is_3d
    cfg = replace(cfg, model_sha256=clf.card.weights_sha256)
    refs: list = study_series(cfg, labels_csv) if three_d else study_slices(cfg, labels_csv)
    run_dir = Path(out) / cfg.key()
    legacy = Path(out) / cfg.legacy_key()
    if not run_dir.exists() and legacy.is_dir():  # a study stored before the key left out the slice count
        legacy.rename(run_dir)
    slices_dir = run_dir / "slices"
    slices_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.json", json.dumps({"config": cfg.to_dict(), "card": clf.card.to_dict()},
                                                      indent=2, default=str))
    task = functools.partial(run_series, others=tuple(r.where for r in refs)) if three_d else run_slice
    pending = [r for r in refs if not _finished(slices_dir / f"{_safe(r.slice_id)}.json", r)]
    done = [len(refs) - len(pending)]
    report(progress, done[0], len(refs), STARTED)
    example_id = refs[0].slice_id if refs else None
    by_id = {r.slice_id: r for r in refs}

    def phase(slice_id: str, name: str) -> None:
        report(progress, done[0], len(refs), f"{slice_id}: {name}")

    for res in _execute(pending, cfg.to_dict(), device, batch_size, workers, scheduler, example_id,
                        phase if progress is not None else None, task):
        example = res.pop("example", None)
        if example is not None:
            import numpy as np

            tmp = run_dir / "example_maps.tmp.npz"
            np.savez_compressed(tmp, **example)
            os.replace(tmp, run_dir / "example_maps.npz")
        sanity = res.pop("sanity", None)
        if sanity is not None:
            write_atomic(run_dir / "sanity.json", json.dumps(sanity))
        res["ref"] = _ref_record(by_id[res["slice_id"]])
        write_atomic(slices_dir / f"{_safe(res['slice_id'])}.json", json.dumps(res))
        done[0] += 1
        if on_result is not None:
            on_result(res)
        report(progress, done[0], len(refs), FINISHED)
    from .data import forget_series
    from .results import assemble

    forget_series()  # the last series read is not kept after the study
    assemble(run_dir, [r.slice_id for r in refs])
    return run_dir
