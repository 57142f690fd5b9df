"""Wiener reconstruction: analytic cases, known truth, parameter sensitivity, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.recon.artifacts import residual_peak_ratios
from imcsr_live.recon.params import SimParameters
from imcsr_live.recon.preprocess import preprocess
from imcsr_live.recon.reconstructor import model_otf
from imcsr_live.recon.wiener import K0_REBUILD_TOLERANCE_PX, WienerReconstructor, WienerSettings, support_radius
from tests.recon.conftest import SimCase


def _rec(case: SimCase, size: int = 256, **settings: object) -> WienerReconstructor:
    return WienerReconstructor(
        (size, size),
        case.pixel_size_um,
        model_otf(case.rig),
        3,
        3,
        WienerSettings(**settings),  # type: ignore[arg-type]
    )


def _inner(img: np.ndarray, border: int = 40) -> np.ndarray:
    return img[border:-border, border:-border]


def test_flat_object_gives_flat_output_at_the_widefield_level(case_1000: SimCase) -> None:
    # Without attenuation the transfer is 1 at k = 0: a uniform specimen under any pattern is reconstructed as
    # the same uniform value (no pattern leaks into the image when the parameters are right).
    true = case_1000.truth_params[0]
    otf = model_otf(case_1000.rig)
    yy, xx = np.mgrid[0:256, 0:256] * case_1000.pixel_size_um
    frames = []
    for a in range(3):
        ky, kx = true.k0_cycles_per_um[a]
        amp = 0.8 * float(otf(np.array(ky), np.array(kx)))  # the detection OTF attenuates the pattern
        for p in range(3):
            frames.append(50.0 * (1 + amp * np.cos(2 * np.pi * (kx * xx + ky * yy) + true.phases_rad[a, p])))
    rec = _rec(case_1000, attenuation=0.0)
    rec.set_parameters(true)
    out = rec.reconstruct(np.asarray(frames, dtype=np.float32)).numpy()
    centre = out[200:312, 200:312]
    assert abs(centre.mean() / 50.0 - 1.0) < 0.01
    assert centre.std() / centre.mean() < 0.01


def test_reconstruction_matches_the_band_limited_truth_better_than_widefield(case_1000: SimCase) -> None:
    rec = _rec(case_1000)
    rec.set_parameters(case_1000.truth_params[0])
    prep = preprocess(case_1000.raw[0], 3, 3, 100.0)
    sr = rec.reconstruct(prep.frames).numpy()
    gt = case_1000.gt
    err_sr = np.linalg.norm(_inner(sr - gt)) / np.linalg.norm(_inner(gt))
    wide_up = np.kron(prep.widefield, np.ones((2, 2), dtype=np.float32))
    err_wf = np.linalg.norm(_inner(wide_up - gt)) / np.linalg.norm(_inner(gt))
    assert err_sr < 0.12, err_sr
    assert err_sr < 0.5 * err_wf


def test_estimated_parameters_reconstruct_like_the_true_ones(case_1000: SimCase) -> None:
    from imcsr_live.recon.estimate import ParameterEstimator

    prep = preprocess(case_1000.raw[0], 3, 3, 100.0)
    est = ParameterEstimator((256, 256), case_1000.pixel_size_um, model_otf(case_1000.rig), 3, 3).estimate(prep.frames)
    rec = _rec(case_1000)
    rec.set_parameters(case_1000.truth_params[0])
    with_true = rec.reconstruct(prep.frames).numpy()
    rec.set_parameters(est)
    with_est = rec.reconstruct(prep.frames).numpy()
    rel = np.linalg.norm(with_est - with_true) / np.linalg.norm(with_true)
    assert rel < 0.03, rel


def test_wrong_phases_leave_residual_peaks_that_the_check_detects(case_1000: SimCase) -> None:
    prep = preprocess(case_1000.raw[0], 3, 3, 100.0)
    true = case_1000.truth_params[0]
    rec = _rec(case_1000)
    rec.set_parameters(true)
    good = residual_peak_ratios(rec.reconstruct(prep.frames).numpy(), true, case_1000.pixel_size_um)
    bad_phases = true.phases_rad + np.array([0.0, 0.6, -0.6])  # +-34 deg phase-step errors
    rec.set_parameters(SimParameters(true.k0_cycles_per_um, bad_phases, true.modulation))
    bad = residual_peak_ratios(rec.reconstruct(prep.frames).numpy(), true, case_1000.pixel_size_um)
    assert np.nanmax(good) < 3.0
    assert np.nanmax(bad) > 3.0


def test_filters_are_rebuilt_only_when_k0_moves(case_1000: SimCase) -> None:
    true = case_1000.truth_params[0]
    rec = _rec(case_1000)
    rec.set_parameters(true)
    assert rec.rebuilds == 1
    scale = 256 * case_1000.pixel_size_um
    small = 0.5 * K0_REBUILD_TOLERANCE_PX / scale
    rec.set_parameters(SimParameters(true.k0_cycles_per_um + small, true.phases_rad + 0.1, true.modulation * 0.9))
    assert rec.rebuilds == 1
    rec.set_parameters(SimParameters(true.k0_cycles_per_um + 4 * small, true.phases_rad, true.modulation))
    assert rec.rebuilds == 2


def test_hifi_post_filter_preserves_the_specimen(case_1000: SimCase) -> None:
    prep = preprocess(case_1000.raw[0], 3, 3, 100.0)
    rec = _rec(case_1000, post_filter="hifi")
    rec.set_parameters(case_1000.truth_params[0])
    sr = rec.reconstruct(prep.frames).numpy()
    assert np.all(np.isfinite(sr))
    corr = np.corrcoef(_inner(sr).ravel(), _inner(case_1000.gt).ravel())[0, 1]
    assert corr > 0.97


def test_bad_calls_raise_clear_errors(case_1000: SimCase) -> None:
    rec = _rec(case_1000)
    with pytest.raises(InputDataError, match="no SIM parameters"):
        rec.reconstruct(np.zeros((9, 256, 256), np.float32))
    rec.set_parameters(case_1000.truth_params[0])
    with pytest.raises(InputDataError, match="expected frames of shape"):
        rec.reconstruct(np.zeros((8, 256, 256), np.float32))
    with pytest.raises(InputDataError, match="post filter"):
        WienerSettings(post_filter="magic")


def test_support_radius_is_kc_plus_k0_along_the_pattern_and_kc_across_a_single_angle() -> None:
    k0 = np.array([[0.0, 4.0]])
    ky = np.array([[0.0], [1.0]])
    kx = np.array([[1.0, 0.0]])
    r = support_radius(ky, kx, k0, 5.0)
    assert r[0, 0] == pytest.approx(9.0)  # along +x: the disc centred at +k0 reaches 4 + 5
    assert r[1, 1] == pytest.approx(5.0)  # along +y: the central disc only (the side discs reach 3 there)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(case_1000: SimCase) -> None:
    prep = preprocess(case_1000.raw[0], 3, 3, 100.0)
    outs = []
    for dev in ("cpu", "cuda"):
        rec = WienerReconstructor((256, 256), case_1000.pixel_size_um, model_otf(case_1000.rig), 3, 3, device=dev)
        rec.set_parameters(case_1000.truth_params[0])
        outs.append(rec.reconstruct(prep.frames).cpu().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-3, atol=1e-3 * outs[0].max())
