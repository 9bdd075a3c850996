"""CT-contrast classifiers: architectures, model cards, checkpoints, loading, training.

``model.load("demo")`` returns the bundled resnet18 (256², trained on the phantom);
``model.load(path)`` a checkpoint with its card. See docs/model.md.
"""

from .architectures import ARCHITECTURES, build
from .card import ModelCard
from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .classifier import Classifier
from .devices import resolve_device
from .loading import clear_cache, demo_weights_path, load
from .selection import ModelSelection, selection

__all__ = [
    "ARCHITECTURES",
    "CheckpointError",
    "Classifier",
    "ModelCard",
    "ModelSelection",
    "build",
    "clear_cache",
    "demo_weights_path",
    "load",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "selection",
]
