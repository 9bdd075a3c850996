"""The bundled demo models: their weights files, and the reference slices EG uses with them.

Both demos were trained on the phantom (``ctinterp train --demo`` / ``--demo-phase``), so their
Expected Gradients references are phantom slices from the *training* seed range: the recipe is
``model.datasets.phantom_spec("train", 16, seed=424242)`` rendered to HU. :func:`default_references`
is the one answer to "which references does EG use by default for this classifier": the demo set
for a demo model, none (the caller must give some) for any other.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

DEMO_WEIGHTS = "demo_resnet18.safetensors"
#: The bundled demo models: name → weights file (package data, card beside it).
DEMOS: dict[str, str] = {"demo": DEMO_WEIGHTS, "demo-phase": "demo_phase_densenet121.safetensors",
                         "demo-3d": "demo-3d.safetensors",
                         # the demo's resnet18 fine-tuned to read a planted marker (issue 31's ground truth)
                         "demo-shortcut": "demo_shortcut_resnet18.safetensors"}
#: The 3D demo's EG references: 8 held-out phantom volumes at its input size, HU, float16.
DEMO_3D_REFERENCES = "demo-3d.references.npy"
#: Number of phantom slices in the demo models' EG reference set.
DEMO_REFERENCES = 16
#: Seed of the reference set's phantom specs (drawn from the training seed range).
REFERENCE_SEED = 424242


class _Sourced(Protocol):
    """A classifier, as far as the demos are concerned: where it was loaded from."""

    source: str


def demo_weights_path(name: str = "demo") -> Path:
    """Path of a bundled demo model's weights (package data): ``"demo"`` or ``"demo-phase"``."""
    if name not in DEMOS:
        raise ValueError(f"no bundled model {name!r}; bundled: {', '.join(DEMOS)}")
    return Path(str(resources.files("napari_ctinterp.model") / "weights" / DEMOS[name]))


@functools.lru_cache(maxsize=2)
def demo_references(n: int = DEMO_REFERENCES) -> np.ndarray:
    """The demo models' EG reference set: ``n`` phantom slices from the training seed range, (n, H, W) HU."""
    from ..phantom import make_slice
    from .datasets import phantom_spec

    specs = phantom_spec("train", n, seed=REFERENCE_SEED)
    return np.stack([make_slice(s["seed"], contrast=s["contrast"], phase=s["phase"]).hu for s in specs])


@functools.lru_cache(maxsize=1)
def demo_3d_references() -> np.ndarray:
    """The 3D demo's EG reference volumes, (8, D, H, W) HU at its input size (package data)."""
    path = resources.files("napari_ctinterp.model") / "weights" / DEMO_3D_REFERENCES
    with resources.as_file(path) as p:
        return np.load(p).astype(np.float32)


def default_references(clf: _Sourced) -> tuple[np.ndarray, str] | None:
    """The reference slices EG uses for ``clf`` when none are given, and their description.

    Returns
    -------
    tuple of (numpy.ndarray, str) or None
        A demo model: its reference set (K, H, W) in HU and ``"demo set (16 phantom slices)"``.
        Any other model: None — EG then needs references from the caller (training slices, or
        other slices of the open volume).
    """
    if clf.source not in DEMOS:
        return None
    if clf.source == "demo-3d":
        refs = demo_3d_references()
        return refs, f"demo set ({len(refs)} phantom volumes)"
    return demo_references(), f"demo set ({DEMO_REFERENCES} phantom slices)"
