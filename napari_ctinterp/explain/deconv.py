"""Deconvolution's backward rule, and the check that it reaches every ReLU of a model.

Deconvolution (Zeiler & Fergus) passes ``relu(grad_out)`` backwards through each ReLU instead of
``grad_out * (x > 0)``. We install it with forward hooks on the ``nn.ReLU`` modules that swap the
output for an autograd function with that backward. A ReLU the hooks cannot reach (``F.relu`` or
``torch.relu`` called in a ``forward``, or a TorchScript model) would silently keep the ordinary
rule and give a wrong map, so ``check_relus_reachable`` runs one forward under a
``TorchFunctionMode`` and refuses such models with a clear error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


class UnreachableReLUError(ValueError):
    """The model applies ReLUs that are not ``nn.ReLU`` modules; Deconvolution cannot be trusted."""


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad_out.clamp(min=0)


def _relu_modules(module: nn.Module) -> list[nn.ReLU]:
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


@contextlib.contextmanager
def deconvolution_rule(module: nn.Module) -> Iterator[None]:
    """Within the context, every ``nn.ReLU`` of ``module`` back-propagates ``relu(grad_out)``."""
    relus = _relu_modules(module)
    inplace = [r.inplace for r in relus]
    handles = []
    try:
        for r in relus:
            r.inplace = False  # an inplace ReLU would have overwritten the input the hook needs
            handles.append(r.register_forward_hook(lambda m, inp, out: _DeconvReLU.apply(inp[0])))
        yield
    finally:
        for h in handles:
            h.remove()
        for r, ip in zip(relus, inplace):
            r.inplace = ip


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_}


class _ReluSpy(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 while inside an nn.ReLU module's forward
        self.stray = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if func in _RELU_FUNCS and self.depth == 0:
            self.stray += 1
        return func(*args, **(kwargs or {}))


_CHECKED: dict[int, bool] = {}


def check_relus_reachable(module: nn.Module, example: torch.Tensor) -> None:
    """Raise ``UnreachableReLUError`` unless every ReLU applied in a forward is an ``nn.ReLU``."""
    key = id(module)
    if _CHECKED.get(key):
        return
    if isinstance(module, torch.jit.ScriptModule):
        raise UnreachableReLUError(
            "Deconvolution needs the model as a plain torch nn.Module: a TorchScript model hides its "
            "ReLUs, so the deconvolution rule cannot be installed. Load the weights as safetensors or a "
            "state_dict with a card, or leave D out of the methods.")
    relus = _relu_modules(module)
    if not relus:
        raise UnreachableReLUError("Deconvolution found no nn.ReLU module in this model; it cannot "
                                   "be applied (leave D out of the methods).")
    spy = _ReluSpy()
    hooks = []
    for r in relus:
        hooks.append(r.register_forward_pre_hook(lambda m, i: setattr(spy, "depth", spy.depth + 1)))
        hooks.append(r.register_forward_hook(lambda m, i, o: setattr(spy, "depth", spy.depth - 1)))
    try:
        with torch.no_grad(), spy:
            module(example[:1])
    finally:
        for h in hooks:
            h.remove()
    if spy.stray:
        raise UnreachableReLUError(
            f"Deconvolution cannot reach {spy.stray} ReLU(s) of this model: its forward calls "
            f"F.relu/torch.relu directly instead of nn.ReLU modules, which would leave them with the "
            f"ordinary gradient rule and give a silently wrong map. Use nn.ReLU modules, or leave D "
            f"out of the methods.")
    _CHECKED[key] = True
