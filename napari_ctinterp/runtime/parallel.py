"""Batches side by side on CPU: two workers, each with half of torch's threads.

Why: on CPU a batch of 7 resnet18 gradients at 256² keeps two cores only partly busy with one
intra-op thread pool (the many small element-wise ops and the Python glue between them run one
after another). Two batches at once, each single-threaded, measured 45.8–46.0 ms per image on the
2-core development machine against 50.1–50.2 ms for one batch on both threads (gradient twin,
batch 7, same process, alternating). Results are consumed in submission order, so the
accumulated maps do not depend on which worker finished first (they equal a one-worker run bit
for bit).

The same two workers run the forward batches of fidelity and occlusion (``runtime.forward``).
Gradient batches run two at once only for the families whose registry entry says so
(``model.families``: ``parallel_safe``, see :func:`gradient_workers`).

``torch.set_num_threads`` is process-wide: while a rule's batches run, other torch work in the
process (another widget) also gets the halved thread count; it is restored when they finish.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from ..model.classifier import Classifier
from ..model.families import family_of

T = TypeVar("T")
R = TypeVar("R")


#: Below this many rows per worker a single-threaded worker is slower than one batch on all
#: threads (5 IG steps: 0.27 s on both threads, 0.32 s split 3 + 2 over two workers).
MIN_ROWS_PER_WORKER = 4


def cpu_workers(device: torch.device, n_rows: int) -> int:
    """2 on a CPU with at least two torch threads and enough rows, otherwise 1 (GPU: always 1)."""
    ok = device.type == "cpu" and torch.get_num_threads() >= 2 and n_rows >= 2 * MIN_ROWS_PER_WORKER
    return 2 if ok else 1


def parallel_safe(clf: Classifier) -> bool:
    """Two gradient workers side by side only for the families where they were measured and checked
    (the registry's ``parallel_safe``: our split-ReLU ResNets), never for a TorchScript module.

    A DenseNet-121 (3 channels, 64², 8 IG steps) run by two CPU threads at once gave IG maps
    2·10⁻³ (relative L2) away from the same gradients taken one after another, while every
    single gradient agreed to 10⁻⁶: other architectures run in one worker with all threads.
    """
    return family_of(clf).parallel_safe and not isinstance(clf.module, torch.jit.ScriptModule)


def gradient_workers(clf: Classifier, n_rows: int) -> int:
    """Workers for ``n_rows`` gradient evaluations of ``clf``: :func:`cpu_workers` where the
    family is :func:`parallel_safe`, else 1."""
    return cpu_workers(clf.device, n_rows) if parallel_safe(clf) else 1


def split_rows(rows: np.ndarray, batch_size: int, workers: int) -> list[np.ndarray]:
    """Consecutive batches of at most ``batch_size`` rows, as even as possible, their number a
    multiple of ``workers`` when there are enough rows (so no worker idles at the end)."""
    if len(rows) == 0:
        return []
    n = max(1, -(-len(rows) // max(1, batch_size)))
    if workers > 1:
        n = min(len(rows), -(-n // workers) * workers)
    return list(np.array_split(rows, n))


_THREADS_LOCK = threading.Lock()
_threads_users = 0
_threads_saved = 0


@contextlib.contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Within the context torch uses ``n`` intra-op threads (``None``: unchanged).

    Overlapping contexts (two explanations at once, in threads or interleaved generators) share
    one saved count: the first in saves it, the last out restores it, whatever the order.
    """
    global _threads_users, _threads_saved
    if n is None:
        yield
        return
    with _THREADS_LOCK:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
        _threads_users += 1
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` with up to ``workers`` calls running at once, results in input order.

    Closing the generator early cancels the calls not yet started and waits for the running ones,
    so no work goes on in the background after a cancel.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ctinterp-grad") as pool:
        pending: deque[Future[R]] = deque(pool.submit(fn, item) for _, item in zip(range(workers), it))
        try:
            while pending:
                result = pending.popleft().result()
                for item in it:
                    pending.append(pool.submit(fn, item))
                    break
                yield result
        finally:
            for f in pending:
                f.cancel()
