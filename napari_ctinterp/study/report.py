"""The study report: figures in the spirit of the poster and one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..explain.options import METHOD_COLOURS as COLOURS  # noqa: E402
from ..explain.options import METHODS, PLAIN_ONLY  # noqa: E402
from ..metrics import rank_correlation, schema  # noqa: E402
from ..metrics.fidelity import fidelity_grid  # noqa: E402
from .report_3d import is_3d_example, planes_figures  # noqa: E402

#: The report's line on what a 3D model's study scores.
THREE_D_SENTENCE = ("A 3D model: each series is scored whole — its maps on the CT's grid against the series' 3D "
                    "mask (volume ROC AUC, max Dice over the 3D grid; per slice along z in table_by_slice.csv; "
                    "voxels outside the model's crop left out) and fidelity over the volumes. Pixel maps only (no "
                    "XRAI region maps of volumes yet). The example maps: three orthogonal planes and a "
                    "maximum-intensity projection per map.")


def method_label(method: str) -> str:
    """A method's name in figures: the methods beyond the paper's five carry a ``+``."""
    return method if method in METHODS or method == "random" else f"{method}+"


def _png(fig) -> tuple[bytes, str]:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = buf.getvalue()
    return data, base64.b64encode(data).decode()


def figure_distributions(table: pd.DataFrame, score: str) -> plt.Figure:
    """Box plots of a score per method × variant, pixel vs region maps (absolute maps)."""
    ok = table[(table["error"].isna()) & (table["sign"] == "absolute")]
    groups = [g for g, _ in ok.groupby(["method", "variant"], sort=False)]
    fig, ax = plt.subplots(figsize=(min(16.0, max(6.0, 0.75 * len(groups))), 3.8))
    for j, map_type in enumerate(("pixel", "region")):
        data = [pd.to_numeric(ok[(ok["method"] == m) & (ok["variant"] == v) & (ok["map_type"] == map_type)][score],
                              errors="coerce").dropna().to_numpy() for m, v in groups]
        pos = np.arange(len(groups)) * 2.6 + j
        ax.boxplot(data, positions=pos, widths=0.8, patch_artist=True,
                   boxprops={"facecolor": ("#8ecae6" if j == 0 else "#ffb703")}, medianprops={"color": "k"})
    ax.set_xticks(np.arange(len(groups)) * 2.6 + 0.5, [f"{method_label(m)}\n{v}" for m, v in groups], fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel(score)
    ax.set_title(f"{score} per method and variant — blue: pixel maps, orange: XRAI region maps"
                 + ("; + : beyond the paper" if any(method_label(m) != m for m, _ in groups) else ""), fontsize=9)
    if score.startswith("auc"):
        ax.axhline(0.5, color="grey", ls=":", lw=1)
    fig.tight_layout()
    return fig


def figure_fidelity(fid: pd.DataFrame, step: float) -> plt.Figure:
    """MiF/LiF balanced-accuracy curves of absolute pixel maps, and F per method (abs vs signed)."""
    p = fidelity_grid(step)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    sel = fid[(fid["map_type"] == "pixel") & (fid["sign"] == "absolute")]
    for _, r in sel.iterrows():
        line, = a.plot(p, json.loads(r["mif_curve"]), lw=1, label=f"{method_label(r['method'])} {r['variant']}")
        a.plot(p, json.loads(r["lif_curve"]), ":", lw=1, color=line.get_color())
    a.set(title="MiF (—) and LiF (··), absolute pixel maps", xlabel="% pixels replaced", ylabel="balanced accuracy")
    a.legend(fontsize=6, ncol=2)
    piv = fid[fid["map_type"] == "pixel"].assign(name=lambda d: d["method"].map(method_label) + " " + d["variant"])
    names = list(dict.fromkeys(piv["name"]))
    for j, sign in enumerate(x for x in ("absolute", "signed") if (piv["sign"] == x).any()):  # a study's signs
        vals = [piv[(piv["name"] == n) & (piv["sign"] == sign)]["F"].mean() for n in names]
        b.bar(np.arange(len(names)) + 0.4 * j, vals, width=0.4, label=sign)
    b.set_xticks(np.arange(len(names)) + 0.2, names, rotation=70, fontsize=7)
    b.set(title="fidelity F = ∫(LiF − MiF) dp, pixel maps", ylabel="F")
    b.axhline(0, color="k", lw=0.8)
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def human_vs_model(summary: pd.DataFrame, fid: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Each absolute map type's mean exact AUC (agreement with the expert mask) beside its F
    (fidelity to the model), without the random baseline, and their Spearman rank correlation —
    the paper's central finding is that the two rankings disagree."""
    keys = list(schema.KEY)
    if not len(summary) or not len(fid) or "auc_mean" not in summary:
        return pd.DataFrame(columns=[*keys, "auc_mean", "F"]), float("nan")
    extra = ["origin"] if "origin" in summary else []
    both = summary[keys + extra + ["auc_mean"]].merge(fid[keys + ["F"]], on=keys)
    both = both[(both["sign"] == "absolute") & (both["method"] != "random")].dropna(subset=["auc_mean", "F"])
    both = both.assign(auc_rank=both["auc_mean"].rank(ascending=False), F_rank=both["F"].rank(ascending=False))
    rho, _n = rank_correlation(both["auc_mean"], both["F"])
    return both.reset_index(drop=True), rho


def figure_human_vs_model(both: pd.DataFrame, rho: float) -> plt.Figure | None:
    """Mean AUC against F, one point per method × variant × map type. Colour = method, marker =
    variant, black edge = XRAI region map, named in two legends (labels beside 30 points overlap)."""
    if both.empty:
        return None
    from matplotlib.lines import Line2D

    markers = {"plain": "o", "SG": "s", "SG2": "^"}
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for _, r in both.iterrows():
        region = r["map_type"] == "region"
        ax.scatter(r["auc_mean"], r["F"], color=COLOURS.get(r["method"], "grey"), marker=markers.get(r["variant"], "o"),
                   s=60 if region else 45, edgecolors="k" if region else "none", linewidths=1.2)
    methods = list(dict.fromkeys(both["method"]))
    variants = [v for v in markers if v in set(both["variant"])]
    by_method = [Line2D([], [], ls="", marker="o", color=COLOURS.get(m, "grey"), label=method_label(m))
                 for m in methods]
    by_kind = [Line2D([], [], ls="", marker=markers[v], color="grey", label=v) for v in variants]
    if (both["map_type"] == "region").any():
        by_kind.append(Line2D([], [], ls="", marker="o", color="white", markeredgecolor="k", label="XRAI region"))
    first = ax.legend(handles=by_method, title="method", fontsize=8, title_fontsize=8, loc="upper left",
                      bbox_to_anchor=(1.01, 1.0))
    ax.add_artist(first)
    ax.legend(handles=by_kind, title="variant / map", fontsize=8, title_fontsize=8, loc="lower left",
              bbox_to_anchor=(1.01, 0.0))
    rho_text = f"Spearman ρ = {rho:+.2f}" if np.isfinite(rho) else "ρ undefined"
    ax.set(title=f"human vs model over the set: {rho_text}, {len(both)} absolute maps",
           xlabel="mean exact AUC against the expert mask (agreement with a person)",
           ylabel="F (fidelity to the model)")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure_example(example: dict | None) -> plt.Figure | None:
    """The maps of one slice (absolute values) beside the slice and its mask."""
    if not example:
        return None
    keys = [k for k in example if k not in ("hu", "mask", "slice_id")]
    n = len(keys) + 2
    cols = min(n, 6)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows))
    axes = np.atleast_1d(axes).ravel()
    axes[0].imshow(example["hu"], cmap="gray", vmin=-160, vmax=240)
    axes[0].set_title(f"slice {example['slice_id']}", fontsize=7)
    if example.get("mask") is not None:
        axes[1].imshow(example["mask"], cmap="magma")
    axes[1].set_title("reference mask", fontsize=7)
    for ax, k in zip(axes[2:], keys):
        m = np.abs(example[k])
        ax.imshow(m, cmap="inferno", vmin=0, vmax=np.percentile(m, 99.5) or 1)
        ax.set_title(k, fontsize=7)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def figure_sanity(sanity: dict | None, slice_id: str = "", unit: str = "slice") -> plt.Figure | None:
    """Cascading randomisation of the example slice: Spearman rank correlation of each plain
    absolute map with the trained model's map as stages are randomised from the output down."""
    if not sanity or sanity.get("error"):
        return None
    stages = sanity["stages"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, values in sanity["spearman_abs"].items():
        method = name.split()[0]
        ax.plot(range(len(stages)), values, "o-", lw=1.2, ms=3, color=COLOURS.get(method, "grey"),
                label=method_label(method))
    ax.set_xticks(range(len(stages)), stages, rotation=45, fontsize=7, ha="right")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(ylim=(min(-0.2, float(np.min([np.min(v) for v in sanity["spearman_abs"].values()])) - 0.05), 1.05),
           ylabel="Spearman ρ with the trained\nmodel's map (absolute)",
           xlabel="randomised from the output down to (cumulative)")
    ax.set_title(f"model randomisation test (Adebayo et al. 2018){f', {unit} {slice_id}' if slice_id else ''}\n"
                 "a curve that stays high does not depend on the model's weights", fontsize=8)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def methods_sentence(methods: Sequence[str], variants: Sequence[str]) -> str:
    """The report's line on which methods are the paper's and which go beyond it."""
    paper = [m for m in methods if m in METHODS]
    beyond = [m for m in methods if m not in METHODS]
    text = f"Methods of the paper (REFERENCE.md): {', '.join(paper) or 'none'}."
    if beyond:
        text += f" Beyond the paper (marked + in the figures): {', '.join(beyond)}."
    plain_only = [m for m in beyond if m in PLAIN_ONLY]
    if plain_only and any(v != "plain" for v in variants):
        text += f" {', '.join(plain_only)}: plain only (no SmoothGrad variant)."
    return text


def domain_counts(results: list[dict]) -> dict[str, int]:
    """Slices in / out of the model's domain, and unknown (no statistics), over the scored slices."""
    scored = [r for r in results if not r.get("error")]
    return {"in": sum(r.get("in_domain") is True for r in scored),
            "out": sum(r.get("in_domain") is False for r in scored),
            "unknown": sum(r.get("in_domain") is None for r in scored)}


def domain_sentence(counts: dict[str, int], unit: str = "slice") -> str:
    """The report's line on the out-of-domain check (``unit``: what was scored, ``"slice"`` or
    ``"series"``)."""
    n = sum(counts.values())
    units = "series" if unit == "series" else f"{unit}s"
    if n == 0:
        return f"Out-of-domain check: no {unit} was scored (every {unit} failed; see the error column of table.csv)."
    if counts["unknown"] == n:
        return (f"Out-of-domain check: unknown for all {n} {units} (the model has no domain statistics: "
                "ctinterp fit-domain adds them).")
    text = f"Out-of-domain check: {counts['in']} of {n} {units} in the model's domain, {counts['out']} out of domain"
    if counts["unknown"]:
        text += f", {counts['unknown']} unknown"
    if counts["out"]:
        text += (f" — the answers and maps on {units} out of domain may not mean anything (column in_domain of "
                 "table.csv)")
    return text + "."


#: Figures' headings in the report (3D planes figures: "maps of …" from their names).
FIGURE_TITLES = {"auc": "ROC AUC against the expert mask", "max_dice": "Max Dice against the expert mask",
                 "fidelity": "Fidelity to the model (MiF / LiF curves and F)", "human_vs_model": "Human vs model",
                 "example_maps": "Example maps", "sanity": "Sanity: model randomisation"}

#: The report's style: a readable column, tables that scroll inside their own box.
STYLE = ("body{font-family:sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "img{max-width:100%} .scroll{overflow:auto;max-height:480px;max-width:100%;margin:.5em 0}"
         ".headline{background:#f4f7fb;border:1px solid #d0dbe8;padding:.4em 1.2em;border-radius:6px}"
         ".caveats li{margin:.2em 0} details{margin:.6em 0} summary{cursor:pointer;font-weight:bold}"
         "nav a{margin-right:1.2em} table.best td,table.params td,table.paper td{text-align:left}"
         "p.def{color:#444;font-size:14px}"
         "pre{font-size:12px}")


def _figure_title(name: str) -> str:
    if name in FIGURE_TITLES:
        return FIGURE_TITLES[name]
    return f"Maps of the example series: {name.removeprefix('planes_').replace('_', ' ')}" \
        if name.startswith("planes_") else name.replace("_", " ")


def _table(title: str, frame: pd.DataFrame, note: str = "") -> str:
    """A collapsed, scrollable table."""
    body = f"<div>{note}</div>" if note else ""
    return (f"<details><summary>{html.escape(title)}</summary>{body}<div class='scroll'>"
            f"{frame.to_html(index=False)}</div></details>")


def paper_section(comps: dict, fid: pd.DataFrame, draws: dict) -> list[str]:
    """The paper's fidelity table and the poster's conclusions beside this study's (``study.paper``),
    when the study has the paper's estimators; else nothing."""
    from .paper import fidelity_vs_paper, has_paper_estimators, paper_rank_agreement, poster_checks

    if not has_paper_estimators(fid):
        return []
    parts = ["<h2 id='paper'>The paper beside this study</h2>",
             "<p>Brocki et al. (EXTRAAMAS 2022): F × 10 of a ResNet-50 on real chest CT (LIDC-IDRI + LNDb); here "
             "the same protocol (label fill) on this study's set. We read the paper's SG and SG² as those of BP; "
             "pixel maps. The intervals are bootstrap 95 % intervals over the slices, each read alone (no "
             "correction for reading several).</p>",
             f"<div class='scroll'>{fidelity_vs_paper(fid, draws).to_html(index=False)}</div>", "<ul>"]
    for sign in ("absolute", "signed"):
        r = paper_rank_agreement(fid, draws, sign)
        if not np.isfinite(r["rho"]):
            parts.append(f"<li>Rank agreement with the paper's {sign} F: undefined (this study's {r['n']} F are all "
                         f"equal).</li>")
            continue
        parts.append(f"<li>Rank agreement with the paper's {sign} F over its {r['n']} estimators: Spearman ρ = "
                     f"{r['rho']:+.2f} (p = {r['p']:.2g}; 95 % bootstrap CI [{r['ci_low']:+.2f}, "
                     f"{r['ci_high']:+.2f}] over {r['draws']} of {r['of_draws']} draws).</li>")
    parts += ["</ul>", "<h3>The poster's conclusions, tested here</h3>",
              f"<div class='scroll'>{poster_checks(comps, fid, draws).to_html(index=False, classes='paper')}</div>"]
    return parts


def write_report(run_dir: Path, table: pd.DataFrame, summary: pd.DataFrame, fid: pd.DataFrame, acc: dict,
                 cfg: dict, results: list[dict], draws: dict | None = None) -> Path:
    """Write figures (PNG) and ``report.html`` (figures embedded) into ``run_dir``, read top-down:
    headline (model, data, settings, the first map kind per score, caveats), figures, statistics,
    tables (collapsed), parameters."""
    figs_dir = run_dir / "figures"
    figs_dir.mkdir(exist_ok=True)
    example_path = run_dir / "example_maps.npz"
    example = None
    if example_path.exists():
        with np.load(example_path, allow_pickle=False) as z:
            example = {k: z[k] for k in z.files}
            example["slice_id"] = str(example["slice_id"])
    three_d = cfg["card"].get("spatial_dims") == 3  # a 3D model: the unit is the series
    unit, units = ("series", "series") if three_d else ("slice", "slices")
    ok = table[table["error"].isna()]
    has_loc = pd.to_numeric(ok["auc"], errors="coerce").notna().any() if len(ok) else False
    figures = []
    if has_loc:
        figures += [("auc", figure_distributions(table, "auc")), ("max_dice", figure_distributions(table, "max_dice"))]
    if len(fid):
        figures.append(("fidelity", figure_fidelity(fid, cfg["config"]["fidelity_step"])))
    both, rho = human_vs_model(summary, fid)
    hvm = figure_human_vs_model(both, rho)
    if hvm is not None:
        figures.append(("human_vs_model", hvm))
    if is_3d_example(example):
        figures += planes_figures(example)
    else:
        ex = figure_example(example)
        if ex is not None:
            figures.append(("example_maps", ex))
    sanity_path = run_dir / "sanity.json"
    sanity = json.loads(sanity_path.read_text()) if sanity_path.exists() else None
    san = figure_sanity(sanity, example["slice_id"] if example else "", unit)
    if san is not None:
        figures.append(("sanity", san))
    from .pooled_fidelity import fidelity_draws, fill_flips
    from .report_headline import headline
    from .report_stats import comparisons, statistics_section

    seed = int(cfg["config"].get("seed", 0))
    comps = comparisons(table, seed=seed)
    if draws is None:  # F's bootstrap draws (``pooled_fidelity.fidelity_draws``), unless the caller has them
        draws = fidelity_draws(results, cfg["config"]["fidelity_step"], seed)
    paper_parts = paper_section(comps, fid, draws)
    stats_parts, stats_figures = statistics_section(comps)
    images, stats_images = [], {}
    for name, fig in figures + stats_figures:
        data, b64 = _png(fig)
        (figs_dir / f"{name}.png").write_bytes(data)
        if name.startswith("cd_"):
            stats_images[name] = b64
        else:
            images.append((name, b64))
    mark = "<!--figure:"  # where a CD diagram goes in the statistics section
    stats_parts = [f"<img src='data:image/png;base64,{stats_images[p[len(mark):-3]]}' alt='{p[len(mark):-3]}'>"
                   if p.startswith(mark) else p for p in stats_parts]
    failed = table[table["error"].notna()][["slice_id", "error"]]
    f_piv = fid.drop(columns=["mif_curve", "lif_curve"], errors="ignore")
    more = [m for m in schema.MORE_SCORES if f"{m}_mean" in summary.columns]
    summ_cols = [c for c in summary.columns if (c.endswith(("_mean", "_sd", "_n")) and
                                                not c.startswith(tuple(more))) or c in (*schema.KEY, "origin")]
    domain = domain_counts(results)
    rho_text = "undefined" if not np.isfinite(rho) else f"{rho:+.3f}"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>napari-ctinterp study</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>napari-ctinterp study</h1>",
        "<nav><a href='#figures'>Figures</a><a href='#statistics'>Statistics</a>"
        + ("<a href='#paper'>The paper</a>" if paper_parts else "") + "<a href='#tables'>Tables</a>"
        "<a href='#parameters'>Parameters</a></nav>",
        "<div class='headline'>",
        *headline(cfg, acc, table, fid, comps, draws, domain, unit, units, fill_flips(results)),
        *([f"<p class='unit'>{html.escape(THREE_D_SENTENCE)}</p>"] if three_d else []),
        f"<p class='domain'>{html.escape(domain_sentence(domain, unit), quote=False)}</p>",
        f"<p class='methods'>{html.escape(methods_sentence(cfg['config']['methods'], cfg['config']['variants']))}</p>",
        "</div>",
        "<h2 id='figures'>Figures</h2>",
    ]
    for name, b64 in images:
        parts.append(f"<h3 id='fig-{html.escape(name)}'>{html.escape(_figure_title(name))}</h3>")
        if name == "human_vs_model":
            parts.append(f"<p>Rank correlation (Spearman) between agreement with the expert mask (mean exact AUC) "
                         f"and fidelity to the model (F) over {len(both)} absolute maps: ρ = {rho_text}. A low or "
                         f"negative ρ means the maps that look right to a person are not the ones the model relies "
                         f"on.</p>")
        parts.append(f"<img src='data:image/png;base64,{b64}' alt='{html.escape(name)}'>")
    if sanity and sanity.get("error"):
        parts.append(f"<h3>Sanity: model randomisation</h3><p>The model randomisation test of the example {unit} "
                     f"failed: {html.escape(sanity['error'])}</p>")
    parts += ["<div id='statistics'>", *stats_parts, "</div>", *paper_parts,
              "<h2 id='tables'>Tables</h2><p>Click a title to open its table; every table is also a CSV file in "
              "this folder (table.csv: one row per map and slice).</p>",
              _table("Localisation (mean, SD, n per group) — summary.csv", summary[summ_cols].round(4))]
    if more:
        legend = "".join(f"<li><b>{html.escape(m)}</b>: {html.escape(schema.SCORE_INFO[m].text())}</li>"
                         for m in more)
        cols = [*schema.KEY, *(f"{m}_{x}" for m in more for x in ("mean", "sd", "n"))]
        parts.append(_table("Scores beyond the paper (mean, SD, n per group) — summary.csv",
                            summary[[c for c in cols if c in summary.columns]].round(4),
                            f"<ul class='more'>{legend}</ul>"))
    parts += [_table("Fidelity F per group, with its bootstrap 95 % interval — fidelity.csv", f_piv.round(4)),
              _table(f"Human vs model: mean AUC and F of each absolute map kind (ρ = {rho_text})", both.round(4))]
    if len(failed):
        parts.append(f"<h3>Failed {units}</h3><div class='scroll'>{failed.to_html(index=False)}</div>")
    params = pd.DataFrame([{"parameter": k, "value": ", ".join(map(str, v)) if isinstance(v, list) else str(v)}
                           for k, v in cfg["config"].items()])
    card = {k: v for k, v in cfg["card"].items() if k != "training"}
    parts += ["<h2 id='parameters'>Parameters</h2>",
              f"<div class='scroll'>{params.to_html(index=False, classes='params')}</div>",
              "<details><summary>config.json</summary><pre>", html.escape(json.dumps(cfg["config"], indent=2)),
              "</pre></details>",
              "<details><summary>Model card</summary><pre>", html.escape(json.dumps(card, indent=2)),
              "</pre></details>", "</body></html>"]
    out = run_dir / "report.html"
    out.write_text("\n".join(parts))
    return out
