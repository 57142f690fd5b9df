"""Training losses (torch): MSE + 0.1 (1 - SSIM), the summation loss of IMC-SR-All, a Gaussian NLL.

SSIM uses an 11 x 11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, data range 1, population statistics and the
mean over the "valid" region (window fully inside the image) -- the same numbers as
:func:`imcsr_live.model.metrics.ssim` and scikit-image's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False)``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Normalised 1D Gaussian taps, float64 ``(size,)``."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _blur_valid(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of (N, 1, H, W), valid region only."""
    k = taps.to(dtype=x.dtype, device=x.device)
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return F.conv2d(x, k.view(1, 1, 1, -1))


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of ``(B, C, H, W)`` images, each channel separately: ``(B, C, H - 10, W - 10)``."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    b, c, h, w = x.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, got {h} x {w}")
    taps = gaussian_window()
    # Statistics in fp32 even under autocast: variances are small differences of large numbers.
    xs = x.float().reshape(b * c, 1, h, w)
    ys = y.float().reshape(b * c, 1, h, w)
    stack = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=0)
    mu_x, mu_y, exx, eyy, exy = _blur_valid(stack, taps).split(b * c, dim=0)
    var_x = exx - mu_x * mu_x
    var_y = eyy - mu_y * mu_y
    cov = exy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return s.reshape(b, c, h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM over batch, channels and pixels (scalar)."""
    return ssim_map(x, y, data_range).mean()


def mse_ssim_loss(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float = 0.1) -> torch.Tensor:
    """The paper's Eq. 1: ``MSE + ssim_weight * (1 - SSIM)`` (lambda 1, mu 0.1)."""
    mse = F.mse_loss(pred.float(), target.float())
    if ssim_weight == 0:
        return mse
    return mse + ssim_weight * (1.0 - ssim(pred, target))


def summation_loss(
    pred: torch.Tensor, inputs: torch.Tensor, alpha: float = 0.02, ssim_weight: float = 0.1
) -> torch.Tensor:
    """The summation term of Eq. 2: ``alpha * L(sum_c pred_c, x)`` with ``x`` the (middle) input frame."""
    total = pred.sum(dim=1, keepdim=True)
    return alpha * mse_ssim_loss(total, inputs, ssim_weight)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood per pixel (constant 0.5 log 2 pi included)."""
    lv = log_var.float()
    err2 = (target.float() - mean.float()) ** 2
    return 0.5 * (lv + err2 * torch.exp(-lv) + math.log(2.0 * math.pi)).mean()


def middle_frame(inputs: torch.Tensor) -> torch.Tensor:
    """The frame being separated: the middle one of a TC triplet, or the only one: ``(B, 1, H, W)``."""
    n = inputs.shape[1]
    return inputs[:, n // 2 : n // 2 + 1]


def imcsr_loss(
    out: torch.Tensor,
    target: torch.Tensor,
    inputs: torch.Tensor,
    *,
    ssim_weight: float = 0.1,
    summation_alpha: float = 0.02,
    nll_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Full training loss for a network output (with or without uncertainty channels).

    ``summation_alpha = 0`` gives the Single-model loss (Eq. 1); > 0 the All-model loss (Eq. 2). With the
    uncertainty head the log-variances add ``nll_weight`` x Gaussian NLL; the mean is detached there so the NLL
    does not pull the separation towards blurry, easy-to-predict outputs.
    Returns the loss and its parts as floats (for logging).
    """
    c = target.shape[1]
    mean = out[:, :c]
    parts: dict[str, float] = {}
    loss = mse_ssim_loss(mean, target, ssim_weight)
    parts["separation"] = float(loss.detach())
    if summation_alpha > 0:
        s = summation_loss(mean, middle_frame(inputs), summation_alpha, ssim_weight)
        parts["summation"] = float(s.detach())
        loss = loss + s
    if out.shape[1] == 2 * c:
        nll = gaussian_nll(mean.detach(), out[:, c:], target)
        parts["nll"] = float(nll.detach())
        loss = loss + nll_weight * nll
    return loss, parts
