"""Body wall, scanner table, skeleton, lungs and lung vessel trees of the phantom.

Coordinates are millimetres from the image centre: x to the image right (the patient's left,
radiological convention), y to the image bottom (posterior). ``Body`` holds the per-patient
geometry that the mediastinal and abdominal organs (``organs.py``) are placed against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canvas import Canvas
from .tissues import LABELS as L


def bump(z: float, z0: float, z1: float, ramp: float = 0.05) -> float:
    """Smooth presence factor: 0 outside [z0, z1], 1 inside, cosine ramps of width ``ramp``."""
    if z <= z0 - ramp or z >= z1 + ramp:
        return 0.0
    if z < z0 + ramp:
        return 0.5 - 0.5 * np.cos(np.pi * (z - z0 + ramp) / (2 * ramp))
    if z > z1 - ramp:
        return 0.5 - 0.5 * np.cos(np.pi * (z1 + ramp - z) / (2 * ramp))
    return 1.0


def lobes(rng: np.random.Generator, amp: float, kmax: int = 6) -> np.ndarray:
    """Random Fourier lobulation rows (k, amplitude, phase) for ``Canvas.ellipse``."""
    ks = np.arange(2, kmax + 1, dtype=float)
    amps = amp * rng.uniform(0.2, 1.0, len(ks)) / ks**0.7
    return np.stack([ks, amps, rng.uniform(0, 2 * np.pi, len(ks))], axis=1)


@dataclass
class Body:
    """Per-patient geometry at one level (all in mm)."""

    cx: float
    cy: float
    half_width: float
    half_depth: float
    cav_a: float
    cav_b: float
    cav_cy: float
    spine_y: float
    vert_r: float
    level: float


def paint_table(cv: Canvas, rng: np.random.Generator, hu: dict, top_y: float) -> None:
    """Curved carbon-fibre table beneath the patient: a bright shell over foam.

    Painted after the body, only over air, so it may touch the back but never cover it.
    """
    radius = rng.uniform(350, 600)
    shell = rng.uniform(1.5, 3.0)
    depth = rng.uniform(25, 45)
    half_w = rng.uniform(190, 240)
    bb = cv._bbox(0.0, top_y + depth / 2, half_w, depth / 2 + shell)
    if bb is None:
        return
    x, y = cv.x[bb], cv.y[bb]
    r = np.sqrt(x * x + (y - top_y - radius) ** 2)  # distance from the circle's centre
    inside = (r <= radius) & (y < top_y + depth) & (np.abs(x) < half_w)
    shell_px = inside & ((r > radius - shell) | (y >= top_y + depth - shell))
    outside = (L["background"],)  # never over the patient
    cv.paint((bb, inside & ~shell_px), hu["table_foam"], L["table"], within=outside)
    cv.paint((bb, shell_px), hu["table_shell"], L["table"], within=outside)


def paint_body_wall(
    cv: Canvas, rng: np.random.Generator, hu: dict, tex: np.ndarray, level: float, arms_down: bool
) -> Body:
    """Skin outline, subcutaneous fat, muscle layer, shoulders/arms; returns the geometry."""
    s = rng.uniform(0.85, 1.12)
    inlet = bump(level, -0.2, 0.16, 0.06)
    abdomen = bump(level, 0.8, 1.2, 0.08)
    hw = s * rng.uniform(150, 172) * (1 + 0.22 * inlet - 0.05 * abdomen)
    hd = s * rng.uniform(100, 122) * (1 - 0.08 * inlet + 0.04 * abdomen)
    cx, cy = rng.normal(0, 6), rng.normal(-8, 6)
    fat = rng.uniform(6, 30) * (1 + 0.4 * abdomen)
    muscle = rng.uniform(8, 16) * (1 + 0.5 * inlet)
    rot = rng.normal(0, 2.5)
    body = cv.ellipse(cx, cy, hw, hd, rot, lobes(rng, 0.05))
    cv.paint(body, hu["fat"], L["fat"], texture=tex, texture_hu=6)
    if arms_down and level > 0.12:
        for side in (-1, 1):
            ax = cx + side * (hw + rng.uniform(35, 60))
            ay = cy + rng.normal(5, 8)
            aa, ab = rng.uniform(38, 50), rng.uniform(45, 58)
            cv.paint(cv.ellipse(ax, ay, aa, ab, rng.normal(0, 10), lobes(rng, 0.05)), hu["fat"], L["fat"])
            cv.paint(cv.ellipse(ax, ay, aa - 8, ab - 8, 0, lobes(rng, 0.06)), hu["muscle"], L["muscle"],
                     texture=tex, texture_hu=5)
            _paint_bone(cv, hu, ax + rng.normal(0, 4), ay + rng.normal(0, 4), 11, 11, 0, 3.0)
    # Muscle layer, thicker posteriorly (paraspinal) and pectorals anteriorly.
    cv.paint(cv.ellipse(cx, cy, hw - fat, hd - fat * 0.8, rot, lobes(rng, 0.04)), hu["muscle"],
             L["muscle"], texture=tex, texture_hu=5)
    cav_a = (hw - fat - muscle) * (1 - 0.35 * inlet)
    cav_b = (hd - fat * 0.8 - muscle) * (1 - 0.1 * inlet) - 6
    cav_cy = cy - 4
    spine_y = cav_cy + cav_b - rng.uniform(18, 26)
    vert_r = s * rng.uniform(15, 20)
    if inlet > 0.3:  # shoulders: humeral heads, deltoids, scapulae, clavicles
        for side in (-1, 1):
            hx = cx + side * (hw - rng.uniform(35, 48))
            cv.paint(cv.ellipse(hx, cy + rng.normal(0, 5), 40, 42, 0, lobes(rng, 0.05)), hu["muscle"],
                     L["muscle"], texture=tex, texture_hu=5)
            _paint_bone(cv, hu, hx, cy + rng.normal(0, 4), 21, 22, 0, 2.5)
            _paint_capsule_bone(cv, hu, cx + side * 18, cy - hd + fat + 12,
                                cx + side * (hw - 70), cy - hd + fat + 30, 5.0)
            _paint_capsule_bone(cv, hu, cx + side * (hw - 60), cy + hd - fat - 25,
                                cx + side * (hw - 115), cy + hd - fat - 12, 3.5)
    return Body(cx, cy, hw, hd, cav_a, cav_b, cav_cy, spine_y, vert_r, level)


def _paint_bone(cv: Canvas, hu: dict, x: float, y: float, a: float, b: float, ang: float,
                cortex: float) -> None:
    cv.paint(cv.ellipse(x, y, a, b, ang), hu["bone"], L["bone"])
    cv.paint(cv.ellipse(x, y, a - cortex, b - cortex, ang), hu["marrow"], L["marrow"])


def _paint_capsule_bone(cv: Canvas, hu: dict, x0: float, y0: float, x1: float, y1: float,
                        r: float) -> None:
    cv.paint(cv.capsule(x0, y0, x1, y1, r), hu["bone"], L["bone"])
    cv.paint(cv.capsule(x0, y0, x1, y1, r - 1.6), hu["marrow"], L["marrow"])


def paint_lungs(cv: Canvas, rng: np.random.Generator, hu: dict, lung_tex: np.ndarray, b: Body) -> None:
    """Thoracic cavity filled with textured parenchyma (the mediastinum is painted over later)."""
    inlet = bump(b.level, -0.2, 0.16, 0.06)
    shape = cv.ellipse(b.cx, b.cav_cy, b.cav_a, b.cav_b, rng.normal(0, 2), lobes(rng, 0.03))
    cv.paint(shape, hu["lung"], L["lung"], texture=lung_tex, texture_hu=22)
    if inlet > 0.3:  # apices: the centre of the inlet is neck soft tissue, not lung
        cv.paint(cv.ellipse(b.cx, b.cav_cy, b.cav_a * 0.35, b.cav_b * 1.05), hu["soft_tissue"],
                 L["soft_tissue"])


def paint_ribs_and_spine(cv: Canvas, rng: np.random.Generator, hu: dict, tex: np.ndarray, b: Body) -> None:
    """Ribs around the cavity, costal cartilage anteriorly, sternum, vertebra, paraspinal muscles."""
    for side in (-1, 1):
        cv.paint(cv.ellipse(b.cx + side * (b.vert_r + 14), b.spine_y + b.vert_r + 22, 17, 24,
                            side * 10, lobes(rng, 0.05)), hu["muscle"], L["muscle"], texture=tex,
                 texture_hu=5)
    n = rng.integers(7, 11)
    start = rng.uniform(0, 0.3)
    for i in range(n):
        t = start + i * (np.pi - 0.25) / n  # angle from the posterior midline round to the front
        for side in (-1, 1):
            ang = np.pi / 2 - side * (t + 0.35)
            rx = b.cx + (b.cav_a + 4) * np.cos(ang) + rng.normal(0, 1.5)
            ry = b.cav_cy + (b.cav_b + 4) * np.sin(ang) + rng.normal(0, 1.5)
            tangent = np.rad2deg(ang) + 90
            if np.sin(ang) < -0.75:  # anterior: costal cartilage
                cv.paint(cv.ellipse(rx, ry, rng.uniform(5, 7), 3.5, tangent), hu["cartilage"],
                         L["cartilage"])
            else:
                _paint_bone(cv, hu, rx, ry, rng.uniform(5, 7.5), rng.uniform(3.2, 4.5), tangent, 1.4)
    # Sternum (wider manubrium at upper levels).
    upper = bump(b.level, 0.0, 0.35, 0.05)
    sy = b.cav_cy - b.cav_b - rng.uniform(2, 6)
    _paint_bone(cv, hu, b.cx + rng.normal(0, 2), sy, rng.uniform(13, 18) * (1 + 0.5 * upper), 7.5, 0, 1.6)
    # Vertebra: body, canal, pedicles/laminae, spinous and transverse processes.
    vx, vy, r = b.cx + rng.normal(0, 2), b.spine_y, b.vert_r
    for side in (-1, 1):
        _paint_capsule_bone(cv, hu, vx + side * r * 0.5, vy + r * 0.7, vx + side * r * 0.55, vy + r * 1.6, 4.5)
        _paint_capsule_bone(cv, hu, vx + side * r * 0.6, vy + r * 1.2, vx + side * r * 1.7,
                            vy + r * 1.0 + rng.normal(0, 3), 4.5)
    _paint_capsule_bone(cv, hu, vx, vy + r * 1.7, vx + rng.normal(0, 3), vy + r * 2.7, 4.0)
    _paint_bone(cv, hu, vx, vy, r * rng.uniform(1.0, 1.1), r * rng.uniform(0.9, 1.0), rng.normal(0, 4), 1.8)
    cv.paint(cv.ellipse(vx, vy + r * 1.35, r * 0.45, r * 0.42), hu["csf"], L["spinal_canal"])


def paint_lung_vessels(cv: Canvas, rng: np.random.Generator, hu: dict, b: Body, enh: float,
                       hilum_x: float) -> None:
    """Branching vessel trees from each hilum, cross-sectioned vessels and bronchovascular dots.

    Painted only over lung parenchyma, so they never leak into the mediastinum or chest wall.
    """
    lung = (L["lung"],)
    for side in (-1, 1):
        hx = b.cx + side * hilum_x
        hy = b.cav_cy + rng.normal(0, 8)
        stack = [(hx, hy, np.pi / 2 - side * np.pi / 2 + rng.normal(0, 0.3), rng.uniform(2.0, 2.8), 0)]
        while stack:
            x, y, ang, r, depth = stack.pop()
            length = rng.uniform(10, 26) * (1 - 0.1 * depth)
            x1, y1 = x + length * np.cos(ang), y + length * np.sin(ang)
            cv.paint(cv.capsule(x, y, x1, y1, r), hu["blood"], L["lung_vessel"], enh=enh, within=lung)
            if depth < 5 and r > 0.55:
                for turn in (-1, 1)[: 1 + (rng.random() < 0.75)]:
                    turn_ang = ang + turn * rng.uniform(0.25, 0.7) + rng.normal(0, 0.15)
                    stack.append((x1, y1, turn_ang, r * rng.uniform(0.6, 0.78), depth + 1))
        # Vessels crossing the slice, larger near the hilum; some with a bronchus beside them.
        for _ in range(rng.integers(45, 75)):
            rr = np.sqrt(rng.uniform(0.02, 1.0))
            th = rng.uniform(0, 2 * np.pi)
            x = b.cx + side * (hilum_x + rr * (b.cav_a - hilum_x) * abs(np.cos(th)))
            y = b.cav_cy + rr * b.cav_b * np.sin(th)
            radius = max(0.5, 3.0 * (1 - rr) + rng.normal(0, 0.25))
            cv.paint(cv.ellipse(x, y, radius, radius * rng.uniform(0.8, 1.4), rng.uniform(0, 180)),
                     hu["blood"], L["lung_vessel"], enh=enh, within=lung)
            if radius > 1.2 and rng.random() < 0.35:
                bx, by = x + (radius + 1.8) * np.cos(th), y + (radius + 1.8) * np.sin(th)
                cv.paint(cv.ellipse(bx, by, radius * 0.9 + 0.7, radius * 0.9 + 0.7), hu["soft_tissue"],
                         L["soft_tissue"], within=lung)
                cv.paint(cv.ellipse(bx, by, radius * 0.9, radius * 0.9), hu["air"], L["airway"])
        # A fissure: a thin, slightly denser curve through the lung.
        f0 = rng.uniform(-0.6, 0.2)
        pts = [(b.cx + side * (hilum_x + (b.cav_a - hilum_x) * t),
                b.cav_cy + b.cav_b * (f0 + 0.7 * t * t + rng.normal(0, 0.02))) for t in np.linspace(0, 1.1, 7)]
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
            cv.paint(cv.capsule(x0, y0, x1, y1, 0.35), hu["lung"] + 150, L["lung"], within=lung)
