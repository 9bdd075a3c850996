"""Mediastinum, great vessels, heart, neck and upper-abdomen organs of the phantom.

Which structures appear, and how large, is a smooth function of the level ``z`` in [0, 1]
(0 = thoracic inlet, ~0.25 aortic arch, ~0.4 pulmonary trunk, ~0.6 heart, 1 = upper abdomen), so
neighbouring levels look like neighbouring slices. Positions are relative to the body geometry and
jittered per seed.
"""

from __future__ import annotations

import numpy as np

from .body import Body, bump, lobes
from .canvas import Canvas
from .tissues import LABELS as L


def _vessel(cv: Canvas, x: float, y: float, r: float, label: int, hu: dict, enh: dict,
            group: str, squash: float = 1.0, ang: float = 0.0) -> None:
    if r > 0.5:
        cv.paint(cv.ellipse(x, y, r, r * squash, ang), hu["blood"], label, enh=enh[group])


def paint_mediastinum(cv: Canvas, rng: np.random.Generator, hu: dict, tex: np.ndarray, b: Body,
                      enh: dict) -> float:
    """Mediastinal fat, airways, oesophagus, great vessels, heart; returns the hilum offset (mm)."""
    z = b.level
    heart = bump(z, 0.45, 0.76, 0.06)
    inlet = bump(z, -0.2, 0.16, 0.06)
    w = b.cav_a * (0.22 + 0.28 * heart) * rng.uniform(0.9, 1.1)
    mx = b.cx + b.cav_a * 0.06 * heart
    my = b.cav_cy - b.cav_b * 0.1
    below = bump(z, 0.84, 1.2, 0.05)  # under the diaphragm only retrocrural fat is left
    med_lobes, band_r = lobes(rng, 0.05), rng.uniform(16, 24)
    if below < 0.5:
        cv.paint(cv.ellipse(mx, my, w, b.cav_b * 0.75, rng.normal(0, 4), med_lobes), hu["mediastinum"],
                 L["mediastinum"], texture=tex, texture_hu=8)
        cv.paint(cv.capsule(b.cx, b.cav_cy - b.cav_b, b.cx, b.spine_y, band_r), hu["mediastinum"],
                 L["mediastinum"], texture=tex, texture_hu=8)
    else:
        cv.paint(cv.ellipse(b.cx + 8, b.spine_y - b.vert_r - 8, 28, 16), hu["mediastinum"], L["mediastinum"],
                 texture=tex, texture_hu=8)
    # Descending aorta beside the spine, all the way down.
    dr = rng.uniform(10, 13.5)
    dax = b.cx + b.vert_r * rng.uniform(0.9, 1.2) + dr * 0.3 * (1 - bump(z, 0.8, 1.2, 0.1))
    day = b.spine_y - b.vert_r * 0.85 - dr * rng.uniform(1.05, 1.25)
    # Oesophagus, between aorta and airway.
    ox, oy = b.cx + rng.uniform(2, 10), b.spine_y - b.vert_r - rng.uniform(6, 10)
    if z < 0.85:
        cv.paint(cv.ellipse(ox, oy, 7, 5.5, rng.uniform(0, 180)), hu["soft_tissue"], L["oesophagus"])
        if rng.random() < 0.4:
            cv.paint(cv.ellipse(ox, oy, 2, 1.5), hu["air"], L["airway"])
    # Trachea, or the two main bronchi below the carina.
    ty = oy - rng.uniform(14, 20)
    if z < 0.38:
        tr = rng.uniform(8.5, 11)
        cv.paint(cv.ellipse(b.cx, ty, tr + 2, tr + 1.5), hu["cartilage"], L["cartilage"])
        cv.paint(cv.ellipse(b.cx, ty, tr, tr * 0.9), hu["air"], L["airway"])
    elif z < 0.5:
        for side in (-1, 1):
            bx = b.cx + side * rng.uniform(13, 19)
            cv.paint(cv.ellipse(bx, ty, 8, 7.5), hu["cartilage"], L["cartilage"])
            cv.paint(cv.ellipse(bx, ty, 6.3, 5.8), hu["air"], L["airway"])
    squash, n_calc = rng.uniform(0.9, 1.1), rng.poisson(0.8)
    if inlet > 0.2:
        _paint_inlet(cv, rng, hu, b, enh, ty)
    arch = bump(z, 0.2, 0.3, 0.03)
    great = bump(z, 0.3, 0.47, 0.03)
    asc_x, asc_y = b.cx - rng.uniform(8, 18), b.cav_cy - b.cav_b * rng.uniform(0.25, 0.4)
    ar = rng.uniform(13, 17)
    if arch > 0.3:
        cv.paint(cv.capsule(asc_x, asc_y, dax, day - 10, ar * arch), hu["blood"], L["aorta"],
                 enh=enh["systemic_arterial"])
        _calcify(cv, rng, hu, asc_x, asc_y, ar, rng.poisson(1.0))
    if great > 0.1 or (0.25 < z < 0.5):
        gs = max(great, 0.5)
        _vessel(cv, asc_x, asc_y, ar * gs, L["aorta"], hu, enh, "systemic_arterial")
        _calcify(cv, rng, hu, asc_x, asc_y, ar * gs, rng.poisson(0.5))
    if 0.14 < z < 0.5:  # superior vena cava, right of the ascending aorta
        _vessel(cv, asc_x - ar - rng.uniform(8, 14), asc_y + rng.uniform(-4, 8), rng.uniform(8, 11), L["svc"],
                hu, enh, "systemic_venous_inflow", rng.uniform(0.7, 1.0), rng.uniform(0, 180))
    pa = bump(z, 0.35, 0.48, 0.03)
    if pa > 0.1:
        px, py, pr = asc_x + ar + rng.uniform(8, 16), asc_y - rng.uniform(-4, 6), rng.uniform(12, 15)
        _vessel(cv, px, py, pr * pa, L["pulmonary_artery"], hu, enh, "pulmonary_arterial")
        if z < 0.44:  # left and right pulmonary arteries towards the hila
            cv.paint(cv.capsule(px, py, px + rng.uniform(25, 35), py + rng.uniform(20, 32), 9), hu["blood"],
                     L["pulmonary_artery"], enh=enh["pulmonary_arterial"])
            cv.paint(cv.capsule(px, py, asc_x - ar - 20, asc_y + ar + rng.uniform(8, 16), 8.5), hu["blood"],
                     L["pulmonary_artery"], enh=enh["pulmonary_arterial"])
    if heart > 0.05:
        _paint_heart(cv, rng, hu, b, enh, heart, z)
    _vessel(cv, dax, day, dr, L["aorta"], hu, enh, "systemic_arterial", squash)  # in front of the heart
    _calcify(cv, rng, hu, dax, day, dr, n_calc)
    for _ in range(rng.poisson(0.7)):  # calcified lymph node: a dense confounder in both classes
        cv.paint(cv.ellipse(mx + rng.normal(0, w * 0.4), my + rng.normal(0, 15), rng.uniform(1.5, 4),
                            rng.uniform(1.5, 4)), hu["calcification"], L["calcification"])
    return w * rng.uniform(0.75, 0.95)


def _calcify(cv: Canvas, rng: np.random.Generator, hu: dict, x: float, y: float, r: float, n: int) -> None:
    """Wall calcifications of a vessel: dense, non-enhancing, in both classes."""
    for _ in range(int(n)):
        t = rng.uniform(0, 2 * np.pi)
        cv.paint(cv.ellipse(x + r * np.cos(t), y + r * np.sin(t), rng.uniform(1.0, 2.5), rng.uniform(0.8, 1.6),
                            np.rad2deg(t) + 90), hu["calcification"], L["calcification"])


def _paint_inlet(cv: Canvas, rng: np.random.Generator, hu: dict, b: Body, enh: dict, ty: float) -> None:
    """Arch branches, brachiocephalic veins (the injected side bright early) and thyroid."""
    for dx in (-rng.uniform(10, 16), rng.uniform(-3, 3), rng.uniform(11, 18)):
        _vessel(cv, b.cx + dx, ty - rng.uniform(10, 20), rng.uniform(4.5, 7), L["arch_branch"], hu, enh,
                "systemic_arterial")
    injected = rng.choice([-1, 1], p=[0.25, 0.75])  # most injections go into the left arm
    for side in (-1, 1):
        group = "systemic_venous_inflow" if side == injected else "contralateral_vein"
        _vessel(cv, b.cx + side * rng.uniform(18, 30), ty - rng.uniform(22, 32), rng.uniform(6, 9),
                L["brachiocephalic_vein"], hu, enh, group, rng.uniform(0.6, 0.9), rng.uniform(-30, 30))
    if b.level < 0.1:
        for side in (-1, 1):
            cv.paint(cv.ellipse(b.cx + side * rng.uniform(16, 22), ty - 4, rng.uniform(8, 12), rng.uniform(14, 20),
                                side * 20), hu["thyroid"], L["thyroid"], enh=enh["thyroid"])


def _paint_heart(cv: Canvas, rng: np.random.Generator, hu: dict, b: Body, enh: dict, size: float,
                 z: float) -> None:
    """Pericardial fat, myocardium and the four chambers; upper levels show atria, lower ventricles."""
    t = np.clip((z - 0.42) / 0.36, 0, 1)
    hx = b.cx + b.cav_a * rng.uniform(0.05, 0.18)
    hy = b.cav_cy - b.cav_b * rng.uniform(0.05, 0.2)
    ha, hb = b.cav_a * 0.42 * size * rng.uniform(0.9, 1.1), b.cav_b * 0.55 * size * rng.uniform(0.9, 1.1)
    ang = rng.uniform(-45, -20)
    cv.paint(cv.ellipse(hx, hy, ha + 6, hb + 6, ang, lobes(rng, 0.04)), hu["mediastinum"], L["mediastinum"])
    cv.paint(cv.ellipse(hx, hy, ha, hb, ang, lobes(rng, 0.03)), hu["myocardium"], L["myocardium"],
             enh=enh["myocardium"])
    c, s = np.cos(np.deg2rad(ang)), np.sin(np.deg2rad(ang))

    def at(u: float, v: float) -> tuple[float, float]:
        return hx + u * ha * c - v * hb * s, hy + u * ha * s + v * hb * c

    chambers = (  # (label, group, u, v, ru, rv, size factor along the level)
        ("left_ventricle", "systemic_arterial", 0.3, 0.1, 0.42, 0.36, min(1.0, 0.3 + 1.2 * t)),
        ("right_ventricle", "pulmonary_arterial", 0.05, -0.52, 0.55, 0.26, min(1.0, 0.4 + t)),
        ("left_atrium", "systemic_arterial", -0.4, 0.5, 0.36, 0.3, max(0.0, 1.0 - 1.3 * t)),
        ("right_atrium", "pulmonary_arterial", -0.55, -0.2, 0.34, 0.36, max(0.2, 1.0 - 0.6 * t)),
    )
    for name, group, u, v, ru, rv, f in chambers:
        if f < 0.15:
            continue
        x, y = at(u + rng.normal(0, 0.04), v + rng.normal(0, 0.04))
        cv.paint(cv.ellipse(x, y, ru * ha * f, rv * hb * f, ang + rng.normal(0, 8), lobes(rng, 0.04)),
                 hu["blood"], L[name], enh=enh[group])
    for _ in range(rng.poisson(0.8)):  # coronary calcification on the surface
        u = rng.uniform(0, 2 * np.pi)
        x, y = at(np.cos(u), np.sin(u))
        cv.paint(cv.ellipse(x, y, rng.uniform(1, 2.5), rng.uniform(1, 2)), hu["calcification"], L["calcification"])


def paint_abdomen(cv: Canvas, rng: np.random.Generator, hu: dict, tex: np.ndarray, b: Body, enh: dict) -> None:
    """Liver dome, spleen, stomach with an air-fluid level, IVC and portal/hepatic veins."""
    a = bump(b.level, 0.74, 1.2, 0.06)
    if a < 0.05:
        return
    # Abdominal contents push up under the lungs, leaving posterior-lateral lung crescents.
    cv.paint(cv.ellipse(b.cx, b.cav_cy - b.cav_b * 0.1 * a, b.cav_a * (0.55 + 0.4 * a), b.cav_b * (0.5 + 0.42 * a),
                        0, lobes(rng, 0.04)), hu["soft_tissue"], L["soft_tissue"], texture=tex, texture_hu=6)
    lx, ly = b.cx - b.cav_a * rng.uniform(0.15, 0.3), b.cav_cy - b.cav_b * rng.uniform(0.0, 0.15)
    la, lb = b.cav_a * (0.45 + 0.3 * a) * rng.uniform(0.9, 1.1), b.cav_b * (0.5 + 0.35 * a)
    cv.paint(cv.ellipse(lx, ly, la, lb, rng.normal(-10, 6), lobes(rng, 0.05)), hu["liver"], L["liver"],
             enh=enh["liver"], texture=tex, texture_hu=4)
    for _ in range(rng.integers(2, 5)):  # hepatic / portal veins
        t = rng.uniform(0, 2 * np.pi)
        x0, y0 = lx + la * 0.15 * np.cos(t), ly + lb * 0.15 * np.sin(t)
        cv.paint(cv.capsule(x0, y0, x0 + la * 0.5 * np.cos(t), y0 + lb * 0.5 * np.sin(t), rng.uniform(2.5, 5)),
                 hu["blood"], L["liver_vessel"], enh=enh["portal_venous"], within=(L["liver"],))
    _vessel(cv, b.cx - rng.uniform(18, 28), b.spine_y - b.vert_r - rng.uniform(8, 16), rng.uniform(10, 14),
            L["ivc"], hu, enh, "ivc", rng.uniform(0.7, 1.0))
    sx, sy = b.cx + b.cav_a * rng.uniform(0.55, 0.7), b.cav_cy + b.cav_b * rng.uniform(0.2, 0.45)
    cv.paint(cv.ellipse(sx, sy, 42 * a, 28 * a, rng.uniform(30, 60), lobes(rng, 0.05)), hu["spleen"], L["spleen"],
             enh=enh["spleen"])
    gx, gy = b.cx + b.cav_a * rng.uniform(0.25, 0.45), b.cav_cy - b.cav_b * rng.uniform(0.2, 0.4)
    ga, gb = rng.uniform(35, 55) * a, rng.uniform(25, 38) * a
    wall = cv.ellipse(gx, gy, ga + 3, gb + 3, rng.uniform(-20, 20))
    cv.paint(wall, hu["soft_tissue"], L["stomach"])
    lumen = cv.ellipse(gx, gy, ga, gb)
    cv.paint(lumen, hu["fluid"], L["stomach"])
    if lumen is not None:  # supine: gas rises anteriorly (up in the image)
        bb, m = lumen
        cv.paint((bb, m & (cv.y[bb] < gy - gb * rng.uniform(-0.2, 0.6))), hu["air"], L["airway"])
