"""The engine on a CUDA GPU: determinism, agreement with the CPU and Captum, speed against Captum.

One run, demo model, the sample slice, the study's settings (the same as
``explain_vs_captum.py``). Checks that two GPU runs give bit-identical maps, how far the GPU maps
are from the CPU maps and from Captum's on the same GPU (relative L2), and times the 15-map set
and one plain IG map both ways (fp32 throughout: cuDNN's TF32 is switched off for Captum too, as
the engine does). Writes ``gpu_check.json`` to ``--out``.

Usage: python benchmarks/gpu_check.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from explain_vs_captum import _Scores, captum_15


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script (no GPU figures)")
    ap.add_argument("--quick", action="store_true", help="small settings (a dry run, not a check)")
    args = ap.parse_args()
    on_gpu = args.device == "cuda"
    torch.backends.cudnn.allow_tf32 = False  # fp32 for Captum as for the engine
    torch.backends.cuda.matmul.allow_tf32 = False
    from captum.attr import IntegratedGradients

    from napari_ctinterp.explain import explain
    from napari_ctinterp.model import load
    from napari_ctinterp.model.demos import demo_references
    from napari_ctinterp.phantom import make_slice
    from napari_ctinterp.runtime import auto_batch_size

    gpu, cpu = load("demo", device=args.device), load("demo", device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    refs_hu = demo_references()
    target = int(cpu.predict(hu) >= 0.5)
    steps, samples, sg = (25, 50, 15) if not args.quick else (5, 5, 3)
    kw = dict(steps=steps, samples=samples, sg_samples=sg, references=refs_hu, target=target)
    report: dict = {"device": torch.cuda.get_device_name() if on_gpu else "cpu (dry run)", "torch": torch.__version__,
                    "cpu_threads": torch.get_num_threads(), "machine": platform.machine(),
                    "auto_batch_gpu": auto_batch_size(gpu, (256, 256))}
    explain(gpu, hu, methods=("BP",), variants=("plain",))  # warm-up
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    a, t_a = timed(lambda: explain(gpu, hu, **kw))
    report["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20 if on_gpu else 0.0
    b, t_b = timed(lambda: explain(gpu, hu, **kw))
    report["ours_gpu_s"] = [t_a, t_b]
    report["deterministic"] = all(np.array_equal(a[k], b[k]) for k in a)
    t0 = time.perf_counter()
    c = explain(cpu, hu, **kw)
    report["ours_cpu_s"] = time.perf_counter() - t0
    report["gpu_vs_cpu_rel_l2"] = {f"{m}/{v}": rel_l2(a[m, v], c[m, v]) for m, v in a}

    x = gpu.preprocess(hu).contiguous()
    refs = gpu.preprocess(refs_hu).contiguous()
    sigma = 0.15 * float(x.max() - x.min())
    run = lambda: captum_15(gpu, x, refs, target, steps=steps, samples=samples, sg_samples=sg, sigma=sigma, batch=32)  # noqa: E731
    cap, t_c1 = timed(run)
    _, t_c2 = timed(run)
    report["captum_gpu_s"] = [t_c1, t_c2]
    ratio = (t_c1 + t_c2) / (t_a + t_b)
    report["ratio_15_maps"] = ratio
    resize = lambda t: torch.nn.functional.interpolate(t.detach(), size=hu.shape, mode="bilinear",  # noqa: E731
                                                       align_corners=False)[0, 0].cpu().numpy()
    report["gpu_vs_captum_rel_l2"] = {m: rel_l2(a[m, "plain"], resize(cap[m, "plain"]))
                                      for m in ("BP", "IGB", "IGBW", "D")}
    # on a GPU an image's numbers depend on the batch it is in (cuDNN picks kernels by shape), which
    # can flip ReLU masks: compare Captum with itself at two batch sizes, and ours at Captum's batch
    ig = lambda bs: resize(IntegratedGradients(_Scores(gpu)).attribute(  # noqa: E731
        x, baselines=0.0, target=target, n_steps=steps, internal_batch_size=bs))
    report["captum_ig_batch_25_vs_8_rel_l2"] = rel_l2(ig(8), ig(32))
    same = explain(gpu, hu, methods=("IGB", "IGBW"), variants=("plain",), steps=steps, target=target,
                   batch_size=steps)
    report["ours_at_captum_batch_vs_captum_rel_l2"] = {m: rel_l2(same[m, "plain"], resize(cap[m, "plain"]))
                                                       for m in ("IGB", "IGBW")}
    times = {"ours": [], "captum": []}
    for _ in range(3):
        _, t = timed(lambda: explain(gpu, hu, methods=("IGB",), variants=("plain",), steps=steps, target=target))
        times["ours"].append(t)
        _, t = timed(lambda: IntegratedGradients(_Scores(gpu)).attribute(  # from the HU slice, as explain
            gpu.preprocess(hu).contiguous(), baselines=0.0, target=target, n_steps=steps))
        times["captum"].append(t)
    report["one_ig_map_s"] = {k: min(v) for k, v in times.items()}

    print(f"device {report['device']}, torch {report['torch']}, auto batch {report['auto_batch_gpu']}, "
          f"peak GPU memory {report['peak_gpu_mib']:.0f} MiB")
    print(f"15 maps  ours {t_a:6.2f} / {t_b:6.2f} s   captum {t_c1:6.2f} / {t_c2:6.2f} s   ratio {ratio:5.2f}x")
    o, cc = report["one_ig_map_s"]["ours"], report["one_ig_map_s"]["captum"]
    print(f"1 IG map ours {o:6.3f} s   captum {cc:6.3f} s   ratio {cc / o:5.2f}x (best of 3)")
    print(f"deterministic (two GPU runs bit-identical): {report['deterministic']}")
    print(f"15 maps on this machine's CPU ({report['cpu_threads']} threads): {report['ours_cpu_s']:.1f} s")
    print("GPU vs CPU, relative L2:  " + ", ".join(f"{k} {v:.1e}" for k, v in report["gpu_vs_cpu_rel_l2"].items()))
    print("GPU vs Captum (plain):    " + ", ".join(f"{k} {v:.1e}" for k, v in report["gpu_vs_captum_rel_l2"].items()))
    print(f"Captum IG, internal batch 8 vs 25 steps at once: {report['captum_ig_batch_25_vs_8_rel_l2']:.1e}; "
          "ours with Captum's batches vs Captum: "
          + ", ".join(f"{k} {v:.1e}" for k, v in report["ours_at_captum_batch_vs_captum_rel_l2"].items()))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "gpu_check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
