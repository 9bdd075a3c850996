"""What a study computes, and the hash that keys its results on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from ..explain.plan import METHODS, VARIANTS, ExplainOptions


@dataclass(frozen=True)
class StudyConfig:
    """Every parameter of a study run (recorded in the report; hashed to key the results).

    ``data`` is ``"demo"`` (phantom slices with ground-truth masks) or a folder; ``model`` is
    ``"demo"`` or a checkpoint path. ``model_sha256`` is filled from the loaded model's card.
    ``methods`` may hold the paper's five and the methods beyond it (``explain.EXTRA_METHODS``:
    GC, GBP, GGC, OCC; OCC is scored plain only). ``gc_layer`` names Grad-CAM's target layer
    (None: the family's last spatial block); ``occ_*`` are Occlusion's window, stride and fill.
    ``sanity`` adds the cascading randomisation test of the example slice (plain maps of every
    method) to the report.
    """

    data: str = "demo"
    model: str = "demo"
    slices: int = 8
    methods: tuple[str, ...] = METHODS
    variants: tuple[str, ...] = VARIANTS
    steps: int = 25
    samples: int = 50
    sg_samples: int = 15
    sg_level: float = 0.15
    seed: int = 0
    xrai: str = "full"
    fidelity_step: float = 2.5
    gc_layer: str | None = None
    occ_window: int = 16
    occ_stride: int = 8
    occ_fill: str = "black"
    sanity: bool = False
    model_sha256: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the engine's own checks (names, OCC plain only, window and stride), before any slice runs
        ExplainOptions(methods=tuple(self.methods), variants=tuple(self.variants), steps=self.steps,
                       samples=self.samples, sg_samples=self.sg_samples, sg_level=self.sg_level, seed=self.seed,
                       gc_layer=self.gc_layer, occ_window=self.occ_window, occ_stride=self.occ_stride,
                       occ_fill=self.occ_fill)

    def key(self) -> str:
        """Short hash of everything that changes results (device and batch size do not).

        The options added with the methods beyond the paper enter the hash only when they are not
        at their defaults, so a study made before them keeps its key (and resumes)."""
        d = asdict(self)
        for f in fields(self):
            if f.name in _LATER and d[f.name] == f.default:
                del d[f.name]
        payload = json.dumps(d, sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        """JSON-ready parameters."""
        d = asdict(self)
        d["methods"], d["variants"] = list(self.methods), list(self.variants)
        return d


#: options added after the first studies (GC / OCC / sanity), left out of ``key`` at their defaults
_LATER = ("gc_layer", "occ_window", "occ_stride", "occ_fill", "sanity")
