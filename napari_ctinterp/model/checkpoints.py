"""Reading and writing classifier checkpoints: safetensors, state_dict, TorchScript, (trusted) pickle.

Every format travels with a model card (``<name>.json`` beside the weights). A fully pickled
model runs code when loaded, so it is refused unless the caller says it trusts the file.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from .architectures import build
from .card import ModelCard, card_path_for, file_sha256
from .families import STANDALONE, VIDEO_RESNETS

Format = Literal["safetensors", "state_dict", "torchscript", "exported"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message says what to do."""


class ExportedModel(nn.Module):
    """A ``torch.export`` program as a plain module: the program is traced in eval mode and refuses
    ``.eval()`` / ``.train()``, which every front end calls, so this wrapper keeps them to itself."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> ExportedModel:  # noqa: D102 - the program is fixed
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.program(x)


def save_checkpoint(module: nn.Module, path: str | Path, card: ModelCard, *,
                    fmt: Format = "safetensors", half: bool = False) -> tuple[Path, ModelCard]:
    """Save weights (and the card beside them, with the weights' hash); returns (path, card)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    if fmt == "safetensors":
        from safetensors.torch import save_file

        sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
              for k, v in module.state_dict().items()}
        save_file(sd, str(p), metadata={"architecture": card.architecture, "output": card.output})
    elif fmt == "state_dict":
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, p)
    elif fmt == "torchscript":
        example = torch.zeros(1, card.in_channels, *card.input_size)
        with torch.no_grad():
            traced = torch.jit.trace(module.cpu().float(), example)
        traced.save(str(p))
    elif fmt == "exported":  # torch.export with a dynamic batch dimension (the engine batches gradients)
        example = torch.zeros(2, card.in_channels, *card.input_size)
        program = torch.export.export(module.cpu().float(), (example,),
                                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
        torch.export.save(program, str(p))
    else:
        raise ValueError(f"unknown checkpoint format {fmt!r}: safetensors, state_dict, torchscript or exported")
    card = card.with_weights(p)
    card.save(card_path_for(p))
    return p, card


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names)


def _find_card(path: Path, card: ModelCard | str | Path | None) -> ModelCard:
    if isinstance(card, ModelCard):
        return card
    cp = Path(card) if card is not None else card_path_for(path)
    if not cp.exists():
        raise CheckpointError(
            f"no model card for {path.name}: expected {cp.name} beside it. Write one with "
            f"napari_ctinterp.model.ModelCard(architecture='resnet50', input_size=(512, 512), "
            f"hu_window=(-1000, 1000), output='logit').save('{cp.name}') — see docs/model.md")
    return ModelCard.load(cp)


def _unwrap_state_dict(obj: object) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {k.removeprefix("module."): v for k, v in obj.items()}
    return None


#: Architectures a mismatched checkpoint is compared with, to say which one its weights are.
KNOWN_ARCHITECTURES: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet161", "densenet169",
    "densenet201", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "convnext_tiny",
    "convnext_small", "mobilenet_v3_small", "mobilenet_v3_large", "vgg16", "vit_b_16", "swin_t", *VIDEO_RESNETS)


def matching_architectures(sd: dict[str, torch.Tensor], card: ModelCard) -> list[tuple[str, bool]]:
    """Known architectures whose parameter names are exactly ``sd``'s: ``(name, shapes_too)``,
    ``shapes_too`` when every tensor shape matches with the card's channels and outputs as well.
    Built on the meta device (no memory, ≈ 1 s for all of them); used only to explain a mismatch."""
    found = []
    for name in KNOWN_ARCHITECTURES:
        if name == card.architecture:
            continue
        try:
            with torch.device("meta"):
                own = build(name, card.output, in_channels=card.in_channels, n_logits=card.n_logits,
                            spatial_dims=3 if name in VIDEO_RESNETS else 2).state_dict()
        except Exception:  # noqa: BLE001 - an architecture this torchvision cannot build: not a candidate
            continue
        if set(own) == set(sd):
            found.append((name, all(tuple(own[k].shape) == tuple(sd[k].shape) for k in own)))
    return sorted(found, key=lambda f: not f[1])


def kernel_dims(sd: dict[str, torch.Tensor]) -> int | None:
    """2 or 3: the spatial dimensions of the convolution kernels in a state dict (None: none)."""
    ranks = {t.ndim for t in sd.values() if hasattr(t, "ndim") and t.ndim in (4, 5)}
    return None if not ranks else max(ranks) - 2


def module_from_state_dict(sd: dict[str, torch.Tensor], card: ModelCard, source: str) -> nn.Module:
    """Build the card's architecture and load ``sd`` into it; mismatches name the keys."""
    if card.architecture in STANDALONE:
        raise CheckpointError(f"{source}: the card says architecture={card.architecture!r}, but the file holds "
                              f"weights only. Name the network in the card's architecture (e.g. resnet50, "
                              f"densenet121)")
    try:
        net = build(card.architecture, card.output, in_channels=card.in_channels, n_logits=card.n_logits,
                    architecture_args=card.architecture_args, spatial_dims=card.spatial_dims)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{source}: cannot build the card's network: {e}") from None
    own = net.state_dict()
    theirs, ours = kernel_dims(sd), kernel_dims(own)
    if theirs and ours and theirs != ours:
        raise CheckpointError(f"{source}: the weights hold {theirs}D convolutions (a model of "
                              f"{'whole volumes' if theirs == 3 else 'slices'}) but the card's {card.architecture} "
                              f"is {ours}D (spatial_dims {card.spatial_dims}): "
                              + ("set \"spatial_dims\": 3, input_size [D, H, W] and a 3D architecture in the card"
                                 if theirs == 3 else "make the card 2D (spatial_dims 2, input_size [H, W]) with a 2D "
                                 "architecture"))
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs {card.architecture} {tuple(own[k].shape)}"
                    for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or shapes:
        def few(items: list[str]) -> str:
            return ", ".join(items[:6]) + (f" … (+{len(items) - 6} more)" if len(items) > 6 else "")

        parts = [f"{name} ({len(items)}): {few(items)}" for name, items in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
                 if items]
        matches = matching_architectures(sd, card) if missing or unexpected else []
        hint = ""
        if matches:
            name, exact = matches[0]
            hint = (f"These weights look like {name}" + ("" if exact else " (with other input channels or "
                                                          "outputs than the card's)")
                    + f": set \"architecture\": \"{name}\" in the card. ")
        raise CheckpointError(
            f"{hint}{source} does not match its card (architecture={card.architecture!r}, "
            f"{card.in_channels} input channel(s), output={card.output!r} with {card.n_logits} logit(s)): "
            + "; ".join(parts)
            + ". Fix the card's architecture / channels / output / class_names, or load the right checkpoint.")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    return net


def dry_forward(module: nn.Module, card: ModelCard, source: str) -> None:
    """One forward of a zero input shaped by the card: channels and class count must fit the network."""
    # a zero input and a fixed random one: two rows, so that a softmax head cannot pass by chance
    x = torch.cat([torch.zeros(1, card.in_channels, *card.input_size),
                   torch.rand((1, card.in_channels, *card.input_size), generator=torch.Generator().manual_seed(0))])
    try:
        with torch.no_grad():
            out = module.eval()(x)
    except Exception as e:  # noqa: BLE001 - any failure here is a card / weights mismatch
        raise CheckpointError(
            f"{source} does not run on the input its card describes ({card.in_channels} channel(s), "
            f"{'×'.join(str(v) for v in card.input_size)}): {str(e).strip().splitlines()[0]}. Fix the card's "
            f"channels / input_size" + (" / spatial_dims" if len(card.input_size) == 3 or "5" in str(e) else "")
            + (", or export the program with a dynamic batch dimension" if "x.size()[0]" in str(e) else "")) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != card.n_logits:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise CheckpointError(
            f"{source} gives logits of shape {shape}, but its card (output={card.output!r}, "
            f"{card.n_classes} classes {list(card.class_names)}) needs (N, {card.n_logits}). Fix the card's "
            f"output / class_names")
    out = out.float()
    if card.n_logits > 1 and bool(((out >= 0) & (out <= 1)).all()) and \
            bool(torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4)):
        head = ("a multilabel card needs one independent logit per class, but this head is a softmax over the "
                "classes: use output 'softmax' and remove the network's final Softmax"
                if card.kind == "multilabel" else
                "remove the network's final Softmax (the card's output 'softmax' applies it)")
        raise CheckpointError(
            f"{source} outputs probabilities, not logits (each row is in [0, 1] and sums to 1: the network "
            f"ends in a softmax); gradients of probabilities are not what the methods explain. Fix: {head}")


def load_checkpoint(path: str | Path, *, card: ModelCard | str | Path | None = None,
                    trust_pickle: bool = False) -> tuple[nn.Module, ModelCard]:
    """Load a checkpoint file into (module, card), checked by a dry forward. See ``model.load``."""
    module, the_card = _load_checkpoint(path, card=card, trust_pickle=trust_pickle)
    dry_forward(module, the_card, Path(path).name)
    return module, the_card


def _load_checkpoint(path: str | Path, *, card: ModelCard | str | Path | None = None,
                     trust_pickle: bool = False) -> tuple[nn.Module, ModelCard]:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    the_card = _find_card(p, card)
    if the_card.weights_sha256 and the_card.weights_sha256 != file_sha256(p):
        warnings.warn(f"{p.name}: weights hash differs from the one its card records; the card may "
                      f"describe another file", stacklevel=3)
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            sd = load_file(str(p))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{p.name} is not a readable safetensors file: {e}") from None
        return module_from_state_dict(sd, the_card, p.name), the_card
    if _is_torchscript(p):
        return torch.jit.load(str(p), map_location="cpu"), the_card
    if p.suffix == ".pt2" or the_card.architecture == "exported":
        try:
            return ExportedModel(torch.export.load(str(p)).module()), the_card
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f"{p.name} is not a torch.export program (.pt2): {e}") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise CheckpointError(
                f"{p.name} is a fully pickled model: loading it runs arbitrary code from the file. "
                f"Refused. If you trust its origin, pass trust_pickle=True (CLI: --trust-pickle); "
                f"better, re-save it as a state_dict or safetensors.") from None
        obj = torch.load(p, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{p.name} is not a PyTorch checkpoint ({e})") from None
    if isinstance(obj, nn.Module):
        return obj, the_card
    sd = _unwrap_state_dict(obj)
    if sd is None:
        raise CheckpointError(f"{p.name} holds a {type(obj).__name__}, neither a state_dict nor a model")
    return module_from_state_dict(sd, the_card, p.name), the_card
