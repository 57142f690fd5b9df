"""SLM pattern images, their decoding, and frame-slip detection (pure functions, known truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.hardware.patterns import PatternDecoder, sim_pattern_images, slm_pixel_um
from imcsr_live.hardware.sync import check_burst
from imcsr_live.illumination import pattern_params


@pytest.mark.parametrize(("slm_shape", "camera_width"), [((128, 128), 128), ((96, 160), 80)])
def test_decoder_recovers_every_pattern(simulated_toml, slm_shape, camera_width) -> None:
    rig = load_rig_config(simulated_toml)
    pix = slm_pixel_um(rig, camera_width, slm_shape[1])
    images = sim_pattern_images(rig, slm_shape, pix)
    assert images.shape == (9, *slm_shape) and images.dtype == np.uint8
    decoder = PatternDecoder(rig, slm_shape, pix)
    nominal = pattern_params(rig).nominal_phases_rad()
    for i, img in enumerate(images):
        d = decoder.decode(img, 255.0)
        assert d.pattern_index == i and d.angle_index == i // 3
        err = math.remainder(d.phase_rad - nominal[i // 3, i % 3], 2 * math.pi)
        assert abs(math.degrees(err)) < 1.0
        assert d.contrast > 0.95 and abs(d.brightness - 0.5) < 0.01


def test_decoder_uniform_and_dark_images(simulated_toml) -> None:
    rig = load_rig_config(simulated_toml)
    decoder = PatternDecoder(rig, (64, 64), 0.0626)
    full = decoder.decode(np.full((64, 64), 255, np.uint8), 255.0)
    assert full.angle_index is None and full.pattern_index is None and full.brightness == 1.0
    dark = decoder.decode(np.zeros((64, 64), np.uint8), 255.0)
    assert dark.brightness == 0.0 and dark.angle_index is None


def test_check_burst_pattern_indices() -> None:
    assert check_burst(list(range(9))).ok
    rotated = check_burst([3, 4, 5, 6, 7, 8, 0, 1, 2])
    assert rotated.ok and rotated.reordered
    assert [[3, 4, 5, 6, 7, 8, 0, 1, 2][i] for i in rotated.order] == list(range(9))
    slip = check_burst([0, 1, 2, 3, 3, 4, 5, 6, 7])
    assert not slip.ok and "repeated [3]" in slip.reason and "missing [8]" in slip.reason


def test_check_burst_without_pattern_indices_uses_counters_and_timestamps() -> None:
    none9 = [None] * 9
    assert check_burst(none9, list(range(10, 19)), [10.0 * i for i in range(9)]).ok
    dropped = check_burst(none9, [0, 1, 2, 4, 5, 6, 7, 8, 9])
    assert not dropped.ok and "not consecutive" in dropped.reason
    times = [10.0 * i for i in range(9)]
    times[5:] = [t + 10.0 for t in times[5:]]  # one missed trigger = one extra frame period
    gap = check_burst(none9, [], times)
    assert not gap.ok and "frames 4 and 5" in gap.reason
    assert not check_burst(none9, [], times, frame_period_ms=9.0).ok  # exposure-limited: timing is evidence
    assert check_burst(none9, [], times, frame_period_ms=1.0).ok  # overhead-limited: jitter, not evidence
    assert check_burst(none9).ok  # no evidence: nothing to reject
