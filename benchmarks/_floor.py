"""The model's plain forward time per image at its best batch (shared by the study benchmarks)."""

from __future__ import annotations

import time

import torch


def forward_floor(clf, x: torch.Tensor, repeats: int = 3) -> tuple[float, str]:
    """Best plain forward time per image (s) of ``x[:1]`` over batch sizes 4, 8, 16, 32 on all threads
    and two one-thread workers (the layouts the forward plan may use), and which was best."""
    from napari_ctinterp.runtime.parallel import intra_op_threads, ordered_map

    best = (float("inf"), "")
    threads = torch.get_num_threads()
    for bs in (4, 8, 16, 32):
        batch = x[:1].expand(bs, *x.shape[1:]).contiguous(memory_format=torch.channels_last)
        clf.logits(batch, batch_size=bs)
        for workers in (1, 2) if threads >= 2 else (1,):
            n_batches = 4 * workers
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                with intra_op_threads(threads // workers if workers > 1 else None):
                    for _ in ordered_map(lambda b: clf.logits(b, batch_size=bs), [batch] * n_batches, workers):
                        pass
                times.append((time.perf_counter() - t0) / (n_batches * bs))
            if min(times) < best[0]:
                best = (min(times), f"batch {bs}, {workers} worker(s)")
    return best
