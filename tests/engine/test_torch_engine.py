from __future__ import annotations

import numpy as np
import pytest
import torch

from imcsr_live.engine import Engine, Separated, nrmse, random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import EngineError, InputDataError
from imcsr_live.model.imcsr_net import IMCSRNetConfig
from imcsr_live.model.normalization import input_scale


def test_separate_matches_network_on_normalised_input(small_source, sr_window) -> None:
    eng = TorchEngine(small_source)
    assert isinstance(eng, Engine)
    res = eng.separate(sr_window)
    assert isinstance(res, Separated)
    assert res.channels.shape == (3, 96, 96) and res.channels.dtype == np.float32
    assert res.uncertainty is None
    assert 0.0 <= res.channels.min() and res.channels.max() <= 1.0
    scale = input_scale(sr_window)
    assert res.input_scale == pytest.approx(scale)
    with torch.no_grad():
        ref = small_source.net(torch.from_numpy(np.maximum(sr_window, 0)[None] / np.float32(scale))).numpy()[0]
    np.testing.assert_allclose(res.channels, ref, atol=2e-6)
    assert set(res.timings_s) == {"normalize", "infer", "total"}
    assert res.engine == "torch-cpu" and res.precision == "fp32"


def test_output_does_not_depend_on_input_brightness(small_source, sr_window) -> None:
    eng = TorchEngine(small_source)
    a = eng.separate(sr_window)
    b = eng.separate(sr_window * 37.0)
    np.testing.assert_allclose(a.channels, b.channels, atol=1e-6)
    assert b.input_scale == pytest.approx(37.0 * a.input_scale, rel=1e-5)


def test_uncertainty_head_gives_positive_std() -> None:
    src = random_model(IMCSRNetConfig(width=8, groups=1, blocks=1, reduction=4, uncertainty=True), seed=1)
    x = np.random.default_rng(0).random((3, 40, 48)).astype(np.float32)
    res = TorchEngine(src).separate(x)
    assert res.channels.shape == (3, 40, 48)
    assert res.uncertainty is not None and res.uncertainty.shape == (3, 40, 48)
    assert np.all(res.uncertainty > 0)
    with torch.no_grad():
        out = src.net(torch.from_numpy(x[None] / np.float32(input_scale(x)))).numpy()[0]
    np.testing.assert_allclose(res.uncertainty, np.exp(0.5 * out[3:]), rtol=1e-4)


@pytest.mark.parametrize(
    ("window", "match"),
    [
        (np.zeros((1, 32, 32)), "takes 3 SR frame"),
        (np.zeros((32, 32)), "takes 3 SR frame"),
        (np.full((3, 32, 32), np.nan), "NaN"),
        (np.zeros((3, 32, 32), complex), "real numbers"),
        (np.zeros((3, 4, 32)), "too small"),
    ],
)
def test_bad_windows_are_clear_errors(small_source, window, match) -> None:
    with pytest.raises(InputDataError, match=match):
        TorchEngine(small_source).separate(window)


def test_single_frame_model_accepts_2d_frame() -> None:
    src = random_model(IMCSRNetConfig(in_frames=1, width=8, groups=1, blocks=1, reduction=4), seed=2)
    x = np.random.default_rng(1).random((32, 40)).astype(np.float32)
    a = TorchEngine(src).separate(x)
    b = TorchEngine(src).separate(x[None])
    np.testing.assert_array_equal(a.channels, b.channels)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_parity_on_cpu(small_source, sr_window, precision) -> None:
    ref = TorchEngine(small_source).separate(sr_window).channels
    low = TorchEngine(small_source, precision).separate(sr_window)
    assert low.precision == precision and low.channels.dtype == np.float32
    err = nrmse(low.channels, ref)
    assert err <= 1e-2
    assert err > 0  # it really ran in reduced precision


def test_channels_last_is_the_same_network(small_source, sr_window) -> None:
    a = TorchEngine(small_source, channels_last=False).separate(sr_window).channels
    b = TorchEngine(small_source, channels_last=True).separate(sr_window).channels
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_warmup_reports_progress(small_source) -> None:
    seen: list[tuple[str, float]] = []
    TorchEngine(small_source).warmup((32, 48), lambda msg, frac: seen.append((msg, frac)))
    assert seen[0][1] == 0.0 and seen[-1][1] == 1.0 and "32x48" in seen[-1][0]


def test_bad_settings_are_engine_errors(small_source) -> None:
    with pytest.raises(EngineError, match="precision"):
        TorchEngine(small_source, "int8")
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="CUDA GPU"):
            TorchEngine(small_source, device="cuda")
        with pytest.raises(EngineError, match="CUDA graphs"):
            TorchEngine(small_source, cuda_graphs=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("precision", "compile"), [("fp16", False), ("bf16", False), ("fp16", True)])
def test_cuda_parity(small_source, sr_window, precision, compile) -> None:
    ref = TorchEngine(small_source).separate(sr_window).channels
    eng = TorchEngine(small_source, precision, device="cuda", compile=compile)
    eng.warmup(sr_window.shape[1:])
    out = eng.separate(sr_window).channels
    assert nrmse(out, ref) <= 1e-2
    assert eng.peak_memory_bytes() > 0


def test_device_normalisation_matches_numpy(small_source, sr_window) -> None:
    """GPU engines normalise on the device; the same code on the CPU must equal the numpy path."""
    from imcsr_live.engine.base import normalize_on_device
    from imcsr_live.model.normalization import normalize_input

    for frames in (sr_window, sr_window * 0.01, np.zeros_like(sr_window), sr_window[:, :37, :53] - 5.0):
        want, want_scale = normalize_input(frames)
        got, scale = normalize_on_device(frames, "cpu")
        assert scale == pytest.approx(want_scale, rel=1e-6)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    eng = TorchEngine(small_source)
    ref = eng.separate(sr_window)
    eng.normalize_on = torch.device("cpu")  # exercise the device path end to end
    res = eng.separate(sr_window)
    assert res.input_scale == pytest.approx(ref.input_scale, rel=1e-6)
    np.testing.assert_allclose(res.channels, ref.channels, atol=1e-6)
