"""Fidelity of a 3D model's maps: CT volumes and their maps brought into the model's input space.

For a 3D classifier (card ``spatial_dims`` 3) an image is a volume: fidelity removes voxels in the
network's input (C, D, H, W), exactly as the 2D protocol removes pixels of each (C, H, W) slice,
and the curves are balanced accuracy over volumes (``metrics.fidelity``). What is ours here, and
why:

- the maps come from ``explain`` on the CT's grid (Z, H, W); each is put into the input space by
  the same resampling and centre crop / padding as its volume (``VolumeGeometry.to_input`` of the
  card, padding 0) — the 2D code resizes each map to the input size the same way;
- where the card pads a small CT up to its input size, the padding is not the CT: ``valid`` marks
  the input voxels that come from the CT, p is a percentage of those, and the padding is never
  removed (removing it would change the model's input in places no map speaks about);
- ``blur`` in 3D is the 2D fill's Gaussian (σ = 5 voxels, 31 taps, reflected edges) along each of
  the three axes (a separable 3D Gaussian; an axis shorter than 16 voxels gets the taps it can
  reflect).

Volumes may differ in shape (each is preprocessed on its own, ``clf.preprocess(volume,
spacing_mm=...)``); the inputs all have the card's ``input_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..model.classifier import Classifier

K = TypeVar("K")
Spacing = tuple[float, float, float]


def _volumes(arr: Any, what: str) -> list[np.ndarray]:
    """One (Z, H, W) volume, an (N, Z, H, W) stack or a sequence of volumes → a list of volumes."""
    if isinstance(arr, np.ndarray) or torch.is_tensor(arr):
        a = np.asarray(arr)
        if a.ndim == 3:
            return [a]
        if a.ndim == 4:
            return list(a)
        raise ValueError(f"a 3D model's {what}: one volume (Z, H, W), a stack (N, Z, H, W) or a list of volumes, "
                         f"got shape {a.shape}" + ("; a 2D slice is not a volume" if a.ndim == 2 else ""))
    out = [np.asarray(v) for v in arr]
    bad = [v.shape for v in out if v.ndim != 3]
    if bad:
        raise ValueError(f"a 3D model's {what} are volumes (Z, H, W), got shapes {bad}")
    return out


def _spacings(spacing_mm: Spacing | Sequence[Spacing] | None, n: int) -> list[Spacing | None]:
    """None, one (z, y, x) for every volume, or one per volume."""
    if spacing_mm is None:
        return [None] * n
    sp = np.asarray(spacing_mm, dtype=float)
    if sp.shape == (3,):
        return [tuple(float(v) for v in sp)] * n
    if sp.shape == (n, 3):
        return [tuple(float(v) for v in row) for row in sp]
    raise ValueError(f"spacing_mm: one (z, y, x) for every volume or one per volume ({n}), got shape {sp.shape}")


def prepare_volumes(clf: Classifier, images: Any, maps: Mapping[K, Any], n_labels: int,
                    spacing_mm: Spacing | Sequence[Spacing] | None = None
                    ) -> tuple[torch.Tensor, dict[K, torch.Tensor], torch.Tensor | None]:
    """A 3D model's volumes and maps in its input space.

    Parameters
    ----------
    clf : Classifier
        A 3D model (``clf.card.is_3d``).
    images : numpy.ndarray or sequence of numpy.ndarray
        One volume (Z, H, W) in HU, a stack (N, Z, H, W), or a list of N volumes of any shapes.
    maps : mapping
        Name → maps of those volumes on their CT grids, given as the volumes are.
    n_labels : int
        Number of labels given (must be N).
    spacing_mm : tuple or sequence of tuple, optional
        The CTs' (z, y, x) spacing: one for all or one per volume (needed when the card resamples).

    Returns
    -------
    x : torch.Tensor
        (N, C, D, H, W) preprocessed volumes.
    maps : dict
        Name → (N, 1, D, H, W) float32 maps in the input space.
    valid : torch.Tensor or None
        (N, 1, D, H, W) bool: input voxels that come from the CT; None when every voxel does.
    """
    vols = _volumes(images, "images")
    n = len(vols)
    if n == 0:
        raise ValueError("no volumes given")
    if n_labels != n:
        raise ValueError(f"{n} volume(s) and {n_labels} label(s): give one label per volume")
    spacings = _spacings(spacing_mm, n)
    geoms = [clf.geometry(v.shape, sp) for v, sp in zip(vols, spacings)]
    x = torch.cat([clf.preprocess(v, spacing_mm=sp) for v, sp in zip(vols, spacings)])
    size = tuple(int(s) for s in x.shape[2:])
    out: dict[K, torch.Tensor] = {}
    zero = torch.zeros(1)
    for name, given in maps.items():
        mv = _volumes(given, f"maps ({name!r})")
        if len(mv) != n or any(m.shape != v.shape for m, v in zip(mv, vols)):
            raise ValueError(f"maps {name!r}: one per volume on its CT grid, shapes {[m.shape for m in mv]} for "
                             f"volumes {[v.shape for v in vols]} (explain returns maps on the CT's grid)")
        for m in mv:
            if not np.isfinite(m).all():
                raise ValueError(f"a map ({name!r}) has NaN/inf values: it cannot rank voxels")
        out[name] = torch.stack([g.to_input(torch.as_tensor(np.asarray(m, dtype=np.float32))[None], zero)
                                 for g, m in zip(geoms, mv)]).to(x.device)
    valid = torch.zeros((n, 1, *size), dtype=torch.bool)
    for i, g in enumerate(geoms):
        valid[(i, 0, *g.window[0])] = True
    if not valid.reshape(n, -1).any(dim=1).all():
        raise ValueError("a volume lies wholly outside the model's input (its card's crop): nothing to remove")
    return x, out, (None if bool(valid.all()) else valid.to(x.device))


def gaussian_blur_3d(x: torch.Tensor, sigma: float = 5.0, taps: int = 31) -> torch.Tensor:
    """(N, C, D, H, W) blurred by a separable Gaussian along D, H and W, reflected at the edges —
    torchvision's ``gaussian_blur`` (2D fill: 31 taps, σ = 5) along three axes."""
    out = x
    for axis in (2, 3, 4):
        length = out.shape[axis]
        half = min(taps // 2, length - 1)
        if half < 1:
            continue
        t = torch.linspace(-half, half, 2 * half + 1, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-0.5 * (t / sigma) ** 2)
        kernel = (kernel / kernel.sum()).view(1, 1, -1)
        moved = out.movedim(axis, -1)
        flat = moved.reshape(-1, 1, length)
        blurred = F.conv1d(F.pad(flat, (half, half), mode="reflect"), kernel)
        out = blurred.reshape(moved.shape).movedim(-1, axis)
    return out.contiguous()
