"""The Explain widget with a 3D model: the controls it takes and its run over the whole volume.

A 3D model sees the whole volume: the slice choice and EG's reference choice are hidden (a note
says why: the volume is the input; EG uses the model's own reference volumes or is left out), the
methods, variants and target stay; XRAI is offered where 3D supervoxels are
(``jobs.xrai_3d_available``), else off and disabled with a tooltip. The run is one job,
``jobs.iter_explain_3d``, in a background worker with the 2D run's progress, Cancel, partial plain
maps and layers (``explain_layers``: each map one (Z, H, W) layer placed as the CT).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import napari
import numpy as np

from ..explain import ExplainOptions
from ..jobs import ExplainedSlices
from ..progress import Step
from .layer_choice import unreadable_slices
from .volume_model import layer_spacing_mm, volume_refusal
from .workers import start_worker

#: The note in place of the slice choice when the model is 3D.
VOLUME_NOTE = "a 3D model explains the whole volume: no slice range (the volume is the model's input)"
#: The XRAI field's tooltip while 3D supervoxels are not available.
XRAI_3D_COMING = "3D XRAI: coming (XRAI over 3D supervoxels); a 3D model's maps are made without XRAI regions"
XRAI_TOOLTIP = "XRAI ranked regions of each map: full (PAIR's), fast, or off"


def elide_combo(combo: Any, chars: int = 14) -> None:
    """A combo box sized to ``chars`` characters, not to its longest choice (a map's name over a CT
    called "phantom volume · arterial (24 slices)" widened the dock past the screen)."""
    from qtpy.QtWidgets import QComboBox

    native = combo.native
    if isinstance(native, QComboBox):
        native.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        native.setMinimumContentsLength(chars)


class Explain3D:
    """The ``ExplainWidget``'s 3D-model behaviour (a mixin: it uses the widget's controls)."""

    def _model_kind(self, *_: Any) -> None:
        """Show the controls the chosen model takes: a 3D model has no slice choice and no EG
        reference choice (its own reference volumes, or EG left out), and XRAI only where 3D
        supervoxels are available."""
        from ..jobs import xrai_3d_available

        three_d = self.picker.is_3d()
        self.scope.visible = not three_d
        self.volume_note.value = VOLUME_NOTE
        self.volume_note.visible = three_d
        self.slice_range.visible = not three_d and self.scope.value == "slice range"
        self.scope_mask.visible = not three_d and self.scope.value == "slices with mask"
        self.references.visible = not three_d
        self.ref_folder.visible = not three_d and self.references.value == "folder…"
        if three_d and not xrai_3d_available():
            if self.xrai.enabled:
                self._xrai_2d = self.xrai.value
            self.xrai.value = "off"
            self.xrai.enabled = False
            self.xrai.tooltip = XRAI_3D_COMING
        elif not self.xrai.enabled:
            self.xrai.enabled = True
            self.xrai.tooltip = XRAI_TOOLTIP
            self.xrai.value = self._xrai_2d

    def _run_3d(self, layer: napari.layers.Image, opts: ExplainOptions, source: str) -> None:
        """A 3D model: the whole volume in one job (``jobs.iter_explain_3d``); ``ValueError`` for a
        layer the model cannot take (said before any work starts)."""
        from ..jobs import iter_explain_3d, job_units_3d, xrai_3d_available

        card = self.picker.card()
        if (reason := volume_refusal(layer, card)) is not None:
            raise ValueError(reason)
        if bad := sorted(unreadable_slices(layer)):
            raise ValueError(f"slice(s) {bad[:10]} of \"{layer.name}\" could not be read: a 3D model needs every "
                             "slice of the series — fix or re-export the series")
        algorithm = self.xrai.value
        if algorithm != "off" and not xrai_3d_available():
            raise ValueError("3D XRAI is not available yet: choose XRAI off for a 3D model")
        data, spacing = np.asarray(layer.data, dtype=np.float32), layer_spacing_mm(layer)
        total = job_units_3d(opts, card.input_size, algorithm)
        target = None if self.target.value == "predicted" else self.target.value
        batch = self.batch.value or None

        def job() -> Generator[Step, None, ExplainedSlices]:
            from ..model import load

            clf = load(source)
            return (yield from iter_explain_3d(clf, data, opts, spacing_mm=spacing, target=target, xrai=algorithm,
                                               batch_size=batch))

        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.domain.visible = False
        self.status.value = (f"explaining the whole volume ({data.shape[0]} slices, 3D model) with "
                             f"{len(opts.pairs())} maps…")
        self._n_partial, self._partial_keys = 0, set()
        self._sg_asked = bool({"SG", "SG2"} & set(opts.variants))
        self.estimate.started(self._cost_key(), total)
        unit = " + ".join(["gradients"] + (["occluded volumes"] if "OCC" in opts.methods else [])
                          + (["regions"] if algorithm != "off" else []))
        self.worker = start_worker(job, total=total, description="Explain (3D model)",
                                   on_done=lambda res: self._add_layers(layer, [None], res),
                                   on_error=lambda e: self._finish(f"error: {e}"), progress=self.progress, unit=unit,
                                   on_cancel=self._cancelled,
                                   on_partial=lambda res: self._add_partial(layer, [None], res, ""))

