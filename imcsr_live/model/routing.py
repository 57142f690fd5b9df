"""Signal routing: where each structure's signal ends up among the separated channels (pure numpy).

A median PCC per channel says *that* a separation fails on some cells, not *how*. The routing says how: each
output channel ``k`` is fitted by least squares as ``out_k ~ sum_j G[k, j] * truth_j + b_k`` over the frame, so
``G[k, j]`` is how much of structure ``j`` channel ``k`` carries. Both sides are first blurred to a common
resolution (a Gaussian of :data:`BLUR_SIGMA_PX` SR pixels, about the resolution of the simulated SIM), so that a
channel that is merely smoother than the sharp truth is not read as losing signal. Normalising each column over the
channels (negative gains count as 0) gives the *shares*: of structure ``j``'s signal, the fraction found in each
channel. A perfect separation has the identity; the input copied into every channel has ``1 / S`` everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Common resolution (Gaussian sigma, SR pixels) both sides are blurred to before the fit.
BLUR_SIGMA_PX = 2.0


def routing_gains(outputs: np.ndarray, truth: np.ndarray, sigma_px: float = BLUR_SIGMA_PX) -> np.ndarray:
    """Least-squares gains ``(C, S)`` of ``C`` output channels ``(C, H, W)`` on ``S`` truth images ``(S, H, W)``.

    A structure absent from the frame (a constant truth image) has NaN in its column.
    """
    out = np.asarray(outputs, dtype=np.float64)
    gt = np.asarray(truth, dtype=np.float64)
    if out.ndim != 3 or gt.ndim != 3 or out.shape[1:] != gt.shape[1:]:
        raise ValueError(f"outputs {out.shape} and truth {gt.shape} must be (C, H, W) and (S, H, W) of one frame size")
    if sigma_px > 0:
        out = np.stack([ndimage.gaussian_filter(c, sigma_px) for c in out])
        gt = np.stack([ndimage.gaussian_filter(t, sigma_px) for t in gt])
    present = np.array([t.max() > t.min() for t in gt])
    gains = np.full((out.shape[0], gt.shape[0]), np.nan)
    if not present.any():
        return gains
    design = np.column_stack([gt[present].reshape(int(present.sum()), -1).T, np.ones(gt[0].size)])
    coef = np.linalg.lstsq(design, out.reshape(out.shape[0], -1).T, rcond=None)[0]
    gains[:, present] = coef[:-1].T
    return gains


def routing_shares(gains: np.ndarray) -> np.ndarray:
    """Column-normalised gains: of each structure's signal, the fraction in each channel (NaN for an absent one)."""
    g = np.clip(np.asarray(gains, dtype=np.float64), 0.0, None)
    total = g.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, g / total, np.nan)
