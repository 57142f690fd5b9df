"""Residual registration between colours: known sub-pixel shifts are found; unrelated images are not a shift."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, shift

from imcsr_live.recon.registration import MAX_SHIFT_PX, channel_shifts, measure_shift


def beads(seed: int, n: int = 40, size: int = 128) -> np.ndarray:
    """Blurred point sources: every colour sees the same beads."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size))
    img[tuple(rng.integers(16, size - 16, (2, n)))] = rng.uniform(0.5, 1.0, n)
    return gaussian_filter(img, 2.0)


def test_known_subpixel_shift_is_measured_to_a_tenth_of_a_pixel() -> None:
    ref = beads(0)
    found = measure_shift(ref, shift(ref, (1.3, -2.6), order=3))
    assert abs(found.dy - 1.3) < 0.1 and abs(found.dx + 2.6) < 0.1 and found.peak > 0.9 and found.reliable()


def test_each_channel_against_the_others_finds_its_own_shift() -> None:
    ref = beads(1)
    channels = np.stack([ref, shift(ref, (0.0, 1.5), order=3), shift(ref, (-1.0, 0.0), order=3)])
    found = channel_shifts(channels)
    assert abs(found[1].dx - 1.5) < 0.2  # both others sit at x = 0
    assert abs(found[2].dy + 1.0) < 0.2  # both others sit at y = 0
    assert all(f.reliable() for f in found)


def test_unrelated_images_are_not_a_reliable_shift() -> None:
    found = measure_shift(beads(2), beads(3))
    assert max(abs(found.dy), abs(found.dx)) <= MAX_SHIFT_PX + 0.5
    assert not found.reliable()
