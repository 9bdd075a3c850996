"""The model card: a JSON file that travels with every checkpoint.

It says what the network expects (architecture, input size, HU window, output kind, class names)
and where it came from (training data and command, seed, measured accuracy, weights hash). Every
later step (preprocessing, attribution, fidelity) reads its input space from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .architectures import ARCHITECTURES, OUTPUT_KINDS


@dataclass(frozen=True)
class ModelCard:
    """Description of a CT classifier checkpoint.

    Attributes
    ----------
    architecture : str
        ``resnet18``, ``resnet34`` or ``resnet50``.
    input_size : tuple of int
        (H, W) the slice is resized to before the network.
    hu_window : tuple of float
        (low, high) HU clipped and scaled to [0, 1] ("black" = 0, "white" = 1).
    output : str
        ``logit`` (one logit, sigmoid = P(contrast)) or ``softmax2`` (two logits).
    class_names : tuple of str
        Names of class 0 and class 1 (class 1 = contrast).
    training : dict
        Data, command, seed, epochs, augmentation, ... as recorded by the trainer.
    accuracy : dict
        Measured accuracies, e.g. ``{"held_out": 0.997, "held_out_n": 1000}``.
    weights_sha256 : str
        SHA-256 of the weights file this card describes ("" if not yet saved).
    name : str
        Short human name.
    notes : str
        Free text (intended use, limits).
    """

    architecture: str = "resnet18"
    input_size: tuple[int, int] = (256, 256)
    hu_window: tuple[float, float] = (-1000.0, 1000.0)
    output: str = "logit"
    class_names: tuple[str, str] = ("no contrast", "contrast")
    training: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    name: str = "ct-contrast classifier"
    notes: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"model card: unknown architecture {self.architecture!r} ({ARCHITECTURES})")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"model card: unknown output kind {self.output!r} ({OUTPUT_KINDS})")
        lo, hi = self.hu_window
        if not hi > lo:
            raise ValueError(f"model card: hu_window must be (low, high) with high > low, got {self.hu_window}")
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise ValueError(f"model card: input_size must be (H, W) >= 16, got {self.input_size}")
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "hu_window", tuple(float(v) for v in self.hu_window))
        object.__setattr__(self, "class_names", tuple(str(v) for v in self.class_names))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["hu_window"] = list(self.hu_window)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        """Build from a dictionary; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"model card: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)

    def save(self, path: str | Path) -> Path:
        """Write the card as JSON."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return p

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read a card written by ``save``."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"model card {p} not found: every checkpoint needs its card "
                                    f"(JSON, same name with .json) — see docs/model.md") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"model card {p} is not valid JSON: {e}") from None
        return cls.from_dict(d)

    def with_weights(self, weights_path: str | Path) -> ModelCard:
        """A copy whose ``weights_sha256`` is the hash of ``weights_path``."""
        return replace(self, weights_sha256=file_sha256(weights_path))

    @property
    def short_hash(self) -> str:
        """First 12 hex digits of the weights hash (recorded with every result)."""
        return self.weights_sha256[:12]


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path_for(weights: str | Path) -> Path:
    """Where a checkpoint's card lives: ``<name>.json`` beside ``<name>.<ext>``."""
    p = Path(weights)
    name = p.name
    for ext in (".safetensors", ".pt", ".pth", ".ts", ".torchscript"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".json")
