"""Shared fixtures: a private engine cache, small seeded networks, synthetic SR windows with known structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imcsr_live.config import load_rig_config
from imcsr_live.engine.model_source import ModelSource, random_model, state_sha256
from imcsr_live.model.imcsr_net import ChannelAttention, IMCSRNetConfig
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from tests.conftest import SIMULATED_TOML

SMALL = IMCSRNetConfig(width=16, groups=2, blocks=2, reduction=4)


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(autouse=True)
def _private_engine_cache(engine_cache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(engine_cache))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The networks here are tiny: with 2 OpenMP threads on a shared 2-core machine, barrier waits dominate
    # (measured 0.7 s vs 4 ms per 64x64 call). Restored afterwards so other packages' tests are unaffected.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sensitized(source: ModelSource) -> ModelSource:
    """Scale attention and output weights up so that the output depends strongly on the pooled statistics
    (a random network barely uses its attention, which would hide tiling and precision errors)."""
    net = source.net
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ChannelAttention):
                m.down.weight *= 8
                m.up.weight *= 8
        net.out.weight *= 30
    return ModelSource(net, source.name + "-sensitized", state_sha256(net))


@pytest.fixture(scope="session")
def small_source() -> ModelSource:
    return sensitized(random_model(SMALL, seed=3))


@pytest.fixture(scope="session")
def sr_window() -> np.ndarray:
    """Three consecutive noiseless SR-resolution frames (sum of the structures) of the synthetic cell, 96x96."""
    rig = load_rig_config(SIMULATED_TOML)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(48, 48), photons=1000.0, seed=1))
    return np.stack([world.next_timepoint().ground_truth.sum(axis=0) for _ in range(3)]).astype(np.float32)
