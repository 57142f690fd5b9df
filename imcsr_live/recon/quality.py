"""Reconstruction quality tools: Fourier ring correlation (FRC) and the modulation contrast-to-noise map.

FRC compares two independent noisy images of the same specimen ring by ring in Fourier space; the resolution
is the first frequency where the correlation drops below 1/7 (the usual fixed threshold). The resolution gain
of SIM is the FRC cutoff of two SIM reconstructions over that of the two widefield images.

MCNR (after SIMcheck): per pixel and angle, the amplitude of the first Fourier component over the phase steps
(the local pattern modulation) divided by its shot-noise standard deviation. Values below ~3 mean the
pattern cannot be seen there and the reconstruction will be noise-dominated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import InputDataError
from imcsr_live.recon.preprocess import edge_taper

FRC_THRESHOLD = 1.0 / 7.0


@dataclass(frozen=True)
class FrcResult:
    """Ring frequencies (cycles/um), FRC values, and the 1/7 crossing."""

    frequencies_per_um: np.ndarray
    frc: np.ndarray
    cutoff_per_um: float  # first 1/7 crossing (NaN when the curve never drops below)

    @property
    def resolution_um(self) -> float:
        """Resolution as a period, ``1 / cutoff``."""
        return 1.0 / self.cutoff_per_um if self.cutoff_per_um > 0 else float("nan")


def frc(a: np.ndarray, b: np.ndarray, pixel_size_um: float, *, taper_px: int = 16, smooth: int = 3) -> FrcResult:
    """FRC of two images of the same field (same shape, square pixels of ``pixel_size_um``).

    Both images are windowed by the same cos^2 edge taper (an edge jump correlates perfectly between the two
    and would fake resolution along the axes). The curve is smoothed by a ``smooth``-ring running mean before
    the threshold is applied; the crossing is interpolated linearly between rings.
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise InputDataError(f"FRC needs two 2D images of the same shape (got {x.shape} and {y.shape})")
    win = edge_taper(x.shape, taper_px).astype(np.float64)
    fa = np.fft.rfft2((x - x.mean()) * win)
    fb = np.fft.rfft2((y - y.mean()) * win)
    ny, nx = x.shape
    fy = np.fft.fftfreq(ny)[:, None]
    fx = np.fft.rfftfreq(nx)[None, :]
    n = min(ny, nx)
    ring = np.rint(np.hypot(fy, fx) * n).astype(np.int64)
    # rfft stores kx >= 0 only: count the kx = 0 (and Nyquist) column once and the others twice.
    weight = np.full(fx.shape, 2.0)
    weight[0, 0] = 1.0
    if nx % 2 == 0:
        weight[0, -1] = 1.0
    weight = np.broadcast_to(weight, ring.shape)
    n_rings = n // 2
    keep = ring < n_rings
    r = ring[keep]
    num = np.bincount(r, (weight * (fa * np.conj(fb)).real)[keep], minlength=n_rings)
    da = np.bincount(r, (weight * np.abs(fa) ** 2)[keep], minlength=n_rings)
    db = np.bincount(r, (weight * np.abs(fb) ** 2)[keep], minlength=n_rings)
    curve = num / np.sqrt(np.maximum(da * db, 1e-300))
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        padded = np.pad(curve, (smooth // 2, smooth - 1 - smooth // 2), mode="edge")
        curve = np.convolve(padded, kernel, mode="valid")
    freqs = np.arange(n_rings) / (n * pixel_size_um)
    cutoff = float("nan")
    start = 2  # skip the DC rings (mean removed, few samples)
    below = np.nonzero(curve[start:] < FRC_THRESHOLD)[0]
    if below.size:
        i = int(below[0]) + start
        c0, c1 = curve[i - 1], curve[i]
        t = (c0 - FRC_THRESHOLD) / (c0 - c1) if c0 != c1 else 0.0
        cutoff = float(freqs[i - 1] + t * (freqs[i] - freqs[i - 1]))
    return FrcResult(freqs, curve, cutoff)


def mcnr_map(
    raw: np.ndarray,
    n_angles: int,
    n_phases: int,
    *,
    offset_adu: float = 100.0,
    gain_adu_per_e: float = 1.0,
) -> np.ndarray:
    """Modulation contrast-to-noise per angle and pixel, float32 ``(A, Y, X)``.

    ``raw`` is one angle-major stack ``(A*P, Y, X)`` in ADU; ``offset_adu`` and ``gain_adu_per_e`` convert it
    to photoelectrons so that the shot-noise model holds. For P phases of one angle,
    ``c1 = sum_p d_p e^{-i 2 pi p / P}``; the modulation amplitude is ``2 |c1| / P`` and its noise std
    ``sqrt(2 mu / P)`` for a Poisson mean ``mu`` per frame.
    """
    arr = np.asarray(raw, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[0] != n_angles * n_phases:
        raise InputDataError(f"MCNR needs a ({n_angles * n_phases}, Y, X) stack (got {arr.shape})")
    if gain_adu_per_e <= 0:
        raise InputDataError(f"camera gain must be > 0 ADU/e- (got {gain_adu_per_e})")
    e = np.clip((arr - offset_adu) / gain_adu_per_e, 0.0, None).reshape(n_angles, n_phases, *arr.shape[1:])
    steps = np.exp(-2j * np.pi * np.arange(n_phases) / n_phases)
    c1 = np.tensordot(steps, e, axes=(0, 1))  # (A, Y, X)
    mu = e.mean(axis=1)
    amp = 2.0 * np.abs(c1) / n_phases
    noise = np.sqrt(2.0 * np.maximum(mu, 1e-12) / n_phases)
    return (amp / noise).astype(np.float32)
