from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imcsr_live.model.calibration import calibration_error, fit_calibration
from imcsr_live.model.losses import gaussian_nll, imcsr_loss


def test_calibration_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    std = rng.uniform(0.01, 0.2, 200_000)
    err = np.abs(rng.standard_normal(std.size) * (2.0 * std + 0.01))  # true sigma = 2 std + 0.01
    cal = fit_calibration(std, err)
    assert cal.scale == pytest.approx(2.0, rel=0.05)
    assert cal.offset == pytest.approx(0.01, abs=0.005)
    before = calibration_error(std, err)
    after = calibration_error(cal.apply(std), err)
    assert after < 0.2 * before


def test_calibration_of_constant_std_matches_overall_rmse() -> None:
    err = np.array([0.1, -0.3, 0.2, 0.0])
    cal = fit_calibration(np.full(4, 0.5), np.abs(err))
    assert cal.apply(np.array([0.5]))[0] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6)


def test_gaussian_nll_minimum_at_true_variance() -> None:
    torch.manual_seed(0)
    target = 0.3 * torch.randn(1, 1, 64, 64)
    mean = torch.zeros_like(target)
    values = {
        lv: float(gaussian_nll(mean, torch.full_like(target, lv), target)) for lv in (-4.0, 2 * math.log(0.3), 0.0)
    }
    assert min(values, key=values.get) == pytest.approx(2 * math.log(0.3))


def test_imcsr_loss_parts() -> None:
    torch.manual_seed(1)
    target = torch.rand(2, 3, 24, 24)
    inputs = torch.cat([target.sum(1, keepdim=True)] * 3, dim=1)
    out = torch.cat([target, torch.zeros_like(target)], dim=1)  # perfect mean, log-variance 0
    _loss, parts = imcsr_loss(out, target, inputs, summation_alpha=0.02)
    assert parts["separation"] == pytest.approx(0.0, abs=1e-6)
    assert parts["summation"] == pytest.approx(0.0, abs=1e-6)
    assert parts["nll"] == pytest.approx(0.5 * math.log(2 * math.pi), rel=1e-5)
    single, parts1 = imcsr_loss(target[:, :1] * 0.5, target[:, :1], inputs, summation_alpha=0.0)
    assert "summation" not in parts1 and float(single) > 0
