"""Input normalisation shared by training and inference (recorded in every model card).

The network sees SR frames divided by the 99.9th percentile of the frame being separated (the middle frame of a
TC triplet), after clipping negatives (a Wiener reconstruction is clipped at 0 anyway). The same scale is applied
to all frames of a triplet, so their relative brightness (bleaching, motion) is kept. Training targets are
divided by the same number, so the separated channels add up to the normalised input.
"""

from __future__ import annotations

import numpy as np

INPUT_PERCENTILE = 99.9
NORMALIZATION_CARD = {"kind": "divide-by-percentile", "percentile": INPUT_PERCENTILE, "of": "middle frame", "clip": 0}


def input_scale(frames: np.ndarray, percentile: float = INPUT_PERCENTILE) -> float:
    """The divisor for a ``(T, H, W)`` or ``(H, W)`` input: percentile of the middle frame (1 if it is empty)."""
    a = np.asarray(frames)
    mid = a[a.shape[0] // 2] if a.ndim == 3 else a
    s = float(np.percentile(np.maximum(mid, 0), percentile))
    return s if s > 0 else 1.0


def normalize_input(frames: np.ndarray, percentile: float = INPUT_PERCENTILE) -> tuple[np.ndarray, float]:
    """``(max(frames, 0) / scale, scale)`` as float32."""
    scale = input_scale(frames, percentile)
    return (np.maximum(np.asarray(frames, dtype=np.float32), 0) / np.float32(scale)).astype(np.float32), scale
