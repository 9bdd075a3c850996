"""One-call jobs that combine the core's packages for a viewer or a command: what a widget runs in
its worker (e.g. maps and XRAI regions of the slices asked, with the domain check), so that the
widget only reads its controls, calls one function and makes layers.

``jobs.iter_explain_slices(clf, data, indices, options, ...)`` → ``ExplainedSlices``;
``jobs.iter_explain_3d(clf, volume, options, spacing_mm=...)`` → ``ExplainedVolume`` (a 3D model:
the whole volume is the input, each map one (Z, H, W) array).
"""

from .estimate import cost_key, estimate_text, guessed_unit_cost, record_run, unit_cost
from .explain_slices import (
    ExplainedSlices,
    check_scope,
    explain_slices,
    iter_explain_slices,
    job_units,
    reference_plan,
)
from .explain_volume_3d import (
    ExplainedVolume,
    check_volume,
    explain_3d,
    iter_explain_3d,
    job_units_3d,
    xrai_3d_available,
)

__all__ = ["ExplainedSlices", "ExplainedVolume", "check_scope", "check_volume", "cost_key", "estimate_text",
           "explain_3d", "explain_slices", "guessed_unit_cost", "iter_explain_3d", "iter_explain_slices", "job_units",
           "job_units_3d", "record_run", "reference_plan", "unit_cost", "xrai_3d_available"]
