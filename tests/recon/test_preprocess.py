"""Input checks and pre-processing of raw stacks."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.errors import InputDataError
from imcsr_live.recon.preprocess import edge_taper, preprocess


def _stack(shape: tuple[int, ...] = (9, 64, 64), value: int = 300) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint16)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_stack((8, 64, 64)), r"shape \(9, Y, X\)"),
        (_stack((2, 9, 64, 64)), r"shape \(9, Y, X\)"),
        (_stack().astype(np.complex64), "dtype"),
        (_stack().astype(bool), "dtype"),
        (_stack((9, 63, 64)), "even-sized"),
    ],
)
def test_malformed_stacks_are_rejected(raw: np.ndarray, match: str) -> None:
    with pytest.raises(InputDataError, match=match):
        preprocess(raw, 3, 3, 100.0)


def test_nan_frames_are_named() -> None:
    raw = _stack().astype(np.float32)
    raw[4, 3, 3] = np.nan
    with pytest.raises(InputDataError, match=r"raw frames \[4\] contain NaN"):
        preprocess(raw, 3, 3, 100.0)


def test_all_zero_frames_are_named() -> None:
    raw = _stack()
    raw[2] = 0
    with pytest.raises(InputDataError, match=r"\[2\] are all zero"):
        preprocess(raw, 3, 3, 100.0)


def test_frames_at_the_camera_offset_hold_no_signal() -> None:
    with pytest.raises(InputDataError, match="no signal above the camera offset"):
        preprocess(_stack(value=90), 3, 3, 100.0)


def test_saturated_frames_are_flagged_not_rejected() -> None:
    raw = _stack()
    raw[7, :10, :] = 65535
    prep = preprocess(raw, 3, 3, 100.0)
    assert prep.warnings and "frames [7] are saturated" in prep.warnings[0]


def test_frames_are_not_rescaled_but_their_mean_gains_are_reported_and_edges_tapered() -> None:
    # Equalising the frame means applied a specimen-dependent gain (a frame's mean holds the specimen's
    # content at k0); the gains are estimated from the band overlap instead. Pre-processing only reports
    # the frame-mean gains, the start of that fit.
    raw = _stack()
    raw[1] = 500  # a brighter flash in phase 1 of angle 0
    prep = preprocess(raw, 3, 3, 100.0)
    centre = prep.frames[:3, 32, 32]
    np.testing.assert_allclose(centre, np.clip(raw[:3, 32, 32].astype(np.float32) - 100.0, 0, None), rtol=1e-6)
    assert prep.mean_gains.shape == (3, 3)
    np.testing.assert_allclose(prep.mean_gains.mean(axis=1), 1.0, rtol=1e-12)
    assert prep.mean_gains[0, 1] > 1.0 > prep.mean_gains[0, 0]
    assert prep.frames[0, 0, 0] < 0.01 * prep.frames[0, 32, 32]
    taper = edge_taper((64, 64), 16)
    assert taper[32, 32] == 1.0 and taper[0, 32] < 0.01 and taper[15, 32] > 0.99
