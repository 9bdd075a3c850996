"""napari dock widgets of the plugin (thin: read widget state, call the core, make layers)."""

from .._triton import preload_triton

# Before any widget module imports torch: see ``napari_ctinterp._triton``.
preload_triton()
