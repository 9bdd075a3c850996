"""The command line's explain flags, made from ``ExplainOptions`` (declared there, not here).

``add_explain_arguments(parser)`` adds one ``--flag`` per field of ``ExplainOptions`` (``sg_level`` →
``--sg-level``) with the field's default; ``explain_options(args)`` builds the options back. Only
the help text and the value type of each flag are written here. No torch import (``--help`` stays
instant): ``explain/options.py`` imports nothing heavy and ``explain/__init__`` loads lazily.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..explain.options import ALL_METHODS, IG_METHODS, OCC_FILLS, VARIANTS, ExplainOptions

#: flag help per option (the type, choices and default come from ExplainOptions)
HELP = {
    "methods": "default: the paper's five (BP IGB IGBW EG D); beyond them GC (Grad-CAM), GCPP (Grad-CAM++), "
               "GBP (Guided Backprop), GGC (Guided Grad-CAM), OCC (Occlusion, plain only)",
    "variants": "default all three: plain, SmoothGrad, SmoothGrad² (OCC: plain only)",
    "steps": "Integrated Gradients path points (default %(default)s)",
    "samples": "Expected Gradients samples per input (default %(default)s)",
    "sg_samples": "SmoothGrad noisy copies (default %(default)s)",
    "sg_level": "SmoothGrad noise, a fraction of the input's range (default %(default)s)",
    "seed": "seed of the noise, the EG draws and the demo's slices (default %(default)s)",
    "ig_method": "IG quadrature (default %(default)s)",
    "gc_layer": "Grad-CAM's target layer by module name, e.g. layer3 (default: the architecture's last spatial "
                "block, layer4 on a ResNet)",
    "occ_window": "Occlusion's square window, pixels at the model's input size (default %(default)s)",
    "occ_stride": "step between occlusion windows, pixels (default %(default)s)",
    "occ_fill": "what fills an occluded window: black (the low end of each CT window channel: air) or label "
                "(the fidelity test's fill: white for class 0, black otherwise)",
}


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per ``ExplainOptions`` field, defaults from the dataclass."""
    choices = {"methods": ALL_METHODS, "variants": VARIANTS, "ig_method": IG_METHODS, "occ_fill": OCC_FILLS}
    for f in fields(ExplainOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.name in ("methods", "variants"):
            parser.add_argument(flag, nargs="+", choices=choices[f.name], help=HELP[f.name])
            continue
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(flag, type=kind, default=f.default, choices=choices.get(f.name), help=HELP[f.name])


def explain_options(args: argparse.Namespace):
    """The ``ExplainOptions`` of the parsed flags (``ValueError`` for a refused combination)."""
    values = {f.name: getattr(args, f.name) for f in fields(ExplainOptions)}
    return ExplainOptions(**{k: v for k, v in values.items() if v is not None})
