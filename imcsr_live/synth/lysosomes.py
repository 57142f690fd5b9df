"""Lysosomes: bright filled puncta and small hollow rings that hitchhike on microtubules or diffuse.

A fraction of the lysosomes is carried by motors along microtubule centre lines ("directed"): each holds a
track (filament index) and an arc length, moves at its own speed in one direction, pauses now and then,
reverses at track ends (or spontaneously) and may hop onto a crossing filament. Filaments reach far beyond
the field, so a carrier that leaves the view is recycled as one entering from just outside it (an open
boundary that keeps the density steady). The rest diffuse freely (Brownian motion with a per-object
diffusion coefficient, reflected at a rim around the field). Large lysosomes labelled on the membrane
(LAMP1) appear as rings at super-resolution, small ones as filled puncta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import SynthError
from imcsr_live.synth.microtubules import Microtubules
from imcsr_live.synth.render import Field, Grid, lognormal_brightness, render_blobs, render_rings

_MAX_STEP_S = 0.25  # at 1 um/s a step is 0.25 um: smooth along curved tracks
_EDGE_MARGIN_UM = 1.0  # objects live in the field plus this rim, so they can drift in and out
_RECYCLE_UM = 1.0  # carriers this far beyond the rim re-enter elsewhere (both places are out of view)


@dataclass(frozen=True)
class LysosomeParams:
    """Parameters of the lysosome generator (physical units in the names)."""

    density_per_um2: float = 0.04  # ~40 per 32 x 32 um field
    diameter_range_um: tuple[float, float] = (0.2, 0.8)
    ring_fraction: float = 0.5  # of the lysosomes large enough to show a lumen
    min_ring_diameter_um: float = 0.4  # smaller ones look filled at SIM resolution
    ring_thickness_um: float = 0.06  # labelled membrane shell
    edge_softness_um: float = 0.02  # filled puncta edge
    peak_intensity: float = 1.0  # interior density of filled puncta and peak of rings
    brightness_sigma: float = 0.35  # per-object log-normal brightness spread
    directed_fraction: float = 0.35
    directed_speed_range_um_per_s: tuple[float, float] = (0.2, 1.0)
    pause_rate_per_s: float = 0.1
    resume_rate_per_s: float = 0.4
    reversal_rate_per_s: float = 0.02
    track_switch_rate_per_s: float = 0.05
    track_capture_radius_um: float = 0.3  # a switch needs another filament this close
    diffusion_range_um2_per_s: tuple[float, float] = (0.001, 0.01)

    def __post_init__(self) -> None:
        lo, hi = self.diameter_range_um
        if not 0 < lo <= hi:
            raise SynthError(f"lysosome diameter_range_um must be an increasing positive pair (got {(lo, hi)})")
        for name in ("directed_speed_range_um_per_s", "diffusion_range_um2_per_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise SynthError(f"lysosome {name} must be an increasing non-negative pair (got {(lo, hi)})")
        for name in ("ring_fraction", "directed_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SynthError(f"lysosome {name} must be in [0, 1] (got {getattr(self, name)})")
        for name in (
            "density_per_um2",
            "ring_thickness_um",
            "edge_softness_um",
            "peak_intensity",
            "brightness_sigma",
            "pause_rate_per_s",
            "resume_rate_per_s",
            "reversal_rate_per_s",
            "track_switch_rate_per_s",
            "track_capture_radius_um",
        ):
            if getattr(self, name) < 0:
                raise SynthError(f"lysosome parameter {name} must be >= 0 (got {getattr(self, name)})")


class Lysosomes:
    """Lysosomes moving on a microtubule track network or diffusing.

    Parameters
    ----------
    field : Field
    params : LysosomeParams
    rng : numpy.random.Generator
    tracks : Microtubules
        The filaments directed lysosomes move along (rendered or not); advance it before this object.
    """

    def __init__(self, field: Field, params: LysosomeParams, rng: np.random.Generator, tracks: Microtubules) -> None:
        self.field = field
        self.params = p = params
        self.tracks = tracks
        self._rng = rng
        self.time_s = 0.0
        # Diffusers live in the field plus a rim; carriers roam a wider band (they are recycled beyond it),
        # so each population is seeded over its own region at the same density per um^2.
        x0, y0, x1, y1 = field.bounds(_EDGE_MARGIN_UM)
        area_diffusing = (x1 - x0) * (y1 - y0)
        x0, y0, x1, y1 = field.bounds(_EDGE_MARGIN_UM + _RECYCLE_UM)
        area_directed = (x1 - x0) * (y1 - y0)
        f = p.directed_fraction
        weight = (1.0 - f) * area_diffusing + f * area_directed
        n = int(rng.poisson(p.density_per_um2 * weight))
        self._diameter = rng.uniform(*p.diameter_range_um, n)
        self._ring = (self._diameter >= p.min_ring_diameter_um) & (rng.random(n) < p.ring_fraction)
        self._brightness = lognormal_brightness(rng, n, p.brightness_sigma)
        self._pos = field.uniform_points(rng, n, _EDGE_MARGIN_UM)
        self._diffusion = rng.uniform(*p.diffusion_range_um2_per_s, n)
        self._speed = rng.uniform(*p.directed_speed_range_um_per_s, n)
        self._direction = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        self._paused = np.zeros(n, dtype=bool)
        self._track = np.full(n, -1, dtype=np.int64)
        self._arc = np.zeros(n)

        # Directed lysosomes start on a random filament point of their region (length-weighted choice).
        directed = rng.random(n) < (f * area_directed / weight if weight > 0 else 0.0)
        pts, owner, arc = tracks.track_points()
        inside = np.flatnonzero(field.contains(pts, _EDGE_MARGIN_UM + _RECYCLE_UM))
        if len(inside):
            picks = rng.choice(inside, size=int(directed.sum()))
            self._track[directed] = owner[picks]
            self._arc[directed] = arc[picks]
        # Without any filament in view the would-be hitchhikers diffuse instead.
        self._diffusion[self._track >= 0] = 0.0
        self._speed[self._track < 0] = 0.0

    # ------------------------------------------------------------------------------------------------------
    # State

    @property
    def count(self) -> int:
        return len(self._diameter)

    @property
    def diameters_um(self) -> np.ndarray:
        return self._diameter.copy()

    @property
    def is_ring(self) -> np.ndarray:
        return self._ring.copy()

    @property
    def is_directed(self) -> np.ndarray:
        """True for lysosomes moving along a microtubule."""
        return self._track >= 0

    @property
    def speeds_um_per_s(self) -> np.ndarray:
        """Motor speed of directed lysosomes (0 for diffusing ones)."""
        return self._speed.copy()

    @property
    def diffusion_um2_per_s(self) -> np.ndarray:
        """Diffusion coefficient of diffusing lysosomes (0 for directed ones)."""
        return self._diffusion.copy()

    @property
    def paused(self) -> np.ndarray:
        return self._paused.copy()

    @property
    def brightness(self) -> np.ndarray:
        return self._brightness.copy()

    def positions_um(self) -> np.ndarray:
        """``(n, 2)`` current centres; directed ones are looked up on their (moving) tracks."""
        pos = self._pos.copy()
        on = np.flatnonzero(self._track >= 0)
        for t in np.unique(self._track[on]):
            sel = on[self._track[on] == t]
            pos[sel] = self.tracks.positions_at(int(t), self._arc[sel])
        return pos

    def _distance_outside(self, pos: np.ndarray) -> np.ndarray:
        """How far each point lies beyond the field's rim (0 inside)."""
        x0, y0, x1, y1 = self.field.bounds(_EDGE_MARGIN_UM)
        dx = np.maximum(np.maximum(x0 - pos[:, 0], pos[:, 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - pos[:, 1], pos[:, 1] - y1), 0.0)
        return np.hypot(dx, dy)

    def _reenter(self, idx: np.ndarray) -> None:
        """Move carriers ``idx`` to random track points in the hidden band beyond the rim, heading inwards."""
        pts, owner, arc = self.tracks.track_points()
        out = self._distance_outside(pts)
        band = np.flatnonzero((out > 0.0) & (out < 0.8 * _RECYCLE_UM))
        if len(band) == 0:  # no filament enters the view nearby: turn around instead
            self._direction[idx] = -self._direction[idx]
            return
        picks = self._rng.choice(band, size=len(idx))
        self._track[idx] = owner[picks]
        self._arc[idx] = arc[picks]
        for i in idx:
            t, a = int(self._track[i]), self._arc[i]
            ahead, behind = self.tracks.positions_at(t, np.array([a + 0.2, a - 0.2]))
            inward = self._distance_outside(ahead[None])[0] <= self._distance_outside(behind[None])[0]
            self._direction[i] = 1.0 if inward else -1.0

    # ------------------------------------------------------------------------------------------------------
    # Dynamics

    def advance(self, dt_s: float) -> None:
        """Move every lysosome for ``dt_s`` seconds (the track network should already be at the new time)."""
        if dt_s < 0:
            raise SynthError(f"time step must be >= 0 s (got {dt_s})")
        if dt_s == 0:
            return
        n_sub = max(1, math.ceil(dt_s / _MAX_STEP_S))
        for _ in range(n_sub):
            self._step(dt_s / n_sub)

    def _step(self, h: float) -> None:
        p = self.params
        rng = self._rng
        n = self.count
        # Draw every random number every step, whatever the state, so the stream does not depend on state.
        noise = rng.standard_normal((n, 2))
        u_pause, u_rev, u_switch, u_dir = rng.random((4, n))

        # Diffusers: Brownian step, reflected at the rim of the field so the density stays uniform.
        diff = self._track < 0
        self._pos[diff] += np.sqrt(2.0 * self._diffusion[diff] * h)[:, None] * noise[diff]
        x0, y0, x1, y1 = self.field.bounds(_EDGE_MARGIN_UM)
        for axis, lo, hi in ((0, x0, x1), (1, y0, y1)):
            c = self._pos[:, axis]
            c = np.where(c < lo, 2 * lo - c, c)
            self._pos[:, axis] = np.where(c > hi, 2 * hi - c, c)

        on = ~diff
        # Pauses: a motor stalls (rate pause) and restarts (rate resume).
        p_pause = 1.0 - math.exp(-p.pause_rate_per_s * h)
        p_resume = 1.0 - math.exp(-p.resume_rate_per_s * h)
        self._paused = np.where(self._paused, u_pause >= p_resume, u_pause < p_pause) & on
        # Spontaneous reversal (tug of war between kinesin and dynein).
        p_rev = 1.0 - math.exp(-p.reversal_rate_per_s * h)
        self._direction = np.where(on & (u_rev < p_rev), -self._direction, self._direction)
        moving = on & ~self._paused
        self._arc = np.where(moving, self._arc + self._direction * self._speed * h, self._arc)
        # Track ends (minus end, or a plus end that may be shrinking): turn around.
        track_len = np.full(n, np.inf)
        track_len[on] = self.tracks.lengths_um[self._track[on]]
        low = on & (self._arc <= 0.0)
        high = on & (self._arc >= track_len)
        self._arc = np.clip(self._arc, 0.0, track_len)
        self._direction = np.where(low, 1.0, np.where(high, -1.0, self._direction))

        # Filaments run far beyond the field. A carrier that has left the view for good is recycled as a new
        # one entering from just outside the view, so the field neither drains nor fills up (open boundary).
        if on.any():
            gone = np.flatnonzero(on & (self._distance_outside(self.positions_um()) > _RECYCLE_UM))
            if len(gone):
                self._reenter(gone)

        # Track switching: hop onto another filament passing within the capture radius, if there is one.
        p_switch = 1.0 - math.exp(-p.track_switch_rate_per_s * h)
        switch = np.flatnonzero(on & (u_switch < p_switch))
        if len(switch):
            pts, owner, arc = self.tracks.track_points()
            here = self.positions_um()[switch]
            for k, i in enumerate(switch):
                d2 = np.sum((pts - here[k]) ** 2, axis=1)
                cand = np.flatnonzero((d2 < p.track_capture_radius_um**2) & (owner != self._track[i]))
                if len(cand):
                    j = cand[np.argmin(d2[cand])]
                    self._track[i] = owner[j]
                    self._arc[i] = arc[j]
                    self._direction[i] = 1.0 if u_dir[i] < 0.5 else -1.0
        self.time_s += h

    # ------------------------------------------------------------------------------------------------------
    # Rendering

    def render(self, grid: Grid, brightness: float = 1.0) -> np.ndarray:
        """Density image ``(H, W)`` float32: filled puncta plus rings."""
        p = self.params
        pos = self.positions_um()
        amp = self._brightness * p.peak_intensity * brightness
        radius = 0.5 * self._diameter
        filled = ~self._ring
        img = render_blobs(grid, pos[filled], radius[filled], amp[filled], softness_um=p.edge_softness_um)
        if self._ring.any():
            # The ring is drawn at the membrane: its centre line sits half a shell inside the outer diameter.
            r_ring = radius[self._ring] - 0.5 * p.ring_thickness_um
            img += render_rings(grid, pos[self._ring], r_ring, amp[self._ring], p.ring_thickness_um)
        return img
