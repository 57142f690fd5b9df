"""Clathrin-coated pits: small, nearly stationary puncta that assemble, pinch off and vanish.

Pits are born at random places at a constant rate per um^2 (a birth-death process whose steady-state count
matches the configured density). Each pit lives for its own lifetime: its intensity ramps up while the coat
assembles, stays on a plateau, and drops quickly at scission, when the vesicle leaves the membrane and
uncoats. Pits wobble by slow Brownian motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import SynthError
from imcsr_live.synth.render import Field, Grid, lognormal_brightness, render_blobs

_MAX_STEP_S = 0.5
_EDGE_MARGIN_UM = 0.3  # pits are born in the field plus this rim so edge pixels are not depleted


@dataclass(frozen=True)
class CCPParams:
    """Parameters of the clathrin-coated pit generator (physical units in the names)."""

    density_per_um2: float = 0.1  # steady-state count per area (~100 per 32 x 32 um field)
    diameter_range_um: tuple[float, float] = (0.1, 0.2)
    lifetime_range_s: tuple[float, float] = (20.0, 60.0)  # birth to scission
    assembly_fraction: float = 0.7  # share of the lifetime during which the coat (and intensity) grows
    scission_fade_s: float = 2.0  # intensity drops to zero this fast after scission
    diffusion_um2_per_s: float = 2e-4
    edge_softness_um: float = 0.01
    peak_intensity: float = 1.0  # interior density at full assembly
    brightness_sigma: float = 0.35  # per-pit log-normal brightness spread

    def __post_init__(self) -> None:
        for name in ("diameter_range_um", "lifetime_range_s"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise SynthError(f"CCP {name} must be an increasing positive pair (got {(lo, hi)})")
        if not 0.0 < self.assembly_fraction <= 1.0:
            raise SynthError(f"CCP assembly_fraction must be in (0, 1] (got {self.assembly_fraction})")
        for name in (
            "density_per_um2",
            "scission_fade_s",
            "diffusion_um2_per_s",
            "edge_softness_um",
            "peak_intensity",
            "brightness_sigma",
        ):
            if getattr(self, name) < 0:
                raise SynthError(f"CCP parameter {name} must be >= 0 (got {getattr(self, name)})")


class ClathrinCoatedPits:
    """A birth-death population of clathrin-coated pits.

    Parameters
    ----------
    field : Field
    params : CCPParams
    rng : numpy.random.Generator
    """

    def __init__(self, field: Field, params: CCPParams, rng: np.random.Generator) -> None:
        self.field = field
        self.params = p = params
        self._rng = rng
        self.time_s = 0.0
        x0, y0, x1, y1 = field.bounds(_EDGE_MARGIN_UM)
        self._area = (x1 - x0) * (y1 - y0)
        mean_duration = 0.5 * sum(p.lifetime_range_s) + p.scission_fade_s
        self._birth_rate_per_s = p.density_per_um2 * self._area / mean_duration
        self._next_id = 0
        self._ids = np.zeros(0, dtype=np.int64)
        self._pos = np.zeros((0, 2))
        self._diameter = np.zeros(0)
        self._lifetime = np.zeros(0)
        self._age = np.zeros(0)
        self._brightness = np.zeros(0)

        # Start in the steady state: a pit seen at a random instant is picked with probability proportional to
        # its total duration (length bias), and is at a uniformly random age within it.
        n = int(rng.poisson(p.density_per_um2 * self._area))
        lo, hi = p.lifetime_range_s
        f = p.scission_fade_s
        duration = np.sqrt((lo + f) ** 2 + rng.random(n) * ((hi + f) ** 2 - (lo + f) ** 2))
        self._add(n, lifetime=duration - f, age=rng.random(n) * duration)

    def _add(self, n: int, lifetime: np.ndarray | None = None, age: np.ndarray | None = None) -> None:
        p = self.params
        rng = self._rng
        ids = self._next_id + np.arange(n)
        self._next_id += n
        pos = self.field.uniform_points(rng, n, _EDGE_MARGIN_UM)
        diameter = rng.uniform(*p.diameter_range_um, n)
        brightness = lognormal_brightness(rng, n, p.brightness_sigma)
        if lifetime is None:
            lifetime = rng.uniform(*p.lifetime_range_s, n)
        if age is None:
            age = np.zeros(n)
        self._ids = np.concatenate([self._ids, ids])
        self._pos = np.concatenate([self._pos, pos])
        self._diameter = np.concatenate([self._diameter, diameter])
        self._lifetime = np.concatenate([self._lifetime, lifetime])
        self._age = np.concatenate([self._age, age])
        self._brightness = np.concatenate([self._brightness, brightness])

    # ------------------------------------------------------------------------------------------------------
    # State

    @property
    def count(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> np.ndarray:
        """Unique, never reused identity of each current pit (births get new ids)."""
        return self._ids.copy()

    @property
    def diameters_um(self) -> np.ndarray:
        return self._diameter.copy()

    @property
    def lifetimes_s(self) -> np.ndarray:
        return self._lifetime.copy()

    @property
    def ages_s(self) -> np.ndarray:
        return self._age.copy()

    def positions_um(self) -> np.ndarray:
        return self._pos.copy()

    def intensities(self) -> np.ndarray:
        """Relative coat intensity (0-1) of each pit: ramp during assembly, plateau, fast drop at scission."""
        p = self.params
        ramp = np.clip(self._age / (p.assembly_fraction * self._lifetime), 0.0, 1.0)
        # Smoothstep: assembly starts and finishes gradually, as recruitment curves do.
        level = ramp * ramp * (3.0 - 2.0 * ramp)
        after = self._age - self._lifetime
        if p.scission_fade_s > 0:
            fade = np.clip(1.0 - after / p.scission_fade_s, 0.0, 1.0) ** 2
        else:
            fade = (after <= 0).astype(np.float64)
        return np.where(after > 0, fade, level)

    # ------------------------------------------------------------------------------------------------------
    # Dynamics and rendering

    def advance(self, dt_s: float) -> None:
        """Age, wobble, remove finished pits and give birth to new ones over ``dt_s`` seconds."""
        if dt_s < 0:
            raise SynthError(f"time step must be >= 0 s (got {dt_s})")
        if dt_s == 0:
            return
        n_sub = max(1, math.ceil(dt_s / _MAX_STEP_S))
        h = dt_s / n_sub
        p = self.params
        for _ in range(n_sub):
            noise = self._rng.standard_normal(self._pos.shape)
            self._pos += math.sqrt(2.0 * p.diffusion_um2_per_s * h) * noise
            self._age += h
            alive = self._age < self._lifetime + p.scission_fade_s
            for name in ("_ids", "_pos", "_diameter", "_lifetime", "_age", "_brightness"):
                setattr(self, name, getattr(self, name)[alive])
            n_new = int(self._rng.poisson(self._birth_rate_per_s * h))
            # A pit born during the step has already aged by a random part of it.
            self._add(n_new, age=self._rng.random(n_new) * h)
            self.time_s += h

    def render(self, grid: Grid, brightness: float = 1.0) -> np.ndarray:
        """Density image ``(H, W)`` float32 of all pits as small filled discs."""
        p = self.params
        amp = self._brightness * self.intensities() * p.peak_intensity * brightness
        visible = amp > 0
        return render_blobs(
            grid,
            self._pos[visible],
            0.5 * self._diameter[visible],
            amp[visible],
            softness_um=p.edge_softness_um,
        )
