"""Artifact checks on reconstructed frames: residual pattern peaks in the output spectrum.

A wrong phase, k0 or modulation leaves part of a band unseparated; it shows up as sharp peaks at +-k0 (and
+-2 k0) in the SR spectrum, i.e. stripes in the image. The check compares the spectrum magnitude at those
points with the median magnitude on a small ring around them (the local floor of a smooth specimen
spectrum). Magnitudes, not powers, so a single Rayleigh-distributed bin rarely exceeds 3x by chance.
"""

from __future__ import annotations

import numpy as np

from imcsr_live.recon.params import SimParameters


def residual_peak_ratios(
    sr: np.ndarray, params: SimParameters, raw_pixel_size_um: float, *, ring_px: tuple[float, float] = (4.0, 10.0)
) -> np.ndarray:
    """Peak / local-floor ratio of ``|FFT(sr)|`` at ``+-k0`` and ``+-2 k0`` of every angle: ``(A, 4)``.

    Columns: +k0, -k0, +2k0, -2k0. The peak is the largest of the 2 x 2 bins around the (sub-pixel) position.
    """
    img = np.asarray(sr, dtype=np.float64)
    ny, nx = img.shape
    win = np.outer(np.hanning(ny), np.hanning(nx))  # no edge jump in the spectrum
    mag = np.abs(np.fft.fft2((img - img.mean()) * win))
    sr_px = raw_pixel_size_um / 2.0
    fy = np.fft.fftfreq(ny) * ny
    fx = np.fft.fftfreq(nx) * nx
    out = np.zeros((params.n_angles, 4))
    for a in range(params.n_angles):
        k_px = np.asarray(params.k0_cycles_per_um[a]) * np.array([ny, nx]) * sr_px
        for j, mult in enumerate((1.0, -1.0, 2.0, -2.0)):
            cy, cx = mult * k_px
            dist = np.hypot(fy[:, None] - cy, fx[None, :] - cx)
            # Work on a small neighbourhood only (wrap-around aware through the FFT index arrays).
            rows = np.nonzero(np.abs(fy - cy) <= ring_px[1] + 1)[0]
            cols = np.nonzero(np.abs(fx - cx) <= ring_px[1] + 1)[0]
            d = dist[np.ix_(rows, cols)]
            m = mag[np.ix_(rows, cols)]
            ring = m[(d >= ring_px[0]) & (d <= ring_px[1])]
            peak = m[d <= 1.0].max() if np.any(d <= 1.0) else 0.0
            out[a, j] = peak / max(float(np.median(ring)), 1e-30) if ring.size else np.nan
    return out
