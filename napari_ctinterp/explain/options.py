"""``ExplainOptions``: the one place where the explain parameters are declared and checked.

Every job that makes maps takes one: ``explain`` / ``explain_volume`` (or keyword overrides of
it), the Explain widget (built from its controls), the CLI (built from its flags) and a study
(``StudyConfig.explain``). The method and variant names are the strings used everywhere (CLI
flags, layer names, CSV columns).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

#: The paper's five methods (the default everywhere).
METHODS: tuple[str, ...] = ("BP", "IGB", "IGBW", "EG", "D")
#: Methods beyond the paper: Grad-CAM, Grad-CAM++, Guided Backprop, Guided Grad-CAM, Occlusion.
EXTRA_METHODS: tuple[str, ...] = ("GC", "GCPP", "GBP", "GGC", "OCC")
#: Every method name ``explain`` accepts, the paper's first.
ALL_METHODS: tuple[str, ...] = METHODS + EXTRA_METHODS
#: One colour per method in every figure (report, Metrics panel); the paper's five keep
#: matplotlib's first five, the random baseline is grey.
METHOD_COLOURS: dict[str, str] = {"BP": "tab:blue", "IGB": "tab:orange", "IGBW": "tab:green", "EG": "tab:red",
                                  "D": "tab:purple", "GC": "tab:brown", "GBP": "tab:pink", "GGC": "tab:olive",
                                  "OCC": "tab:cyan", "GCPP": "sienna", "random": "grey"}
#: What each method is called in full (the Explain widget's tick boxes, reports).
METHOD_TITLES: dict[str, str] = {"BP": "Backprop", "IGB": "IG black", "IGBW": "IG black+white",
                                 "EG": "Expected Gradients", "D": "Deconvolution", "GC": "Grad-CAM",
                                 "GCPP": "Grad-CAM++", "GBP": "Guided Backprop", "GGC": "Guided Grad-CAM",
                                 "OCC": "Occlusion (plain only)"}
#: Methods with no SmoothGrad variants: only their plain map is computed.
PLAIN_ONLY: tuple[str, ...] = ("OCC",)
#: Methods that need Grad-CAM's target layer.
GRADCAM_METHODS: tuple[str, ...] = ("GC", "GCPP", "GGC")
#: Occlusion fills: the black of the model's window, or the fidelity protocol's label fill.
OCC_FILLS: tuple[str, ...] = ("black", "label")
VARIANTS: tuple[str, ...] = ("plain", "SG", "SG2")
IG_METHODS: tuple[str, ...] = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                               "riemann_trapezoid")


@dataclass(frozen=True)
class ExplainOptions:
    """Settings of one explanation job (recorded with every map); validated when made.

    Parameters
    ----------
    methods : tuple of {"BP", "IGB", "IGBW", "EG", "D", "GC", "GCPP", "GBP", "GGC", "OCC"}
        The paper's five (the default): Backprop; Integrated Gradients, black baseline (0); mean
        of IG with black and white (1) baselines; Expected Gradients; Deconvolution. Beyond them:
        Grad-CAM (at ``gc_layer``, upsampled bilinearly); Grad-CAM++ (same layer, the paper's
        eq. 19 as pytorch-grad-cam; see ``gradcam.py``); Guided Backprop; Guided Grad-CAM
        (GBP × GC); Occlusion (plain only).
    variants : tuple of {"plain", "SG", "SG2"}
        Plain; SmoothGrad (mean over noisy copies); SmoothGrad² (mean of squares) — SG and SG2
        reduce the same noisy samples, shared by all methods. OCC has no SG variants: its plain
        map only; with OCC, plain is required.
    steps : int
        IG path points (25, the study's), Gauss–Legendre quadrature like Captum's default.
    samples : int
        EG samples (reference, α ~ U(0, 1)) per input.
    sg_samples, sg_level : int, float
        Noisy copies n and σ = sg_level × (max − min) of the input.
    seed : int
        Fixes the SG noise and the EG draws.
    ig_method : str
        IG quadrature (``gausslegendre`` or a ``riemann_*`` rule).
    gc_layer : str, optional
        Grad-CAM's target layer by module name (``"layer3"``); default the family's last spatial
        block, recorded in the maps' ``params["gc_layer"]``.
    occ_window, occ_stride : int
        Occlusion's square window and its step, in pixels of the model's input (16 and 8).
    occ_fill : {"black", "label"}
        What fills the window: the black of the model's window, or the fidelity protocol's label
        fill (white when explaining class 0, black otherwise).
    """

    methods: tuple[str, ...] = METHODS
    variants: tuple[str, ...] = VARIANTS
    steps: int = 25
    samples: int = 50
    sg_samples: int = 15
    sg_level: float = 0.15
    seed: int = 0
    ig_method: str = "gausslegendre"
    gc_layer: str | None = None
    occ_window: int = 16
    occ_stride: int = 8
    occ_fill: str = "black"

    def __post_init__(self) -> None:
        # one normal form (tuples, ints, floats, None for an empty layer name), then the checks
        for name, kind in (("methods", tuple), ("variants", tuple), ("steps", int), ("samples", int),
                           ("sg_samples", int), ("seed", int), ("occ_window", int), ("occ_stride", int)):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if kind is tuple and isinstance(value, str) else kind(value))
        if type(self.sg_level) not in (int, float):  # a Python int stays an int: a study's results key hashes it
            object.__setattr__(self, "sg_level", float(self.sg_level))
        object.__setattr__(self, "gc_layer", (str(self.gc_layer).strip() or None) if self.gc_layer else None)
        bad = [m for m in self.methods if m not in ALL_METHODS]
        if bad or not self.methods:
            raise ValueError(f"unknown method(s) {bad}: choose from {' '.join(ALL_METHODS)}")
        badv = [v for v in self.variants if v not in VARIANTS]
        if badv or not self.variants:
            raise ValueError(f"unknown variant(s) {badv}: choose from {' '.join(VARIANTS)}")
        if self.steps < 1 or self.samples < 1 or self.sg_samples < 1:
            raise ValueError("steps, samples and sg_samples must be >= 1")
        if not self.sg_level >= 0:
            raise ValueError(f"sg_level must be >= 0, got {self.sg_level}")
        if self.ig_method not in IG_METHODS:
            raise ValueError(f"ig_method must be one of {IG_METHODS}")
        if "OCC" in self.methods and (self.occ_window < 1 or self.occ_stride < 1):
            raise ValueError(f"occ_window and occ_stride must be >= 1 pixel, got {self.occ_window}, {self.occ_stride}")
        if "OCC" in self.methods and self.occ_stride > self.occ_window:
            raise ValueError(f"occ_stride ({self.occ_stride}) must not exceed occ_window ({self.occ_window}): "
                             "pixels between windows would never be occluded")
        if self.occ_fill not in OCC_FILLS:
            raise ValueError(f"occ_fill must be one of {OCC_FILLS}, got {self.occ_fill!r}")
        plain_only = [m for m in self.methods if m in PLAIN_ONLY]
        if plain_only and "plain" not in self.variants:
            raise ValueError(f"{', '.join(plain_only)} has no SmoothGrad variant (plain only): add the plain "
                             f"variant, or leave {', '.join(plain_only)} out")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order (what keyword overrides may name)."""
        return tuple(f.name for f in fields(cls))

    def updated(self, **overrides: Any) -> ExplainOptions:
        """These options with the given ones replaced; ``None`` values are ignored (not given).

        Raises ``TypeError`` for a name that is no option, ``ValueError`` for a refused value."""
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise TypeError(f"not an explain option: {', '.join(unknown)}; options: {', '.join(self.names())}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self

    @property
    def uses_gradcam(self) -> bool:
        """Whether a method needs Grad-CAM's target layer."""
        return bool(set(GRADCAM_METHODS) & set(self.methods))

    def pairs(self) -> list[tuple[str, str]]:
        """Every (method, variant) map these options make: OCC's plain map only."""
        return [(m, v) for m in self.methods for v in self.variants if m not in PLAIN_ONLY or v == "plain"]

    def not_computed(self) -> list[str]:
        """``"METHOD variant"`` of the pairs asked for but not made (OCC's SmoothGrad variants)."""
        made = set(self.pairs())
        return [f"{m} {v}" for m in self.methods for v in self.variants if (m, v) not in made]

    def record(self) -> dict[str, Any]:
        """The settings a map records in its ``params`` (Grad-CAM's layer only with GC / GCPP / GGC, the
        occlusion settings only with OCC)."""
        out: dict[str, Any] = {"methods": list(self.methods), "variants": list(self.variants), "steps": self.steps,
                               "samples": self.samples, "sg_samples": self.sg_samples, "sg_level": self.sg_level,
                               "seed": self.seed, "ig_method": self.ig_method}
        if self.uses_gradcam:
            out["gc_layer"] = self.gc_layer
        if "OCC" in self.methods:
            out.update(occ_window=self.occ_window, occ_stride=self.occ_stride, occ_fill=self.occ_fill)
        return out


def resolve(options: ExplainOptions | None, **overrides: Any) -> ExplainOptions:
    """``options`` (default ``ExplainOptions()``) with the keyword overrides that are not None."""
    if options is not None and not isinstance(options, ExplainOptions):
        raise TypeError(f"options must be an ExplainOptions, got {type(options).__name__}; pass single settings "
                        f"as keywords (methods=..., steps=...)")
    return (options or ExplainOptions()).updated(**overrides)


def from_call(options: ExplainOptions | None, arguments: dict[str, Any]) -> ExplainOptions:
    """The options of a call whose signature lists every option as a keyword override (``explain``,
    ``explain_targets``, ``explain_volume``, ``metrics.cascading_randomisation``): ``arguments`` is
    the call's ``locals()``; each override that is not None replaces the field of ``options``."""
    return resolve(options, **{name: arguments[name] for name in ExplainOptions.names()})
