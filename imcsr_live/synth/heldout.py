"""The held-out synthetic world: cells drawn by a third, separately written generator, used only to test models.

The training world was adjusted after looking at where models failed on the evaluation world, so that world is no
longer a clean test. This generator was written from cell biology alone, without reading the other worlds' drawing
code or figures, and no model is ever trained on it (``[data] world`` does not accept it): its scores are the ones
nobody tuned against. Use: ``imcsr-live evaluate --data heldout``, ``tools/cross_world.py --worlds ...,heldout``.

Spec sheet (per cell; "16 um field" = a 512 x 512 truth grid of 31.3 nm pixels; ranges are uniform unless "log"):

=====================  ==========================================================================================
Cell                   outline = circle of radius 10-35 um (log) with harmonics 2-5 (<= 12 % each); the centre may
                       lie outside the field; the cell covers >= 35 % of the field, so some fields show an edge
                       and nothing is drawn outside it. Per-structure brightness factor 0.5-2 (log).
Microtubules           20-300 per 16 um field inside the cell (log; scaled by the covered area). 30-95 % grow from
                       a centrosome 0-3 um from the cell centre (minus ends 0.1-1 um from it) and run 50-100 % of
                       the way to the edge; those that reach it bend and follow it for 0.5-6 um. The rest nucleate
                       anywhere in the cell: chords of 2-12 um, 60 % roughly radial. Shape: cubic spline through
                       control points every 1.2-2.5 um along that skeleton, jittered 0.04-0.2 um sideways. In
                       0-35 % of the cases 1-2 bundled partners run 25-50 nm aside. Cross-section FWHM 35-60 nm;
                       brightness 0.7-1.3 per MT, modulated by 10-35 % along it (wavelengths 1-6 um).
ER network             tubules = the drainage divides of a smooth random field: every point follows the field's
                       downhill gradient in strides of 0.35 correlation lengths until it reaches a minimum; the
                       borders between the basins are the tubules (generically meeting three at a time). Basin
                       borders are removed at random (2-12 % near the cell centre, 10-30 % at the edge) so
                       polygons merge. Mesh (median polygon equivalent diameter) 0.3-2 um (log); tubule FWHM
                       50-120 nm; junctions 20-50 % brighter; brightness 0.6-1.4, varying over ~1.5 um. The network
                       ends on its own outermost tubules 0-1.5 um (the lamella) plus half a mesh inside the edge.
ER sheets              where a second smooth field (correlation 0.5-1.2 um) passes a level: 0-8 % of the cell, plus
                       in 50 % of cells a perinuclear region (radius 3-7 um around the centrosome) mostly covered.
                       Interior 0.5-1, a tubule-like rim, 5-20 % of the area in holes (median 60-200 nm across).
Lysosomes              10-150 per 16 um field inside the cell (log); hard core (centres >= r1 + r2 + 30 nm apart);
                       20-70 % sit on microtubules. Diameter log-normal, median 0.25-0.5 um, clipped to 0.15-0.9 um;
                       those >= 0.3 um are rings (membrane-labelled shells 30-60 nm thick) with probability 0-60 %,
                       the others filled (projected spheres). Peak brightness 0.55-2.75 (log, a 5x spread).
Background             unlabelled light 1-5 % of a bright pixel, varying +-25 % over ~3 um, a quarter of that
                       outside the cell; it does not change in time.
Motion                 a slowly varying displacement field per structure (4 travelling sine modes, wavelengths
                       8-30 um, 0.05-0.3 um in all; 5-30 nm/s for microtubules and lysosomes, 10-50 nm/s for the
                       ER). 30-70 % of the microtubule plus ends grow (0.05-0.2 um/s) or shrink (0.1-0.35 um/s),
                       with catastrophes (0.03-0.1 /s) and rescues (0.1-0.3 /s), between half and all of their
                       path. 10-40 % of the lysosomes on microtubules run along them at 0.1-2 um/s (log), pausing
                       now and then and turning at the ends; the free ones diffuse (D = 0.0005-0.004 um^2/s).
=====================  ==========================================================================================

Intensities follow the project convention: on the 31.3 nm grid an isolated microtubule's or ER tubule's brightest
pixels are ~1, a lysosome punctum peaks at ~1-2, ER sheet interiors at 0.5-1 (times the cell's brightness factor).

How it differs from the usual generators: filaments are splines through jittered control points along a geometric
skeleton (no random walk or integrated curvature); the ER is the drainage-divide pattern of a random field (no
Voronoi / Delaunay graph); lines are drawn as the pixel-averaged cross-section of the exact distance to each
segment (microtubules) or of a distance map (ER), lysosomes as projected spheres and shells sampled on a sub-pixel
grid (no Gaussian splats). Geometry lives in um and depends only on the field size and the seed; the pixel size only
enters the rasterisation, and every profile keeps its integral per um^2 whatever the pixel size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.interpolate import CubicSpline, RectBivariateSpline
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import ndtri

from imcsr_live.errors import SynthError
from imcsr_live.synth.specimen import world_kinds

KINDS = ("microtubules", "er", "lysosomes")
REFERENCE_PIXEL_UM = 0.0313  # the grid of the intensity convention (isolated tubules peak at ~1 here)
FIELD_UM_PER_COUNT = 16.0  # counts in the spec sheet are per 16 x 16 um of field inside the cell
MT_STEP_UM = 0.05  # microtubule paths are stored at this arc-length spacing
MOTION_MARGIN_UM = 1.0  # geometry is made this far beyond the field, so that motion brings no empty border in
SUBSTEP_S = 0.25  # dynamics (tips, lysosome runs) advance in steps of at most this


# ---------------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------------


def _loguniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> np.ndarray | float:
    """Log-uniform draw in ``[lo, hi]`` (scalar when ``size`` is None)."""
    value = np.exp(rng.uniform(np.log(lo), np.log(hi), size))
    return float(value) if size is None else np.asarray(value)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below -1, 1 above +1, a C1 ramp between: soft masks whose width is set by scaling ``x``."""
    t = np.clip(0.5 * (x + 1.0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _tube_profile(dist_um: np.ndarray, sigma_um: float, pixel_um: float) -> np.ndarray:
    """Pixel-averaged cross-section of a line at distance ``dist_um``, brightest pixels ~1 on the reference grid.

    A pixel of side p averages the Gaussian profile over its width, which adds p^2/12 to the variance; scaling the
    peak by sigma_ref / sigma_eff keeps the integral across the line the same at every pixel size.
    """
    var_eff = sigma_um**2 + pixel_um**2 / 12.0
    sigma_ref = np.sqrt(sigma_um**2 + REFERENCE_PIXEL_UM**2 / 12.0)
    d = np.asarray(dist_um, dtype=np.float32)
    return np.float32(sigma_ref / np.sqrt(var_eff)) * np.exp(d * d * np.float32(-0.5 / var_eff))


def _arc_resample(points: np.ndarray, step_um: float) -> np.ndarray:
    """A polyline ``(N, 2)`` resampled at equal arc-length steps (the last point kept within one step)."""
    seg = np.hypot(*np.diff(points, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return points[:1].copy()
    s_new = np.arange(0.0, s[-1] + 1e-9, step_um)
    return np.stack([np.interp(s_new, s, points[:, 0]), np.interp(s_new, s, points[:, 1])], axis=1)


def _normals(path: np.ndarray) -> np.ndarray:
    """Unit normals ``(N, 2)`` of a polyline in ``(y, x)`` (the tangent turned by 90 degrees)."""
    if len(path) < 2:
        return np.tile([1.0, 0.0], (len(path), 1))
    tangent = np.gradient(path, axis=0)
    tangent /= np.maximum(np.hypot(*tangent.T), 1e-12)[:, None]
    return np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)


@dataclass(frozen=True)
class FieldBox:
    """The imaged field in um, ``(y, x)`` from the top-left corner of the first pixel."""

    height_um: float
    width_um: float

    @property
    def area_um2(self) -> float:
        return self.height_um * self.width_um

    def contains(self, pts: np.ndarray, margin_um: float = 0.0) -> np.ndarray:
        """Which points ``(N, 2)`` lie inside the field grown by ``margin_um``."""
        y, x = pts[:, 0], pts[:, 1]
        m = margin_um
        return (y >= -m) & (y <= self.height_um + m) & (x >= -m) & (x <= self.width_um + m)


class SmoothField:
    """A unit-variance smooth random field with correlation length ``corr_um`` over a box, evaluable anywhere.

    White noise on a lattice of half the correlation length is smoothed there and interpolated by bicubic splines:
    the field is a function of position in um, so sampling it on any grid gives the same cell.
    """

    def __init__(
        self, rng: np.random.Generator, lo_um: tuple[float, float], hi_um: tuple[float, float], corr_um: float
    ):
        spacing = corr_um / 2.0
        pad = 4  # lattice points beyond the box: no filter or spline edge effects inside it
        n = [int(np.ceil((h - lo) / spacing)) + 1 + 2 * pad for lo, h in zip(lo_um, hi_um, strict=True)]
        lattice = ndi.gaussian_filter(rng.standard_normal(n), 2.0, mode="reflect")
        lattice /= max(float(lattice.std()), 1e-12)
        ys = lo_um[0] + (np.arange(n[0]) - pad) * spacing
        xs = lo_um[1] + (np.arange(n[1]) - pad) * spacing
        self._spline = RectBivariateSpline(ys, xs, lattice, kx=3, ky=3)

    def grid(self, ys_um: np.ndarray, xs_um: np.ndarray) -> np.ndarray:
        """Values on the tensor grid of increasing ``ys_um`` x ``xs_um``, float32 ``(len(ys), len(xs))``."""
        return np.asarray(self._spline(ys_um, xs_um, grid=True), dtype=np.float32)


class CellOutline:
    """A star-shaped cell: radius ``R(phi) = R0 (1 + sum_m a_m cos(m phi + p_m))`` around ``centre_um``."""

    def __init__(self, rng: np.random.Generator, field: FieldBox):
        self.radius_um = float(_loguniform(rng, 10.0, 35.0))
        self.harmonics = np.arange(2, 6)
        self.amplitudes = rng.uniform(0.0, 0.12, len(self.harmonics))
        self.phases = rng.uniform(0.0, 2 * np.pi, len(self.harmonics))
        self.centre_um = self._place(rng, field)
        offset = rng.uniform(0.0, 3.0) * np.array([np.sin(a := rng.uniform(0, 2 * np.pi)), np.cos(a)])
        self.centrosome_um = self.centre_um + offset
        self.lamella_um = float(rng.uniform(0.0, 1.5))  # ER-free rim at the edge

    def _place(self, rng: np.random.Generator, field: FieldBox) -> np.ndarray:
        """A centre such that the cell covers at least 35 % of the field (it may lie outside the field)."""
        mid = np.array([field.height_um, field.width_um]) / 2
        reach = self.radius_um + 0.3 * np.hypot(field.height_um, field.width_um)
        probe = np.stack(np.meshgrid(np.linspace(0, field.height_um, 12), np.linspace(0, field.width_um, 12)), -1)
        probe = probe.reshape(-1, 2)
        centre = mid
        for _ in range(200):
            angle, dist = rng.uniform(0, 2 * np.pi), reach * np.sqrt(rng.uniform())
            centre = mid + dist * np.array([np.sin(angle), np.cos(angle)])
            self.centre_um = centre
            if (self.depth(probe[:, 0], probe[:, 1]) > 0).mean() >= 0.35:
                return centre
        return mid  # a cell too small for a large field: centre it in the field

    def radius(self, phi: np.ndarray) -> np.ndarray:
        """Edge radius (um) in direction ``phi`` (radians, y = sin, x = cos)."""
        phi = np.asarray(phi)
        wobble = np.cos(self.harmonics[:, None] * phi.ravel()[None] + self.phases[:, None])
        return (self.radius_um * (1.0 + self.amplitudes @ wobble)).reshape(phi.shape)

    def depth(self, y_um: np.ndarray, x_um: np.ndarray) -> np.ndarray:
        """How far inside the edge a point is (um, negative outside), measured along the ray from the centre."""
        dy, dx = np.asarray(y_um) - self.centre_um[0], np.asarray(x_um) - self.centre_um[1]
        return self.radius(np.arctan2(dy, dx)) - np.hypot(dy, dx)

    def radial_fraction(self, y_um: np.ndarray, x_um: np.ndarray) -> np.ndarray:
        """0 at the centre, 1 at the edge."""
        dy, dx = np.asarray(y_um) - self.centre_um[0], np.asarray(x_um) - self.centre_um[1]
        return np.hypot(dy, dx) / self.radius(np.arctan2(dy, dx))

    def inset_point(self, phi: np.ndarray, inset_um: float) -> np.ndarray:
        """Points ``(N, 2)`` ``inset_um`` inside the edge in directions ``phi``."""
        r = self.radius(phi) - inset_um
        return self.centre_um + np.stack([r * np.sin(phi), r * np.cos(phi)], axis=-1)


class DriftField:
    """A slowly varying displacement field: a few travelling sine modes of long wavelength."""

    def __init__(self, rng: np.random.Generator, amplitude_um: float, speed_um_s: float, modes: int = 4):
        wavelength = rng.uniform(8.0, 30.0, modes)
        k_angle, u_angle = rng.uniform(0, 2 * np.pi, modes), rng.uniform(0, 2 * np.pi, modes)
        self.k = (2 * np.pi / wavelength)[:, None] * np.stack([np.sin(k_angle), np.cos(k_angle)], 1)
        self.direction = np.stack([np.sin(u_angle), np.cos(u_angle)], 1)
        self.amplitude = amplitude_um * rng.uniform(0.5, 1.0, modes) / np.sqrt(modes)
        # Angular frequencies such that the modes together move points at about speed_um_s.
        self.omega = speed_um_s / self.amplitude.sum() * rng.uniform(0.7, 1.3, modes) * rng.choice([-1, 1], modes)
        self.phase = rng.uniform(0, 2 * np.pi, modes)

    def displacement(self, y_um: np.ndarray, x_um: np.ndarray, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """``(dy, dx)`` um at the given positions and time (float32, shape of the inputs)."""
        y, x = np.asarray(y_um, np.float32), np.asarray(x_um, np.float32)
        dy = np.zeros(np.broadcast_shapes(y.shape, x.shape), np.float32)
        dx = np.zeros_like(dy)
        for k, d, a, w, p in zip(self.k, self.direction, self.amplitude, self.omega, self.phase, strict=True):
            wave = np.float32(a) * np.sin(np.float32(k[0]) * y + np.float32(k[1]) * x + np.float32(w * t_s + p))
            dy += np.float32(d[0]) * wave
            dx += np.float32(d[1]) * wave
        return dy, dx

    def move(self, pts: np.ndarray, t_s: float) -> np.ndarray:
        """Points ``(N, 2)`` displaced to where the field carries them at ``t_s``."""
        dy, dx = self.displacement(pts[:, 0], pts[:, 1], t_s)
        return pts + np.stack([dy, dx], axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Microtubules
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Microtubule:
    """One microtubule: its full path (``MT_STEP_UM`` apart), the part drawn now and its tip dynamics."""

    path: np.ndarray  # (N, 2) um, minus end first
    brightness: np.ndarray  # (N,) relative brightness along the path
    visible_um: float  # drawn length from the minus end
    dynamic: bool
    growing: bool
    grow_um_s: float
    shrink_um_s: float

    @property
    def length_um(self) -> float:
        return (len(self.path) - 1) * MT_STEP_UM

    def visible_points(self) -> np.ndarray:
        """The drawn part of the path, ending exactly at the tip."""
        s = self.visible_um / MT_STEP_UM
        n = int(np.floor(s))
        pts = self.path[: n + 1]
        frac = s - n
        if frac > 1e-6 and n + 1 < len(self.path):
            tip = self.path[n] + frac * (self.path[n + 1] - self.path[n])
            pts = np.vstack([pts, tip])
        return pts


class MicrotubuleArray:
    """Centrosomal and free microtubules of one cell, some bundled, with dynamic plus ends."""

    def __init__(self, rng: np.random.Generator, cell: CellOutline, field: FieldBox):
        self.per_field = float(_loguniform(rng, 20.0, 300.0))  # per fully covered 16 um field
        self.centrosomal_fraction = float(rng.uniform(0.3, 0.95))
        self.bundled_fraction = float(rng.uniform(0.0, 0.35))
        self.sigma_um = float(rng.uniform(0.035, 0.060)) / 2.3548
        self.dynamic_fraction = float(rng.uniform(0.3, 0.7))
        self.catastrophe_per_s = float(rng.uniform(0.03, 0.1))
        self.rescue_per_s = float(rng.uniform(0.1, 0.3))
        self._cell, self._field = cell, field
        covered = _covered_fraction(cell, field, 0.0)
        self.target_count = max(1, round(self.per_field * covered * field.area_um2 / FIELD_UM_PER_COUNT**2))
        self.tubules: list[Microtubule] = []
        self._build(rng)

    # -- geometry --------------------------------------------------------------------------------------------
    def _build(self, rng: np.random.Generator) -> None:
        """Add microtubules (with their bundle partners) until ``target_count`` of them cross the field."""
        in_field = 0
        for _ in range(40 * self.target_count + 40):
            if in_field >= self.target_count:
                break
            centrosomal = rng.uniform() < self.centrosomal_fraction
            skeleton = self._centrosomal_skeleton(rng) if centrosomal else self._free_skeleton(rng)
            if skeleton is None:
                continue
            path = self._clip_to_cell(_spline_path(rng, skeleton), keep_start=centrosomal)
            if path is None or not self._field.contains(path, 0.1).any():
                continue
            group = [path]
            if rng.uniform() < self.bundled_fraction:
                group += [p for p in (_bundle_partner(rng, path) for _ in range(rng.integers(1, 3))) if p is not None]
            for p in group[: self.target_count - in_field]:
                if self._field.contains(p, 0.1).any():
                    self.tubules.append(self._tubule(rng, p))
                    in_field += 1

    def _centrosomal_skeleton(self, rng: np.random.Generator) -> np.ndarray | None:
        """Centrosome -> straight out towards the edge -> (the longest) along the edge for a while."""
        cell = self._cell
        theta = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(theta), np.cos(theta)])
        inset = float(rng.uniform(0.2, 0.6))
        # Minus ends sit anywhere in the pericentriolar material, not all in one point.
        r = np.arange(float(rng.uniform(0.1, 1.0)), 2.5 * cell.radius_um, 0.1)
        ray = cell.centrosome_um + r[:, None] * direction
        outside = np.flatnonzero(cell.depth(ray[:, 0], ray[:, 1]) < inset)
        if len(outside) == 0 or outside[0] < 5:
            return None
        reach = float(rng.uniform(0.45, 1.0))
        end = ray[0] + (r[outside[0]] - r[0]) * min(reach / 0.9, 1.0) * direction
        pts = [ray[0], end]
        if reach > 0.9:  # reached the edge: bend and run along it
            phi0 = np.arctan2(end[0] - cell.centre_um[0], end[1] - cell.centre_um[1])
            along = float(rng.uniform(0.5, 6.0))
            dphi = np.arange(0.4, along, 0.4) / cell.radius(np.array(phi0))
            pts += list(cell.inset_point(phi0 + rng.choice([-1.0, 1.0]) * dphi, inset))
        return np.array(pts)

    def _free_skeleton(self, rng: np.random.Generator) -> np.ndarray | None:
        """A straight chord 2-12 um long through a random point of the cell (60 % roughly radial)."""
        cell, field = self._cell, self._field
        for _ in range(20):
            p = rng.uniform([-3.0, -3.0], [field.height_um + 3.0, field.width_um + 3.0])
            if cell.depth(p[0], p[1]) > 0.5:
                break
        else:
            return None
        if rng.uniform() < 0.6:
            theta = np.arctan2(p[0] - cell.centre_um[0], p[1] - cell.centre_um[1]) + rng.normal(0.0, 0.35)
        else:
            theta = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(theta), np.cos(theta)])
        length, before = float(rng.uniform(2.0, 12.0)), float(rng.uniform())
        return np.array([p - before * length * direction, p + (1 - before) * length * direction])

    def _clip_to_cell(self, path: np.ndarray, keep_start: bool) -> np.ndarray | None:
        """The longest run of ``path`` inside the cell (from the start for centrosomal ones), >= 1 um long."""
        inside = self._cell.depth(path[:, 0], path[:, 1]) > 0.05
        if keep_start:
            stop = np.flatnonzero(~inside)
            path = path[: stop[0]] if len(stop) else path
        else:
            runs, n = ndi.label(inside)
            if n == 0:
                return None
            sizes = np.bincount(runs)[1:]
            path = path[runs == 1 + int(np.argmax(sizes))]
        return path if (len(path) - 1) * MT_STEP_UM >= 1.0 else None

    def _tubule(self, rng: np.random.Generator, path: np.ndarray) -> Microtubule:
        """A microtubule on ``path`` with its brightness pattern and tip dynamics."""
        s = np.arange(len(path)) * MT_STEP_UM
        depth = float(rng.uniform(0.1, 0.35))
        waves = sum(
            np.sin(2 * np.pi * s / rng.uniform(1.0, 6.0) + rng.uniform(0, 2 * np.pi)) for _ in range(3)
        ) / np.sqrt(1.5)
        brightness = np.clip(1.0 + depth * waves, 0.25, None) * float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3))
        dynamic = bool(rng.uniform() < self.dynamic_fraction)
        length = (len(path) - 1) * MT_STEP_UM
        visible = length * float(rng.uniform(0.8, 1.0)) if dynamic else length
        return Microtubule(
            path=path,
            brightness=brightness,
            visible_um=visible,
            dynamic=dynamic,
            growing=bool(rng.uniform() < 0.6),
            grow_um_s=float(rng.uniform(0.05, 0.2)),
            shrink_um_s=float(rng.uniform(0.1, 0.35)),
        )

    # -- dynamics --------------------------------------------------------------------------------------------
    def advance(self, rng: np.random.Generator, dt_s: float) -> None:
        """Plus ends grow or shrink (catastrophes and rescues); tips never pass the path's end or half its length."""
        for mt in self.tubules:
            if not mt.dynamic:
                continue
            left = dt_s
            while left > 0:
                step = min(SUBSTEP_S, left)
                left -= step
                rate = self.catastrophe_per_s if mt.growing else self.rescue_per_s
                if rng.uniform() < rate * step:
                    mt.growing = not mt.growing
                mt.visible_um += (mt.grow_um_s if mt.growing else -mt.shrink_um_s) * step
                if mt.visible_um >= mt.length_um or mt.visible_um <= 0.5 * mt.length_um:
                    mt.visible_um = float(np.clip(mt.visible_um, 0.5 * mt.length_um, mt.length_um))
                    mt.growing = mt.visible_um < mt.length_um  # at the end: shrink back; at the floor: regrow

    # -- drawing ---------------------------------------------------------------------------------------------
    def render(self, shape: tuple[int, int], pixel_um: float, drift: DriftField, t_s: float) -> np.ndarray:
        """The microtubule density on the pixel grid (brightest pixels of a single MT ~1 on the reference grid)."""
        stride = int(np.clip(round(2.5 * pixel_um / MT_STEP_UM), 1, 3))  # segments of ~2.5 pixels
        p0s, p1s, weights, cap0s, cap1s = [], [], [], [], []
        for mt in self.tubules:
            pts = mt.visible_points()
            if len(pts) < 2:
                continue
            keep = np.unique(np.concatenate([np.arange(0, len(pts), stride), [len(pts) - 1]]))
            pts = drift.move(pts[keep], t_s)
            bright = mt.brightness[np.minimum(keep, len(mt.brightness) - 1)]
            p0s.append(pts[:-1])
            p1s.append(pts[1:])
            weights.append(0.5 * (bright[:-1] + bright[1:]))
            cap = np.zeros(len(pts) - 1, bool)
            cap0, cap1 = cap.copy(), cap.copy()
            cap0[0], cap1[-1] = True, True
            cap0s.append(cap0)
            cap1s.append(cap1)
        if not p0s:
            return np.zeros(shape, np.float32)
        return draw_segments(
            shape,
            pixel_um,
            np.concatenate(p0s),
            np.concatenate(p1s),
            np.concatenate(weights),
            self.sigma_um,
            np.concatenate(cap0s),
            np.concatenate(cap1s),
        )

    def count_in_field(self, margin_um: float = 0.0) -> int:
        """Microtubules whose drawn part crosses the field."""
        return sum(bool(self._field.contains(mt.visible_points(), margin_um).any()) for mt in self.tubules)


def _covered_fraction(cell: CellOutline, field: FieldBox, inset_um: float) -> float:
    """Share of the field more than ``inset_um`` inside the cell (on a 48 x 48 probe grid)."""
    ys = np.linspace(0, field.height_um, 48)
    xs = np.linspace(0, field.width_um, 48)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return float((cell.depth(yy, xx) > inset_um).mean())


def _spline_path(rng: np.random.Generator, skeleton: np.ndarray) -> np.ndarray:
    """A smooth curve along ``skeleton``: a cubic spline through control points 1.2-2.5 um apart, jittered sideways
    (the first point stays: it is the nucleation site), sampled every ``MT_STEP_UM``."""
    line = _arc_resample(skeleton, 0.1)
    spacing = float(rng.uniform(1.2, 2.5))
    idx = np.unique(np.round(np.linspace(0, len(line) - 1, max(2, round(len(line) * 0.1 / spacing) + 1))))
    ctrl = line[idx.astype(int)]
    jitter = float(rng.uniform(0.04, 0.2))
    ctrl[1:] += _normals(ctrl)[1:] * rng.normal(0.0, jitter, (len(ctrl) - 1, 1))
    chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(ctrl, axis=0).T))])
    keep = np.concatenate([[True], np.diff(chord) > 1e-6])
    ctrl, chord = ctrl[keep], chord[keep]
    if len(ctrl) < 2:
        return ctrl
    dense = CubicSpline(chord, ctrl, axis=0, bc_type="natural")(np.arange(0.0, chord[-1], 0.01))
    return _arc_resample(np.vstack([dense, ctrl[-1]]), MT_STEP_UM)


def _bundle_partner(rng: np.random.Generator, path: np.ndarray) -> np.ndarray | None:
    """A second microtubule alongside ``path``: 25-50 nm aside, starting and ending up to 1.5 um differently."""
    offset = float(rng.uniform(0.025, 0.05)) * rng.choice([-1.0, 1.0])
    partner = path + offset * _normals(path)
    cut = (rng.uniform(0, 1.5, 2) / MT_STEP_UM).astype(int)
    partner = partner[cut[0] : len(partner) - cut[1]]
    return partner if (len(partner) - 1) * MT_STEP_UM >= 1.0 else None


def draw_segments(
    shape: tuple[int, int],
    pixel_um: float,
    p0: np.ndarray,
    p1: np.ndarray,
    weight: np.ndarray,
    sigma_um: float,
    cap0: np.ndarray,
    cap1: np.ndarray,
) -> np.ndarray:
    """Lines drawn from their segments: each pixel gets ``weight`` x the tube profile of its exact distance to the
    segment it projects onto. A pixel projecting beyond a polyline's end (``cap0``/``cap1``) fades with the
    distance past it; joins between segments are half-open, so a polyline is not counted twice. Overlapping
    lines add up (bundles and crossings are brighter)."""
    h, w = shape
    image = np.zeros(h * w, np.float64)
    var_eff = sigma_um**2 + pixel_um**2 / 12.0
    reach = 3.0 * np.sqrt(var_eff)
    seg = p1 - p0
    length = np.hypot(seg[:, 0], seg[:, 1])
    ok = length > 1e-9
    lo = np.minimum(p0, p1) - reach
    hi = np.maximum(p0, p1) + reach
    ok &= (hi[:, 0] >= 0) & (lo[:, 0] <= h * pixel_um) & (hi[:, 1] >= 0) & (lo[:, 1] <= w * pixel_um)
    if not ok.any():
        return image.reshape(shape).astype(np.float32)
    p0, seg, length, weight, cap0, cap1, lo = p0[ok], seg[ok], length[ok], weight[ok], cap0[ok], cap1[ok], lo[ok]
    unit = seg / length[:, None]
    span = int(np.ceil((length.max() + 2 * reach) / pixel_um)) + 2
    offsets = np.arange(span)
    start = np.floor(lo / pixel_um).astype(np.int64)  # first pixel index of each segment's window
    peak = _tube_profile(np.zeros(1), sigma_um, pixel_um)[0]
    chunk = max(1, 400_000 // (span * span))  # bounds the temporaries to a few MB
    for a in range(0, len(p0), chunk):
        b = slice(a, a + chunk)
        iy = start[b, 0, None, None] + offsets[None, :, None]
        ix = start[b, 1, None, None] + offsets[None, None, :]
        ry = (iy + 0.5) * pixel_um - p0[b, 0, None, None]
        rx = (ix + 0.5) * pixel_um - p0[b, 1, None, None]
        along = ry * unit[b, 0, None, None] + rx * unit[b, 1, None, None]
        across = ry * unit[b, 1, None, None] - rx * unit[b, 0, None, None]
        seg_len = length[b, None, None]
        before = np.where(cap0[b, None, None], np.exp(-0.5 * along**2 / var_eff), 0.0)
        beyond = np.where(cap1[b, None, None], np.exp(-0.5 * (along - seg_len) ** 2 / var_eff), 0.0)
        along_w = np.where(along < 0, before, np.where(along >= seg_len, beyond, 1.0))
        value = (weight[b, None, None] * peak) * np.exp(-0.5 * across**2 / var_eff) * along_w
        valid = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w) & (value > 1e-6)
        flat = (iy * w + ix)[valid]
        image += np.bincount(flat, value[valid], minlength=h * w)
    return image.reshape(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Endoplasmic reticulum
# ---------------------------------------------------------------------------------------------------------------

# Median equivalent diameter of the drainage basins of a SmoothField, in correlation lengths (measured on this
# generator, with the average border removal below included).
MESH_PER_CORR = 5.0


def drainage_basins(values: np.ndarray, stride_px: float) -> np.ndarray:
    """Label every pixel by the minimum that steepest descent from it reaches (labels 0..n-1).

    Each pixel points to the pixel ``stride_px`` further down the local gradient (long strides follow the true
    gradient direction closely, where single steps to one of 8 neighbours would bend divides onto the grid's
    axes and diagonals); where that is not lower, to its lowest neighbour; a minimum points to itself. Pointer
    jumping then finds every pixel's minimum in a few passes.
    """
    h, w = values.shape
    flat = values.ravel()
    gy, gx = np.gradient(values)
    norm = np.maximum(np.hypot(gy, gx), 1e-30)
    yy, xx = np.indices(values.shape)
    ty = np.clip(np.rint(yy - stride_px * gy / norm).astype(np.int64), 0, h - 1)
    tx = np.clip(np.rint(xx - stride_px * gx / norm).astype(np.int64), 0, w - 1)
    parent = (ty * w + tx).ravel()
    uphill = np.flatnonzero(flat[parent] >= flat)  # near minima: take the steepest of the 8 neighbours
    parent[uphill] = _lowest_neighbour(values, uphill)
    for _ in range(64):
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    roots = parent == np.arange(h * w)
    return (np.cumsum(roots) - 1)[parent].reshape(h, w)


def _lowest_neighbour(values: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Flat index of the steepest-descent neighbour (of 8) of each flat index in ``pixels`` (itself at a minimum)."""
    h, w = values.shape
    flat = values.ravel()
    row, col = np.divmod(pixels, w)
    best, best_slope = pixels.copy(), np.zeros(len(pixels))
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        r, c = row + dy, col + dx
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        nb = np.where(inside, r * w + c, pixels)
        slope = (flat[pixels] - flat[nb]) / np.hypot(dy, dx)  # 0 outside the grid (nb = the pixel itself)
        better = slope > best_slope
        best_slope = np.where(better, slope, best_slope)
        best = np.where(better, nb, best)
    return best


def touching_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of regions that touch (4-neighbours): ``(P, 2)`` labels, smaller first, and where they touch, the mean
    ``(row, col)`` of the touching pixels ``(P, 2)``. Labels must be 0..n-1."""
    n = int(labels.max()) + 1
    keys, rows, cols = [], [], []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        r, c = np.nonzero(a != b)
        la, lb = a[r, c], b[r, c]
        keys.append(np.minimum(la, lb) * n + np.maximum(la, lb))
        rows.append(r)
        cols.append(c)
    key = np.concatenate(keys)
    unique, inverse = np.unique(key, return_inverse=True)
    count = np.bincount(inverse)
    where = np.stack(
        [np.bincount(inverse, np.concatenate(rows)) / count, np.bincount(inverse, np.concatenate(cols)) / count], 1
    )
    return np.stack([unique // n, unique % n], axis=1), where


def merge_regions(labels: np.ndarray, pairs: np.ndarray, merge: np.ndarray) -> np.ndarray:
    """Labels after removing the borders of the ``pairs`` marked in ``merge`` (regions joined transitively)."""
    n = int(labels.max()) + 1
    chosen = pairs[merge]
    graph = coo_matrix((np.ones(len(chosen)), (chosen[:, 0], chosen[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return component[labels]


def border_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour belongs to another region: the divides, one pixel wide."""
    border = np.zeros(labels.shape, bool)
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    border[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return border


def junction_degrees(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where three or more regions meet: a mask of 2 x 2 pixel blocks (shape ``(H-1, W-1)``) and the number of
    distinct regions in each block (= the number of tubules meeting there)."""
    a, b, c, d = labels[:-1, :-1], labels[:-1, 1:], labels[1:, :-1], labels[1:, 1:]
    distinct = 1 + (b != a) + ((c != a) & (c != b)) + ((d != a) & (d != b) & (d != c))
    return distinct >= 3, distinct


def _grid_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Unit-variance smoothed white noise on a grid (for fine fields whose lattice would be the grid itself)."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px, mode="reflect")
    return noise / max(float(noise.std()), 1e-12)


def _signed_distance(values: np.ndarray, level: float, step_um: float) -> np.ndarray:
    """Approximate signed distance (um, positive above ``level``) to the level set, from the local gradient."""
    gy, gx = np.gradient(values, step_um)
    slope = np.maximum(np.hypot(gy, gx), 1e-3)
    return np.clip((values - level) / slope, -0.3, 0.3).astype(np.float32)


class ErNetwork:
    """Tubular ER = the drainage divides of a random field, partly merged; sheets = level sets with holes."""

    def __init__(self, rng: np.random.Generator, cell: CellOutline, field: FieldBox):
        self.cell = cell
        self.mesh_um = float(_loguniform(rng, 0.3, 2.0))
        self.sigma_um = float(rng.uniform(0.05, 0.12)) / 2.3548
        self.junction_gain = float(rng.uniform(0.2, 0.5))
        self.rim_gain = float(rng.uniform(0.8, 1.2))
        prune_core, prune_edge = float(rng.uniform(0.02, 0.12)), float(rng.uniform(0.10, 0.30))
        corr = self.mesh_um / MESH_PER_CORR
        # Geometry grid: fine enough for the mesh and the tubule distance map; set by the seed, not the pixels.
        self.step_um = float(np.clip(corr / 5.0, 0.012, 0.025))
        m = MOTION_MARGIN_UM
        self.origin_um = (-m, -m)
        ny = int(np.ceil(round((field.height_um + 2 * m) / self.step_um, 6))) + 1
        nx = int(np.ceil(round((field.width_um + 2 * m) / self.step_um, 6))) + 1
        ys, xs = -m + np.arange(ny) * self.step_um, -m + np.arange(nx) * self.step_um
        hi = (float(ys[-1]), float(xs[-1]))

        values = SmoothField(rng, self.origin_um, hi, corr).grid(ys, xs)
        labels = drainage_basins(values, stride_px=max(0.35 * corr / self.step_um, 1.5))
        pairs, where = touching_pairs(labels)
        where_y, where_x = ys[0] + where[:, 0] * self.step_um, xs[0] + where[:, 1] * self.step_um
        radial = np.clip(cell.radial_fraction(where_y, where_x), 0.0, 1.0)
        # More borders go towards the edge: peripheral ER has larger polygons than the perinuclear mesh.
        merge = rng.uniform(size=len(pairs)) < prune_core + (prune_edge - prune_core) * radial
        labels = self._trim_to_cell(merge_regions(labels, pairs, merge), ys, xs)
        self._record_statistics(labels, ys, xs, field)

        border = border_mask(labels)
        far = np.full(labels.shape, 1e3, np.float32)  # no ER in this field at all
        self.dist_um = (ndi.distance_transform_edt(~border) * self.step_um).astype(np.float32) if border.any() else far
        junction, _ = junction_degrees(labels)
        impulses = np.zeros(labels.shape, np.float32)
        impulses[:-1, :-1][junction] = 1.0
        blob_px = 1.5 * self.sigma_um / self.step_um
        self.junction_map = ndi.gaussian_filter(impulses, blob_px) * np.float32(2 * np.pi * blob_px**2)
        self.brightness_map = np.clip(1.0 + 0.2 * SmoothField(rng, self.origin_um, hi, 1.5).grid(ys, xs), 0.6, 1.4)
        self._make_sheets(rng, ys, xs, hi)

    def _trim_to_cell(self, labels: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Polygons centred in the lamella or beyond become one "outside" region (label ``n``): the network then
        ends on its own outermost tubules, not on a cut line."""
        n = int(labels.max()) + 1
        count = np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
        r, c = np.indices(labels.shape)
        cy = ys[0] + np.bincount(labels.ravel(), r.ravel(), minlength=n) / count * self.step_um
        cx = xs[0] + np.bincount(labels.ravel(), c.ravel(), minlength=n) / count * self.step_um
        outside = self.cell.depth(cy, cx) < self.cell.lamella_um + 0.5 * self.mesh_um
        self.outside_label = n
        return np.where(outside[labels], n, labels)

    def _record_statistics(self, labels: np.ndarray, ys: np.ndarray, xs: np.ndarray, field: FieldBox) -> None:
        """Polygon sizes and junction degrees inside the field and the cell's ER (for tests and the docs)."""
        rows = np.flatnonzero((ys >= 0) & (ys <= field.height_um))
        cols = np.flatnonzero((xs >= 0) & (xs <= field.width_um))
        inner = labels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        y0, x0 = ys[rows[0]], xs[cols[0]]
        keep_depth = self.cell.lamella_um + 0.2  # well inside the cell's ER

        # Whole polygons: not cut by the field's edge, centred in the ER.
        cut = np.unique(np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]]))
        count = np.bincount(inner.ravel())
        r, c = np.indices(inner.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            cy = y0 + np.bincount(inner.ravel(), r.ravel()) / count * self.step_um
            cx = x0 + np.bincount(inner.ravel(), c.ravel()) / count * self.step_um
        whole = np.setdiff1d(np.flatnonzero(count), np.append(cut, self.outside_label))
        whole = whole[self.cell.depth(cy[whole], cx[whole]) > keep_depth]
        self.polygon_diameters_um = 2.0 * np.sqrt(count[whole] * self.step_um**2 / np.pi)

        # Neighbouring 2 x 2 blocks can belong to one junction: count each cluster once, at its highest degree.
        junction, degree = junction_degrees(inner)
        clusters, n = ndi.label(junction, structure=np.ones((3, 3)))
        found = np.flatnonzero(clusters.ravel())
        fr, fc = np.divmod(found, clusters.shape[1])
        deep = self.cell.depth(y0 + fr * self.step_um, x0 + fc * self.step_um) > keep_depth
        highest = np.zeros(n + 1, int)
        np.maximum.at(highest, clusters.ravel()[found[deep]], degree.ravel()[found[deep]])
        self.degree_per_junction = highest[highest > 0]

    def _make_sheets(self, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, hi: tuple[float, float]) -> None:
        """Sheets where a smooth field (raised around the nucleus in some cells) passes a level; holes in them."""
        cell = self.cell
        self.sheet_fraction = float(rng.uniform(0.0, 0.08))
        self.perinuclear = bool(rng.uniform() < 0.5)
        nucleus_um = float(rng.uniform(3.0, 7.0))
        lift = float(rng.uniform(1.5, 3.0))
        self.sheet_level = float(rng.uniform(0.5, 1.0))
        hole_fraction, hole_corr = float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.035, 0.08))
        sheet = SmoothField(rng, self.origin_um, hi, float(rng.uniform(0.5, 1.2))).grid(ys, xs)
        if self.perinuclear:
            r = np.hypot(ys[:, None] - cell.centrosome_um[0], xs[None] - cell.centrosome_um[1])
            sheet += np.float32(lift) * _smoothstep((nucleus_um - r) / 1.5).astype(np.float32)
        level = float(ndtri(1.0 - max(self.sheet_fraction, 1e-4)))
        self.has_sheets = bool((sheet > level).any())
        holes = _grid_noise(rng, sheet.shape, hole_corr / self.step_um)
        if self.has_sheets:
            self.sheet_sd = _signed_distance(sheet, level, self.step_um)
            self.hole_sd = _signed_distance(holes, float(ndtri(1.0 - hole_fraction)), self.step_um)

    def render(self, ys: np.ndarray, xs: np.ndarray, pixel_um: float, drift: DriftField, t_s: float) -> np.ndarray:
        """ER density at the pixel centres ``ys`` x ``xs`` (um) at time ``t_s``."""
        yy, xx = ys[:, None].astype(np.float32), xs[None, :].astype(np.float32)
        dy, dx = drift.displacement(yy, xx, t_s)
        sy, sx = yy - dy, xx - dx  # where in the ER's own frame each pixel looks
        coords = np.stack([(sy - self.origin_um[0]) / self.step_um, (sx - self.origin_um[1]) / self.step_um])

        def sample(grid: np.ndarray) -> np.ndarray:
            return ndi.map_coordinates(grid, coords, order=1, mode="nearest", output=np.float32)

        bright = sample(self.brightness_map)
        tubes = _tube_profile(sample(self.dist_um), self.sigma_um, pixel_um)
        junctions = np.float32(self.junction_gain) * sample(self.junction_map)  # more membrane where tubes meet
        er = (tubes + junctions) * bright
        if self.has_sheets:
            sd = sample(self.sheet_sd)
            soft = np.float32(2.0 * self.sigma_um)
            inside = _smoothstep(sd / soft)
            rim = _tube_profile(np.abs(sd), self.sigma_um, pixel_um) * np.float32(self.rim_gain)
            body = np.float32(self.sheet_level) * _smoothstep((sd - soft) / soft)
            body *= 1.0 - _smoothstep(sample(self.hole_sd) / soft)
            sheets = np.maximum(rim * bright, body * bright)
            sheets *= _smoothstep((self.cell.depth(sy, sx) - self.cell.lamella_um) / 0.15)  # none in the lamella
            er = np.maximum(er * (1.0 - inside), sheets)
        return er.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Lysosomes
# ---------------------------------------------------------------------------------------------------------------


class Lysosomes:
    """Hard-core placed lysosomes, partly on microtubules; filled spheres or membrane rings; runs and diffusion."""

    def __init__(self, rng: np.random.Generator, cell: CellOutline, field: FieldBox, mts: MicrotubuleArray | None):
        self.cell, self.field, self.mts = cell, field, mts
        self.per_field = float(_loguniform(rng, 10.0, 150.0))
        self.track_fraction = float(rng.uniform(0.2, 0.7))
        self.median_diameter_um = float(rng.uniform(0.25, 0.5))
        self.ring_probability = float(rng.uniform(0.0, 0.6))
        runner_fraction = float(rng.uniform(0.1, 0.4))
        m = MOTION_MARGIN_UM
        box = FieldBox(field.height_um + 2 * m, field.width_um + 2 * m)
        covered = self._covered(box, m)
        n = round(self.per_field * covered * box.area_um2 / FIELD_UM_PER_COUNT**2)
        self._place(rng, n, m)
        k = len(self.radius)
        self.shell_um = np.where(
            (2 * self.radius >= 0.3) & (rng.uniform(size=k) < self.ring_probability), rng.uniform(0.03, 0.06, k), 0.0
        )
        self.peak = np.asarray(_loguniform(rng, 0.55, 2.75, k))
        self.speed = np.where(
            (self.track >= 0) & (rng.uniform(size=k) < runner_fraction), _loguniform(rng, 0.1, 2.0, k), 0.0
        )
        self.heading = rng.choice([-1.0, 1.0], k)
        self.running = rng.uniform(size=k) < 0.6
        self.diffusion = np.asarray(_loguniform(rng, 0.0005, 0.004, k))

    def _covered(self, box: FieldBox, margin_um: float) -> float:
        """Share of ``box`` (the field grown by ``margin_um``) where lysosomes may sit (0.3 um inside the cell)."""
        ys = np.linspace(-margin_um, box.height_um - margin_um, 48)
        xs = np.linspace(-margin_um, box.width_um - margin_um, 48)
        return float((self.cell.depth(ys[:, None], xs[None]) > 0.3).mean())

    def _place(self, rng: np.random.Generator, n: int, margin_um: float) -> None:
        """Random sequential placement with a hard core; a share of them on microtubule paths."""
        tubules = [mt for mt in (self.mts.tubules if self.mts else []) if mt.length_um > 0]
        lengths = np.array([mt.length_um for mt in tubules])
        pos: list[np.ndarray] = []
        radius: list[float] = []
        track: list[int] = []
        s_um: list[float] = []
        side: list[float] = []
        lo = np.array([-margin_um, -margin_um])
        hi = np.array([self.field.height_um + margin_um, self.field.width_um + margin_um])
        for _ in range(n):
            r = 0.5 * float(np.clip(self.median_diameter_um * np.exp(rng.normal(0.0, 0.35)), 0.15, 0.9))
            for _attempt in range(30):
                on_track = bool(tubules) and rng.uniform() < self.track_fraction
                if on_track:
                    t = int(rng.choice(len(tubules), p=lengths / lengths.sum()))
                    s, off = float(rng.uniform(0, tubules[t].length_um)), float(rng.normal(0.0, 0.03))
                    p = _point_on(tubules[t].path, s, off)
                else:
                    t, s, off = -1, 0.0, 0.0
                    p = rng.uniform(lo, hi)
                if not (np.all(p >= lo) and np.all(p <= hi)) or self.cell.depth(p[0], p[1]) <= 0.3:
                    continue
                if pos and np.any(np.hypot(*(np.array(pos) - p).T) < np.array(radius) + r + 0.03):
                    continue
                pos.append(p)
                radius.append(r)
                track.append(t)
                s_um.append(s)
                side.append(off)
                break
        self.home = np.array(pos).reshape(-1, 2)  # free ones move from here
        self.radius = np.array(radius)
        self.track = np.array(track, dtype=int)
        self.s_um = np.array(s_um)
        self.side_um = np.array(side)

    def advance(self, rng: np.random.Generator, dt_s: float) -> None:
        """Runners move along their microtubule (pausing now and then, turning at its ends); free ones diffuse."""
        left = dt_s
        while left > 0:
            step = min(SUBSTEP_S, left)
            left -= step
            switch = rng.uniform(size=len(self.radius)) < np.where(self.running, 0.3, 0.5) * step
            self.running ^= switch
            move = (self.speed > 0) & self.running
            tubules = self.mts.tubules if self.mts is not None else []
            for i in np.flatnonzero(move):
                length = tubules[self.track[i]].length_um
                s = self.s_um[i] + self.heading[i] * self.speed[i] * step
                if s < 0 or s > length:
                    self.heading[i] *= -1
                    s = float(np.clip(s, 0.0, length))
                self.s_um[i] = s
            kick = rng.normal(0.0, 1.0, self.home.shape) * np.sqrt(2 * self.diffusion * step)[:, None]
            free = self.track < 0
            trial = self.home + kick
            stays = free & (self.cell.depth(trial[:, 0], trial[:, 1]) > 0.2)
            self.home[stays] = trial[stays]

    def positions(self, drift: DriftField, t_s: float) -> np.ndarray:
        """Centres ``(N, 2)`` um now (track-bound ones on their microtubule)."""
        pts = self.home.copy()
        if self.mts is not None:
            for i in np.flatnonzero(self.track >= 0):
                pts[i] = _point_on(self.mts.tubules[self.track[i]].path, self.s_um[i], self.side_um[i])
        return drift.move(pts, t_s) if len(pts) else pts

    def render(self, shape: tuple[int, int], pixel_um: float, drift: DriftField, t_s: float) -> np.ndarray:
        """Each lysosome's projected sphere or shell, averaged over a sub-pixel grid (<= 10 nm samples)."""
        image = np.zeros(shape, np.float32)
        ss = int(np.clip(np.ceil(pixel_um / 0.01), 2, 8))
        sub = (np.arange(ss) + 0.5) / ss
        for (cy, cx), r, shell, peak in zip(self.positions(drift, t_s), self.radius, self.shell_um, self.peak,
                                            strict=True):  # fmt: skip
            i0, i1 = max(int((cy - r) / pixel_um), 0), min(int((cy + r) / pixel_um) + 1, shape[0])
            j0, j1 = max(int((cx - r) / pixel_um), 0), min(int((cx + r) / pixel_um) + 1, shape[1])
            if i0 >= i1 or j0 >= j1:
                continue
            py = ((np.arange(i0, i1)[:, None] + sub[None]) * pixel_um - cy).ravel()
            px = ((np.arange(j0, j1)[:, None] + sub[None]) * pixel_um - cx).ravel()
            d2 = py[:, None] ** 2 + px[None, :] ** 2
            profile = _shell_profile(d2, r, shell) if shell > 0 else np.sqrt(np.clip(1.0 - d2 / r**2, 0.0, None))
            block = profile.reshape(i1 - i0, ss, j1 - j0, ss).mean(axis=(1, 3))
            image[i0:i1, j0:j1] += np.float32(peak) * block.astype(np.float32)
        return image

    def count_in_field(self, drift: DriftField, t_s: float) -> int:
        return int(self.field.contains(self.positions(drift, t_s)).sum())


def _point_on(path: np.ndarray, s_um: float, side_um: float) -> np.ndarray:
    """The point ``s_um`` along a path (``MT_STEP_UM`` sampling) shifted ``side_um`` along its normal."""
    f = min(max(s_um / MT_STEP_UM, 0.0), len(path) - 1.0)
    i = min(int(f), len(path) - 2) if len(path) > 1 else 0
    if len(path) < 2:
        return path[0].copy()
    a, b = path[i], path[i + 1]
    tangent = (b - a) / max(float(np.hypot(*(b - a))), 1e-12)
    return a + (f - i) * (b - a) + side_um * np.array([tangent[1], -tangent[0]])


def _shell_profile(d2: np.ndarray, radius: float, shell: float) -> np.ndarray:
    """Projection of a spherical shell (outer ``radius``, thickness ``shell``), 1 at its brightest (the inner rim)."""
    inner = radius - shell
    chord = np.sqrt(np.clip(radius**2 - d2, 0.0, None)) - np.sqrt(np.clip(inner**2 - d2, 0.0, None))
    return chord / np.sqrt(radius**2 - inner**2)


# ---------------------------------------------------------------------------------------------------------------
# The specimen
# ---------------------------------------------------------------------------------------------------------------


class HeldoutSpecimen:
    """A moving cell of the held-out world (see the module docstring); implements the world's SpecimenModel."""

    def __init__(
        self,
        structures: Sequence[str],
        shape: tuple[int, int],
        pixel_size_um: float,
        seed: np.random.Generator | int,
    ):
        self.kinds = world_kinds(structures, "heldout", KINDS)
        if len(shape) != 2 or min(int(s) for s in shape) < 8:
            raise SynthError(f"the heldout world needs a 2-D field of at least 8 x 8 pixels (got {tuple(shape)})")
        if not (np.isfinite(pixel_size_um) and 0.0 < pixel_size_um <= 0.5):
            raise SynthError(f"pixel size must be in (0, 0.5] um for the heldout world (got {pixel_size_um})")
        if not isinstance(seed, np.random.Generator | int):
            raise SynthError(f"seed must be a numpy Generator or an int (got {type(seed).__name__})")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.shape = (int(shape[0]), int(shape[1]))
        self.pixel_size_um = float(pixel_size_um)
        self.time_s = 0.0
        # One stream per part, so that e.g. leaving the ER out does not change the microtubules.
        cell_rng, mt_rng, er_rng, lyso_rng, drift_rng, tip_rng, run_rng, bg_rng = (
            np.random.default_rng(int(s)) for s in rng.integers(0, 2**63 - 1, size=8)
        )
        self.field = FieldBox(self.shape[0] * self.pixel_size_um, self.shape[1] * self.pixel_size_um)
        self.cell = CellOutline(cell_rng, self.field)
        self.brightness = {kind: float(_loguniform(cell_rng, 0.5, 2.0)) for kind in KINDS}
        # Microtubules and lysosomes share one displacement field (lysosomes ride on the microtubules).
        amplitude, speed = float(drift_rng.uniform(0.05, 0.3)), float(drift_rng.uniform(0.005, 0.03))
        self.cytoskeleton_drift = DriftField(drift_rng, amplitude, speed)
        amplitude, speed = float(drift_rng.uniform(0.05, 0.3)), float(drift_rng.uniform(0.01, 0.05))
        self.er_drift = DriftField(drift_rng, amplitude, speed)
        needs_mts = "microtubules" in self.kinds or "lysosomes" in self.kinds  # lysosomes ride on them
        self.microtubules = MicrotubuleArray(mt_rng, self.cell, self.field) if needs_mts else None
        self.er = ErNetwork(er_rng, self.cell, self.field) if "er" in self.kinds else None
        self.lysosomes = (
            Lysosomes(lyso_rng, self.cell, self.field, self.microtubules) if "lysosomes" in self.kinds else None
        )
        self._tip_rng, self._run_rng, self._bg_rng = tip_rng, run_rng, bg_rng
        self._background: np.ndarray | None = None
        self._ys = (np.arange(self.shape[0]) + 0.5) * self.pixel_size_um
        self._xs = (np.arange(self.shape[1]) + 0.5) * self.pixel_size_um
        # Nothing is drawn outside the cell (what drifts up to the edge fades over its last 100 nm).
        depth = self.cell.depth(self._ys[:, None], self._xs[None])
        self._cell_mask = (_smoothstep(depth / 0.05 - 1.0)).astype(np.float32)

    def render(self) -> np.ndarray:
        """Per-structure density now, float32 ``(C, H, W)``, non-negative, channels in structure order."""
        drawn: dict[str, np.ndarray] = {}
        for kind in self.kinds:
            if kind not in drawn:
                drawn[kind] = np.maximum(self._draw(kind), 0.0) * self._cell_mask * np.float32(self.brightness[kind])
        return np.stack([drawn[k] for k in self.kinds]).astype(np.float32)

    def _draw(self, kind: str) -> np.ndarray:
        px, t = self.pixel_size_um, self.time_s
        if kind == "microtubules" and self.microtubules is not None:
            return self.microtubules.render(self.shape, px, self.cytoskeleton_drift, t)
        if kind == "er" and self.er is not None:
            return self.er.render(self._ys, self._xs, px, self.er_drift, t)
        if kind == "lysosomes" and self.lysosomes is not None:
            return self.lysosomes.render(self.shape, px, self.cytoskeleton_drift, t)
        raise SynthError(f"the heldout world has no {kind!r} in this specimen")  # unreachable: kinds are checked

    def advance(self, dt_s: float) -> None:
        """Let the cell move on by ``dt_s`` seconds: drift fields, microtubule tips, lysosome runs and diffusion."""
        if not np.isfinite(dt_s) or dt_s < 0:
            raise SynthError(f"time step must be a finite number of seconds >= 0 (got {dt_s})")
        if self.microtubules is not None:
            self.microtubules.advance(self._tip_rng, dt_s)
        if self.lysosomes is not None:
            self.lysosomes.advance(self._run_rng, dt_s)
        self.time_s += float(dt_s)

    def background(self) -> np.ndarray:
        """Unlabelled light (1-5 % of a bright pixel, smooth, positive), float32 ``(H, W)``; it does not move."""
        if self._background is None:
            rng = self._bg_rng
            level = float(rng.uniform(0.01, 0.05))
            m = MOTION_MARGIN_UM
            hi = (self.field.height_um + m, self.field.width_um + m)
            wobble = SmoothField(rng, (-m, -m), hi, 3.0).grid(self._ys, self._xs)
            inside = _smoothstep(self.cell.depth(self._ys[:, None], self._xs[None]) / 0.5)
            light = level * (0.25 + 0.75 * inside) * np.clip(1.0 + 0.25 * wobble, 0.5, None)
            self._background = light.astype(np.float32)
        return self._background.copy()
