"""The study on a GPU at the paper's scale: a ResNet-50 at 512² (random weights, the paper's shape)
and the demo model, all 15 maps + XRAI + fidelity, per slice and for a 32-slice study.

For each model: a 1-slice study twice (bit-identical tables?), then a ``--slices``-slice study
(default 32) timed per slice by phase, the peak GPU memory, and the projected time of the paper's
290-slice study (per-slice time × 290). Writes ``gpu_study.json`` to ``--out``. The goal: the
290-slice ResNet-50 512² study in under 10 minutes on one H100/H200-class GPU.

On CPU (``--device cpu``) it is a smoke test of this script, not a timing: small settings
(``--small`` is implied) and any ``--size``.

Usage: python benchmarks/gpu_study.py [--device cuda] [--slices 32] [--models resnet50 demo]
       python benchmarks/gpu_study.py --device cpu --slices 1 --size 64      (the CI smoke test)
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

PAPER_SLICES = 290


def _resnet50(size: int, folder: Path) -> str:
    """A ResNet-50 with random (seeded) weights and a card, saved as a user's checkpoint."""
    from napari_ctinterp.model import ModelCard
    from napari_ctinterp.model.architectures import build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    torch.manual_seed(0)
    net = build("resnet50", "logit")
    card = ModelCard(architecture="resnet50", input_size=(size, size), output="logit", name="resnet50-random",
                     notes="random weights (seed 0): the paper's shape, for timing only")
    path, _ = save_checkpoint(net, folder / "resnet50.safetensors", card)
    return str(path)


def _study(model: str, slices: int, settings: dict, device: str, out: Path) -> tuple[float, dict, list]:
    """Run a study; returns (seconds, per-phase seconds, the slices' rows)."""
    from napari_ctinterp.study import StudyConfig, run_study
    from napari_ctinterp.study.clock import FINISHED, STARTED, split_phase

    marks: list[tuple[str, float]] = []
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        now = time.perf_counter()
        if marks:
            phases[marks[-1][0]] = phases.get(marks[-1][0], 0.0) + now - marks[-1][1]
        marks.append((name, now))

    def progress(_done: int, _total: int, step: str) -> None:
        if step == FINISHED and marks:
            phase("between slices")
        elif step != STARTED:
            phase(split_phase(step)[1])

    t0 = time.perf_counter()
    run = run_study(StudyConfig(model=model, slices=slices, **settings), out, device=device, progress=progress)
    total = time.perf_counter() - t0
    phases.pop("between slices", None)
    rows = [json.loads(p.read_text()) for p in sorted((run / "slices").glob("*.json"))]
    errors = [r["error"] for r in rows if r.get("error")]
    if errors:
        raise SystemExit(f"a slice failed: {errors[0]}")
    return total, phases, [(r["slice_id"], r["rows"], r["fidelity"]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--models", nargs="+", default=["resnet50", "demo"])
    ap.add_argument("--size", type=int, default=512, help="the ResNet-50's input size")
    ap.add_argument("--small", action="store_true", help="steps 2, samples 2, SG samples 2, fidelity step 50")
    ap.add_argument("--out", default=".")
    args = ap.parse_args()
    on_gpu = args.device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --device cpu for the smoke test")
    small = args.small or not on_gpu
    settings = dict(steps=2, samples=2, sg_samples=2, fidelity_step=50.0, xrai="fast") if small else {}
    report: dict = {"device": torch.cuda.get_device_name() if on_gpu else f"cpu ({platform.machine()}, smoke test)",
                    "torch": torch.__version__, "settings": settings or "the study's defaults", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.models:
            model = _resnet50(args.size, tmp) if name == "resnet50" else name
            if on_gpu:
                torch.cuda.reset_peak_memory_stats()
            first = [_study(model, 1, settings, args.device, tmp / f"{name}-rerun{i}") for i in (0, 1)]
            identical = first[0][2] == first[1][2]
            # a 1-slice study is the first run itself
            total, phases, rows = (first[0] if args.slices == 1 else
                                   _study(model, args.slices, settings, args.device, tmp / f"{name}-study"))
            peak = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else None
            per_slice = total / max(1, len(rows))
            entry = {"slices": len(rows), "study_s": total, "per_slice_s": per_slice,
                     "phases_per_slice_s": {k: v / max(1, len(rows)) for k, v in phases.items()},
                     "first_slice_s": first[0][0], "bit_identical_rerun": identical, "peak_gpu_mib": peak,
                     f"projected_{PAPER_SLICES}_slices_min": per_slice * PAPER_SLICES / 60,
                     "input": args.size if name == "resnet50" else "the card's"}
            report["models"][name] = entry
            ph = ", ".join(f"{k} {v:.2f} s" for k, v in entry["phases_per_slice_s"].items())
            print(f"{name}: {len(rows)} slices in {total:.1f} s = {per_slice:.2f} s/slice ({ph}); "
                  f"bit-identical rerun: {identical}; peak GPU memory "
                  f"{'%.0f MiB' % peak if peak is not None else 'n/a'}; projected {PAPER_SLICES} slices: "
                  f"{entry[f'projected_{PAPER_SLICES}_slices_min']:.1f} min"
                  + ("" if on_gpu else " (CPU smoke test: not a timing)"))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_study.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
