"""Load triton's native library safely in a process that already runs OpenGL (napari).

Why: torch's CUDA builds import triton as soon as ``torch._dynamo`` is imported (torchvision's
``ops`` do that). ``libtriton.so`` carries its own copy of LLVM and exports its symbols; when Mesa's
``libLLVM`` is already loaded (napari's OpenGL canvas brings it up), the dynamic linker binds
libtriton's internal LLVM references to Mesa's copy and its static initialisers segfault
(``triton/knobs.py``, the first import of ``triton._C.libtriton``). Loading it with
``RTLD_DEEPBIND`` makes libtriton resolve its own symbols first, so both LLVMs live side by side:
``import torchvision``, ``torch.compile`` and triton itself then work in the napari process.

No napari import here: the plugin's napari entry points (widgets, reader, sample data) call
``preload_triton()`` before they import torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys


def preload_triton() -> bool:
    """Import triton with ``RTLD_DEEPBIND`` unless it is absent or already imported.

    Returns True when triton is (now) imported, False when it is not installed, the platform has
    no ``RTLD_DEEPBIND``, or its import failed (then torch runs without it, as on a CPU build).
    """
    if sys.modules.get("triton") is not None:
        return True
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    if deepbind is None:
        return False
    try:
        if importlib.util.find_spec("triton") is None:
            return False
    except (ImportError, ValueError):
        return False
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | deepbind)
    try:
        importlib.import_module("triton")
    except Exception:  # noqa: BLE001 - a broken triton must not take the plugin down
        return False
    finally:
        sys.setdlopenflags(flags)
    return True
