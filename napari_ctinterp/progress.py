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

from collections.abc import Generator
from typing import NamedTuple, Protocol, TypeVar

T = TypeVar("T")


class Progress(Protocol):
    """``progress(done, total, phase) -> bool | None``; ``False`` cancels (see the module)."""

    def __call__(self, done: int, total: int, phase: str, /) -> bool | None: ...


class Step(NamedTuple):
    """One progress report of a generator job."""

    done: int
    total: int
    phase: str = ""


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
    try:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            done, own_total, own_phase = (*step, "")[:3]
            yield Step(base + int(done), int(own_total if total is None else total),
                       own_phase if phase is None else phase)
    finally:
        gen.close()
