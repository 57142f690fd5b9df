"""Endoplasmic reticulum: a polygonal network of thin tubules with three-way junctions and a few small sheets.

The network is the Voronoi diagram of well-spaced random seeds: its vertices have degree 3 and its cells are
the polygons (~1-3 um across) that peripheral ER forms. A fraction of the edges is missing at any time.
Dynamics, as seen in live cells:

* junctions slide: each vertex carries a smooth (low-pass filtered Ornstein-Uhlenbeck) displacement,
  and the tubules between them follow, slightly bowed (quadratic Bezier curves);
* ring closure: a missing edge starts to grow from one of its junctions and extends at a constant speed
  until it reaches the other (growth fraction 0 -> 1);
* retraction: a present edge retracts towards one of its junctions until it is gone.

The two rates are chosen so that the missing fraction is stationary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import spatial

from imcsr_live.errors import SynthError
from imcsr_live.synth.render import Field, Grid, lognormal_brightness, render_blobs, render_segments

_MAX_STEP_S = 0.5
_CURVE_POINTS = 10  # nodes per rendered tubule (bowed edges are smooth at this sampling)
_SHEET_HARMONICS = 4  # outline harmonics k = 1..4 (k = 1 kept 0: it would only shift the sheet)


@dataclass(frozen=True)
class ERParams:
    """Parameters of the ER network generator (physical units in the names)."""

    polygon_size_um: float = 1.6  # typical polygon diameter
    missing_edge_fraction: float = 0.15  # stationary fraction of Voronoi edges without a tubule
    tubule_width_um: float = 0.06
    bow_std: float = 0.07  # midpoint offset of a tubule from its chord, as a fraction of the chord length
    sheet_density_per_um2: float = 0.006
    sheet_diameter_range_um: tuple[float, float] = (0.3, 1.5)
    sheet_shape_irregularity: float = 0.08  # relative amplitude of each outline harmonic
    junction_drift_um: float = 0.15  # stationary spread of a junction's displacement
    junction_drift_time_s: float = 20.0  # correlation time of the junction drift
    ring_closure_rate_per_s: float = 0.004  # per missing edge: rate of starting to grow
    tubule_extension_speed_um_per_s: float = 0.3  # growth and retraction speed
    intensity_per_um: float = 0.075  # linear density; bright pixels ~1 on the 31.3 nm SR grid
    sheet_intensity: float = 1.0  # interior density of sheets
    brightness_sigma: float = 0.1  # per-tubule / per-sheet log-normal brightness spread

    def __post_init__(self) -> None:
        for name in (
            "polygon_size_um",
            "tubule_width_um",
            "junction_drift_time_s",
            "tubule_extension_speed_um_per_s",
            "intensity_per_um",
        ):
            if not getattr(self, name) > 0:
                raise SynthError(f"ER parameter {name} must be > 0 (got {getattr(self, name)})")
        if not 0.0 <= self.missing_edge_fraction < 1.0:
            raise SynthError(f"ER missing_edge_fraction must be in [0, 1) (got {self.missing_edge_fraction})")
        lo, hi = self.sheet_diameter_range_um
        if not 0 < lo <= hi:
            raise SynthError(f"ER sheet_diameter_range_um must be an increasing positive pair (got {(lo, hi)})")
        for name in (
            "bow_std",
            "sheet_density_per_um2",
            "sheet_shape_irregularity",
            "junction_drift_um",
            "ring_closure_rate_per_s",
            "sheet_intensity",
            "brightness_sigma",
        ):
            if getattr(self, name) < 0:
                raise SynthError(f"ER parameter {name} must be >= 0 (got {getattr(self, name)})")


def _well_spaced_points(rng: np.random.Generator, field: Field, margin_um: float, spacing_um: float) -> np.ndarray:
    """Random seeds with a hard-core distance, so Voronoi cells are polygons rather than slivers."""
    x0, y0, x1, y1 = field.bounds(margin_um)
    # Over-sample, then drop one point of every pair closer than the hard-core distance; the result has
    # roughly one point per spacing^2 * 0.8 um^2 (a hexagon-like packing).
    n = int(rng.poisson(1.6 * (x1 - x0) * (y1 - y0) / (0.8 * spacing_um**2)))
    pts = field.uniform_points(rng, n, margin_um)
    pairs = spatial.cKDTree(pts).query_pairs(0.55 * spacing_um, output_type="ndarray")
    drop = np.zeros(n, dtype=bool)
    for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]:
        if not drop[i] and not drop[j]:
            drop[j] = True
    return pts[~drop]


class EndoplasmicReticulum:
    """A dynamic tubular ER network with three-way junctions and small sheets.

    Parameters
    ----------
    field : Field
        The field of view (um); the network fills it and continues beyond its edges.
    params : ERParams
    rng : numpy.random.Generator
    """

    def __init__(self, field: Field, params: ERParams, rng: np.random.Generator) -> None:
        self.field = field
        self.params = p = params
        self._rng = rng
        self.time_s = 0.0
        seeds = _well_spaced_points(rng, field, 3 * p.polygon_size_um, p.polygon_size_um)
        vor = spatial.Voronoi(seeds)
        ridges = np.array([r for r in vor.ridge_vertices if -1 not in r], dtype=np.int64).reshape(-1, 2)
        # Keep edges with both ends near the field: far-out Voronoi vertices are distorted by the seed border.
        near = field.contains(vor.vertices, p.polygon_size_um)
        ridges = ridges[near[ridges].all(axis=1)]
        used, inverse = np.unique(ridges, return_inverse=True)
        self._vertices = vor.vertices[used].copy()
        self._edges = inverse.reshape(-1, 2)
        n_v, n_e = len(self._vertices), len(self._edges)

        self._bow = p.bow_std * rng.standard_normal(n_e)
        self._tubule_brightness = lognormal_brightness(rng, n_e, p.brightness_sigma)
        self._frac = np.where(rng.random(n_e) < p.missing_edge_fraction, 0.0, 1.0)
        self._state = np.zeros(n_e, dtype=np.int8)  # +1 growing, -1 retracting, 0 static
        self._from_a = np.ones(n_e, dtype=bool)  # which end a partial tubule is attached to

        # Smooth junction drift: o follows q (an OU process) through a first-order low-pass.
        self._drive = p.junction_drift_um * rng.standard_normal((n_v, 2))
        self._offset = self._drive.copy()

        n_sheets = int(rng.poisson(p.sheet_density_per_um2 * field.area_um2)) if n_v else 0
        candidates = np.flatnonzero(field.contains(self._vertices, 0.5))
        n_sheets = min(n_sheets, len(candidates))
        self._sheet_vertex = rng.choice(candidates, size=n_sheets, replace=False) if n_sheets else np.zeros(0, int)
        self._sheet_radius = 0.5 * rng.uniform(*p.sheet_diameter_range_um, n_sheets)
        harm = p.sheet_shape_irregularity * rng.standard_normal((n_sheets, _SHEET_HARMONICS, 2))
        harm[:, 0, :] = 0.0
        self._sheet_harmonics = harm
        self._sheet_brightness = lognormal_brightness(rng, n_sheets, p.brightness_sigma)

        # Retraction balances ring closure at the configured missing fraction.
        f = p.missing_edge_fraction
        self._retract_rate = p.ring_closure_rate_per_s * f / (1.0 - f) if f > 0 else 0.0

    # ------------------------------------------------------------------------------------------------------
    # Geometry

    def junction_positions_um(self) -> np.ndarray:
        """``(V, 2)`` current positions of all network vertices."""
        return self._vertices + self._offset

    @property
    def edges(self) -> np.ndarray:
        """``(E, 2)`` vertex indices of every potential tubule (present, partial or missing)."""
        return self._edges.copy()

    @property
    def edge_fractions(self) -> np.ndarray:
        """Grown fraction of each edge: 1 = complete tubule, 0 = missing, in between = growing/retracting."""
        return self._frac.copy()

    @property
    def tubule_width_um(self) -> float:
        return self.params.tubule_width_um

    def junction_degrees(self) -> np.ndarray:
        """Number of complete tubules meeting at each vertex (2 = a bend, not a junction)."""
        complete = self._edges[self._frac >= 1.0]
        return np.bincount(complete.ravel(), minlength=len(self._vertices))

    def sheet_centers_um(self) -> np.ndarray:
        return self.junction_positions_um()[self._sheet_vertex]

    @property
    def sheet_diameters_um(self) -> np.ndarray:
        return 2.0 * self._sheet_radius

    def tubule_curves(self, points: int = _CURVE_POINTS) -> np.ndarray:
        """``(E', points, 2)`` polylines of the visible (complete or partial) tubules."""
        vis = np.flatnonzero(self._frac > 0)
        pos = self.junction_positions_um()
        a = pos[self._edges[vis, 0]]
        b = pos[self._edges[vis, 1]]
        d = b - a
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
        # Control point offset twice the desired midpoint offset (a quadratic Bezier midpoint sits halfway).
        c = 0.5 * (a + b) + 2.0 * self._bow[vis, None] * normal
        f = self._frac[vis]
        t0 = np.where(self._from_a[vis], 0.0, 1.0 - f)
        t = t0[:, None] + f[:, None] * np.linspace(0.0, 1.0, points)[None, :]
        t = t[..., None]
        return (1 - t) ** 2 * a[:, None] + 2 * t * (1 - t) * c[:, None] + t**2 * b[:, None]

    # ------------------------------------------------------------------------------------------------------
    # Dynamics and rendering

    def advance(self, dt_s: float) -> None:
        """Slide junctions, grow and retract tubules for ``dt_s`` seconds."""
        if dt_s < 0:
            raise SynthError(f"time step must be >= 0 s (got {dt_s})")
        if dt_s == 0:
            return
        n_sub = max(1, math.ceil(dt_s / _MAX_STEP_S))
        h = dt_s / n_sub
        p = self.params
        rng = self._rng
        decay = math.exp(-h / p.junction_drift_time_s)
        # The low-pass stage is 4x faster than the drive: positions are smooth yet follow the drive closely.
        follow = 1.0 - math.exp(-4.0 * h / p.junction_drift_time_s)
        p_grow = 1.0 - math.exp(-p.ring_closure_rate_per_s * h)
        p_retract = 1.0 - math.exp(-self._retract_rate * h)
        for _ in range(n_sub):
            noise = rng.standard_normal(self._drive.shape)
            self._drive = decay * self._drive + p.junction_drift_um * math.sqrt(1.0 - decay**2) * noise
            self._offset += follow * (self._drive - self._offset)

            u = rng.random(len(self._frac))
            side = rng.random(len(self._frac)) < 0.5
            pos = self.junction_positions_um()
            length = np.linalg.norm(pos[self._edges[:, 1]] - pos[self._edges[:, 0]], axis=1)
            step = p.tubule_extension_speed_um_per_s * h / np.maximum(length, 1e-6)
            static = self._state == 0
            start_grow = static & (self._frac <= 0.0) & (u < p_grow)
            start_retract = static & (self._frac >= 1.0) & (u < p_retract)
            self._from_a = np.where(start_grow | start_retract, side, self._from_a)
            self._state[start_grow] = 1
            self._state[start_retract] = -1
            self._frac = np.clip(self._frac + self._state * step, 0.0, 1.0)
            done = ((self._state == 1) & (self._frac >= 1.0)) | ((self._state == -1) & (self._frac <= 0.0))
            self._state[done] = 0
            self.time_s += h

    def render(self, grid: Grid, brightness: float = 1.0) -> np.ndarray:
        """Density image ``(H, W)`` float32 of tubules and sheets on ``grid``."""
        p = self.params
        curves = self.tubule_curves()
        lam = np.repeat(self._tubule_brightness[self._frac > 0], _CURVE_POINTS - 1)
        img = render_segments(
            grid,
            curves[:, :-1].reshape(-1, 2),
            curves[:, 1:].reshape(-1, 2),
            lam * p.intensity_per_um * brightness,
            p.tubule_width_um,
        )
        if len(self._sheet_vertex):
            img += render_blobs(
                grid,
                self.sheet_centers_um(),
                self._sheet_radius,
                self._sheet_brightness * p.sheet_intensity * brightness,
                softness_um=0.5 * p.tubule_width_um,
                harmonics=self._sheet_harmonics,
            )
        return img
