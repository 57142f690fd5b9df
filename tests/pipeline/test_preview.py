"""Simulated preview loop: fixed time grid, overruns skipped and counted, latest wins, errors surface."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.pipeline.composite import additive_composite, autoscale
from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


def small_world(rig, seed: int = 0) -> SyntheticMicroscope:
    return SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), seed=seed))


def test_runs_the_requested_timepoints_on_a_worker_thread(rig) -> None:
    threads: list[str] = []
    preview = SimulatedPreview(small_world(rig), interval_s=0.01, frames=4,
                               on_frame=lambda f: threads.append(threading.current_thread().name))  # fmt: skip
    preview.start()
    assert preview.wait(60)
    assert preview.error is None
    assert preview.stats.timepoints == 4
    assert set(threads) == {"simulated-acquisition"}
    latest = preview.latest()
    assert latest is not None and latest.point.index == 3  # the newest frame replaced the older ones
    shown = preview.newest()
    assert [layer.shape for layer in shown.channels] == [(128, 128)] * 3 and shown.widefield.shape == (64, 64)
    assert shown.widefield_scale == 2.0
    # the uint16 layers hold the ground truth to within one count
    truth = latest.point.ground_truth
    for layer, channel in zip(shown.channels, truth, strict=True):
        np.testing.assert_allclose(layer.values(), channel, atol=layer.value_per_count)


def test_overrun_skips_grid_slots_instead_of_shifting(rig) -> None:
    preview = SimulatedPreview(small_world(rig), interval_s=1e-4, frames=3)  # every timepoint overruns
    preview.start()
    assert preview.wait(60)
    assert preview.stats.timepoints == 3
    assert preview.stats.skipped_slots >= 2


def test_errors_in_the_world_are_reported_not_swallowed(rig) -> None:
    world = small_world(rig)

    def broken(dt_s: float | None = None) -> None:
        raise RuntimeError("camera fell off")

    world.next_timepoint = broken  # type: ignore[method-assign]
    preview = SimulatedPreview(world, interval_s=0.01, frames=2)
    preview.start()
    assert preview.wait(10)
    assert isinstance(preview.error, RuntimeError)


def test_additive_composite_is_the_sum_of_tinted_channels() -> None:
    rng = np.random.default_rng(0)
    channels = rng.random((3, 20, 30)).astype(np.float32)
    colours = ["#00FF00", "#FF00FF", "#00FFFF"]
    rgb = additive_composite(channels, colours, (0.0, 100.0), gamma=1.0)
    a, b, c = (autoscale(ch, (0.0, 100.0)) for ch in channels)
    expected = np.stack([b, np.minimum(a + c, 1), np.minimum(b + c, 1)], axis=-1)
    np.testing.assert_allclose(rgb / 255.0, expected, atol=1 / 255)
    hidden = additive_composite(channels, colours, (0.0, 100.0), gamma=1.0, visible=[True, False, True])
    assert hidden[..., 0].max() == 0  # only magenta had red
