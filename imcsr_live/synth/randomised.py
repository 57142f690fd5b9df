"""The domain-randomised training world: every cell draws its own morphology family per structure.

A model trained on one way of drawing cells learns that drawing. This world draws, per cell (seed), a family and
wide parameter ranges for each structure, plus cell-level effects, so that a network has to separate by what
makes a structure a structure (lines, meshes, puncta) and not by one density, width or brightness ratio. It is
the project's generator made wide (the families subclass the original generators); a third, separately written
world (:mod:`imcsr_live.synth.heldout`) is kept out of training to test that.

Families and ranges (per cell, uniform unless said; lengths in um, a 16 um field is 512 SR pixels):

================  =====================================================================================
Microtubules      ``sparse``: isotropic, 0.15-1.5 um of filament per um^2.
                  ``aster``: headings radiate loosely (spread 0.2-0.7 rad) from the cell centre, 2-25 um/um^2
                  at the centre, thinning away from it as exp(-distance / 10-40 um).
                  ``parallel``: aligned (spread 0.1-0.4 rad), 0.5-15 um/um^2, low curvature.
                  Densities are log-uniform: from a few filaments to the 30-350 per 16 um field of a dense
                  COS-7 periphery (in-field length density 0.2-20 um/um^2, median ~2).
                  All: bending from gently curved to wavy (the curvature changes over 0.3-3 um of the filament;
                  its std log-uniform from 0.05 /um to 0.4 rad per that length, at most 0.8 /um, parallel
                  0.02-0.06 /um; curvature capped at 3x the std, >= 0.3 /um),
                  bundles (10-40 % of filaments, 2-3x bright; 40 % of cells without), brightness
                  along the filament log-normal (sigma 0.1-0.6, correlation 1-5 um),
                  20-60 % of filaments fading out of the TIRF field over 1-4 um, per-filament spread 0.1-0.4.
ER                ``fine``: mesh 0.3-0.9 um. ``open``: mesh 0.9-2 um, 15-45 % of edges missing.
                  ``sheets``: mesh 0.6-1.6 um, sheets 0.02-0.06 per um^2 of 0.5-4 um. ``perinuclear``: one
                  4-12 um sheet entering the field from outside plus a dense mesh. All: tubule width 40-140 nm,
                  5-40 % of tubules 1.6-2.5x wider, tubules from taut to bowed (midpoint offset 0-25 % of
                  the chord, std), tension 0-1 (the bends that missing edges leave straighten towards the
                  line between their junctions: at 1 only three-way junctions stay corners, and a pruned
                  mesh has long smooth tubules), junctions up to 1.5x a tubule spot brighter, 0-20 % of edges
                  dangling (static partial tubules), pruning uneven across the field, fenestrated sheets
                  (0-10 holes per um^2 of 0.05-0.15 um radius).
Lysosomes         ``puncta``: 0.15-0.4 um, few rings. ``rings``: 0.3-0.9 um, 50-90 % rings. ``clustered``: 30-70 %
                  of the free ones in 1-4 clusters of 0.5-2 um. All: 0.04-0.3 per um^2 (10-75 per 16 um field),
                  20-70 % on microtubules, brightness log-normal sigma 0.35-0.6 (about 3-10x between the 5th and
                  95th percentile).
The cell          per-structure brightness 0.5-2x (ratios 0.25-4x); in 40 % of cells a visible edge (a wavy circle
                  of radius 9-30 um around the cell centre) with nothing outside; out-of-focus haze of each
                  structure (0-10 % of it, blurred 0.5-2 um) in its own channel; unlabelled background
                  0.5-5 % of a bright pixel (brighter inside the cell); bleaching of 5-30 % per 200 s per structure.
================  =====================================================================================

Deterministic: the same seed gives the same cell and the same time-lapse. The first split of the seed draws the
style, the second drives the structures (as the default world's seed does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from imcsr_live.errors import SynthError
from imcsr_live.synth.er import EndoplasmicReticulum, ERParams
from imcsr_live.synth.lysosomes import LysosomeParams, Lysosomes
from imcsr_live.synth.microtubules import MicrotubuleParams, Microtubules
from imcsr_live.synth.render import Field, Grid, render_blobs, render_points, render_segments
from imcsr_live.synth.specimen import Specimen, SpecimenParams, seed_sequence

MICROTUBULE_FAMILIES = ("sparse", "aster", "parallel")
ER_FAMILIES = ("fine", "open", "sheets", "perinuclear")
LYSOSOME_FAMILIES = ("puncta", "rings", "clustered")
EDGE_PROBABILITY = 0.4
REFERENCE_SPAN_S = 200.0  # bleaching is quoted per 100 timepoints at the 2-s interval


# --------------------------------------------------------------------------------------------------------------
# Microtubules


@dataclass(frozen=True)
class StyledMicrotubuleParams(MicrotubuleParams):
    """Microtubules plus density gradient, bundles and brightness along the filament."""

    density_decay_um: float = 0.0  # aster: keep a filament with exp(-distance of its middle from the centre / this)
    bundle_fraction: float = 0.0
    bundle_gain_range: tuple[float, float] = (2.0, 3.0)
    along_sigma: float = 0.0  # log-normal brightness variation along a filament
    along_correlation_um: float = 3.0
    fade_fraction: float = 0.0  # filaments that leave the TIRF field somewhere along their length
    fade_length_range_um: tuple[float, float] = (1.0, 4.0)


class StyledMicrotubules(Microtubules):
    """:class:`Microtubules` with a radial density gradient, bundles and depth-dependent brightness."""

    params: StyledMicrotubuleParams

    def __init__(self, field: Field, params: StyledMicrotubuleParams, rng: np.random.Generator) -> None:
        super().__init__(field, params, rng)
        p = params
        style = np.random.default_rng(rng.integers(2**63))
        if p.density_decay_um > 0 and self.count:
            mids = np.array([line[len(line) // 2] for line in self.centerlines()])
            dist = np.hypot(*(mids - np.asarray(p.arrangement_center_um)).T)
            self._select(style.random(self.count) < np.exp(-dist / p.density_decay_um))
        n, n_s = self.count, len(self._s)
        bundle = style.random(n) < p.bundle_fraction
        self._brightness = self._brightness * np.where(bundle, style.uniform(*p.bundle_gain_range, n), 1.0)
        log_profile = np.zeros((n, n_s))
        if p.along_sigma > 0 and n:
            sigma = p.along_correlation_um / self._ds
            white = ndimage.gaussian_filter1d(style.standard_normal((n, n_s)), sigma, axis=1, mode="reflect")
            log_profile = p.along_sigma * white / max(float(white.std()), 1e-12) - 0.5 * p.along_sigma**2
        fading = style.random(n) < p.fade_fraction
        start = style.uniform(0.0, 1.0, n) * self._length  # where the filament starts to leave the field
        length = style.uniform(*p.fade_length_range_um, n)
        z = (self._s[None, :] - start[:, None]) / length[:, None]
        fade = np.where(fading[:, None], -np.logaddexp(0.0, 4.0 * z), 0.0)  # logistic dimming to ~0
        self._along = np.exp(log_profile + fade)

    def _segment_brightness(self, index: int, segments: int) -> np.ndarray:
        return self._brightness[index] * self._along[index, :segments]

    def _select(self, keep: np.ndarray) -> None:
        super()._select(keep)
        if hasattr(self, "_along"):
            self._along = self._along[keep]


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A density drawn evenly on a log scale: sparse and very dense cells are both common."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _draw_microtubules(rng: np.random.Generator, center: np.ndarray) -> tuple[str, StyledMicrotubuleParams]:
    family = str(rng.choice(MICROTUBULE_FAMILIES))
    common: dict[str, Any] = {
        "bundle_fraction": float(rng.uniform(0.1, 0.4)) if rng.random() < 0.6 else 0.0,
        "along_sigma": float(rng.uniform(0.1, 0.6)),
        "along_correlation_um": float(rng.uniform(1.0, 5.0)),
        "fade_fraction": float(rng.uniform(0.2, 0.6)),
        "brightness_sigma": float(rng.uniform(0.1, 0.4)),
        "width_um": float(rng.uniform(0.02, 0.035)),
    }
    # Bending from gently curved to wavy (filaments buckled in a crowded periphery), so that smoothness alone does
    # not say "microtubule". The curvature changes over 0.3-3 um of the filament; its std is log-uniform up to
    # 0.4 rad of heading change per correlation length, at most 0.8 /um (the waviest turn back within a few um;
    # more and filaments curl into loops).
    correlation = float(rng.uniform(0.3, 3.0))
    wavy = _loguniform(rng, 0.05, min(0.8, 0.4 / correlation))  # the sparse and aster families
    common["curvature_correlation_um"] = correlation
    bending: dict[str, Any] = {"curvature_std_per_um": wavy, "max_curvature_per_um": max(0.3, 3.0 * wavy)}
    if family == "sparse":
        p = StyledMicrotubuleParams(length_density_um_per_um2=_loguniform(rng, 0.15, 1.5), **common, **bending)
    elif family == "aster":
        p = StyledMicrotubuleParams(
            length_density_um_per_um2=_loguniform(rng, 2.0, 25.0),
            arrangement="aster",
            arrangement_center_um=(float(center[0]), float(center[1])),
            orientation_spread_rad=float(rng.uniform(0.2, 0.7)),
            density_decay_um=float(rng.uniform(10.0, 40.0)),
            **common,
            **bending,
        )
    else:
        p = StyledMicrotubuleParams(
            length_density_um_per_um2=_loguniform(rng, 0.5, 15.0),
            arrangement="parallel",
            arrangement_angle_rad=float(rng.uniform(0.0, math.pi)),
            orientation_spread_rad=float(rng.uniform(0.1, 0.4)),
            curvature_std_per_um=float(rng.uniform(0.02, 0.06)),
            **common,
        )
    return family, p


# --------------------------------------------------------------------------------------------------------------
# ER


@dataclass(frozen=True)
class StyledERParams(ERParams):
    """ER plus wide tubules, bright junctions, dangling ends, uneven pruning and fenestrated sheets."""

    thick_fraction: float = 0.0
    thick_width_factor: float = 2.0
    junction_gain: float = 0.0  # junction spot mass, in units of 0.15 um of tubule
    dangling_fraction: float = 0.0
    uneven_pruning: float = 0.0  # extra missing fraction where a smooth random field is high
    hole_density_per_um2: float = 0.0
    hole_radius_range_um: tuple[float, float] = (0.05, 0.15)
    perinuclear_radius_um: float = 0.0  # 0: none; else one big sheet whose centre lies outside the field
    perinuclear_center_um: tuple[float, float] = (0.0, 0.0)
    tension: float = 0.0  # 0-1: how far a two-tubule bend relaxes towards the line between its neighbours


TENSION_ITERATIONS = 40  # Jacobi sweeps: enough to straighten chains of ~6 bends between two junctions


def bend_vertices(edges: np.ndarray, fractions: np.ndarray, n_vertices: int) -> np.ndarray:
    """``(V,)`` bool: vertices where exactly two tubules meet, both complete (a bend, not a junction or an end)."""
    complete = np.bincount(edges[fractions >= 1.0].ravel(), minlength=n_vertices)
    visible = np.bincount(edges[fractions > 0].ravel(), minlength=n_vertices)
    return (complete == 2) & (visible == 2)


def _straightenable(vertices: np.ndarray, tubules: np.ndarray, bend: np.ndarray) -> np.ndarray:
    """``(V,)`` bool: bends on a chain that runs between two different junctions or ends at least half its length
    apart.

    A closed ring of bends, a loop back into one junction or a chain folded back on itself would shrink to a point
    or a doubled line under tension, so those stay as drawn.
    """
    n = len(bend)
    inner = tubules[bend[tubules].all(axis=1)]
    graph = sparse.coo_matrix((np.ones(len(inner)), (inner[:, 0], inner[:, 1])), shape=(n, n))
    _, label = csgraph.connected_components(graph, directed=False)
    length = np.hypot(*(vertices[tubules[:, 0]] - vertices[tubules[:, 1]]).T)
    on_chain = bend[tubules].any(axis=1)
    path = np.bincount(label[np.where(bend[tubules[:, 0]], tubules[:, 0], tubules[:, 1])][on_chain],
                       weights=length[on_chain], minlength=n)  # fmt: skip
    outer = tubules[bend[tubules].sum(axis=1) == 1]  # a tubule from a bend to a junction or an end
    chain = label[np.where(bend[outer[:, 0]], outer[:, 0], outer[:, 1])]
    anchor = np.where(bend[outer[:, 0]], outer[:, 1], outer[:, 0])
    # A path of bends has exactly two outer tubules; sort them by chain to pair its two anchors.
    order = np.argsort(chain, kind="stable")
    chain, anchor = chain[order].reshape(-1, 2), anchor[order].reshape(-1, 2)
    span = np.hypot(*(vertices[anchor[:, 0]] - vertices[anchor[:, 1]]).T)
    ok = np.zeros(n, dtype=bool)
    ok[chain[:, 0]] = (anchor[:, 0] != anchor[:, 1]) & (span >= 0.5 * path[chain[:, 0]])
    return ok[label]


def straighten_bends(vertices: np.ndarray, tubules: np.ndarray, bend: np.ndarray, tension: float) -> np.ndarray:
    """Vertex positions after pulling every bend towards the midpoint of its two neighbours, sweep after sweep.

    A Voronoi vertex that lost one of its three edges is a 120-degree kink, which a membrane tube under tension
    does not keep: it straightens until only the three-way junctions remain as corners, so a pruned mesh has long,
    smooth tubules between junctions (as in cells). ``tubules`` are the complete edges ``(E', 2)``; ``bend`` marks
    the vertices that move (:func:`bend_vertices`: exactly two of ``tubules`` meet there, their other ends are the
    neighbours). ``tension`` in [0, 1] is the fraction of the way
    each sweep moves a bend; 0 returns the positions unchanged.
    """
    out = vertices.copy()
    bend = bend & _straightenable(vertices, tubules, bend)
    if tension <= 0 or not bend.any():
        return out
    both_ways = np.concatenate([tubules, tubules[:, ::-1]])  # (vertex, neighbour)
    touching = both_ways[bend[both_ways[:, 0]]]
    touching = touching[np.argsort(touching[:, 0], kind="stable")]
    neighbours = touching[:, 1].reshape(-1, 2)  # two rows per bend, in vertex order
    moving = touching[::2, 0]
    for _ in range(TENSION_ITERATIONS):
        target = 0.5 * (out[neighbours[:, 0]] + out[neighbours[:, 1]])
        out[moving] += tension * (target - out[moving])
    return out


class StyledER(EndoplasmicReticulum):
    """:class:`EndoplasmicReticulum` with width classes, junction spots, dangling ends and fenestrated sheets."""

    params: StyledERParams

    def __init__(self, field: Field, params: StyledERParams, rng: np.random.Generator) -> None:
        super().__init__(field, params, rng)
        p = params
        style = np.random.default_rng(rng.integers(2**63))
        n_e = len(self._edges)
        self._thick = style.random(n_e) < p.thick_fraction
        if p.uneven_pruning > 0 and n_e:
            mid = 0.5 * (self._vertices[self._edges[:, 0]] + self._vertices[self._edges[:, 1]])
            k = style.normal(0.0, 2 * math.pi / 8.0, (4, 2))  # a few waves of ~8 um
            phase = style.uniform(0, 2 * math.pi, 4)
            smooth = np.cos(mid @ k.T + phase).sum(axis=1) / 2.0  # ~unit spread
            self._frac = np.where(style.random(n_e) < p.uneven_pruning * (smooth > 0.3), 0.0, self._frac)
        dangling = (style.random(n_e) < p.dangling_fraction) & (self._frac >= 1.0)
        self._frac = np.where(dangling, style.uniform(0.25, 0.75, n_e), self._frac)
        self._from_a = np.where(dangling, style.random(n_e) < 0.5, self._from_a)
        if p.tension > 0:
            bend = bend_vertices(self._edges, self._frac, len(self._vertices))
            tubules = self._edges[self._frac >= 1.0]
            self._vertices = straighten_bends(self._vertices, tubules, bend, p.tension)
            # A taut tubule does not bow either: the bows of the tubules at a bend shrink with the tension.
            self._bow = np.where(bend[self._edges].any(axis=1), (1.0 - p.tension) * self._bow, self._bow)
        # Fenestrations: holes at fixed offsets inside each sheet (they move with it).
        radii = (
            np.append(self._sheet_radius, p.perinuclear_radius_um)
            if p.perinuclear_radius_um > 0
            else (self._sheet_radius)
        )
        holes = []
        for sheet, r in enumerate(radii):
            count = int(style.poisson(p.hole_density_per_um2 * math.pi * r * r))
            rho = 0.85 * r * np.sqrt(style.random(count))
            phi = style.uniform(0.0, 2 * math.pi, count)
            holes.append(np.column_stack([np.full(count, sheet), rho * np.cos(phi), rho * np.sin(phi)]))
        self._holes = np.concatenate(holes) if holes else np.zeros((0, 3))
        self._hole_radius = style.uniform(*p.hole_radius_range_um, len(self._holes))
        self._perinuclear_harmonics = 0.06 * style.standard_normal((1, 4, 2))

    def _sheet_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Centres, radii and outline harmonics of every sheet, the perinuclear one last."""
        p = self.params
        centers, radii = self.sheet_centers_um(), self._sheet_radius
        harmonics = self._sheet_harmonics
        if p.perinuclear_radius_um > 0:
            centers = np.vstack([centers, np.asarray(p.perinuclear_center_um)[None]])
            radii = np.append(radii, p.perinuclear_radius_um)
            k = harmonics.shape[1] if len(harmonics) else self._perinuclear_harmonics.shape[1]
            peri = np.zeros((1, k, 2))
            peri[:, : min(k, 4)] = self._perinuclear_harmonics[:, : min(k, 4)]
            harmonics = np.concatenate([harmonics.reshape(-1, k, 2), peri])
        return centers, radii, harmonics

    def render(self, grid: Grid, brightness: float = 1.0) -> np.ndarray:
        p = self.params
        vis = self._frac > 0
        curves = self.tubule_curves()
        img = grid.zeros()
        for thick in (False, True):
            sel = self._thick[vis] == thick
            if not sel.any():
                continue
            c = curves[sel]
            lam = np.repeat(self._tubule_brightness[vis][sel], c.shape[1] - 1) * p.intensity_per_um * brightness
            width = p.tubule_width_um * (p.thick_width_factor if thick else 1.0)
            # A wider tubule holds more membrane per um: its linear density grows with the width.
            gain = p.thick_width_factor if thick else 1.0
            img += render_segments(grid, c[:, :-1].reshape(-1, 2), c[:, 1:].reshape(-1, 2), lam * gain, width)
        if p.junction_gain > 0:
            junctions = self.junction_degrees() >= 3
            mass = p.junction_gain * 0.15 * p.intensity_per_um * brightness
            img += render_points(grid, self.junction_positions_um()[junctions], np.asarray(mass), 2 * p.tubule_width_um)
        centers, radii, harmonics = self._sheet_layout()
        if len(centers):
            peak = np.append(self._sheet_brightness, 1.0)[: len(centers)] * p.sheet_intensity * brightness
            soft = 0.5 * p.tubule_width_um
            # One call per size class: a blob's evaluation window is the largest blob's in its call.
            n_small = len(self._sheet_radius)
            sheets = grid.zeros()
            for part in (slice(0, n_small), slice(n_small, len(centers))):
                if part.stop > part.start:
                    h = None if harmonics is None else harmonics[part]
                    sheets += render_blobs(grid, centers[part], radii[part], peak[part], softness_um=soft, harmonics=h)
            if len(self._holes):
                owner = self._holes[:, 0].astype(np.int64)
                holes = render_blobs(
                    grid, centers[owner] + self._holes[:, 1:], self._hole_radius, peak[owner], softness_um=0.02
                )
                sheets = np.maximum(sheets - holes, 0.0)
            img += sheets
        return img


def _draw_er(rng: np.random.Generator, field: Field) -> tuple[str, StyledERParams]:
    family = str(rng.choice(ER_FAMILIES))
    common: dict[str, Any] = {
        "tubule_width_um": float(rng.uniform(0.04, 0.14)),
        "thick_fraction": float(rng.uniform(0.05, 0.4)),
        "thick_width_factor": float(rng.uniform(1.6, 2.5)),
        "junction_gain": float(rng.uniform(0.0, 1.5)),
        "dangling_fraction": float(rng.uniform(0.0, 0.2)),
        "uneven_pruning": float(rng.uniform(0.0, 0.6)),
        "hole_density_per_um2": float(rng.uniform(0.0, 10.0)),
        "brightness_sigma": float(rng.uniform(0.1, 0.35)),
        # tubules from taut (straight between junctions) to bowed, so that straightness alone does not say "ER"
        "bow_std": float(rng.uniform(0.0, 0.25)),
        # bends left by missing edges straighten from not at all to fully (taut tubules between junctions), so a
        # long smooth line does not say "microtubule" either
        "tension": float(rng.uniform(0.0, 1.0)),
    }
    if family == "fine":
        p = StyledERParams(
            polygon_size_um=float(rng.uniform(0.3, 0.9)), missing_edge_fraction=float(rng.uniform(0.05, 0.25)),
            **common,
        )  # fmt: skip
    elif family == "open":
        p = StyledERParams(
            polygon_size_um=float(rng.uniform(0.9, 2.0)), missing_edge_fraction=float(rng.uniform(0.15, 0.45)),
            **common,
        )  # fmt: skip
    elif family == "sheets":
        p = StyledERParams(
            polygon_size_um=float(rng.uniform(0.6, 1.6)),
            sheet_density_per_um2=float(rng.uniform(0.02, 0.06)),
            sheet_diameter_range_um=(0.5, float(rng.uniform(1.5, 4.0))),
            **common,
        )
    else:
        side = int(rng.integers(4))
        along = float(rng.uniform(0.0, 1.0))
        r = float(rng.uniform(4.0, 12.0))
        depth = float(rng.uniform(0.55, 0.9)) * r  # centre outside the field: a part of the sheet enters
        w, h = field.width_um, field.height_um
        center = [(along * w, -depth), (w + depth, along * h), (along * w, h + depth), (-depth, along * h)][side]
        p = StyledERParams(
            polygon_size_um=float(rng.uniform(0.45, 1.0)),
            perinuclear_radius_um=r,
            perinuclear_center_um=center,
            **common,
        )
    return family, p


# --------------------------------------------------------------------------------------------------------------
# Lysosomes


@dataclass(frozen=True)
class StyledLysosomeParams(LysosomeParams):
    """Lysosomes plus clusters of the freely diffusing ones."""

    cluster_fraction: float = 0.0
    clusters: int = 1
    cluster_radius_range_um: tuple[float, float] = (0.5, 2.0)


class StyledLysosomes(Lysosomes):
    """:class:`Lysosomes` with some of the free ones gathered in clusters."""

    params: StyledLysosomeParams

    def __init__(
        self, field: Field, params: StyledLysosomeParams, rng: np.random.Generator, tracks: Microtubules
    ) -> None:
        super().__init__(field, params, rng, tracks)
        p = params
        style = np.random.default_rng(rng.integers(2**63))
        centers = field.uniform_points(style, p.clusters, -1.0)
        radii = style.uniform(*p.cluster_radius_range_um, p.clusters)
        free = np.flatnonzero((self._track < 0) & (style.random(self.count) < p.cluster_fraction))
        which = style.integers(p.clusters, size=len(free))
        self._pos[free] = centers[which] + radii[which, None] * style.standard_normal((len(free), 2)) / 2.0


def _draw_lysosomes(rng: np.random.Generator) -> tuple[str, StyledLysosomeParams]:
    family = str(rng.choice(LYSOSOME_FAMILIES))
    common: dict[str, Any] = {
        "density_per_um2": float(math.exp(rng.uniform(math.log(0.04), math.log(0.3)))),
        "directed_fraction": float(rng.uniform(0.2, 0.7)),
        "brightness_sigma": float(rng.uniform(0.35, 0.6)),
        "min_ring_diameter_um": 0.3,
    }
    if family == "puncta":
        p = StyledLysosomeParams(diameter_range_um=(0.15, float(rng.uniform(0.25, 0.4))), ring_fraction=0.2, **common)
    elif family == "rings":
        p = StyledLysosomeParams(
            diameter_range_um=(0.3, float(rng.uniform(0.6, 0.9))), ring_fraction=float(rng.uniform(0.5, 0.9)),
            **common,
        )  # fmt: skip
    else:
        p = StyledLysosomeParams(
            diameter_range_um=(0.15, float(rng.uniform(0.4, 0.8))),
            ring_fraction=0.5,
            cluster_fraction=float(rng.uniform(0.3, 0.7)),
            clusters=int(rng.integers(1, 5)),
            **common,
        )
    return family, p


# --------------------------------------------------------------------------------------------------------------
# The cell


@dataclass(frozen=True)
class CellStyle:
    """Cell-level effects of one randomised cell."""

    center_um: tuple[float, float]
    edge_radius_um: float  # 0: no visible edge in this field
    edge_harmonics: np.ndarray  # (K, 2) relative outline amplitudes
    haze_fraction: dict[str, float]
    haze_sigma_um: float
    background: float  # unlabelled light, in bright-pixel units (structures' bright pixels ~1)
    bleach_time_s: dict[str, float]


@dataclass(frozen=True)
class RandomisedCell:
    """Everything drawn for one cell: the structures' parameters, families and the cell effects."""

    params: SpecimenParams
    families: dict[str, str]
    style: CellStyle


def draw_cell(rng: np.random.Generator, field: Field) -> RandomisedCell:
    """Draw one cell of the randomised world (families, parameters and cell effects) for a field."""
    center = np.array([field.width_um, field.height_um]) * rng.uniform(-0.3, 1.3, 2)
    mt_family, mt = _draw_microtubules(rng, center)
    er_family, er = _draw_er(rng, field)
    ly_family, ly = _draw_lysosomes(rng)
    kinds = ("microtubules", "er", "lysosomes", "ccps")
    edge = 0.0
    if rng.random() < EDGE_PROBABILITY:
        # The edge crosses the field: its radius is the distance from the centre to a point inside the field.
        target = np.array([field.width_um, field.height_um]) * rng.uniform(0.25, 0.75, 2)
        edge = float(np.clip(np.hypot(*(target - center)), 9.0, 30.0))
    style = CellStyle(
        center_um=(float(center[0]), float(center[1])),
        edge_radius_um=edge,
        edge_harmonics=0.05 * rng.standard_normal((4, 2)),
        haze_fraction={k: float(rng.uniform(0.0, 0.1)) for k in kinds},
        haze_sigma_um=float(rng.uniform(0.5, 2.0)),
        background=float(math.exp(rng.uniform(math.log(0.005), math.log(0.05)))),
        bleach_time_s={k: REFERENCE_SPAN_S / -math.log(1.0 - rng.uniform(0.05, 0.3)) for k in kinds},
    )
    params = SpecimenParams(microtubules=mt, er=er, lysosomes=ly, cell_brightness_range=(0.5, 2.0))
    return RandomisedCell(params, {"microtubules": mt_family, "er": er_family, "lysosomes": ly_family}, style)


def _cell_mask(grid: Grid, style: CellStyle) -> np.ndarray | None:
    """Soft inside-the-cell mask (1 inside, 0 outside, 0.3 um edge), or None without a visible edge."""
    if style.edge_radius_um <= 0:
        return None
    px = grid.pixel_size_um
    y, x = np.mgrid[0 : grid.shape[0], 0 : grid.shape[1]].astype(np.float32)
    dx, dy = (x + 0.5) * px - style.center_um[0], (y + 0.5) * px - style.center_um[1]
    theta = np.arctan2(dy, dx)
    k = np.arange(1, len(style.edge_harmonics) + 1)
    wobble = (style.edge_harmonics[:, 0] * np.cos(theta[..., None] * k)).sum(-1) + (
        style.edge_harmonics[:, 1] * np.sin(theta[..., None] * k)
    ).sum(-1)
    r_edge = style.edge_radius_um * (1.0 + wobble)
    return (0.5 * (1.0 - np.tanh((np.hypot(dx, dy) - r_edge) / 0.3))).astype(np.float32)


def _haze(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """A wide Gaussian blur, computed on a coarse grid (the haze has no fine detail)."""
    f = max(1, int(sigma_px // 4))
    h, w = img.shape
    hc, wc = -(-h // f), -(-w // f)
    pad = np.zeros((hc * f, wc * f), np.float32)
    pad[:h, :w] = img
    coarse = pad.reshape(hc, f, wc, f).mean(axis=(1, 3))
    blurred = ndimage.gaussian_filter(coarse, sigma_px / f, mode="nearest")
    return ndimage.zoom(blurred, f, order=1)[:h, :w].astype(np.float32)


class RandomisedSpecimen(Specimen):
    """A cell of the randomised world (same interface as :class:`Specimen`; see the module docstring)."""

    generator_types: ClassVar[dict[str, type]] = {
        **Specimen.generator_types,
        "microtubules": StyledMicrotubules,
        "er": StyledER,
        "lysosomes": StyledLysosomes,
    }

    def __init__(
        self,
        structures: Sequence[str],
        shape: tuple[int, int],
        pixel_size_um: float,
        seed: int | np.random.Generator,
    ) -> None:
        seq = seed_sequence(seed)
        style_seq, structure_seq = seq.spawn(2)
        grid = Grid((int(shape[0]), int(shape[1])), float(pixel_size_um))
        self.cell = draw_cell(np.random.default_rng(style_seq), grid.field)
        super().__init__(structures, shape, pixel_size_um, np.random.default_rng(structure_seq), self.cell.params)
        self._mask = _cell_mask(self.grid, self.cell.style)

    @property
    def families(self) -> dict[str, str]:
        """The morphology family drawn for each structure kind of this cell."""
        return dict(self.cell.families)

    def render(self) -> np.ndarray:
        out = super().render()
        style = self.cell.style
        sigma_px = style.haze_sigma_um / self.grid.pixel_size_um
        for c, kind in enumerate(self.kinds):
            haze = style.haze_fraction.get(kind, 0.0)
            if haze > 0:
                out[c] += np.float32(haze) * _haze(out[c], sigma_px)
            out[c] *= np.float32(math.exp(-self.time_s / style.bleach_time_s.get(kind, math.inf)))
        if self._mask is not None:
            out *= self._mask
        return out

    def background(self) -> np.ndarray:
        inside = np.ones(self.grid.shape, np.float32) if self._mask is None else 0.4 + 0.6 * self._mask
        return (np.float32(self.cell.style.background) * inside).astype(np.float32)


def family_example(kind: str, family: str, field: Field, seed: int = 0, tries: int = 200) -> int:
    """The first seed from ``seed`` on whose cell in ``field`` draws ``family`` for ``kind`` (figures, tests)."""
    for s in range(seed, seed + tries):
        seq = np.random.SeedSequence(s).spawn(2)[0]
        if draw_cell(np.random.default_rng(seq), field).families.get(kind) == family:
            return s
    raise SynthError(f"no {kind} family {family!r} in seeds {seed}..{seed + tries - 1}")


__all__ = [
    "ER_FAMILIES",
    "LYSOSOME_FAMILIES",
    "MICROTUBULE_FAMILIES",
    "CellStyle",
    "RandomisedCell",
    "RandomisedSpecimen",
    "draw_cell",
    "family_example",
]
