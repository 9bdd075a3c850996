"""``make_slice``: one synthetic axial chest-CT slice in Hounsfield units, with its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .body import paint_body_wall, paint_lung_vessels, paint_lungs, paint_ribs_and_spine, paint_table
from .canvas import Canvas, smooth_field
from .markers import plant
from .noise import fast_noise, fbp_noise
from .organs import paint_abdomen, paint_mediastinum
from .tissues import ENHANCING, LABELS, MASK_MIN_ENHANCEMENT_HU, PHASES, draw_enhancement, draw_native_hu

NoiseMode = Literal["fast", "fbp", "none"]


@dataclass(frozen=True)
class PhantomSlice:
    """A phantom slice and its ground truth.

    Attributes
    ----------
    hu : numpy.ndarray
        float32 (H, W) Hounsfield units.
    mask : numpy.ndarray
        bool (H, W): where this phase's contrast raises HU by at least
        ``MASK_MIN_ENHANCEMENT_HU`` (50 HU) — the blood pools and enhancing organs a radiologist
        reads. Given for both classes (for ``contrast=False`` it marks where contrast *would* show).
    labels : numpy.ndarray
        int16 (H, W) structure ids, see ``phantom.LABELS``.
    meta : dict
        Every parameter that made the slice (seed, level, phase, contrast, noise, spacing, ...).
    """

    hu: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def spacing_mm(self) -> tuple[float, float]:
        """Pixel spacing (row, column) in millimetres."""
        s = float(self.meta["pixel_mm"])
        return (s, s)

    @property
    def marker_mask(self) -> np.ndarray:
        """bool (H, W): the planted marker's pixels (all False without a marker)."""
        return self.labels == LABELS["marker"]


def make_slice(
    seed: int,
    contrast: bool = True,
    phase: str | None = None,
    *,
    level: float | None = None,
    size: int = 512,
    noise: NoiseMode = "fast",
    noise_sd: float | None = None,
    arms_down: bool | None = None,
    supersample: int = 2,
    marker: bool | str | None = None,
) -> PhantomSlice:
    """Make one synthetic chest-CT slice.

    Parameters
    ----------
    seed : int
        Fixes anatomy, noise and enhancement. The same seed with ``contrast`` True and False
        gives identical anatomy and noise: their difference is exactly the contrast.
    contrast : bool
        Whether iodinated contrast is present.
    phase : {"arterial", "pulmonary", "venous"}, optional
        Contrast phase; drawn from the seed when None. Also chooses ``mask`` when
        ``contrast=False``.
    level : float, optional
        Cranio-caudal level in [0, 1]: 0 thoracic inlet, ~0.25 aortic arch, ~0.4 pulmonary
        trunk, ~0.6 heart, 1 upper abdomen. Drawn from the seed when None.
    size : int
        Output side in pixels (512 by default; pixel spacing ~0.6-0.85 mm fits the body in).
    noise : {"fast", "fbp", "none"}
        Noise model, see ``phantom.noise``.
    noise_sd : float, optional
        Noise SD in HU; drawn in [8, 25] from the seed when None.
    arms_down : bool, optional
        Arms beside the body (about one slice in three when drawn from the seed).
    supersample : int
        Sub-pixels per pixel along each axis for partial-volume edges.
    marker : bool or str, optional
        Plant a marker (``phantom.markers``): ``True`` draws a kind from the seed, a kind's name
        (``"letter"``, ``"tube"``, ``"text"``) picks it. Drawn from a random stream of its own: the
        slice is the one without a marker except at the marker's pixels, which ``labels`` marks
        ``LABELS["marker"]`` (``marker_mask``) and ``meta["marker"]`` describes.

    Returns
    -------
    PhantomSlice
    """
    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    if level is not None and not 0.0 <= level <= 1.0:
        raise ValueError(f"level must lie in [0, 1], got {level}")
    if noise not in ("fast", "fbp", "none"):
        raise ValueError(f"noise must be 'fast', 'fbp' or 'none', got {noise!r}")
    seq = np.random.SeedSequence(int(seed))
    r_choice, r_anat, r_enh, r_noise = (np.random.default_rng(s) for s in seq.spawn(4))
    drawn_level = float(r_choice.uniform(0, 1))
    drawn_phase = str(r_choice.choice(PHASES))
    drawn_arms = bool(r_choice.random() < 0.3)
    level = drawn_level if level is None else float(level)
    phase = drawn_phase if phase is None else phase
    arms_down = drawn_arms if arms_down is None else bool(arms_down)
    enh = draw_enhancement(r_enh)[phase]
    hu_tab = draw_native_hu(r_anat)
    pixel_mm = float(r_anat.uniform(0.62, 0.82)) * 512 / size
    cutoff = float(r_noise.uniform(0.22, 0.6))
    sd = float(r_noise.uniform(8, 25)) if noise_sd is None else float(noise_sd)

    cv = Canvas(size, pixel_mm, supersample, r_anat, warp_mm=float(r_anat.uniform(2, 6)))
    tex = smooth_field(r_anat, (cv.n, cv.n), 6.0 / cv.step, coarse=4)
    lung_tex = smooth_field(r_anat, (cv.n, cv.n), 2.5 / cv.step, coarse=supersample)
    body_geom = _paint_all(cv, r_anat, hu_tab, tex, lung_tex, level, arms_down, enh)

    native, enhancement, labels = cv.downsample()
    if noise == "fast":
        n = fast_noise(r_noise, size, sd, cutoff)
    elif noise == "fbp":
        n = fbp_noise(r_noise, native, sd, pixel_mm)
    else:
        n = np.zeros_like(native)
    hu = native + n + (enhancement if contrast else 0.0)
    mask = enhancement >= MASK_MIN_ENHANCEMENT_HU
    meta = {
        "seed": int(seed),
        "contrast": bool(contrast),
        "phase": phase,
        "level": level,
        "arms_down": arms_down,
        "size": size,
        "pixel_mm": pixel_mm,
        "noise": noise,
        "noise_sd_hu": sd,
        "kernel_cutoff": cutoff,
        "enhancement_hu": dict(enh),
        "mask_min_enhancement_hu": MASK_MIN_ENHANCEMENT_HU,
        "body_half_width_mm": body_geom.half_width,
        "generator": "napari_ctinterp.phantom.make_slice",
    }
    plain = PhantomSlice(hu=hu.astype(np.float32), mask=mask, labels=labels.astype(np.int16), meta=meta)
    return plain if marker is None or marker is False else add_marker(plain, marker)


def add_marker(s: PhantomSlice, marker: bool | str = True, *, seed: int | None = None) -> PhantomSlice:
    """``s`` with a planted marker (``phantom.markers``): ``make_slice(seed, ..., marker=marker)``
    is ``add_marker(make_slice(seed, ...), marker)``. ``seed`` (default: the slice's own) draws
    the marker: another seed moves it (and may change its kind, size and HU for ``marker=True``)."""
    if s.labels is None or (s.labels == LABELS["marker"]).any():
        raise ValueError("this slice already has a marker: add markers to a slice without one")
    seed = int(s.meta["seed"]) if seed is None else int(seed)
    hu, labels, planted = plant(s.hu, s.labels, float(s.meta["pixel_mm"]), marker, seed,
                                air_hu=float(s.meta.get("air_hu", -1000.0)))
    return PhantomSlice(hu=hu, mask=s.mask, labels=labels, meta={**s.meta, "marker": {**planted.record(),
                                                                                       "seed": seed}})


def _paint_all(cv: Canvas, rng: np.random.Generator, hu: dict, tex: np.ndarray, lung_tex: np.ndarray,
               level: float, arms_down: bool, enh_phase: dict):
    """Paint every structure in back-to-front order; returns the body geometry."""
    half_fov = cv.size * cv.pixel_mm / 2
    body = paint_body_wall(cv, rng, hu, tex, level, arms_down)
    paint_table(cv, rng, hu, min(body.cy + body.half_depth * rng.uniform(0.93, 1.0), half_fov - 20))
    paint_lungs(cv, rng, hu, lung_tex, body)
    paint_abdomen(cv, rng, hu, tex, body, enh_phase)
    hilum = paint_mediastinum(cv, rng, hu, tex, body, enh_phase)
    paint_lung_vessels(cv, rng, hu, body, enh_phase["pulmonary_arterial"], hilum)
    paint_ribs_and_spine(cv, rng, hu, tex, body)
    _apply_muscle_enhancement(cv, enh_phase)
    return body


def _apply_muscle_enhancement(cv: Canvas, enh_phase: dict) -> None:
    """Structures painted with a group that was not passed explicitly (muscle) get their value."""
    muscle = cv.label == LABELS["muscle"]
    cv.enh[muscle] = enh_phase[ENHANCING[LABELS["muscle"]]]

