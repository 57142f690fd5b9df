"""Evaluation metrics exactly as in the paper (docs/method.md#evaluation), numpy float64.

For each output channel: normalise the ground truth with its 0.1 / 99.9 percentiles, normalise the prediction
the same way, fit ``alpha * pred + beta`` to the ground truth by least squares (the "linear transformation"), then
NRMSE (plain RMSE of the normalised images), SSIM (11 x 11 Gaussian, sigma 1.5, K 0.01 / 0.03, data range 1,
mean over the valid region) and Pearson's correlation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

P_LOW = 0.1
P_HIGH = 99.9
_TRUNCATE = 3.5  # 11 taps at sigma 1.5: radius int(3.5 * 1.5 + 0.5) = 5


def percentile_normalize(img: np.ndarray, low: float = P_LOW, high: float = P_HIGH) -> np.ndarray:
    """``(img - perc(low)) / (perc(high) - perc(low))`` (float64). A flat image maps to all zeros."""
    a = np.asarray(img, dtype=np.float64)
    lo, hi = np.percentile(a, [low, high])
    span = hi - lo
    if not span > 0:
        return np.zeros_like(a)
    return (a - lo) / span


def linear_fit(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(alpha, beta)`` minimising ``||alpha pred + beta - target||``."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    pc = p - p.mean()
    var = float(pc @ pc)
    if var == 0.0:
        return 0.0, float(t.mean())
    alpha = float(pc @ (t - t.mean())) / var
    return alpha, float(t.mean() - alpha * p.mean())


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root-mean-square difference (of images already normalised)."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d)))


def ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM of two 2D images, Gaussian window 11 x 11 (sigma 1.5), population statistics, valid region."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two 2D images of one shape, got {a.shape} and {b.shape}")

    def blur(v: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(v, 1.5, truncate=_TRUNCATE, mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    r = 5
    return float(s[r:-r, r:-r].mean())


def pcc(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation coefficient (nan if either image is flat)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / den if den > 0 else float("nan")


@dataclass(frozen=True)
class ImageMetrics:
    nrmse: float
    ssim: float
    pcc: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def scored_pair(
    pred: np.ndarray, gt: np.ndarray, low: float = P_LOW, high: float = P_HIGH
) -> tuple[np.ndarray, np.ndarray]:
    """The images every metric compares: the prediction percentile-normalised and linearly fitted to the
    percentile-normalised ground truth, and that ground truth (float64, the shape of the inputs)."""
    gt_n = percentile_normalize(gt, low, high)
    pred_n = percentile_normalize(pred, low, high)
    alpha, beta = linear_fit(pred_n, gt_n)
    return alpha * pred_n + beta, gt_n


def evaluate_image(pred: np.ndarray, gt: np.ndarray, low: float = P_LOW, high: float = P_HIGH) -> ImageMetrics:
    """Paper metrics of one separated channel against its ground truth (2D arrays)."""
    pred_t, gt_n = scored_pair(pred, gt, low, high)
    return ImageMetrics(nrmse(pred_t, gt_n), ssim(pred_t, gt_n), pcc(pred_t, gt_n))


def evaluate_channels(pred: np.ndarray, gt: np.ndarray) -> list[ImageMetrics]:
    """Metrics per channel of ``(C, H, W)`` prediction and ground truth."""
    p = np.asarray(pred)
    g = np.asarray(gt)
    if p.shape != g.shape or p.ndim != 3:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} must both be (C, H, W)")
    return [evaluate_image(p[c], g[c]) for c in range(p.shape[0])]
