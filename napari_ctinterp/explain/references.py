"""Where Expected Gradients' reference slices come from when the model is not the demo.

EG averages gradients along paths from reference images drawn from the model's data; the demo
model ships its own set (``demo_references``). For another model the best at hand is usually the
open volume itself: its other slices are real CT of the same scanner and protocol. A volume with
at least ``MIN_VOLUME_REFERENCES`` other slices is used (evenly spaced, at most
``MAX_VOLUME_REFERENCES``); the explained slice is never its own reference. Otherwise a folder
of the model's training slices (DICOM) is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: A volume serves as EG reference set when it has at least this many *other* slices.
MIN_VOLUME_REFERENCES = 8
#: At most this many reference slices (evenly spaced) are used; EG draws ``samples`` of them.
MAX_VOLUME_REFERENCES = 32


def _evenly(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, num=min(n, k)).round().astype(int))


def volume_references(volume: np.ndarray, exclude: int | None, *, min_slices: int = MIN_VOLUME_REFERENCES,
                      max_slices: int = MAX_VOLUME_REFERENCES) -> np.ndarray | None:
    """Other slices of ``volume`` (Z, H, W) as EG references, or None when there are too few.

    Parameters
    ----------
    volume : numpy.ndarray
        The open CT in HU, (Z, H, W); a 2D slice has no other slices (None).
    exclude : int, optional
        The slice being explained (not used as its own reference).
    min_slices, max_slices : int
        Fewest other slices accepted; most slices returned (evenly spaced along z).
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        return None
    others = np.array([i for i in range(vol.shape[0]) if i != exclude], dtype=int)
    if len(others) < min_slices:
        return None
    return np.asarray(vol[others[_evenly(len(others), max_slices)]], dtype=np.float32)


def folder_references(path: str | Path, *, max_slices: int = MAX_VOLUME_REFERENCES) -> np.ndarray:
    """Reference slices read from a DICOM folder (its largest CT series), evenly spaced.

    Raises ``ValueError`` when the folder holds no readable CT.
    """
    from ..io import read_ct

    p = Path(path)
    if not p.exists():
        raise ValueError(f"EG reference folder {str(p)!r} does not exist")
    try:
        hu = read_ct(p).hu
    except Exception as e:  # noqa: BLE001 - reader errors become one clear message
        raise ValueError(f"EG references: could not read a CT from {str(p)!r}: {e}") from e
    return np.asarray(hu[_evenly(len(hu), max_slices)], dtype=np.float32)
