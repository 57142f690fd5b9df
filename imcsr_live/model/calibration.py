"""Per-channel calibration of predicted uncertainty (the muSplit / MicroSplit recipe, docs/method.md#uncertainty).

The network's log-variance head gives a predicted standard deviation per pixel. On validation data, pixels are
binned by predicted std; in each bin the observed RMSE of the prediction is measured, and a line
``rmse = scale * std + offset`` is fitted (count-weighted least squares). The calibrated std is that line applied
to the prediction. A well-calibrated head gives scale ~1, offset ~0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelCalibration:
    """``calibrated_std = max(scale * predicted_std + offset, 0)`` for one channel."""

    scale: float
    offset: float

    def apply(self, std: np.ndarray) -> np.ndarray:
        return np.maximum(self.scale * np.asarray(std, dtype=np.float32) + self.offset, 0.0).astype(np.float32)


def fit_calibration(pred_std: np.ndarray, abs_error: np.ndarray, bins: int = 20) -> ChannelCalibration:
    """Fit one channel's calibration from predicted stds and absolute errors (any equal shapes).

    Bins are quantiles of the predicted std, so every bin holds about the same number of pixels.
    """
    s = np.asarray(pred_std, dtype=np.float64).ravel()
    e = np.asarray(abs_error, dtype=np.float64).ravel()
    if s.shape != e.shape or s.size == 0:
        raise ValueError(f"need equal, non-empty arrays of predicted std and error (got {s.shape}, {e.shape})")
    edges = np.unique(np.quantile(s, np.linspace(0.0, 1.0, bins + 1)))
    which = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, ys, ws = [], [], []
    for b in range(max(len(edges) - 1, 1)):
        m = which == b
        n = int(m.sum())
        if n:
            xs.append(s[m].mean())
            ys.append(np.sqrt(np.mean(e[m] ** 2)))
            ws.append(n)
    x, y, w = np.array(xs), np.array(ys), np.array(ws, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        # Degenerate (constant predicted std): pure scale that matches the overall RMSE.
        mean_std = float(np.average(x, weights=w)) if len(x) else 0.0
        rmse = float(np.sqrt(np.mean(e**2)))
        return ChannelCalibration(rmse / mean_std if mean_std > 0 else 1.0, 0.0)
    a = np.stack([x, np.ones_like(x)], axis=1) * np.sqrt(w)[:, None]
    scale, offset = np.linalg.lstsq(a, y * np.sqrt(w), rcond=None)[0]
    return ChannelCalibration(float(scale), float(offset))


def calibration_error(pred_std: np.ndarray, abs_error: np.ndarray, bins: int = 20) -> float:
    """Count-weighted mean |RMSE - mean std| over quantile bins (lower is better calibrated)."""
    s = np.asarray(pred_std, dtype=np.float64).ravel()
    e = np.asarray(abs_error, dtype=np.float64).ravel()
    order = np.argsort(s)
    total = 0.0
    for chunk in np.array_split(order, bins):
        if chunk.size:
            total += chunk.size * abs(np.sqrt(np.mean(e[chunk] ** 2)) - s[chunk].mean())
    return total / s.size
