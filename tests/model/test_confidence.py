"""Per-frame confidence: analytic frames (perfect separation, missed structure, large predicted std), the
reference fitted from per-image values, and the model-card round trip."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.model.confidence import (
    DEFAULT_RESIDUAL,
    FLOOR,
    ConfidenceModel,
    ConfidenceReference,
    fit_reference,
    frame_values,
    judge,
)

NAMES = ("Microtubules", "ER", "Lysosomes")


def _channels(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ch = np.zeros((3, size, size), np.float32)
    ch[0, :, 10] = 0.8  # a line
    ch[1] = 0.03 * rng.random((size, size))  # a dim diffuse network (below FLOOR)
    ch[2, 30:36, 30:36] = 0.9  # a blob
    return ch


def test_perfect_separation_has_zero_residual_and_is_in_distribution() -> None:
    ch = _channels()
    model = ConfidenceModel(ConfidenceReference(0.05, (0.3, 0.3, 0.3)), channel_names=NAMES)
    conf = model.assess(ch, np.full_like(ch, 0.01), ch.sum(axis=0))
    assert conf.residual == pytest.approx(0.0, abs=1e-6)
    assert conf.in_distribution and conf.reason == "" and conf.label == "ok"
    # std 0.01 everywhere over the channel's bright level (0.8, 0.03 -> FLOOR, 0.9)
    assert conf.predicted_error == pytest.approx((0.01 / 0.8, 0.01 / FLOOR, 0.01 / 0.9), rel=1e-3)


def test_structure_the_channels_miss_gives_a_large_residual_and_is_flagged() -> None:
    ch = _channels()
    x = ch.sum(axis=0)
    x[40:60, 5:60] += 0.7  # a bright patch no channel explains
    conf = ConfidenceModel(ConfidenceReference(0.05), channel_names=NAMES).assess(ch, None, x)
    # RMS of 0.7 over 20 x 55 of 64 x 64 pixels, relative to the input's 99.9th percentile
    expected = 0.7 * np.sqrt(20 * 55 / 64**2) / np.percentile(x, 99.9)
    assert conf.residual == pytest.approx(expected, rel=1e-3)
    assert not conf.in_distribution and "sum residual" in conf.reason
    assert conf.predicted_error is None  # no uncertainty head


def test_large_predicted_std_is_flagged_naming_the_channel() -> None:
    ch = _channels()
    std = np.full_like(ch, 0.01)
    std[2] = 0.5  # the lysosome channel is unsure everywhere
    conf = ConfidenceModel(ConfidenceReference(0.05, (0.1, 0.5, 0.1)), channel_names=NAMES).assess(
        ch, std, ch.sum(axis=0)
    )
    assert not conf.in_distribution
    assert "Lysosomes predicted error" in conf.reason and "ER" not in conf.reason
    assert conf.label.startswith("LOW (Lysosomes")
    assert conf.to_dict()["predicted_error"]["Lysosomes"] == pytest.approx(0.5 / 0.9, rel=1e-3)


def test_an_uncertain_sparse_structure_is_not_diluted_by_the_empty_background() -> None:
    # The lysosome channel is sure of its empty background (std 0.001) and unsure on its blob and its rim: 49 of
    # 4096 pixels (1.2 %) at std 0.45, half the blob's brightness. The predicted error reports the 99th percentile
    # of the std; an RMS over the frame would say 0.049 / 0.9 = 5 % and hide it.
    ch = _channels()
    std = np.full_like(ch, 0.001)
    std[2, 30:37, 30:37] = 0.45
    conf = ConfidenceModel(ConfidenceReference(0.05, (0.1, 0.1, 0.1)), channel_names=NAMES).assess(
        ch, std, ch.sum(axis=0)
    )
    assert conf.predicted_error is not None
    expected = np.percentile(std[2], 99.0) / 0.9
    assert conf.predicted_error[2] == pytest.approx(expected, rel=1e-3)
    assert conf.predicted_error[2] > 0.3  # most of the blob's level: flagged
    assert not conf.in_distribution and "Lysosomes predicted error" in conf.reason


def test_calibration_from_the_card_is_applied_before_judging() -> None:
    ch = _channels()
    card = {
        "structures": [{"name": n} for n in NAMES],
        "architecture": {"uncertainty": True},
        "uncertainty_calibration": [{"scale": 1.0, "offset": 0.0}] * 2 + [{"scale": 10.0, "offset": 0.0}],
        "confidence_reference": {"residual": 0.05, "predicted_error": [0.1, 0.5, 0.1], "source": "validation"},
    }
    model = ConfidenceModel.from_card(card)
    assert model.reference.source == "validation"
    raw = np.full_like(ch, 0.005)
    conf = model.assess(ch, raw, ch.sum(axis=0))
    assert conf.predicted_error[2] == pytest.approx(0.05 / 0.9, rel=1e-3)  # 10 x the raw std
    assert conf.in_distribution
    conf = model.assess(ch, raw * 3, ch.sum(axis=0))  # calibrated 0.15 / 0.9 > 0.1
    assert not conf.in_distribution and conf.reason.startswith("Lysosomes")


def test_card_without_reference_uses_defaults_residual_only_without_a_head() -> None:
    plain = ConfidenceModel.from_card({"structures": [{"name": n} for n in NAMES], "architecture": {}})
    assert plain.reference.residual == DEFAULT_RESIDUAL and plain.reference.predicted_error is None
    head = ConfidenceModel.from_card({"structures": [{"name": n} for n in NAMES], "architecture": {"uncertainty": 1}})
    assert head.reference.predicted_error is not None and len(head.reference.predicted_error) == 3


def test_reference_is_the_percentile_of_per_image_values_times_the_margin() -> None:
    residuals = np.arange(1, 101) / 1000.0  # 0.001 .. 0.100
    errors = np.stack([residuals * 2, residuals * 3], axis=1)
    ref = fit_reference(residuals, errors, percentile=95.0, margin=1.5)
    assert ref.residual == pytest.approx(np.percentile(residuals, 95) * 1.5)  # 0.09505 * 1.5
    assert ref.residual == pytest.approx(0.1425750, rel=1e-6)
    assert ref.predicted_error == pytest.approx((0.285150, 0.427725), rel=1e-6)
    assert ConfidenceReference.from_dict(ref.to_dict()) == ref
    assert fit_reference(residuals).predicted_error is None


def test_large_frames_are_subsampled_consistently() -> None:
    ch = np.tile(_channels(size=64), (1, 16, 16))  # 1024 x 1024
    x = ch.sum(axis=0) + 0.1
    full, _ = frame_values(ch, None, x, max_pixels=ch.shape[1] * ch.shape[2])
    sub, _ = frame_values(ch, None, x)
    assert sub == pytest.approx(full, rel=0.05)


def test_nan_values_are_out_of_distribution() -> None:
    conf = judge(float("nan"), None, ConfidenceReference(0.1))
    assert not conf.in_distribution


def test_thresholds_fitted_per_frame_size_judge_each_frame_by_the_nearest_size() -> None:
    small = ConfidenceReference(0.05, (0.1, 0.5, 0.5), "small frames")
    large = ConfidenceReference(0.05, (0.1, 0.5, 0.05), "large frames")
    ref = ConfidenceReference(0.05, (0.1, 0.5, 0.5), "pooled", by_size=((128, small), (512, large)))
    assert ref.at(120) is small and ref.at(180) is small and ref.at(400) is large and ref.at(4096) is large
    assert ConfidenceReference.from_dict(ref.to_dict()) == ref  # the card round trip keeps the sizes
    assert ConfidenceReference(0.05).at(256) == ConfidenceReference(0.05)  # no sizes: one set for all
    model = ConfidenceModel(ref, channel_names=NAMES)
    for side, flagged in ((64, False), (512, True)):  # the same lysosome std, judged at each size
        ch = np.zeros((3, side, side), np.float32)
        ch[:, : side // 2, : side // 2] = 1.0
        std = np.full_like(ch, 0.01)
        std[2] = 0.2
        conf = model.assess(ch, std, ch.sum(axis=0))
        assert (not conf.in_distribution) == flagged, side
        assert ("Lysosomes predicted error" in conf.reason) == flagged
