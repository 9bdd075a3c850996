"""Figure for docs/phantom.md: phantom slices at several levels, without/with contrast, and masks.

Usage: python scripts/make_phantom_figure.py docs/img/phantom.png
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from napari_ctinterp.phantom import make_slice  # noqa: E402

CASES = [(101, 0.06, "arterial"), (102, 0.27, "arterial"), (103, 0.41, "pulmonary"),
         (104, 0.60, "arterial"), (105, 0.70, "venous"), (106, 0.93, "venous")]


def main(out: str) -> None:
    fig, axes = plt.subplots(3, len(CASES), figsize=(3.2 * len(CASES), 10))
    for col, (seed, level, phase) in enumerate(CASES):
        plain = make_slice(seed, contrast=False, phase=phase, level=level)
        con = make_slice(seed, contrast=True, phase=phase, level=level)
        for row, (img, title, kw) in enumerate((
            (plain.hu, f"no contrast, z={level}", dict(cmap="gray", vmin=-160, vmax=240)),
            (con.hu, f"{phase}", dict(cmap="gray", vmin=-160, vmax=240)),
            (con.mask, "reference mask", dict(cmap="magma", vmin=0, vmax=1)),
        )):
            ax = axes[row, col]
            ax.imshow(img, **kw)
            ax.set_title(title, fontsize=10)
            ax.axis("off")
    fig.suptitle("napari-ctinterp phantom: same seed without / with contrast, and the mask "
                 "(where contrast adds ≥ 50 HU); window W400/L40", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=60)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/phantom.png")
