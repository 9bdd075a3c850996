"""Classify dock widget: P(contrast) for the current slice or every slice of a CT layer — or, with
a 3D model, one answer for the whole volume.

Thin: reads its fields, runs ``model.load`` and ``Classifier.predict`` in a background worker
with a progress bar, shows the result and stores it in the layer's metadata. A 3D model sees the
whole volume: the slice choice is hidden, the volume (with its spacing, ``volume_model``) goes
through one forward pass that gives every class's probability and the out-of-domain verdict; a
single slice or a volume too thin for the model is refused in the widget before any work.
"""

from __future__ import annotations

from collections.abc import Generator

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton, RadioButtons, Table
from napari.utils.notifications import show_error

from ..progress import Step
from .dock_layout import limit_width, make_scrollable, wrapping_label
from .layer_choice import ct_combo, current_slice_index, not_hu_reason
from .model_picker import ModelPicker
from .trust import show_trust, trust_text
from .volume_model import layer_spacing_mm, volume_refusal
from .workers import JobProgress, start_worker

METADATA_KEY = "ctinterp_classification"


class ClassifyWidget(Container):
    """Dock widget: choose the CT layer and the model, classify, see P(contrast)."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.layer = ct_combo(self.viewer)  # starts on the CT the canvas shows
        self.picker = ModelPicker()
        self.model, self.path, self.model_info = self.picker.widgets
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.scope = RadioButtons(label="slices", choices=["current slice", "all slices"], value="current slice")
        self.volume_note = wrapping_label("a 3D model classifies the whole volume: one answer per volume",
                                          visible=False)
        self.run_button = PushButton(text="Classify")
        self.progress = JobProgress()
        self.result = wrapping_label()
        self.domain = wrapping_label()  # the out-of-domain warning, next to the result
        self.domain.visible = False
        self.table = Table(value={"slice": [], "P(contrast)": [], "class": []})
        self.table.visible = False
        self.extend([self.layer, self.model, self.path, self.model_info, self.device, self.scope, self.volume_note,
                     self.run_button,
                     *self.progress.widgets, self.result, self.domain,
                     self.table])
        limit_width(self)
        make_scrollable(self)
        self.run_button.changed.connect(self.classify)
        self.viewer.layers.events.inserted.connect(self.layer.reset_choices)
        self.viewer.layers.events.removed.connect(self.layer.reset_choices)
        self.model.changed.connect(self._model_kind)
        self.path.changed.connect(self._model_kind)
        self.worker = None
        self._model_kind()

    def _model_kind(self, *_: object) -> None:
        """A 3D model answers for the whole volume: no slice choice."""
        three_d = self.picker.is_3d()
        self.scope.visible, self.volume_note.visible = not three_d, three_d

    def _source(self) -> str:
        return self.picker.source()

    def classify(self) -> None:
        """Start classification in a background worker."""
        layer = self.layer.value
        if layer is None:
            show_error("Classify: open a CT image layer first (File ▸ Open, or a sample)")
            return
        try:
            reason = not_hu_reason(layer)
            if reason is not None:
                raise ValueError(reason)
            source = self._source()
            if self.picker.is_3d():
                reason = volume_refusal(layer, self.picker.card())
                if reason is not None:
                    raise ValueError(reason)
                self._classify_volume(layer, source)
                return
        except ValueError as e:
            show_error(f"Classify: {e}")
            self._reset(f"error: {e}")
            return
        data = np.asarray(layer.data)
        if self.scope.value == "current slice" or data.ndim == 2:
            idx = current_slice_index(self.viewer, layer)
            indices = [idx] if idx is not None else [None]
        else:
            indices = list(range(data.shape[0]))
        device = self.device.value
        self.run_button.enabled = False
        self.result.value = "classifying…"

        total = 1 + (len(indices) + 15) // 16

        def job() -> Generator[Step, None, dict]:
            from ..model import load

            clf = load(source, device=device)
            if clf.card.is_3d:  # the card changed on disk since it was read: never per-slice answers of a 3D model
                raise ValueError(f"{clf.card.name or source} is a 3D model (it sees the whole volume): Classify "
                                 "again to classify the volume")
            yield Step(1, total)
            probs: dict[int | None, np.ndarray] = {}  # slice → (N,) class probabilities
            domain: dict = {}  # slice → DomainCheck, from the same forward pass
            for i in range(0, len(indices), 16):
                chunk = indices[i : i + 16]
                if chunk == [None]:
                    p, d = clf.proba_and_domain(data)
                elif clf.card.is_2_5d:  # neighbouring slices come from the volume
                    pairs = [clf.proba_and_domain(data, index=k) for k in chunk]
                    p, d = np.concatenate([q for q, _ in pairs]), [c for _, cs in pairs for c in cs]
                else:
                    p, d = clf.proba_and_domain(data[chunk])
                probs.update(zip(chunk, p))
                domain.update(zip(chunk, d))
                yield Step(2 + i // 16, total)
            return {"probs": probs, "domain": domain, "model": source, "card_hash": clf.card.short_hash,
                    "class_names": clf.card.class_names, "device": str(clf.device),
                    "positive": clf.card.positive_index if clf.binary else None}

        self.worker = start_worker(job, total=total, description="Classifying",
                                   on_done=lambda res: self._show(layer, res),
                                   on_error=lambda e: self._reset(f"error: {e}"), progress=self.progress,
                                   unit="batches")

    def _classify_volume(self, layer: napari.layers.Image, source: str) -> None:
        """A 3D model: the whole volume, one forward pass (every class's probability and the domain
        check), in a background worker."""
        data = np.asarray(layer.data, dtype=np.float32)
        spacing, device = layer_spacing_mm(layer), self.device.value
        self.run_button.enabled = False
        self.result.value = f"classifying the whole volume ({data.shape[0]} slices)…"

        def job() -> Generator[Step, None, dict]:
            from ..model import load

            clf = load(source, device=device)
            yield Step(1, 2, "model loaded")
            if not clf.card.is_3d:
                raise ValueError(f"{clf.card.name or source} is not a 3D model (its card changed): Classify again")
            logits, found = clf.logits_and_domain(clf.preprocess(data, spacing_mm=spacing))
            p = clf.proba(logits).cpu().numpy().astype(np.float64)[0]
            yield Step(2, 2, "volume classified")
            return {"probs": {None: p}, "domain": {None: found[0]}, "model": source,
                    "card_hash": clf.card.short_hash, "class_names": clf.card.class_names, "device": str(clf.device),
                    "positive": clf.card.positive_index if clf.binary else None, "n_slices": int(data.shape[0]),
                    "spacing_mm": None if spacing is None else list(spacing)}

        self.worker = start_worker(job, total=2, description="Classifying the volume",
                                   on_done=lambda res: self._show(layer, res),
                                   on_error=lambda e: self._reset(f"error: {e}"), progress=self.progress,
                                   unit="steps")

    def _show_domain(self, domain: dict, layer: napari.layers.Image | None = None, volume: bool = False) -> None:
        """The out-of-domain (and not-CT) warning, or "unknown", next to the result."""
        text = trust_text(domain, layer)
        if volume and text:  # one verdict for the whole volume
            text = text.replace("— this slice:", "— this volume:")
        show_trust(self.domain, text)

    def _reset(self, text: str) -> None:
        self.run_button.enabled = True
        self.result.value = text
        self.domain.visible = False
        if text.startswith("error:"):  # no stale answer of another model under the error
            self.table.value = {"slice": [], "P(contrast)": [], "class": []}
            self.table.visible = False

    def _show(self, layer: napari.layers.Image, res: dict) -> None:
        names, pos = res["class_names"], res["positive"]
        n_volume = res.get("n_slices")  # a 3D model's answer: the whole volume's
        ordered = sorted(res["probs"].items(), key=lambda kv: -1 if kv[0] is None else kv[0])

        def predicted(p: np.ndarray) -> int:
            return (pos if p[pos] >= 0.5 else 1 - pos) if pos is not None else int(np.argmax(p))

        rows = [{"slice": ("volume" if n_volume else "—") if k is None else k, "p": [round(float(v), 4) for v in p],
                 "class": names[predicted(p)]} for k, p in ordered]
        first = rows[0]
        where = f" (whole volume, {n_volume} slices)" if n_volume else \
            "" if first["slice"] == "—" else f" (slice {first['slice']})"
        if pos is not None:  # binary: the probability of the positive class, as before
            text = f"P({names[pos]}) = {first['p'][pos]:.3f} → {first['class']}{where}"
            columns = {"slice": [r["slice"] for r in rows], f"P({names[pos]})": [r["p"][pos] for r in rows]}
        else:
            text = (f"→ {first['class']}{where}; P: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(names, first["p"])))
            columns = {"slice": [r["slice"] for r in rows]}
            columns.update({f"P({n})": [r["p"][c] for r in rows] for c, n in enumerate(names)})
        columns["class"] = [r["class"] for r in rows]
        if pos is None and len(rows) == 1:  # one slice, N classes: a row per class fits the dock's width
            columns = {"class": list(names), "P": [f"{v:.4f}" for v in first["p"]],
                       "predicted": ["◀" if n == first["class"] else "" for n in names]}
        if len(rows) > 1:
            counts = {n: sum(r["class"] == n for r in rows) for n in names}
            text = (f"{counts[names[pos]]} of {len(rows)} slices: {names[pos]}" if pos is not None else
                    f"{len(rows)} slices: " + ", ".join(f"{c} {n}" for n, c in counts.items() if c))
        self._reset(text)
        self._show_domain(res.get("domain", {}), layer, volume=bool(n_volume))
        if len(rows) > 1 and res.get("domain"):
            columns["domain"] = [res["domain"][k].label for k, _p in ordered]
        self.table.value = columns
        self.table.visible = True
        meta = dict(layer.metadata.get(METADATA_KEY, {}))
        for r in rows:
            entry = {"p": r["p"], "class_names": list(names), "class": r["class"], "model": res["model"],
                     "card_sha256_12": res["card_hash"]}
            if n_volume:  # a 3D model's answer for the whole volume
                entry.update(n_slices=n_volume, spacing_mm=res.get("spacing_mm"))
            if pos is not None:
                entry["p_contrast" if names[pos] == "contrast" else f"p_{names[pos]}"] = r["p"][pos]
            check = res.get("domain", {}).get(None if r["slice"] in ("—", "volume") else r["slice"])
            if check is not None:
                entry["domain"] = {"label": check.label, "score": check.score, "threshold": check.threshold}
            meta[str(r["slice"])] = entry
        layer.metadata[METADATA_KEY] = meta

