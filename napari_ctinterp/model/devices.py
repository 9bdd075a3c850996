"""Choosing where a model runs: CUDA when present, then Apple MPS, else CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` if available, else ``mps`` if available, else ``cpu``.

    An explicit device that is not available raises a ``ValueError`` that says which are.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here; "
                         f"use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} requested but MPS is not available here; use 'auto' or 'cpu'")
    return dev


def is_out_of_memory(err: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()
