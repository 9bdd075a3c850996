"""Training and evaluation data of the 3D demo model: whole phantom volumes, deterministic by seed.

Each example is one series of ``phantom.make_volume``: a body, its contrast phase (or none) and its
3D mask, with a field of view along z drawn per series (slices, spacing, centre level) so that the
network must read the phase from wherever the great vessels, the heart and the liver happen to lie
in the volume. Volumes are brought to the model's input space the way a 3D card without
``spacing_mm`` does it: each channel's HU window, then the whole volume resized to ``input_size``
(:func:`volume_input`). Labels follow the phantom tasks of ``model.datasets`` (``"phase"``: 0–3 =
``PHASE_CLASSES``; ``"contrast"``: 0/1); seeds come from its disjoint ``SEED_RANGES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..phantom import PHASES, PhantomVolume, make_volume
from ..progress import Progress, report
from .datasets import SEED_RANGES, TASK_CLASSES, Windows, _windows, label_of, spec_at
from .inputs import hu_to_unit


@dataclass(frozen=True)
class VolumeRecipe:
    """How a phantom series is drawn: its extent along z and its in-plane matrix.

    Attributes
    ----------
    n_slices : (int, int)
        Inclusive range of the number of slices.
    spacing_mm : (float, float)
        Range of the slice spacing (mm); with ``n_slices`` it sets the z extent (72–288 mm here).
    centre_level : (float, float)
        Range of the middle slice's level (0 thoracic inlet … 1 upper abdomen).
    sizes : tuple of int
        In-plane matrix sizes drawn from (pixels per side; the field of view stays a body's).
    """

    n_slices: tuple[int, int] = (16, 32)
    spacing_mm: tuple[float, float] = (4.5, 9.0)
    centre_level: tuple[float, float] = (0.3, 0.7)
    sizes: tuple[int, ...] = (96, 128)


#: The recipe the 3D demo model was trained and evaluated on.
DEMO_RECIPE = VolumeRecipe()


def volume_spec(split: str, n: int, seed: int = 0, task: str = "phase",
                recipe: VolumeRecipe = DEMO_RECIPE) -> list[dict]:
    """Balanced, reproducible volume specs of one split.

    Classes cycle as in ``datasets.phantom_spec`` (``task="phase"``: a quarter each of no contrast,
    arterial, pulmonary, venous); each spec adds its series geometry (``n_slices``, ``spacing_mm``,
    ``centre_level``, ``size``) drawn from ``recipe`` with a generator of its own (``seed``, split).

    Parameters
    ----------
    split : {"train", "val", "test"}
        Seed range (``datasets.SEED_RANGES``).
    n : int
        Number of volumes.
    seed : int
        Chooses the phantom seeds and the geometries.
    task : {"phase", "contrast"}
        Class balance and labels.
    recipe : VolumeRecipe
        Ranges of the geometry.
    """
    if task not in TASK_CLASSES:
        raise ValueError(f"task must be one of {list(TASK_CLASSES)}, got {task!r}")
    lo, hi = SEED_RANGES[split]
    rng = np.random.default_rng([seed, lo, 3])
    seeds = rng.choice(np.arange(lo, hi), size=n, replace=False)
    out = []
    for i, s in enumerate(seeds):
        geo = {"n_slices": int(rng.integers(recipe.n_slices[0], recipe.n_slices[1] + 1)),
               "spacing_mm": round(float(rng.uniform(*recipe.spacing_mm)), 3),
               "centre_level": round(float(rng.uniform(*recipe.centre_level)), 4),
               "size": int(rng.choice(recipe.sizes))}
        out.append({**spec_at(i, int(s), task), **geo})
    return out


def spec_volume(spec: dict) -> PhantomVolume:
    """The phantom volume of one :func:`volume_spec` entry (HU, 3D mask, labels, meta)."""
    return make_volume(spec["seed"], contrast=spec["contrast"], phase=spec["phase"], n_slices=spec["n_slices"],
                       spacing_mm=spec["spacing_mm"], centre_level=spec["centre_level"], size=spec["size"])


def spec_hu_volume(spec: dict) -> np.ndarray:
    """The HU volume (Z, H, W) of one spec (a module-level function: it pickles for process pools)."""
    return spec_volume(spec).hu


def resize_volume(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize (C, Z, H, W) to (C, D, H', W') = ``size``, antialiased when shrinking along any axis.

    Separable: ``inputs.resize_batch`` (bilinear, antialiased when shrinking) on every slice's
    (H, W), then on every (Z, H') plane to change Z alone (an axis kept at its size is left exactly
    as it is). A CT with 300 thin slices shrunk to 32 is averaged, not sampled, along z too.
    """
    from .volume_input import resample  # the one implementation: training sees what inference sees

    return resample(x[None], tuple(size))[0]


def volume_input(hu: np.ndarray | torch.Tensor, window: Windows, input_size: Sequence[int]) -> torch.Tensor:
    """A HU volume (Z, H, W) in input space: float32 (C, D, H, W), channel c in [0, 1] over ``window[c]``."""
    chans = torch.stack([hu_to_unit(hu, w) for w in _windows(window)])
    return resize_volume(chans, input_size)


def mask_input(mask: np.ndarray | torch.Tensor, input_size: Sequence[int]) -> torch.Tensor:
    """A bool mask (Z, H, W) resized like the volume (fraction ≥ 0.5 after :func:`resize_volume`)."""
    m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)[None]
    return resize_volume(m, input_size)[0] >= 0.5


@dataclass(frozen=True)
class VolumeSet:
    """Volumes in input space with labels.

    Attributes
    ----------
    x : torch.Tensor
        float16 (N, C, D, H, W) in [0, 1] (half precision keeps a few thousand volumes in memory;
        cast to float32 per batch).
    y : torch.Tensor
        int64 (N,).
    info : tuple of dict
        The specs.
    masks : torch.Tensor or None
        bool (N, D, H, W) contrast masks in input space, when asked for.
    """

    x: torch.Tensor
    y: torch.Tensor
    info: tuple[dict, ...]
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


def phantom_volume_set(specs: Sequence[dict], window: Windows, input_size: Sequence[int], *,
                       task: str = "phase", masks: bool = False, progress: Progress | None = None) -> VolumeSet:
    """Make the volumes of ``specs`` in input space (one process; ~0.6–0.8 s a volume at the demo recipe).

    Parameters
    ----------
    specs : sequence of dict
        From :func:`volume_spec`.
    window : (low, high) or a sequence of them
        HU window of each channel.
    input_size : (D, H, W)
        The model's input.
    task : {"phase", "contrast"}
        Labels (``datasets.label_of``).
    masks : bool
        Also keep each volume's contrast mask resized to the input (``VolumeSet.masks``).
    progress : callable, optional
        ``progress(done, total, "phantom")`` per volume; returning False cancels.
    """
    n_ch = len(_windows(window))
    x = torch.empty(len(specs), n_ch, *input_size, dtype=torch.float16)
    m = torch.empty(len(specs), *input_size, dtype=torch.bool) if masks else None
    for i, spec in enumerate(specs):
        vol = spec_volume(spec)
        x[i] = volume_input(vol.hu, window, input_size).half()
        if m is not None:
            m[i] = mask_input(vol.mask, input_size)
        report(progress, i + 1, len(specs), "phantom")
    y = torch.tensor([label_of(s, task) for s in specs], dtype=torch.int64)
    return VolumeSet(x=x, y=y, info=tuple(dict(s) for s in specs), masks=m)


def recipe_record(recipe: VolumeRecipe = DEMO_RECIPE) -> dict:
    """The recipe as plain data (for the card's training record)."""
    return {**asdict(recipe), "generator": "napari_ctinterp.phantom.make_volume", "phases": list(PHASES)}
