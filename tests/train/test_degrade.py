from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft

from imcsr_live.config import load_rig_config
from imcsr_live.train.degrade import SimDegradeParams, SimReconApproximation


def test_uniform_field_noise_matches_prediction_and_scales_with_photons(simulated_toml) -> None:
    approx = SimReconApproximation(SimDegradeParams.from_rig(load_rig_config(simulated_toml)))
    rng = np.random.default_rng(0)
    for photons in (100.0, 1000.0):
        img = approx.degrade(np.full((128, 128), photons, np.float32), rng)
        # Mean scaled by the chain's DC transfer (a little below 1: the attenuation notch lets the Wiener
        # constant matter at k = 0, as in the real reconstruction), noise as predicted from the filters.
        dc = float(approx.filters((128, 128))["signal"][0, 0])
        assert 0.85 < dc < 1.0
        assert img.mean() == pytest.approx(photons * dc, rel=0.01)
        assert img.std() == pytest.approx(approx.noise_std((128, 128), photons), rel=0.05)
    # Shot noise plus read noise, measured on the degraded images: variance ~ photons + read_noise^2, so 10x
    # photons -> about sqrt(10)x noise (independent of noise_std's Parseval sum, which cancels in the ratio).
    measured = [approx.degrade(np.full((256, 256), p, np.float32), rng).std() for p in (100.0, 1000.0)]
    read2 = approx.p.read_noise_e**2
    assert measured[1] / measured[0] == pytest.approx(np.sqrt((1000.0 + read2) / (100.0 + read2)), rel=0.03)


def test_noise_lives_in_the_sim_passband() -> None:
    approx = SimReconApproximation()
    img = approx.degrade(np.full((128, 128), 300.0, np.float32), np.random.default_rng(1))
    power = np.abs(sfft.rfft2(img - img.mean())) ** 2
    f = approx.filters((128, 128))
    outside = f["noise"] == 0
    assert outside.any() and power[outside].sum() < 1e-6 * power.sum()
    # Unit transfer (relative to the ground truth) in the mid band, damped towards the support edge.
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.rfftfreq(128), indexing="ij"))
    mid = (k > 0.05) & (k < 0.1)
    assert np.median(f["signal"][mid]) == pytest.approx(1.0, abs=0.1) and f["signal"].min() < 0.5


def test_signal_is_kept_at_high_photon_counts() -> None:
    approx = SimReconApproximation()
    rng = np.random.default_rng(2)
    clean = np.zeros((96, 96), np.float32)
    clean[40:56, 20:24] = 1.0
    clean = sfft.irfft2(sfft.rfft2(clean) * approx.filters((96, 96))["signal"], s=clean.shape).astype(np.float32)
    clean = np.maximum(clean, 0)
    scale = approx.photon_scale(clean, 1e6)
    out = approx.degrade(clean * scale, rng) / scale
    high_r = np.corrcoef(out.ravel(), clean.ravel())[0, 1]
    assert high_r > 0.99
    low = approx.degrade(clean * approx.photon_scale(clean, 10.0), rng)
    assert np.corrcoef(low.ravel(), clean.ravel())[0, 1] < high_r - 0.05
