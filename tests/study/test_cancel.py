"""Stopping a study through its progress callable keeps the finished slices and stores nothing of
the slice in flight; running it again computes only what is missing."""

from __future__ import annotations

import json

import pytest

from napari_ctinterp.progress import Cancelled
from napari_ctinterp.study import StudyConfig, run_study
from napari_ctinterp.study.clock import FINISHED, STARTED, split_phase

TINY = dict(slices=2, methods=("BP",), variants=("plain",), xrai="off", fidelity_step=50.0)


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
