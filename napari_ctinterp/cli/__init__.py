"""``ctinterp`` command line: open the viewer, train or check a classifier, run a study.

``demo`` opens napari with the plugin ready; ``train``, ``evaluate``, ``fit-domain`` and
``study`` run the core without a viewer.

Each sub-command's module is imported when the parser is built, but each imports its heavy
dependencies (torch, napari, pandas) inside the command, so ``ctinterp --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .demo import cmd_demo
from .options import add_explain_arguments
from .study import cmd_report, cmd_study
from .train import cmd_evaluate, cmd_fit_domain, cmd_train

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``ctinterp`` argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="ctinterp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="open napari with the demo data and the plugin's widgets")
    demo.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the window and exit")
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train a classifier (phantom slices, or --data/--labels)")
    tr.add_argument("--demo", action="store_true", help="train the bundled demo model (writes package data)")
    tr.add_argument("--demo-phase", action="store_true",
                    help="train the bundled contrast-phase demo (densenet121, 3 windows, 4 classes; package data)")
    tr.add_argument("--demo-shortcut", action="store_true",
                    help="train the bundled shortcut demo (the demo's resnet18 fine-tuned to read a planted marker; "
                         "package data)")
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
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy on fresh held-out phantom slices")
    ev.add_argument("--model", default="demo")
    ev.add_argument("--n", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--workers", type=int, default=2)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--write-card", action="store_true", help="record the result in the model card")
    ev.set_defaults(func=cmd_evaluate)

    fd = sub.add_parser("fit-domain", help="fit a model's out-of-domain check on its training slices (into its card)")
    fd.add_argument("--model", default="demo")
    fd.add_argument("--data", help="folder of the model's training slices (DICOM series, or .npy HU)")
    fd.add_argument("--phantom", type=int, default=0, help="fit on N phantom training slices (the demo models)")
    fd.add_argument("--seed", type=int, default=0)
    fd.add_argument("--workers", type=int, default=2)
    fd.add_argument("--device", default="auto")
    fd.set_defaults(func=cmd_fit_domain)

    st = sub.add_parser("study", help="the comparison over a data set: tables, figures, HTML report")
    st.add_argument("--demo", action="store_true",
                    help="held-out phantom slices (a 3D model: phantom series) with ground-truth masks")
    st.add_argument("--benchmark", choices=["shortcut"],
                    help="shortcut: demo-shortcut (reads a planted marker) and demo (ignores it) on the same "
                         "phantom slices with markers; truth scores of every map beside F and the expert AUC")
    st.add_argument("--data", help="folder of DICOM slices with labels.csv (file,label[,mask])")
    st.add_argument("--labels", help="labels CSV (default DATA/labels.csv)")
    st.add_argument("--model", default="demo")
    st.add_argument("--slices", type=int, default=2,
                    help="number of slices (demo; a 3D model: series; 0 = all for --data)")
    add_explain_arguments(st)
    st.add_argument("--xrai", default="full", choices=["full", "fast", "off"],
                    help="XRAI region maps (default full; a 3D model: off unless given — supervoxels cost a "
                         "segmentation per series)")
    st.add_argument("--fidelity-step", type=float, default=2.5)
    st.add_argument("--signs", nargs="+", choices=["absolute", "signed"], default=["absolute", "signed"],
                    help="which forms of each map are scored (default both; absolute alone halves fidelity's "
                         "cost; the shortcut benchmark scores absolute maps only)")
    st.add_argument("--metrics", nargs="+", default=None, metavar="NAME",
                    help="scores beyond the paper's, by name, or 'all' or 'none' (default: AUPRC, IoU at Otsu's "
                         "level, sparseness, complexity and faithfulness correlation; 'all' adds top-k and "
                         "max-sensitivity, which explains every slice 10 more times). '--metrics list' names "
                         "them and says what each is")
    st.add_argument("--sanity", action="store_true",
                    help="add the model randomisation test of the example slice to the report")
    st.add_argument("--device", default="auto")
    st.add_argument("--batch-size", type=int, default=0)
    st.add_argument("--workers", type=int, default=0, help="start a Dask LocalCluster with N workers")
    st.add_argument("--scheduler", help="address of an existing Dask scheduler (tcp://host:8786)")
    st.add_argument("--out", default="study-results")
    st.set_defaults(func=cmd_study)

    rp = sub.add_parser("report", help="rebuild a study's tables and report from its stored slices (no maps "
                                       "recomputed; a partly finished study too)")
    rp.add_argument("results", metavar="RESULTS_DIR", help="a study's results folder (its --out, or one run in it)")
    rp.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctinterp`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from ..model.checkpoints import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (CheckpointError, FileNotFoundError) as e:  # a wrong path or card: the message says what to fix
        print(f"ctinterp {args.command}: {e}", file=sys.stderr)
        return 2

