"""``ctinterp`` command line: ``demo`` opens napari with the plugin ready; more commands follow.

Each sub-command imports what it needs lazily, so ``ctinterp --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

PLUGIN = "napari-ctinterp"


def _cmd_demo(args: argparse.Namespace) -> int:
    """Open napari with the phantom pair loaded and every widget of the plugin docked."""
    import napari
    from npe2 import PluginManager

    viewer = napari.Viewer(title="napari-ctinterp demo", show=not args.screenshot)
    viewer.open_sample(PLUGIN, "phantom_pair")
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    for i, widget in enumerate(manifest.contributions.widgets or []):
        viewer.window.add_plugin_dock_widget(PLUGIN, widget.display_name, tabify=i > 0)
    if args.screenshot:
        viewer.window._qt_window.resize(1600, 1000)
        viewer.window.show()
        from qtpy.QtWidgets import QApplication

        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False)
        print(f"screenshot written to {args.screenshot}")
        viewer.close()
        return 0
    napari.run()
    return 0


def _tqdm_progress(desc: str):
    from tqdm import tqdm

    bars: dict = {}

    def report(i: int, n: int) -> None:
        bar = bars.get("bar")
        if bar is None:
            bar = bars["bar"] = tqdm(total=n, desc=desc, unit="slice")
        bar.update(i - bar.n)
        if i >= n:
            bar.close()

    return report


def _cached_phantom_set(cache, split, n, seed, windows, size, workers, task="contrast"):
    """Phantom slices in input space, read from / written to ``cache`` (a folder) when given."""
    from pathlib import Path

    import torch

    from .model.datasets import SliceSet, phantom_set, phantom_spec

    specs = phantom_spec(split, n, seed, task=task)
    wtag = "-".join(f"{lo:g}_{hi:g}" for lo, hi in windows)
    path = Path(cache) / f"phantom-{task}-{split}-n{n}-seed{seed}-{size[0]}x{size[1]}-w{wtag}.pt" if cache else None
    if path is not None and path.exists():
        d = torch.load(path, weights_only=True)
        return SliceSet(d["x"], d["y"], tuple(specs))
    data = phantom_set(specs, list(windows), size, workers=workers, task=task,
                       progress=_tqdm_progress(f"phantom {split} slices"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x": data.x, "y": data.y}, path)
    return data


def _cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier on phantom slices or on a user's folder; keep the best epoch."""
    import shlex

    import torch
    from tqdm import tqdm

    from .model.architectures import check_architecture
    from .model.datasets import TASK_CLASSES, folder_set
    from .model.loading import demo_weights_path
    from .model.training import TrainOptions, make_card, save_trained, train

    torch.set_num_threads(args.threads or torch.get_num_threads())
    if args.demo_phase:  # the bundled contrast-phase demo: every choice fixed here
        args.arch, args.output, args.input_size, args.task = "densenet121", "softmax", 128, "phase"
        args.windows, args.imagenet_norm = " ".join(PHASE_DEMO_WINDOWS), True
    check_architecture(args.arch)
    n_classes = len(TASK_CLASSES[args.task])
    if args.output in ("logit", "sigmoid", "softmax2") and n_classes != 2:
        raise SystemExit(f"--task {args.task} has {n_classes} classes: use --output softmax (or multilabel cards "
                         f"written by hand); --output {args.output} is for two classes")
    size = (args.input_size, args.input_size)
    windows = tuple(_parse_window(w) for w in args.windows.replace(";", " ").split()) if args.windows else ()
    n_ch = len(windows) or 1
    normalize = {"mean": list(IMAGENET_MEAN[:n_ch]), "std": list(IMAGENET_STD[:n_ch])} if args.imagenet_norm else None
    if args.imagenet_norm and n_ch != 3:
        raise SystemExit("--imagenet-norm needs three --windows (ImageNet statistics are per RGB channel)")
    opts = TrainOptions(architecture=args.arch, output=args.output, input_size=size, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                        bf16=not args.no_bf16, channels=windows, normalize=normalize,
                        class_names=TASK_CLASSES[args.task], task=args.task,
                        init=str(demo_weights_path()) if args.init == "demo" else (args.init or ""))
    if args.data and (args.task != "contrast" or windows):
        raise SystemExit("--data trains the contrast task on one window (labels.csv: 1/0); "
                         "--task/--windows are for phantom training")
    if args.data:
        if not args.labels:
            raise SystemExit("--data needs --labels CSV (columns file,label)")
        full = folder_set(args.data, args.labels, opts.hu_window, size)
        n_val = max(1, len(full.y) // 5)
        perm = torch.randperm(len(full.y), generator=torch.Generator().manual_seed(args.seed))
        from .model.datasets import SliceSet

        def part(ix):
            return SliceSet(full.x[ix], full.y[ix], tuple(full.info[i] for i in ix.tolist()))

        val, tr = part(perm[:n_val]), part(perm[n_val:])
        data_desc = f"folder {args.data} with labels {args.labels}"
    else:
        tr = _cached_phantom_set(args.cache, "train", args.n_train, args.seed, opts.windows, size, args.workers,
                                 args.task)
        val = _cached_phantom_set(args.cache, "val", args.n_val, args.seed, opts.windows, size, args.workers,
                                  args.task)
        data_desc = (f"napari_ctinterp.phantom: {args.n_train} training slices (seed range train), "
                     f"{args.n_val} validation slices (seed range val), 512x512, fast noise, all levels")
    bar = tqdm(total=opts.epochs * ((len(tr.y) + opts.batch_size - 1) // opts.batch_size), desc="training",
               unit="batch")

    def progress(ev: dict) -> None:
        if ev["stage"] == "train":
            bar.update(1)
            bar.set_postfix(epoch=ev["epoch"], loss=f"{ev['loss']:.4f}")
        else:
            tqdm.write(f"epoch {ev['epoch']}: val accuracy {ev['val_accuracy']:.4f}, "
                       f"val loss {ev['val_loss']:.4f}{'  (best)' if ev.get('best') else ''}")

    net, history = train(opts, tr, val, progress=progress)
    bar.close()
    out = demo_weights_path("demo-phase") if args.demo_phase else demo_weights_path() if args.demo else args.out
    if out is None:
        raise SystemExit("say where to save: --out PATH.safetensors (or --demo / --demo-phase)")
    name = ("demo-phase densenet121 (phantom)" if args.demo_phase else "demo resnet18 (phantom)" if args.demo
            else "ct-contrast classifier" if args.task == "contrast" else "ct-phase classifier")
    card = make_card(opts, history, data=data_desc, command="ctinterp " + shlex.join(args.argv),
                     n_train=len(tr.y), n_val=len(val.y), name=name,
                     notes=PHASE_DEMO_NOTES if args.demo_phase else DEMO_NOTES if args.demo else "")
    path, card = save_trained(net, card, out, half=not args.full_precision)
    print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB), card {path.with_suffix('.json')}; "
          f"best val accuracy {card.accuracy['val']:.4f}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy of a model on fresh held-out phantom slices; optionally written into its card."""
    import json

    from .model import load
    from .model.card import card_path_for
    from .model.datasets import phantom_set, phantom_spec, task_of
    from .model.loading import DEMOS, demo_weights_path
    from .model.training import accuracy_of, normalise

    clf = load(args.model, device=args.device)
    card = clf.card
    if card.is_2_5d:
        raise SystemExit("evaluate uses single phantom slices; a 2.5D model needs volumes (use `ctinterp study`)")
    try:
        task = task_of(card.class_names)
    except ValueError as e:
        raise SystemExit(f"{e}: this model cannot be evaluated on the phantom") from None
    specs = phantom_spec("test", args.n, args.seed, task=task)
    data = phantom_set(specs, list(card.windows), card.input_size, workers=args.workers, task=task,
                       progress=_tqdm_progress("held-out phantom slices"))
    logits = clf.logits(normalise(data.x, card.normalize).to(clf.device)).cpu()
    acc = accuracy_of(logits, data.y)
    pred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
    by_phase: dict = {}
    for s, p, y in zip(specs, pred.tolist(), data.y.tolist()):
        key = (s["phase"] if s["contrast"] else "no contrast") if task == "contrast" else card.class_names[y]
        ok, n = by_phase.get(key, (0, 0))
        by_phase[key] = (ok + int(p == y), n + 1)
    result = {"held_out": acc, "held_out_n": len(specs), "held_out_seed_range": "test",
              "held_out_by_group": {k: ok / n for k, (ok, n) in by_phase.items()}}
    print(json.dumps(result, indent=2))
    if args.write_card:
        weights = demo_weights_path(args.model) if args.model in DEMOS else args.model
        cp = card_path_for(weights)
        d = json.loads(cp.read_text())
        d["accuracy"].update(result)
        cp.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        print(f"accuracy written into {cp}")
    return 0


def _cmd_fit_domain(args: argparse.Namespace) -> int:
    """Fit the out-of-domain check of a model and write it into its card."""
    import json

    from .model import load
    from .model.domain import fit_and_save, folder_inputs, phantom_inputs

    clf = load(args.model, device=args.device)
    if args.data:
        x, source = folder_inputs(clf, args.data), f"folder {args.data}"
    elif args.phantom:
        x = phantom_inputs(clf, args.phantom, seed=args.seed, workers=args.workers,
                           progress=_tqdm_progress("phantom training slices"))
        source = f"{args.phantom} phantom slices of the training seed range"
    else:
        raise SystemExit("give --data DIR (a folder of the model's training slices, DICOM) or --phantom N "
                         "(the demo models' training data)")
    try:
        entry = fit_and_save(clf, x, seed=args.seed, source=source)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    print(json.dumps({k: v for k, v in entry.items() if k != "reference"}, indent=2))
    return 0


def _study_config(args: argparse.Namespace):
    """The StudyConfig of ``ctinterp study``'s arguments (ValueError on a bad combination)."""
    from .explain import METHODS, VARIANTS
    from .study import StudyConfig

    return StudyConfig(data="demo" if args.demo else args.data, model=args.model, slices=args.slices,
                       methods=tuple(args.methods or METHODS), variants=tuple(args.variants or VARIANTS),
                       steps=args.steps, samples=args.samples, sg_samples=args.sg_samples, sg_level=args.sg_level,
                       seed=args.seed, xrai=args.xrai, fidelity_step=args.fidelity_step, gc_layer=args.gc_layer,
                       occ_window=args.occ_window, occ_stride=args.occ_stride, occ_fill=args.occ_fill,
                       sanity=args.sanity)


def _cmd_study(args: argparse.Namespace) -> int:
    """Run (or resume) a study and print a short summary."""
    import json

    from tqdm import tqdm

    from .explain import GradCamLayerError
    from .study import run_study

    if not args.demo and not args.data:
        raise SystemExit("say what to study: --demo (phantom slices) or --data DIR (with labels.csv)")
    try:
        cfg = _study_config(args)
    except ValueError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    import time

    from .study.clock import StudyClock

    clock = StudyClock()
    bar = tqdm(desc="study", unit="slice", total=0, bar_format="{desc}: {n}/{total} |{bar}| {elapsed}{postfix}")

    def progress(done: int, total: int, res: dict | None) -> None:
        now = time.monotonic()
        if res is None:
            clock.begin(done, total, now)
        else:
            clock.finished(done, now)
        bar.total = total
        bar.n = done
        bar.set_postfix_str(clock.line(now))
        if res is not None and res.get("error"):
            tqdm.write(f"slice {res['slice_id']} failed: {res['error']}")

    def phase(slice_id: str, name: str) -> None:
        now = time.monotonic()
        clock.enter(slice_id, name, now)
        bar.set_postfix_str(clock.line(now))

    try:
        run_dir = run_study(cfg, args.out, device=args.device, batch_size=args.batch_size or None,
                            workers=args.workers, scheduler=args.scheduler, labels_csv=args.labels,
                            progress=progress, phase=phase)
    except GradCamLayerError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    finally:
        bar.close()
    import pandas as pd

    acc = json.loads((run_dir / "accuracy.json").read_text())
    if acc["n"] == 0:
        print(f"\nresults: {run_dir}  (report: {run_dir / 'report.html'})")
        print(f"no slice was scored: all {acc['n_failed']} failed (the error column of table.csv says why)")
        return 1
    fid = pd.read_csv(run_dir / "fidelity.csv")
    summ = pd.read_csv(run_dir / "summary.csv")
    print(f"\nresults: {run_dir}  (report: {run_dir / 'report.html'})")
    print(f"slices: {acc['n']} scored, {acc['n_failed']} failed; model accuracy {acc['accuracy']}")
    sel = summ[(summ["sign"] == "absolute")][["method", "variant", "map_type", "auc_mean", "max_dice_mean"]]
    if len(fid):
        f = fid[fid["sign"] == "absolute"][["method", "variant", "map_type", "F"]]
        sel = sel.merge(f, on=["method", "variant", "map_type"], how="left")
    print(sel.round(3).to_string(index=False))
    return 0


DEMO_NOTES = ("Demo model for napari-ctinterp: resnet18, one grey channel, one logit (sigmoid = "
              "P(contrast)), 256x256 input, HU window -1000..1000 -> [0, 1]. Trained only on the "
              "synthetic phantom; not for clinical use and not validated on real CT.")


#: The contrast-phase demo's channels: lung (W1500/L−600), mediastinum (W400/L40), bone (W1800/L400).
PHASE_DEMO_WINDOWS = ("-1350,150", "-160,240", "-500,1300")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PHASE_DEMO_NOTES = ("Contrast-phase demo model for napari-ctinterp: densenet121, three HU windows as channels "
                    "(lung -1350..150, mediastinum -160..240, bone -500..1300, each -> [0, 1], then ImageNet "
                    "mean/std), four classes (no contrast / arterial / pulmonary / venous, softmax), 128x128 input. "
                    "Trained only on the synthetic phantom; not for clinical use and not validated on real CT.")


def _parse_window(text: str) -> tuple[float, float]:
    """``"LO,HI"`` → (LO, HI), with a message that says the format."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(f"--windows: {text!r} is not LO,HI (e.g. -160,240)") from None
    if not hi > lo:
        raise SystemExit(f"--windows: {text!r}: HI must be above LO")
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    """The ``ctinterp`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="ctinterp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="open napari with the demo data and the plugin's widgets")
    demo.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    demo.set_defaults(func=_cmd_demo)

    tr = sub.add_parser("train", help="train a classifier (phantom slices, or --data/--labels)")
    tr.add_argument("--demo", action="store_true", help="train the bundled demo model (writes package data)")
    tr.add_argument("--demo-phase", action="store_true",
                    help="train the bundled contrast-phase demo (densenet121, 3 windows, 4 classes; package data)")
    tr.add_argument("--out", help="where to save the .safetensors (the card goes beside it)")
    tr.add_argument("--arch", default="resnet18", help="torchvision builder name (resnet18, densenet121, ...)")
    tr.add_argument("--output", default="logit", choices=["logit", "sigmoid", "softmax2", "softmax"])
    tr.add_argument("--task", default="contrast", choices=["contrast", "phase"],
                    help="phantom labels: contrast (2 classes) or phase (no contrast/arterial/pulmonary/venous)")
    tr.add_argument("--windows", metavar='"LO,HI LO,HI ..."',
                    help='one HU window per input channel, e.g. --windows="-1350,150 -160,240" (default one)')
    tr.add_argument("--imagenet-norm", action="store_true", help="ImageNet mean/std after windowing (3 windows)")
    tr.add_argument("--input-size", type=int, default=256)
    tr.add_argument("--n-train", type=int, default=2400)
    tr.add_argument("--n-val", type=int, default=300)
    tr.add_argument("--epochs", type=int, default=8)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--workers", type=int, default=2, help="processes generating phantom slices")
    tr.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--full-precision", action="store_true", help="save fp32 instead of fp16 weights")
    tr.add_argument("--no-bf16", action="store_true", help="train in fp32 (bf16 autocast is 2x faster on CPU)")
    tr.add_argument("--cache", help="folder to keep generated phantom slices for re-runs")
    tr.add_argument("--init", help="start from this checkpoint (fine-tuning) instead of random weights")
    tr.add_argument("--data", help="folder of DICOM slices (with --labels)")
    tr.add_argument("--labels", help="CSV with columns file,label (1/0 or contrast/no contrast)")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy on fresh held-out phantom slices")
    ev.add_argument("--model", default="demo")
    ev.add_argument("--n", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--workers", type=int, default=2)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--write-card", action="store_true", help="record the result in the model card")
    ev.set_defaults(func=_cmd_evaluate)

    fd = sub.add_parser("fit-domain", help="fit a model's out-of-domain check on its training slices (into its card)")
    fd.add_argument("--model", default="demo")
    fd.add_argument("--data", help="folder of the model's training slices (DICOM series, or .npy HU)")
    fd.add_argument("--phantom", type=int, default=0, help="fit on N phantom training slices (the demo models)")
    fd.add_argument("--seed", type=int, default=0)
    fd.add_argument("--workers", type=int, default=2)
    fd.add_argument("--device", default="auto")
    fd.set_defaults(func=_cmd_fit_domain)

    st = sub.add_parser("study", help="the comparison over a data set: tables, figures, HTML report")
    st.add_argument("--demo", action="store_true", help="held-out phantom slices with ground-truth masks")
    st.add_argument("--data", help="folder of DICOM slices with labels.csv (file,label[,mask])")
    st.add_argument("--labels", help="labels CSV (default DATA/labels.csv)")
    st.add_argument("--model", default="demo")
    st.add_argument("--slices", type=int, default=2, help="number of slices (demo; 0 = all for --data)")
    st.add_argument("--methods", nargs="+", choices=["BP", "IGB", "IGBW", "EG", "D", "GC", "GBP", "GGC", "OCC"],
                    help="default: the paper's five (BP IGB IGBW EG D); beyond them GC (Grad-CAM), GBP (Guided "
                         "Backprop), GGC (Guided Grad-CAM), OCC (Occlusion, plain only)")
    st.add_argument("--variants", nargs="+", choices=["plain", "SG", "SG2"],
                    help="default all three: plain, SmoothGrad, SmoothGrad² (OCC: plain only)")
    st.add_argument("--steps", type=int, default=25)
    st.add_argument("--samples", type=int, default=50)
    st.add_argument("--sg-samples", type=int, default=15)
    st.add_argument("--sg-level", type=float, default=0.15)
    st.add_argument("--xrai", default="full", choices=["full", "fast", "off"])
    st.add_argument("--fidelity-step", type=float, default=2.5)
    st.add_argument("--gc-layer", help="Grad-CAM's target layer by module name, e.g. layer3 (default: the "
                                       "architecture's last spatial block, layer4 on a ResNet)")
    st.add_argument("--occ-window", type=int, default=16,
                    help="Occlusion's square window, pixels at the model's input size (default 16)")
    st.add_argument("--occ-stride", type=int, default=8, help="step between occlusion windows, pixels (default 8)")
    st.add_argument("--occ-fill", default="black", choices=["black", "label"],
                    help="what fills an occluded window: black (the low end of each CT window channel: air) or "
                         "label (the fidelity test's fill: white for class 0, black otherwise)")
    st.add_argument("--sanity", action="store_true",
                    help="add the model randomisation test of the example slice to the report")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--device", default="auto")
    st.add_argument("--batch-size", type=int, default=0)
    st.add_argument("--workers", type=int, default=0, help="start a Dask LocalCluster with N workers")
    st.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")
    st.add_argument("--out", default="study-results")
    st.set_defaults(func=_cmd_study)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctinterp`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from .model.checkpoints import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (CheckpointError, FileNotFoundError) as e:  # a wrong path or card: the message says what to fix
        print(f"ctinterp {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
