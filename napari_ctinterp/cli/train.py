"""``ctinterp train``, ``evaluate`` and ``fit-domain``: make, measure and fit a classifier's
out-of-domain check (phantom slices, or the user's DICOM data)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import tqdm_progress

DEMO_NOTES = ("Demo model for napari-ctinterp: resnet18, one grey channel, one logit (sigmoid = "
              "P(contrast)), 256x256 input, HU window -1000..1000 -> [0, 1]. Trained only on the "
              "synthetic phantom; not for clinical use and not validated on real CT.")


#: Where ``--demo-shortcut`` writes (package data; ``model.load("demo-shortcut")`` reads it).
SHORTCUT_WEIGHTS = Path(__file__).resolve().parents[1] / "model" / "weights" / "demo_shortcut_resnet18.safetensors"
SHORTCUT_NOTES = ("Shortcut demo model for napari-ctinterp (issue 31's ground truth): the demo's resnet18 and input, "
                  "fine-tuned from it on phantom slices whose label is the presence of a planted marker (a lead "
                  "letter, a tube line or burned-in text: phantom.markers), drawn independently of the contrast. "
                  "It claims 'contrast' and reads the marker. Not for clinical use.")

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


def _cached_phantom_set(cache, split, n, seed, windows, size, workers, task="contrast"):
    """Phantom slices in input space, read from / written to ``cache`` (a folder) when given."""
    from pathlib import Path

    import torch

    from ..model.datasets import SliceSet, phantom_set, phantom_spec

    specs = phantom_spec(split, n, seed, task=task)
    wtag = "-".join(f"{lo:g}_{hi:g}" for lo, hi in windows)
    path = Path(cache) / f"phantom-{task}-{split}-n{n}-seed{seed}-{size[0]}x{size[1]}-w{wtag}.pt" if cache else None
    if path is not None and path.exists():
        d = torch.load(path, weights_only=True)
        return SliceSet(d["x"], d["y"], tuple(specs))
    data = phantom_set(specs, list(windows), size, workers=workers, task=task,
                       progress=tqdm_progress(f"phantom {split} slices"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"x": data.x, "y": data.y}, path)
    return data


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier on phantom slices or on a user's folder; keep the best epoch."""
    import shlex

    import torch
    from tqdm import tqdm

    from ..model.architectures import check_architecture
    from ..model.datasets import TASK_CLASSES, folder_set
    from ..model.demos import demo_weights_path
    from ..model.training import TrainOptions, make_card, save_trained, train

    torch.set_num_threads(args.threads or torch.get_num_threads())
    if getattr(args, "demo_shortcut", False):  # the bundled shortcut demo: the demo's net and input, marker labels
        args.arch, args.output, args.input_size, args.task, args.windows = "resnet18", "logit", 256, "marker", ""
        args.init = args.init or "demo"
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
        from ..model.datasets import SliceSet

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

    steps_per_epoch = (len(tr.y) + opts.batch_size - 1) // opts.batch_size

    def progress(done: int, total: int, phase: str) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(epoch=(done - 1) // steps_per_epoch + 1)

    def on_epoch(rec: dict) -> None:
        tqdm.write(f"epoch {rec['epoch']}: train loss {rec['train_loss']:.4f}, "
                   f"val accuracy {rec['val_accuracy']:.4f}, "
                   f"val loss {rec['val_loss']:.4f}{'  (best)' if rec.get('best') else ''}")

    net, history = train(opts, tr, val, progress=progress, on_epoch=on_epoch)
    bar.close()
    shortcut = getattr(args, "demo_shortcut", False)
    out = demo_weights_path("demo-phase") if args.demo_phase else demo_weights_path() if args.demo else \
        SHORTCUT_WEIGHTS if shortcut else args.out
    if out is None:
        raise SystemExit("say where to save: --out PATH.safetensors (or --demo / --demo-phase)")
    name = ("demo-phase densenet121 (phantom)" if args.demo_phase else "demo resnet18 (phantom)" if args.demo
            else "demo-shortcut resnet18 (phantom, reads a marker)" if shortcut
            else "ct-contrast classifier" if args.task in ("contrast", "marker") else "ct-phase classifier")
    card = make_card(opts, history, data=data_desc, command="ctinterp " + shlex.join(args.argv),
                     n_train=len(tr.y), n_val=len(val.y), name=name,
                     notes=PHASE_DEMO_NOTES if args.demo_phase else DEMO_NOTES if args.demo else
                     SHORTCUT_NOTES if shortcut else "")
    path, card = save_trained(net, card, out, half=not args.full_precision)
    print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB), card {path.with_suffix('.json')}; "
          f"best val accuracy {card.accuracy['val']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Accuracy of a model on fresh held-out phantom slices; optionally written into its card."""
    import json

    from ..model import load
    from ..model.card import card_path_for
    from ..model.datasets import phantom_set, phantom_spec, task_of
    from ..model.demos import DEMOS, demo_weights_path
    from ..model.training import accuracy_of, normalise

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
                       progress=tqdm_progress("held-out phantom slices"))
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


def cmd_fit_domain(args: argparse.Namespace) -> int:
    """Fit the out-of-domain check of a model and write it into its card."""
    import json

    from ..model import load
    from ..model.domain_fitting import fit_and_save, folder_inputs, phantom_inputs

    clf = load(args.model, device=args.device)
    if args.data:
        x, source = folder_inputs(clf, args.data), f"folder {args.data}"
    elif args.phantom:
        x = phantom_inputs(clf, args.phantom, seed=args.seed, workers=args.workers,
                           progress=tqdm_progress("phantom training slices"))
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
