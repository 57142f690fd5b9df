"""Camera noise model: statistics, quantisation, clipping, determinism, validation."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.errors import SynthError
from imcsr_live.synth.camera import CameraParams, expose

N_SAMPLES = 400_000


@pytest.mark.parametrize("electrons", [4.0, 250.0])
def test_mean_and_variance_match_shot_plus_read_noise(electrons):
    cam = CameraParams(offset_adu=100.0, gain_adu_per_e=2.0, read_noise_e=1.5)
    adu = expose(np.full(N_SAMPLES, electrons), cam, np.random.default_rng(7))
    assert adu.dtype == np.uint16 and adu.shape == (N_SAMPLES,)
    e = (adu.astype(np.float64) - cam.offset_adu) / cam.gain_adu_per_e
    # Shot noise + read noise + rounding to whole ADU (uniform, 1/12 ADU^2).
    var_want = electrons + cam.read_noise_e**2 + 1.0 / (12.0 * cam.gain_adu_per_e**2)
    se_mean = np.sqrt(var_want / N_SAMPLES)
    assert abs(e.mean() - electrons) < 5 * se_mean
    # Standard error of a sample variance: var * sqrt((2 + excess kurtosis) / n); Poisson adds 1/lambda.
    kurt = electrons / var_want**2  # excess kurtosis of the sum (only the Poisson part has any)
    se_var = var_want * np.sqrt((2.0 + kurt) / N_SAMPLES)
    assert abs(e.var(ddof=1) - var_want) < 5 * se_var


def test_without_read_noise_counts_are_poisson_integers():
    cam = CameraParams(offset_adu=10.0, gain_adu_per_e=1.0, read_noise_e=0.0)
    adu = expose(np.full(N_SAMPLES, 3.0), cam, np.random.default_rng(3))
    counts = adu.astype(np.int64) - 10
    assert counts.min() >= 0
    # Chi-square goodness of fit of the count histogram to Poisson(3) over the bins 0..8 and >= 9.
    from scipy import stats

    k = np.arange(9)
    observed = np.append(np.bincount(counts, minlength=9)[:9], np.sum(counts >= 9))
    expected = N_SAMPLES * np.append(stats.poisson.pmf(k, 3.0), stats.poisson.sf(8, 3.0))
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert chi2 < stats.chi2.ppf(0.999, df=len(observed) - 1)


def test_clipping_and_saturation():
    rng = np.random.default_rng(0)
    cam = CameraParams(offset_adu=0.0, gain_adu_per_e=1.0, read_noise_e=3.0)
    low = expose(np.zeros((64, 64)), cam, rng)
    assert low.min() == 0 and low.max() < 30  # negative read-outs clip to 0, never wrap around to 65535
    assert np.mean(low == 0) > 0.4
    high = expose(np.full((8, 8), 1e7), CameraParams(), rng)
    assert np.all(high == 65535)
    capped = expose(np.full((8, 8), 5000.0), CameraParams(full_well_adu=4095), rng)
    assert np.all(capped == 4095)
    neg = expose(np.full((4, 4), -5.0), CameraParams(read_noise_e=0.0), rng)  # negative expectation -> 0 e-
    assert np.all(neg == 100)


def test_gain_and_offset_scale_the_signal():
    cam = CameraParams(offset_adu=500.0, gain_adu_per_e=0.5, read_noise_e=0.0)
    adu = expose(np.full(100_000, 1000.0), cam, np.random.default_rng(1))
    assert (adu.astype(np.float64) - 500).mean() == pytest.approx(500.0, rel=2e-3)


def test_same_seed_same_frame():
    lam = np.random.default_rng(5).uniform(0, 50, (3, 16, 16))
    a = expose(lam, CameraParams(), np.random.default_rng(11))
    b = expose(lam, CameraParams(), np.random.default_rng(11))
    c = expose(lam, CameraParams(), np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == lam.shape


@pytest.mark.parametrize(
    "kwargs",
    [{"gain_adu_per_e": 0.0}, {"read_noise_e": -1.0}, {"full_well_adu": 70000}, {"offset_adu": -1.0}],
)
def test_invalid_camera_parameters(kwargs):
    with pytest.raises(SynthError, match=r"^camera (gain|read noise|full well|offset) must be"):
        CameraParams(**kwargs)


def test_nan_expectation_is_rejected():
    with pytest.raises(SynthError, match="NaN"):
        expose(np.array([1.0, np.nan]), CameraParams(), np.random.default_rng(0))
