"""Rasterisation primitives: widths, sizes and integrated intensities against known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imcsr_live.errors import SynthError
from imcsr_live.synth.render import (
    FWHM_PER_SIGMA,
    Field,
    Grid,
    render_blobs,
    render_points,
    render_polylines,
    render_rings,
    render_segments,
)


def fwhm(profile: np.ndarray, step: float) -> float:
    """Full width at half maximum of a single-peaked 1-D profile, with linear interpolation at the edges."""
    p = np.asarray(profile, dtype=np.float64)
    k = int(np.argmax(p))
    half = 0.5 * p[k]
    left = k
    while p[left - 1] > half:
        left -= 1
    right = k
    while p[right + 1] > half:
        right += 1
    x_left = left - (p[left] - half) / (p[left] - p[left - 1])
    x_right = right + (p[right] - half) / (p[right] - p[right + 1])
    return (x_right - x_left) * step


def pixel_centres(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    px = grid.pixel_size_um
    yy, xx = np.mgrid[: grid.shape[0], : grid.shape[1]]
    return (xx + 0.5) * px, (yy + 0.5) * px


@pytest.mark.parametrize("width_um", [0.025, 0.06, 0.1])
def test_line_fwhm_matches_configured_width_on_fine_grid(width_um: float) -> None:
    grid = Grid((240, 240), 0.005)
    img = render_segments(grid, [[0.6, -1.0]], [[0.6, 2.0]], 1.0, width_um)
    measured = fwhm(img[120], grid.pixel_size_um)
    assert measured == pytest.approx(width_um, rel=0.2)
    # A line oblique to the grid has the same cross-section (no staircase widening).
    img = render_segments(grid, [[0.1, 0.2]], [[1.1, 1.0]], 1.0, width_um)
    xx, yy = pixel_centres(grid)
    d = ((xx - 0.1) * 0.8 - (yy - 0.2) * 1.0) / math.hypot(1.0, 0.8)  # signed distance to the line
    mid = np.abs(((xx - 0.6) * 1.0 + (yy - 0.6) * 0.8) / math.hypot(1.0, 0.8)) < 0.1
    var = np.sum(img[mid] * d[mid] ** 2) / np.sum(img[mid])
    assert math.sqrt(var) * FWHM_PER_SIGMA == pytest.approx(width_um, rel=0.2)


@pytest.mark.parametrize("pixel_size_um", [0.005, 0.0313, 0.0626])
@pytest.mark.parametrize("step_px", [0.2, 0.5, 1.0])
def test_intensity_per_length_independent_of_sampling_and_pixel_size(pixel_size_um: float, step_px: float) -> None:
    n = round(4.0 / pixel_size_um)
    grid = Grid((n, n), pixel_size_um)
    a, b = np.array([0.7, 0.9]), np.array([3.1, 2.7])
    img = render_segments(grid, [a], [b], 2.0, 0.06, step_px=step_px)
    integrated = img.sum(dtype=np.float64) * pixel_size_um**2
    assert integrated == pytest.approx(2.0 * np.linalg.norm(b - a), rel=1e-4)
    assert img.dtype == np.float32 and img.min() >= -1e-6


def test_curved_polyline_integrates_to_arc_length_and_per_polyline_intensity() -> None:
    grid = Grid((400, 400), 0.01)
    phi = np.linspace(0, np.pi, 200)
    arc = np.column_stack([2.0 + 1.2 * np.cos(phi), 2.0 + 1.2 * np.sin(phi)])
    straight = np.array([[0.5, 0.5], [3.5, 0.5]])
    img = render_polylines(grid, [arc, straight], [1.0, 3.0], 0.05)
    total = img.sum(dtype=np.float64) * grid.pixel_size_um**2
    arc_len = np.sum(np.linalg.norm(np.diff(arc, axis=0), axis=1))
    assert total == pytest.approx(1.0 * arc_len + 3.0 * 3.0, rel=1e-3)


def test_segments_beyond_the_field_are_clipped_not_lost() -> None:
    grid = Grid((200, 200), 0.02)  # 4 x 4 um
    img = render_segments(grid, [[-50.0, 2.0]], [[60.0, 2.0]], 1.0, 0.03)
    # Only the 4 um inside the field are visible; the profile is uniform along the line, also at the edges.
    assert img.sum(dtype=np.float64) * 0.02**2 == pytest.approx(4.0, rel=0.01)
    row = img[:, 100]
    assert img[int(np.argmax(row)), 0] == pytest.approx(row.max(), rel=0.02)
    assert np.all(render_segments(grid, [[10.0, 10.0]], [[20.0, 20.0]], 1.0, 0.03) == 0)


@pytest.mark.parametrize("diameter_um", [0.1, 0.2, 0.5, 0.8])
def test_disc_size_from_second_moment(diameter_um: float) -> None:
    grid = Grid((300, 300), 0.005)
    c = np.array([0.75, 0.75])
    img = render_blobs(grid, [c], [diameter_um / 2], 1.0, softness_um=0.01)
    xx, yy = pixel_centres(grid)
    r2 = np.sum(img * ((xx - c[0]) ** 2 + (yy - c[1]) ** 2)) / img.sum()
    sigma = math.hypot(0.01, 0.5 * grid.pixel_size_um)
    # Uniform disc: <r^2> = R^2 / 2; an isotropic Gaussian edge adds 2 sigma^2.
    radius = math.sqrt(2 * (r2 - 2 * sigma**2))
    assert 2 * radius == pytest.approx(diameter_um, rel=0.05)
    assert img.max() == pytest.approx(1.0, rel=0.02)
    assert img.sum() * grid.pixel_size_um**2 == pytest.approx(math.pi * (diameter_um / 2) ** 2, rel=0.01)


@pytest.mark.parametrize("pixel_size_um", [0.005, 0.0156, 0.0313, 0.0626])
def test_disc_and_ring_intensity_independent_of_pixel_size(pixel_size_um: float) -> None:
    n = round(2.0 / pixel_size_um)
    grid = Grid((n, n), pixel_size_um)
    discs = render_blobs(grid, [[0.5, 0.5], [1.5, 0.6]], [0.05, 0.3], [2.0, 1.0], softness_um=0.01)
    expected_discs = math.pi * (2.0 * 0.05**2 + 1.0 * 0.3**2)
    assert discs.sum() * pixel_size_um**2 == pytest.approx(expected_discs, rel=0.02)
    ring = render_rings(grid, [[1.0, 1.3]], [0.3], 1.0, 0.06)
    # Crest density x shell cross-section (Gaussian of FWHM t) x circumference.
    expected_ring = 1.0 * math.sqrt(2 * math.pi) * (0.06 / FWHM_PER_SIGMA) * 2 * math.pi * 0.3
    assert ring.sum() * pixel_size_um**2 == pytest.approx(expected_ring, rel=0.02)


@pytest.mark.parametrize("radius_um", [0.15, 0.3, 0.4])
def test_ring_radial_profile_peaks_at_radius(radius_um: float) -> None:
    grid = Grid((240, 240), 0.005)
    c = np.array([0.6, 0.6])
    img = render_rings(grid, [c], [radius_um], 1.0, 0.06)
    xx, yy = pixel_centres(grid)
    r = np.hypot(xx - c[0], yy - c[1])
    bins = np.arange(0, 0.55, 0.005)
    which = np.digitize(r.ravel(), bins)
    prof = np.bincount(which, img.ravel(), len(bins) + 1) / np.maximum(np.bincount(which, None, len(bins) + 1), 1)
    peak_r = bins[int(np.argmax(prof)) - 1] + 0.0025
    assert peak_r == pytest.approx(radius_um, abs=0.01)
    assert img[int(c[1] / 0.005), int(c[0] / 0.005)] < 0.05  # hollow centre
    assert fwhm(prof[1:], 0.005) == pytest.approx(0.06, rel=0.2)


def test_wavy_blob_area_matches_outline() -> None:
    grid = Grid((300, 300), 0.01)
    harm = np.zeros((1, 3, 2))
    harm[0, 1] = (0.15, 0.0)  # k = 2: an oval
    harm[0, 2] = (0.0, 0.1)  # k = 3: a rounded triangle
    img = render_blobs(grid, [[1.5, 1.5]], [0.8], 2.0, harmonics=harm)
    expected_area = math.pi * 0.8**2 * (1 + 0.5 * (0.15**2 + 0.1**2))
    assert img.sum() * 0.01**2 / 2.0 == pytest.approx(expected_area, rel=0.02)
    # Anisotropic: the k = 2 term stretches the blob along x.
    assert (img[150] > 1.0).sum() > (img[:, 150] > 1.0).sum()


def test_points_have_fwhm_and_integrated_intensity() -> None:
    grid = Grid((200, 200), 0.005)
    img = render_points(grid, [[0.5, 0.5]], [3.0], 0.1)
    assert img.sum() * 0.005**2 == pytest.approx(3.0, rel=1e-4)
    assert fwhm(img[100], 0.005) == pytest.approx(0.1, rel=0.1)


def test_many_blobs_stamped_like_single_ones() -> None:
    grid = Grid((128, 128), 0.03)
    rng = np.random.default_rng(1)
    c = rng.uniform(-0.2, 4.0, (50, 2))  # some off the edge
    radii = rng.uniform(0.05, 0.3, 50)
    together = render_blobs(grid, c, radii, 1.0)
    apart = sum(render_blobs(grid, c[i : i + 1], radii[i : i + 1], 1.0) for i in range(50))
    np.testing.assert_allclose(together, apart, atol=1e-5)


def test_grid_and_field_validation() -> None:
    with pytest.raises(SynthError, match="pixel size"):
        Grid((10, 10), 0.0)
    with pytest.raises(SynthError, match="shape"):
        Grid((0, 10), 0.03)
    with pytest.raises(SynthError, match="field size"):
        Field(-1.0, 2.0)
    g = Grid((100, 50), 0.02)
    assert g.field.width_um == pytest.approx(1.0) and g.field.height_um == pytest.approx(2.0)
