"""Synthetic SIM stacks with known truth for the reconstruction tests (small fields, fixed seeds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from imcsr_live.config import RigConfig, load_rig_config
from imcsr_live.recon.params import SimParameters
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from tests.conftest import SIMULATED_TOML


@dataclass
class SimCase:
    rig: RigConfig
    raw: list[np.ndarray]  # independent noise realisations of one specimen, uint16 (9, Y, X)
    truth_params: list[SimParameters]
    gt: np.ndarray  # band-limited SR truth (2Y, 2X), photoelectron units
    widefield: np.ndarray  # noiseless widefield (Y, X)

    @property
    def pixel_size_um(self) -> float:
        return self.rig.optics.pixel_size_um


def make_case(size: int, photons: float, seed: int = 0, n_real: int = 1, rig: RigConfig | None = None) -> SimCase:
    rig = rig or load_rig_config(SIMULATED_TOML)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(size, size), photons=photons, seed=seed))
    truth = world.specimen.render()
    scale = world._calibrate(truth)
    raws, params = [], []
    for k in range(n_real):
        fr = world.forward.simulate(truth, scale, np.random.default_rng(100 + k))
        raws.append(fr.raw)
        params.append(SimParameters(fr.k0_cycles_per_um, fr.phases_rad, np.full(3, fr.modulation)))
        wide = fr.widefield
    gt = world.forward.sr_ground_truth(truth).sum(axis=0) * np.float32(scale)
    return SimCase(rig, raws, params, gt, wide)


@pytest.fixture(scope="session")
def case_1000() -> SimCase:
    return make_case(256, 1000.0, seed=0, n_real=2)


@pytest.fixture(scope="session")
def case_200() -> SimCase:
    # Full-size field: the phase targets refer to camera pixel (0, 0), where a k0 error of a few 1/1000 px
    # already moves the phase by ~1 deg on a 256-px field.
    return make_case(512, 200.0, seed=1, n_real=1)
