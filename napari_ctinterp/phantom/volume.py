"""``make_volume``: consecutive slices of one phantom body, with their 3D mask.

The anatomy of ``make_slice`` depends on the seed and changes smoothly with the level, so one
seed at consecutive levels is one body along z. Each slice gets its own noise field (seeded by
the volume's seed and the slice index: a real scan's noise differs from slice to slice); the
noise level and kernel are the seed's, the same for the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import fast_noise
from .slice import make_slice

#: Cranio-caudal length of the phantom's level range [0, 1] (thoracic inlet to upper abdomen), mm.
MM_PER_LEVEL = 300.0


@dataclass(frozen=True)
class PhantomVolume:
    """A phantom CT volume: ``hu`` and ``mask`` (Z, H, W), ``labels`` (tissue ids), ``meta``."""

    hu: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    meta: dict

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """(z, y, x) voxel size in mm."""
        return tuple(self.meta["spacing_mm"])  # type: ignore[return-value]


def make_volume(seed: int, *, contrast: bool = True, n_slices: int = 24, spacing_mm: float = 2.5,
                phase: str | None = None, centre_level: float = 0.5, size: int = 256,
                marker: bool | str | None = None) -> PhantomVolume:
    """Make ``n_slices`` consecutive slices of one body, ``spacing_mm`` apart, centred on ``centre_level``.

    Parameters
    ----------
    seed : int
        The body (anatomy, enhancement, noise level) and each slice's noise.
    contrast, phase : bool, str
        As ``make_slice``; one phase for the whole volume.
    n_slices, spacing_mm : int, float
        Number of slices and their distance (levels ``spacing_mm / MM_PER_LEVEL`` apart).
    centre_level : float
        Level of the middle slice; the range is clipped to [0, 1].
    size : int
        Pixels per side.
    marker : bool or str, optional
        Plant a marker (``phantom.markers``; ``True`` draws a kind from the seed) drawn on the
        middle slice and carried through the volume: a burned-in text block and a tube lying along
        the body on every slice, a lead letter on the slices its height covers (centred on the
        middle slice). Its pixels are marked ``LABELS["marker"]`` in ``labels``, outside the body
        of each slice; ``meta["marker"]`` describes it (``slices``: the slices it is on).
    """
    if n_slices < 1:
        raise ValueError(f"n_slices must be at least 1, got {n_slices}")
    step = spacing_mm / MM_PER_LEVEL
    levels = np.clip(centre_level + (np.arange(n_slices) - (n_slices - 1) / 2) * step, 0.0, 1.0)
    hu, mask, labels, first = [], [], [], None
    for k, level in enumerate(levels):
        s = make_slice(seed, contrast=contrast, phase=phase, level=float(level), size=size, noise="none")
        first = first or s
        rng = np.random.default_rng([int(seed), k, 0x707])
        hu.append(s.hu + fast_noise(rng, size, first.meta["noise_sd_hu"], first.meta["kernel_cutoff"]))
        mask.append(s.mask)
        labels.append(s.labels)
    px = float(first.meta["pixel_mm"])
    meta = {**first.meta, "levels": [float(v) for v in levels], "n_slices": n_slices,
            "spacing_mm": (float(spacing_mm), px, px), "noise": "fast, one field per slice",
            "generator": "napari_ctinterp.phantom.make_volume"}
    meta.pop("level", None)
    vol_hu, vol_labels = np.stack(hu).astype(np.float32), np.stack(labels)
    if marker is not None and marker is not False:
        meta["marker"] = _plant_through(vol_hu, vol_labels, px, float(spacing_mm), marker, int(seed))
    return PhantomVolume(hu=vol_hu, mask=np.stack(mask), labels=vol_labels, meta=meta)


def _plant_through(hu: np.ndarray, labels: np.ndarray, pixel_mm: float, spacing_mm: float, marker: bool | str,
                   seed: int) -> dict:
    """Plant one marker, drawn on the middle slice, through the volume (in place): its mask on every
    slice it covers, outside that slice's body, at its HU plus that slice's noise."""
    from .markers import draw_marker, marker_kind, marker_rng
    from .tissues import LABELS

    mid = len(hu) // 2
    rng = marker_rng(seed)
    planted = draw_marker(marker_kind(marker, rng), rng, labels[mid], pixel_mm)
    half = int(round(0.5 * planted.size_mm / spacing_mm)) if planted.kind == "letter" else len(hu)
    slices = [z for z in range(len(hu)) if abs(z - mid) <= half]
    for z in slices:
        body = (labels[z] != LABELS["background"]) & (labels[z] != LABELS["table"])
        m = planted.mask & ~body
        hu[z] = np.where(m, np.minimum(np.float32(planted.hu) + hu[z] + 1000.0, 3071.0), hu[z])  # air: −1000 + noise
        labels[z] = np.where(m, LABELS["marker"], labels[z])
    return {**planted.record(), "slices": slices, "seed": seed}
