"""Guards: bad estimates never reach the reconstruction silently."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.recon.params import SimParameters, nominal_parameters
from imcsr_live.recon.tracker import ParameterTracker

SHAPE, P = (256, 256), 0.0625
SCALE = SHAPE[0] * P  # cycles/um -> px


def _nominal() -> SimParameters:
    return nominal_parameters([0.0, 60.0, 120.0], 0.2, 3, 0.8)


def _good(**changes: object) -> SimParameters:
    base = _nominal()
    fields = {
        "k0_cycles_per_um": base.k0_cycles_per_um + 0.01,
        "phases_rad": base.phases_rad + 0.3,
        "modulation": np.full(3, 0.75),
        "peak_to_noise": np.full(3, 50.0),
        "phase_sigma_rad": np.full(3, np.radians(0.5)),
        "side_band_snr": np.full(3, 5.0),
    }
    fields.update(changes)
    return SimParameters(**fields)  # type: ignore[arg-type]


def test_a_good_estimate_is_accepted_and_remembered() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    out = tr.accept(_good())
    assert out.confident and not out.notes
    assert tr.last_good is out


def test_low_peak_keeps_the_last_good_values_for_that_angle() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    first = tr.accept(_good())
    bad = _good(peak_to_noise=np.array([50.0, 2.0, 50.0]), phases_rad=_nominal().phases_rad + 1.0)
    out = tr.accept(bad)
    assert not out.confident and "angle 1: no clear pattern peak" in out.notes[0]
    np.testing.assert_allclose(out.phases_rad[1], first.phases_rad[1])
    np.testing.assert_allclose(out.phases_rad[0], bad.phases_rad[0])
    assert tr.last_good is first  # a partly failed timepoint is not a reference


def test_k0_jump_phase_step_error_and_noisy_phases_are_guarded() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    tr.accept(_good())
    k0 = _good().k0_cycles_per_um.copy()
    k0[0] += 1.0 / SCALE  # 1 px jump
    ph = _good().phases_rad.copy()
    ph[1, 1] += np.radians(25.0)
    sig = np.radians(np.array([0.5, 0.5, 8.0]))
    out = tr.accept(_good(k0_cycles_per_um=k0, phases_rad=ph, phase_sigma_rad=sig))
    text = " ".join(out.notes)
    assert "angle 0: k0 jumped" in text and "angle 1: phase steps off nominal" in text
    assert "angle 2: phases too noisy" in text


def test_modulation_is_clamped_and_k0_smoothed() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    first = tr.accept(_good(modulation=np.array([0.2, 1.4, 0.7])))
    np.testing.assert_allclose(first.modulation, [0.5, 1.0, 0.7])
    k0 = first.k0_cycles_per_um + 0.2 / SCALE
    second = tr.accept(_good(k0_cycles_per_um=k0, modulation=np.array([0.7, 0.7, 0.7])))
    w = tr.settings.smoothing
    np.testing.assert_allclose(second.k0_cycles_per_um, w * k0 + (1 - w) * first.k0_cycles_per_um)
    # The pattern phase at the field centre is what the data fix: smoothing k0 must not move it.
    centre = np.array([SHAPE[0] / 2, SHAPE[1] / 2]) * P
    est_phase = _good().phases_rad + 2 * np.pi * (k0 @ centre)[:, None]
    kept = second.phases_rad + 2 * np.pi * (second.k0_cycles_per_um @ centre)[:, None]
    np.testing.assert_allclose(np.angle(np.exp(1j * (kept - est_phase))), 0.0, atol=1e-9)
    assert second.modulation[0] == pytest.approx(w * 0.7 + (1 - w) * 0.5)


def test_a_weak_side_band_flags_the_timepoint_but_keeps_the_estimate() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    est = _good(side_band_snr=np.array([5.0, 0.4, 5.0]))
    out = tr.accept(est)
    assert not out.confident
    assert len(out.notes) == 1 and "angle 1: weak side band (SNR 0.40 < 1)" in out.notes[0]
    np.testing.assert_allclose(out.phases_rad, est.phases_rad)  # the values are right, only the data are dim
    np.testing.assert_allclose(out.k0_cycles_per_um, est.k0_cycles_per_um)
    assert tr.last_good is out  # and they are a valid reference for the next timepoint
    assert tr.accept(_good(side_band_snr=np.full(3, np.nan))).confident  # not measured: no flag


def test_first_failure_falls_back_to_the_nominal_pattern() -> None:
    tr = ParameterTracker(_nominal(), SHAPE, P)
    out = tr.accept(_good(peak_to_noise=np.full(3, 1.0)))
    assert not out.confident and tr.last_good is None
    np.testing.assert_allclose(out.k0_cycles_per_um, _nominal().k0_cycles_per_um)
    assert any("nominal pattern" in n for n in out.notes)


def test_parameters_round_trip_through_json_dicts() -> None:
    import json

    p = _good(notes=("x",), confident=False)
    q = SimParameters.from_dict(json.loads(json.dumps(p.to_dict())))
    np.testing.assert_allclose(q.k0_cycles_per_um, p.k0_cycles_per_um, atol=1e-6)
    np.testing.assert_allclose(q.phases_rad, p.phases_rad, atol=1e-4)
    np.testing.assert_allclose(q.side_band_snr, p.side_band_snr)
    assert q.notes == ("x",) and not q.confident


def test_frame_gains_round_trip_and_old_files_without_them_read_as_ones() -> None:
    import json

    gains = np.array([[1.0, 1.02, 0.98], [0.99, 1.0, 1.01], [1.0, 1.0, 1.0]])
    q = SimParameters.from_dict(json.loads(json.dumps(_good(gains=gains).to_dict())))
    np.testing.assert_allclose(q.frame_gains(), gains, atol=1e-6)
    old = _good().to_dict()
    del old["frame_gains"]  # a params file written before the gains existed
    np.testing.assert_array_equal(SimParameters.from_dict(old).frame_gains(), np.ones((3, 3)))
    assert _good(gains=np.full((3, 3), np.nan)).frame_gains().tolist() == np.ones((3, 3)).tolist()
