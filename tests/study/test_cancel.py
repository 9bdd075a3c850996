"""Stopping a study through its progress callable keeps the finished slices and stores nothing of
the slice in flight; running it again computes only what is missing."""

from __future__ import annotations

import json

import pytest

from napari_ctinterp.progress import Cancelled
from napari_ctinterp.study import StudyConfig, run_study
from napari_ctinterp.study.clock import FINISHED, STARTED, split_phase

TINY = dict(slices=2, methods=("BP",), variants=("plain",), xrai="off", fidelity_step=50.0,
            metrics=())  # the scores beyond the paper are tested elsewhere: not here, for CI's time


def test_a_study_stopped_in_a_slice_keeps_the_finished_ones_and_resumes(tmp_path):
    seen = []

    def stop_in_second_slice(done: int, total: int, phase: str) -> bool:
        seen.append((done, total, phase))
        return not (done == 1 and split_phase(phase)[1] == "gradients")

    with pytest.raises(Cancelled):
        run_study(StudyConfig(**TINY), tmp_path, device="cpu", progress=stop_in_second_slice)
    assert seen[0] == (0, 2, STARTED) and (1, 2, FINISHED) in seen
    stored = list(tmp_path.glob("*/slices/*.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["error"] is None  # nothing of slice 2

    phases = []
    run_dir = run_study(StudyConfig(**TINY), tmp_path, device="cpu",
                        progress=lambda d, t, p: phases.append((d, t, p)))
    assert phases[0] == (1, 2, STARTED) and phases[-1] == (2, 2, FINISHED)
    assert sum(p == FINISHED for _, _, p in phases) == 1  # only the missing slice was computed
    rows = [json.loads(f.read_text()) for f in (run_dir / "slices").glob("*.json")]
    assert len(rows) == 2 and all(r["error"] is None for r in rows)


def test_a_study_asked_for_more_slices_computes_only_the_new_ones(tmp_path):
    first = run_study(StudyConfig(**TINY), tmp_path, device="cpu")
    events = []
    grown = run_study(StudyConfig(**{**TINY, "slices": 4}), tmp_path, device="cpu",
                      progress=lambda d, t, p: events.append((d, t, p)))
    assert grown == first  # one folder: the slice count is not part of the key
    assert events[0] == (2, 4, STARTED) and sum(p == FINISHED for _, _, p in events) == 2  # 2 new slices
    table = json.loads((grown / "accuracy.json").read_text())
    assert table["n"] == 4 and len(list((grown / "slices").glob("*.json"))) == 4


def test_a_study_stored_under_its_former_key_is_found_and_resumed(tmp_path):
    cfg = StudyConfig(**TINY)
    run_dir = run_study(cfg, tmp_path, device="cpu")
    legacy = run_dir.with_name(StudyConfig(**{**TINY, "model_sha256": json.loads(
        (run_dir / "config.json").read_text())["config"]["model_sha256"]}).legacy_key())
    run_dir.rename(legacy)  # as a study made before 2026-12-05 was stored
    events = []
    again = run_study(cfg, tmp_path, device="cpu", progress=lambda d, t, p: events.append(p))
    assert again == run_dir and again.is_dir() and not legacy.exists()
    assert FINISHED not in events  # every slice was already there


def test_ctrl_c_prints_one_line_saying_what_is_kept(monkeypatch, capsys):
    import napari_ctinterp.study as study
    from napari_ctinterp.cli import main

    def interrupted(cfg, out, *, progress=None, **_kw):
        progress(1, 4, STARTED)
        progress(1, 4, "phantom-1: gradients")
        progress(2, 4, FINISHED)
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_study", interrupted)
    code = main(["study", "--demo", "--slices", "4"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 130 and err[-1] == "interrupted: 2 of 4 slices kept; run the same command to resume", err[-3:]
    assert not any("Traceback" in line for line in err)


def test_a_worker_lost_mid_study_costs_only_its_slice(tmp_path):
    """A Dask worker killed while the study runs: its slice is computed again elsewhere, the study
    ends with every slice and no error row."""
    import os
    import signal

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)
        killed = []

        def kill_one(done: int, total: int, phase: str) -> None:
            if phase == FINISHED and not killed:
                victim = next(iter(pids.values()))
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        run_dir = run_study(StudyConfig(**{**TINY, "slices": 4}), tmp_path, device="cpu",
                            scheduler=cluster.scheduler_address, progress=kill_one)
    assert killed
    rows = [json.loads(f.read_text()) for f in (run_dir / "slices").glob("*.json")]
    assert len(rows) == 4 and all(r["error"] is None for r in rows)
