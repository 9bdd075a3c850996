"""Probe dock widget: paint over the CT to occlude it and watch the model's answer change.

Thin: the "Add occlude layer" button makes a Labels layer ``occlude — <image>`` over the CT, in
paint mode. Every change of that layer (a brush stroke, undo/redo, reset) restarts a short timer;
when painting pauses, the painted region of the current slice goes to ``metrics.Prober`` in a
background worker (the slice's unoccluded forward pass is done once and reused) and the label
shows each class's probability before → after. One probe runs at a time: a request made while
one runs is served when it ends, and the outdated result is dropped.

A 3D model sees the whole volume: the occlude layer paints in 3D (``n_edit_dimensions`` 3, a
brush ball round in millimetres, so a stroke covers neighbouring slices too; paint on as many
slices as you like) and each request is one forward pass of the whole occluded volume — the
answer is the volume's, whatever slice is shown.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer

from ..metrics.occlusion_probe import FILL_HELP, FILLS, OcclusionProbe, Prober
from ..progress import Step
from .dock_layout import make_scrollable, on_destroyed, wrapping_label
from .layer_choice import ct_combo, current_slice_index
from .model_picker import ModelPicker
from .volume_model import layer_spacing_mm, volume_refusal
from .workers import start_worker


class _Same:
    """An object held weakly, equal to another ``_Same`` of the very same live object (unlike an
    ``id()``, never equal to a later object that got the id of a collected one)."""

    __slots__ = ("_ref",)

    def __init__(self, obj: object) -> None:
        self._ref = weakref.ref(obj)

    def __eq__(self, other: object) -> bool:
        obj = self._ref()
        return isinstance(other, _Same) and obj is not None and obj is other._ref()

    __hash__ = None  # type: ignore[assignment]  - compared, never a dict key

#: Pause after the last change of the occlude layer before the model is asked again (ms).
DEBOUNCE_MS = 120
#: The occlude layer's events that mean "the painted region may have changed" (undo and redo
#: only refresh the layer: ``set_data``).
WATCHED_EVENTS = ("paint", "data", "set_data", "labels_update")
#: Forward passes made while the model loads, so that the first strokes answer at full speed.
WARM_UP_PASSES = 3
HINT = ("Add the occlude layer, then paint over the CT: the model's probabilities for the slice update "
        "when you pause. Ctrl+Z undoes a stroke.")
HINT_3D = ("A 3D model sees the whole volume: add the occlude layer, then paint over the CT on as many slices as you "
           "like (the brush is a ball: it covers neighbouring slices too); the volume's probabilities update when "
           "you pause. Ctrl+Z undoes a stroke.")
#: Warm-up forward passes of a 3D model (each is a whole volume).
WARM_UP_PASSES_3D = 1


def occlude_layer_name(image_name: str) -> str:
    """Name of the occlude Labels layer of an image layer."""
    return f"occlude — {image_name}"


class ProbeWidget(Container):
    """Dock widget: class probabilities of the current slice with the painted region occluded."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer = ct_combo(self.viewer)  # starts on the CT the canvas shows
        self.picker = ModelPicker()
        self.model, self.path, self.model_info = self.picker.widgets
        self.fill = ComboBox(label="fill", choices=list(FILLS), value="label")
        self.add_button = PushButton(text="Add occlude layer", tooltip="a Labels layer over the CT, in paint mode: "
                                     "what you paint on it is hidden from the model")
        self.reset_button = PushButton(text="Reset (clear the occlusion)",
                                       tooltip="erase the occlude layer: back to the unoccluded slice")
        # unlabelled: a labelled row keeps the height of its first text (the last lines were cut)
        self.result = wrapping_label(HINT)
        self.result.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.extend([self.layer, self.model, self.path, self.model_info, self.fill, self.add_button, self.result,
                     self.reset_button])
        make_scrollable(self)
        self._fill_tooltips()
        self.last: OcclusionProbe | None = None
        self._ready: str | None = None  # the model loaded and warmed up (``model.load`` keeps it)
        self._prober: Prober | None = None
        self._prober_key: tuple | None = None
        self._asked: tuple | None = None  # (key, region) of the last probe started
        self._busy = False
        self._pending = False
        self._done: tuple | None = None  # (the request, its result) of the latest finished probe
        self._watched: napari.layers.Labels | None = None
        self._last_error = ""
        self._load_failed: tuple[str, str] | None = None  # (source, message) of a model that failed to load
        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._request)
        self.add_button.changed.connect(self.add_occlude_layer)
        self.reset_button.changed.connect(self.reset)
        self.fill.changed.connect(self._fill_changed)
        self.model.changed.connect(self._model_changed)
        self.path.changed.connect(self._model_changed)
        self._three_d = self.picker.is_3d()
        if self._three_d:
            self.result.value = HINT_3D
        self.layer.changed.connect(self._watch)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self._layers_changed)
        self.viewer.dims.events.current_step.connect(self.schedule)
        on_destroyed(self, "_disconnect")
        self._watch()

    # -- fields ---------------------------------------------------------------------------

    def _fill_tooltips(self) -> None:
        combo = self.fill.native
        for i, name in enumerate(FILLS):
            combo.setItemData(i, f"{name}: {FILL_HELP[name]}", Qt.ItemDataRole.ToolTipRole)
        self.fill.tooltip = f"what replaces the painted pixels — {self.fill.value}: {FILL_HELP[self.fill.value]}"

    def _fill_changed(self, *_: Any) -> None:
        self._fill_tooltips()
        self.schedule()

    def _model_changed(self, *_: Any) -> None:
        self._ready = self._load_failed = None
        three_d = self.picker.is_3d()
        if three_d != self._three_d:  # the occlude layer paints in 3D for a 3D model
            self._three_d = three_d
            occ = self.occlude_layer()
            if occ is not None:
                self._brush(occ)
            if self.last is None or self._watched is None:
                self.result.value = HINT_3D if three_d else HINT
        self.schedule()

    def _layers_changed(self, *_: Any) -> None:
        self.layer.reset_choices()
        self._watch()

    def occlude_layer(self) -> napari.layers.Labels | None:
        """The occlude layer of the chosen CT layer, if there is one."""
        image = self.layer.value
        if image is None:
            return None
        name = occlude_layer_name(image.name)
        ly = self.viewer.layers[name] if name in self.viewer.layers else None
        return ly if isinstance(ly, napari.layers.Labels) else None

    def _watch(self, *_: Any) -> None:
        """Follow the changes of the chosen CT's occlude layer."""
        occ = self.occlude_layer()
        if occ is self._watched:
            return
        self._follow(occ)
        self.schedule()

    def _follow(self, occ: napari.layers.Labels | None) -> None:
        for layer, method in ((self._watched, "disconnect"), (occ, "connect")):
            if layer is not None:
                for name in WATCHED_EVENTS:
                    emitter = getattr(layer.events, name, None)
                    if emitter is not None:
                        getattr(emitter, method)(self.schedule)
        self._watched = occ

    def _disconnect(self, *_: Any) -> None:
        """The dock was closed: stop listening to the viewer (its timer is gone)."""
        self._follow(None)
        self.viewer.dims.events.current_step.disconnect(self.schedule)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.disconnect(self._layers_changed)

    # -- the occlude layer ----------------------------------------------------------------
    def add_occlude_layer(self) -> napari.layers.Labels | None:
        """Add (or reuse) the occlude layer over the chosen CT, selected in paint mode."""
        image = self.layer.value
        if image is None:
            show_error("Probe: open a CT image layer first (File ▸ Open, or a sample)")
            return None
        occ = self.occlude_layer()
        if occ is None or occ.data.shape != image.data.shape:
            if occ is not None:
                self.viewer.layers.remove(occ)
            from napari.utils.colormaps import DirectLabelColormap

            # One strong colour for every painted label, unlike the reference mask's default colours.
            colours = DirectLabelColormap(color_dict={None: "magenta", 0: "transparent"})
            occ = self.viewer.add_labels(np.zeros(image.data.shape, dtype=np.uint8),
                                         name=occlude_layer_name(image.name), scale=image.scale,
                                         translate=image.translate, opacity=0.6, colormap=colours,
                                         metadata={"ctinterp_occlude": image.name})
        occ.visible = True
        self.viewer.layers.selection.active = occ
        occ.selected_label = 1
        self._brush(occ)
        occ.mode = "paint"
        self._load_failed = None  # a click is a retry
        self._watch()
        self.schedule()
        return occ

    def _brush(self, occ: napari.layers.Labels) -> None:
        """The brush for the chosen model: a disc on the slice shown (2D models), a ball through the
        neighbouring slices (3D models: ``n_edit_dimensions`` 3; napari makes it round in mm)."""
        side = min(occ.data.shape[-2:])
        occ.n_edit_dimensions = 3 if self._three_d and occ.ndim == 3 else 2
        occ.brush_size = max(5, round(side / (16 if occ.n_edit_dimensions == 3 else 25)))

    def reset(self) -> None:
        """Clear the occlude layer: the probe returns to the unoccluded slice."""
        occ = self.occlude_layer()
        if occ is not None and occ.data.any():
            occ.data = np.zeros_like(occ.data)  # emits ``data``: re-probed like a stroke

    # -- probing --------------------------------------------------------------------------
    def schedule(self, *_: Any) -> None:
        """Probe again once the occlude layer has stopped changing for ``DEBOUNCE_MS``."""
        if self._watched is not None:
            self._timer.start()

    @property
    def idle(self) -> bool:
        """No probe waiting for the timer, the model or a worker."""
        return not (self._busy or self._pending or self._timer.isActive())

    def _inputs(self) -> tuple[np.ndarray, np.ndarray, str, str, int | None, napari.layers.Image, tuple | None]:
        """Slice (a 3D model: the volume), region, model source, fill, slice index and the volume's
        spacing from the widget (``ValueError`` if unusable)."""
        image = self.layer.value
        if image is None:
            raise ValueError("open a CT image layer first (File ▸ Open, or a sample)")
        source = self.picker.source()
        if self.picker.is_3d():
            return (*self._volume_inputs(image), source, str(self.fill.value), None, image, layer_spacing_mm(image))
        idx = current_slice_index(self.viewer, image)
        data = image.data if idx is None else image.data[idx]
        hu = np.asarray(data, dtype=np.float32)
        if hu.ndim != 2:
            raise ValueError(f"{image.name!r} is not a greyscale slice or volume (shape {image.data.shape})")
        occ = self.occlude_layer()
        region = np.zeros(hu.shape, dtype=bool)
        if occ is not None:
            painted = np.asarray(occ.data if occ.data.ndim == 2 else occ.data[idx or 0])
            if painted.shape != hu.shape:
                raise ValueError(f"the occlude layer's slice {painted.shape} does not match the CT's {hu.shape}: "
                                 f"click 'Add occlude layer' to remake it")
            region = painted != 0
        return hu, region, source, str(self.fill.value), idx, image, None

    def _volume_inputs(self, image: napari.layers.Image) -> tuple[np.ndarray, np.ndarray]:
        """A 3D model's volume and the region painted on any of its slices (``ValueError`` if unusable)."""
        if (reason := volume_refusal(image, self.picker.card())) is not None:
            raise ValueError(reason)
        hu = np.asarray(image.data, dtype=np.float32)
        occ = self.occlude_layer()
        if occ is None:
            return hu, np.zeros(hu.shape, dtype=bool)
        if occ.data.shape != hu.shape:
            raise ValueError(f"the occlude layer {occ.data.shape} does not match the CT's {hu.shape}: click 'Add "
                             f"occlude layer' to remake it")
        return hu, np.asarray(occ.data) != 0

    def _key(self, image: napari.layers.Image, idx: int | None, source: str, fill: str) -> tuple:
        # The data's identity: a layer whose array is replaced gets a new baseline.
        return (_Same(image), _Same(image.data), idx, source, fill)

    def probe_now(self) -> OcclusionProbe | None:
        """Probe the current slice now, in this thread (loads the model if needed; for tests)."""
        try:
            hu, region, source, fill, idx, image, spacing = self._inputs()
            from ..model import load

            clf, self._ready = load(source), source
            key = self._key(image, idx, source, fill)
            prober = self._prober if key == self._prober_key else Prober(clf, hu, fill=fill, slice_index=idx,
                                                                           spacing_mm=spacing)
            res = prober.occlude(region)
        except Exception as e:  # noqa: BLE001 - any failure is a message, never a crash
            self._error(e)
            return None
        self._prober, self._prober_key = prober, key
        self._asked = (key, region)
        self._show(res)
        return res

    def _request(self) -> None:
        """Probe in a background worker (the timer's target)."""
        if self._busy:
            self._pending = True
            return
        try:
            hu, region, source, fill, idx, image, spacing = self._inputs()
        except ValueError as e:
            self._error(e)
            return
        if self._load_failed is not None and self._load_failed[0] == source:
            # Not retried on every stroke (one notification was enough): choosing a model retries.
            self.result.value = (f"error: {self._load_failed[1]} — click 'Add occlude layer' or choose "
                                 f"another model to retry")
            return
        if self._ready != source:
            self._load_model(source, hu, spacing)
            return
        key = self._key(image, idx, source, fill)
        if self._asked is not None and self._asked[0] == key and np.array_equal(self._asked[1], region):
            if self._done is not None and self._done[0] is self._asked:
                self._show(self._done[1])  # the answer for exactly this region is at hand
            return  # a refresh that changed nothing
        asked = self._asked = (key, region)
        prober = self._prober if key == self._prober_key else None

        def job() -> Generator[Step, None, tuple[Prober, OcclusionProbe]]:
            from ..model import load

            p = prober if prober is not None else Prober(load(source), hu, fill=fill, slice_index=idx,
                                                         spacing_mm=spacing)
            yield Step(1, 1)
            return p, p.occlude(region)

        self._busy = True
        start_worker(job, total=1, description="Occlusion probe",
                     on_done=lambda out: self._probed(key, *out, asked=asked), on_error=self._failed)

    def _load_model(self, source: str, hu: np.ndarray, spacing: tuple | None = None) -> None:
        def job() -> Generator[Step, None, None]:
            from ..model import load

            clf = load(source)  # kept by model.load's cache, which every widget shares
            yield Step(1, 1)
            if clf.card.is_3d != (hu.ndim == 3 and spacing is not None):
                return  # the card changed since it was read: the next request builds its inputs again
            for _ in range(WARM_UP_PASSES_3D if clf.card.is_3d else WARM_UP_PASSES):  # a fresh process is slow at first
                clf.predict_proba(hu, spacing_mm=spacing)

        self._busy = True
        self.result.value = "loading the model…"
        def failed(e: BaseException) -> None:
            self._load_failed = (source, str(e))
            self._failed(e)

        start_worker(job, total=1, description="Loading the model", on_done=lambda _: self._loaded(source),
                     on_error=failed)

    def _loaded(self, source: str) -> None:
        self._busy, self._pending = False, False
        self._ready = source
        self._request()

    def _probed(self, key: tuple, prober: Prober, res: OcclusionProbe, *, asked: tuple) -> None:
        self._busy = False
        self._prober, self._prober_key = prober, key
        self._done = (asked, res)
        if self._pending:  # something happened meanwhile: show this result if it still holds, else re-probe
            self._pending = False
            self._request()
            return
        self._show(res)

    def _error(self, e: BaseException) -> None:
        # Refreshes of the layer repeat a request: the same message is shown once.
        if str(e) != self._last_error:
            show_error(f"Probe: {e}")
        self._last_error = str(e)
        self.result.value = f"error: {e}"

    def _failed(self, e: BaseException) -> None:
        # ``start_worker`` has already shown the notification; the widget becomes idle.
        self._busy, self._pending, self._asked = False, False, None
        self.result.value = f"error: {e}"

    def _show(self, res: OcclusionProbe) -> None:
        self.last, self._last_error = res, ""
        where = "whole volume (3D model) · " if res.volume else "" if res.slice_index is None \
            else f"slice {res.slice_index} · "
        names = res.class_names
        before, after = names[int(np.argmax(res.baseline))], names[int(np.argmax(res.occluded))]
        answer = f"answer stays {before}" if before == after else f"answer changes: {before} → {after}"
        self.result.value = "\n".join([f"{where}unoccluded → occluded", *res.lines(), answer])
