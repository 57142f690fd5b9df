"""The synthetic microscope as a whole: photon calibration, consistency of raw / widefield / ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import SynthError
from imcsr_live.synth.world import PHOTON_PERCENTILE, SyntheticMicroscope, WorldSettings


@pytest.fixture(scope="module")
def rig(request: pytest.FixtureRequest):
    from pathlib import Path

    return load_rig_config(Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml")


def test_photon_level_sets_the_widefield_percentile(rig) -> None:
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(128, 128), photons=250.0, seed=3))
    point = world.next_timepoint()
    assert np.percentile(point.widefield, PHOTON_PERCENTILE) == pytest.approx(250.0, rel=1e-3)
    # the raw frames sit on the camera offset and carry the same mean signal as the widefield
    offset = world.settings.camera.offset_adu
    assert point.raw.astype(np.float64).mean() - offset == pytest.approx(point.widefield.mean(), rel=0.02)


def test_ground_truth_channels_add_up_to_the_widefield_signal(rig) -> None:
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(128, 128), photons=500.0, seed=5))
    point = world.next_timepoint()
    assert point.ground_truth.shape == (3, 256, 256)
    assert (point.ground_truth.reshape(3, -1).max(axis=1) > 0).all()  # every structure is present
    # total signal (DC) is preserved: truth and widefield are in the same photoelectron units
    assert point.ground_truth.sum(axis=0).mean() == pytest.approx(point.widefield.mean(), rel=1e-3)


def test_same_seed_same_timelapse_and_photons_do_not_change_the_specimen(rig) -> None:
    def run(seed: int, photons: float) -> list:
        world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), photons=photons, seed=seed))
        return [world.next_timepoint() for _ in range(3)]

    a, b, c, d = run(1, 300.0), run(1, 300.0), run(2, 300.0), run(1, 30.0)
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa.raw, pb.raw)
        np.testing.assert_array_equal(pa.ground_truth, pb.ground_truth)
    assert not np.array_equal(a[0].raw, c[0].raw)
    # a different photon level rescales the same specimen: ground truth shapes are identical up to scale
    ratio = d[2].ground_truth.sum() / a[2].ground_truth.sum()
    np.testing.assert_allclose(d[2].ground_truth, a[2].ground_truth * ratio, rtol=1e-4, atol=1e-6)
    assert a[1].time_s == pytest.approx(rig.acquisition.interval_s)


def test_bad_settings_are_clear(rig) -> None:
    with pytest.raises(SynthError, match="photons"):
        WorldSettings(photons=0)
    with pytest.raises(SynthError, match="even"):
        WorldSettings(raw_shape=(63, 64))


@pytest.mark.parametrize(
    ("world", "specimen_type"),
    [
        ("independent", "imcsr_live.synth.independent.IndependentSpecimen"),
        ("heldout", "imcsr_live.synth.heldout.HeldoutSpecimen"),
    ],
)
def test_the_microscope_images_the_evaluation_worlds(rig, world: str, specimen_type: str) -> None:
    scope = SyntheticMicroscope(rig, WorldSettings(world=world, raw_shape=(64, 64), seed=4))
    assert f"{type(scope.specimen).__module__}.{type(scope.specimen).__name__}" == specimen_type
    points = [scope.next_timepoint() for _ in range(2)]
    for p in points:
        assert p.raw.dtype == np.uint16 and p.raw.shape == (9, 64, 64)
        assert p.ground_truth.shape == (3, 128, 128) and np.isfinite(p.ground_truth).all()
        assert p.ground_truth.min() >= -1e-3 * p.ground_truth.max()
    assert points[1].time_s == pytest.approx(rig.acquisition.interval_s)
    assert not np.array_equal(points[0].ground_truth, points[1].ground_truth)
