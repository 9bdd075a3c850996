"""``ctinterp study``: the comparison over a data set, with a progress line and a summary."""

from __future__ import annotations

import argparse
import sys

from .options import explain_options


def _study_config(args: argparse.Namespace, three_d: bool = False):
    """The StudyConfig of ``ctinterp study``'s arguments (ValueError on a bad combination). A 3D
    model studies every series of the folder (``_refuse_2d_only`` has checked the flags), pixel maps
    only unless ``--xrai full|fast`` is given (3D XRAI over supervoxels costs a segmentation per
    series: asked for, not by default)."""
    from ..study import StudyConfig

    slices = args.slices if args.demo or not three_d else 0  # a 3D model on the demo set: that many series
    xrai = args.xrai if not three_d or _given(args, "--xrai") else "off"
    return StudyConfig(data="demo" if args.demo else args.data, model=args.model, slices=slices,
                       explain=explain_options(args), xrai=xrai,
                       fidelity_step=args.fidelity_step, sanity=args.sanity, signs=args.signs,
                       metrics=chosen_metrics(args.metrics))


def chosen_metrics(words: list[str] | None) -> tuple[str, ...]:
    """``--metrics``' words as ``StudyConfig.metrics`` (None: the default set): ``all`` every score
    beyond the paper's, ``none`` none of them (ValueError beside other names; ``StudyConfig``
    refuses an unknown name, listing the choices)."""
    from ..metrics.schema import MORE_SCORES, STUDY_METRICS

    if words is None:
        return STUDY_METRICS
    if ("all" in words or "none" in words) and len(words) > 1:
        raise ValueError("--metrics all and --metrics none stand alone: name the scores, or one of those")
    return MORE_SCORES if words == ["all"] else () if words == ["none"] else tuple(words)


def metrics_list() -> str:
    """``ctinterp study --metrics list``: each score beyond the paper's, what it is, whether a study
    computes it by default."""
    from ..metrics.schema import MORE_SCORES, SCORE_INFO, STUDY_METRICS

    return "\n".join(f"{m:26s}{'default' if m in STUDY_METRICS else 'asked':9s}{SCORE_INFO[m].text()}"
                     for m in MORE_SCORES)


def _given(args: argparse.Namespace, flag: str) -> bool:
    """Whether ``flag`` (e.g. ``--slices``) was on the command line, also abbreviated or as
    ``--flag=value`` (argparse took it; ``args.argv`` holds the words ``main`` was given)."""
    words = getattr(args, "argv", None) or ()
    return any(w.startswith("--") and len(w.split("=", 1)[0]) > 2 and flag.startswith(w.split("=", 1)[0])
               for w in words)


def _is_3d(model: str) -> bool:
    """Whether ``model``'s card is a 3D model's (read without the weights; a card that cannot be
    read is left to the study's loading, which says why)."""
    from ..study.series_data import model_card

    try:
        return model_card(model).is_3d
    except (OSError, ValueError):
        return False


def _refuse_2d_only(args: argparse.Namespace) -> None:
    """Refuse, with what to do instead, the flags a 3D model's study cannot use: ``--slices`` with
    a folder (with ``--demo`` it counts phantom series)."""
    what = f"the model {args.model} is 3D: it sees each series whole"
    if _given(args, "--slices") and not args.demo:
        raise SystemExit(f"ctinterp study: --slices chooses slices, and {what}: leave --slices out (every series "
                         f"listed in labels.csv is studied; list fewer rows to study fewer)")


def _shortcut(args: argparse.Namespace) -> int:
    """``ctinterp study --benchmark shortcut``: both models' studies and their comparison."""
    import json

    import pandas as pd

    from ..study.shortcut import run_shortcut_benchmark
    from .progress import tqdm_progress

    if _given(args, "--signs"):
        raise SystemExit("ctinterp study --benchmark shortcut scores the absolute maps (the truth scores read "
                         "those): leave out --signs")
    if args.data or args.demo or _given(args, "--model"):
        raise SystemExit("ctinterp study --benchmark shortcut runs demo-shortcut and demo on its own phantom slices "
                         "with markers: leave out --data, --demo and --model")
    try:
        base = _study_config(args)
    except ValueError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    try:
        res = run_shortcut_benchmark(base, args.out, device=args.device, batch_size=args.batch_size or None,
                                     workers=args.workers, progress=lambda model: tqdm_progress(f"study of {model}"))
    except KeyboardInterrupt:
        print("\ninterrupted: the finished slices are kept; run the same command to resume", file=sys.stderr)
        return 130
    table = pd.read_csv(res / "shortcut.csv")
    corr = json.loads((res / "correlations.json").read_text())["correlations"]
    print(f"\nresults: {res}  (report: {res / 'report.html'})")
    cols = ["method", "variant", "map_type", "n", "truth_relevance_mass", "truth_relevance_mass_low",
            "truth_relevance_mass_high", "F_shortcut", "expert_auc_shortcut"]
    print(table[[c for c in cols if c in table]].sort_values("truth_relevance_mass", ascending=False)
          .round(3).to_string(index=False))
    print("; ".join(f"{k}: rho {v['rho']:+.2f} (n {v['n']})" for k, v in corr.items()))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """Run (or resume) a study and print a short summary."""
    import json

    from tqdm import tqdm

    from ..explain import GradCamLayerError
    from ..progress import Cancelled
    from ..study import run_study

    if getattr(args, "metrics", None) == ["list"]:
        print(metrics_list())
        return 0
    if getattr(args, "benchmark", None) == "shortcut":
        return _shortcut(args)
    if not args.demo and not args.data:
        raise SystemExit("say what to study: --demo (phantom slices) or --data DIR (with labels.csv)")
    three_d = _is_3d(args.model)
    if three_d:
        _refuse_2d_only(args)
    unit, units = ("series", "series") if three_d else ("slice", "slices")
    try:
        cfg = _study_config(args, three_d)
    except ValueError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    import time

    from ..study.clock import StudyClock

    clock = StudyClock()
    bar = tqdm(desc="study", unit=unit, total=0, bar_format="{desc}: {n}/{total} |{bar}| {elapsed}{postfix}")

    def progress(done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        clock.update(done, total, phase, now)
        bar.total = total
        bar.n = done
        bar.set_postfix_str(clock.line(now))

    def on_result(res: dict) -> None:
        if res.get("error"):
            tqdm.write(f"{unit} {res['slice_id']} failed: {res['error']}")

    try:
        run_dir = run_study(cfg, args.out, device=args.device, batch_size=args.batch_size or None,
                            workers=args.workers, scheduler=args.scheduler, labels_csv=args.labels,
                            progress=progress, on_result=on_result)
    except GradCamLayerError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    except ValueError as e:
        if not three_d:  # the 2D study's errors as before
            raise
        raise SystemExit(f"ctinterp study: {e}") from None  # a per-slice labels.csv given to a 3D model
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        print(f"\ninterrupted: {clock.done} of {clock.total} {units} kept; run the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        bar.close()
    import pandas as pd

    acc = json.loads((run_dir / "accuracy.json").read_text())
    if acc["n"] == 0:
        print(f"\nresults: {run_dir}  (report: {run_dir / 'report.html'})")
        print(f"no {unit} was scored: all {acc['n_failed']} failed (the error column of table.csv says why)")
        return 1
    fid = pd.read_csv(run_dir / "fidelity.csv")
    summ = pd.read_csv(run_dir / "summary.csv")
    print(f"\nresults: {run_dir}  (report: {run_dir / 'report.html'})")
    print(f"{units}: {acc['n']} scored, {acc['n_failed']} failed; model accuracy {acc['accuracy']}")
    sel = summ[(summ["sign"] == "absolute")][["method", "variant", "map_type", "auc_mean", "max_dice_mean"]]
    if len(fid):
        f = fid[fid["sign"] == "absolute"][["method", "variant", "map_type", "F"]]
        sel = sel.merge(f, on=["method", "variant", "map_type"], how="left")
    print(sel.round(3).to_string(index=False))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``ctinterp report RESULTS_DIR``: the tables and report of every run in the folder, rebuilt
    from the slices it has stored (nothing is recomputed)."""
    from pathlib import Path

    from ..study.results import assemble

    folder = Path(args.results)
    runs = [folder] if (folder / "config.json").is_file() else sorted(
        p for p in folder.iterdir() if (p / "config.json").is_file()) if folder.is_dir() else []
    if not runs:
        raise SystemExit(f"ctinterp report: {folder} holds no study (no config.json in it or in a folder inside): give "
                         "the --out folder of ctinterp study, or one run in it")
    for run in runs:
        stored = len(list((run / "slices").glob("*.json"))) if (run / "slices").is_dir() else 0
        if stored == 0:
            print(f"{run}: no slice stored yet, nothing to report", file=sys.stderr)
            continue
        assemble(run)
        print(f"{run}: {stored} stored slice(s) → report {run / 'report.html'}")
    return 0
