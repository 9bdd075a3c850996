"""Explain dock widget: attribution maps of the current slice or the whole volume, as layers.

Reads its controls into an ``ExplainOptions`` and runs one core job, ``jobs.iter_explain_slices``
(maps, XRAI regions, domain checks), in a background worker (progress with ETA in the widget,
Cancel between gradient batches); ``explain_layers`` turns the result into layers. The plain maps
come first (a few percent of the work): their layers appear and the best of them is shown while the
SmoothGrad variants and XRAI are computed; then every layer is added and the shown map upgraded
(IGB · SG2). A layer is only ever made from a finished map: Cancel keeps the plain maps already
shown (and says so), nothing half-made; re-running updates the same layers.

After a run the canvas shows the CT, the mask and **one** map (IGB · SG2 when computed); every
other map layer is hidden and one choice away in the "show" field (or the Gallery dock).

EG references: the demo model brings its own; for another model the other slices of the open
volume are used when there are at least ``MIN_VOLUME_REFERENCES``, else a chosen DICOM folder;
without either, EG is skipped with a note and the other maps are computed.

A 3D model sees the whole volume: the slice choice and EG's reference choice are hidden (a note
says why), the methods, variants and target stay; the job is ``jobs.iter_explain_3d`` and each map
becomes one (Z, H, W) layer over the CT, with the same partial maps, Cancel and one-map rule.
XRAI of a 3D map needs 3D supervoxels: offered when ``jobs.xrai_3d_available()``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    RadioButtons,
    SpinBox,
)
from napari.utils.notifications import show_error

from ..explain import (
    ALL_METHODS,
    EXTRA_METHODS,
    GRADCAM_METHODS,
    METHOD_TITLES,
    METHODS,
    MIN_VOLUME_REFERENCES,
    VARIANTS,
    ExplainOptions,
)
from ..io import parse_slices
from ..jobs import ExplainedSlices, ExplainedVolume
from ..progress import Step
from .dock_layout import limit_width, make_scrollable, wrapping_label
from .explain_3d import XRAI_TOOLTIP, Explain3D, elide_combo
from .explain_layers import add_explain_layers, hide_other_models
from .layer_choice import ct_combo, current_slice_index, explainable, not_hu_reason
from .model_picker import ModelPicker, selection
from .run_estimate import RunEstimate
from .shown_map import ShownMap
from .trust import show_trust, trust_text
from .workers import JobProgress, start_worker


def _listed(items: list[str], sep: str = ", ") -> str:
    """``a, b and c``."""
    return items[0] if len(items) == 1 else f"{sep.join(items[:-1])} and {items[-1]}"


SCOPES = ("current slice", "slice range", "slices with mask", "whole volume")
#: The map shown after a run when it was computed (the poster's best pixel map).
DEFAULT_SHOWN = ("IGB", "SG2")


class ExplainWidget(Explain3D, Container):
    """Dock widget: choose image, slices, methods × variants and parameters; make map layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer = ct_combo(self.viewer)  # starts on the CT the canvas shows
        self.picker = ModelPicker()
        self.model, self.path, self.model_info = self.picker.widgets
        self.scope = RadioButtons(label="slices", choices=list(SCOPES), value="current slice")
        self.slice_range = LineEdit(label="slice range", value="", visible=False,
                                    tooltip="slices to explain: a:b (a to b, both included) or a list 3,7,9")
        self.scope_mask = ComboBox(label="mask", choices=self._mask_choices, visible=False,
                                   tooltip="explain every slice where this Labels layer has a painted pixel")
        # the paper's five, ticked; the methods beyond the paper after them, unticked
        self.methods = {m: CheckBox(text=f"{m} — {METHOD_TITLES[m]}", value=m in METHODS) for m in ALL_METHODS}
        self.variants = {v: CheckBox(text=v, value=True) for v in VARIANTS}
        self.target = ComboBox(label="explain class", choices=self._target_choices, value="predicted",
                               tooltip="the class whose score is explained: the predicted one, or any class "
                                       "of the model's card")
        self.xrai = ComboBox(label="XRAI regions", choices=["off", "full", "fast"], value="full", tooltip=XRAI_TOOLTIP)
        self.volume_note = wrapping_label(visible=False)  # in place of the slice choice, for a 3D model
        self._xrai_2d = "full"  # the XRAI choice to restore when a 2D model is chosen again
        self.references = ComboBox(label="EG references", choices=["auto", "folder…"], value="auto",
                                   tooltip="auto: the demo model's own set, else the other slices of the open "
                                           f"volume (≥ {MIN_VOLUME_REFERENCES}); folder…: DICOM training slices")
        self.ref_folder = FileEdit(label="reference folder", mode="d", visible=False)
        self.advanced = CheckBox(text="show parameters", value=False)
        self.steps = SpinBox(label="IG steps", value=25, min=2, max=1000)
        self.samples = SpinBox(label="EG samples", value=50, min=1, max=1000)
        self.sg_samples = SpinBox(label="SG samples", value=15, min=1, max=500)
        self.sg_level = FloatSpinBox(label="SG noise level", value=0.15, min=0.0, max=1.0, step=0.01)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.batch = SpinBox(label="batch (0 = auto)", value=0, min=0, max=1024)
        self.gc_layer = LineEdit(label="Grad-CAM layer", value="",
                                 tooltip="the module whose activations Grad-CAM weighs, by name (e.g. layer3); "
                                         "empty: the architecture's last spatial block")
        self.occ_window = SpinBox(label="OCC window (px)", value=16, min=1, max=1024,
                                  tooltip="side of the occluded square, in pixels of the model's input")
        self.occ_stride = SpinBox(label="OCC stride (px)", value=8, min=1, max=1024)
        self.occ_fill = ComboBox(label="OCC fill", choices=["black", "label"], value="black",
                                 tooltip="black: the low end of each channel's window (air for a chest window); "
                                         "label: the fill of the fidelity test")
        self._params = [self.steps, self.samples, self.sg_samples, self.sg_level, self.seed, self.batch,
                        self.gc_layer, self.occ_window, self.occ_stride, self.occ_fill]
        for w in self._params:
            w.visible = False
        self.run_button = PushButton(text="Explain")
        self.quick_button = PushButton(text="Quick: plain maps + XRAI fast",
                                       tooltip="the paper's five methods, plain only, XRAI fast: maps in seconds")
        self.estimate = RunEstimate()  # the run's size and time here, before it starts
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = JobProgress()
        self.status = wrapping_label()
        self.domain = wrapping_label(visible=False)  # out-of-domain / not-CT warning, next to the result
        self.display = ShownMap(self.viewer, lambda: self.layer.value)  # which map is over the CT; its regions
        self.shown, self.regions_of, self.top_percent = self.display.widgets
        for combo in (self.shown, self.regions_of, self.scope_mask):  # long layer names elide, not widen the dock
            elide_combo(combo)
        method_box = Container(widgets=[*(self.methods[m] for m in METHODS), Label(value="beyond the paper:"),
                                        *(self.methods[m] for m in EXTRA_METHODS)], labels=False, label="methods")
        variant_box = Container(widgets=list(self.variants.values()), labels=False, layout="horizontal",
                                label="variants")
        # the run's status and result controls sit above the parameters, so that opening the
        # parameters does not push the messages out of sight
        self.extend([self.layer, self.model, self.path, self.model_info, self.target, self.scope, self.volume_note,
                     self.slice_range, self.scope_mask, method_box,
                     variant_box, self.xrai, self.references, self.ref_folder,
                     self.quick_button, self.estimate.label,
                     Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False),
                     *self.progress.widgets, self.status, self.domain, self.shown, self.regions_of, self.top_percent,
                     self.advanced, *self._params])
        limit_width(self)
        make_scrollable(self)
        self.references.changed.connect(lambda v: setattr(self.ref_folder, "visible", v == "folder…"))
        self.scope.changed.connect(self._scope_changed)
        self.advanced.changed.connect(lambda v: [setattr(w, "visible", v) for w in self._params])
        self.run_button.changed.connect(self.run)
        self.quick_button.changed.connect(self.quick)
        for w in [*self.methods.values(), *self.variants.values(), self.steps, self.samples, self.sg_samples,
                  self.xrai, self.scope, self.slice_range, self.scope_mask, self.layer, self.model, self.path,
                  self.occ_window, self.occ_stride, self.occ_fill]:
            w.changed.connect(self._update_estimate)
        self.model.changed.connect(self.target.reset_choices)
        self.path.changed.connect(self.target.reset_choices)
        self.model.changed.connect(self._model_kind)
        self.path.changed.connect(self._model_kind)
        self.cancel_button.changed.connect(self.cancel)
        self.viewer.layers.events.inserted.connect(self.layer.reset_choices)
        self.viewer.layers.events.removed.connect(self.layer.reset_choices)
        self.worker = None
        selection.subscribe(self._model_switched)  # held weakly: a closed dock stops listening
        self._model_kind()
        self._update_estimate()

    def quick(self) -> None:
        """The quick preset: the paper's five methods, plain only, XRAI fast (maps in seconds)."""
        for m, box in self.methods.items():
            box.value = m in METHODS
        for v, box in self.variants.items():
            box.value = v == "plain"
        if self.xrai.enabled:  # (3D XRAI may not be available: the field is then off and disabled)
            self.xrai.value = "fast"
        self._update_estimate()

    def _cost_key(self) -> str:
        """The chosen model on this machine's device at its input size (``jobs.estimate``)."""
        from ..jobs import cost_key
        from ..model import resolve_device

        card = self.picker.card()
        return cost_key(card.short_hash, str(resolve_device("auto")), tuple(card.input_size))

    def _planned(self) -> tuple[ExplainOptions, int, str]:
        """The options, the number of slices and the cost key of a run with the controls as they are
        (``ValueError`` / ``OSError`` when no run is possible yet; a 3D model: 1, the volume)."""
        layer = self.layer.value
        if layer is None:
            raise ValueError("no CT layer")
        opts = self.options()
        shape = np.shape(layer.data)
        n = 1 if len(shape) == 2 or self.scope.value == "current slice" or self.picker.is_3d() else len(self._indices(
            np.empty((shape[0], 0, 0), np.float32), layer))
        return opts, n, self._cost_key()

    def _update_estimate(self, *_: Any) -> None:
        """The size of the run the controls ask for, and its time here (from earlier runs' pace)."""
        try:
            opts, n, key = self._planned()
            self.estimate.show(opts, n, self.picker.card().input_size, self.xrai.value, key,
                               volume=self.picker.is_3d())
        except (ValueError, IndexError, OSError, RuntimeError):
            self.estimate.clear()


    def _model_switched(self, source: str) -> None:
        """Another model was chosen (here or in another widget): hide the maps of the other models,
        so that no map on the canvas belongs to a model that is not the chosen one."""
        try:
            hidden = hide_other_models(self.viewer, source)
        except RuntimeError:  # the viewer is closing
            return
        if hidden:
            names = ", ".join(sorted(Path(m).name for m in hidden))
            self.status.value = (f"{sum(hidden.values())} map layer(s) of {names} hidden: the model changed (they "
                                 f"stay in the layer list, marked [model]; Explain again for this model)")
            self.display.hide_regions()

    def _scope_changed(self, value: str) -> None:
        three_d = self.picker.is_3d()  # a 3D model has no slice choice
        self.slice_range.visible = value == "slice range" and not three_d
        self.scope_mask.visible = value == "slices with mask" and not three_d
        if value == "slices with mask":
            self.scope_mask.reset_choices()

    def _mask_choices(self, _widget: Any = None) -> list:
        """Labels layers shaped like the chosen CT (a mask painted on it)."""
        image = self.layer.value
        shape = None if image is None else tuple(np.shape(image.data))
        return [ly for ly in self.viewer.layers if isinstance(ly, napari.layers.Labels)
                and (shape is None or tuple(np.shape(ly.data)) == shape)]

    def _indices(self, data: np.ndarray, layer: napari.layers.Image) -> list[int | None]:
        """The slices the scope asks for (``[None]`` for a 2D image); ``ValueError`` says what is wrong."""
        if data.ndim == 2:
            return [None]
        scope, n = self.scope.value, data.shape[0]
        if scope == "current slice":
            return [current_slice_index(self.viewer, layer)]
        if scope == "whole volume":
            return list(range(n))
        if scope == "slice range":
            return parse_slices(self.slice_range.value, n)
        mask = self.scope_mask.value
        if mask is None:
            raise ValueError("choose the Labels layer whose painted slices to explain (or paint one first)")
        from ..explain import choose_slices

        return list(choose_slices(n, "masked", np.asarray(mask.data)))

    def _target_choices(self, _widget: Any = None) -> list[str]:
        """"predicted" and the class names of the chosen model's card (read from the card only)."""
        try:
            card = self.picker.card()
        except (ValueError, OSError):  # no model chosen yet, or its card is unreadable: run() will say so
            return ["predicted"]
        return ["predicted", *card.class_names]

    def selected(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Checked methods and variants, in the canonical order."""
        return (tuple(m for m in ALL_METHODS if self.methods[m].value),
                tuple(v for v in VARIANTS if self.variants[v].value))

    def options(self) -> ExplainOptions:
        """The explain options of the controls (``ValueError`` for a combination the engine refuses)."""
        methods, variants = self.selected()
        if not methods or not variants:
            raise ValueError("tick at least one method and one variant")
        return ExplainOptions(methods=methods, variants=variants, steps=self.steps.value, samples=self.samples.value,
                              sg_samples=self.sg_samples.value, sg_level=self.sg_level.value, seed=self.seed.value,
                              gc_layer=self.gc_layer.value, occ_window=self.occ_window.value,
                              occ_stride=self.occ_stride.value, occ_fill=self.occ_fill.value)

    def run(self) -> None:
        """Start the explanation in a background worker (``jobs.iter_explain_slices``)."""
        from ..jobs import check_scope, iter_explain_slices, job_units

        layer = self.layer.value
        try:
            if layer is None:
                raise ValueError("open a CT image layer first (File ▸ Open, or File ▸ Open Sample)")
            if (reason := not_hu_reason(layer)) is not None:
                raise ValueError(reason)
            opts = self.options()
            source = self.picker.source()
            if self.picker.is_3d():
                self._run_3d(layer, opts, source)
                return
            data = np.asarray(layer.data, dtype=np.float32)
            folder = self.ref_folder.value if self.references.value == "folder…" else None
            if folder is not None and not Path(str(folder)).is_dir():
                raise ValueError("choose the EG reference folder (DICOM slices of the model's training data)")
            indices, skipped = explainable(layer, self._indices(data, layer))
            methods = opts.methods
            check_scope(opts, len(indices))
            # the estimate; the job corrects the total when EG has no references and is left out
            total = job_units(opts, self.picker.card().input_size, len(indices), self.xrai.value)
        except (ValueError, IndexError, OSError) as e:
            show_error(f"Explain: {e}")
            self.status.value = f"error: {e}"
            return
        target = None if self.target.value == "predicted" else self.target.value
        algorithm, batch = self.xrai.value, self.batch.value or None
        n_maps = len(opts.pairs())  # OCC: plain only

        def job() -> Generator[Step, None, ExplainedSlices]:
            from ..model import load

            clf = load(source)
            steps = iter_explain_slices(clf, data, indices, opts, folder=folder, target=target, xrai=algorithm,
                                        batch_size=batch)
            return (yield from steps)

        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.domain.visible = False
        self.status.value = f"{skipped}explaining {len(indices)} slice(s) with {n_maps} maps…"
        self._n_partial, self._partial_keys = 0, set()
        self._sg_asked = bool({"SG", "SG2"} & set(opts.variants))
        self.estimate.started(self._cost_key(), total)  # its pace makes the next estimate
        self.worker = start_worker(job, total=total, description="Explain",
                                   on_done=lambda res: self._add_layers(layer, indices, res, skipped),
                                   on_error=lambda e: self._finish(f"error: {e}"), progress=self.progress,
                                   unit=" + ".join(["gradients"] + (["occluded images"] if "OCC" in methods else [])
                                                   + (["regions"] if algorithm != "off" else [])),
                                   on_cancel=self._cancelled,
                                   on_partial=lambda res: self._add_partial(layer, indices, res, skipped))

    def _add_partial(self, layer: napari.layers.Image, indices: list, result: ExplainedSlices, skipped: str) -> None:
        """The plain maps, stage by stage (BP and D first), before the SmoothGrad variants: layers
        now, the best of them shown; with several slices, those reached so far."""
        reached = [i for i in indices if i in result.maps]
        made = add_explain_layers(self.viewer, layer, reached, result, chosen_target=self.target.value != "predicted",
                                  algorithm=self.xrai.value, whole=len(indices) > 1)
        first = not self._partial_keys
        self._partial_keys.update(made.keys)
        self._n_partial = len(self._partial_keys)
        shown = next((k for k in (("IGB", "plain"), ("IGBW", "plain")) if k in made.keys), None)
        if shown is not None or first:  # the first maps, then upgraded to IGB's when it comes
            self.display.show(layer.name, shown or made.keys[0], made.tag)
        where = f" of {len(reached)} of {len(indices)} slices" if len(reached) < len(indices) else ""
        rest = [m for m in made.params.get("methods", []) if m != "OCC" and (m, "plain") not in self._partial_keys]
        follow = (["plain " + _listed(rest)] if rest else []) \
            + (["the SmoothGrad variants"] if self._sg_asked else []) + (["XRAI"] if self.xrai.value != "off" else [])
        self.status.value = (f"{skipped}{result.note}{self._n_partial} plain map(s){where} shown ({self.shown.value}); "
                             f"{_listed(follow, ', ') if follow else 'the rest'} follow…")

    def _cancelled(self) -> None:
        kept = getattr(self, "_n_partial", 0)
        self._finish(f"cancelled: the {kept} plain map layer(s) made so far are kept" if kept
                     else "cancelled: no layer was changed")

    def cancel(self) -> None:
        """Stop at the next gradient batch; nothing is added."""
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "cancelling…"

    def _finish(self, text: str) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.status.value = text

    def _add_layers(self, layer: napari.layers.Image, indices: list, result: ExplainedSlices,
                    skipped: str = "") -> None:
        self.estimate.finished()
        self._update_estimate()
        made = add_explain_layers(self.viewer, layer, indices, result, chosen_target=self.target.value != "predicted",
                                  algorithm=self.xrai.value)
        keys, tag, note, first_params = made.keys, made.tag, skipped + result.note, made.params
        n_xrai = 0
        if made.regions:
            self.display.set_regions(layer.name, made)
            n_xrai = len(keys)
        title = self.display.show(layer.name, DEFAULT_SHOWN if DEFAULT_SHOWN in keys else keys[0], tag)
        volume = isinstance(result, ExplainedVolume)
        trust = trust_text(result.domain, layer)
        show_trust(self.domain, trust.replace("— this slice:", "— this volume:") if volume and trust else trust)
        if first_params.get("gc_layer") and any(k[0] in GRADCAM_METHODS for k in keys):
            note += f"Grad-CAM at {first_params['gc_layer']}. "
        skipped = first_params.get("not_computed") or []
        if skipped:
            note += f"{', '.join(skipped)} not computed (OCC is plain only). "
        if volume and first_params.get("outside_voxels"):
            note += f"{first_params['outside_voxels']:,} CT voxels outside the model's crop hold 0. "
        scope = (f"the whole volume ({np.shape(layer.data)[0]} slices, 3D model)" if volume
                 else f"{len(indices)} slice(s)")
        self._finish(f"{note}{len(keys)} map layer(s){f' + {n_xrai} XRAI' if n_xrai else ''} for "
                     f"{scope}; {title} shown first (choose another in \"show map\" or the Gallery)")
