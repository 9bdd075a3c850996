"""Super-sampled drawing canvas for the phantom.

The phantom is painted at ``supersample`` times the output resolution on a smoothly warped
coordinate grid (millimetres), then averaged down, so edges get realistic partial-volume values.
Each shape is evaluated only inside its bounding box: painting a few hundred structures at
1024×1024 stays in the tens of milliseconds.

Three planes are painted together (painter's algorithm, later shapes overwrite earlier ones):
``base`` (HU without contrast), ``enh`` (HU added by contrast in the chosen phase) and ``label``
(structure id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, int], sigma_px: float, *, coarse: int = 4
) -> np.ndarray:
    """Zero-mean, unit-SD smooth random field (Gaussian-filtered white noise).

    The noise is drawn on a grid ``coarse`` times smaller and repeated up (the field varies over
    many coarse cells, so the blocks are invisible), which keeps it cheap at 1024².
    """
    small = (-(-shape[0] // coarse), -(-shape[1] // coarse))
    f = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), sigma_px / coarse)
    f = np.repeat(np.repeat(f, coarse, axis=0), coarse, axis=1)[: shape[0], : shape[1]]
    f -= f.mean()
    return f / (f.std() + 1e-8)


@dataclass
class Canvas:
    """Painting surface in millimetres on a warped, super-sampled grid.

    Parameters
    ----------
    size : int
        Output side length in pixels.
    pixel_mm : float
        Output pixel spacing in millimetres.
    supersample : int
        Sub-pixels per output pixel along each axis.
    rng : numpy.random.Generator
        Source of the warp field.
    warp_mm : float
        Amplitude (SD) of the smooth displacement applied to every shape, in millimetres.
    """

    size: int
    pixel_mm: float
    supersample: int
    rng: np.random.Generator
    warp_mm: float = 4.0
    base: np.ndarray = field(init=False)
    enh: np.ndarray = field(init=False)
    label: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n = self.size * self.supersample
        self.step = self.pixel_mm / self.supersample
        coords = (np.arange(n, dtype=np.float32) - (n - 1) / 2) * self.step
        self.y, self.x = np.meshgrid(coords, coords, indexing="ij")
        if self.warp_mm > 0:
            corr = 60.0 / self.step  # displacement correlated over ~6 cm
            self.x = self.x + self.warp_mm * smooth_field(self.rng, (n, n), corr, coarse=8)
            self.y = self.y + self.warp_mm * smooth_field(self.rng, (n, n), corr, coarse=8)
        self.base = np.full((n, n), -1000.0, dtype=np.float32)
        self.enh = np.zeros((n, n), dtype=np.float32)
        self.label = np.zeros((n, n), dtype=np.int16)
        self.n = n

    # -- geometry -------------------------------------------------------------------------
    def _bbox(self, cx: float, cy: float, rx: float, ry: float) -> tuple[slice, slice] | None:
        half = (self.n - 1) / 2
        pad = 3 * self.warp_mm + 2 * self.step
        c0 = int(np.floor((cx - rx - pad) / self.step + half))
        c1 = int(np.ceil((cx + rx + pad) / self.step + half)) + 1
        r0 = int(np.floor((cy - ry - pad) / self.step + half))
        r1 = int(np.ceil((cy + ry + pad) / self.step + half)) + 1
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, self.n), min(r1, self.n)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def ellipse(
        self,
        cx: float,
        cy: float,
        a: float,
        b: float,
        angle_deg: float = 0.0,
        lobes: np.ndarray | None = None,
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Inside-test of a (lobulated) rotated ellipse; returns (bbox, bool mask) or None.

        ``lobes`` is an array of rows (k, amplitude, phase): the radius is scaled by
        ``1 + sum(amplitude * cos(k * theta + phase))``.
        """
        if a <= 0 or b <= 0:
            return None
        extra = 1.0 + (np.abs(lobes[:, 1]).sum() if lobes is not None and len(lobes) else 0.0)
        r = max(a, b) * extra
        bb = self._bbox(cx, cy, r, r)
        if bb is None:
            return None
        t = np.deg2rad(angle_deg)
        dx, dy = self.x[bb] - np.float32(cx), self.y[bb] - np.float32(cy)
        u = (dx * np.float32(np.cos(t) / a) + dy * np.float32(np.sin(t) / a))
        v = (dy * np.float32(np.cos(t) / b) - dx * np.float32(np.sin(t) / b))
        rho2 = u * u + v * v
        if lobes is None or not len(lobes):
            return bb, rho2 <= 1.0
        # cos(k*theta + phase) = Re(e^{i*theta})^k * e^{i*phase}, by complex powers: no trig on the grid.
        e = (u + 1j * v).astype(np.complex64) / np.sqrt(rho2 + np.float32(1e-12))
        lim = np.ones_like(rho2)
        power = e.copy()
        k_done = 1
        for k, amp, ph in sorted(lobes.tolist()):
            while k_done < int(k):
                power *= e
                k_done += 1
            lim += (power * np.complex64(amp * np.exp(1j * ph))).real
        return bb, rho2 <= lim * lim

    def capsule(
        self, x0: float, y0: float, x1: float, y1: float, r: float
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Inside-test of a segment from (x0, y0) to (x1, y1) thickened by radius ``r``."""
        if r <= 0:
            return None
        bb = self._bbox((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2 + r, abs(y1 - y0) / 2 + r)
        if bb is None:
            return None
        px, py = self.x[bb] - x0, self.y[bb] - y0
        vx, vy = x1 - x0, y1 - y0
        ll = vx * vx + vy * vy
        tt = np.clip((px * vx + py * vy) / ll, 0.0, 1.0) if ll > 0 else np.zeros_like(px)
        dx, dy = px - tt * vx, py - tt * vy
        return bb, dx * dx + dy * dy <= r * r

    # -- painting -------------------------------------------------------------------------
    def paint(
        self,
        shape: tuple[tuple[slice, slice], np.ndarray] | None,
        hu: float,
        label: int,
        enh: float = 0.0,
        texture: np.ndarray | None = None,
        texture_hu: float = 0.0,
        within: tuple[int, ...] | None = None,
    ) -> None:
        """Set base HU, enhancement and label inside ``shape`` (painter's algorithm).

        ``within`` restricts painting to pixels whose current label is one of those ids
        (vessels drawn only inside the lung, say).
        """
        if shape is None:
            return
        bb, m = shape
        if within is not None:
            m = m & np.isin(self.label[bb], within)
        values = np.full(m.shape, hu, dtype=np.float32)
        if texture is not None and texture_hu:
            values += texture_hu * texture[bb]
        self.base[bb][m] = values[m]
        self.enh[bb][m] = enh
        self.label[bb][m] = label

    def outside(self, shape: tuple[tuple[slice, slice], np.ndarray] | None) -> np.ndarray:
        """Full-size boolean array that is True outside ``shape``."""
        out = np.ones((self.n, self.n), dtype=bool)
        if shape is not None:
            bb, m = shape
            out[bb] = ~m
        return out

    # -- output ---------------------------------------------------------------------------
    def downsample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Average ``base`` and ``enh`` down to the output grid; majority vote for ``label``."""
        s, n = self.supersample, self.size

        def mean(a: np.ndarray) -> np.ndarray:
            return a.reshape(n, s, n, s).mean(axis=(1, 3), dtype=np.float32)

        blocks = self.label.reshape(n, s, n, s).transpose(0, 2, 1, 3).reshape(n, n, s * s)
        votes = (blocks[..., :, None] == blocks[..., None, :]).sum(-1)
        lab = np.take_along_axis(blocks, votes.argmax(-1)[..., None], -1)[..., 0]
        return mean(self.base), mean(self.enh), lab
