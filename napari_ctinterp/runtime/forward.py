"""The forward plan: many images of one model through the device in the best batches, no gradient.

Fidelity's perturbed images (``metrics.perturb``) and Occlusion's windowed images
(``explain.occlusion``) are many images whose only cost should be the model's forward pass. Both
are run the same way: the images are numbered, split into consecutive batches of the device's
forward batch size (``runtime.batching.forward_batch_size``), their number a multiple of the
workers (two one-thread workers on a two-core CPU, one on a GPU: ``runtime.parallel``); each batch's
images are built by the caller inside the batch that forwards them (never stored all at once) and
forwarded by ``Classifier.logits`` (inference mode, channels_last, out-of-memory halves the batch).
Results come back in batch order, so they do not depend on which worker finished first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..model.classifier import Classifier
from .batching import forward_batch_size
from .parallel import cpu_workers, intra_op_threads, ordered_map, split_rows


@dataclass(frozen=True)
class ForwardPlan:
    """Batches of image numbers (consecutive, in order) and the workers that forward them."""

    batches: tuple[np.ndarray, ...]
    workers: int


def forward_plan(clf: Classifier, n_images: int, size: tuple[int, int], *, batch_size: int | None = None,
                 workers: int | None = None) -> ForwardPlan:
    """Plan ``n_images`` forward passes of ``clf`` at input ``size``.

    Parameters
    ----------
    clf : Classifier
        The model.
    n_images : int
        Images to forward (numbered 0 … n_images − 1).
    size : tuple of int
        (h, w) of the model's input.
    batch_size : int, optional
        Images per batch; default :func:`~napari_ctinterp.runtime.batching.forward_batch_size`.
    workers : int, optional
        Batches run at once; default two on a CPU with two threads and enough images, else one.
    """
    bs = max(1, int(batch_size or forward_batch_size(clf, tuple(size))))
    n_workers = workers if workers is not None else cpu_workers(clf.device, n_images)
    return ForwardPlan(tuple(split_rows(np.arange(n_images), bs, n_workers)), n_workers)


def run_forward(clf: Classifier, plan: ForwardPlan, build: Callable[[np.ndarray], torch.Tensor]
                ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Forward the plan's batches: ``build(numbers)`` makes a batch's preprocessed images; yields
    ``(numbers, logits)`` per batch in plan order. Closing the generator early cancels the batches
    not yet started and restores torch's thread count."""
    n = plan.workers

    def run(rows: np.ndarray) -> torch.Tensor:
        return clf.logits(build(rows), batch_size=len(rows))

    with intra_op_threads(max(1, torch.get_num_threads() // n) if n > 1 else None):
        with contextlib.closing(ordered_map(run, plan.batches, n)) as results:
            yield from zip(plan.batches, results)
