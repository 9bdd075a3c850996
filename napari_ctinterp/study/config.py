"""What a study computes, and the hash that keys its results on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from ..explain.options import ExplainOptions
from ..metrics.schema import MORE_SCORES, STUDY_METRICS

#: The forms of a map a study scores: its absolute value and its signed map.
SIGNS = ("absolute", "signed")


@dataclass(frozen=True, init=False)
class StudyConfig:
    """Every parameter of a study run (recorded in the report; hashed to key the results).

    Parameters
    ----------
    data : str
        ``"demo"`` (phantom slices with ground-truth masks) or a folder with ``labels.csv``.
    model : str
        ``"demo"``, ``"demo-phase"`` or a checkpoint path.
    slices : int
        How many slices (0: every slice of the folder).
    explain : ExplainOptions
        The maps' methods, variants and settings (the one options object of ``explain``). For
        convenience its fields are also accepted as keywords (``StudyConfig(methods=("BP",),
        steps=8)``: overrides of ``explain``) and read as attributes (``cfg.methods``).
    xrai : {"full", "fast", "off"}
        XRAI region maps beside the pixel maps.
    fidelity_step : float
        Percent step of the fidelity curves (2.5, the paper's).
    sanity : bool
        Add the cascading randomisation test of the example slice (plain maps of every method).
    signs : tuple of {"absolute", "signed"}
        Which forms of each map are scored: ``absolute`` always (the tables and the report read it),
        ``signed`` too by default; the shortcut benchmark, which reads the absolute maps only, asks
        for ``("absolute",)`` and halves its fidelity cost.
    metrics : tuple of str
        The scores beyond the paper's computed for every map (``metrics.schema.MORE_SCORES``):
        ``STUDY_METRICS`` by default; ``max_sensitivity`` explains each slice 10 more times.
    model_sha256 : str
        Filled from the loaded model's card.
    extra : dict
        Free-form notes kept with the results.
    """

    data: str = "demo"
    model: str = "demo"
    slices: int = 8
    explain: ExplainOptions = field(default_factory=ExplainOptions)
    xrai: str = "full"
    fidelity_step: float = 2.5
    sanity: bool = False
    signs: tuple[str, ...] = SIGNS
    metrics: tuple[str, ...] = STUDY_METRICS
    model_sha256: str = ""
    extra: dict = field(default_factory=dict)

    def __init__(self, data: str = "demo", model: str = "demo", slices: int = 8,
                 explain: ExplainOptions | None = None, xrai: str = "full", fidelity_step: float = 2.5,
                 sanity: bool = False, model_sha256: str = "", extra: dict | None = None,
                 signs: tuple[str, ...] | list[str] = SIGNS,
                 metrics: tuple[str, ...] | list[str] = STUDY_METRICS, **explain_options: Any) -> None:
        # ``ExplainOptions.updated`` refuses a name that is no explain option (TypeError) and checks
        # the values (names, OCC plain only, window and stride) before any slice runs
        opts = (explain or ExplainOptions()).updated(**explain_options)
        signs = tuple(signs)
        if "absolute" not in signs or any(x not in SIGNS for x in signs) or len(set(signs)) != len(signs):
            raise ValueError(f"signs must name absolute (the tables and the report read the absolute maps), and "
                             f"signed too if you like, once each; got {list(signs)}")
        signs = tuple(x for x in SIGNS if x in signs)  # one order: the key does not hang on how they were listed
        unknown = [m for m in metrics if m not in MORE_SCORES]
        if unknown:
            raise ValueError(f"unknown metric {', '.join(map(str, unknown))}; choose from {' '.join(MORE_SCORES)}")
        metrics = tuple(m for m in MORE_SCORES if m in metrics)
        for name, value in (("data", data), ("model", model), ("slices", slices), ("explain", opts),
                            ("xrai", xrai), ("fidelity_step", fidelity_step), ("sanity", sanity),
                            ("signs", signs), ("metrics", metrics), ("model_sha256", model_sha256),
                            ("extra", dict(extra or {}))):
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # the explain options read through the study (cfg.methods is cfg.explain.methods)
        if name in ExplainOptions.names():
            return getattr(self.__dict__["explain"], name)
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def key(self) -> str:
        """Short hash of everything that changes a slice's results — not the device, the batch size
        or how many slices are asked for: a study asked for more slices reuses those it has.

        The payload is the flat parameter record of ``to_dict`` without ``slices``; the options
        added after the first studies (Grad-CAM's layer, occlusion, sanity, the IG quadrature) enter
        it only when they are not at their defaults."""
        return self._hash(with_slices=False)

    def legacy_key(self) -> str:
        """The key studies made before 2026-12-05 were stored under (it hashed ``slices`` too):
        ``run_study`` moves such a folder to ``key()`` and resumes it."""
        return self._hash(with_slices=True)

    def _hash(self, *, with_slices: bool) -> str:
        d = self.to_dict()
        if not with_slices:
            del d["slices"]
        defaults = {f.name: f.default for f in fields(ExplainOptions)} | {"sanity": False, "signs": list(SIGNS),
                                                                    "metrics": list(STUDY_METRICS)}
        for name in _LATER:
            if d[name] == defaults[name]:
                del d[name]
        payload = json.dumps(d, sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        """JSON-ready parameters, flat (the explain options beside the study's own, as in
        ``config.json``); ``StudyConfig(**cfg.to_dict())`` gives the same config back."""
        opts = {f.name: getattr(self.explain, f.name) for f in fields(ExplainOptions)}
        opts["methods"], opts["variants"] = list(self.explain.methods), list(self.explain.variants)
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "explain"}
        own["signs"], own["metrics"] = list(self.signs), list(self.metrics)
        return {**own, **opts, "extra": dict(self.extra)}


#: options added after the first studies (GC / OCC / sanity / IG rule / signs / metrics), left out of ``key`` at
#: their defaults (a study resumed from results made before its metrics existed has them for its new slices only)
_LATER = ("gc_layer", "occ_window", "occ_stride", "occ_fill", "sanity", "ig_method", "signs", "metrics")
