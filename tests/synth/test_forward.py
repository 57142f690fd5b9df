"""SIM forward model against analytic truth and a brute-force real-space reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imcsr_live.errors import SynthError
from imcsr_live.illumination import PatternParams, default_phase_offsets_deg
from imcsr_live.optics import otf_at
from imcsr_live.synth.camera import CameraParams
from imcsr_live.synth.forward import OpticsParams, SimForwardModel

OPTICS = OpticsParams(na=1.49, emission_wavelength_nm=525.0, pixel_size_um=0.0626)
PIX = OPTICS.pixel_size_um
PATTERN = PatternParams(angles_deg=(10.0, 70.0, 130.0), period_um=0.23, modulation=0.85)


def on_grid_pattern(raw_shape, k_pixels, modulation=0.9, phases=3, offsets=None):
    """A pattern whose wave vectors (ky, kx in camera-FFT pixels) are periodic on the field (no seam)."""
    ks = [(ky / (raw_shape[0] * PIX), kx / (raw_shape[1] * PIX)) for ky, kx in k_pixels]
    mags = {round(math.hypot(*k), 9) for k in ks}
    assert len(mags) == 1, "one period for all angles"
    angles = tuple(math.degrees(math.atan2(ky, kx)) for ky, kx in ks)
    return PatternParams(angles, 1.0 / mags.pop(), modulation, phases=phases, phase_offsets_deg=offsets)


def cosine_field(shape, pixel_um, waves, origin_shift=(0.0, 0.0)):
    """Sum of A cos(2 pi k.x + psi) sampled at pixel centres ``(index * pixel_um)`` (x = column, y = row)."""
    y = (np.arange(shape[0])[:, None] + origin_shift[0]) * pixel_um
    x = (np.arange(shape[1])[None, :] + origin_shift[1]) * pixel_um
    out = np.zeros(shape)
    for (ky, kx), amp, psi in waves:
        out += amp * np.cos(2 * np.pi * (kx * x + ky * y) + psi)
    return out


def periodic_waves(rng, raw_shape, n, kmax):
    """Random cosines with frequencies on the field's lattice, |k| < kmax cycles/um."""
    field = (raw_shape[0] * PIX, raw_shape[1] * PIX)
    waves = []
    while len(waves) < n:
        k = (rng.integers(-40, 41) / field[0], rng.integers(-40, 41) / field[1])
        if 0 < math.hypot(*k) < kmax:
            waves.append((k, rng.uniform(0.05, 0.3), rng.uniform(0, 2 * np.pi)))
    return waves


def brute_force_frames(model: SimForwardModel, truth2d: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Reference: real-space pattern x truth, full FFT, OTF x pixel sinc, inverse FFT, every s-th sample."""
    s = model.work_factor
    assert s == model.oversample
    q = model.optics.pixel_size_um / s
    y = np.arange(model.truth_shape[0])[:, None] * q
    x = np.arange(model.truth_shape[1])[None, :] * q
    transfer = model.camera_transfer(model.truth_shape, q)
    frames = []
    for a, (ky, kx) in enumerate(model.k0_cycles_per_um):
        for phi in phases[a]:
            illum = 1 + model.pattern.modulation * np.cos(2 * np.pi * (kx * x + ky * y) + phi)
            img = np.fft.ifft2(np.fft.fft2(truth2d * illum) * transfer).real
            frames.append(img[::s, ::s])
    return np.array(frames)


def random_points(rng, shape, n, channels=3):
    truth = np.zeros((channels, *shape), dtype=np.float32)
    for c in range(channels):
        iy, ix = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
        np.add.at(truth[c], (iy, ix), rng.uniform(0.5, 2.0, n).astype(np.float32))
    return truth


# --------------------------------------------------------------------------------------------------- basics
def test_shapes_dtypes_and_conventions():
    model = SimForwardModel(OPTICS, PATTERN, (24, 32), oversample=2)
    assert model.truth_shape == (48, 64) and model.sr_shape == (48, 64)
    truth = np.random.default_rng(0).random((3, 48, 64))
    expected, wf, phases = model.expected_images(truth)
    assert expected.shape == (9, 24, 32) and expected.dtype == np.float32
    assert wf.shape == (24, 32) and wf.dtype == np.float32
    assert phases.shape == (3, 3)
    # Wave vectors as (ky, kx): angle 10 deg from +x towards +y.
    k = 1 / 0.23
    theta = math.radians(10)
    np.testing.assert_allclose(model.k0_cycles_per_um[0], [k * math.sin(theta), k * math.cos(theta)])
    np.testing.assert_allclose(model.k0_pixels[:, 0], model.k0_cycles_per_um[:, 0] * 24 * PIX)
    # Default starting phases: golden-angle rule, then equal steps of 2 pi / P.
    np.testing.assert_allclose(np.rad2deg(phases[:, 0]), default_phase_offsets_deg(3))
    np.testing.assert_allclose(np.mod(np.diff(phases, axis=1), 2 * np.pi), 2 * np.pi / 3)
    # A 2D truth is one channel; C channels are summed.
    np.testing.assert_allclose(model.expected_images(truth.sum(0))[0], expected, rtol=1e-5, atol=1e-6)


def test_rejects_wrong_truth_shape_and_bad_parameters():
    model = SimForwardModel(OPTICS, PATTERN, (16, 16), oversample=2)
    with pytest.raises(SynthError, match="expected"):
        model.expected_images(np.zeros((3, 16, 16)))
    with pytest.raises(SynthError, match=r"truth has shape \(31, 32\)"):
        model.sr_ground_truth(np.zeros((31, 32)))
    with pytest.raises(SynthError, match=r"modulation must be in \[0, 1\]"):
        PatternParams((0.0, 60.0), 0.2, 1.5)
    with pytest.raises(SynthError, match="phase_offsets_deg has 1 values for 2 angles"):
        PatternParams((0.0, 60.0), 0.2, 0.8, phase_offsets_deg=(0.0,))
    with pytest.raises(SynthError, match="needs at least one angle"):
        PatternParams((), 0.2, 0.8)
    with pytest.raises(SynthError, match="optics need NA, emission wavelength and pixel size > 0"):
        OpticsParams(0.0, 525.0, 0.06)
    with pytest.raises(SynthError, match="oversample must be a positive integer"):
        SimForwardModel(OPTICS, PATTERN, (16, 16), oversample=0)
    with pytest.raises(SynthError, match="photon_scale must be > 0"):
        model.simulate(np.zeros((32, 32)), 0.0, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------ phase algebra
@pytest.mark.parametrize("n_phases", [3, 5])
def test_phases_of_an_angle_sum_to_p_times_widefield(n_phases):
    pattern = PatternParams((0.0, 60.0, 120.0), 0.22, 0.9, phases=n_phases)
    model = SimForwardModel(OPTICS, pattern, (32, 32), oversample=2)
    truth = random_points(np.random.default_rng(1), model.truth_shape, 60) + 0.1
    expected, wf, _ = model.expected_images(truth)
    per_angle = expected.reshape(3, n_phases, 32, 32).sum(axis=1)
    for a in range(3):
        np.testing.assert_allclose(per_angle[a], n_phases * wf, rtol=1e-5, atol=1e-5 * float(wf.max()))
    # Widefield of a non-negative object is non-negative, and the modulation really is there.
    assert wf.min() > 0
    assert np.abs(expected[0] - wf).max() > 1e-3 * float(wf.max())


def test_phase_sum_with_camera_noise_is_consistent_with_the_noise_level():
    cam = CameraParams(offset_adu=100.0, gain_adu_per_e=2.0, read_noise_e=1.5)
    model = SimForwardModel(OPTICS, PATTERN, (64, 64), oversample=2, camera=cam)
    truth = random_points(np.random.default_rng(2), model.truth_shape, 300) + 0.2
    frame = model.simulate(truth, photon_scale=50.0, rng=np.random.default_rng(3))
    electrons = (frame.raw.astype(np.float64) - cam.offset_adu) / cam.gain_adu_per_e
    wf = frame.widefield.astype(np.float64)
    var_one = cam.read_noise_e**2 + 1.0 / (12 * cam.gain_adu_per_e**2)
    z = (electrons.reshape(3, 3, 64, 64).sum(axis=1) - 3 * wf) / np.sqrt(3 * wf + 3 * var_one)
    assert abs(z.mean()) < 0.05  # 3 x 4096 samples: standard error ~0.01
    assert z.std() == pytest.approx(1.0, abs=0.05)
    noiseless_wf = model.expected_images(truth)[1]
    assert frame.expected.mean() == pytest.approx(50.0 * float(noiseless_wf.mean()), rel=1e-5)


# -------------------------------------------------------------------------------------- uniform specimen
def fit_cosine(img, k_yx, mask=None):
    """Fit a + b cos(2 pi k.x) + c sin(2 pi k.x) at pixel centres -> (mean, contrast, phase, max resid)."""
    ny, nx = img.shape
    y = np.arange(ny)[:, None] * PIX
    x = np.arange(nx)[None, :] * PIX
    arg = 2 * np.pi * (k_yx[1] * x + k_yx[0] * y) + np.zeros(img.shape)
    sel = np.ones(img.shape, bool) if mask is None else mask
    design = np.stack([np.ones(sel.sum()), np.cos(arg[sel]), np.sin(arg[sel])], axis=1)
    coef, *_ = np.linalg.lstsq(design, img[sel].astype(np.float64), rcond=None)
    resid = img[sel] - design @ coef
    # b cos + c sin = r cos(arg + phi) with r cos(phi) = b, r sin(phi) = -c.
    return coef[0], math.hypot(coef[1], coef[2]) / coef[0], math.atan2(-coef[2], coef[1]), np.abs(resid).max()


def expected_contrast(model, k_yx):
    o = model.optics
    h = otf_at(math.hypot(*k_yx), o.na, o.emission_wavelength_nm, damping=o.otf_damping)
    return model.pattern.modulation * h * np.sinc(k_yx[0] * PIX) * np.sinc(k_yx[1] * PIX)


@pytest.mark.parametrize("oversample", [2, 4])
def test_uniform_truth_gives_pure_cosines_with_the_predicted_contrast_and_phase(oversample):
    raw = (40, 40)
    # Axis and non-axis orientations: (ky, kx) in camera-FFT pixels, all of magnitude 10.
    pattern = on_grid_pattern(raw, [(0, 10), (6, 8), (-8, 6)], offsets=(12.0, 200.0, 333.0))
    model = SimForwardModel(OPTICS, pattern, raw, oversample=oversample)
    expected, wf, phases = model.expected_images(np.full(model.truth_shape, 2.5))
    np.testing.assert_allclose(wf, 2.5, rtol=1e-6)
    np.testing.assert_allclose(np.rad2deg(phases[:, 0]), (12.0, 200.0, 333.0))
    for a in range(3):
        k = model.k0_cycles_per_um[a]
        for p in range(3):
            mean, contrast, phase, resid = fit_cosine(expected[3 * a + p], k)
            assert mean == pytest.approx(2.5, rel=1e-6)
            assert contrast == pytest.approx(expected_contrast(model, k), rel=2e-4)
            assert abs(np.angle(np.exp(1j * (phase - phases[a, p])))) < 2e-4
            assert resid < 2e-5 * 2.5  # nothing but the cosine


def test_uniform_truth_with_a_pattern_that_is_not_periodic_on_the_field():
    # The default-style pattern does not fit the field: the seam at the borders is excluded from the fit.
    model = SimForwardModel(OPTICS, PATTERN, (64, 64), oversample=2)
    expected, _, phases = model.expected_images(np.ones(model.truth_shape))
    inner = np.zeros((64, 64), bool)
    inner[12:-12, 12:-12] = True
    for a in range(3):
        k = model.k0_cycles_per_um[a]
        _, contrast, phase, _ = fit_cosine(expected[3 * a + 1], k, inner)
        assert contrast == pytest.approx(expected_contrast(model, k), rel=1e-3)
        assert abs(np.angle(np.exp(1j * (phase - phases[a, 1])))) < 1e-3


# ------------------------------------------------------------------------------ structured specimen spectra
def test_raw_spectra_peak_at_the_pattern_wave_vectors():
    raw = (64, 64)
    model = SimForwardModel(OPTICS, PATTERN, raw, oversample=2)
    truth = random_points(np.random.default_rng(4), model.truth_shape, 400)
    expected, _, _ = model.expected_images(truth)
    ny, nx = raw
    window = np.outer(np.hanning(ny), np.hanning(nx))
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    kc_px = model.cutoff_cycles_per_um * ny * PIX
    for a in range(3):
        diff = (expected[3 * a] - expected[3 * a + 1]) * window  # removes the unshifted band
        spec = np.abs(np.fft.fft2(diff))
        fy = np.fft.fftfreq(ny) * ny
        fx = np.fft.fftfreq(nx) * nx
        ring = np.hypot(fy[:, None], fx[None, :])
        spec[(ring < 0.4 * kc_px) | (ring > kc_px)] = 0
        iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
        peak = np.array([fy[iy], fx[ix]])
        want = model.k0_pixels[a]
        want = want if np.linalg.norm(peak - want) < np.linalg.norm(peak + want) else -want
        assert np.linalg.norm(peak - want) <= 1.0  # the coarse peak is a neighbour of the true position
        # Refine with a zoomed DFT (0.02 px steps) around the coarse peak.
        offs = np.linspace(-1, 1, 101)
        best, best_val = None, -1.0
        for dy in offs:
            row = np.exp(-2j * np.pi * (peak[0] + dy) * y / ny)
            partial = (diff * row).sum(axis=0)
            cols = np.exp(-2j * np.pi * (peak[1] + offs[:, None]) * x / nx)
            vals = np.abs(cols @ partial)
            j = int(np.argmax(vals))
            if vals[j] > best_val:
                best_val, best = vals[j], np.array([peak[0] + dy, peak[1] + offs[j]])
        assert np.linalg.norm(best - want) < 0.1


# ------------------------------------------------------------------ sampling, binning and the truth grid
def test_widefield_is_the_box_binned_blurred_image_and_keeps_total_intensity():
    raw = (40, 48)
    model = SimForwardModel(OPTICS, PATTERN, raw, oversample=2)
    rng = np.random.default_rng(5)
    waves = periodic_waves(rng, raw, 12, kmax=12.0)  # includes frequencies beyond the OTF cutoff
    waves += periodic_waves(rng, raw, 4, kmax=2.0)  # and some that pass it well
    truth = 1.0 + cosine_field(model.truth_shape, model.truth_pixel_size_um, waves)
    _, wf, _ = model.expected_images(truth)
    assert wf.sum() * 4 == pytest.approx(truth.sum(), rel=1e-5)  # camera pixel = mean of its 2 x 2 truth area
    # Real-space reference: blur each cosine analytically, then average over each camera pixel by a 16 x 16
    # midpoint rule (camera pixel (i, j) covers [j p - p/2, j p + p/2] x [i p - p/2, i p + p/2]).
    o = OPTICS
    blurred = [
        (k, amp * otf_at(math.hypot(*k), o.na, o.emission_wavelength_nm, damping=o.otf_damping), psi)
        for k, amp, psi in waves
    ]
    sub = 16
    fine = 1.0 + cosine_field(
        (raw[0] * sub, raw[1] * sub), PIX / sub, blurred, origin_shift=(-(sub - 1) / 2, -(sub - 1) / 2)
    )
    binned = fine.reshape(raw[0], sub, raw[1], sub).mean(axis=(1, 3))
    np.testing.assert_allclose(wf, binned, atol=2e-4)
    assert np.abs(wf - 1).max() > 0.05  # the test image is not trivially flat


def test_oversample_2_and_4_give_the_same_raw_frames_for_a_band_limited_truth():
    raw = (32, 32)
    rng = np.random.default_rng(6)
    waves = periodic_waves(rng, raw, 15, kmax=11.0)  # up to kc + |k0|: everything SIM can shift in
    pattern = on_grid_pattern(raw, [(0, 10), (8, 6), (-8, 6)])
    frames = {}
    for s in (2, 4):
        model = SimForwardModel(OPTICS, pattern, raw, oversample=s)
        truth = 1.0 + cosine_field(model.truth_shape, PIX / s, waves)
        frames[s] = model.expected_images(truth)[0]
    np.testing.assert_allclose(frames[2], frames[4], atol=2e-5)


def test_oversample_1_upsamples_internally_and_matches_oversample_2():
    raw = (32, 32)
    waves = periodic_waves(np.random.default_rng(7), raw, 10, kmax=7.5)  # below the camera Nyquist (8)
    m1 = SimForwardModel(OPTICS, PATTERN, raw, oversample=1)
    m2 = SimForwardModel(OPTICS, PATTERN, raw, oversample=2)
    assert m1.work_factor == 2  # kc + |k0| exceeds the camera Nyquist: the model works on a finer grid
    e1 = m1.expected_images(1.0 + cosine_field(m1.truth_shape, PIX, waves))[0]
    e2 = m2.expected_images(1.0 + cosine_field(m2.truth_shape, PIX / 2, waves))[0]
    np.testing.assert_allclose(e1, e2, atol=2e-5)


@pytest.mark.parametrize("pixel_um", [PIX, 0.1])  # 0.1 um pixels under-sample the OTF: aliasing (fold) path
def test_fast_path_matches_a_brute_force_real_space_reference(pixel_um):
    optics = OpticsParams(1.49, 525.0, pixel_um)
    model = SimForwardModel(optics, PATTERN, (24, 28), oversample=3)
    assert model._crop_path == (pixel_um == PIX)
    truth = random_points(np.random.default_rng(8), model.truth_shape, 80, channels=1)[0] + 0.05
    expected, _, phases = model.expected_images(truth, rng=np.random.default_rng(0))
    ref = brute_force_frames(model, truth.astype(np.float64), phases)
    np.testing.assert_allclose(expected, ref, atol=2e-6 * float(ref.max()))


# ------------------------------------------------------------------------------------- SR ground truth
@pytest.mark.parametrize("oversample", [2, 4])
def test_sr_ground_truth_shape_scale_and_band_limit(oversample):
    raw = (24, 32)
    model = SimForwardModel(OPTICS, PATTERN, raw, oversample=oversample)
    ty, tx = model.truth_shape
    flat = np.full((2, ty, tx), 3.5)
    gt = model.sr_ground_truth(flat)
    assert gt.shape == (2, 48, 64) and gt.dtype == np.float32
    np.testing.assert_allclose(gt, 3.5, rtol=1e-6)
    # A delta on the centre of camera pixel (5, 7) = SR pixel (10, 14) becomes a band-limited spot there.
    delta = np.zeros((ty, tx))
    delta[5 * oversample, 7 * oversample] = 1.0
    spot = model.sr_ground_truth(delta)
    assert spot.shape == (1, 48, 64)
    assert np.unravel_index(np.argmax(spot[0]), spot[0].shape) == (10, 14)
    assert spot.mean() == pytest.approx(delta.mean(), rel=1e-5)  # same intensity scale as the truth
    spec = np.abs(np.fft.fft2(spot[0].astype(np.float64)))
    ky = np.fft.fftfreq(48, PIX / 2)[:, None]
    kx = np.fft.fftfreq(64, PIX / 2)[None, :]
    radius = np.hypot(ky, kx)
    support = model.cutoff_cycles_per_um + 1 / PATTERN.period_um
    assert model.sr_support_cycles_per_um == pytest.approx(support)
    assert spec[radius >= support].max() < 1e-6 * spec[0, 0]
    assert spec[radius < 0.9 * support].min() > 1e-3 * spec[0, 0]  # everything inside is passed
    # Wider than the widefield cutoff: SIM resolution, not widefield resolution.
    assert spec[(radius > 1.2 * model.cutoff_cycles_per_um) & (radius < 0.9 * support)].min() > 0


def test_sr_ground_truth_bend_zero_is_a_hard_disc():
    model = SimForwardModel(OPTICS, PATTERN, (16, 16), oversample=2)
    transfer = model.sr_transfer(apodization_bend=0.0)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(32, PIX / 2), np.fft.fftfreq(32, PIX / 2), indexing="ij"))
    inside = radius < model.sr_support_cycles_per_um
    assert np.all(transfer[inside] == 1.0) and np.all(transfer[~inside] == 0.0)


# ---------------------------------------------------------------------------------------- determinism
def test_seeded_simulation_is_deterministic_and_jitter_is_drawn_from_the_rng():
    pattern = PatternParams((0.0, 60.0, 120.0), 0.22, 0.9, phase_jitter_deg=3.0)
    model = SimForwardModel(OPTICS, pattern, (32, 32), oversample=2)
    truth = random_points(np.random.default_rng(9), model.truth_shape, 100)
    a = model.simulate(truth, 100.0, np.random.default_rng(42))
    b = model.simulate(truth, 100.0, np.random.default_rng(42))
    c = model.simulate(truth, 100.0, np.random.default_rng(43))
    assert a.raw.dtype == np.uint16 and a.raw.shape == (9, 32, 32)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.phases_rad, b.phases_rad)
    assert not np.array_equal(a.raw, c.raw)
    nominal = pattern.nominal_phases_rad()
    err = np.angle(np.exp(1j * (a.phases_rad - nominal)))
    assert 0 < np.abs(err).max() < np.deg2rad(20)
    # The expected frames were made with exactly the reported (jittered) phases, scaled by photon_scale.
    ref = 100.0 * brute_force_frames(model, truth.sum(axis=0).astype(np.float64), a.phases_rad)
    np.testing.assert_allclose(a.expected, ref, atol=2e-6 * float(ref.max()))
    assert a.photon_scale == 100.0 and a.modulation == pytest.approx(0.9)
    np.testing.assert_allclose(a.k0_cycles_per_um, model.k0_cycles_per_um)
