from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import normalized_root_mse, structural_similarity

from imcsr_live.model import metrics
from imcsr_live.model.losses import gaussian_window, mse_ssim_loss, ssim, summation_loss


def _pair(seed: int = 0, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.random((n, n))
    b = np.clip(0.7 * a + 0.3 * rng.random((n, n)), 0, 1)
    return a, b


def test_ssim_matches_scikit_image() -> None:
    a, b = _pair()
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-10)
    # The torch loss SSIM is the same number (valid region, same window).
    t = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])
    assert float(t) == pytest.approx(ref, abs=1e-6)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert gaussian_window().numel() == 11


def test_pcc_and_nrmse_match_references() -> None:
    a, b = _pair(1)
    assert metrics.pcc(a, b) == pytest.approx(stats.pearsonr(a.ravel(), b.ravel())[0], abs=1e-12)
    # nrmse of images already normalised = scikit-image's min-max NRMSE times the target's range
    reference = normalized_root_mse(b, a, normalization="min-max") * (b.max() - b.min())
    assert metrics.nrmse(a, b) == pytest.approx(reference, rel=1e-12)
    # analytic: a constant offset d gives d; an error of e on half of the pixels gives e / sqrt(2)
    assert metrics.nrmse(b + 0.25, b) == pytest.approx(0.25, rel=1e-12)
    half = b.copy()
    half[: b.shape[0] // 2] += 0.2
    assert metrics.nrmse(half, b) == pytest.approx(0.2 / np.sqrt(2), rel=1e-12)
    assert metrics.nrmse(b, b) == 0.0
    assert np.isnan(metrics.pcc(np.ones((8, 8)), a[:8, :8]))


def test_percentile_normalisation_and_linear_fit() -> None:
    x = np.arange(10001, dtype=np.float64)  # percentiles are exact here
    n = metrics.percentile_normalize(x)
    assert n[10] == pytest.approx(0.0) and n[9990] == pytest.approx(1.0)
    a, b = _pair(2)
    alpha, beta = metrics.linear_fit(a, b)
    np.testing.assert_allclose([alpha, beta], np.polyfit(a.ravel(), b.ravel(), 1), atol=1e-10)
    assert np.all(metrics.percentile_normalize(np.full((4, 4), 3.0)) == 0)


def test_evaluation_is_invariant_to_affine_output_changes() -> None:
    rng = np.random.default_rng(3)
    gt = rng.gamma(0.5, size=(48, 48))
    perfect = metrics.evaluate_image(7.0 * gt + 3.0, gt)
    assert perfect.nrmse == pytest.approx(0.0, abs=1e-9)
    assert perfect.ssim == pytest.approx(1.0) and perfect.pcc == pytest.approx(1.0)
    noisy = gt + 0.3 * rng.standard_normal(gt.shape)
    m1 = metrics.evaluate_image(noisy, gt)
    m2 = metrics.evaluate_image(0.1 * noisy - 5, gt)
    np.testing.assert_allclose(list(m1.as_dict().values()), list(m2.as_dict().values()), rtol=1e-9)
    assert m1.nrmse > 0.01 and m1.ssim < 0.99
    per_channel = metrics.evaluate_channels(np.stack([gt, noisy]), np.stack([gt, gt]))
    assert per_channel[0].pcc == pytest.approx(1.0) and per_channel[1] == m1


def test_losses() -> None:
    torch.manual_seed(0)
    y = torch.rand(2, 3, 32, 32)
    assert float(mse_ssim_loss(y, y)) == pytest.approx(0.0, abs=1e-6)
    noisy = (y + 0.2 * torch.randn_like(y)).clamp(0, 1)
    mse = float(((noisy - y) ** 2).mean())
    loss = float(mse_ssim_loss(noisy, y))
    assert loss == pytest.approx(mse + 0.1 * (1 - float(ssim(noisy, y))), rel=1e-5)
    # Summation term: zero when the channels add up to the input, alpha-scaled otherwise.
    x = y.sum(dim=1, keepdim=True)
    assert float(summation_loss(y, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(summation_loss(y, x + 0.1, alpha=0.02)) == pytest.approx(0.02 * float(mse_ssim_loss(x, x + 0.1)))
