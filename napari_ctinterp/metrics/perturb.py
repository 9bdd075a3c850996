"""One forward plan for every perturbed image of fidelity's MiF/LiF curves, over many maps at once.

Fidelity pushes each map's slices through the model once per removed fraction p and curve (the
study: 41 p values × 2 curves × 61 maps of a slice ≈ 5,000 images), so its cost is the model's
forward pass and everything around it is overhead. Written here, not taken from Quantus'
``PixelFlipping`` (which perturbs and forwards one map's images at a time, in numpy, at its own
batch), because the measured floor is the model's own forward time per image at its best batch
(``benchmarks/fidelity_speed.py`` prints both and the ratio):

- the perturbed images are built inside the batch that forwards them, from each map's pixel ranks
  (``removed = a ≤ rank < b`` and one ``torch.where``), never stored per map;
- the images that do not depend on the map — p = 0 (nothing removed: the slice itself) and p = 100
  (everything removed: the fill) — are forwarded once, for every map and both curves;
- maps whose pixel ranking is identical (a region map equal to another, the same map asked twice)
  are forwarded once and share their curves;
- batches are sized for the device: on CPU at most 16 images and under the allocator's mmap limit
  (``runtime.batching``: every tensor above 32 MiB is faulted in afresh per batch), run by two
  workers of one thread each on two cores (``runtime.parallel``); on a GPU, as many as fit a
  quarter of the free memory (cap 256) — the forward plan of ``runtime.forward``;
- inference mode, channels_last (``Classifier.logits``), out-of-memory halves the batch.

ROAD's imputation (a sparse solve per image, see ``metrics.road``) depends on the removed set of
each image, so it is computed per image in the batch; its noise is seeded per (seed, p, image), so
it does not depend on how the images were batched.

3D models (ours, same plan): an image is a volume (C, D, H, W) and a pixel a voxel; nothing else
changes. Where the card pads the CT to its input size, the padding is not the CT's: ``valid`` marks
each volume's own voxels, p is a percentage of those, and the padding is never removed (each
volume's ranking puts it last, ``metrics.fidelity._ranks``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from ..model.classifier import Classifier
from ..progress import Progress, report
from ..runtime.forward import forward_plan, run_forward
from .road import impute_one


def unique_rankings(ranks: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
    """The distinct rankings and, for each input, the index of its distinct ranking."""
    seen: dict[str, list[int]] = {}
    distinct: list[torch.Tensor] = []
    which = []
    for r in ranks:
        key = hashlib.blake2b(r.detach().cpu().numpy().tobytes(), digest_size=16).hexdigest()
        found = next((i for i in seen.get(key, []) if torch.equal(distinct[i], r)), None)
        if found is None:
            found = len(distinct)
            distinct.append(r)
            seen.setdefault(key, []).append(found)
        which.append(found)
    return distinct, which


def perturbed_logits(clf: Classifier, x: torch.Tensor, ranks: Sequence[torch.Tensor], fills: torch.Tensor | None,
                     p: np.ndarray, *, own: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                     seed: int = 0, batch_size: int | None = None, workers: int | None = None,
                     progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """Logits of every perturbed image of every ranking.

    Parameters
    ----------
    clf : Classifier
        The model.
    x : torch.Tensor
        (N, C, H, W) preprocessed slices, or (N, C, D, H, W) volumes of a 3D model.
    ranks : sequence of torch.Tensor
        One (N, 1, *spatial) ranking per map: each pixel's rank from most (0) to least important
        (with ``valid``: the valid voxels ranked 0 … n_valid − 1, the others after them).
    fills : torch.Tensor or None
        Replacement values of x's shape (or broadcastable to it); None: ROAD imputation.
    p : numpy.ndarray
        Percent of pixels removed, per curve point.
    own : torch.Tensor, optional
        (1, C, 1, 1) bool: the channels that may be removed (a 2.5D model's own slice).
    valid : torch.Tensor, optional
        (N, 1, *spatial) bool: the voxels that may be removed (a 3D input's CT voxels, not its
        padding); p is a percentage of each image's valid voxels. Default: every pixel.
    seed : int
        ROAD's noise.
    batch_size : int, optional
        Images per forward; default ``runtime.forward_batch_size``.
    workers : int, optional
        Parallel forward workers; default two on a two-thread CPU, one on a GPU.
    progress : callable, optional
        ``progress(done, total, "fidelity")`` in images; returning False cancels
        (``progress.Cancelled``).

    Returns
    -------
    logits : numpy.ndarray
        (len(ranks), 2, len(p), N, n_logits): [:, 0] most-important-first, [:, 1] least-first.
    forwarded : int
        Images that went through the model (the shared p = 0 / 100 images and identical rankings
        counted once).
    """
    n, n_pix = len(x), x[0, 0].numel()
    spatial = tuple(x.shape[2:])
    n_valid = (np.full(n, n_pix, dtype=np.int64) if valid is None
               else valid.reshape(n, -1).sum(dim=1).cpu().numpy().astype(np.int64))
    # pixels removed per (p, image)
    n_rm = np.rint(np.asarray(p, dtype=np.float64)[:, None] / 100 * n_valid[None]).astype(np.int64)
    distinct, which = unique_rankings(ranks)
    # int32 ranks (a 512² image has 262,144 pixels): half the memory traffic of building each batch
    distinct = [r.to(torch.int32) for r in distinct]
    # shared points: nothing removed (the slice) and everything removed (the fill), any map
    is_shared = (n_rm == 0) | (n_rm == n_valid[None])
    # one unit = one image: (ranking, curve, pixels removed, p index, slice); a shared image has
    # ranking and p index -1 and stands for every ranking, both curves and every p that removes as many
    units: list[tuple[int, int, int, int, int]] = []
    for everything in (False, True):
        for i in range(n):
            k = int(n_valid[i]) if everything else 0
            if (n_rm[:, i] == k).any():
                units.append((-1, 0, k, -1, i))
    units += [(u, c, int(n_rm[j, i]), j, i) for u in range(len(distinct)) for c in (0, 1) for j in range(len(p))
              if not is_shared[j].all() for i in range(n) if not is_shared[j, i]]
    # consecutive batches of the device's size, their number a multiple of the workers
    plan = forward_plan(clf, len(units), spatial, batch_size=batch_size, workers=workers)
    whole = fills is not None and fills.shape == x.shape
    fmt = torch.channels_last if x.ndim == 4 else torch.contiguous_format
    ones = (1,) * len(spatial)

    def build(numbers: np.ndarray) -> torch.Tensor:
        batch = [units[i] for i in numbers]
        rows = [b[4] for b in batch]
        imgs = x[rows]
        rk = torch.zeros((len(batch), 1, *spatial), dtype=torch.int32, device=x.device)
        lo = torch.zeros(len(batch), 1, *ones, dtype=torch.int32, device=x.device)
        hi = torch.zeros_like(lo)
        for row, (u, c, count, _j, i) in enumerate(batch):
            if u >= 0:
                rk[row] = distinct[u][i]
            lo[row], hi[row] = (0, count) if c == 0 else (int(n_valid[i]) - count, int(n_valid[i]))
        removed = (rk >= lo) & (rk < hi)
        if own is not None:
            removed = removed & own
        if valid is not None:
            removed = removed & valid[rows]
        if fills is not None:
            return torch.where(removed, fills[rows] if whole else fills, imgs).contiguous(memory_format=fmt)
        # ROAD: one sparse solve per image, its noise seeded by (seed, pixels removed, slice, curve)
        rm = removed.expand_as(imgs).cpu().numpy()
        xs = imgs.detach().cpu().numpy()
        out = xs.copy()
        for row, (_u, c, count, _j, i) in enumerate(batch):
            rng = np.random.default_rng([int(seed), count, int(i), int(c)])
            for ch in range(xs.shape[1]):
                if rm[row, ch].any():
                    out[row, ch] = impute_one(xs[row, ch], rm[row, ch], rng)
        return torch.as_tensor(out, dtype=x.dtype, device=x.device).contiguous(memory_format=fmt)

    out = np.zeros((len(distinct), 2, len(p), n, clf.n_logits), dtype=np.float32)
    done = 0
    with contextlib.closing(run_forward(clf, plan, build)) as results:  # closed on cancel
        for numbers, logits in results:
            lg = logits.float().cpu().numpy()
            for row, (u, c, count, j, i) in enumerate(units[k] for k in numbers):
                if u >= 0:
                    out[u, c, j, i] = lg[row]
                else:
                    out[:, :, n_rm[:, i] == count, i] = lg[row]
            done += len(numbers)
            report(progress, done, len(units), "fidelity")
    return out[which], len(units)
