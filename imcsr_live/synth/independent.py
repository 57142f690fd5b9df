"""The independent synthetic world: a separately written cell generator that no training run ever sees.

Models trained on the project's own synthetic cells (``specimen.py`` and the domain-randomised world) are
tested here on cells drawn by different algorithms with no shared drawing code, so that a model that learned
the quirks of one generator (its line profiles, its curve statistics, its network topology) is caught out.

What it draws (a COS-7 periphery under TIRF-SIM; every parameter drawn per seed from a wide range, counts
per 16 x 16 um field and scaled with the field's area):

* **Cell.** A centre (nucleus / MTOC) anywhere from the middle of the field to ~1.6 fields away. In ~40 % of
  fields a visible cell edge: a smooth star-shaped boundary (a few low harmonics) with nothing but a faint
  haze outside. Per-structure brightness 0.5-2x. ``background()``: unlabelled haze at 1-5 % of the
  structures' peak inside the cell (smooth, ~20 % of that outside). In half the cells a whole-field drift
  of 2-15 nm/s.
* **Microtubules.** 30-350 per field (log-uniform). Each is a persistent random walk (apparent persistence
  length 4-30 um, a per-filament curvature bias, a pull towards the radial direction of the cell centre of
  0-0.5 /um) grown from a seed in the field both ways: inwards until it leaves the field or nears the nucleus,
  outwards to an exponentially distributed plus end. Near a cell edge the walk turns along the boundary and
  stops after 0.5-4 um. Intensity varies along the length as exp(-depth / 120 nm) with a depth that wanders
  with 3-12 um wavelengths (dimming over several um), 0-25 % of them are bundles of two (2x bright).
  Rendered as a 25 nm line. Motion: a travelling transverse undulation (0-40 nm) and dynamic plus ends
  (growth 0.1-0.25 um/s, shrinkage 0.2-0.5 um/s, catastrophes and rescues).
* **ER.** Soft-core Poisson nodes with a mesh size of 0.3-2 um (cell median 0.45-1.5 um) that varies
  smoothly across the cell, joined by a triangle-free subgraph of their Delaunay triangulation (the longest
  edge of every triangle dropped: a relative-neighbourhood-like graph), then pruned unevenly (a smooth random
  field sets where 5-50 % of the junction-to-junction links go, which merges meshes without making dead
  ends), 2-10 % of the tubules cut short into dangling spurs, fragments of < 4 links dropped. Each chain of
  links between junctions / ends is one tubule: tension-straightened control points every 0.6-1.2 um,
  gently arched midpoints, smoothed by corner cutting; widths 45-140 nm (cell median 55-90 nm), brightness
  +-25 %, three-way junctions get an extra blob. Sheets: 0-4 star-shaped blobs of 0.6-5 um diameter with
  bright rims and fenestrations (holes of 0.1-0.3 um, 5-30 % of the area); in ~30 % of fields a big
  perinuclear sheet region (radius 2.5-6 um) on the side facing the cell centre. Motion: every node drifts
  (an Ornstein-Uhlenbeck walk relaxing over 30 s, D 0.0005-0.003 um^2/s, dangling ends 3x), fenestrations
  jiggle.
* **Lysosomes.** 15-60 per field. 35-65 % sit on a microtubule (a point of a filament's path; the
  microtubule geometry exists even when microtubules are not a requested channel) and run along it at
  0.5-2 um/s with pauses and reversals; the rest come from a Neyman-Scott cluster process (1.5-6 per
  cluster, cluster radius 0.3-1.5 um, 20 % loners) and diffuse (D 0.0005-0.005 um^2/s). Diameters 150-800 nm (cell
  median 220-450 nm); above 300 nm a cell-specific 50-100 % are LAMP-like rings with a faint lumen, the
  rest Gaussian puncta. Brightness spread 5x (log-uniform).

How it differs from the training worlds: its own rasteriser (bilinear splatting of densely resampled curve
points, then a Gaussian blur per width class; sheets and lysosomes evaluated analytically on pixel
centres), filaments as persistent random walks rather than integrated curvature, the ER as a pruned
triangle-free Delaunay subgraph of soft-core points with corner-cut tubules rather than a Voronoi
tessellation, lysosomes as a cluster process plus filament cargo. All geometry lives in um and depends only
on the field size and the seed; the pixel size only enters the rasterisation. Densities are per um^2, so an
isolated structure's bright pixels are ~1 on the 31.3 nm SR grid (finer grids resolve thin lines, with
higher peaks, at the same integrated intensity). Each structure has its own random stream, so a structure
looks the same whatever else is requested. See ``docs/worlds/independent.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, cKDTree

from imcsr_live.errors import SynthError
from imcsr_live.synth.specimen import world_kinds

KINDS = ("microtubules", "er", "lysosomes")
REFERENCE_FIELD_UM2 = 16.0 * 16.0  # counts are quoted per 16 x 16 um field

# Line densities (intensity x um per um of length) that put an isolated line's bright pixels at ~1 on the
# 31.3 nm grid after bilinear splatting: calibrated once by rendering straight lines at random angles.
MT_LINE_DENSITY = 0.040  # a 25 nm microtubule
ER_DENSITY_PER_WIDTH = 0.77  # an ER tubule of width d (um) carries 0.77 * d
MT_SIGMA_UM = 0.025 / 4  # projected 25 nm cylinder ~ Gaussian of sigma d / 4
ER_WIDTH_BINS_UM = (0.0, 0.065, 0.09)  # tubules are blurred in three width classes
ER_BIN_WIDTH_UM = (0.055, 0.077, 0.105)
MT_STEP_UM = 0.1  # random-walk step


def _loguniform(rng: np.random.Generator, lo: float, hi: float, size: int | None = None) -> Any:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


class _SmoothField:
    """A smooth random field of ~unit variance in um coordinates (random Fourier features)."""

    def __init__(self, rng: np.random.Generator, scale_um: float, n_waves: int = 10) -> None:
        k = 2 * np.pi / (scale_um * rng.uniform(0.6, 1.6, n_waves))
        angle = rng.uniform(0, 2 * np.pi, n_waves)
        self.kx, self.ky = k * np.cos(angle), k * np.sin(angle)
        self.phase = rng.uniform(0, 2 * np.pi, n_waves)
        self.norm = np.sqrt(2.0 / n_waves)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x, y = np.asarray(x, float), np.asarray(y, float)
        arg = np.multiply.outer(x, self.kx) + np.multiply.outer(y, self.ky) + self.phase
        return self.norm * np.cos(arg).sum(axis=-1)


class _Cell:
    """Where the cell is: its centre (nucleus / MTOC) and, in some fields, a visible smooth edge."""

    def __init__(self, rng: np.random.Generator, width_um: float, height_um: float) -> None:
        size = max(width_um, height_um)
        mid = np.array([width_um / 2, height_um / 2])
        direction = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(0.0, 1.6) * size
        self.centre = mid + dist * np.array([np.cos(direction), np.sin(direction)])
        self.nucleus_um = rng.uniform(2.5, 5.0)  # microtubules fade out / stop this close to the centre
        self.harm_k = np.arange(2, 7)
        self.harm_a = rng.uniform(0, 0.07, self.harm_k.size) / np.sqrt(self.harm_k - 1)
        self.harm_phi = rng.uniform(0, 2 * np.pi, self.harm_k.size)
        self.radius_um = np.inf
        if rng.uniform() < 0.4:
            # an edge that crosses the field, with at least ~30 % of the field inside the cell
            ys, xs = np.meshgrid(np.linspace(0, height_um, 17), np.linspace(0, width_um, 17), indexing="ij")
            for _ in range(8):
                radius = max(dist + rng.uniform(-0.35, 0.35) * size, 0.55 * size, self.nucleus_um + 3.0)
                self.radius_um = radius
                if self.inside(xs.ravel(), ys.ravel()).mean() >= 0.3:
                    break
            else:
                self.radius_um = np.inf

    @property
    def has_edge(self) -> bool:
        return bool(np.isfinite(self.radius_um))

    def edge_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (um, along the radius) from a point inwards to the edge: < 0 outside the cell."""
        dx, dy = np.asarray(x) - self.centre[0], np.asarray(y) - self.centre[1]
        r = np.hypot(dx, dy)
        if not self.has_edge:
            return np.full(r.shape, np.inf)
        theta = np.arctan2(dy, dx)
        edge = self.radius_um * (
            1 + (self.harm_a * np.cos(np.multiply.outer(theta, self.harm_k) + self.harm_phi)).sum(-1)
        )
        return edge - r

    def inside(self, x: np.ndarray, y: np.ndarray, margin_um: float = 0.0) -> np.ndarray:
        return self.edge_distance(x, y) > margin_um


def _interp_matrix(targets: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Dense linear-interpolation weights ``(len(targets), len(grid))`` for a uniform 1-D grid."""
    step = grid[1] - grid[0]
    pos = np.clip((targets - grid[0]) / step, 0, grid.size - 1 - 1e-9)
    i0 = np.floor(pos).astype(int)
    f = pos - i0
    m = np.zeros((targets.size, grid.size))
    rows = np.arange(targets.size)
    m[rows, i0] = 1 - f
    m[rows, np.minimum(i0 + 1, grid.size - 1)] += f
    return m


def _splat(buf: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, px: float) -> None:
    """Add point amounts ``w`` (intensity x um^2) to ``buf`` as a density (per um^2), bilinearly."""
    h, wd = buf.shape
    u, v = x * (1.0 / px) - 0.5, y * (1.0 / px) - 0.5
    ok = (u > -1) & (u < wd) & (v > -1) & (v < h)
    if not ok.all():
        u, v, w = u[ok], v[ok], w[ok]
    if not u.size:
        return
    j0, i0 = np.floor(u), np.floor(v)
    fx, fy = u - j0, v - i0
    stride = wd + 2  # a one-pixel pad all round takes the corners that fall off the grid
    base = (i0.astype(np.intp) + 1) * stride + j0.astype(np.intp) + 1
    top, bottom = w * (1 - fy), w * fy
    flat = np.concatenate([base, base + 1, base + stride, base + stride + 1])
    amount = np.concatenate([top * (1 - fx), top * fx, bottom * (1 - fx), bottom * fx])
    acc = np.bincount(flat, amount, minlength=(h + 2) * stride).reshape(h + 2, stride)
    buf += (acc[1:-1, 1:-1] * (1.0 / px**2)).astype(buf.dtype)


def _splat_segments(
    buf: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    rho0: np.ndarray,
    rho1: np.ndarray,
    px: float,
    field_um: tuple[float, float],
) -> None:
    """Resample straight pieces every half pixel and splat them; ``rho`` is intensity x um per um of length."""
    lo = np.minimum(p0, p1)
    hi = np.maximum(p0, p1)
    pad = 2 * px
    seen = (hi[:, 0] > -pad) & (lo[:, 0] < field_um[0] + pad) & (hi[:, 1] > -pad) & (lo[:, 1] < field_um[1] + pad)
    p0, p1, rho0, rho1 = p0[seen], p1[seen], rho0[seen], rho1[seen]
    if not p0.size:
        return
    d = p1 - p0
    length = np.hypot(d[:, 0], d[:, 1])
    n = np.maximum(1, np.ceil(length / (0.5 * px))).astype(np.int64)
    idx = np.repeat(np.arange(length.size), n)
    k = np.arange(idx.size) - np.repeat(np.cumsum(n) - n, n)
    f = (k + 0.5) / n[idx]
    x = p0[idx, 0] + f * d[idx, 0]
    y = p0[idx, 1] + f * d[idx, 1]
    amount = (rho0[idx] + f * (rho1 - rho0)[idx]) * (length / n)[idx]
    _splat(buf, x, y, amount, px)


def _blur(buf: np.ndarray, sigma_um: float, px: float) -> np.ndarray:
    sigma = sigma_um / px
    if sigma < 0.3:
        return buf
    return ndimage.gaussian_filter(buf, sigma, mode="constant", truncate=3.5)


def _walk(
    rng: np.random.Generator,
    start: np.ndarray,
    heading: np.ndarray,
    cell: _Cell,
    box: tuple[float, float, float, float],
    max_len: np.ndarray,
    curl_len: np.ndarray,
    persistence_um: float,
    align_per_um: float,
    bias_per_um: np.ndarray,
    inward: bool,
) -> np.ndarray:
    """Walk all filaments at once, ``(steps + 1, n, 2)`` um, NaN once a filament has stopped.

    The heading diffuses (persistence length), relaxes towards the radial direction (outwards, or inwards for
    the minus-end side), drifts by a per-filament curvature bias, and turns along a nearby cell edge.
    """
    n = len(start)
    steps = int(np.ceil(float(max_len.max(initial=0.0)) / MT_STEP_UM)) + 1
    pos = np.full((steps + 1, n, 2), np.nan)
    pos[0] = start
    theta = heading.astype(float).copy()
    alive = np.ones(n, bool)
    walked = np.zeros(n)
    along_edge = np.zeros(n)
    kick = np.sqrt(MT_STEP_UM / persistence_um)
    for k in range(steps):
        p = pos[k]
        out_angle = np.arctan2(p[:, 1] - cell.centre[1], p[:, 0] - cell.centre[0])
        prefer = out_angle + (np.pi if inward else 0.0)
        theta = theta + kick * rng.normal(size=n) + bias_per_um * MT_STEP_UM
        theta = theta - align_per_um * MT_STEP_UM * np.sin(_wrap(theta - prefer))
        if cell.has_edge:
            d_edge = cell.edge_distance(p[:, 0], p[:, 1])
            zone = d_edge < 0.8
            rel = _wrap(theta - out_angle)
            alpha = np.clip((0.8 - d_edge) / 0.8, 0.0, 1.0)
            turn = zone & (np.cos(rel) > 0)
            theta = np.where(turn, theta + alpha * (np.sign(rel) * np.pi / 2 - rel), theta)
            along_edge += np.where(zone & alive, MT_STEP_UM, 0.0)
        new = p + MT_STEP_UM * np.column_stack([np.cos(theta), np.sin(theta)])
        alive &= walked + MT_STEP_UM <= max_len
        alive &= (new[:, 0] > box[0]) & (new[:, 0] < box[2]) & (new[:, 1] > box[1]) & (new[:, 1] < box[3])
        alive &= along_edge < curl_len
        alive &= cell.inside(new[:, 0], new[:, 1], 0.02)
        if inward:
            alive &= np.hypot(new[:, 0] - cell.centre[0], new[:, 1] - cell.centre[1]) > cell.nucleus_um
        if not alive.any():
            break
        pos[k + 1] = np.where(alive[:, None], new, np.nan)
        walked += MT_STEP_UM * alive
    return pos


class _Microtubules:
    """Persistent random walks radiating loosely from the cell centre, with dynamic plus ends."""

    def __init__(self, rng: np.random.Generator, cell: _Cell, width_um: float, height_um: float) -> None:
        self.per_field = float(_loguniform(rng, 30, 350))
        self.persistence_um = float(_loguniform(rng, 4, 30))
        self.align_per_um = float(rng.uniform(0, 0.5))
        spread = rng.uniform(0.15, 0.9)
        n_want = max(1, round(self.per_field * width_um * height_um / REFERENCE_FIELD_UM2))
        margin = 1.0
        box = (-margin, -margin, width_um + margin, height_um + margin)
        cand = np.column_stack([rng.uniform(0, width_um, 6 * n_want), rng.uniform(0, height_um, 6 * n_want)])
        ok = cell.inside(cand[:, 0], cand[:, 1], 0.3) & (np.hypot(*(cand - cell.centre).T) > cell.nucleus_um + 0.5)
        seeds = cand[ok][:n_want]
        n = len(seeds)
        radial = np.arctan2(seeds[:, 1] - cell.centre[1], seeds[:, 0] - cell.centre[0])
        heading = radial + rng.normal(0, spread, n)
        bias = rng.normal(0, 0.06, n)  # rad / um: some filaments curl one way
        diag = np.hypot(width_um, height_um) + 2 * margin
        plus_len = rng.exponential(max(width_um, height_um) * rng.uniform(0.3, 1.0), n)
        curl = rng.uniform(0.5, 4.0, n)
        walk: dict[str, Any] = dict(
            persistence_um=self.persistence_um, align_per_um=self.align_per_um, bias_per_um=bias
        )
        back = _walk(rng, seeds, heading + np.pi, cell, box, np.full(n, 1.5 * diag), curl, inward=True, **walk)
        fwd = _walk(rng, seeds, heading, cell, box, plus_len + 3.0, curl, inward=False, **walk)
        n_back = (~np.isnan(back[:, :, 0])).sum(axis=0)
        n_fwd = (~np.isnan(fwd[:, :, 0])).sum(axis=0)
        paths = [np.concatenate([back[: n_back[i], i][::-1], fwd[1 : n_fwd[i], i]]) for i in range(n)]
        counts = np.array([len(p) for p in paths], dtype=np.int64)
        self.n = n
        self.xy = np.concatenate(paths) if n else np.zeros((0, 2))
        self.ident = np.repeat(np.arange(n), counts)
        self.starts = np.r_[0, np.cumsum(counts)]
        self.s = (np.arange(self.xy.shape[0]) - self.starts[self.ident]) * MT_STEP_UM
        self.length_full = (counts - 1) * MT_STEP_UM
        self.seed_s = (n_back - 1) * MT_STEP_UM
        self.length = np.minimum(self.seed_s + plus_len, self.length_full)  # plus end along each path
        # unit normals for the undulation
        nxt = np.minimum(np.arange(self.xy.shape[0]) + 1, self.starts[self.ident + 1] - 1)
        prv = np.maximum(np.arange(self.xy.shape[0]) - 1, self.starts[self.ident])
        t = self.xy[nxt] - self.xy[prv]
        norm = np.hypot(t[:, 0], t[:, 1])
        t = np.where(norm[:, None] > 0, t / np.maximum(norm, 1e-12)[:, None], [1.0, 0.0])
        self.normal = np.column_stack([-t[:, 1], t[:, 0]])
        # intensity along the length: depth in the evanescent field wandering with 3-12 um wavelengths,
        # deeper (dimmer) close to the nucleus; some bundles of two
        i = self.ident
        z0 = rng.uniform(-0.08, 0.12, n)
        amp = rng.uniform(0.0, 0.15, (n, 2))
        lam = rng.uniform(3.0, 12.0, (n, 2))
        phi = rng.uniform(0, 2 * np.pi, (n, 2))
        depth = z0[i] + sum(amp[i, j] * np.sin(2 * np.pi * self.s / lam[i, j] + phi[i, j]) for j in range(2))
        r = np.hypot(*(self.xy - cell.centre).T) if n else np.zeros(0)
        depth = depth + 0.25 * np.exp(-(r - cell.nucleus_um) / 2.0)
        self.bundle = np.where(rng.uniform(size=n) < rng.uniform(0, 0.25), 2.0, 1.0)
        self.intensity = np.exp(-np.maximum(depth, 0.0) / 0.12) * self.bundle[i]
        # motion: travelling transverse undulation + dynamic instability of the plus ends
        self.und_amp = rng.uniform(0, 0.04) * rng.uniform(0.3, 1.0, n)
        self.und_k = 2 * np.pi / rng.uniform(1.5, 5.0, n)
        self.und_omega = rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 0.5, n)
        self.und_phi = rng.uniform(0, 2 * np.pi, n)
        self.v_grow = rng.uniform(0.1, 0.25)
        self.v_shrink = rng.uniform(0.2, 0.5)
        self.catastrophe_per_s = rng.uniform(0.02, 0.06)
        self.rescue_per_s = rng.uniform(0.05, 0.15)
        self.growing = rng.uniform(size=n) < 0.6
        self.time_s = 0.0

    def positions(self) -> np.ndarray:
        """Current node positions (um), undulated."""
        i = self.ident
        u = self.und_amp[i] * np.sin(self.und_k[i] * self.s + self.und_omega[i] * self.time_s + self.und_phi[i])
        return self.xy + u[:, None] * self.normal

    def point_at(self, ident: np.ndarray, s: np.ndarray, xy: np.ndarray | None = None) -> np.ndarray:
        """Positions (um) at arc length ``s`` along filaments ``ident``."""
        xy = self.positions() if xy is None else xy
        pos = np.clip(s / MT_STEP_UM, 0, (self.starts[ident + 1] - self.starts[ident] - 1).astype(float))
        k = np.floor(pos).astype(np.int64)
        f = (pos - k)[:, None]
        a = self.starts[ident] + k
        b = np.minimum(a + 1, self.starts[ident + 1] - 1)
        return (1 - f) * xy[a] + f * xy[b]

    def in_field(self, width_um: float, height_um: float) -> np.ndarray:
        """Which filaments currently have a node in the field."""
        xy = self.positions()
        on = (xy[:, 0] >= 0) & (xy[:, 0] < width_um) & (xy[:, 1] >= 0) & (xy[:, 1] < height_um)
        on &= self.s <= self.length[self.ident]
        return np.bincount(self.ident[on], minlength=self.n) > 0

    def advance(self, rng: np.random.Generator, dt_s: float) -> None:
        sub = max(1, int(np.ceil(dt_s / 0.5)))
        h = dt_s / sub
        for _ in range(sub):
            v = np.where(self.growing, self.v_grow, -self.v_shrink)
            self.length = np.clip(self.length + v * h, self.seed_s, self.length_full)
            flip = rng.uniform(size=self.n)
            p_cat = 1 - np.exp(-self.catastrophe_per_s * h)
            p_res = 1 - np.exp(-self.rescue_per_s * h)
            at_end = self.length >= self.length_full - 1e-9
            self.growing = np.where(self.growing, (flip >= p_cat) & ~at_end, flip < p_res)
        self.time_s += dt_s

    def render(self, buf: np.ndarray, px: float, field_um: tuple[float, float], offset: np.ndarray) -> None:
        if not self.n:
            return
        xy = self.positions() + offset
        a = np.flatnonzero(self.ident[:-1] == self.ident[1:])
        a = a[self.s[a] < self.length[self.ident[a]]]
        t = np.clip((self.length[self.ident[a]] - self.s[a]) / MT_STEP_UM, 0.0, 1.0)
        p0 = xy[a]
        p1 = p0 + t[:, None] * (xy[a + 1] - p0)
        i0 = self.intensity[a]
        i1 = i0 + t * (self.intensity[a + 1] - i0)
        _splat_segments(buf, p0, p1, MT_LINE_DENSITY * i0, MT_LINE_DENSITY * i1, px, field_um)


class _Sheet:
    """A star-shaped ER sheet with a rim and fenestrations."""

    def __init__(self, rng: np.random.Generator, centre: np.ndarray, radius_um: float) -> None:
        self.centre = np.asarray(centre, float)
        self.radius_um = radius_um
        self.k = np.arange(2, 8)
        self.a = rng.uniform(0, 0.22, self.k.size) / (self.k - 1)
        self.phi = rng.uniform(0, 2 * np.pi, self.k.size)
        self.extent_um = radius_um * (1 + self.a.sum())
        self.level = rng.uniform(0.35, 0.8)  # interior density relative to a tubule's peak
        hole_r = _loguniform(rng, 0.05, 0.15)
        frac = rng.uniform(0.05, 0.3)
        box = (2 * self.extent_um) ** 2
        m = rng.poisson(frac * box / (np.pi * hole_r**2))
        c = self.centre + rng.uniform(-self.extent_um, self.extent_um, (m, 2))
        r = hole_r * _loguniform(rng, 0.7, 1.4, m)
        keep = self.inside(c[:, 0], c[:, 1], margin_um=0.5 * hole_r)
        self.holes = c[keep]
        self.hole_r = r[keep]
        self.holes0 = self.holes.copy()

    def radius(self, theta: np.ndarray) -> np.ndarray:
        return self.radius_um * (1 + (self.a * np.cos(np.multiply.outer(theta, self.k) + self.phi)).sum(-1))

    def inside(self, x: np.ndarray, y: np.ndarray, margin_um: float = 0.0) -> np.ndarray:
        dx, dy = np.asarray(x) - self.centre[0], np.asarray(y) - self.centre[1]
        return np.hypot(dx, dy) < self.radius(np.arctan2(dy, dx)) - margin_um

    def rim(self) -> np.ndarray:
        """Closed outline, ``(n, 2)`` um."""
        n = max(24, int(2 * np.pi * self.extent_um / 0.08))
        theta = np.linspace(0, 2 * np.pi, n + 1)
        r = self.radius(theta)
        return self.centre + np.column_stack([r * np.cos(theta), r * np.sin(theta)])

    def paint(self, img: np.ndarray, px: float, offset: np.ndarray, cell: _Cell) -> None:
        """Add the interior (with its holes) as a density, antialiased over a pixel."""
        h, w = img.shape
        cx, cy = self.centre + offset
        j0, j1 = max(0, int((cx - self.extent_um) / px) - 1), min(w, int((cx + self.extent_um) / px) + 2)
        i0, i1 = max(0, int((cy - self.extent_um) / px) - 1), min(h, int((cy + self.extent_um) / px) + 2)
        if j0 >= j1 or i0 >= i1:
            return
        xs = (np.arange(j0, j1) + 0.5) * px - cx
        ys = (np.arange(i0, i1) + 0.5) * px - cy
        dx, dy = np.meshgrid(xs, ys)
        r = np.hypot(dx, dy)
        cover = np.clip((self.radius(np.arctan2(dy, dx)) - r) / px + 0.5, 0.0, 1.0)
        if cell.has_edge:
            cover *= cell.inside(dx + cx - offset[0], dy + cy - offset[1])
        if self.holes.size:
            hr = int(np.ceil(self.hole_r.max() / px)) + 1
            off = np.arange(-hr, hr + 1)
            hc = self.holes + offset
            hj = np.floor(hc[:, 0] / px).astype(np.int64)[:, None, None] + off[None, None, :]
            hi = np.floor(hc[:, 1] / px).astype(np.int64)[:, None, None] + off[None, :, None]
            dist = np.hypot((hj + 0.5) * px - hc[:, 0, None, None], (hi + 0.5) * px - hc[:, 1, None, None])
            hole = np.clip((self.hole_r[:, None, None] - dist) / px + 0.5, 0.0, 1.0)
            hi, hj = np.broadcast_arrays(hi, hj)
            ok = (hi >= i0) & (hi < i1) & (hj >= j0) & (hj < j1) & (hole > 0)
            carve = np.zeros(cover.size)
            np.maximum.at(carve, (hi[ok] - i0) * (j1 - j0) + (hj[ok] - j0), hole[ok])
            cover *= 1.0 - carve.reshape(cover.shape)
        img[i0:i1, j0:j1] += (self.level * cover).astype(img.dtype)


class _ER:
    """A pruned triangle-free Delaunay subgraph of soft-core points (tubules) plus fenestrated sheets."""

    def __init__(self, rng: np.random.Generator, cell: _Cell, width_um: float, height_um: float) -> None:
        area_scale = width_um * height_um / REFERENCE_FIELD_UM2
        margin = 1.0
        lo, hi = np.array([-margin, -margin]), np.array([width_um + margin, height_um + margin])
        # sheets first (tubules avoid them)
        self.sheets: list[_Sheet] = []
        for _ in range(rng.poisson(rng.uniform(0, 4) * area_scale)):
            c = rng.uniform(lo, hi)
            if cell.inside(c[0], c[1], 0.5):
                self.sheets.append(_Sheet(rng, c, float(_loguniform(rng, 0.3, 2.5))))
        if rng.uniform() < 0.3:
            near = np.clip(cell.centre, 0.0, [width_um, height_um])
            toward = cell.centre - near
            toward = toward / max(np.hypot(*toward), 1e-9)
            radius = rng.uniform(2.5, 6.0)
            self.sheets.append(_Sheet(rng, near + toward * rng.uniform(0, 0.6) * radius, radius))
        # soft-core Poisson nodes with a smoothly varying mesh size
        self.mesh_um = float(_loguniform(rng, 0.45, 1.5))
        mesh_var = rng.uniform(0.15, 0.5)
        mesh_field = _SmoothField(rng, rng.uniform(3.0, 8.0))
        box_area = float(np.prod(hi - lo))
        lam_max = 3.0 / 0.3**2
        pts = rng.uniform(lo, hi, (rng.poisson(lam_max * box_area), 2))
        mesh = np.clip(self.mesh_um * np.exp(mesh_var * mesh_field(pts[:, 0], pts[:, 1])), 0.3, 2.0)
        keep = rng.uniform(size=len(pts)) < (3.0 / mesh**2) / lam_max
        keep &= cell.inside(pts[:, 0], pts[:, 1], -0.3)
        pts, mesh = pts[keep], mesh[keep]
        pairs = cKDTree(pts).query_pairs(
            0.4 * float(np.percentile(mesh, 5)) if len(mesh) else 0.1, output_type="ndarray"
        )
        if len(pairs):
            close = np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T) < 0.4 * np.minimum(
                mesh[pairs[:, 0]], mesh[pairs[:, 1]]
            )
            drop = np.zeros(len(pts), bool)
            drop[pairs[close].max(axis=1)] = True
            pts = pts[~drop]
        edges = self._triangle_free(pts)
        # uneven pruning between junctions (merges meshes, makes no dead ends): a smooth field decides where
        # 5-50 % of them go; a few tubules are cut short into dangling spurs
        mid = 0.5 * (pts[edges[:, 0]] + pts[edges[:, 1]]) if len(edges) else np.zeros((0, 2))
        prune_field = _SmoothField(rng, rng.uniform(2.0, 6.0))
        p_rm = 2 * rng.uniform(0.05, 0.5) / (1 + np.exp(-2.0 * prune_field(mid[:, 0], mid[:, 1])))
        f_spur = rng.uniform(0.02, 0.1)
        u, v = rng.uniform(size=len(edges)), rng.uniform(size=len(edges))
        removed, spur = np.zeros(len(edges), bool), np.zeros(len(edges), bool)
        deg = np.bincount(edges.ravel(), minlength=len(pts))
        for k in rng.permutation(len(edges)).tolist():
            a, b = edges[k]
            if deg[a] >= 3 and deg[b] >= 3:
                if u[k] < p_rm[k]:
                    removed[k] = True
                    deg[a] -= 1
                    deg[b] -= 1
                elif v[k] < f_spur:
                    spur[k] = True
                    deg[b] -= 1
        t_end = np.where(spur, rng.uniform(0.25, 0.7, len(edges)), 1.0)
        keep = ~removed
        # inside the cell, not over a sheet
        a_in = cell.inside(pts[edges[:, 0], 0], pts[edges[:, 0], 1], 0.1)
        b_in = cell.inside(pts[edges[:, 1], 0], pts[edges[:, 1], 1], 0.1)
        keep &= a_in & (b_in | spur)
        for sh in self.sheets:
            keep &= ~sh.inside(mid[:, 0], mid[:, 1], 0.05)
        edges, t_end = edges[keep], t_end[keep]
        # spurs end at a node of their own
        spur = t_end < 1.0
        a, b = pts[edges[:, 0]], pts[edges[:, 1]]
        ends = a[spur] + t_end[spur, None] * (b[spur] - a[spur])
        used = np.unique(np.r_[edges[~spur].ravel(), edges[spur, 0]]).astype(np.int64)
        remap = np.full(len(pts), -1)
        remap[used] = np.arange(used.size)
        tip = np.where(spur, used.size + np.cumsum(spur) - 1, remap[edges[:, 1]])
        nodes = np.concatenate([pts[used], ends])
        graph = np.column_stack([remap[edges[:, 0]], tip]).astype(np.int64)
        # the ER is one continuous network: drop tiny fragments left over by the pruning
        if len(graph):
            adj = sparse.coo_matrix((np.ones(len(graph)), (graph[:, 0], graph[:, 1])), shape=(len(nodes),) * 2)
            _, label = csgraph.connected_components(adj, directed=False)
            size = np.bincount(label[graph[:, 0]], minlength=label.max() + 1)
            graph = graph[size[label[graph[:, 0]]] >= 4]
        deg = np.bincount(graph.ravel(), minlength=len(nodes))
        # tubules = chains between junctions / ends: fewer, tension-straightened control points, then
        # gently arched midpoints, smoothed by corner cutting (a fixed linear operator on the moving nodes)
        spacing = rng.uniform(0.6, 1.2)
        tension = rng.uniform(0.3, 0.8)
        arcs = rng.uniform(0.03, 0.12)
        extra: list[np.ndarray] = []
        sequences = []
        n_total = len(nodes)
        for chain in self._chains(graph, deg):
            ids = np.asarray(chain)
            p = nodes[ids]
            step = np.hypot(*np.diff(p, axis=0).T)
            s_along = np.r_[0.0, np.cumsum(step)]
            total = s_along[-1]
            closed = ids[0] == ids[-1]
            n_mid = max(2 if closed else 0, round(total / spacing) - 1)
            n_mid = min(n_mid, len(ids) - 2)
            inner = np.unique(np.round(np.linspace(0, len(ids) - 1, n_mid + 2)).astype(int))[1:-1]
            if inner.size and not closed:
                frac = s_along[inner] / max(total, 1e-9)
                chord = p[0] + frac[:, None] * (p[-1] - p[0])
                nodes[ids[inner]] = (1 - tension) * p[inner] + tension * chord
            kept = ids[np.r_[0, inner, len(ids) - 1]]
            q = nodes[kept]
            d = np.diff(q, axis=0)
            mids = 0.5 * (q[:-1] + q[1:]) + rng.normal(0, arcs, (len(d), 1)) * np.column_stack([-d[:, 1], d[:, 0]])
            mid_ids = n_total + np.arange(len(mids))
            n_total += len(mids)
            extra.append(mids)
            seq = np.empty(2 * len(kept) - 1, np.int64)
            seq[0::2], seq[1::2] = kept, mid_ids
            sequences.append(seq)
        self.nodes0 = np.concatenate([nodes, *extra]) if extra else nodes
        self.nodes = self.nodes0.copy()
        deg = np.r_[deg, np.full(n_total - len(deg), 2)]
        self.degree = deg
        self.junctions = np.flatnonzero(deg >= 3)
        self.junction_gain = rng.uniform(0.6, 1.5)
        self.smooth, self.segments, chain_of_point = self._smoother(sequences, n_total)
        n_chains = len(sequences)
        median_width = rng.uniform(0.055, 0.09)
        self.width_um = np.clip(median_width * np.exp(rng.normal(0, 0.25, n_chains)), 0.045, 0.14)
        self.brightness = rng.uniform(0.75, 1.25, n_chains)
        width_bin = np.searchsorted(ER_WIDTH_BINS_UM, self.width_um, side="right") - 1
        self.segment_chain = chain_of_point[self.segments]
        self.segment_bin = width_bin[self.segment_chain]
        self.n_tubules = n_chains
        self.diffusion = rng.uniform(0.0005, 0.003) * np.where(deg <= 1, 3.0, 1.0)
        self.hole_diffusion = rng.uniform(0.0005, 0.002)

    @staticmethod
    def _chains(graph: np.ndarray, deg: np.ndarray) -> list[list[int]]:
        """Node sequences between nodes of degree != 2 (closed loops of degree-2 nodes start anywhere)."""
        adj: list[list[tuple[int, int]]] = [[] for _ in range(len(deg))]
        for e, (u, v) in enumerate(graph.tolist()):
            adj[u].append((v, e))
            adj[v].append((u, e))
        seen = np.zeros(len(graph), bool)
        chains = []
        starts = [u for u in range(len(deg)) if deg[u] != 2] + list(range(len(deg)))
        for u0 in starts:
            for v, e in adj[u0]:
                if seen[e]:
                    continue
                seen[e] = True
                chain, prev, cur = [u0, v], u0, v
                while deg[cur] == 2 and cur != u0:
                    (w1, e1), (w2, e2) = adj[cur]
                    nxt, en = (w2, e2) if e1 == e else (w1, e1)
                    if seen[en]:
                        break
                    seen[en] = True
                    prev, cur, e = cur, nxt, en
                    chain.append(cur)
                del prev
                chains.append(chain)
        return chains

    @staticmethod
    def _smoother(
        chains: Sequence[Sequence[int] | np.ndarray], n_nodes: int
    ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """Sparse operator node positions -> smoothed chain points, the segment starts, each point's chain."""
        cache: dict[int, np.ndarray] = {}

        def chaikin(m: int) -> np.ndarray:
            if m not in cache:
                w = np.eye(m)
                for _ in range(2):
                    q = 0.75 * w[:-1] + 0.25 * w[1:]
                    r = 0.25 * w[:-1] + 0.75 * w[1:]
                    cut = np.empty((2 * (len(w) - 1), w.shape[1]))
                    cut[0::2], cut[1::2] = q, r
                    w = np.concatenate([w[:1], cut, w[-1:]])
                cache[m] = w
            return cache[m]

        rows, cols, vals, owner, seg = [], [], [], [], []
        row = 0
        for k, chain in enumerate(chains):
            w = chaikin(len(chain))
            r, c = np.nonzero(w)
            rows.append(r + row)
            cols.append(np.asarray(chain)[c])
            vals.append(w[r, c])
            owner.append(np.full(len(w), k))
            seg.append(np.arange(row, row + len(w) - 1))
            row += len(w)
        if not chains:
            return sparse.csr_matrix((0, n_nodes)), np.zeros(0, np.int64), np.zeros(0, np.int64)
        op = sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row, n_nodes)
        )
        return op, np.concatenate(seg), np.concatenate(owner)

    @staticmethod
    def _triangle_free(pts: np.ndarray) -> np.ndarray:
        """Delaunay edges minus the longest edge of every triangle (a relative-neighbourhood-like graph)."""
        if len(pts) < 4:
            return np.zeros((0, 2), np.int64)
        tri = Delaunay(pts).simplices
        n = len(pts)
        pairs = [(0, 1), (1, 2), (2, 0)]
        keys = np.stack([np.minimum(tri[:, i], tri[:, j]) * n + np.maximum(tri[:, i], tri[:, j]) for i, j in pairs], 1)
        length = np.stack([np.hypot(*(pts[tri[:, i]] - pts[tri[:, j]]).T) for i, j in pairs], 1)
        longest = keys[np.arange(len(tri)), np.argmax(length, axis=1)]
        good = np.setdiff1d(np.unique(keys), longest)
        return np.column_stack([good // n, good % n]).astype(np.int64)

    def advance(self, rng: np.random.Generator, dt_s: float) -> None:
        relax = np.exp(-dt_s / 30.0)
        step = np.sqrt(self.diffusion * dt_s * 2.0)[:, None]
        self.nodes = self.nodes0 + (self.nodes - self.nodes0) * relax + step * rng.normal(size=self.nodes.shape)
        for sh in self.sheets:
            jiggle = np.sqrt(2 * self.hole_diffusion * dt_s) * rng.normal(size=sh.holes.shape)
            sh.holes = sh.holes0 + (sh.holes - sh.holes0) * relax + jiggle

    def render(self, px: float, shape: tuple[int, int], offset: np.ndarray, cell: _Cell) -> np.ndarray:
        field = (shape[1] * px, shape[0] * px)
        bins = [np.zeros(shape, np.float32) for _ in ER_BIN_WIDTH_UM]
        if self.segments.size:
            pts = self.smooth @ self.nodes + offset
            rho = (ER_DENSITY_PER_WIDTH * self.width_um * self.brightness)[self.segment_chain]
            for k in range(len(bins)):
                sel = self.segments[self.segment_bin == k]
                if sel.size:
                    _splat_segments(
                        bins[k],
                        pts[sel],
                        pts[sel + 1],
                        rho[self.segment_bin == k],
                        rho[self.segment_bin == k],
                        px,
                        field,
                    )
        if self.junctions.size:
            j = self.nodes[self.junctions] + offset
            amount = np.full(len(j), self.junction_gain * 0.12 * ER_DENSITY_PER_WIDTH * 0.075)
            _splat(bins[-1], j[:, 0], j[:, 1], amount, px)
        rim_rho = 0.8 * ER_DENSITY_PER_WIDTH * 0.07
        for sh in self.sheets:
            sh.paint(bins[1], px, offset, cell)
            rim = sh.rim() + offset
            inside = cell.inside(rim[:-1, 0] - offset[0], rim[:-1, 1] - offset[1])
            r = np.full(int(inside.sum()), rim_rho)
            _splat_segments(bins[1], rim[:-1][inside], rim[1:][inside], r, r, px, field)
        out = np.zeros(shape, np.float32)
        for buf, width in zip(bins, ER_BIN_WIDTH_UM, strict=True):
            out += _blur(buf, width / 4, px)
        return out


class _Lysosomes:
    """Filament cargo (runs and pauses along microtubules) plus a diffusing Neyman-Scott cluster process."""

    def __init__(
        self,
        rng: np.random.Generator,
        cell: _Cell,
        mts: _Microtubules,
        width_um: float,
        height_um: float,
    ) -> None:
        self.per_field = float(rng.uniform(15, 60))
        n = max(1, round(self.per_field * width_um * height_um / REFERENCE_FIELD_UM2))
        self.on_fraction = rng.uniform(0.35, 0.65)
        # filament cargo: a random point of the filaments' in-field, in-cell path
        xy = mts.positions()
        ok = (xy[:, 0] > 0) & (xy[:, 0] < width_um) & (xy[:, 1] > 0) & (xy[:, 1] < height_um)
        ok &= mts.s <= mts.length[mts.ident] if mts.n else ok
        candidates = np.flatnonzero(ok)
        n_on = int(rng.binomial(n, self.on_fraction)) if candidates.size else 0
        pick = rng.choice(candidates, n_on) if n_on else np.zeros(0, np.int64)
        self.mt = mts.ident[pick]
        self.s = mts.s[pick].astype(float)
        self.speed = rng.uniform(0.5, 2.0, n_on)
        self.direction = rng.choice([-1.0, 1.0], n_on)
        self.moving = rng.uniform(size=n_on) < 0.5
        self.run_s = rng.uniform(1.0, 4.0)
        self.pause_s = rng.uniform(1.0, 6.0)
        # free ones: Neyman-Scott clusters (plus a few loners) inside the cell and the field
        n_free = n - n_on
        per_cluster = rng.uniform(1.5, 6.0)
        spread = rng.uniform(0.3, 1.5)
        free = np.zeros((0, 2))
        for _ in range(50):
            if len(free) >= n_free:
                break
            parents = rng.uniform([0, 0], [width_um, height_um], (max(1, int(np.ceil(n_free / per_cluster))), 2))
            kids = parents[rng.integers(0, len(parents), n_free)] + rng.normal(0, spread, (n_free, 2))
            loners = rng.uniform(size=n_free) < 0.2
            kids[loners] = rng.uniform([0, 0], [width_um, height_um], (int(loners.sum()), 2))
            ok = (kids[:, 0] > 0) & (kids[:, 0] < width_um) & (kids[:, 1] > 0) & (kids[:, 1] < height_um)
            ok &= cell.inside(kids[:, 0], kids[:, 1], 0.2)
            free = np.concatenate([free, kids[ok]])
        self.free = free[:n_free]
        self.free0 = self.free.copy()
        self.diffusion = rng.uniform(0.0005, 0.005)
        total = n_on + len(self.free)
        # sizes, shapes, brightness (first the cargo, then the free ones)
        median_d = _loguniform(rng, 0.22, 0.45)
        self.diameter_um = np.clip(median_d * np.exp(rng.normal(0, 0.35, total)), 0.15, 0.8)
        p_ring = rng.uniform(0.5, 1.0)
        self.ring = (self.diameter_um > 0.3) & (rng.uniform(size=total) < p_ring)
        self.brightness = 5.0 ** (rng.uniform(size=total) - 0.5)  # spread 5x, geometric mean 1
        self.membrane_um = rng.uniform(0.02, 0.035)
        self.lumen = rng.uniform(0.05, 0.2)

    @property
    def count(self) -> int:
        return len(self.mt) + len(self.free)

    def centres(self, mts: _Microtubules, xy: np.ndarray | None = None) -> np.ndarray:
        on = mts.point_at(self.mt, self.s, xy) if len(self.mt) else np.zeros((0, 2))
        return np.concatenate([on, self.free])

    def advance(self, rng: np.random.Generator, mts: _Microtubules, dt_s: float) -> None:
        sub = max(1, int(np.ceil(dt_s / 0.25)))
        h = dt_s / sub
        n_on = len(self.mt)
        for _ in range(sub):
            u = rng.uniform(size=n_on)
            stop = self.moving & (u < 1 - np.exp(-h / self.run_s))
            go = ~self.moving & (u < 1 - np.exp(-h / self.pause_s))
            reverse = go & (rng.uniform(size=n_on) < 0.3)
            self.moving = (self.moving & ~stop) | go
            self.direction = np.where(reverse, -self.direction, self.direction)
            s = self.s + self.moving * self.direction * self.speed * h
            if n_on:
                end = mts.length[self.mt]
                bounce = (s < 0) | (s > end)
                self.direction = np.where(bounce, -self.direction, self.direction)
                s = np.clip(s, 0.0, end)
            self.s = s
            self.free = self.free + np.sqrt(2 * self.diffusion * h) * rng.normal(size=self.free.shape)
        if n_on:
            self.s = np.minimum(self.s, mts.length[self.mt])

    def render(self, out: np.ndarray, px: float, centres: np.ndarray) -> None:
        h, w = out.shape
        var_px = px**2 / 12
        for (cx, cy), d, b, ring in zip(centres, self.diameter_um, self.brightness, self.ring, strict=True):
            if ring:
                radius = d / 2 - self.membrane_um
                wm = np.sqrt(self.membrane_um**2 + var_px)
                extent = radius + 4 * wm
            else:
                sigma = d / 4
                se = np.sqrt(sigma**2 + var_px)
                extent = 4 * se
            j0, j1 = max(0, int((cx - extent) / px)), min(w, int((cx + extent) / px) + 1)
            i0, i1 = max(0, int((cy - extent) / px)), min(h, int((cy + extent) / px) + 1)
            if j0 >= j1 or i0 >= i1:
                continue
            xs = (np.arange(j0, j1) + 0.5) * px - cx
            ys = (np.arange(i0, i1) + 0.5) * px - cy
            r = np.hypot(ys[:, None], xs[None, :])
            if ring:
                shell = b * self.membrane_um / wm * np.exp(-0.5 * ((r - radius) / wm) ** 2)
                lumen = self.lumen * b / (1 + np.exp((r - radius) / wm))
                patch = shell + lumen
            else:
                patch = b * sigma**2 / se**2 * np.exp(-0.5 * (r / se) ** 2)
            out[i0:i1, j0:j1] += patch.astype(out.dtype)


class IndependentSpecimen:
    """A cell of the independent evaluation world (see the module docstring for what it draws).

    Parameters
    ----------
    structures
        Structure names, one output channel each in this order (``"Microtubules"``, ``"ER"``, ``"Lysosomes"``
        and their aliases).
    shape
        Truth grid ``(H, W)`` in pixels.
    pixel_size_um
        Truth pixel size; only the rasterisation depends on it.
    seed
        Random generator (or anything ``numpy.random.default_rng`` takes); the whole cell follows from it.
    """

    def __init__(
        self,
        structures: Sequence[str],
        shape: tuple[int, int],
        pixel_size_um: float,
        seed: np.random.Generator,
    ) -> None:
        self.kinds = world_kinds(structures, "independent", KINDS)
        if pixel_size_um <= 0 or len(shape) != 2 or min(shape) < 1:
            raise SynthError(f"bad truth grid {shape} at {pixel_size_um} um per pixel")
        self.shape = (int(shape[0]), int(shape[1]))
        self.pixel_size_um = float(pixel_size_um)
        self.width_um = self.shape[1] * self.pixel_size_um
        self.height_um = self.shape[0] * self.pixel_size_um
        self.time_s = 0.0
        rng = np.random.default_rng(seed)
        streams = [np.random.default_rng(s) for s in rng.integers(0, 2**63, size=7)]
        cell_rng, mt_rng, er_rng, ly_rng, self._mt_motion, self._er_motion, self._ly_motion = streams
        w, h = self.width_um, self.height_um
        self.cell = _Cell(cell_rng, w, h)
        self.brightness = {k: float(_loguniform(cell_rng, 0.5, 2.0)) for k in KINDS}
        self.background_level = float(cell_rng.uniform(0.01, 0.05))
        self._haze = _SmoothField(cell_rng, cell_rng.uniform(3.0, 10.0), n_waves=6)
        drift = cell_rng.uniform(0.002, 0.015) if cell_rng.uniform() < 0.5 else 0.0
        angle = cell_rng.uniform(0, 2 * np.pi)
        self.drift_um_per_s = drift * np.array([np.cos(angle), np.sin(angle)])
        # microtubules always exist: lysosomes ride on them even when they are not a channel
        self.microtubules = _Microtubules(mt_rng, self.cell, w, h)
        self.er = _ER(er_rng, self.cell, w, h) if "er" in self.kinds else None
        self.lysosomes = _Lysosomes(ly_rng, self.cell, self.microtubules, w, h) if "lysosomes" in self.kinds else None
        self._background_cache: tuple[tuple[float, float], np.ndarray] | None = None

    @property
    def offset_um(self) -> np.ndarray:
        """Whole-field drift so far (um)."""
        return self.drift_um_per_s * self.time_s

    def lysosome_centres_um(self) -> np.ndarray:
        """Lysosome centres now (um, before the whole-field drift); filament cargo first."""
        if self.lysosomes is None:
            return np.zeros((0, 2))
        return self.lysosomes.centres(self.microtubules)

    def render(self) -> np.ndarray:
        """Per-structure density now, float32 ``(C, H, W)``, non-negative, channels in structure order."""
        px, shape, off = self.pixel_size_um, self.shape, self.offset_um
        field = (self.width_um, self.height_um)
        layers: dict[str, np.ndarray] = {}
        for kind in dict.fromkeys(self.kinds):
            if kind == "microtubules":
                buf = np.zeros(shape, np.float32)
                self.microtubules.render(buf, px, field, off)
                img = _blur(buf, MT_SIGMA_UM, px)
            elif kind == "er":
                assert self.er is not None  # "er" in self.kinds
                img = self.er.render(px, shape, off, self.cell)
            else:
                img = np.zeros(shape, np.float32)
                assert self.lysosomes is not None  # "lysosomes" in self.kinds
                self.lysosomes.render(img, px, self.lysosome_centres_um() + off)
            layers[kind] = np.maximum(img, 0.0) * np.float32(self.brightness[kind])
        return np.stack([layers[k] for k in self.kinds]).astype(np.float32, copy=False)

    def advance(self, dt_s: float) -> None:
        """Let the cell move for ``dt_s`` seconds."""
        if dt_s <= 0:
            return
        self.microtubules.advance(self._mt_motion, dt_s)
        if self.er is not None:
            self.er.advance(self._er_motion, dt_s)
        if self.lysosomes is not None:
            self.lysosomes.advance(self._ly_motion, self.microtubules, dt_s)
        self.time_s += float(dt_s)

    def background(self) -> np.ndarray:
        """Unlabelled haze ``(H, W)`` float32: 1-5 % of the peak inside the cell, ~20 % of that outside."""
        off = self.offset_um
        key = (round(float(off[0]), 4), round(float(off[1]), 4))
        if self._background_cache is not None and self._background_cache[0] == key:
            return self._background_cache[1].copy()
        step = 0.2  # um: the haze is smooth, evaluate it coarsely and interpolate
        gx = np.arange(-step, self.width_um + 2 * step, step)
        gy = np.arange(-step, self.height_um + 2 * step, step)
        x, y = np.meshgrid(gx - off[0], gy - off[1])
        haze = 1.0 + 0.3 * np.tanh(self._haze(x, y))
        if self.cell.has_edge:
            inside = 1.0 / (1.0 + np.exp(-self.cell.edge_distance(x, y) / 0.3))
            haze = haze * (0.2 + 0.8 * inside)
        px = self.pixel_size_um
        ay = _interp_matrix((np.arange(self.shape[0]) + 0.5) * px, gy)
        ax = _interp_matrix((np.arange(self.shape[1]) + 0.5) * px, gx)
        img = (ay @ (self.background_level * haze) @ ax.T).astype(np.float32)
        self._background_cache = (key, img)
        return img.copy()
