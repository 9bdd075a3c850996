"""Choosing the gradient batch size from free memory (overridable by ``batch_size=``).

Per-image memory is estimated once per (model, input size) from the sizes of every module's output
in one forward pass (a backward to the input keeps roughly those activations once more), then the
batch is what fits in a quarter of the free memory, capped (256 on GPU, 16 on CPU).

On CPU the batch is also kept small enough that the largest single activation tensor stays under
``CPU_TENSOR_BYTES`` (30 MiB): glibc's malloc hands every block above 32 MiB straight to ``mmap``
and back on free, so each batch faults its big tensors in afresh, page by page. Measured on the
2-core development machine, resnet18 at 256² through the gradient twin (largest tensor 4 MiB per
image): batch 16 → 54.6–56.3 ms per image with ~6,000 page faults and 12.5 ms of kernel time per
image; batch 7 → 50.3–52.0 ms, ~150–500 faults, 0.4–1.4 ms kernel time; batch 4 → 54.4–58.6 ms
(too small to keep the cores busy); batch 32 → 62 ms. Hence at least ``CPU_MIN`` (4) images.
"""

from __future__ import annotations

import os

import torch

from ..model.classifier import Classifier

_PER_IMAGE: dict[tuple[int, tuple[int, int]], tuple[int, int]] = {}
CPU_CAP, GPU_CAP, CPU_MIN = 16, 256, 4
CPU_TENSOR_BYTES = 30 * 2**20


def activation_bytes_per_image(clf: Classifier, size: tuple[int, int]) -> int:
    """Bytes of activations one image keeps for a backward pass (estimate)."""
    return _activations(clf, size)[0]


def largest_activation_bytes(clf: Classifier, size: tuple[int, int]) -> int:
    """Bytes of the largest single module output for one image."""
    return _activations(clf, size)[1]


def _activations(clf: Classifier, size: tuple[int, int]) -> tuple[int, int]:
    key = (id(clf.module), tuple(size))
    if key not in _PER_IMAGE:
        total = largest = 0

        def hook(_m, _i, out):
            nonlocal total, largest
            if isinstance(out, torch.Tensor):
                nbytes = out.numel() * out.element_size()
                total += nbytes
                largest = max(largest, nbytes)

        x = torch.zeros((1, clf.card.in_channels, *size), device=clf.device).contiguous(
            memory_format=torch.channels_last)
        if isinstance(clf.module, torch.jit.ScriptModule):
            # No module hooks on TorchScript: count what autograd saves for the backward instead.
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(lambda t: hook(None, None, t) or t,
                                                                                lambda t: t):
                clf.module(x.requires_grad_(True))
        else:
            leaves = [m for m in clf.module.modules() if not list(m.children())]
            handles = [m.register_forward_hook(hook) for m in leaves]
            try:
                with torch.no_grad():
                    clf.module(x)
            finally:
                for h in handles:
                    h.remove()
        _PER_IMAGE[key] = (max(int(2 * total), 1), max(int(largest), 1))
    return _PER_IMAGE[key]


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on the device (CUDA: driver; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def auto_batch_size(clf: Classifier, size: tuple[int, int]) -> int:
    """Largest batch that fits a quarter of free memory, capped (256 on GPU; on CPU 16, and no
    more than keeps the largest activation under ``CPU_TENSOR_BYTES``, but at least ``CPU_MIN``)."""
    size = tuple(size)
    fits = free_memory_bytes(clf.device) // 4 // activation_bytes_per_image(clf, size)
    if clf.device.type == "cuda":
        cap = GPU_CAP
    else:
        cap = min(CPU_CAP, max(CPU_MIN, CPU_TENSOR_BYTES // largest_activation_bytes(clf, size)))
    return int(max(1, min(cap, fits)))
