"""What a study computes, and the hash that keys its results on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..explain.plan import ALL_METHODS, METHODS, OCC_FILLS, PLAIN_ONLY, VARIANTS


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
        unknown = [m for m in self.methods if m not in ALL_METHODS]
        if unknown or not self.methods:
            raise ValueError(f"unknown method(s) {unknown}: choose from {' '.join(ALL_METHODS)}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"unknown variant(s) {bad}: choose from {' '.join(VARIANTS)}")
        plain_only = [m for m in self.methods if m in PLAIN_ONLY]
        if plain_only and "plain" not in self.variants:
            raise ValueError(f"{' '.join(plain_only)} has no SmoothGrad variant (plain only): add plain to the "
                             f"variants or leave {' '.join(plain_only)} out")
        if "OCC" in self.methods and (self.occ_window < 1 or not 1 <= self.occ_stride <= self.occ_window):
            raise ValueError(f"occlusion needs window ≥ 1 and 1 ≤ stride ≤ window (got window {self.occ_window}, "
                             f"stride {self.occ_stride})")
        if self.occ_fill not in OCC_FILLS:
            raise ValueError(f"occ_fill must be one of {OCC_FILLS}, not {self.occ_fill!r}")

    def key(self) -> str:
        """Short hash of everything that changes results (device and batch size do not).

        The options added with the methods beyond the paper enter the hash only when they are not
        at their defaults, so a study made before them keeps its key (and resumes)."""
        d = asdict(self)
        for name, default in _LATER_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        payload = json.dumps(d, sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        """JSON-ready parameters."""
        d = asdict(self)
        d["methods"], d["variants"] = list(self.methods), list(self.variants)
        return d


#: options added after the first studies (GC / OCC / sanity), left out of ``key`` at these values
_LATER_DEFAULTS = {"gc_layer": None, "occ_window": 16, "occ_stride": 8, "occ_fill": "black", "sanity": False}
