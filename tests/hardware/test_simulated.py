"""The pure-numpy simulated backend: protocol, determinism, presets, abort."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import AcquisitionAbortedError, DeviceMissingError, HardwareError
from imcsr_live.hardware import MicroscopeBackend, create_backend
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.hardware.training import acquire_training_timepoint
from imcsr_live.synth.world import WorldSettings

SETTINGS = WorldSettings(raw_shape=(64, 64), photons=500.0, seed=5)


def test_deterministic_for_a_seed_and_angle_major(simulated_toml) -> None:
    rig = load_rig_config(simulated_toml)
    backend = create_backend(rig, settings=SETTINGS)
    assert isinstance(backend, SimulatedBackend) and isinstance(backend, MicroscopeBackend)
    with pytest.raises(HardwareError, match="not open"):
        backend.acquire_sim_stack()
    with backend:
        a = [backend.acquire_sim_stack() for _ in range(2)]
        truth = backend.last_timepoint
    with SimulatedBackend(rig, SETTINGS) as again:
        b = [again.acquire_sim_stack() for _ in range(2)]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.frames, y.frames)
        assert x.pattern_indices == list(range(9)) and x.frames.dtype == np.uint16
    assert not np.array_equal(a[0].frames, a[1].frames)  # the specimen moves between timepoints
    assert truth is not None and truth.ground_truth.shape == (3, 128, 128)


def test_presets_give_single_structures_that_sum_to_the_mixture(simulated_toml) -> None:
    rig = load_rig_config(simulated_toml)
    with SimulatedBackend(rig, SETTINGS) as backend:
        point = acquire_training_timepoint(backend, rig.structure_names)
        assert backend.preset == "all"
        with pytest.raises(DeviceMissingError, match="no preset 'Actin'"):
            backend.set_channel_preset("Actin")
    gts = [s.info["preset"] for s in point.stacks.values()]
    assert gts == rig.structure_names
    # Offset-free mean images of the single-structure stacks add up to an all-structure image of the same state.
    singles = sum(s.frames.astype(np.float64).mean(axis=0) - 100.0 for s in point.stacks.values())
    with SimulatedBackend(rig, SETTINGS) as fresh:
        mixed = fresh.acquire_sim_stack().frames.astype(np.float64).mean(axis=0) - 100.0
    assert np.corrcoef(singles.ravel(), mixed.ravel())[0, 1] > 0.95


def test_abort_stops_a_paced_burst(simulated_toml) -> None:
    rig = load_rig_config(simulated_toml)
    rig.acquisition.exposure_ms = 200.0  # 1.8 s paced burst
    with SimulatedBackend(rig, SETTINGS, realtime=True) as backend:
        import threading

        threading.Timer(0.1, backend.abort).start()
        with pytest.raises(AcquisitionAbortedError, match="aborted on request"):
            backend.acquire_sim_stack()


def test_training_rounds_move_the_specimen_on_and_each_position_is_another_cell(simulated_toml) -> None:
    rig = load_rig_config(simulated_toml)

    def er_truth(backend: SimulatedBackend) -> np.ndarray:
        acquire_training_timepoint(backend, ["ER"])
        assert backend.last_timepoint is not None
        return backend.last_timepoint.ground_truth[0].ravel()  # the stack's only structure

    with SimulatedBackend(rig, SETTINGS) as backend:
        first, second = er_truth(backend), er_truth(backend)  # the preset again: the next timepoint
        backend.move_to(150.0, -20.0)
        elsewhere = er_truth(backend)
        backend.move_to(0.0, 0.0)
        back = er_truth(backend)  # the first cell, where it was left (one more timepoint on)
        assert backend.info()["position_um"] == (0.0, 0.0)
    assert not np.array_equal(first, second) and np.corrcoef(first, second)[0, 1] > 0.5
    assert abs(np.corrcoef(first, elsewhere)[0, 1]) < 0.3
    assert np.corrcoef(second, back)[0, 1] > 0.5 and not np.array_equal(second, back)
