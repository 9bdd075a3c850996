"""CT-like noise for the phantom, independent of contrast so matched pairs differ only by contrast.

Two modes:

``"fast"``
    White noise shaped in Fourier space by a filtered-back-projection noise power spectrum
    (ramp × Gaussian apodisation, the apodisation width playing the reconstruction kernel) —
    a few milliseconds at 512².
``"fbp"``
    Poisson-like noise in projection space, weighted by each ray's attenuation through the
    *native* (no-contrast) anatomy, reconstructed with ``skimage.transform.iradon``: streaks
    along dense paths (shoulders, spine) as on a real scanner. Slower (see docs/phantom.md).
"""

from __future__ import annotations

import numpy as np
from skimage.transform import iradon, radon


def fast_noise(rng: np.random.Generator, size: int, sd: float, cutoff: float) -> np.ndarray:
    """Stationary noise with an FBP-like spectrum; ``cutoff`` in cycles/pixel (0.2 soft … 0.6 sharp)."""
    white = rng.standard_normal((size, size)).astype(np.float32)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    nps = f * np.exp(-((f / cutoff) ** 2))
    shaped = np.fft.irfft2(np.fft.rfft2(white) * nps, s=(size, size)).astype(np.float32)
    return shaped * (sd / (shaped.std() + 1e-12))


def fbp_noise(rng: np.random.Generator, native_hu: np.ndarray, sd: float, pixel_mm: float,
              *, n_angles: int = 180, kernel: str = "shepp-logan") -> np.ndarray:
    """Projection-domain noise reconstructed by FBP; SD scaled to ``sd`` inside the body."""
    size = native_hu.shape[0]
    mu = np.clip((native_hu + 1000.0) / 1000.0, 0, None) * 0.019 * pixel_mm  # water ≈ 0.019 /mm
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    line_integrals = radon(mu, theta=theta, circle=False)
    counts = 2e5 * np.exp(-line_integrals)
    sino_noise = rng.standard_normal(line_integrals.shape) / np.sqrt(counts)
    img = iradon(sino_noise, theta=theta, circle=False, filter_name=kernel, output_size=size)
    img = img.astype(np.float32)
    body = native_hu > -500
    ref = img[body].std() if body.any() else img.std()
    return img * (sd / (ref + 1e-12))
