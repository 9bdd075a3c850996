"""CT classifiers: architectures and their families, model cards, checkpoints, loading, training,
the out-of-domain check, and the bundled demo models.

``model.load("demo")`` returns the bundled resnet18 (256², trained on the phantom);
``model.load(path)`` a checkpoint with its card. ``model.family_of(clf)`` says what the package knows
about its network (``model.FAMILIES``); ``model.default_references(clf)`` which slices EG uses
when none are given. See docs/model.md.
"""

from .architectures import ARCHITECTURES, build
from .card import ModelCard
from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .classifier import Classifier
from .demos import DEMOS, default_references, demo_weights_path
from .devices import resolve_device
from .domain import DomainCheck
from .domain_fitting import fit_domain
from .families import FAMILIES, Family, family_of
from .loading import clear_cache, load
from .training import TrainOptions, train

__all__ = [
    "ARCHITECTURES",
    "DEMOS",
    "FAMILIES",
    "CheckpointError",
    "Classifier",
    "DomainCheck",
    "Family",
    "ModelCard",
    "TrainOptions",
    "build",
    "clear_cache",
    "default_references",
    "demo_weights_path",
    "family_of",
    "fit_domain",
    "load",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
]
