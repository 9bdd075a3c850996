"""One-call jobs that combine the core's packages for a viewer or a command: what a widget runs in
its worker (e.g. maps and XRAI regions of the slices asked, with the domain check), so that the
widget only reads its controls, calls one function and makes layers.

``jobs.iter_explain_slices(clf, data, indices, options, ...)`` → ``ExplainedSlices``.
"""

from .estimate import cost_key, estimate_text, record_run, unit_cost
from .explain_slices import (
    ExplainedSlices,
    check_scope,
    explain_slices,
    iter_explain_slices,
    job_units,
    reference_plan,
)

__all__ = ["ExplainedSlices", "check_scope", "cost_key", "estimate_text", "explain_slices", "iter_explain_slices",
           "job_units", "record_run", "reference_plan", "unit_cost"]
