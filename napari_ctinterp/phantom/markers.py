"""Planted markers: a small feature with an exact mask, whose use by a model can be known.

The ground truth of issue 31's shortcut benchmark. Three kinds, each a thing a real CT carries
and a model may learn instead of the anatomy:

- ``"letter"``: a radio-opaque lead side marker ("L" or "R", 9–15 mm tall, 2,000–3,071 HU) lying
  on the skin of the anterior or lateral body wall;
- ``"tube"``: the high-density line of a tube or lead wire (2–3.5 mm wide, 35–90 mm long,
  300–900 HU) lying on the skin;
- ``"text"``: a burned-in text block (3–6 characters, 2.5–4 % of the field of view tall, 1,500–3,071
  HU) in a corner of the image, outside the body.

Position, size, angle and HU are drawn from the slice's seed (its own random stream: a slice with a
marker has the same anatomy and noise as the slice without it; only the marker's pixels differ).
Glyphs are 5 × 7 bitmaps drawn here (no font files: nothing is read from disk).

``inpaint`` removes a marker the way a person would remove it from an image: the marked pixels
(and a 1-pixel rim) take the values of the surrounding tissue (scikit-image's biharmonic
inpainting on a window around the marker) with the slice's noise level added back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: The marker kinds, in the order ``marker=True`` draws from.
MARKER_KINDS: tuple[str, ...] = ("letter", "tube", "text")

#: 5 × 7 glyphs (rows top to bottom, "#" = on) of the characters markers are written with.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "C": (".####", "#....", "#....", "#....", "#....", "#....", ".####"),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
}
_TEXT_CHARS = "ACT1250"


@dataclass(frozen=True)
class Marker:
    """A planted marker: where it is and what it is made of.

    Attributes
    ----------
    kind : str
        One of ``MARKER_KINDS``.
    mask : numpy.ndarray
        bool (H, W): the marker's exact pixels.
    hu : float
        Its attenuation (HU) before the slice's noise.
    centre : tuple of float
        (row, column) of its centre of mass, in pixels.
    size_mm : float
        Its largest extent (letter and text: height; tube: length).
    """

    kind: str
    mask: np.ndarray
    hu: float
    centre: tuple[float, float]
    size_mm: float

    def record(self) -> dict:
        """The marker's parameters for a slice's ``meta`` (JSON-ready)."""
        return {"kind": self.kind, "hu": round(self.hu, 1), "centre_px": [round(c, 1) for c in self.centre],
                "size_mm": round(self.size_mm, 2), "pixels": int(self.mask.sum())}


def marker_kind(marker: bool | str, rng: np.random.Generator) -> str:
    """The kind ``marker`` asks for: a kind's name, or (``True``) one drawn from ``rng``."""
    if marker is True:
        return str(rng.choice(MARKER_KINDS))
    if isinstance(marker, str) and marker in MARKER_KINDS:
        return marker
    raise ValueError(f"marker must be True (a kind drawn from the seed) or one of {list(MARKER_KINDS)}, "
                     f"got {marker!r}")


def marker_rng(seed: int) -> np.random.Generator:
    """The marker's own random stream of a slice's seed (the anatomy's streams are untouched)."""
    return np.random.default_rng([int(seed), 0x6D61726B])


def _text_mask(text: str, height_px: float, shape: tuple[int, int], top_left: tuple[float, float],
               angle_deg: float = 0.0) -> np.ndarray:
    """The pixels of ``text`` in 5 × 7 glyphs ``height_px`` tall, its top-left corner at
    ``top_left`` (row, col), turned by ``angle_deg`` about that corner."""
    bitmap = np.concatenate([np.concatenate([np.array([[c == "#" for c in row] for row in _GLYPHS[ch]]),
                                             np.zeros((7, 1), bool)], 1) for ch in text], 1)[:, :-1]
    scale = height_px / 7.0
    rows, cols = np.nonzero(bitmap)
    # sub-sample each glyph cell so the scaled glyph has no holes
    k = max(2, int(np.ceil(scale * 2)))
    off = (np.arange(k) + 0.5) / k
    r = (rows[:, None, None] + off[None, :, None]) * scale
    c = (cols[:, None, None] + off[None, None, :]) * scale
    r, c = np.broadcast_arrays(r, c)
    a = np.deg2rad(angle_deg)
    rr = top_left[0] + r * np.cos(a) - c * np.sin(a)
    cc = top_left[1] + r * np.sin(a) + c * np.cos(a)
    out = np.zeros(shape, bool)
    ri, ci = np.floor(rr).astype(int).ravel(), np.floor(cc).astype(int).ravel()
    keep = (ri >= 0) & (ri < shape[0]) & (ci >= 0) & (ci < shape[1])
    out[ri[keep], ci[keep]] = True
    return out


def _skin_point(body: np.ndarray, rng: np.random.Generator, anterior: bool) -> tuple[np.ndarray, np.ndarray]:
    """A point just outside the skin and the outward normal there, on the anterior half (rows
    above the body's centre) or the lateral thirds."""
    edge = body & ~ndi.binary_erosion(body)
    rows, cols = np.nonzero(edge)
    cr, cc = np.mean(np.nonzero(body), axis=1)
    ang = np.arctan2(rows - cr, cols - cc)  # 0 = right of image, -pi/2 = anterior (top)
    pick = (ang < -np.pi / 4) & (ang > -3 * np.pi / 4) if anterior else (np.abs(np.cos(ang)) > 0.85)
    idx = np.flatnonzero(pick) if pick.any() else np.arange(len(rows))
    i = int(rng.choice(idx))
    normal = np.array([rows[i] - cr, cols[i] - cc], float)
    normal /= max(np.linalg.norm(normal), 1e-9)
    return np.array([rows[i], cols[i]], float), normal


def draw_marker(kind: str, rng: np.random.Generator, labels: np.ndarray, pixel_mm: float) -> Marker:
    """Draw one marker of ``kind`` for a slice with structure ids ``labels`` (0 = air; the body is
    everything but air and the table) and pixel size ``pixel_mm``."""
    from .tissues import LABELS

    shape = labels.shape
    body = (labels != LABELS["background"]) & (labels != LABELS["table"])
    body = ndi.binary_fill_holes(body)
    if kind == "letter":
        height_mm = float(rng.uniform(9.0, 15.0))
        h = height_mm / pixel_mm
        letter, anterior = str(rng.choice(["L", "R"])), bool(rng.random() < 0.6)
        whole = int(_text_mask(letter, h, (4 * int(h) + 4,) * 2, (h, h)).sum())
        best = np.zeros(shape, bool)
        for attempt in range(48):  # a place where the whole letter lies on the skin inside the image
            point, normal = _skin_point(body, rng, anterior=anterior if attempt < 24 else not anterior)
            centre = point + normal * (0.62 * h + 1.0)  # lying on the skin, outside it
            mask = _text_mask(letter, h, shape, (centre[0] - 0.5 * h, centre[1] - 0.36 * h)) & ~body
            if mask.sum() > best.sum():
                best = mask
            if mask.sum() >= 0.9 * whole:
                break
        mask = best
        if mask.sum() < 0.5 * whole:  # a body filling the view: the letter goes in a corner, as on a scout
            corner = (0.03 * shape[0], 0.03 * shape[1])
            mask = _text_mask(letter, h, shape, corner) & ~body
        hu = float(rng.uniform(2000.0, 3071.0))
    elif kind == "tube":
        length_mm = float(rng.uniform(35.0, 90.0))
        width_mm = float(rng.uniform(2.0, 3.5))
        point, normal = _skin_point(body, rng, anterior=True)
        tangent = np.array([-normal[1], normal[0]])
        centre = point + normal * (0.5 * width_mm / pixel_mm + 1.0)
        t = np.linspace(-0.5, 0.5, int(4 * length_mm / pixel_mm) + 2) * length_mm / pixel_mm
        bend = float(rng.uniform(-0.15, 0.15))  # a tube lies in a gentle curve
        pts = centre[None] + t[:, None] * tangent[None] + (bend * t ** 2 / max(abs(t).max(), 1))[:, None] * normal
        mask = np.zeros(shape, bool)
        ri, ci = np.round(pts).astype(int).T
        keep = (ri >= 0) & (ri < shape[0]) & (ci >= 0) & (ci < shape[1])
        mask[ri[keep], ci[keep]] = True
        mask = ndi.binary_dilation(mask, iterations=max(1, int(round(0.5 * width_mm / pixel_mm))))
        mask &= ~body
        hu = float(rng.uniform(300.0, 900.0))
        height_mm = length_mm
    elif kind == "text":
        n_chars = int(rng.integers(3, 7))
        text = "".join(rng.choice(list(_TEXT_CHARS), n_chars))
        h = float(rng.uniform(0.025, 0.04)) * shape[0]
        width = h * (6 * n_chars - 1) / 7
        margin = 0.03 * shape[0]
        top = margin if rng.random() < 0.5 else shape[0] - margin - h
        left = margin if rng.random() < 0.5 else shape[1] - margin - width
        mask = _text_mask(text, h, shape, (top, left)) & ~body
        hu = float(rng.uniform(1500.0, 3071.0))
        height_mm = h * pixel_mm
    else:
        raise ValueError(f"unknown marker kind {kind!r}; kinds: {list(MARKER_KINDS)}")
    if not mask.any():  # a body filling the whole field of view leaves no room outside it
        raise ValueError(f"no room for a {kind} marker outside the body in this {shape} image")
    c = ndi.center_of_mass(mask)
    return Marker(kind=kind, mask=mask, hu=hu, centre=(float(c[0]), float(c[1])), size_mm=float(height_mm))


def plant(hu: np.ndarray, labels: np.ndarray, pixel_mm: float, marker: bool | str, seed: int,
          air_hu: float = -1000.0) -> tuple[np.ndarray, np.ndarray, Marker]:
    """``hu`` and ``labels`` with a marker drawn from ``seed``'s marker stream: its pixels (all
    in air) take the marker's HU plus the noise the slice has there (``hu − air_hu``), clipped at
    3,071 HU; ``labels`` marks them ``LABELS["marker"]``. Returns (hu, labels, the Marker)."""
    from .tissues import LABELS

    rng = marker_rng(seed)
    planted = draw_marker(marker_kind(marker, rng), rng, labels, pixel_mm)
    noise = np.asarray(hu, np.float32) - np.float32(air_hu)
    out = np.where(planted.mask, np.minimum(np.float32(planted.hu) + noise, np.float32(3071.0)), hu)
    return out.astype(np.float32), np.where(planted.mask, LABELS["marker"], labels).astype(labels.dtype), planted


def inpaint(hu: np.ndarray, mask: np.ndarray, *, noise_sd: float = 0.0, seed: int = 0) -> np.ndarray:
    """``hu`` with the pixels of ``mask`` (and a 1-pixel rim, where the marker's partial volume
    lies) replaced by the surrounding tissue: scikit-image's biharmonic inpainting on a window
    around the mask, plus Gaussian noise of ``noise_sd`` HU (the slice's own level) so the patch
    does not read as smooth. Pixels away from the marker are unchanged."""
    from skimage.restoration import inpaint_biharmonic

    hole = ndi.binary_dilation(mask, iterations=1)
    out = np.array(hu, np.float32, copy=True)
    if not hole.any():
        return out
    rows, cols = np.nonzero(hole)
    pad = 6
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, hu.shape[0])
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, hu.shape[1])
    window = out[r0:r1, c0:c1].astype(np.float64)
    filled = inpaint_biharmonic(window, hole[r0:r1, c0:c1])
    if noise_sd > 0:
        filled = filled + np.random.default_rng(seed).normal(0.0, noise_sd, filled.shape)
    win_hole = hole[r0:r1, c0:c1]
    out[r0:r1, c0:c1][win_hole] = filled[win_hole].astype(np.float32)
    return out
