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

from .architectures import OUTPUT_ALIASES, OUTPUT_KINDS, check_architecture


@dataclass(frozen=True)
class ModelCard:
    """Description of a CT classifier checkpoint.

    Attributes
    ----------
    architecture : str
        ``resnet18`` / ``resnet34`` / ``resnet50``, any torchvision classification builder
        (``densenet121``, ``efficientnet_b0``, ``convnext_tiny``, ``vit_b_16``, ...),
        ``monai.<Network>``, or ``torchscript`` / ``exported`` for a self-contained file.
    input_size : tuple of int
        (H, W) the slice is resized to before the network.
    hu_window : tuple of float
        (low, high) HU clipped and scaled to [0, 1] ("black" = 0, "white" = 1); the window of
        the single channel when ``channels`` is empty (version-1 cards).
    output : str
        ``sigmoid`` (one logit, binary; v1 ``logit``), ``softmax`` (N logits; v1 ``softmax2``
        is N = 2) or ``multilabel`` (N independent sigmoids).
    class_names : tuple of str
        One name per class (binary: class 0, class 1).
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
    architecture_args : dict
        Keyword arguments of the builder (e.g. ``{"image_size": 128}`` for a ViT).
    channels : tuple of dict
        One entry per input channel: ``{"window": [low, high]}``, optionally
        ``"slice_offset": k`` (the slice k positions away: 2.5D). Empty: one channel, ``hu_window``.
    normalize : dict, optional
        ``{"mean": [...], "std": [...]}`` per channel, applied after windowing.
    positive_class : str
        Binary models: the class whose probability ``predict`` returns (default the last name).
    domain : dict, optional
        Out-of-domain statistics (``model.domain``).
    spatial_dims : int
        2: the model sees a slice (or, 2.5D, a slice and its neighbours as channels); 3: it sees
        the whole volume, ``input_size`` is (D, H, W) (see ``model.volume_input``).
    spacing_mm : tuple of float, optional
        3D only: (z, y, x) mm the CT is resampled to before it is centre-cropped / padded to
        ``input_size``; None: the volume is resized whole to ``input_size``.
    pad_hu : float
        3D with ``spacing_mm``: the HU value of the padding (air, −1000, by default).
    """

    architecture: str = "resnet18"
    input_size: tuple[int, ...] = (256, 256)
    hu_window: tuple[float, float] = (-1000.0, 1000.0)
    output: str = "logit"
    class_names: tuple[str, ...] = ("no contrast", "contrast")
    training: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    name: str = "ct-contrast classifier"
    notes: str = ""
    architecture_args: dict[str, Any] = field(default_factory=dict)
    channels: tuple[dict[str, Any], ...] = ()
    normalize: dict[str, Any] | None = None
    positive_class: str = ""
    domain: dict[str, Any] | None = None
    spatial_dims: int = 2
    spacing_mm: tuple[float, float, float] | None = None
    pad_hu: float = -1000.0

    def __post_init__(self) -> None:
        try:
            check_architecture(self.architecture, self.spatial_dims if self.spatial_dims in (2, 3) else None)
        except ValueError as e:
            raise ValueError(f"model card: {e}") from None
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"model card: unknown output kind {self.output!r}; choose sigmoid (one logit), "
                             f"softmax (N logits) or multilabel (N sigmoids)")
        lo, hi = self.hu_window
        if not hi > lo:
            raise ValueError(f"model card: hu_window must be (low, high) with high > low, got {self.hu_window}")
        self._check_dims()
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "hu_window", tuple(float(v) for v in self.hu_window))
        object.__setattr__(self, "class_names", tuple(str(v) for v in self.class_names))
        object.__setattr__(self, "channels", tuple(_channel(c, i) for i, c in enumerate(self.channels)))
        n, kind = len(self.class_names), self.kind
        if kind in ("sigmoid",) and n != 2:
            raise ValueError(f"model card: a {self.output!r} (one-logit) model has 2 classes; class_names has "
                             f"{n}: {list(self.class_names)}. Use output 'softmax' for N classes")
        if self.output == "softmax2" and n != 2:
            raise ValueError(f"model card: 'softmax2' has 2 classes; class_names has {n}. Use output 'softmax'")
        if kind == "softmax" and n < 2:
            raise ValueError(f"model card: a softmax model needs at least 2 class_names, got {n}")
        if n < 1 or len(set(self.class_names)) != n:
            raise ValueError(f"model card: class_names must be distinct names, got {list(self.class_names)}")
        if self.positive_class:
            if n != 2 or kind == "multilabel":
                raise ValueError("model card: positive_class is for binary models (2 classes, sigmoid or softmax)")
            if self.positive_class not in self.class_names:
                raise ValueError(f"model card: positive_class {self.positive_class!r} is not one of "
                                 f"{list(self.class_names)}")
        if self.channels and self.is_2_5d and all(c.get("slice_offset", 0) != 0 for c in self.channels):
            raise ValueError("model card: a 2.5D card needs one channel with slice_offset 0 (the slice explained)")
        if self.normalize is not None:
            mean, std = self.normalize.get("mean"), self.normalize.get("std")
            if mean is None or std is None or set(self.normalize) - {"mean", "std"}:
                raise ValueError(f"model card: normalize must be {{'mean': [...], 'std': [...]}}, got {self.normalize}")
            if len(mean) != self.in_channels or len(std) != self.in_channels:
                raise ValueError(f"model card: normalize has {len(mean)} means and {len(std)} stds for "
                                 f"{self.in_channels} channel(s): give one per channel")
            if min(float(v) for v in std) <= 0:
                raise ValueError(f"model card: normalize std must be > 0, got {list(std)}")
            object.__setattr__(self, "normalize", {"mean": [float(v) for v in mean], "std": [float(v) for v in std]})

    def _check_dims(self) -> None:
        """2D: input_size (H, W) >= 16; 3D: (D, H, W) >= 8 a side, no slice offsets, a valid spacing."""
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"model card: spatial_dims is 2 (a slice) or 3 (the whole volume), "
                             f"got {self.spatial_dims!r}")
        if self.spatial_dims == 2:
            if len(self.input_size) != 2 or min(self.input_size) < 16:
                raise ValueError(f"model card: input_size must be (H, W) >= 16, got {list(self.input_size)}"
                                 + (" — a (D, H, W) size is a 3D model's: add \"spatial_dims\": 3"
                                    if len(self.input_size) == 3 else ""))
            if self.spacing_mm is not None:
                raise ValueError("model card: spacing_mm is for 3D models (spatial_dims 3); a 2D model's slice is "
                                 "resized to input_size")
            return
        if len(self.input_size) != 3 or min(self.input_size) < 8:
            raise ValueError(f"model card: a 3D model's input_size is (D, H, W), each >= 8, "
                             f"got {list(self.input_size)}")
        if any("slice_offset" in c for c in self.channels):
            raise ValueError("model card: a 3D model sees the whole volume, so channels at slice offsets (2.5D) make "
                             "no sense: remove 'slice_offset' from its channels (channels are HU windows)")
        if self.spacing_mm is not None:
            sp = tuple(float(v) for v in self.spacing_mm)
            if len(sp) != 3 or min(sp) <= 0:
                raise ValueError(f"model card: spacing_mm is (z, y, x) in mm, each > 0, got {self.spacing_mm}")
            object.__setattr__(self, "spacing_mm", sp)
        object.__setattr__(self, "pad_hu", float(self.pad_hu))

    # -- derived ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``sigmoid``, ``softmax`` or ``multilabel`` (v1 names mapped)."""
        return OUTPUT_ALIASES.get(self.output, self.output)

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def n_logits(self) -> int:
        """Logits of the network's head: 1 for a sigmoid model, N otherwise."""
        return 1 if self.kind == "sigmoid" else self.n_classes

    @property
    def windows(self) -> list[tuple[float, float]]:
        """HU window of each input channel."""
        return [tuple(c["window"]) for c in self.channels] if self.channels else [self.hu_window]

    @property
    def slice_offsets(self) -> list[int]:
        """Slice offset of each input channel (0 = the slice itself)."""
        return [int(c.get("slice_offset", 0)) for c in self.channels] if self.channels else [0]

    @property
    def in_channels(self) -> int:
        """Input channels of the network."""
        return len(self.windows)

    @property
    def is_3d(self) -> bool:
        """True when the model sees the whole volume (``spatial_dims`` 3)."""
        return self.spatial_dims == 3

    @property
    def is_2_5d(self) -> bool:
        """True when some channel is a neighbouring slice (the model takes a volume and an index)."""
        return any(o != 0 for o in self.slice_offsets)

    @property
    def positive_index(self) -> int:
        """Binary models: index of the class whose probability ``predict`` returns."""
        return self.class_names.index(self.positive_class) if self.positive_class else self.n_classes - 1

    def class_index(self, target: int | str) -> int:
        """A class given by index or name → its index; ``ValueError`` naming the classes otherwise."""
        if isinstance(target, str):
            if target not in self.class_names:
                raise ValueError(f"unknown class {target!r}: this model's classes are {list(self.class_names)}")
            return self.class_names.index(target)
        t = int(target)
        if not 0 <= t < self.n_classes or t != target:
            raise ValueError(f"class index {target!r} out of range: this model has {self.n_classes} classes "
                             f"{list(self.class_names)}")
        return t

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (a version-1 card's keys only, when it uses no v2 field)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["hu_window"] = list(self.hu_window)
        d["class_names"] = list(self.class_names)
        d["channels"] = [dict(c) for c in self.channels]
        d["spacing_mm"] = None if self.spacing_mm is None else list(self.spacing_mm)
        for key, empty in (("architecture_args", {}), ("channels", []), ("normalize", None), ("positive_class", ""),
                           ("domain", None), ("spatial_dims", 2), ("spacing_mm", None), ("pad_hu", -1000.0)):
            if d[key] == empty:
                del d[key]
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
    for ext in (".safetensors", ".pt2", ".pt", ".pth", ".ts", ".torchscript"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return p.with_name(name + ".json")


def _channel(c: Any, i: int) -> dict[str, Any]:
    """A channel entry, checked: ``{"window": (low, high), "slice_offset": k}``."""
    if not isinstance(c, dict) or "window" not in c or set(c) - {"window", "slice_offset"}:
        raise ValueError(f"model card: channels[{i}] must be {{'window': [low, high]}} with optional "
                         f"'slice_offset', got {c!r}")
    w = c["window"]
    if len(w) != 2 or not float(w[1]) > float(w[0]):
        raise ValueError(f"model card: channels[{i}] window must be [low, high] with high > low, got {w}")
    out: dict[str, Any] = {"window": (float(w[0]), float(w[1]))}
    if "slice_offset" in c:
        k = c["slice_offset"]
        if int(k) != k:
            raise ValueError(f"model card: channels[{i}] slice_offset must be an integer, got {k!r}")
        out["slice_offset"] = int(k)
    return out
