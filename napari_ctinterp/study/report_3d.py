"""The report's example of a 3D model's study: each map on three orthogonal planes and its MIP.

One figure per map of the example series (``planes_<method>_<variant>.png``): the axial, coronal
and sagittal planes through one voxel (the mask's centre, or the map's maximum without a mask;
``planes.plane_point``), the map over the CT in grey with the mask's outline, crosshairs where
the other planes cut, and the map's maximum-intensity projection along z with the outline of the
mask's projection. Coronal and sagittal planes are drawn at the CT's voxel aspect (slice spacing
against pixel spacing), the head end up. Reads what ``planes.example_planes`` stored.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .planes import PLANES  # noqa: E402

#: The grey window of the CT under the maps (HU), as the 2D report's example panel.
CT_WINDOW = (-160.0, 240.0)


def is_3d_example(example: dict | None) -> bool:
    """Whether ``example`` (read from ``example_maps.npz``) is a 3D study's planes."""
    return bool(example) and str(example.get("kind", "")) == "3d"


def _aspect(plane: str, spacing: np.ndarray) -> float:
    """imshow's aspect (row height / column width in data units) of a plane at the CT's spacing."""
    sz, sy, sx = (float(v) for v in spacing)
    return {"axial": sy / sx, "coronal": sz / sx, "sagittal": sz / sy}[plane]


def _cuts(plane: str, point: np.ndarray) -> tuple[int, int]:
    """Where the other two planes cut this one: (column, row) in the plane's own pixels."""
    z, y, x = (int(v) for v in point)
    return {"axial": (x, y), "coronal": (x, z), "sagittal": (y, z)}[plane]


def figure_map_planes(example: dict, name: str) -> plt.Figure:
    """One map of the example series: three planes through its point and its MIP along z."""
    spacing, point = np.asarray(example["spacing_mm"]), np.asarray(example[f"{name}|point"])
    peak = max(float(np.nanmax(example[f"{name}|map|mip"].astype(np.float32))), 1e-12)
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, (plane, _axis) in zip(axes, PLANES):
        lower = plane != "axial"  # head end up: z grows upwards
        origin = "lower" if lower else "upper"
        ax.imshow(example[f"{name}|hu|{plane}"].astype(np.float32), cmap="gray", vmin=CT_WINDOW[0],
                  vmax=CT_WINDOW[1], aspect=_aspect(plane, spacing), origin=origin, interpolation="nearest")
        m = example[f"{name}|map|{plane}"].astype(np.float32)
        ax.imshow(np.ma.masked_less_equal(m, 0.05 * peak), cmap="inferno", vmin=0, vmax=peak, alpha=0.75,
                  aspect=_aspect(plane, spacing), origin=origin, interpolation="nearest")
        mask = example.get(f"{name}|mask|{plane}")
        if mask is not None and mask.any() and not mask.all():
            ax.contour(mask, levels=[0.5], colors="cyan", linewidths=0.8)  # data coordinates: either origin
        col, row = _cuts(plane, point)
        ax.axvline(col, color="w", lw=0.4, ls=":")
        ax.axhline(row, color="w", lw=0.4, ls=":")
        fixed = {"axial": f"z = {point[0]}", "coronal": f"y = {point[1]}", "sagittal": f"x = {point[2]}"}[plane]
        ax.set_title(f"{plane} ({fixed})", fontsize=8)
    mip = example[f"{name}|map|mip"].astype(np.float32)
    ax = axes[3]
    ax.imshow(mip, cmap="inferno", vmin=0, vmax=peak, aspect=_aspect("axial", spacing), interpolation="nearest")
    mask_mip = example.get(f"{name}|mask|mip")
    if mask_mip is not None and mask_mip.any() and not mask_mip.all():
        ax.contour(mask_mip, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_title("maximum-intensity projection along z", fontsize=8)
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    through = str(example.get(f"{name}|through", ""))
    fig.suptitle(f"{name} (absolute) — series {example['slice_id']}: planes through {through} "
                 f"(z, y, x) = {tuple(int(v) for v in point)}; mask outline cyan", fontsize=9)
    fig.tight_layout()
    return fig


def planes_figures(example: dict) -> list[tuple[str, plt.Figure]]:
    """``[("planes_<method>_<variant>", figure), ...]``: one figure per map of the example series."""
    out = []
    for name in (str(n) for n in np.atleast_1d(example["names"])):
        out.append((f"planes_{re.sub(r'[^A-Za-z0-9]+', '_', name)}", figure_map_planes(example, name)))
    return out
