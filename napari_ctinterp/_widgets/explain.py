"""Explain dock widget: attribution maps of the current slice or the whole volume, as layers.

Runs ``explain.iter_explain`` in a background worker (progress bar, Cancel between gradient
batches). Layers are added only when every map is ready, so cancelling leaves no half-made layer;
re-running updates the same layers. Layers show absolute values; the signed map is kept in the
layer's metadata (``metadata["signed"]``) with every parameter.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Label,
    PushButton,
    RadioButtons,
    SpinBox,
)

from ..explain import METHODS, VARIANTS
from ._common import ModelPicker, current_slice_index, image_layers, show_error, start_worker
from .maps import map_layer_name, slice_geometry, upsert_image
from .xrai_layers import add_xrai_layers, show_regions, xrai_layer_name

METHOD_TITLES = {"BP": "Backprop", "IGB": "IG black", "IGBW": "IG black+white", "EG": "Expected Gradients",
                 "D": "Deconvolution"}


class ExplainWidget(Container):
    """Dock widget: choose image, slices, methods × variants and parameters; make map layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._last: dict | None = None  # the latest XRAI results, for the regions layer
        self.layer = ComboBox(label="CT layer", choices=self._layer_choices)
        self.picker = ModelPicker()
        self.model, self.path = self.picker.widgets
        self.scope = RadioButtons(label="slices", choices=["current slice", "whole volume"], value="current slice")
        self.methods = {m: CheckBox(text=f"{m} — {METHOD_TITLES[m]}", value=True) for m in METHODS}
        self.variants = {v: CheckBox(text=v, value=True) for v in VARIANTS}
        self.steps = SpinBox(label="IG steps", value=25, min=2, max=1000)
        self.samples = SpinBox(label="EG samples", value=50, min=1, max=1000)
        self.sg_samples = SpinBox(label="SG samples", value=15, min=1, max=500)
        self.sg_level = FloatSpinBox(label="SG noise level", value=0.15, min=0.0, max=1.0, step=0.01)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.batch = SpinBox(label="batch (0 = auto)", value=0, min=0, max=1024)
        self.xrai = ComboBox(label="XRAI regions", choices=["off", "full", "fast"], value="off")
        self.regions_of = ComboBox(label="regions of", choices=self._region_choices, visible=False)
        self.top_percent = FloatSlider(label="top k % area", value=100.0, min=0.0, max=100.0, visible=False)
        self.run_button = PushButton(text="Explain")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        method_box = Container(widgets=list(self.methods.values()), labels=False, label="methods")
        variant_box = Container(widgets=list(self.variants.values()), labels=False, layout="horizontal",
                                label="variants")
        self.extend([self.layer, self.model, self.path, self.scope, method_box, variant_box, self.steps,
                     self.samples, self.sg_samples, self.sg_level, self.seed, self.batch, self.xrai,
                     Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False),
                     self.status, self.regions_of, self.top_percent])
        self.regions_of.changed.connect(self._update_regions)
        self.top_percent.changed.connect(self._update_regions)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.viewer.layers.events.inserted.connect(self.layer.reset_choices)
        self.viewer.layers.events.removed.connect(self.layer.reset_choices)
        self.worker = None

    def _layer_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in image_layers(self.viewer) if "ctinterp_map" not in ly.metadata]

    def _source(self) -> str:
        return self.picker.source()

    def selected(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Checked methods and variants, in the canonical order."""
        return (tuple(m for m in METHODS if self.methods[m].value),
                tuple(v for v in VARIANTS if self.variants[v].value))

    def run(self) -> None:
        """Start the explanation in a background worker."""
        layer = self.layer.value
        methods, variants = self.selected()
        try:
            if layer is None:
                raise ValueError("open a CT image layer first")
            if not methods or not variants:
                raise ValueError("tick at least one method and one variant")
            source = self._source()
        except ValueError as e:
            show_error(f"Explain: {e}")
            return
        data = np.asarray(layer.data, dtype=np.float32)
        if data.ndim == 2:
            indices: list[int | None] = [None]
        elif self.scope.value == "current slice":
            indices = [current_slice_index(self.viewer, layer)]
        else:
            indices = list(range(data.shape[0]))
        kwargs = dict(methods=methods, variants=variants, steps=self.steps.value, samples=self.samples.value,
                      sg_samples=self.sg_samples.value, sg_level=self.sg_level.value, seed=self.seed.value,
                      batch_size=self.batch.value or None)
        references = data if (data.ndim == 3 and data.shape[0] > 1) else None
        n_evals = _evaluations(methods, variants, kwargs)
        algorithm = self.xrai.value
        n_regions = 0 if algorithm == "off" else len(methods) * len(variants)

        def job() -> Generator[None, None, dict]:
            from ..explain import iter_explain
            from ..model import load

            clf = load(source)
            refs = None if source == "demo" else references
            results: dict = {}
            for i in indices:
                slice_hu = data if i is None else data[i]
                step = iter_explain(clf, slice_hu, references=refs, **kwargs)
                maps = yield from _ticks(step)
                results[i] = maps
                if algorithm != "off":
                    from ..xrai import region_map, segment

                    seg = segment(slice_hu)
                    maps.regions = {}
                    for key, m in maps.items():
                        reg = region_map(np.abs(m), seg, algorithm=algorithm)
                        maps.regions[key] = (reg.values, reg.ranks)
                        yield
            return results

        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = f"explaining {len(indices)} slice(s)…"
        self.worker = start_worker(job, total=(n_evals + n_regions) * len(indices), description="Explaining",
                                   on_done=lambda res: self._add_layers(layer, indices, res),
                                   on_error=lambda e: self._finish(f"error: {e}"))
        self.worker.aborted.connect(lambda: self._finish("cancelled: no layer was changed"))

    def cancel(self) -> None:
        """Stop at the next gradient batch; nothing is added."""
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "cancelling…"

    def _finish(self, text: str) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.status.value = text

    def _add_layers(self, layer: napari.layers.Image, indices: list, results: dict) -> None:
        keys = list(next(iter(results.values())).keys())
        whole = indices != [None] and len(indices) > 1
        for method, variant in keys:
            if whole:
                signed = np.stack([results[i][method, variant] for i in indices])
                index = None
            else:
                signed = results[indices[0]][method, variant]
                index = indices[0]
                signed = signed[None] if index is not None else signed
            params = dict(next(iter(results.values())).params)
            meta = {"ctinterp_map": {"method": method, "variant": variant, "kind": "pixel", "absolute": True,
                                     "image": layer.name, "slices": [int(i) for i in indices if i is not None],
                                     **params},
                    "signed": signed}
            scale, translate = slice_geometry(layer, index)
            upsert_image(self.viewer, map_layer_name(layer.name, method, variant), np.abs(signed),
                         scale=scale, translate=translate, metadata=meta)
        first = next(iter(results.values()))
        n_xrai = 0
        if getattr(first, "regions", None):
            regions = {}
            for key in keys:
                per = [results[i].regions[key] for i in indices]
                values = np.stack([v for v, _ in per]) if (whole or index is not None) else per[0][0]
                ranks = np.stack([r for _, r in per]) if (whole or index is not None) else per[0][1]
                regions[key] = (values, ranks)
            base = {"image": layer.name, "algorithm": self.xrai.value, **first.params}
            add_xrai_layers(self.viewer, layer, regions, scale=scale, translate=translate, base_meta=base)
            self._last = {"image": layer.name, "regions": regions, "scale": scale, "translate": translate}
            self.regions_of.reset_choices()
            self.regions_of.visible = self.top_percent.visible = True
            self._update_regions()
            n_xrai = len(keys)
        self._finish(f"{len(keys)} map layer(s){f' + {n_xrai} XRAI' if n_xrai else ''} for {len(indices)} slice(s)")

    def _region_choices(self, _widget: Any = None) -> list[str]:
        if not self._last:
            return []
        return [xrai_layer_name(self._last["image"], m, v) for m, v in self._last["regions"]]

    def _update_regions(self, *_: Any) -> None:
        """Show the chosen map's ranked regions, keeping the top k % of the area."""
        if not self._last or not self.regions_of.value:
            return
        names = {xrai_layer_name(self._last["image"], m, v): (m, v) for m, v in self._last["regions"]}
        key = names.get(self.regions_of.value)
        if key is None:
            return
        _values, ranks = self._last["regions"][key]
        show_regions(self.viewer, self._last["image"], ranks, float(self.top_percent.value),
                     scale=self._last["scale"], translate=self._last["translate"], source=self.regions_of.value)


def _ticks(step: Generator) -> Generator[None, None, Any]:
    """Re-yield one tick per gradient evaluation batch, forwarding the generator's result."""
    last = 0
    while True:
        try:
            done, _total = next(step)
        except StopIteration as stop:
            return stop.value
        for _ in range(done - last):
            yield
        last = done


def _evaluations(methods: tuple, variants: tuple, kw: dict) -> int:
    from ..explain.plan import ExplainOptions, make_plan

    opts = ExplainOptions(methods=methods, variants=variants, steps=kw["steps"], samples=kw["samples"],
                          sg_samples=kw["sg_samples"], sg_level=kw["sg_level"], seed=kw["seed"])
    return make_plan(opts).total
