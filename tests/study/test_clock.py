"""The study's progress line: phase of the current slice and an ETA from this run's pace."""

from __future__ import annotations

from napari_ctinterp.study.clock import StudyClock


def test_eta_counts_only_slices_computed_in_this_run():
    clock = StudyClock()
    clock.begin(done=2, total=10, now=100.0)  # two slices resumed from disk
    assert clock.eta(100.0) is None and "ETA after the first slice" in clock.line(100.0)
    clock.enter("phantom-7", "gradients")
    assert clock.line(130.0).startswith("slice 3/10 phantom-7: gradients")
    clock.enter("phantom-7", "fidelity")
    clock.finished(done=3, now=160.0)  # one slice in 60 s: seven left
    assert clock.eta(160.0) == 7 * 60.0
    assert "ETA 7 min 00 s" in clock.line(160.0) and "fidelity" not in clock.line(160.0)
    clock.finished(done=5, now=220.0)  # two Dask workers finished two more: 3 slices in 120 s
    assert clock.eta(220.0) == 5 * 40.0


def test_finished_study_shows_no_current_slice():
    clock = StudyClock()
    clock.begin(done=0, total=1, now=0.0)
    clock.finished(done=1, now=5.0)
    assert clock.line(5.0) == "ETA 0 s"


def test_the_clock_starts_at_the_first_slice_s_first_phase():
    clock = StudyClock()
    clock.begin(done=0, total=3, now=0.0)
    clock.enter("a", "gradients", now=20.0)  # 20 s of model loading and planning before it
    clock.enter("a", "fidelity", now=50.0)
    clock.finished(done=1, now=80.0)
    clock.enter("b", "gradients", now=80.0)  # later slices do not restart it
    assert clock.eta(80.0) == 2 * 60.0
