"""Rasterisation primitives for the synthetic specimen.

Conventions shared by every structure generator:

* Geometry is physical (um). ``x`` runs along columns, ``y`` along rows, the origin is the top-left corner of
  the field, and pixel ``(i, j)`` covers ``[j*p, (j+1)*p) x [i*p, (i+1)*p)`` (centre at ``(j+0.5)*p``).
  Point arrays are ``(N, 2)`` with columns ``(x, y)``.
* Images are densities (intensity per um^2), so the integrated intensity of an object (``sum * p**2``)
  does not depend on the pixel size; the same object rendered on a finer grid is only sharper.
* Every primitive is band-limited by an anti-aliasing Gaussian of at least ``AA_SIGMA_PX`` pixels, so a
  structure thinner than a pixel still renders without staircase aliasing or dropped samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from imcsr_live.errors import SynthError

AA_SIGMA_PX = 0.5
"""Anti-aliasing floor (Gaussian sigma, pixels) applied to every rendered object."""

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

# Bilinear splatting spreads a point over its 2x2 neighbourhood; averaged over sub-pixel positions this is a
# blur of variance 1/6 px^2 per axis, which the final Gaussian does not need to add again.
_BILINEAR_VAR_PX2 = 1.0 / 6.0
# Kernel reach in sigmas: beyond 4 sigma the Gaussian holds < 1e-4 of its mass.
_TRUNCATE = 4.0
# Upper bound on (objects x window pixels) evaluated at once, to keep window stamping memory-bounded.
_STAMP_CHUNK = 4_000_000


@dataclass(frozen=True)
class Field:
    """The physical field of view (um) that a specimen occupies; independent of any pixel grid."""

    width_um: float
    height_um: float

    def __post_init__(self) -> None:
        if not (self.width_um > 0 and self.height_um > 0):
            raise SynthError(f"field size must be positive (got {self.width_um} x {self.height_um} um)")

    @property
    def area_um2(self) -> float:
        return self.width_um * self.height_um

    def bounds(self, margin_um: float = 0.0) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the field grown by ``margin_um`` on every side."""
        return (-margin_um, -margin_um, self.width_um + margin_um, self.height_um + margin_um)

    def contains(self, points_um: np.ndarray, margin_um: float = 0.0) -> np.ndarray:
        """Boolean mask of the ``(N, 2)`` points that lie inside the field grown by ``margin_um``."""
        x0, y0, x1, y1 = self.bounds(margin_um)
        p = np.asarray(points_um, dtype=np.float64).reshape(-1, 2)
        return (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)

    def uniform_points(self, rng: np.random.Generator, n: int, margin_um: float = 0.0) -> np.ndarray:
        """``n`` points drawn uniformly in the field grown by ``margin_um``."""
        x0, y0, x1, y1 = self.bounds(margin_um)
        return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


@dataclass(frozen=True)
class Grid:
    """A pixel grid laid over a field: ``shape`` = (rows, cols), square pixels of ``pixel_size_um``."""

    shape: tuple[int, int]
    pixel_size_um: float

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise SynthError(f"grid shape must be two positive sizes (rows, cols), got {self.shape}")
        if not self.pixel_size_um > 0:
            raise SynthError(f"pixel size must be > 0 um (got {self.pixel_size_um})")

    @property
    def field(self) -> Field:
        return Field(self.shape[1] * self.pixel_size_um, self.shape[0] * self.pixel_size_um)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.shape, dtype=np.float32)


def line_sigma_um(width_um: float, pixel_size_um: float) -> float:
    """Gaussian sigma of a rendered line: its width read as a FWHM, combined with the anti-aliasing floor."""
    return math.hypot(width_um / FWHM_PER_SIGMA, AA_SIGMA_PX * pixel_size_um)


def edge_sigma_um(softness_um: float, pixel_size_um: float) -> float:
    """Gaussian sigma of a soft object edge, never sharper than the anti-aliasing floor."""
    return math.hypot(softness_um, AA_SIGMA_PX * pixel_size_um)


# ----------------------------------------------------------------------------------------------------------
# Lines and points: dense sub-pixel samples, bilinear splatting, one Gaussian blur.


def _clip_segments(
    a: np.ndarray, b: np.ndarray, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip segments ``a -> b`` to an axis-aligned box (Liang-Barsky); return clipped ends and a keep mask.

    Long filaments reach far beyond the field; clipping first keeps the sample count proportional to what
    can actually be seen.
    """
    d = b - a
    t0 = np.zeros(len(a))
    t1 = np.ones(len(a))
    keep = np.ones(len(a), dtype=bool)
    x0, y0, x1, y1 = box
    for p, q in (
        (-d[:, 0], a[:, 0] - x0),
        (d[:, 0], x1 - a[:, 0]),
        (-d[:, 1], a[:, 1] - y0),
        (d[:, 1], y1 - a[:, 1]),
    ):
        parallel = p == 0
        keep &= ~(parallel & (q < 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(parallel, 0.0, q / np.where(parallel, 1.0, p))
        entering = (p < 0) & ~parallel
        leaving = (p > 0) & ~parallel
        t0 = np.where(entering, np.maximum(t0, r), t0)
        t1 = np.where(leaving, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    return a + t0[:, None] * d, a + t1[:, None] * d, keep


def _splat_bilinear(shape: tuple[int, int], u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Accumulate weights ``w`` at continuous pixel coordinates (``u`` = column, ``v`` = row) bilinearly."""
    h, wd = shape
    j0 = np.floor(u).astype(np.int64)
    i0 = np.floor(v).astype(np.int64)
    fu = u - j0
    fv = v - i0
    idx_parts = []
    val_parts = []
    for di, dj, wt in (
        (0, 0, (1 - fv) * (1 - fu)),
        (0, 1, (1 - fv) * fu),
        (1, 0, fv * (1 - fu)),
        (1, 1, fv * fu),
    ):
        ii = i0 + di
        jj = j0 + dj
        ok = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < wd)
        idx_parts.append(ii[ok] * wd + jj[ok])
        val_parts.append((w * wt)[ok])
    acc = np.bincount(np.concatenate(idx_parts), weights=np.concatenate(val_parts), minlength=h * wd)
    return acc.reshape(shape)


def _blur_and_crop(canvas: np.ndarray, sigma_px: float, pad: int, shape: tuple[int, int]) -> np.ndarray:
    """Apply the residual Gaussian (total sigma minus the bilinear share) and cut the padding away."""
    blur = math.sqrt(max(sigma_px**2 - _BILINEAR_VAR_PX2, 0.0))
    img = canvas.astype(np.float32)
    if blur > 0.05:
        img = ndimage.gaussian_filter(img, blur, mode="constant", truncate=_TRUNCATE)
    return np.ascontiguousarray(img[pad : pad + shape[0], pad : pad + shape[1]])


def render_segments(
    grid: Grid,
    starts_um: np.ndarray,
    ends_um: np.ndarray,
    intensity_per_um: float | np.ndarray,
    width_um: float,
    *,
    step_px: float = 0.5,
) -> np.ndarray:
    """Render straight segments as lines of a physical width.

    Parameters
    ----------
    grid : Grid
        Target grid.
    starts_um, ends_um : ndarray (S, 2)
        Segment end points (x, y) in um.
    intensity_per_um : float or ndarray (S,)
        Integrated intensity per um of line length (the line's linear density).
    width_um : float
        Physical line width, rendered as the FWHM of a Gaussian cross-section (plus the anti-aliasing floor).
    step_px : float
        Sampling step along the line in pixels; the result does not depend on it as long as it is <~ 1.

    Returns
    -------
    ndarray (H, W) float32
        Density image; ``sum * pixel_size**2`` equals ``intensity_per_um * length`` for lines inside the grid.
    """
    a = np.asarray(starts_um, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(ends_um, dtype=np.float64).reshape(-1, 2)
    lam = np.broadcast_to(np.asarray(intensity_per_um, dtype=np.float64), (len(a),))
    px = grid.pixel_size_um
    sigma_px = line_sigma_um(width_um, px) / px
    pad = math.ceil(_TRUNCATE * sigma_px) + 2
    if len(a) == 0:
        return grid.zeros()
    # Only the part of a segment within the padded canvas (less one pixel for the bilinear neighbour) matters.
    box = grid.field.bounds((pad - 1) * px)
    a, b, keep = _clip_segments(a, b, box)
    seg_len = np.hypot(*(b - a).T)
    keep &= (seg_len > 0) & (lam != 0)
    a, b, lam, seg_len = a[keep], b[keep], lam[keep], seg_len[keep]
    if len(a) == 0:
        return grid.zeros()
    # Sub-segment midpoints carry an equal share of the segment's intensity, so the total is exact whatever
    # the sampling density.
    n = np.maximum(1, np.ceil(seg_len / (px * step_px))).astype(np.int64)
    seg = np.repeat(np.arange(len(a)), n)
    k = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    t = (k + 0.5) / n[seg]
    pts = a[seg] + t[:, None] * (b - a)[seg]
    w = (lam * seg_len / n)[seg] / (px * px)
    shape = (grid.shape[0] + 2 * pad, grid.shape[1] + 2 * pad)
    canvas = _splat_bilinear(shape, pts[:, 0] / px - 0.5 + pad, pts[:, 1] / px - 0.5 + pad, w)
    return _blur_and_crop(canvas, sigma_px, pad, grid.shape)


def polylines_to_segments(polylines: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive-point segments of several polylines: ``(starts, ends, polyline_index)``."""
    starts, ends, owner = [], [], []
    for i, line in enumerate(polylines):
        p = np.asarray(line, dtype=np.float64).reshape(-1, 2)
        if len(p) < 2:
            continue
        starts.append(p[:-1])
        ends.append(p[1:])
        owner.append(np.full(len(p) - 1, i))
    if not starts:
        empty = np.zeros((0, 2))
        return empty, empty, np.zeros(0, dtype=np.int64)
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(owner)


def render_polylines(
    grid: Grid,
    polylines: Sequence[np.ndarray],
    intensity_per_um: float | Sequence[float] | np.ndarray,
    width_um: float,
    *,
    step_px: float = 0.5,
) -> np.ndarray:
    """Render polylines (each ``(N, 2)``, um) as lines; ``intensity_per_um``: scalar or one per polyline."""
    starts, ends, owner = polylines_to_segments(polylines)
    lam = np.asarray(intensity_per_um, dtype=np.float64)
    lam_seg = lam[owner] if lam.ndim else lam
    return render_segments(grid, starts, ends, lam_seg, width_um, step_px=step_px)


def render_points(grid: Grid, centers_um: np.ndarray, intensities: np.ndarray, fwhm_um: float) -> np.ndarray:
    """Render point-like puncta as Gaussian spots of a physical FWHM; ``intensities`` are integrated."""
    c = np.asarray(centers_um, dtype=np.float64).reshape(-1, 2)
    w = np.broadcast_to(np.asarray(intensities, dtype=np.float64), (len(c),))
    px = grid.pixel_size_um
    sigma_px = line_sigma_um(fwhm_um, px) / px
    pad = math.ceil(_TRUNCATE * sigma_px) + 2
    shape = (grid.shape[0] + 2 * pad, grid.shape[1] + 2 * pad)
    canvas = _splat_bilinear(shape, c[:, 0] / px - 0.5 + pad, c[:, 1] / px - 0.5 + pad, w / (px * px))
    return _blur_and_crop(canvas, sigma_px, pad, grid.shape)


# ----------------------------------------------------------------------------------------------------------
# Area objects: evaluated analytically in a small window around each object.

Profile = Callable[[np.ndarray, np.ndarray, slice], np.ndarray]


def _stamp(grid: Grid, centers_um: np.ndarray, reach_um: float, profile: Profile) -> np.ndarray:
    """Sum ``profile(dx, dy, objects)`` over square windows of half-size ``reach_um`` around each centre.

    ``dx``/``dy`` are pixel-centre offsets from the object centre, shaped ``(n, 1, w)`` and ``(n, w, 1)``;
    ``objects`` is the slice of objects being evaluated (the profile indexes its per-object parameters).
    """
    out = np.zeros(grid.shape[0] * grid.shape[1], dtype=np.float64)
    c = np.asarray(centers_um, dtype=np.float64).reshape(-1, 2)
    if len(c) == 0:
        return grid.zeros()
    px = grid.pixel_size_um
    hw = math.ceil(reach_um / px) + 1
    off = np.arange(-hw, hw + 1)
    win = len(off)
    chunk = max(1, _STAMP_CHUNK // (win * win))
    h, w = grid.shape
    for start in range(0, len(c), chunk):
        sl = slice(start, min(start + chunk, len(c)))
        cc = c[sl]
        ci = np.floor(cc[:, 1] / px).astype(np.int64)
        cj = np.floor(cc[:, 0] / px).astype(np.int64)
        rows = ci[:, None] + off[None, :]  # (n, win)
        cols = cj[:, None] + off[None, :]
        dx = ((cols + 0.5) * px - cc[:, 0:1])[:, None, :]
        dy = ((rows + 0.5) * px - cc[:, 1:2])[:, :, None]
        vals = profile(dx, dy, sl)
        ok = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        flat = rows[:, :, None] * w + cols[:, None, :]
        out += np.bincount(flat[ok], weights=np.broadcast_to(vals, ok.shape)[ok], minlength=h * w)
    return out.reshape(grid.shape).astype(np.float32)


def render_blobs(
    grid: Grid,
    centers_um: np.ndarray,
    radii_um: np.ndarray,
    peak: np.ndarray | float,
    *,
    softness_um: float = 0.0,
    harmonics: np.ndarray | None = None,
) -> np.ndarray:
    """Filled, soft-edged blobs: discs, or wavy outlines ``r(θ) = R (1 + Σ a_k cos kθ + b_k sin kθ)``.

    Parameters
    ----------
    centers_um : ndarray (N, 2)
    radii_um : ndarray (N,)
        Mean outline radius.
    peak : float or ndarray (N,)
        Interior density (reached where the blob is larger than the edge blur).
    softness_um : float
        Gaussian sigma of the edge (combined with the anti-aliasing floor); the edge profile is the
        ``erfc`` step a disc gets from a Gaussian blur.
    harmonics : ndarray (N, K, 2), optional
        Relative outline amplitudes ``(a_k, b_k)`` for ``k = 1..K``; ``None`` renders discs.
    """
    c = np.asarray(centers_um, dtype=np.float64).reshape(-1, 2)
    radius = np.broadcast_to(np.asarray(radii_um, dtype=np.float64), (len(c),))
    peak_arr = np.broadcast_to(np.asarray(peak, dtype=np.float64), (len(c),))
    s = edge_sigma_um(softness_um, grid.pixel_size_um)
    # An erfc edge at radius R' holds pi (R'^2 + s^2) and has <r^2> = R^2/2 + 2 s^2 (to O(s^4)) when
    # R'^2 = R^2 - s^2: exactly the mass and second moment of a disc of radius R blurred by a Gaussian.
    # So the intensity does not depend on the grid's anti-aliasing; blobs smaller than the blur become
    # Gaussian-like spots of the same mass.
    r0 = np.sqrt(np.maximum(radius**2 - s**2, 0.0))
    amp = peak_arr * radius**2 / (r0**2 + s**2)
    wobble = np.zeros(len(c)) if harmonics is None else np.abs(harmonics).sum(axis=(1, 2))
    reach = float(np.max(r0 * (1 + wobble), initial=0.0)) + _TRUNCATE * s
    ks = None if harmonics is None else np.arange(1, harmonics.shape[1] + 1)

    def profile(dx: np.ndarray, dy: np.ndarray, sl: slice) -> np.ndarray:
        r = np.hypot(dx, dy)
        if harmonics is None:
            edge = r0[sl, None, None]
        else:
            theta = np.arctan2(dy, dx)[..., None] * ks  # (n, w, w, K)
            hk = harmonics[sl][:, None, None, :, :]
            rel = (hk[..., 0] * np.cos(theta) + hk[..., 1] * np.sin(theta)).sum(axis=-1)
            edge = r0[sl, None, None] * (1.0 + rel)
        return amp[sl, None, None] * 0.5 * special.erfc((r - edge) / (math.sqrt(2.0) * s))

    return _stamp(grid, c, reach, profile)


def render_rings(
    grid: Grid,
    centers_um: np.ndarray,
    radii_um: np.ndarray,
    peak: np.ndarray | float,
    thickness_um: float,
) -> np.ndarray:
    """Hollow rings (membrane outlines): Gaussian radial profile of FWHM ``thickness_um`` at radius ``R``.

    ``peak`` is the crest density of the shell itself; the anti-aliasing blur widens the crest on coarse
    grids while keeping the intensity per unit circumference, so the ring's total does not depend on the grid.
    """
    c = np.asarray(centers_um, dtype=np.float64).reshape(-1, 2)
    r0 = np.broadcast_to(np.asarray(radii_um, dtype=np.float64), (len(c),))
    s = line_sigma_um(thickness_um, grid.pixel_size_um)
    amp = np.broadcast_to(np.asarray(peak, dtype=np.float64), (len(c),)) * (thickness_um / FWHM_PER_SIGMA) / s
    reach = float(np.max(r0, initial=0.0)) + _TRUNCATE * s

    def profile(dx: np.ndarray, dy: np.ndarray, sl: slice) -> np.ndarray:
        r = np.hypot(dx, dy)
        return amp[sl, None, None] * np.exp(-0.5 * ((r - r0[sl, None, None]) / s) ** 2)

    return _stamp(grid, c, reach, profile)


def lognormal_brightness(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Per-object brightness factors with mean 1 and log-spread ``sigma`` (real labelling varies this way)."""
    if sigma <= 0:
        return np.ones(n)
    return np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma**2)
