"""napari-ctinterp: explain a CT classifier and measure whether the explanation can be trusted.

Subpackages (imported lazily, so that napari can discover the plugin without importing torch)::

    from napari_ctinterp import io, phantom, model, explain, xrai, metrics, study
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("io", "phantom", "model", "explain", "xrai", "metrics", "study")
__all__ = [*_SUBPACKAGES, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
