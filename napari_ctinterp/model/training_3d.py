"""Training the 3D demo model on phantom volumes, deterministic by seed (CPU, about 40 minutes).

Mirrors the 2D ``training`` module: Adam + OneCycle on cross-entropy with bf16 autocast (the
network is used in fp32), augmentations that vary what must not matter (noise, HU window, a small
in-plane rotation, left-right flip, zoom and shift — along z too: where the series starts and how
long it is), gradients clipped (a step whose gradient is not finite is skipped), BatchNorm
statistics re-estimated after every epoch, the best validation epoch kept. ``save_demo3d`` writes
fp16 safetensors and the card as a plain dict (``<name>.card.json``); ``model.demo3d_run``
(``scripts/train_demo3d.sh``) is the one command that makes the demo.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..progress import Progress, report
from .datasets import PHASE_CLASSES
from .demo3d_net import ARCHITECTURE, build_demo3d
from .training import accuracy_of
from .volume_data import DEMO_RECIPE, VolumeRecipe, VolumeSet, recipe_record


@dataclass(frozen=True)
class Augment3dOptions:
    """Ranges of the random 3D augmentations (all drawn per volume)."""

    noise_hu: tuple[float, float] = (0.0, 15.0)
    window_jitter_hu: float = 40.0
    rotate_deg: float = 10.0
    flip_lr: float = 0.5
    zoom: tuple[float, float] = (0.85, 1.15)
    zoom_z: tuple[float, float] = (0.8, 1.25)
    shift: float = 0.08


@dataclass(frozen=True)
class Train3dOptions:
    """Everything that defines a 3D training run."""

    architecture: str = ARCHITECTURE
    architecture_args: dict = field(default_factory=lambda: {"widths": [16, 32, 64, 96], "stem_stride": 2,
                                                             "dropout": 0.2})
    input_size: tuple[int, int, int] = (32, 64, 64)
    hu_window: tuple[float, float] = (-300.0, 700.0)
    output: str = "softmax"
    class_names: tuple[str, ...] = PHASE_CLASSES
    task: str = "phase"
    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    bf16: bool = True
    precise_bn_volumes: int = 192
    clip_grad_norm: float = 5.0
    augment: Augment3dOptions = field(default_factory=Augment3dOptions)
    recipe: VolumeRecipe = DEMO_RECIPE


def augment_volume(x: torch.Tensor, window: tuple[float, float], gen: torch.Generator,
                   opts: Augment3dOptions = Augment3dOptions()) -> torch.Tensor:
    """Randomly augment a windowed batch (B, C, D, H, W) in [0, 1]; a new float32 tensor, same shape.

    One affine grid per volume (in-plane rotation and zoom, zoom along z, shifts, left-right flip;
    outside the field the edge voxels are repeated: a series has no air slab above or below), then
    one HU noise field per volume and a jittered window (``window`` converts HU to input units).
    """
    x = x.float()
    b = x.shape[0]
    span = float(window[1] - window[0])

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    ang = u(-opts.rotate_deg, opts.rotate_deg) * math.pi / 180
    s_xy, s_z = 1.0 / u(*opts.zoom), 1.0 / u(*opts.zoom_z)
    flip = torch.where(torch.rand(b, generator=gen) < opts.flip_lr, -1.0, 1.0)
    theta = torch.zeros(b, 3, 4)  # rows: x (W), y (H), z (D) of the output grid's source
    theta[:, 0, 0] = s_xy * torch.cos(ang) * flip
    theta[:, 0, 1] = -s_xy * torch.sin(ang)
    theta[:, 1, 0] = s_xy * torch.sin(ang) * flip
    theta[:, 1, 1] = s_xy * torch.cos(ang)
    theta[:, 2, 2] = s_z
    for row in range(3):
        theta[:, row, 3] = u(-opts.shift, opts.shift)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    sd = u(*opts.noise_hu).view(b, 1, 1, 1, 1) / span
    out = out + sd * torch.randn((b, 1, *x.shape[2:]), generator=gen)
    lo2 = u(-opts.window_jitter_hu, opts.window_jitter_hu).view(b, 1, 1, 1, 1) / span
    hi2 = 1 + u(-opts.window_jitter_hu, opts.window_jitter_hu).view(b, 1, 1, 1, 1) / span
    return ((out - lo2) / (hi2 - lo2)).clamp(0, 1)


@torch.no_grad()
def predict_logits_3d(net: nn.Module, x: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Logits of a windowed set (N, C, D, H, W) (any float dtype), batched, eval mode, fp32."""
    net.eval()
    outs = [net(x[i : i + batch_size].float()).float() for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0, 1)


@torch.no_grad()
def precise_batchnorm_3d(net: nn.Module, x: torch.Tensor, batch_size: int = 16) -> None:
    """Re-estimate BatchNorm statistics as exact averages over ``x`` (fp32, un-augmented)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or len(x) == 0:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for i in range(0, len(x), batch_size):
        net(x[i : i + batch_size].float())
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    net.eval()


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """Accuracy within each class (the fraction of that class's volumes predicted as it)."""
    pred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
    return {name: float((pred[y == k] == k).float().mean()) if bool((y == k).any()) else float("nan")
            for k, name in enumerate(class_names)}


def train_3d(opts: Train3dOptions, train_set: VolumeSet, val_set: VolumeSet, *, progress: Progress | None = None,
             on_epoch: Callable[[dict], object] | None = None,
             should_stop: Callable[[], bool] | None = None) -> tuple[nn.Module, list[dict]]:
    """Train, returning the best-validation network (eval mode) and the per-epoch history.

    Parameters
    ----------
    opts : Train3dOptions
        The run.
    train_set, val_set : VolumeSet
        Volumes in input space (``volume_data.phantom_volume_set``), one channel per window.
    progress : callable, optional
        ``progress(step, total_steps, "train")`` after each optimisation step; False cancels.
    on_epoch : callable, optional
        ``on_epoch(record)`` after each epoch (``epoch``, ``train_loss``, ``val_accuracy``,
        ``val_loss``, ``val_by_class``, ``skipped_steps`` (steps whose gradient was not finite:
        skipped), ``seconds``, and ``best`` when it is the best so far).
    should_stop : callable, optional
        Polled after each step and epoch: True ends training early, keeping the best epoch so far.
    """
    torch.manual_seed(opts.seed)
    gen = torch.Generator().manual_seed(opts.seed)
    order_rng = np.random.default_rng(opts.seed)
    n_logits = 1 if opts.output in ("logit", "sigmoid") else len(opts.class_names)
    net = build_demo3d(opts.architecture, in_channels=train_set.x.shape[1], n_logits=n_logits,
                       **opts.architecture_args)
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    steps = math.ceil(len(train_set) / opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=opts.epochs * steps)
    best, best_state, history = (-1.0, float("inf")), copy.deepcopy(net.state_dict()), []
    t0 = time.perf_counter()
    for epoch in range(opts.epochs):
        net.train()
        order = order_rng.permutation(len(train_set))
        running, skipped = 0.0, 0
        for step in range(steps):
            idx = torch.from_numpy(order[step * opts.batch_size : (step + 1) * opts.batch_size])
            xb = augment_volume(train_set.x[idx], opts.hu_window, gen, opts.augment)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.bf16):
                logits = net(xb)
            loss = _loss(logits.float(), train_set.y[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            # oneDNN's bf16 Conv3d backward can return NaN on very small grids: such a step is skipped
            if torch.isfinite(nn.utils.clip_grad_norm_(net.parameters(), opts.clip_grad_norm)):
                optim.step()
                running += loss.item()
            else:
                skipped += 1
            sched.step()
            report(progress, epoch * steps + step + 1, opts.epochs * steps, "train")
            if should_stop and should_stop():
                break
        precise_batchnorm_3d(net, train_set.x[: opts.precise_bn_volumes])
        val_logits = predict_logits_3d(net, val_set.x)
        rec = {"epoch": epoch + 1, "train_loss": running / max(steps - skipped, 1), "skipped_steps": skipped,
               "val_accuracy": accuracy_of(val_logits, val_set.y),
               "val_loss": float(_loss(val_logits, val_set.y)),
               "val_by_class": per_class_accuracy(val_logits, val_set.y, opts.class_names),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        if (rec["val_accuracy"], -rec["val_loss"]) > (best[0], -best[1]):
            best, best_state = (rec["val_accuracy"], rec["val_loss"]), copy.deepcopy(net.state_dict())
            rec["best"] = True
        if on_epoch is not None:
            on_epoch(dict(rec))
        if should_stop and should_stop():
            break
    net.load_state_dict(best_state)
    return net.eval(), history


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], y.float())
    return F.cross_entropy(logits, y)


def make_card_3d(opts: Train3dOptions, history: list[dict], *, command: str, n_train: int, n_val: int,
                 held_out: dict | None = None, name: str = "demo-3d compact 3D CNN (phantom)",
                 notes: str = "") -> dict:
    """The card of a trained 3D network as a plain dict (``ModelCard`` fields, ``spatial_dims`` 3).

    ``held_out``: ``{"accuracy", "by_class", "n", "seed_range"}`` of an evaluation on fresh volumes.
    """
    best = max(history, key=lambda h: (h["val_accuracy"], -h["val_loss"])) if history else {}
    training = {"data": f"napari_ctinterp.phantom.make_volume: {n_train} training volumes (seed range train), "
                        f"{n_val} validation volumes (seed range val), made on the fly from seeds",
                "recipe": recipe_record(opts.recipe), "command": command, "seed": opts.seed, "epochs": opts.epochs,
                "best_epoch": best.get("epoch"), "batch_size": opts.batch_size, "lr": opts.lr,
                "optimizer": "Adam + OneCycle", "clip_grad_norm": opts.clip_grad_norm, "bf16_autocast": opts.bf16,
                "precise_bn_volumes": opts.precise_bn_volumes, "n_train": n_train, "n_val": n_val,
                "augment": asdict(opts.augment), "task": opts.task, "history": history,
                "seconds": history[-1]["seconds"] if history else 0.0}
    accuracy: dict = {"val": best.get("val_accuracy"), "val_n": n_val}
    if held_out:
        accuracy.update({"held_out": held_out["accuracy"], "held_out_by_group": held_out["by_class"],
                         "held_out_n": held_out["n"], "held_out_seed_range": held_out.get("seed_range", "test")})
    d, h, w = opts.input_size
    return {"name": name, "architecture": opts.architecture, "architecture_args": dict(opts.architecture_args),
            "spatial_dims": 3, "input_size": [d, h, w], "spacing_mm": None,
            "hu_window": [float(v) for v in opts.hu_window], "output": opts.output,
            "class_names": list(opts.class_names), "training": training, "accuracy": accuracy,
            "notes": notes or (f"3D contrast-phase demo model for napari-ctinterp: a compact 3D CNN "
                               f"({opts.architecture}) on the whole CT volume resized to {d}x{h}x{w} (D x H x W), "
                               f"one HU window {opts.hu_window[0]:g}..{opts.hu_window[1]:g} -> [0, 1], four classes "
                               "(no contrast / arterial / pulmonary / venous, softmax). Trained only on the "
                               "synthetic phantom's volumes; not for clinical use and not validated on real CT.")}


def save_demo3d(net: nn.Module, card: dict, path: str | Path, *, half: bool = True) -> tuple[Path, Path]:
    """Save fp16 safetensors (``path``) and the card dict beside it (``<stem>.card.json``)."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in net.eval().state_dict().items()}
    save_file(sd, str(p), metadata={"architecture": card["architecture"], "output": card["output"]})
    card_path = p.with_name(p.stem + ".card.json")
    card_path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    return p, card_path
