"""Residual registration between colour channels: the shift of one image against another, to a tenth of a pixel.

Cross-correlation of the mean-free, Hann-windowed images (FFT), the peak refined by a parabola through its
neighbours on each axis. The peak's height as a Pearson correlation says how much the two images share: with bead
samples (every bead in every colour) it is high and the shift is the chromatic registration error; with cells
whose structures differ it is low and the shift is only a rough indication.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest shift searched, in pixels (SR grid: 8 x 31 nm = 250 nm, far more than a registered rig's residual).
MAX_SHIFT_PX = 8
#: Lowest correlation peak at which a shift counts as measured (below it the images share too little).
MIN_PEAK = 0.3


@dataclass(frozen=True)
class Shift:
    """``moving`` is displaced by ``(dy, dx)`` pixels against ``reference``; ``peak``: correlation at that shift."""

    dy: float
    dx: float
    peak: float

    def reliable(self, max_shift: int = MAX_SHIFT_PX) -> bool:
        """A clear peak inside the searched window (a peak on its edge means no shared structure, not a shift)."""
        inside = max(abs(self.dy), abs(self.dx)) < max_shift - 0.5
        return bool(np.isfinite(self.peak) and self.peak >= MIN_PEAK and inside)


def _parabola(minus: float, centre: float, plus: float) -> float:
    den = minus - 2.0 * centre + plus
    return 0.0 if den >= 0 else float(np.clip(0.5 * (minus - plus) / den, -0.5, 0.5))


def measure_shift(reference: np.ndarray, moving: np.ndarray, max_shift: int = MAX_SHIFT_PX) -> Shift:
    """Shift of ``moving`` against ``reference`` (same 2D shape) by FFT cross-correlation, sub-pixel, searched
    within ``max_shift`` pixels (a larger shift is not a registration error but unrelated content)."""
    ref = np.asarray(reference, dtype=np.float64)
    mov = np.asarray(moving, dtype=np.float64)
    if ref.shape != mov.shape or ref.ndim != 2:
        raise ValueError(f"images must be 2D and of one shape, got {ref.shape} and {mov.shape}")
    window = np.outer(np.hanning(ref.shape[0]), np.hanning(ref.shape[1]))
    a = (ref - ref.mean()) * window
    b = (mov - mov.mean()) * window
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if norm == 0:
        return Shift(0.0, 0.0, float("nan"))
    corr = np.fft.irfft2(np.conj(np.fft.rfft2(a)) * np.fft.rfft2(b), s=ref.shape) / norm
    ny, ny_x = corr.shape
    near = np.full(corr.shape, -np.inf)
    rows = np.r_[0 : max_shift + 1, ny - max_shift : ny] % ny
    cols = np.r_[0 : max_shift + 1, ny_x - max_shift : ny_x] % ny_x
    near[np.ix_(rows, cols)] = corr[np.ix_(rows, cols)]
    iy, ix = np.unravel_index(int(np.argmax(near)), corr.shape)
    nx = ny_x
    fy = _parabola(corr[(iy - 1) % ny, ix], corr[iy, ix], corr[(iy + 1) % ny, ix])
    fx = _parabola(corr[iy, (ix - 1) % nx], corr[iy, ix], corr[iy, (ix + 1) % nx])
    dy = (iy + ny // 2) % ny - ny // 2 + fy
    dx = (ix + nx // 2) % nx - nx // 2 + fx
    return Shift(float(dy), float(dx), float(corr[iy, ix]))


def channel_shifts(images: np.ndarray) -> list[Shift]:
    """Per channel of ``(C, H, W)``: its shift against the sum of the other channels (leave-one-out)."""
    stack = np.asarray(images, dtype=np.float64)
    total = stack.sum(axis=0)
    return [measure_shift(total - stack[c], stack[c]) for c in range(stack.shape[0])]
