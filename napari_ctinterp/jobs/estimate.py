"""How long a job will take here, said before it starts: its progress units times the cost of
one unit measured by the previous runs of the same model on this machine.

The costs live in a small JSON file in the user's cache folder (``NAPARI_CTINTERP_CACHE`` overrides
it), keyed by the model's weights hash, the device and the model's input size; each finished run
updates its key with the run's own pace (seconds per unit, exponentially averaged so a slow
first run is forgotten). Nothing is measured for the estimate itself: no extra work, no frozen UI.
A model not yet run here gets a guess (``guessed_unit_cost``): the other models' measured pace on
the same device, per input voxel, times this model's input voxels — a 3D model's gradient of a
32 × 64 × 64 volume costs more than a 2D model's of a 224² slice — said as a guess.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from ..progress import duration_text

_LOCK = threading.Lock()


def cache_file() -> Path:
    """Where the measured costs are kept."""
    root = os.environ.get("NAPARI_CTINTERP_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("napari-ctinterp")
    return Path(root) / "costs.json"


def cost_key(model_hash: str, device: str, input_size: tuple[int, ...]) -> str:
    """The key of one model on one device at its input size."""
    return f"{model_hash}|{device}|{'x'.join(str(int(s)) for s in input_size)}"


def _read() -> dict[str, float]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > 0}


def unit_cost(key: str) -> float | None:
    """Seconds per progress unit measured for ``key``, or None before the first run."""
    return _read().get(key)


def _voxels(key: str) -> int | None:
    """The input voxels (pixels) of a cost key's input size, or None for a malformed key."""
    try:
        return int(np.prod([int(v) for v in key.rsplit("|", 1)[1].split("x")]))
    except (IndexError, ValueError):
        return None


def guessed_unit_cost(key: str) -> float | None:
    """Seconds per unit guessed for a model not yet run here: the median, over the models measured
    on the same device, of their pace per input voxel, times ``key``'s input voxels (None when
    nothing was measured on this device)."""
    voxels, device = _voxels(key), key.split("|")[1] if key.count("|") == 2 else None
    if not voxels or device is None:
        return None
    per_voxel = [cost / n for k, cost in _read().items()
                 if k.count("|") == 2 and k.split("|")[1] == device and k != key and (n := _voxels(k))]
    return float(np.median(per_voxel)) * voxels if per_voxel else None


def record_run(key: str, units: int, seconds: float) -> None:
    """Remember the pace of a finished run (units done in ``seconds``); a run of under 20 units
    or 0.5 s says too little and is not kept."""
    if units < 20 or seconds < 0.5:
        return
    pace = seconds / units
    with _LOCK:
        costs = _read()
        old = costs.get(key)
        costs[key] = pace if old is None else 0.5 * old + 0.5 * pace
        path = cache_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(costs, indent=1))
            os.replace(tmp, path)
        except OSError:  # a read-only cache folder: no estimate next time, nothing worse
            pass


def estimate_text(units: int, unit: str, n_slices: int, cost: float | None, *, volume: bool = False,
                  guess: float | None = None) -> str:
    """``≈ 1,647 gradients for 1 slice · ≈ 1 min 17 s here (47 ms each, measured)``.

    ``volume``: a 3D model's run (``for the whole volume``); ``guess``: seconds per unit guessed
    (``guessed_unit_cost``), said when nothing was measured for this model."""
    scope = "of the whole volume (3D model)" if volume else f"for {n_slices} slice{'s' if n_slices != 1 else ''}"
    what = f"≈ {units:,} {unit} {scope}"
    if cost is None and guess is not None:
        return (f"{what} · roughly {duration_text(units * guess)} here (a guess from other models' pace × input "
                f"voxels; measured after the first run)")
    if cost is None:
        return f"{what} · time: known after the first run of this model here"
    return f"{what} · ≈ {duration_text(units * cost)} here ({cost * 1000:.0f} ms each, measured)"
