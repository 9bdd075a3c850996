"""Explain dock widget: attribution maps of the current slice or the whole volume, as layers.

Runs ``explain.iter_explain`` in a background worker (progress with ETA in the widget, Cancel
between gradient batches). Layers are added only when every map is ready, so cancelling leaves no
half-made layer; re-running updates the same layers. Layers show absolute values; the signed map
is kept in the layer's metadata (``metadata["signed"]``) with every parameter.

After a run the canvas shows the CT, the mask and **one** map (IGB · SG2 when computed); every
other map layer is hidden and one choice away in the "show" field (or the Gallery dock).

EG references: the demo model brings its own; for another model the other slices of the open
volume are used when there are at least ``MIN_VOLUME_REFERENCES``, else a chosen DICOM folder;
without either, EG is skipped with a note and the other maps are computed.
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
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    RadioButtons,
    SpinBox,
)

from ..explain import ALL_METHODS, EXTRA_METHODS, METHODS, MIN_VOLUME_REFERENCES, VARIANTS, parse_slices
from ._common import (
    JobProgress,
    ModelPicker,
    ct_combo,
    current_slice_index,
    limit_width,
    make_scrollable,
    show_error,
    start_worker,
    wrapping_label,
)
from .maps import (
    map_info,
    map_layer_name,
    map_layers,
    map_title,
    short_map_name,
    show_map,
    slice_geometry,
    upsert_image,
)
from .trust import trust_text
from .xrai_layers import add_xrai_layers, show_regions, xrai_layer_name

SCOPES = ("current slice", "slice range", "slices with mask", "whole volume")


METHOD_TITLES = {"BP": "Backprop", "IGB": "IG black", "IGBW": "IG black+white", "EG": "Expected Gradients",
                 "D": "Deconvolution", "GC": "Grad-CAM", "GBP": "Guided Backprop", "GGC": "Guided Grad-CAM",
                 "OCC": "Occlusion (plain only)"}
#: The map shown after a run when it was computed (the poster's best pixel map).
DEFAULT_SHOWN = ("IGB", "SG2")


class ExplainWidget(Container):
    """Dock widget: choose image, slices, methods × variants and parameters; make map layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self._last: dict | None = None  # the latest XRAI results, for the regions layer
        self._quiet = False
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
        self.xrai = ComboBox(label="XRAI regions", choices=["off", "full", "fast"], value="full")
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
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = JobProgress()
        self.status = wrapping_label()
        self.domain = wrapping_label(visible=False)  # out-of-domain / not-CT warning, next to the result
        self.shown = ComboBox(label="show map", choices=self._shown_choices, visible=False)
        self.regions_of = ComboBox(label="regions of", choices=self._region_choices, visible=False)
        self.top_percent = FloatSlider(label="top k % area", value=100.0, min=0.0, max=100.0, visible=False)
        method_box = Container(widgets=[*(self.methods[m] for m in METHODS), Label(value="beyond the paper:"),
                                        *(self.methods[m] for m in EXTRA_METHODS)], labels=False, label="methods")
        variant_box = Container(widgets=list(self.variants.values()), labels=False, layout="horizontal",
                                label="variants")
        # the run's status and result controls sit above the parameters, so that opening the
        # parameters does not push the messages out of sight
        self.extend([self.layer, self.model, self.path, self.model_info, self.target, self.scope, self.slice_range,
                     self.scope_mask, method_box,
                     variant_box, self.xrai, self.references, self.ref_folder,
                     Container(widgets=[self.run_button, self.cancel_button], layout="horizontal", labels=False),
                     *self.progress.widgets, self.status, self.domain, self.shown, self.regions_of, self.top_percent,
                     self.advanced, *self._params])
        limit_width(self)
        make_scrollable(self)
        self.references.changed.connect(lambda v: setattr(self.ref_folder, "visible", v == "folder…"))
        self.scope.changed.connect(self._scope_changed)
        self.advanced.changed.connect(lambda v: [setattr(w, "visible", v) for w in self._params])
        self.shown.changed.connect(self._show_chosen)
        self.regions_of.changed.connect(self._update_regions)
        self.top_percent.changed.connect(self._update_regions)
        self.run_button.changed.connect(self.run)
        self.model.changed.connect(self.target.reset_choices)
        self.path.changed.connect(self.target.reset_choices)
        self.cancel_button.changed.connect(self.cancel)
        self.viewer.layers.events.inserted.connect(self.layer.reset_choices)
        self.viewer.layers.events.removed.connect(self.layer.reset_choices)
        self.viewer.layers.selection.events.active.connect(self._follow_shown)
        self.worker = None


    def _scope_changed(self, value: str) -> None:
        self.slice_range.visible = value == "slice range"
        self.scope_mask.visible = value == "slices with mask"
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

    def _reference_plan(self, source: str, data: np.ndarray) -> tuple[str, Path | None]:
        """``("demo" | "volume" | "folder" | "none", folder)`` for EG."""
        from ..model.loading import DEMOS

        if source in DEMOS:  # the demo models' EG references: phantom slices of their training range
            return "demo", None
        if self.references.value == "folder…":
            folder = Path(str(self.ref_folder.value))
            if not folder.is_dir():
                raise ValueError("choose the EG reference folder (DICOM slices of the model's training data)")
            return "folder", folder
        if data.ndim == 3 and data.shape[0] - 1 >= MIN_VOLUME_REFERENCES:
            return "volume", None
        return "none", None

    def run(self) -> None:
        """Start the explanation in a background worker."""
        layer = self.layer.value
        methods, variants = self.selected()
        try:
            if layer is None:
                raise ValueError("open a CT image layer first (File ▸ Open, or File ▸ Open Sample)")
            if not methods or not variants:
                raise ValueError("tick at least one method and one variant")
            source = self.picker.source()
            data = np.asarray(layer.data, dtype=np.float32)
            refs_kind, folder = self._reference_plan(source, data) if "EG" in methods else ("demo", None)
        except ValueError as e:
            show_error(f"Explain: {e}")
            self.status.value = f"error: {e}"
            return
        note = ""
        if refs_kind == "none":
            methods = tuple(m for m in methods if m != "EG")
            note = (f"EG skipped: this model has no reference slices — open a volume with more than "
                    f"{MIN_VOLUME_REFERENCES} slices or choose a reference folder. ")
            if not methods:
                show_error(f"Explain: {note}")
                self.status.value = note
                return
        try:
            indices = self._indices(data, layer)
        except (ValueError, IndexError) as e:
            show_error(f"Explain: {e}")
            self.status.value = f"error: {e}"
            return
        kwargs = dict(methods=methods, variants=variants, steps=self.steps.value, samples=self.samples.value,
                      sg_samples=self.sg_samples.value, sg_level=self.sg_level.value, seed=self.seed.value,
                      batch_size=self.batch.value or None,
                      target=None if self.target.value == "predicted" else self.target.value,
                      gc_layer=self.gc_layer.value.strip() or None, occ_window=self.occ_window.value,
                      occ_stride=self.occ_stride.value, occ_fill=self.occ_fill.value)
        try:
            if "OCC" in methods and len(indices) > 1:
                raise ValueError("OCC (Occlusion) explains one slice at a time: choose 'current slice', "
                                 "or leave OCC out for several slices")
            per_slice = _evaluations(kwargs, self.picker.card().input_size)
        except (ValueError, OSError) as e:  # a combination the engine refuses (e.g. OCC with SmoothGrad only)
            show_error(f"Explain: {e}")
            self.status.value = f"error: {e}"
            return
        algorithm = self.xrai.value
        n_maps = len(_options(kwargs).pairs())  # OCC: plain only
        n_regions = 0 if algorithm == "off" else n_maps

        def job() -> Generator[int, None, dict]:
            from ..explain import (
                AttributionMaps,
                folder_references,
                iter_explain,
                iter_explain_volume,
                volume_references,
            )
            from ..model import load

            clf = load(source)
            # the domain check of each explained slice: one batched forward pass, no gradients
            # (about one evaluation per slice against the hundreds the maps take)
            if indices == [None]:
                domain = {None: clf.domain_check(data)}
            else:
                domain = dict(zip(indices, clf.domain_checks(data, indices, batch_size=self.batch.value or 32)))
            folder_refs = folder_references(folder) if refs_kind == "folder" else None
            results: dict = {}
            if len(indices) > 1:  # several slices: one plan, shared batches (explain_volume)
                refs_arg = {"volume": lambda k: volume_references(data, k), "folder": folder_refs}.get(refs_kind)
                vol_kw = {k: v for k, v in kwargs.items() if not k.startswith("occ_")}  # no OCC over slices
                vm = yield from _ticks(iter_explain_volume(clf, data, slices=indices, references=refs_arg,
                                                           full=False, **vol_kw), 0)
                for j, i in enumerate(vm.slices):
                    results[i] = AttributionMaps({k: m[j] for k, m in vm.items()},
                                                 {**vm.params, "target": vm.params["targets"][j],
                                                  "target_name": clf.class_names[vm.params["targets"][j]],
                                                  "predicted": vm.params["predicted"][j], "index": i})
            base = per_slice * len(indices) if len(indices) > 1 else 0
            for i in indices:
                slice_hu = data if i is None else data[i]
                if len(indices) == 1:
                    refs = {"volume": lambda: volume_references(data, i), "folder": lambda: folder_refs}.get(
                        refs_kind, lambda: None)()
                    if clf.card.is_2_5d and i is not None:  # neighbouring-slice channels come from the volume
                        step = iter_explain(clf, data, index=i, references=refs, **kwargs)
                    else:
                        step = iter_explain(clf, slice_hu, references=refs, **kwargs)
                    results[i] = yield from _ticks(step, base)
                    base += per_slice
                maps = results[i]
                if algorithm != "off":
                    from ..xrai import region_map, segment

                    seg = segment(slice_hu)
                    maps.regions = {}
                    for key, m in maps.items():
                        reg = region_map(np.abs(m), seg, algorithm=algorithm)
                        maps.regions[key] = (reg.values, reg.ranks)
                        base += 1
                        yield base
            return {"maps": results, "domain": domain}

        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.domain.visible = False
        self.status.value = f"{note}explaining {len(indices)} slice(s) with {n_maps} maps…"
        self.worker = start_worker(job, total=(per_slice + n_regions) * len(indices), description="Explain",
                                   on_done=lambda res: self._add_layers(layer, indices, res["maps"], note,
                                                                        res["domain"]),
                                   on_error=lambda e: self._finish(f"error: {e}"), progress=self.progress,
                                   unit=" + ".join(["gradients"] + (["occluded images"] if "OCC" in methods else [])
                                                   + (["regions"] if n_regions else [])),
                                   on_cancel=lambda: self._finish("cancelled: no layer was changed"))

    def cancel(self) -> None:
        """Stop at the next gradient batch; nothing is added."""
        if self.worker is not None:
            self.worker.quit()
            self.status.value = "cancelling…"

    def _finish(self, text: str) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.status.value = text

    def _add_layers(self, layer: napari.layers.Image, indices: list, results: dict, note: str = "",
                    domain: dict | None = None) -> None:
        domain = domain or {}
        keys = list(next(iter(results.values())).keys())
        whole = indices != [None] and len(indices) > 1
        first = next(iter(results.values()))
        targets = [int(results[i].params["target"]) for i in indices]  # each slice's explained class
        # The class is in the layer names only when it is not the one the model predicts.
        tag = first.params["target_name"] if self.target.value != "predicted" and any(
            results[i].params["target"] != results[i].params["predicted"] for i in indices) else ""
        index = None if whole else indices[0]
        scale, translate = slice_geometry(layer, index)
        n_z = int(np.shape(layer.data)[0]) if whole else 0

        def full_z(per_slice: list[np.ndarray]) -> np.ndarray:
            """(Z, H, W) over the whole CT, so the layer scrolls with it; 0 on slices not explained."""
            out = np.zeros((n_z, *per_slice[0].shape), dtype=per_slice[0].dtype)
            out[list(indices)] = np.stack(per_slice)
            return out

        for method, variant in keys:
            signed = full_z([results[i][method, variant] for i in indices]) if whole \
                else results[indices[0]][method, variant]
            signed = signed[None] if (index is not None and not whole) else signed
            meta = {"ctinterp_map": {"method": method, "variant": variant, "kind": "pixel", "absolute": True,
                                     "image": layer.name, "slices": [int(i) for i in indices if i is not None],
                                     **first.params, "targets": targets, "tag": tag, "full_z": whole,
                                     "domain": {str(k): {"label": c.label, "score": c.score,
                                                         "threshold": c.threshold} for k, c in domain.items()}},
                    "signed": signed}
            pre = [getattr(results[i], "gc_signed", {}).get((method, variant)) for i in indices]
            if method == "GC" and all(p is not None for p in pre):  # Grad-CAM before its ReLU
                meta["gc_pre_relu"] = full_z(pre) if whole else (pre[0][None] if index is not None else pre[0])
            upsert_image(self.viewer, map_layer_name(layer.name, method, variant, target=tag), np.abs(signed),
                         scale=scale, translate=translate, metadata=meta)
        n_xrai = 0
        if getattr(first, "regions", None):
            regions = {}
            for key in keys:
                per = [results[i].regions[key] for i in indices]
                if whole:
                    regions[key] = (full_z([v for v, _ in per]), full_z([r for _, r in per]))
                elif index is not None:
                    regions[key] = (np.stack([v for v, _ in per]), np.stack([r for _, r in per]))
                else:
                    regions[key] = per[0]
            base = {"image": layer.name, "algorithm": self.xrai.value,
                    "slices": [int(i) for i in indices if i is not None], **first.params, "targets": targets,
                    "tag": tag, "full_z": whole}
            add_xrai_layers(self.viewer, layer, regions, scale=scale, translate=translate, base_meta=base,
                            target=tag)
            self._last = {"image": layer.name, "regions": regions, "scale": scale, "translate": translate,
                          "tag": tag}
            self._quiet = True  # the regions layer is made (or updated) hidden; choosing a map shows it
            try:
                self.regions_of.reset_choices()
                self._update_regions()
            finally:
                self._quiet = False
            self.regions_of.visible = self.top_percent.visible = True
            n_xrai = len(keys)
        shown = DEFAULT_SHOWN if DEFAULT_SHOWN in keys else keys[0]
        show_map(self.viewer, self.viewer.layers[map_layer_name(layer.name, *shown, target=tag)])
        self.shown.reset_choices()
        self.shown.visible = True
        title = short_map_name(*shown) + (f" · →{tag}" if tag else "")
        self.shown.value = title
        text = trust_text(domain, layer)
        self.domain.visible = text is not None
        if text is not None:
            self.domain.value = text
        if first.params.get("gc_layer") and any(k[0] in ("GC", "GGC") for k in keys):
            note += f"Grad-CAM at {first.params['gc_layer']}. "
        skipped = first.params.get("not_computed") or []
        if skipped:
            note += f"{', '.join(skipped)} not computed (OCC is plain only). "
        self._finish(f"{note}{len(keys)} map layer(s){f' + {n_xrai} XRAI' if n_xrai else ''} for "
                     f"{len(indices)} slice(s); {title} shown first (choose another in \"show map\" or the Gallery)")

    def _shown_choices(self, _widget: Any = None) -> list[str]:
        image = self.layer.value
        if image is None:
            return []
        return [map_title(i) for ly in map_layers(self.viewer, image.name) if (i := map_info(ly))]

    def _follow_shown(self, event: Any) -> None:
        """A map shown from elsewhere (Gallery, Metrics) is the one named in "show map"."""
        info = map_info(event.value) if event.value is not None else None
        image = self.layer.value
        if info is None or image is None or info.get("image") != image.name or not self.shown.choices:
            return
        name = map_title(info)
        try:
            if self.shown.value != name:
                self.shown.reset_choices()
                self.shown.value = name
        except (ValueError, RuntimeError):  # not among the choices / widget closed
            pass

    def _show_chosen(self, name: str | None) -> None:
        image = self.layer.value
        if not name or image is None:
            return
        for ly in map_layers(self.viewer, image.name):
            i = map_info(ly)
            if map_title(i) == name:
                show_map(self.viewer, ly)
                return

    def _region_choices(self, _widget: Any = None) -> list[str]:
        if not self._last:
            return []
        return [xrai_layer_name(self._last["image"], m, v, self._last["tag"]) for m, v in self._last["regions"]]

    def _update_regions(self, *_: Any) -> None:
        """Show the chosen map's ranked regions, keeping the top k % of the area."""
        if not self._last or not self.regions_of.value:
            return
        last = self._last
        names = {xrai_layer_name(last["image"], m, v, last["tag"]): (m, v) for m, v in last["regions"]}
        key = names.get(self.regions_of.value)
        if key is None:
            return
        _values, ranks = self._last["regions"][key]
        labels = show_regions(self.viewer, self._last["image"], ranks, float(self.top_percent.value),
                              scale=self._last["scale"], translate=self._last["translate"],
                              source=self.regions_of.value)
        if not self._quiet:
            labels.visible = True  # asked for: the ranked regions of this map


def _ticks(step: Generator, base: int) -> Generator[int, None, Any]:
    """Re-yield the gradient evaluations done (offset by ``base``), forwarding the result."""
    while True:
        try:
            done, _total = next(step)
        except StopIteration as stop:
            return stop.value
        yield base + done


def _options(kw: dict):
    """The engine's options of the widget's settings (``ValueError`` for a refused combination)."""
    from ..explain.plan import ExplainOptions

    fields = ("methods", "variants", "steps", "samples", "sg_samples", "sg_level", "seed", "gc_layer",
              "occ_window", "occ_stride", "occ_fill")
    return ExplainOptions(**{k: kw[k] for k in fields})


def _evaluations(kw: dict, input_size: tuple[int, int]) -> int:
    """Progress units of one slice (gradient evaluations + occluded images); ``ValueError`` for
    options the engine refuses."""
    from ..explain.engine import job_size

    return job_size(_options(kw), tuple(input_size))
