"""``ctinterp study``: the comparison over a data set, with a progress line and a summary."""

from __future__ import annotations

import argparse
import sys

from .options import explain_options


def _study_config(args: argparse.Namespace):
    """The StudyConfig of ``ctinterp study``'s arguments (ValueError on a bad combination)."""
    from ..study import StudyConfig

    return StudyConfig(data="demo" if args.demo else args.data, model=args.model, slices=args.slices,
                       explain=explain_options(args), xrai=args.xrai, fidelity_step=args.fidelity_step,
                       sanity=args.sanity)


def cmd_study(args: argparse.Namespace) -> int:
    """Run (or resume) a study and print a short summary."""
    import json

    from tqdm import tqdm

    from ..explain import GradCamLayerError
    from ..progress import Cancelled
    from ..study import run_study

    if not args.demo and not args.data:
        raise SystemExit("say what to study: --demo (phantom slices) or --data DIR (with labels.csv)")
    try:
        cfg = _study_config(args)
    except ValueError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    import time

    from ..study.clock import StudyClock

    clock = StudyClock()
    bar = tqdm(desc="study", unit="slice", total=0, bar_format="{desc}: {n}/{total} |{bar}| {elapsed}{postfix}")

    def progress(done: int, total: int, phase: str) -> None:
        now = time.monotonic()
        clock.update(done, total, phase, now)
        bar.total = total
        bar.n = done
        bar.set_postfix_str(clock.line(now))

    def on_result(res: dict) -> None:
        if res.get("error"):
            tqdm.write(f"slice {res['slice_id']} failed: {res['error']}")

    try:
        run_dir = run_study(cfg, args.out, device=args.device, batch_size=args.batch_size or None,
                            workers=args.workers, scheduler=args.scheduler, labels_csv=args.labels,
                            progress=progress, on_result=on_result)
    except GradCamLayerError as e:
        raise SystemExit(f"ctinterp study: {e}") from None
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        print(f"\ninterrupted: {clock.done} of {clock.total} slices kept; run the same command to resume",
              file=sys.stderr)
        return 130
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
