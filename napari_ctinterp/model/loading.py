"""``model.load``: one entry point for the demo model and checkpoint files, with a small cache.

The cache is what widgets share: the same source on the same device returns the same
``Classifier`` object (a changed file on disk is a new source).
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from .card import ModelCard, card_path_for
from .checkpoints import load_checkpoint
from .classifier import Classifier
from .demos import DEMOS, demo_weights_path
from .devices import resolve_device

_CACHE: dict[tuple, Classifier] = {}
_LOCK = threading.Lock()


def load(source: str | Path = "demo", device: str | torch.device = "auto", *,
         card: ModelCard | str | Path | None = None, trust_pickle: bool = False) -> Classifier:
    """Load a CT classifier.

    Parameters
    ----------
    source : str or Path
        ``"demo"`` (bundled resnet18, 256², contrast yes/no), ``"demo-phase"`` (bundled
        densenet121, 128², three windows, four contrast phases), both trained on the phantom; or a
        checkpoint file:
        ``.safetensors``; a state_dict saved with ``torch.save`` (read with
        ``weights_only=True``); TorchScript; or — only with ``trust_pickle=True`` — a fully
        pickled ``nn.Module``. The card is ``<name>.json`` beside the file unless ``card`` is
        given.
    device : str or torch.device
        ``"auto"`` (CUDA, then MPS, else CPU), or an explicit device.
    card : ModelCard or path, optional
        The model card, when it is not beside the weights.
    trust_pickle : bool
        Allow unpickling a full model (runs code from the file).

    Returns
    -------
    Classifier
        The same object for the same source and device (cached).
    """
    dev = resolve_device(device)
    demo = str(source) in DEMOS
    path = demo_weights_path(str(source)) if demo else Path(source).expanduser().resolve()
    stat = path.stat() if path.exists() else None
    card_file = None if isinstance(card, ModelCard) else Path(card) if card is not None else card_path_for(path)
    cstat = card_file.stat() if card_file is not None and card_file.exists() else None
    key = (str(path), stat.st_mtime_ns if stat else None, stat.st_size if stat else None, str(dev),
           str(card) if card is not None else None,  # an edited card is a new model too
           (cstat.st_mtime_ns, cstat.st_size) if cstat is not None else None)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if demo and not path.exists():
            flag = "--demo" if str(source) == "demo" else "--demo-phase"
            raise FileNotFoundError(f"the bundled model {source!r} is missing from the package ({path}); reinstall "
                                    f"napari-ctinterp or run `ctinterp train {flag}`")
        module, the_card = load_checkpoint(path, card=card, trust_pickle=trust_pickle)
        clf = Classifier(module=module, card=the_card, device=dev, source=str(source), weights_path=str(path))
        _CACHE[key] = clf
        return clf


def clear_cache() -> None:
    """Forget every cached classifier (tests, or to free memory)."""
    with _LOCK:
        _CACHE.clear()
