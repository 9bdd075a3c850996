"""The one command that makes the 3D demo model: data, training, held-out evaluation, files.

``python -m napari_ctinterp.model.demo3d_run --out napari_ctinterp/model/weights`` (what
``scripts/train_demo3d.sh`` runs) makes the phantom volumes from seeds, trains
(``training_3d.train_3d``), evaluates on fresh held-out volumes of the test seed range, and writes
``demo-3d.safetensors``, ``demo-3d.card.json`` and ``demo-3d.references.npy`` (the EG reference
volumes: held-out phantom volumes resized to the input, HU, float16).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .training import accuracy_of
from .training_3d import Train3dOptions, make_card_3d, per_class_accuracy, predict_logits_3d, save_demo3d, train_3d
from .volume_data import VolumeSet, phantom_volume_set, resize_volume, spec_volume, volume_spec

#: Number of EG reference volumes shipped with the demo, and the seed of their specs (val range).
N_REFERENCES = 8
REFERENCE_SEED = 424243


def cached_set(split: str, n: int, seed: int, opts: Train3dOptions, cache: Path | None, log=print) -> VolumeSet:
    """The volume set of (split, n, seed) in the input space of ``opts``, from ``cache`` when there."""
    specs = volume_spec(split, n, seed, task=opts.task, recipe=opts.recipe)
    key = hashlib.sha256(json.dumps([specs, list(opts.input_size), list(opts.hu_window)]).encode()).hexdigest()[:16]
    path = cache / f"demo3d-{split}-{n}-{seed}-{key}.pt" if cache else None
    if path is not None and path.exists():
        d = torch.load(path)
        return VolumeSet(x=d["x"], y=d["y"], info=tuple(specs))
    t0 = time.perf_counter()

    def progress(done: int, total: int, phase: str) -> None:
        if done % 50 == 0 or done == total:
            log(f"  {split}: {done}/{total} volumes ({time.perf_counter() - t0:.0f} s)")

    s = phantom_volume_set(specs, opts.hu_window, opts.input_size, task=opts.task, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x": s.x, "y": s.y}, path)
    return s


def reference_volumes(opts: Train3dOptions, exclude: set[int]) -> tuple[np.ndarray, list[dict]]:
    """The EG references: ``N_REFERENCES`` held-out volumes (val range, not in ``exclude``), class-balanced,
    in HU resized to the input size: float16 (K, D, H, W), and their specs."""
    specs = [s for s in volume_spec("val", N_REFERENCES + 8, REFERENCE_SEED, task=opts.task, recipe=opts.recipe)
             if s["seed"] not in exclude][:N_REFERENCES]
    vols = [resize_volume(torch.from_numpy(spec_volume(s).hu)[None], opts.input_size)[0].numpy() for s in specs]
    return np.stack(vols).astype(np.float16), specs


def train_demo3d(out: Path, *, n_train: int = 1000, n_val: int = 200, n_test: int = 200, epochs: int = 20,
                 seed: int = 0, cache: Path | None = None, command: str = "", log=print) -> dict:
    """Make, train, evaluate and save the 3D demo model into ``out``; returns its card dict."""
    opts = replace(Train3dOptions(), epochs=epochs, seed=seed)
    t0 = time.perf_counter()
    log(f"options: {json.dumps(asdict(opts), default=str)}")
    tr = cached_set("train", n_train, seed, opts, cache, log)
    val = cached_set("val", n_val, seed, opts, cache, log)
    t_data = time.perf_counter() - t0
    log(f"data ready in {t_data:.0f} s")

    def on_epoch(r: dict) -> None:
        by_class = json.dumps({k: round(v, 3) for k, v in r["val_by_class"].items()})
        log(f"epoch {r['epoch']}/{epochs}: loss {r['train_loss']:.4f} val acc {r['val_accuracy']:.4f} "
            f"val loss {r['val_loss']:.4f} by class {by_class}"
            f" {r['seconds']:.0f} s{' *' if r.get('best') else ''}")

    net, history = train_3d(opts, tr, val, on_epoch=on_epoch)
    t_train = time.perf_counter() - t0 - t_data
    test = cached_set("test", n_test, seed, opts, None, log)
    logits = predict_logits_3d(net, test.x)
    held = {"accuracy": accuracy_of(logits, test.y), "by_class": per_class_accuracy(logits, test.y, opts.class_names),
            "n": n_test, "seed_range": "test", "seed": seed}
    log(f"held-out ({n_test} fresh test-range volumes): {held['accuracy']:.4f} by class {held['by_class']}")
    refs, ref_specs = reference_volumes(opts, {s["seed"] for s in val.info})
    card = make_card_3d(opts, history, command=command, n_train=n_train, n_val=n_val, held_out=held)
    card["training"].update({"seconds_data": round(t_data, 1), "seconds_train": round(t_train, 1),
                             "seconds_total": round(time.perf_counter() - t0, 1),
                             "threads": torch.get_num_threads()})
    card["references"] = {"file": "demo-3d.references.npy", "n": len(refs), "units": "HU, float16, resized to "
                          "input_size", "seed_range": "val (not in the validation set)", "specs": ref_specs}
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "demo-3d.references.npy", refs)
    save_demo3d(net, card, out / "demo-3d.safetensors")
    log(f"wrote {out / 'demo-3d.safetensors'} in {time.perf_counter() - t0:.0f} s")
    return card


def main(argv: list[str] | None = None) -> int:
    """``python -m napari_ctinterp.model.demo3d_run [--out DIR] [--n-train N] ...``."""
    ap = argparse.ArgumentParser(description="Train the 3D demo model (contrast phase on phantom volumes).")
    ap.add_argument("--out", type=Path, default=Path("napari_ctinterp/model/weights"))
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep the made volumes in (re-runs skip them)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    command = "scripts/train_demo3d.sh " + " ".join(argv if argv is not None else sys.argv[1:])
    train_demo3d(a.out, n_train=a.n_train, n_val=a.n_val, n_test=a.n_test, epochs=a.epochs, seed=a.seed,
                 cache=a.cache, command=command.strip(), log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
