"""A study's progress line: the slice being computed, its phase, and an ETA from this run's pace.

The ETA counts only the slices computed in this run (resumed slices cost nothing) and divides the
time since the first of them started by their number, so with Dask workers it is the pool's pace,
not one slice's time. Times are passed in (``now``), so the arithmetic is tested without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..progress import duration_text

#: ``phase`` of a study's progress (``run_study``) when it starts (``done`` = slices already
#: stored) and after each slice; between them ``"<slice id>: <phase>"`` as a slice computed in this
#: process enters ``gradients``, ``XRAI``, ``fidelity`` (and ``sanity``).
STARTED, FINISHED = "started", "slice finished"


def split_phase(phase: str) -> tuple[str, str]:
    """``"<slice id>: <phase>"`` → (slice id, phase); ("", phase) for the study's own phases."""
    sid, sep, name = phase.rpartition(": ")
    return (sid, name) if sep else ("", phase)


@dataclass
class StudyClock:
    """Where a study stands.

    Attributes
    ----------
    total : int
        Slices in the study.
    done : int
        Slices finished (resumed ones included).
    computed : int
        Slices finished by this run.
    started : float or None
        When this run's first slice started.
    slice_id, phase : str
        The slice being computed in this process and its phase (empty if not known, e.g. on Dask).
    """

    total: int = 0
    done: int = 0
    computed: int = 0
    started: float | None = None
    slice_id: str = ""
    phase: str = ""
    _entered: bool = False

    def begin(self, done: int, total: int, now: float) -> None:
        """The study starts (or resumes) with ``done`` of ``total`` slices already finished."""
        self.done, self.total, self.started = done, total, now

    def enter(self, slice_id: str, phase: str, now: float | None = None) -> None:
        """A slice enters a phase (``gradients``, ``XRAI``, ``fidelity``). The first phase of this
        run's first slice restarts the clock (given ``now``): loading the model, the data set's
        plan and the slice's first forward pass are not a slice's pace."""
        if now is not None and self.computed == 0 and not self._entered:
            self.started = now
        self._entered = True
        self.slice_id, self.phase = slice_id, phase

    def finished(self, done: int, now: float) -> None:
        """A slice finished; ``done`` of ``total`` are now."""
        del now  # the pace is measured from ``started`` at each query
        self.computed += max(0, done - self.done)
        self.done = done
        self.slice_id = self.phase = ""  # the next slice is named when it enters its first phase

    def update(self, done: int, total: int, phase: str, now: float) -> None:
        """Follow ``run_study``'s progress protocol: ``STARTED``, ``"<slice id>: <phase>"``,
        ``FINISHED``."""
        if phase == STARTED:
            self.begin(done, total, now)
        elif phase == FINISHED:
            self.finished(done, now)
        else:
            self.enter(*split_phase(phase), now)

    def eta(self, now: float) -> float | None:
        """Seconds left, or None before the first computed slice."""
        if not self.computed or self.started is None:
            return None
        return (now - self.started) / self.computed * max(0, self.total - self.done)

    def line(self, now: float) -> str:
        """``slice 2/8 phantom-12: fidelity · ETA 4 min 10 s`` (what the progress bar shows)."""
        parts = []
        if self.done < self.total:
            what = f"slice {self.done + 1}/{self.total}"
            if self.slice_id:
                what += f" {self.slice_id}"
            if self.phase:
                what += f": {self.phase}"
            parts.append(what)
        eta = self.eta(now)
        parts.append("ETA after the first slice" if eta is None else f"ETA {duration_text(eta)}")
        return " · ".join(parts)
