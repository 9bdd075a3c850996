"""The Metrics panel's figures: ROC, Dice vs k, fidelity (LiF − MiF) and "human vs model".

Colour = method, line style = variant (plain solid, SG dashed, SG² dash-dot), thick translucent =
XRAI region map; the random baseline is a grey dotted line, unlike every variant. One legend for
the whole figure. A highlighted map (the table's selected row) is drawn thick on top, the others
faded. Plain matplotlib (no Qt): the panel draws into its canvas, export into a file.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..explain.options import METHOD_COLOURS  # one colour per method, as in the study's report
from ..metrics import rank_correlation
from ..metrics.table import MapScore

VARIANT_STYLES = {"plain": "-", "SG": "--", "SG2": "-."}
VARIANT_MARKERS = {"plain": "o", "SG": "s", "SG2": "^"}
RANDOM_STYLE = {"color": "0.45", "ls": ":", "lw": 2.0}


def _style(s: MapScore, highlight: tuple | None) -> dict:
    region = s.map_type == "region"
    kw = {"color": _colour(s.method), "ls": VARIANT_STYLES.get(s.variant, "-"),
          "lw": 2.2 if region else 1.2, "alpha": 0.6 if region else 0.95}
    if highlight is not None:
        if (s.method, s.variant, s.map_type) == highlight:
            kw.update(lw=3.2, alpha=1.0, zorder=5)
        else:
            kw.update(alpha=0.18)
    return kw


def draw_curves(fig: Figure, scores: list[MapScore], *, layout: str = "column",
                highlight: tuple | None = None) -> list:
    """Draw the panel's plots into ``fig``; the fidelity and human-vs-model plots only when
    fidelity was computed. ``layout``: ``grid`` (2 × 2, the dock), ``column`` or ``row`` (export).
    Returns the axes."""
    with_fid = any(s.fidelity_curves is not None for s in scores)
    n = 4 if with_fid else 2
    shape = {"column": (n, 1), "grid": (2, n // 2), "row": (1, n)}[layout]
    axes = _axes(fig, shape, n)
    roc, dice = axes[0], axes[1]
    for s in scores:
        kw = _style(s, highlight)
        roc.plot(np.r_[0, s.curves.fpr, 1], np.r_[0, s.curves.tpr, 1], **kw)
        dice.plot(s.curves.k, s.curves.dice, **kw)
    if scores:
        c = scores[0].curves
        roc.plot([0, 1], [0, 1], label="random", **RANDOM_STYLE)
        dice.plot(c.k, c.random_dice, label="random", **RANDOM_STYLE)
    roc.set(title="ROC against the mask", xlabel="FPR", ylabel="TPR")
    dice.set(title="Dice vs k", xlabel="k (% of pixels kept)", ylabel="Dice")
    if with_fid:
        fid, hvm = axes[2], axes[3]
        for s in scores:
            if s.fidelity_curves is not None:
                fc = s.fidelity_curves
                fid.plot(fc.p, fc.prob_lif[0] - fc.prob_mif[0], **_style(s, highlight))
        fid.axhline(0.0, label="random", **RANDOM_STYLE)
        fid.set(title="fidelity: LiF − MiF (area = F)", xlabel="% of pixels removed",
                ylabel="LiF − MiF (P / P₀)")
        for s in scores:
            if np.isfinite(s.fidelity_continuous):
                big = highlight is not None and (s.method, s.variant, s.map_type) == highlight
                hvm.scatter(s.auc, s.fidelity_continuous, color=_colour(s.method),
                            marker=VARIANT_MARKERS.get(s.variant, "o"), s=70 if big else 28,
                            edgecolors="k" if s.map_type == "region" else "none", linewidths=1.0,
                            alpha=0.35 if highlight is not None and not big else 0.95, zorder=5 if big else 2)
        rho, n_maps = rank_correlation([s.auc for s in scores], [s.fidelity_continuous for s in scores])
        # Short enough for the dock's plot; n is in the status line and the exports' table.
        rho_text = f"ρ = {rho:+.2f} over {n_maps} maps" if np.isfinite(rho) else f"ρ undefined (n = {n_maps})"
        hvm.set(title=f"human vs model\n{rho_text}", xlabel="AUC (agrees with the mask)",
                ylabel="F (faithful to the model)")
    for ax in axes:
        ax.title.set_fontsize(9)
        ax.title.set_wrap(True)  # a narrow dock: two lines rather than titles running into each other
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
        ax.tick_params(labelsize=7)
    _legend(fig, scores, with_fid, layout)
    return axes


def _axes(fig: Figure, shape: tuple[int, int], n: int) -> list:
    """The figure's axes, emptied: reused when the layout is unchanged (a re-score after painting
    redraws the same plots; clearing and re-creating axes costs ~0.1 s of the ~0.4 s a redraw takes)."""
    axes = list(fig.axes)
    if getattr(fig, "_ctinterp_shape", None) == (shape, n) and len(axes) == n:
        for ax in axes:
            for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts]:
                artist.remove()
            ax.relim()
            ax.autoscale()
        for legend in list(fig.legends):
            legend.remove()
        return axes
    fig.clear()
    fig._ctinterp_shape = (shape, n)
    return [fig.add_subplot(*shape, i + 1) for i in range(n)]


def _colour(method: str) -> str:
    """A method's colour; a map of another class ("IGB · →venous") keeps its method's colour."""
    return METHOD_COLOURS.get(method.split(" · ")[0], "grey")


def _legend(fig: Figure, scores: list[MapScore], with_fid: bool, layout: str) -> None:
    methods = [m for m in METHOD_COLOURS if m != "random" and any(s.method.split(" · ")[0] == m for s in scores)]
    variants = [v for v in VARIANT_STYLES if any(s.variant == v for s in scores)]
    handles = [Line2D([], [], color=METHOD_COLOURS[m], lw=2, label=m) for m in methods]
    handles += [Line2D([], [], color="k", ls=VARIANT_STYLES[v], marker=VARIANT_MARKERS[v] if with_fid else None,
                       markersize=4, label=v) for v in variants]
    kinds = {s.map_type for s in scores}
    if "pixel" in kinds:
        handles.append(Line2D([], [], color="grey", lw=1.2, label="pixel map"))
    if "region" in kinds:
        handles.append(Line2D([], [], color="grey", lw=2.2, alpha=0.6, label="XRAI region map"))
    handles.append(Line2D([], [], label="random", **RANDOM_STYLE))
    ncol = len(handles) if layout == "row" else 4  # the dock is ~430 px wide: four columns fit
    if fig.get_layout_engine() is None:  # the dock: fixed margins (constrained layout costs ~0.4 s a draw)
        rows = -(-len(handles) // ncol)
        fig.subplots_adjust(left=0.13, right=0.97, top=0.93, bottom=0.1 + 0.035 * rows, wspace=0.5, hspace=0.75)
        fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    else:
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=7, frameon=False)
