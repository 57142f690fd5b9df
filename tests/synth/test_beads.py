"""The bead resolution-test specimen: count, brightness, determinism, and a spectrum that a cell does not have."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import SynthError
from imcsr_live.synth.beads import BeadParams, Beads, bead_truth
from imcsr_live.synth.render import Grid
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings


def _ring_power(img: np.ndarray, pixel_size_um: float, k: float, width: float) -> float:
    """Mean power spectrum of ``img`` (mean removed) in the ring ``|f - k| < width`` cycles/um."""
    spec = np.abs(np.fft.fft2(img - img.mean())) ** 2
    ny, nx = img.shape
    f = np.hypot(np.fft.fftfreq(ny, pixel_size_um)[:, None], np.fft.fftfreq(nx, pixel_size_um)[None, :])
    return float(spec[np.abs(f - k) < width].mean())


def test_beads_have_the_requested_count_and_total_brightness() -> None:
    grid = Grid((200, 300), 0.0313)
    params = BeadParams(density_per_um2=5.0, fwhm_um=0.02, brightness_sigma=0.3)
    beads = Beads(grid.field, np.random.default_rng(3), params)
    assert beads.count == round(5.0 * grid.field.area_um2)  # 5 x 6.26 x 9.39 um^2 = 294
    assert beads.brightness.shape == (beads.count,)
    assert abs(beads.brightness.mean() - 1.0) < 0.1  # log-normal factors with mean 1
    img = beads.render(grid)
    assert img.shape == (1, *grid.shape) and img.dtype == np.float32 and img.min() >= 0
    # Densities: the integrated intensity is the sum of the bead brightnesses (a few % lost over the border).
    total = float(img.sum()) * grid.pixel_size_um**2
    assert 0.97 * beads.brightness.sum() <= total <= beads.brightness.sum() * (1 + 1e-4)
    # Each bead sits where it was placed: the brightest pixel near a bead lies within one pixel of it.
    x, y = beads.positions_um[np.argmax(beads.brightness)]
    i, j = int(y / grid.pixel_size_um), int(x / grid.pixel_size_um)
    if 3 <= i < grid.shape[0] - 3 and 3 <= j < grid.shape[1] - 3:
        win = img[0, i - 3 : i + 4, j - 3 : j + 4]
        di, dj = np.unravel_index(np.argmax(win), win.shape)
        assert abs(di - 3) <= 1 and abs(dj - 3) <= 1


def test_bead_truth_is_seeded() -> None:
    a = bead_truth((64, 64), 0.0313, seed=1)
    assert np.array_equal(a, bead_truth((64, 64), 0.0313, seed=1))
    assert not np.array_equal(a, bead_truth((64, 64), 0.0313, seed=2))


@pytest.mark.parametrize("kwargs", [{"density_per_um2": 0.0}, {"fwhm_um": -0.01}, {"brightness_sigma": -1.0}])
def test_bad_bead_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(SynthError, match=rf"bead .*{next(iter(kwargs))}.* must be"):
        BeadParams(**kwargs)


def test_bead_spectrum_is_flat_beyond_the_sim_support_where_the_cell_spectrum_has_fallen_away() -> None:
    rig = load_rig_config("hardware_configs/simulated.toml")
    kc = rig.optics.otf_cutoff_per_um
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(256, 256), seed=0))
    fwd = world.forward
    assert fwd.truth_pixel_size_um == pytest.approx(rig.optics.pixel_size_um / 2)  # truth grid = SR grid
    ratios = {}
    for name, truth in (
        ("beads", bead_truth(fwd.truth_shape, fwd.truth_pixel_size_um, seed=0)),
        ("cell", world.specimen.render()),
    ):
        img = truth.sum(axis=0)
        ratios[name] = _ring_power(img, fwd.truth_pixel_size_um, 1.8 * kc, 0.05 * kc) / _ring_power(
            img, fwd.truth_pixel_size_um, 0.5 * kc, 0.05 * kc
        )
    # A 20 nm bead (plus the half-pixel anti-aliasing floor) keeps ~45 % of its power from 0.5 kc to 1.8 kc;
    # the synthetic cell keeps ~1 %.
    assert ratios["beads"] > 0.25
    assert ratios["cell"] < 0.05
    assert ratios["beads"] > 10 * ratios["cell"]
