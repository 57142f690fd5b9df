"""A resolution-test specimen: dense, randomly placed sub-resolution beads (point emitters).

Optical labs measure a system's resolution on a specimen with content at every spatial frequency (a bead
slide, a resolution target), because an FRC cutoff can only be as high as the specimen's own spectrum allows.
Beads placed uniformly at random (a Poisson point field) have a white spectrum, times the transfer of one
bead: with the default 20 nm FWHM (plus the renderer's anti-aliasing floor of half a pixel) the power at
1.8 kc is still ~1/3 of that at 0.5 kc on the 31.3 nm SR grid, whereas a cell's falls by orders of
magnitude. Static (no motion); one density channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import SynthError
from imcsr_live.synth.render import Field, Grid, lognormal_brightness, render_points


@dataclass(frozen=True)
class BeadParams:
    """Bead slide parameters (physical units in the names)."""

    density_per_um2: float = 4.0  # mean spacing 0.5 um: fills the field, ~1 bead per widefield PSF area x 7
    fwhm_um: float = 0.02  # bead size, read as a Gaussian FWHM (20 nm beads are well below 100 nm SIM resolution)
    brightness_sigma: float = 0.3  # log-normal spread of the per-bead brightness (0 = all equal)

    def __post_init__(self) -> None:
        if not self.density_per_um2 > 0:
            raise SynthError(f"bead density_per_um2 must be > 0 (got {self.density_per_um2})")
        if self.fwhm_um < 0 or self.brightness_sigma < 0:
            raise SynthError(
                f"bead fwhm_um and brightness_sigma must be >= 0 (got {self.fwhm_um}, {self.brightness_sigma})"
            )


class Beads:
    """Beads at uniform random positions in a field; positions and brightness are fixed at construction.

    Parameters
    ----------
    field : Field
        The physical field (um); the count is ``round(density_per_um2 * area)``.
    rng : numpy.random.Generator
        Draws the positions, then the brightness factors.
    params : BeadParams, optional
    """

    def __init__(self, field: Field, rng: np.random.Generator, params: BeadParams | None = None) -> None:
        self.params = params or BeadParams()
        n = round(self.params.density_per_um2 * field.area_um2)
        self.positions_um = field.uniform_points(rng, n)  # (N, 2) as (x, y)
        self.brightness = lognormal_brightness(rng, n, self.params.brightness_sigma)  # integrated intensity

    @property
    def count(self) -> int:
        return len(self.positions_um)

    def render(self, grid: Grid) -> np.ndarray:
        """Density on ``grid``: float32 ``(1, H, W)``; ``sum * pixel_size**2`` is the total brightness."""
        img = render_points(grid, self.positions_um, self.brightness, self.params.fwhm_um)
        return np.maximum(img, 0.0)[None]


def bead_truth(
    truth_shape: tuple[int, int], pixel_size_um: float, seed: int, params: BeadParams | None = None
) -> np.ndarray:
    """A seeded bead slide rendered on a forward model's truth grid (``forward.truth_shape``, ``.truth_pixel_size_um``).

    Returns float32 ``(1, H, W)``, ready for ``SimForwardModel.simulate`` and the world's photon calibration.
    """
    grid = Grid((int(truth_shape[0]), int(truth_shape[1])), float(pixel_size_um))
    return Beads(grid.field, np.random.default_rng(seed), params).render(grid)
