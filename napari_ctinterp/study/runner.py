"""Running a study: in-process or on Dask, resumable, one JSON per finished slice.

Results live in ``<out>/<config key>/``: ``config.json``, ``slices/<slice>.json`` (written
atomically as each slice finishes; a re-run skips them, so Ctrl-C or a crash loses at most the
slices in flight; a changed parameter set gets another key and never mixes with old results),
then ``table.csv``, ``summary.csv``, ``fidelity.csv`` and the report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

from .config import StudyConfig
from .data import SliceRef, demo_slices, folder_slices
from .slice_task import run_slice


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _ref_record(ref: SliceRef) -> dict:
    """What a slice's stored result was computed from (its label, file, slice and mask)."""
    return {k: v for k, v in asdict(ref).items() if k != "phase" or ref.source == "phantom"}


def _finished(path: Path, ref: SliceRef) -> bool:
    """Whether ``path`` holds this slice's result for the same inputs: a slice whose label, file,
    index or mask changed in labels.csv since (same config key) is computed again, not reused."""
    if not path.exists():
        return False
    try:
        stored = json.loads(path.read_text()).get("ref")
    except (OSError, ValueError):
        return False  # a damaged file: compute again
    return stored is None or stored == _ref_record(ref)  # results from before refs were stored: kept


def _phantom_task(model: str) -> str:
    """The phantom labels that fit the model's classes (its card, read without the weights)."""
    from ..model.card import ModelCard, card_path_for
    from ..model.datasets import task_of
    from ..model.loading import DEMOS, demo_weights_path

    card = ModelCard.load(card_path_for(demo_weights_path(model) if model in DEMOS else Path(model)))
    try:
        return task_of(card.class_names)
    except ValueError as e:
        raise ValueError(f"the demo data set cannot label slices for this model: {e}. Use a folder with "
                         f"labels.csv (--data) instead") from None


def study_slices(cfg: StudyConfig, labels_csv: str | None = None) -> list[SliceRef]:
    """The slices of the study (demo phantom set, or the user's folder)."""
    if cfg.data == "demo":
        return demo_slices(cfg.slices, cfg.seed, task=_phantom_task(cfg.model))
    refs = folder_slices(cfg.data, labels_csv)
    return refs[: cfg.slices] if cfg.slices else refs


def _execute(pending: list[SliceRef], cfg: dict, device: str, batch_size: int | None, workers: int,
             scheduler: str | None, example_id: str | None,
             phase: Callable[[str, str], object] | None = None) -> Iterable[dict]:
    """Yield slice results as they finish: in-process, on a LocalCluster, or on a given scheduler."""
    if not workers and not scheduler:
        for ref in pending:
            tell = None if phase is None else (lambda name, sid=ref.slice_id: phase(sid, name))
            yield run_slice(ref, cfg, device, batch_size, ref.slice_id == example_id, phase=tell)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_slice, ref, cfg, device, batch_size, ref.slice_id == example_id, pure=False,
                                 key=f"slice-{_safe(ref.slice_id)}") for ref in pending]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_methods(clf, cfg: StudyConfig) -> None:
    """Refuse, before any slice runs, a Grad-CAM layer the model does not have (``ValueError``
    with the model's module names), rather than failing every slice of the study."""
    if {"GC", "GGC"} & set(cfg.methods):
        from ..explain.gradcam import layer_name

        layer_name(clf, cfg.gc_layer)


def run_study(cfg: StudyConfig, out: str | Path, *, device: str = "auto", batch_size: int | None = None,
              workers: int = 0, scheduler: str | None = None, labels_csv: str | None = None,
              progress: Callable[[int, int, dict | None], object] | None = None,
              phase: Callable[[str, str], object] | None = None) -> Path:
    """Run (or resume) a study; returns its results folder (``<out>/<key>``).

    ``progress(done, total, result)`` after each slice (first with ``result`` None: the slices
    already done); ``phase(slice_id, name)`` as a slice computed in this process enters each phase
    (``"gradients"``, ``"XRAI"``, ``"fidelity"``; not reported from Dask workers)."""
    from ..model import load

    clf = load(cfg.model, device="cpu")
    check_methods(clf, cfg)
    cfg = replace(cfg, model_sha256=clf.card.weights_sha256)
    run_dir = Path(out) / cfg.key()
    slices_dir = run_dir / "slices"
    slices_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.json", json.dumps({"config": cfg.to_dict(), "card": clf.card.to_dict()},
                                                      indent=2, default=str))
    refs = study_slices(cfg, labels_csv)
    pending = [r for r in refs if not _finished(slices_dir / f"{_safe(r.slice_id)}.json", r)]
    if progress:
        progress(len(refs) - len(pending), len(refs), None)
    n_done = len(refs) - len(pending)
    example_id = refs[0].slice_id if refs else None
    by_id = {r.slice_id: r for r in refs}
    for res in _execute(pending, cfg.to_dict(), device, batch_size, workers, scheduler, example_id, phase):
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
        n_done += 1
        if progress:
            progress(n_done, len(refs), res)
    from .data import forget_series
    from .results import assemble

    forget_series()  # the last series read is not kept after the study
    assemble(run_dir, [r.slice_id for r in refs])
    return run_dir
