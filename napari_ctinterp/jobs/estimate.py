"""How long a job will take here, said before it starts: its progress units times the cost of
one unit measured by the previous runs of the same model on this machine.

The costs live in a small JSON file in the user's cache folder (``NAPARI_CTINTERP_CACHE`` overrides
it), keyed by the model's weights hash, the device and the model's input size; each finished run
updates its key with the run's own pace (seconds per unit, exponentially averaged so a slow
first run is forgotten). Nothing is measured for the estimate itself: no extra work, no frozen UI.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

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


def estimate_text(units: int, unit: str, n_slices: int, cost: float | None) -> str:
    """``≈ 1,647 gradients for 1 slice · ≈ 1 min 17 s here (47 ms each, measured)``."""
    what = f"≈ {units:,} {unit} for {n_slices} slice{'s' if n_slices != 1 else ''}"
    if cost is None:
        return f"{what} · time: known after the first run of this model here"
    return f"{what} · ≈ {duration_text(units * cost)} here ({cost * 1000:.0f} ms each, measured)"
