"""The shortcut benchmark's report: truth scores with intervals, against fidelity and the expert
mask, and example maps of both models on one slice (one self-contained HTML file)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba

from .report import COLOURS, _png, method_label, plt


def figure_truth(table: pd.DataFrame, score: str = "relevance_mass") -> plt.Figure:
    """Each group's truth score with its interval, pixel and region maps side by side."""
    t = table.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.28 * len(t) + 1)))
    y = np.arange(len(t))[::-1]
    mean, lo, hi = (t[f"truth_{score}{s}"].to_numpy(float) for s in ("", "_low", "_high"))
    colours = [to_rgba(COLOURS.get(m, "grey"), 0.95 if mt == "pixel" else 0.5) for m, mt in zip(t["method"],
                                                                                              t["map_type"])]
    ax.barh(y, np.nan_to_num(mean), color=colours)
    ax.errorbar(mean, y, xerr=[mean - lo, hi - mean], fmt="none", ecolor="k", lw=0.8, capsize=2)
    ax.set_yticks(y, [f"{method_label(m)} · {v} · {mt}" for m, v, mt in zip(t["method"], t["variant"],
                                                                            t["map_type"])], fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel(f"truth score: {score.replace('_', ' ')} with demo-shortcut − with demo (95 % bootstrap CI)")
    ax.set_title("Which maps follow the marker the shortcut model reads (pale bars: XRAI region maps)", fontsize=9)
    fig.tight_layout()
    return fig


def figure_agreement(table: pd.DataFrame, corr: dict) -> plt.Figure:
    """Truth score against fidelity F and against the expert-mask AUC (the shortcut model's maps)."""
    t = table[table["method"] != "random"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, col, name in ((axes[0], "F_shortcut", "fidelity F"), (axes[1], "expert_auc_shortcut", "expert-mask AUC")):
        ax.scatter(t[col], t["truth_relevance_mass"], c=[COLOURS.get(m, "grey") for m in t["method"]],
                   marker="o", s=22)
        rho = corr.get(f"truth_vs_{col}", {}).get("rho", float("nan"))
        ax.set_xlabel(f"{name} (demo-shortcut)")
        ax.set_ylabel("truth score (relevance mass)")
        ax.set_title(f"Spearman ρ = {rho:+.2f}" if np.isfinite(rho) else "ρ undefined (too few groups)", fontsize=9)
    fig.tight_layout()
    return fig


def figure_examples(examples: dict[str, Path], keys: tuple[str, ...] = ("BP plain", "IGB SG2", "EG SG",
                                                                           "GC plain")) -> plt.Figure | None:
    """The first slice and a few of its maps, one row per model, the marker outlined (cyan)."""
    loaded = {m: dict(np.load(p)) for m, p in examples.items() if Path(p).exists()}
    if not loaded:
        return None
    names = [k for k in keys if all(k in d for d in loaded.values())] or \
        [k for k in next(iter(loaded.values())) if " " in k][:4]
    fig, axes = plt.subplots(len(loaded), len(names) + 1, figsize=(2.3 * (len(names) + 1), 2.4 * len(loaded)),
                             squeeze=False)
    for r, (model, d) in enumerate(loaded.items()):
        hu = d["hu"].astype(np.float32)
        marker = d["marker"] > 0 if "marker" in d else np.zeros(hu.shape, bool)
        axes[r, 0].imshow(np.clip(hu, -1000, 1000), cmap="gray")
        axes[r, 0].set_title(f"{model}: the slice", fontsize=8)
        for c, k in enumerate(names, start=1):
            m = np.abs(d[k].astype(np.float32))
            axes[r, c].imshow(np.clip(hu, -1000, 1000), cmap="gray")
            axes[r, c].imshow(m, cmap="hot", alpha=0.75, vmax=np.quantile(m, 0.995) or None)
            axes[r, c].contour(marker, levels=[0.5], colors="cyan", linewidths=0.5)
            axes[r, c].set_title(f"{model} · {k}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def write_shortcut_report(out: Path, table: pd.DataFrame, corr: dict, accuracy: dict, examples: dict[str, Path]
                          ) -> Path:
    """``out/report.html``: headline, the truth-score figure, agreement with F and the expert mask,
    example maps, the table."""
    figs = [("truth", figure_truth(table)), ("agreement", figure_agreement(table, corr)),
            ("examples", figure_examples(examples))] if len(table) else []
    parts = []
    for name, fig in figs:
        if fig is None:
            continue
        data, b64 = _png(fig)
        (out / f"{name}.png").write_bytes(data)
        parts.append(f'<p><img alt="{name}" src="data:image/png;base64,{b64}" style="max-width:100%"></p>')
    n = int(table["n"].max()) if len(table) else 0
    task = {"demo-shortcut": "the marker", "demo": "the contrast"}
    acc = ", ".join(f"{m}: accuracy {a.get('accuracy')} against {task.get(m, 'its labels')}"
                    for m, a in accuracy.items())
    best = table.sort_values("truth_relevance_mass", ascending=False).head(3) if len(table) else table
    lead = "; ".join(f"{method_label(r.method)} {r.variant} {r.map_type} {r.truth_relevance_mass:+.3f} "
                     f"[{r.truth_relevance_mass_low:+.3f}, {r.truth_relevance_mass_high:+.3f}]"
                     for r in best.itertuples())
    rhos = "; ".join(f"{k.replace('truth_vs_', 'truth vs ').replace('_shortcut', '')}: ρ = {v['rho']:+.2f} "
                     f"(n = {v['n']})" for k, v in corr.items())
    body = (f"<h1>Shortcut benchmark: which maps reveal the marker the model reads?</h1>"
            f"<p>{n} phantom slices, each with a planted marker; demo-shortcut reads the marker, demo ignores it "
            f"({html.escape(acc)}). Truth score = score against the marker mask with demo-shortcut − with demo, "
            f"same slices (higher: the map follows what the model uses, not how bright the marker is).</p>"
            f"<p><b>Highest truth scores (relevance mass):</b> {html.escape(lead)}.</p>"
            f"<p><b>Do fidelity and the expert mask agree with the truth?</b> {html.escape(rhos)}.</p>"
            + "".join(parts)
            + "<details><summary>table (shortcut.csv)</summary>"
            + table.round(4).to_html(index=False) + "</details>")
    path = out / "report.html"
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Shortcut benchmark</title></head>"
                    f"<body style='font-family:sans-serif;max-width:1100px'>{body}</body></html>")
    return path
