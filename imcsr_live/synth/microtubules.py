"""Microtubules: long, gently curved filaments with dynamic-instability plus ends and slow undulation.

Each filament is a curve grown from an anchored minus end; its heading is the integral of a smooth random
curvature profile ``κ(s)`` (arc length ``s``), so the shape is smooth and ``|κ|`` is bounded by
construction: ``κ = κmax tanh((κ_base(s) + δκ(s, t)) / κmax)``. ``δκ`` is a small standing-wave perturbation
that makes the filament bend slowly back and forth. The plus end grows and shrinks along the pre-drawn
profile (a two-state dynamic-instability model with catastrophe and rescue switching), so a regrowing
filament follows its old path, as microtubules guided by the cortex do.

Filaments are placed as a Boolean model: reference points uniform over a region much larger than the
field, random orientation, kept if they reach the field. The visible filament length per um^2 therefore
does not depend on the field size, and most filaments cross the field edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from imcsr_live.errors import SynthError
from imcsr_live.synth.render import Field, Grid, lognormal_brightness, render_segments

_N_MODES = 2  # undulation modes per filament
_MAX_STEP_S = 0.5  # dynamic-instability sub-step


def _check_range(name: str, lo_hi: tuple[float, float], *, positive: bool = True) -> None:
    lo, hi = lo_hi
    if not (lo <= hi) or (positive and lo <= 0) or lo < 0:
        raise SynthError(
            f"{name} must be an increasing pair of {'positive' if positive else 'non-negative'} numbers (got {lo_hi})"
        )


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise SynthError(f"{name} must be > 0 (got {value})")


@dataclass(frozen=True)
class MicrotubuleParams:
    """Parameters of the microtubule generator (physical units in the names)."""

    length_density_um_per_um2: float = 0.4  # filament length per field area (~30 filaments per 32 x 32 um)
    length_range_um: tuple[float, float] = (10.0, 40.0)  # initial lengths
    min_length_um: float = 1.0  # forced rescue below this
    max_length_um: float = 50.0  # forced catastrophe above this
    width_um: float = 0.025
    max_curvature_per_um: float = 0.3
    curvature_std_per_um: float = 0.09
    curvature_correlation_um: float = 3.0  # smoothing length of the curvature profile
    undulation_curvature_per_um: float = 0.03  # amplitude of the time-varying curvature perturbation
    undulation_wavelength_range_um: tuple[float, float] = (4.0, 12.0)
    undulation_period_range_s: tuple[float, float] = (20.0, 80.0)
    growth_speed_range_um_per_s: tuple[float, float] = (0.1, 0.3)
    shrink_speed_range_um_per_s: tuple[float, float] = (0.3, 0.6)
    catastrophe_rate_per_s: float = 0.03
    rescue_rate_per_s: float = 0.07  # balances growth and shrinkage, so lengths stay bounded on average
    intensity_per_um: float = 0.06  # linear density; bright pixels ~1 on the 31.3 nm SR grid
    brightness_sigma: float = 0.15  # per-filament log-normal brightness spread
    sample_spacing_um: float = 0.05  # arc-length step of the centre line
    # Arrangement of the filaments: "random" (isotropic Boolean model), "aster" (headings point loosely away from
    # ``arrangement_center_um``, as filaments radiating from a centrosome) or "parallel" (loosely along
    # ``arrangement_angle_rad``). ``orientation_spread_rad`` is the largest deviation of a heading from that
    # direction; the same random draws are used for every arrangement, so "random" is unchanged.
    arrangement: str = "random"
    arrangement_center_um: tuple[float, float] = (0.0, 0.0)
    arrangement_angle_rad: float = 0.0
    orientation_spread_rad: float = 0.4

    def __post_init__(self) -> None:
        if self.arrangement not in ("random", "aster", "parallel"):
            raise SynthError(f"microtubule arrangement must be random, aster or parallel (got {self.arrangement!r})")
        if not 0 <= self.orientation_spread_rad <= math.pi:
            raise SynthError(f"orientation_spread_rad must be in [0, pi] (got {self.orientation_spread_rad})")
        _check_positive(
            length_density_um_per_um2=self.length_density_um_per_um2,
            width_um=self.width_um,
            max_curvature_per_um=self.max_curvature_per_um,
            curvature_correlation_um=self.curvature_correlation_um,
            intensity_per_um=self.intensity_per_um,
            sample_spacing_um=self.sample_spacing_um,
            min_length_um=self.min_length_um,
        )
        _check_range("length_range_um", self.length_range_um)
        _check_range("undulation_wavelength_range_um", self.undulation_wavelength_range_um)
        _check_range("undulation_period_range_s", self.undulation_period_range_s)
        _check_range("growth_speed_range_um_per_s", self.growth_speed_range_um_per_s, positive=False)
        _check_range("shrink_speed_range_um_per_s", self.shrink_speed_range_um_per_s, positive=False)
        if not self.min_length_um <= self.length_range_um[0] <= self.length_range_um[1] <= self.max_length_um:
            raise SynthError(
                "microtubule lengths must satisfy min_length_um <= length_range_um <= max_length_um "
                f"(got {self.min_length_um}, {self.length_range_um}, {self.max_length_um})"
            )
        if (
            min(
                self.curvature_std_per_um,
                self.undulation_curvature_per_um,
                self.catastrophe_rate_per_s,
                self.rescue_rate_per_s,
                self.brightness_sigma,
            )
            < 0
        ):
            raise SynthError("microtubule curvature spreads, switching rates and brightness_sigma must be >= 0")


class Microtubules:
    """A field of dynamic microtubules; also the track network that lysosomes move along.

    Parameters
    ----------
    field : Field
        The field of view (um); filaments fill it and extend beyond it.
    params : MicrotubuleParams
    rng : numpy.random.Generator
        Drives both the initial geometry and the dynamics.
    """

    def __init__(self, field: Field, params: MicrotubuleParams, rng: np.random.Generator) -> None:
        self.field = field
        self.params = p = params
        self._rng = rng
        self.time_s = 0.0
        self._ds = p.sample_spacing_um
        n_s = math.ceil(p.max_length_um / self._ds) + 2
        self._s = np.arange(n_s) * self._ds

        # Boolean model: reference (mid) points uniform in a region wide enough that any filament which could
        # reach the field is a candidate.
        margin = 0.5 * p.length_range_um[1] + 2.0
        x0, y0, x1, y1 = field.bounds(margin)
        mean_len = 0.5 * sum(p.length_range_um)
        n = int(rng.poisson(p.length_density_um_per_um2 * (x1 - x0) * (y1 - y0) / mean_len))
        mid = field.uniform_points(rng, n, margin)
        alpha = self._headings(mid, rng.uniform(0.0, 2 * np.pi, n))
        self._length = rng.uniform(*p.length_range_um, n)
        self._base = self._smooth_curvature(rng, n, n_s)
        self._und_amp = p.undulation_curvature_per_um * rng.standard_normal((n, _N_MODES)) / math.sqrt(_N_MODES)
        self._und_k = 2 * np.pi / rng.uniform(*p.undulation_wavelength_range_um, (n, _N_MODES))
        self._und_omega = 2 * np.pi / rng.uniform(*p.undulation_period_range_s, (n, _N_MODES))
        self._und_psi = rng.uniform(0.0, 2 * np.pi, (n, _N_MODES))
        self._brightness = lognormal_brightness(rng, n, p.brightness_sigma)
        # Start in the stationary mix of growing and shrinking filaments.
        p_grow = p.rescue_rate_per_s / max(p.rescue_rate_per_s + p.catastrophe_rate_per_s, 1e-12)
        self._growing = rng.random(n) < p_grow
        self._v_grow = rng.uniform(*p.growth_speed_range_um_per_s, n)
        self._v_shrink = rng.uniform(*p.shrink_speed_range_um_per_s, n)

        # Place: build each shape from the origin with heading 0, then rotate by alpha and move its midpoint
        # onto the drawn reference point. The curve is rotation-equivariant, so only the anchor changes.
        self._origin = np.zeros((n, 2))
        self._theta0 = np.zeros(n)
        local = self._nodes(np.arange(n))
        k = np.arange(n)
        s_mid = 0.5 * self._length / self._ds
        i = np.floor(s_mid).astype(np.int64)
        f = (s_mid - i)[:, None]
        p_mid = (1 - f) * local[k, i] + f * local[k, i + 1]
        rot = np.stack(
            [np.stack([np.cos(alpha), -np.sin(alpha)], -1), np.stack([np.sin(alpha), np.cos(alpha)], -1)], -2
        )  # (n, 2, 2)
        self._origin = mid - np.einsum("nij,nj->ni", rot, p_mid)
        self._theta0 = alpha

        self._cache_time = math.nan
        self._cache: dict[int, np.ndarray] = {}
        # Keep only filaments that reach the field (a 1 um rim lets ends wander in and out).
        keep = np.zeros(n, dtype=bool)
        for j, line in enumerate(self.centerlines_of(np.arange(n))):
            keep[j] = bool(field.contains(line, 1.0).any())
        self._select(keep)

    _PER_FILAMENT = (
        "_length",
        "_base",
        "_und_amp",
        "_und_k",
        "_und_omega",
        "_und_psi",
        "_brightness",
        "_growing",
        "_v_grow",
        "_v_shrink",
        "_origin",
        "_theta0",
    )

    def _select(self, keep: np.ndarray) -> None:
        """Keep only the filaments where ``keep`` is True (every per-filament array together)."""
        for name in self._PER_FILAMENT:
            setattr(self, name, getattr(self, name)[keep])
        self._cache_time = math.nan
        self._cache = {}

    def _headings(self, mid: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Initial headings from uniform angles in [0, 2 pi): as drawn ("random") or around the arrangement."""
        p = self.params
        if p.arrangement == "random":
            return uniform
        # sin(uniform) spreads the deviation over [-spread, spread]; a heading or its reverse is the same line
        # for the shape, but the minus end (anchor) sits towards the centre in an aster.
        jitter = p.orientation_spread_rad * np.sin(uniform)
        if p.arrangement == "aster":
            cx, cy = p.arrangement_center_um
            return np.arctan2(mid[:, 1] - cy, mid[:, 0] - cx) + jitter
        return p.arrangement_angle_rad + jitter + np.where(uniform < np.pi, 0.0, np.pi)

    # ------------------------------------------------------------------------------------------------------
    # Geometry

    def _smooth_curvature(self, rng: np.random.Generator, n: int, n_s: int) -> np.ndarray:
        """Smooth Gaussian random curvature profiles with the configured std and correlation length."""
        p = self.params
        sigma = p.curvature_correlation_um / self._ds
        white = rng.standard_normal((n, n_s))
        if n == 0:
            return white
        smooth = ndimage.gaussian_filter1d(white, sigma, axis=1, mode="reflect")
        # A unit-variance white sequence filtered by a normalised Gaussian of sigma σ has variance 1/(2√π σ).
        return smooth * p.curvature_std_per_um * math.sqrt(2 * math.sqrt(math.pi) * sigma)

    def _kappa(self, idx: np.ndarray) -> np.ndarray:
        """Curvature (1/um) at every arc-length node of the filaments ``idx`` at the current time."""
        kmax = self.params.max_curvature_per_um
        temporal = np.sin(self._und_omega[idx] * self.time_s + self._und_psi[idx])  # (k, M)
        # cos(k s): the heading change it causes, sin(k s) / k, averages to zero along the filament, so the
        # shape bends locally (lateral shifts <= 2 A / k^2) instead of swinging the whole far end around.
        spatial = np.cos(self._und_k[idx, :, None] * self._s)  # (k, M, n_s)
        und = np.einsum("km,kms->ks", self._und_amp[idx] * temporal, spatial)
        return kmax * np.tanh((self._base[idx] + und) / kmax)

    def _nodes(self, idx: np.ndarray) -> np.ndarray:
        """Centre-line nodes ``(k, n_s, 2)`` of filaments ``idx`` (full pre-drawn length), from κ."""
        kap = self._kappa(idx)
        dtheta = 0.5 * (kap[:, 1:] + kap[:, :-1]) * self._ds
        theta = self._theta0[idx, None] + np.concatenate([np.zeros((len(idx), 1)), np.cumsum(dtheta, axis=1)], 1)
        heading = theta[:, :-1] + 0.5 * dtheta  # mean heading over each step
        steps = self._ds * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        nodes = np.concatenate([np.zeros((len(idx), 1, 2)), np.cumsum(steps, axis=1)], axis=1)
        return nodes + self._origin[idx, None, :]

    def _node_cache(self, idx: np.ndarray) -> list[np.ndarray]:
        """Full-length nodes of ``idx``, memoised until the time changes (lysosomes query the same tracks)."""
        if self._cache_time != self.time_s:
            self._cache = {}
            self._cache_time = self.time_s
        missing = np.array([i for i in idx if int(i) not in self._cache], dtype=np.int64)
        if len(missing):
            for i, nodes in zip(missing, self._nodes(missing), strict=True):
                self._cache[int(i)] = nodes
        return [self._cache[int(i)] for i in idx]

    def _truncate(self, nodes: np.ndarray, length: float) -> np.ndarray:
        k = int(length // self._ds)
        frac = length / self._ds - k
        line = nodes[: k + 1]
        if frac > 1e-9:
            end = (1 - frac) * nodes[k] + frac * nodes[k + 1]
            line = np.concatenate([line, end[None]], axis=0)
        return line

    @property
    def count(self) -> int:
        """Number of filaments (including those whose visible part is currently outside the field)."""
        return len(self._length)

    @property
    def lengths_um(self) -> np.ndarray:
        return self._length.copy()

    @property
    def growing(self) -> np.ndarray:
        """True where the plus end is in the growing state, False where it is shrinking."""
        return self._growing.copy()

    @property
    def width_um(self) -> float:
        return self.params.width_um

    @property
    def brightness(self) -> np.ndarray:
        return self._brightness.copy()

    def centerlines_of(self, idx: np.ndarray) -> list[np.ndarray]:
        """Current centre lines ``(N, 2)`` in um of filaments ``idx``, minus end first."""
        idx = np.asarray(idx, dtype=np.int64)
        return [self._truncate(nodes, self._length[i]) for i, nodes in zip(idx, self._node_cache(idx), strict=True)]

    def centerlines(self) -> list[np.ndarray]:
        """Current centre lines ``(N, 2)`` in um of every filament, minus end first, nodes ~50 nm apart."""
        return self.centerlines_of(np.arange(self.count))

    def curvatures(self) -> list[np.ndarray]:
        """Signed curvature (1/um) at the nodes of each centre line (same lengths as :meth:`centerlines`)."""
        out = []
        kap_all = self._kappa(np.arange(self.count))
        for i, line in enumerate(self.centerlines()):
            s = np.minimum(np.arange(len(line)) * self._ds, self._length[i])
            out.append(np.interp(s, self._s, kap_all[i]))
        return out

    def plus_ends_um(self) -> np.ndarray:
        """``(n, 2)`` current plus-end positions."""
        return np.array([line[-1] for line in self.centerlines()]).reshape(-1, 2)

    def positions_at(self, index: int, s_um: np.ndarray) -> np.ndarray:
        """Points ``(k, 2)`` at arc lengths ``s_um`` (clamped to the filament) along filament ``index``."""
        nodes = self._node_cache(np.array([index]))[0]
        s = np.clip(np.asarray(s_um, dtype=np.float64), 0.0, self._length[index]) / self._ds
        i = np.minimum(np.floor(s).astype(np.int64), len(nodes) - 2)
        f = (s - i)[..., None]
        return (1 - f) * nodes[i] + f * nodes[i + 1]

    def track_points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All centre-line nodes as flat arrays ``(points (N, 2), filament index (N,), arc length (N,))``."""
        lines = self.centerlines()
        if not lines:
            return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0)
        pts = np.concatenate(lines)
        owner = np.concatenate([np.full(len(line), i) for i, line in enumerate(lines)])
        arc = np.concatenate(
            [np.minimum(np.arange(len(line)) * self._ds, self._length[i]) for i, line in enumerate(lines)]
        )
        return pts, owner, arc

    # ------------------------------------------------------------------------------------------------------
    # Dynamics and rendering

    def advance(self, dt_s: float) -> None:
        """Evolve plus ends (growth, shrinkage, catastrophe, rescue) and undulation by ``dt_s`` seconds."""
        if dt_s < 0:
            raise SynthError(f"time step must be >= 0 s (got {dt_s})")
        n_sub = max(1, math.ceil(dt_s / _MAX_STEP_S))
        h = dt_s / n_sub
        p = self.params
        p_cat = 1.0 - math.exp(-p.catastrophe_rate_per_s * h)
        p_res = 1.0 - math.exp(-p.rescue_rate_per_s * h)
        for _ in range(n_sub if dt_s > 0 else 0):
            n = self.count
            u = self._rng.random(n)
            v_new_grow = self._rng.uniform(*p.growth_speed_range_um_per_s, n)
            v_new_shrink = self._rng.uniform(*p.shrink_speed_range_um_per_s, n)
            self._length = self._length + np.where(self._growing, self._v_grow, -self._v_shrink) * h
            catastrophe = self._growing & (u < p_cat)
            rescue = ~self._growing & (u < p_res)
            # Forced switches at the length limits keep every filament inside its pre-drawn profile.
            catastrophe |= self._growing & (self._length >= p.max_length_um)
            rescue |= ~self._growing & (self._length <= p.min_length_um)
            self._length = np.clip(self._length, p.min_length_um, p.max_length_um)
            self._growing = (self._growing & ~catastrophe) | rescue
            self._v_shrink = np.where(catastrophe, v_new_shrink, self._v_shrink)
            self._v_grow = np.where(rescue, v_new_grow, self._v_grow)
            self.time_s += h

    def _segment_brightness(self, index: int, segments: int) -> np.ndarray:
        """Brightness of the first ``segments`` centre-line segments of filament ``index`` (uniform here)."""
        return np.full(segments, self._brightness[index])

    def render(self, grid: Grid, brightness: float = 1.0) -> np.ndarray:
        """Density image ``(H, W)`` float32 of all filaments on ``grid`` (which must cover this field)."""
        p = self.params
        lines = self.centerlines()
        starts = np.concatenate([line[:-1] for line in lines]) if lines else np.zeros((0, 2))
        ends = np.concatenate([line[1:] for line in lines]) if lines else np.zeros((0, 2))
        lam = (
            np.concatenate([self._segment_brightness(i, len(line) - 1) for i, line in enumerate(lines)])
            if lines
            else np.zeros(0)
        )
        return render_segments(grid, starts, ends, lam * p.intensity_per_um * brightness, p.width_um)
