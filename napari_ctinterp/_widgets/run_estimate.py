"""The line under the Explain button: how big the run the controls ask for is, and how long it
will take here, before it starts (``jobs.estimate``: the pace of this model's earlier runs on this
machine); each finished run records its own pace."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..explain import ExplainOptions
from .dock_layout import wrapping_label


class RunEstimate:
    """The estimate line (``label``) and the pace of the run in progress."""

    def __init__(self) -> None:
        self.label = wrapping_label()
        self._running: tuple[str, int, float] | None = None  # (cost key, units, start)

    def show(self, opts: ExplainOptions, n_slices: int, input_size: Sequence[int], xrai: str, key: str, *,
             volume: bool = False) -> None:
        """Say the size and the time of a run with these settings (``volume``: a 3D model's run of
        the whole volume; its time is guessed from the other models' pace by input voxels until
        it has run here once)."""
        from ..jobs import estimate_text, guessed_unit_cost, job_units, job_units_3d, unit_cost

        units = job_units_3d(opts, input_size, xrai) if volume else job_units(opts, input_size, n_slices, xrai)
        unit = "gradients" + (f" + occluded {'volumes' if volume else 'images'}" if "OCC" in opts.methods else "") + \
            (" + regions" if xrai != "off" else "")
        cost = unit_cost(key)
        self.label.value = estimate_text(units, unit, n_slices, cost, volume=volume,
                                         guess=guessed_unit_cost(key) if cost is None else None)

    def clear(self) -> None:
        """No run is possible with the controls as they are."""
        self.label.value = ""

    def started(self, key: str, units: int) -> None:
        """A run of ``units`` began now."""
        self._running = (key, int(units), time.perf_counter())

    def finished(self) -> None:
        """The run ended with every map: remember its pace for the next estimate."""
        from ..jobs import record_run

        if self._running is not None:
            key, units, t0 = self._running
            record_run(key, units, time.perf_counter() - t0)
        self._running = None
