"""Structure labels, native Hounsfield units and contrast enhancement of the phantom.

Values follow ../shared/REFERENCE.md (120 kVp). Enhancement is the HU *added* by iodinated
contrast in each phase; every value is drawn per seed from the ranges below, for all phases at
once, so that the phase and the contrast flag never change any other random draw.
"""

from __future__ import annotations

import numpy as np

#: Structure name -> label id in ``PhantomSlice.labels``.
LABELS: dict[str, int] = {
    "background": 0,
    "fat": 1,
    "muscle": 2,
    "lung": 3,
    "mediastinum": 4,
    "bone": 5,
    "marrow": 6,
    "spinal_canal": 7,
    "airway": 8,
    "oesophagus": 9,
    "table": 10,
    "aorta": 11,
    "pulmonary_artery": 12,
    "svc": 13,
    "brachiocephalic_vein": 14,
    "arch_branch": 15,
    "left_ventricle": 16,
    "right_ventricle": 17,
    "left_atrium": 18,
    "right_atrium": 19,
    "myocardium": 20,
    "lung_vessel": 21,
    "ivc": 22,
    "liver": 23,
    "spleen": 24,
    "stomach": 25,
    "thyroid": 26,
    "calcification": 27,
    "liver_vessel": 28,
    "cartilage": 29,
    "soft_tissue": 30,
    "marker": 31,  # a planted marker (``make_slice(..., marker=...)``): lead letter, tube line, burned-in text
}

PHASES: tuple[str, ...] = ("arterial", "pulmonary", "venous")

#: Contrast raises a pixel's HU by at least this much exactly where ``mask`` is True.
MASK_MIN_ENHANCEMENT_HU = 50.0

# Enhancement groups: (low, high) HU added, per phase.  Groups >= 55 HU are blood pools and
# enhancing organs a radiologist reads; muscle and early-phase liver stay below the mask
# threshold (they enhance, but are not what one looks at to call contrast).
_VENOUS_BLOOD = (105.0, 155.0)  # blood pools 140-210 HU from a 35-55 HU base
ENHANCEMENT_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "systemic_arterial": {"arterial": (215, 395), "pulmonary": (80, 150), "venous": _VENOUS_BLOOD},
    "pulmonary_arterial": {"arterial": (150, 260), "pulmonary": (265, 495), "venous": _VENOUS_BLOOD},
    "systemic_venous_inflow": {"arterial": (250, 900), "pulmonary": (450, 1400), "venous": _VENOUS_BLOOD},
    "contralateral_vein": {"arterial": (60, 160), "pulmonary": (80, 200), "venous": _VENOUS_BLOOD},
    "ivc": {"arterial": (5, 30), "pulmonary": (5, 25), "venous": _VENOUS_BLOOD},
    "portal_venous": {"arterial": (20, 40), "pulmonary": (10, 30), "venous": (110, 170)},
    "myocardium": {"arterial": (60, 95), "pulmonary": (20, 40), "venous": (60, 90)},
    "liver": {"arterial": (10, 20), "pulmonary": (5, 15), "venous": (55, 70)},
    "spleen": {"arterial": (60, 90), "pulmonary": (20, 40), "venous": (60, 80)},
    "thyroid": {"arterial": (55, 100), "pulmonary": (55, 100), "venous": (55, 90)},
    "muscle": {"arterial": (10, 20), "pulmonary": (10, 20), "venous": (15, 25)},
}

#: Label id -> enhancement group (labels not listed do not enhance).
ENHANCING: dict[int, str] = {
    LABELS["aorta"]: "systemic_arterial",
    LABELS["arch_branch"]: "systemic_arterial",
    LABELS["left_ventricle"]: "systemic_arterial",
    LABELS["left_atrium"]: "systemic_arterial",
    LABELS["pulmonary_artery"]: "pulmonary_arterial",
    LABELS["right_ventricle"]: "pulmonary_arterial",
    LABELS["right_atrium"]: "pulmonary_arterial",
    LABELS["lung_vessel"]: "pulmonary_arterial",
    LABELS["svc"]: "systemic_venous_inflow",
    LABELS["brachiocephalic_vein"]: "contralateral_vein",
    LABELS["ivc"]: "ivc",
    LABELS["liver_vessel"]: "portal_venous",
    LABELS["myocardium"]: "myocardium",
    LABELS["liver"]: "liver",
    LABELS["spleen"]: "spleen",
    LABELS["thyroid"]: "thyroid",
    LABELS["muscle"]: "muscle",
}


def draw_enhancement(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Draw one enhancement value per group and phase: ``{phase: {group: HU added}}``.

    Venous-phase blood pools share one value (they equilibrate), as in a real scan.
    """
    venous_blood = float(rng.uniform(*_VENOUS_BLOOD))
    out: dict[str, dict[str, float]] = {p: {} for p in PHASES}
    for group, per_phase in ENHANCEMENT_RANGES.items():
        for phase in PHASES:
            lo, hi = per_phase[phase]
            value = float(rng.uniform(lo, hi))
            if per_phase[phase] == _VENOUS_BLOOD:
                value = venous_blood
            out[phase][group] = value
    return out


def draw_native_hu(rng: np.random.Generator) -> dict[str, float]:
    """Native (no contrast) HU per tissue for one patient, drawn from REFERENCE.md ranges."""
    u = rng.uniform
    return {
        "air": -1000.0,
        "fat": u(-115, -85),
        "muscle": u(40, 60),
        "lung": u(-880, -830),
        "mediastinum": u(-110, -80),
        "blood": u(35, 55),
        "myocardium": u(35, 50),
        "bone": u(800, 1400),
        "marrow": u(150, 350),
        "csf": u(5, 20),
        "liver": u(55, 65),
        "spleen": u(42, 52),
        "fluid": u(5, 20),
        "thyroid": u(80, 120),
        "cartilage": u(90, 180),
        "soft_tissue": u(30, 50),
        "calcification": u(300, 1000),
        "table_shell": u(150, 350),
        "table_foam": u(-900, -750),
    }
