"""Batch sizes under the device's memory limits: gradient batches (``auto_batch_size``) and
forward batches (``forward_batch_size``); both overridable by ``batch_size=``.

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

A forward pass without gradient keeps far less: forward batches (fidelity's perturbed images,
occlusion's windows) are at most ``CPU_FORWARD_CAP`` images on CPU, under the same mmap limit, and on
a GPU as many as fit a quarter of the free memory at about four largest activations per image.

The estimates are cached per model, weakly (``weakref.WeakKeyDictionary``): an entry goes with
its model, and a new model at the address of a freed one can never be served its numbers.
"""

from __future__ import annotations

import os
import threading
import weakref

import torch
from torch import nn

from ..model.classifier import Classifier

#: Per model, per input size: (activation bytes per image, largest activation bytes).
_PER_IMAGE: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, int], tuple[int, int]]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
CPU_CAP, GPU_CAP, CPU_MIN = 16, 256, 4
CPU_TENSOR_BYTES = 30 * 2**20
CPU_FORWARD_CAP, GPU_FORWARD_CAP = 16, 256


def activation_bytes_per_image(clf: Classifier, size: tuple[int, int]) -> int:
    """Bytes of activations one image keeps for a backward pass (estimate)."""
    return _activations(clf, size)[0]


def largest_activation_bytes(clf: Classifier, size: tuple[int, int]) -> int:
    """Bytes of the largest single module output for one image."""
    return _activations(clf, size)[1]


def _activations(clf: Classifier, size: tuple[int, int]) -> tuple[int, int]:
    key = tuple(size)
    with _LOCK:
        known = _PER_IMAGE.get(clf.module, {}).get(key)
    if known is None:
        total = largest = 0

        def hook(_m, _i, out):
            nonlocal total, largest
            if isinstance(out, torch.Tensor):
                nbytes = out.numel() * out.element_size()
                total += nbytes
                largest = max(largest, nbytes)

        x = torch.zeros((1, clf.card.in_channels, *size), device=clf.device)
        x = x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
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
        known = (max(int(2 * total), 1), max(int(largest), 1))
        with _LOCK:
            _PER_IMAGE.setdefault(clf.module, {})[key] = known
    return known


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


def forward_batch_size(clf: Classifier, size: tuple[int, int]) -> int:
    """Images per forward batch (no gradient) for this model and input size (see the module docstring)."""
    largest = largest_activation_bytes(clf, size)
    if clf.device.type == "cuda":
        # a forward keeps about its two largest activations alive at a time; a quarter of free memory
        fits = free_memory_bytes(clf.device) // 4 // max(1, 4 * largest)
        return int(max(1, min(GPU_FORWARD_CAP, fits)))
    n = max(CPU_MIN, min(CPU_FORWARD_CAP, CPU_TENSOR_BYTES // max(1, largest)))
    # and never more than a quarter of free memory holds (a 3D model's volumes are large)
    return int(max(1, min(n, free_memory_bytes(clf.device) // 4 // max(1, 4 * largest))))
