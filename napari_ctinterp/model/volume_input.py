"""A 3D model's input space: the CT volume → (C, D, H, W), and maps back onto the CT's grid.

A card with ``spatial_dims`` 3 says how the volume becomes the network's input:

- without ``spacing_mm``: the whole volume is resized to ``input_size`` (D, H, W);
- with ``spacing_mm`` (z, y, x): the volume is resampled to that spacing, then centre-cropped or
  padded (with ``pad_hu``) to ``input_size`` — the usual MONAI ``Spacing`` +
  ``ResizeWithPadOrCrop`` pipeline.

Each channel is windowed (clip to its HU window, scale to [0, 1]) *before* resampling, as the 2D
input clips before it resizes, so that bone saturates before it is averaged with its neighbours;
the padding is the pad value's windowed level. Resampling is separable: the 2D input's resize
(bilinear, antialiased when shrinking: ``inputs.resize_batch``) on every slice's (H, W), then on
every (Z, H) plane along z — torch's trilinear mode has no antialiasing, and a CT of 300 thin
slices shrunk to 32 must be averaged, not sampled. Growing, it is trilinear interpolation (linear
interpolation is separable). The 3D demo was trained through the same function.
``VolumeGeometry.to_ct`` is the inverse used for attribution maps: an input-space map
is put back into the resampled grid (0 outside the crop), then resized to the CT's shape; ``outside``
marks the CT voxels the model never saw (cropped away).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .inputs import MIN_SIDE, hu_to_unit, resize_batch

#: Fewest slices a volume must have for a 3D model (or the model's own depth, if smaller): fewer
#: would be interpolated into a volume that was never scanned.
MIN_SLICES = 8


def resample(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """(B, C, Z, H, W) → (B, C, *size), separable (see the module docstring); an axis kept at its
    size is left exactly as it is."""
    size = tuple(int(v) for v in size)
    if tuple(x.shape[2:]) == size:
        return x
    b, c = x.shape[:2]
    d, h, w = size
    v = x.reshape(b * c, *x.shape[2:])
    v = resize_batch(v.transpose(0, 1), (h, w)).transpose(0, 1)  # each slice's (H, W): (N, Z, h, w)
    if v.shape[1] != d:
        v = resize_batch(v.permute(3, 0, 1, 2), (d, h)).permute(1, 2, 3, 0)  # each (Z, h) plane
    return v.contiguous().reshape(b, c, d, h, w)


@dataclass(frozen=True)
class VolumeGeometry:
    """Where a CT volume's voxels go in a 3D model's input.

    Attributes
    ----------
    ct_shape : tuple of int
        (Z, H, W) of the CT.
    resampled_shape : tuple of int
        The CT resampled to the card's spacing (= ``input_size`` when the card resizes).
    start : tuple of int
        Per axis, the resampled index at input index 0 (> 0: cropped; < 0: padded).
    input_size : tuple of int
        (D, H, W) of the network's input.
    """

    ct_shape: tuple[int, int, int]
    resampled_shape: tuple[int, int, int]
    start: tuple[int, int, int]
    input_size: tuple[int, int, int]

    @property
    def window(self) -> tuple[slice, ...]:
        """(input slices, resampled slices): the overlap of the input with the resampled volume."""
        ins, res = [], []
        for s, d, r in zip(self.start, self.input_size, self.resampled_shape):
            lo, hi = max(0, -s), min(d, r - s)
            ins.append(slice(lo, max(lo, hi)))
            res.append(slice(lo + s, max(lo, hi) + s))
        return tuple(ins), tuple(res)

    def to_input(self, unit: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """(C, Z, H, W) windowed CT → (C, D, H, W): resampled, cropped / padded with ``pad`` (C,)."""
        r = resample(unit[None], self.resampled_shape)[0]
        out = pad.view(-1, 1, 1, 1).expand(len(unit), *self.input_size).clone()
        ins, res = self.window
        out[(slice(None), *ins)] = r[(slice(None), *res)]
        return out

    def to_ct(self, a: np.ndarray | torch.Tensor) -> np.ndarray:
        """An input-space array (..., D, H, W) on the CT's grid (..., Z, H, W), float32; 0 where the
        model saw no CT voxel (the crop)."""
        t = (a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float32))).float()
        lead = t.shape[:-3]
        t = t.reshape(-1, *self.input_size).cpu()
        r = torch.zeros((len(t), *self.resampled_shape), dtype=torch.float32)
        ins, res = self.window
        r[(slice(None), *res)] = t[(slice(None), *ins)]
        out = resample(r[:, None], self.ct_shape)[:, 0]
        return out.reshape(*lead, *self.ct_shape).numpy()

    @property
    def outside(self) -> np.ndarray:
        """(Z, H, W) bool: CT voxels outside the model's input (cropped away)."""
        seen = torch.zeros((1, 1, *self.resampled_shape))
        _, res = self.window
        seen[(0, 0, *res)] = 1.0
        return resample(seen, self.ct_shape)[0, 0].numpy() < 0.5


def volume_geometry(ct_shape: tuple[int, ...], input_size: tuple[int, ...],
                    spacing_mm: tuple[float, ...] | None = None,
                    ct_spacing_mm: tuple[float, ...] | None = None) -> VolumeGeometry:
    """The geometry of a CT of ``ct_shape`` for a card's ``input_size`` and ``spacing_mm``.

    Raises
    ------
    ValueError
        The card resamples to a spacing and the CT's spacing is not given; a volume too thin or
        too small to be a CT series for this model.
    """
    shape = tuple(int(v) for v in ct_shape)
    size = tuple(int(v) for v in input_size)
    if len(shape) != 3:
        raise ValueError(f"a 3D model takes the whole volume (Z, H, W) in HU, got shape {shape}"
                         + ("; open the series (a folder of slices), not one slice" if len(shape) == 2 else ""))
    least_z = min(MIN_SLICES, size[0])
    if shape[0] < least_z:
        raise ValueError(f"the volume has {shape[0]} slice(s); this 3D model needs at least {least_z} "
                         f"(it takes {size[0]} × {size[1]} × {size[2]}): open the whole series")
    least = min(MIN_SIDE, *size[1:])
    if min(shape[1:]) < least:
        raise ValueError(f"the slices are {shape[2]} × {shape[1]} px, under {least} px a side: open the "
                         "full-resolution series, not a thumbnail or a crop")
    if spacing_mm is None:
        return VolumeGeometry(shape, size, (0, 0, 0), size)
    if ct_spacing_mm is None:
        raise ValueError(f"this model resamples the CT to {tuple(spacing_mm)} mm (z, y, x) before cropping to "
                         f"{size}: pass the CT's spacing, spacing_mm=(z, y, x) (read_ct gives it: "
                         "CTVolume.spacing_mm; a napari layer's scale)")
    ct_sp = tuple(float(v) for v in ct_spacing_mm)
    if len(ct_sp) != 3 or min(ct_sp) <= 0:
        raise ValueError(f"the CT's spacing_mm is (z, y, x) in mm, each > 0, got {ct_spacing_mm}")
    res = tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, ct_sp, spacing_mm))
    start = tuple((r - d) // 2 for r, d in zip(res, size))
    return VolumeGeometry(shape, res, start, size)


def preprocess_volume(hu: np.ndarray, geometry: VolumeGeometry, windows: list[tuple[float, float]],
                      pad_hu: float) -> torch.Tensor:
    """(Z, H, W) HU → (1, C, D, H, W) in [0, 1] per channel window (before any normalisation)."""
    arr = np.asarray(hu)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"the volume has {int(bad.sum())} NaN/inf voxels (an unreadable slice?): fill or crop "
                         "them before classifying")
    unit = torch.stack([hu_to_unit(arr, w) for w in windows])
    pad = torch.stack([hu_to_unit(np.float32(pad_hu), w).reshape(()) for w in windows])
    return geometry.to_input(unit, pad)[None]
