"""OTF, pixel transfer, frequency grids and Fourier resampling against analytic truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imcsr_live.optics import (
    DEFAULT_OTF_DAMPING,
    fourier_resize,
    frequency_grid,
    ideal_otf,
    otf_2d,
    otf_at,
    otf_cutoff_cycles_per_um,
    pixel_sinc,
    radial_frequency,
)

NA, WL, PIX = 1.49, 525.0, 0.0626


def test_cutoff_is_two_na_over_lambda():
    assert otf_cutoff_cycles_per_um(1.49, 525.0) == pytest.approx(2 * 1.49 / 0.525)
    assert otf_cutoff_cycles_per_um(1.0, 500.0) == pytest.approx(4.0)


def test_ideal_otf_values_and_shape():
    assert ideal_otf(0.0) == pytest.approx(1.0)
    # Hand-evaluated (2/pi)(acos r - r sqrt(1 - r^2)).
    assert ideal_otf(0.25) == pytest.approx(0.685038, abs=1e-6)
    assert ideal_otf(0.5) == pytest.approx(0.391002, abs=1e-6)
    assert ideal_otf(0.75) == pytest.approx(0.144294, abs=1e-6)
    assert ideal_otf(1.0) == 0.0
    assert np.all(ideal_otf(np.array([1.0001, 1.5, 10.0])) == 0.0)
    rho = np.linspace(0, 1, 2001)
    h = ideal_otf(rho)
    assert np.all(np.diff(h) < 0)  # strictly decreasing on [0, 1]
    # Near the cutoff it vanishes like (1 - rho)^(3/2): H ~ (8 sqrt(2) / (3 pi)) (1 - rho)^1.5.
    eps = 1e-4
    assert ideal_otf(1 - eps) == pytest.approx(8 * math.sqrt(2) / (3 * math.pi) * eps**1.5, rel=1e-3)


def test_ideal_otf_matches_numerical_pupil_autocorrelation():
    # Incoherent OTF = normalised autocorrelation of the pupil disc (radius NA/lambda = kc/2): computed here
    # as FFT(|IFFT(pupil)|^2), i.e. the spectrum of the Airy PSF.
    n, r_pupil = 512, 100.0
    f = np.fft.fftfreq(n) * n
    pupil = (np.hypot(f[:, None], f[None, :]) <= r_pupil).astype(np.float64)
    psf = np.abs(np.fft.ifft2(pupil)) ** 2
    otf = np.fft.fft2(psf).real
    otf /= otf[0, 0]
    for rho in (0.1, 0.25, 0.5, 0.75, 0.9):
        shift = round(rho * 2 * r_pupil)
        numeric = 0.5 * (otf[0, shift] + otf[shift, 0])
        assert numeric == pytest.approx(float(ideal_otf(shift / (2 * r_pupil))), abs=5e-3)
    assert abs(otf[0, 205]) < 1e-9  # beyond the cutoff (200 px)


def test_damped_otf():
    kc = otf_cutoff_cycles_per_um(NA, WL)
    assert otf_at(0.0, NA, WL) == pytest.approx(1.0)
    assert otf_at(kc / 2, NA, WL) == pytest.approx(ideal_otf(0.5) * DEFAULT_OTF_DAMPING**0.5)
    assert otf_at(kc / 2, NA, WL, damping=1.0) == pytest.approx(ideal_otf(0.5))
    assert otf_at(kc / 2, NA, WL, damping=0.3) == pytest.approx(ideal_otf(0.5) * 0.3**0.5)
    assert otf_at(kc * 1.01, NA, WL) == 0.0
    k = np.linspace(0, kc, 500)
    assert np.all(np.diff(otf_at(k, NA, WL)) < 0)
    with pytest.raises(ValueError, match=r"OTF damping must be in \(0, 1\]"):
        otf_at(1.0, NA, WL, damping=0.0)


def test_frequency_grid_layouts():
    ky, kx = frequency_grid((8, 6), 0.5)
    assert ky.shape == (8, 1) and kx.shape == (1, 6)
    assert ky[1, 0] == pytest.approx(1 / (8 * 0.5))
    assert ky[4, 0] == pytest.approx(-1.0)  # even size: the Nyquist bin is -1/(2p)
    assert kx[0, -1] == pytest.approx(-1 / (6 * 0.5))
    ky_r, kx_r = frequency_grid((8, 6), 0.5, rfft=True)
    assert kx_r.shape == (1, 4) and kx_r[0, -1] == pytest.approx(1.0)
    np.testing.assert_array_equal(ky_r, ky)


def test_otf_2d_full_and_rfft_layouts_agree():
    shape = (32, 40)
    full = otf_2d(shape, PIX / 2, NA, WL)
    half = otf_2d(shape, PIX / 2, NA, WL, rfft=True)
    assert half.shape == (32, 21)
    np.testing.assert_allclose(half, full[:, :21])
    kc = otf_cutoff_cycles_per_um(NA, WL)
    k = radial_frequency(shape, PIX / 2)
    assert full[0, 0] == pytest.approx(1.0)
    assert np.all(full[k >= kc] == 0)
    assert np.all(full[k < kc * 0.99] > 0)
    # Hermitian-symmetric (real, even) as an incoherent OTF must be.
    np.testing.assert_allclose(full, np.roll(full[::-1, ::-1], 1, axis=(0, 1)))


def test_pixel_sinc_is_the_box_average_of_a_cosine():
    a = 0.1
    shape = (16, 16)
    ky, kx = frequency_grid(shape, a)
    tf = pixel_sinc(shape, a)
    assert tf[0, 0] == 1.0
    # Mean of cos(2 pi k x) over a pixel [-a/2, a/2] (fine midpoint rule) = sinc(k a).
    u = (np.arange(2000) + 0.5) / 2000 - 0.5
    for iy, ix in [(0, 3), (5, 0), (3, 7), (8, 8)]:
        box = np.mean(np.cos(2 * np.pi * ky[iy, 0] * a * u)) * np.mean(np.cos(2 * np.pi * kx[0, ix] * a * u))
        assert tf[iy, ix] == pytest.approx(box, abs=1e-6)
    # A larger physical pixel than the sampling grid uses camera_pixel_um.
    assert pixel_sinc(shape, a, 2 * a)[0, 4] == pytest.approx(np.sinc(kx[0, 4] * 2 * a))


def _trig_image(shape, freqs, amps, phases, offset=(0.0, 0.0), step=1.0):
    """Samples at positions (offset + step * index) of sum_j A_j cos(2 pi (fy y + fx x) + phi_j), f in cycles
    per (input-grid) sample."""
    y = offset[0] + step * np.arange(shape[0])[:, None]
    x = offset[1] + step * np.arange(shape[1])[None, :]
    img = np.zeros(shape)
    for (fy, fx), amp, ph in zip(freqs, amps, phases, strict=True):
        img += amp * np.cos(2 * np.pi * (fy * y + fx * x) + ph)
    return img


@pytest.mark.parametrize(("n_in", "n_out"), [((24, 30), (12, 15)), ((30, 24), (45, 48)), ((17, 21), (34, 10))])
@pytest.mark.parametrize("use_rfft", [False, True])
def test_fourier_resize_resamples_band_limited_images_exactly(n_in, n_out, use_rfft):
    rng = np.random.default_rng(1)
    # Frequencies on the input's periodic lattice, strictly below both grids' Nyquist frequencies.
    lim_y = min(n_in[0], n_out[0]) // 2 - 1
    lim_x = min(n_in[1], n_out[1]) // 2 - 1
    freqs = [(rng.integers(-lim_y, lim_y + 1) / n_in[0], rng.integers(-lim_x, lim_x + 1) / n_in[1]) for _ in range(6)]
    amps = rng.uniform(0.2, 1.0, 6)
    phases = rng.uniform(0, 2 * np.pi, 6)
    img = 3.0 + _trig_image(n_in, freqs, amps, phases)
    # Output sample j sits at input position j * n_in / n_out (shared origin).
    want = 3.0 + _trig_image(
        n_out, [(fy * n_in[0] / n_out[0], fx * n_in[1] / n_out[1]) for fy, fx in freqs], amps, phases
    )
    if use_rfft:
        out = np.fft.irfft2(fourier_resize(np.fft.rfft2(img), n_out, rfft_width=n_in[1]), s=n_out)
    else:
        out = np.fft.ifft2(fourier_resize(np.fft.fft2(img), n_out))
        assert np.max(np.abs(out.imag)) < 1e-12
        out = out.real
    np.testing.assert_allclose(out, want, atol=1e-10)
    assert out.mean() == pytest.approx(img.mean())


@pytest.mark.parametrize("use_rfft", [False, True])
def test_fourier_crop_keeps_a_cosine_at_the_output_nyquist(use_rfft):
    n_in, n_out = (16, 16), (8, 8)
    img = _trig_image(n_in, [(0.25, 0.0), (0.0, 0.25)], [1.0, 0.5], [0.0, 0.0])  # cos(pi n) on the 8-grid
    if use_rfft:
        out = np.fft.irfft2(fourier_resize(np.fft.rfft2(img), n_out, rfft_width=16), s=n_out)
    else:
        out = np.fft.ifft2(fourier_resize(np.fft.fft2(img), n_out)).real
    np.testing.assert_allclose(out, img[::2, ::2], atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    ny=st.integers(2, 12),
    nx=st.integers(2, 12),
    py=st.integers(0, 9),
    px=st.integers(0, 9),
    seed=st.integers(0, 2**16),
    use_rfft=st.booleans(),
)
def test_fourier_pad_then_crop_is_identity(ny, nx, py, px, seed, use_rfft):
    img = np.random.default_rng(seed).normal(size=(2, ny, nx))  # leading batch axis is carried along
    big = (ny + py, nx + px)
    if use_rfft:
        spec = fourier_resize(np.fft.rfft2(img), big, rfft_width=nx)
        padded = np.fft.irfft2(spec, s=big)
        back = np.fft.irfft2(fourier_resize(np.fft.rfft2(padded), (ny, nx), rfft_width=big[1]), s=(ny, nx))
    else:
        padded = np.fft.ifft2(fourier_resize(np.fft.fft2(img), big))
        assert np.max(np.abs(padded.imag)) < 1e-10  # a real image stays real (Nyquist bins split evenly)
        back = np.fft.ifft2(fourier_resize(np.fft.fft2(padded.real), (ny, nx))).real
    np.testing.assert_allclose(back, img, atol=1e-10)
    np.testing.assert_allclose(padded.real.mean(axis=(-2, -1)), img.mean(axis=(-2, -1)), atol=1e-12)
