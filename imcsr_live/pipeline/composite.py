"""Display maths in numpy: percentile contrast, gamma, additive colour composite.

The live window does not use these per frame (it colours on the GPU/Qt side: ``imcsr_live.ui.overlay_view``);
they make RGB composites for figures and reports and serve as a reference in tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def hex_to_rgb(colour: str) -> np.ndarray:
    """``"#00FF00"`` -> float32 [0, 1, 0]."""
    value = int(colour.lstrip("#"), 16)
    return np.array([(value >> 16) & 255, (value >> 8) & 255, value & 255], dtype=np.float32) / 255.0


def autoscale(image: np.ndarray, percentiles: tuple[float, float] = (0.1, 99.9), gamma: float = 1.0) -> np.ndarray:
    """Map the percentile range to [0, 1] (clipped), then apply gamma. float32 output."""
    low, high = np.percentile(image, percentiles)
    span = max(float(high - low), 1e-12)
    scaled = np.clip((image.astype(np.float32) - np.float32(low)) / np.float32(span), 0.0, 1.0)
    return scaled if gamma == 1.0 else scaled ** np.float32(gamma)


def additive_composite(
    channels: np.ndarray,
    colours: Sequence[str],
    percentiles: tuple[float, float] = (0.1, 99.9),
    gamma: float = 0.8,
    visible: Sequence[bool] | None = None,
) -> np.ndarray:
    """(C, H, W) intensities -> (H, W, 3) uint8: each channel autoscaled, tinted, and the tints added (clipped)."""
    if channels.ndim != 3 or channels.shape[0] != len(colours):
        raise ValueError(f"need (C, H, W) with C = {len(colours)} colours, got {channels.shape}")
    rgb = np.zeros((*channels.shape[1:], 3), dtype=np.float32)
    for index, (channel, colour) in enumerate(zip(channels, colours, strict=True)):
        if visible is not None and not visible[index]:
            continue
        rgb += autoscale(channel, percentiles, gamma)[..., None] * hex_to_rgb(colour)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def grey(image: np.ndarray, percentiles: tuple[float, float] = (0.1, 99.9), gamma: float = 1.0) -> np.ndarray:
    """(H, W) -> (H, W) uint8 autoscaled grey image."""
    return (autoscale(image, percentiles, gamma) * 255.0 + 0.5).astype(np.uint8)
