"""The one input space of the package: HU → the network's input, and the images it refuses.

``hu_to_unit`` clips HU to a window and scales to [0, 1]; ``resize_batch`` resizes to the model's
input (bilinear, antialiased); ``check_image_size`` refuses an image too small or too elongated to
be resized without inventing or destroying detail. ``Classifier.preprocess`` and the training data
(``model.datasets``) both use them, so training sees what inference sees.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def hu_to_unit(hu: np.ndarray | torch.Tensor, window: tuple[float, float]) -> torch.Tensor:
    """Clip HU to ``window`` and scale to [0, 1] (float32 tensor, same shape)."""
    t = torch.as_tensor(np.asarray(hu, dtype=np.float32) if not isinstance(hu, torch.Tensor) else hu,
                        dtype=torch.float32)
    lo, hi = window
    return ((t.clamp(lo, hi) - lo) / (hi - lo)).float()


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, C, H, W) to ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


#: Smallest image side taken (px): a smaller image would be upsampled into detail it does not have.
MIN_SIDE = 32
#: Largest ratio of the long side to the short side: beyond it the image is not an axial slice
#: (a scout, a strip, a cropped band) and resizing would distort it past recognition.
MAX_ASPECT = 4.0


def check_image_size(shape: tuple[int, ...], input_size: tuple[int, int]) -> None:
    """Refuse an image too small or too elongated to be resized to the model's input.

    Too small: under :data:`MIN_SIDE` px a side (or under the model's own input side, if that is
    smaller still). Too elongated: resizing it to the model's input would stretch one axis more than
    :data:`MAX_ASPECT` times the other (measured against the input's own aspect ratio, so a model
    that takes 64 × 256 strips may be given strips).

    Raises
    ------
    ValueError
        With the size found and what to do.
    """
    h, w = (int(v) for v in shape)
    least = min(MIN_SIDE, *input_size)  # a model that takes 16 × 16 may be given 16 × 16
    if min(h, w) < least:
        raise ValueError(f"the image is {w} × {h} px, under {least} px a side; the model takes "
                         f"{input_size[1]} × {input_size[0]} and would see it upsampled into detail it does not "
                         "have. Open the full-resolution slice, not a thumbnail or a crop.")
    stretch = (w / h) / (input_size[1] / input_size[0])
    if max(stretch, 1 / stretch) > MAX_ASPECT:
        raise ValueError(f"the image is {w} × {h} px; resized to the model's {input_size[1]} × {input_size[0]} "
                         f"one axis would be stretched {max(stretch, 1 / stretch):.1f} times the other (over "
                         f"{MAX_ASPECT:g}), distorted past recognition. Open an axial slice (not a scout or a strip), "
                         "or crop it to the model's proportions.")
