"""What a study computes, and the hash that keys its results on disk."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..explain.plan import METHODS, VARIANTS


@dataclass(frozen=True)
class StudyConfig:
    """Every parameter of a study run (recorded in the report; hashed to key the results).

    ``data`` is ``"demo"`` (phantom slices with ground-truth masks) or a folder; ``model`` is
    ``"demo"`` or a checkpoint path. ``model_sha256`` is filled from the loaded model's card.
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
    model_sha256: str = ""
    extra: dict = field(default_factory=dict)

    def key(self) -> str:
        """Short hash of everything that changes results (device and batch size do not)."""
        payload = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        """JSON-ready parameters."""
        d = asdict(self)
        d["methods"], d["variants"] = list(self.methods), list(self.variants)
        return d
