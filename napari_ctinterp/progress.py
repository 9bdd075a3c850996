"""The one progress protocol of every long job (explain, explain_volume, fidelity, XRAI, study,
training, domain fitting).

A job takes ``progress``, a callable ``progress(done, total, phase)``:

- ``done`` / ``total`` — units finished and units in all (gradient evaluations, images, slices,
  training steps: each job says which in its docstring); ``total`` may grow once a job learns more;
- ``phase`` — a short word for what runs now (``"gradients"``, ``"XRAI"``, ``"fidelity"``,
  ``"train"``, …; ``""`` when a job has one phase);
- returning ``False`` asks the job to stop: it raises :class:`Cancelled` at its next step (any other
  return value, ``None`` included, lets it go on).

Generators of the core (``explain.iter_explain``, …) yield :class:`Step` tuples of the same three
fields, so a napari worker can ``yield from`` them and cancel between steps; :func:`drive` runs
such a generator with a ``progress`` callable. The CLI's tqdm bars (``cli``) and the widgets'
progress bars (``_widgets``) adapt this one type. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import NamedTuple, Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    """``progress(done, total, phase) -> bool | None``; ``False`` cancels (see the module)."""

    def __call__(self, done: int, total: int, phase: str, /) -> bool | None: ...


class Step(NamedTuple):
    """One progress report of a generator job; ``partial``: results finished so far, when a job
    shows them before it ends (the plain maps before their SmoothGrad variants), else None."""

    done: int
    total: int
    phase: str = ""
    partial: object = None


class Cancelled(RuntimeError):
    """A job stopped because its ``progress`` callable returned False."""


def report(progress: Progress | None, done: int, total: int, phase: str = "") -> None:
    """Tell ``progress``; raise :class:`Cancelled` when it answers False."""
    if progress is not None and progress(int(done), int(total), phase) is False:
        raise Cancelled(f"cancelled at {done} of {total}{f' ({phase})' if phase else ''}")


def drive(gen: Generator[tuple, None, T], progress: Progress | None,
          cancelled: type[Cancelled] = Cancelled) -> T:
    """Run a generator job to its return value, telling ``progress`` at each yielded step.

    A step is ``(done, total)`` or ``(done, total, phase)``. When ``progress`` returns False the
    generator is closed (its ``finally`` blocks run) and ``cancelled`` is raised.
    """
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        done, total, phase = (*step, "")[:3]
        if progress is not None and progress(int(done), int(total), phase) is False:
            gen.close()
            raise cancelled(f"cancelled at {done} of {total}{f' ({phase})' if phase else ''}")


def offset(gen: Generator[tuple, None, T], base: int, total: int | None = None,
           phase: str | None = None) -> Generator[Step, None, T]:
    """Re-yield ``gen``'s steps as part of a larger job: ``(base + done, total or its own, phase)``;
    returns ``gen``'s value. Closing this generator closes ``gen`` (cancel between steps)."""
    return _relay(gen, lambda s: Step(base + s.done, s.total if total is None else int(total),
                                      s.phase if phase is None else phase, s.partial))


def map_partial(gen: Generator[tuple, None, T], convert: Callable[[object], object]) -> Generator[Step, None, T]:
    """``gen``'s steps with each ``partial`` result passed through ``convert`` (e.g. accumulators
    → maps); returns ``gen``'s value. Closing this generator closes ``gen``."""
    return _relay(gen, lambda s: s if s.partial is None else s._replace(partial=convert(s.partial)))


def _relay(gen: Generator[tuple, None, T], transform: Callable[[Step], Step]) -> Generator[Step, None, T]:
    """``gen``'s steps (``(done, total[, phase[, partial]])``) as ``Step``s through ``transform``;
    returns ``gen``'s value and closes ``gen`` when closed itself."""
    try:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            done, total, phase, partial = (*step, "", None)[:4]
            yield transform(Step(int(done), int(total), phase, partial))
    finally:
        gen.close()


def duration_text(seconds: float) -> str:
    """``"42 s"``, ``"4 min 10 s"``, ``"2 h 21 min"`` (progress lines and estimates)."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
