"""The held-out evaluation world: contract, determinism, scale, statistics within the documented ranges, motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.stats import spearmanr

from imcsr_live.errors import SynthError
from imcsr_live.synth import heldout as ho
from imcsr_live.synth.heldout import HeldoutSpecimen

SR_UM = 0.0313  # the truth grid of the intensity convention
NAMES = ["Microtubules", "ER", "Lysosomes"]
SIDE = 256  # an 8 um field: big enough for statistics, small enough for 20 cells in a few seconds
FIELD_COUNT_AREA = ho.FIELD_UM_PER_COUNT**2  # counts in the spec sheet are per 16 x 16 um of covered field


def make(seed: int, names: list[str] = NAMES, side: int = SIDE, pixel_um: float = SR_UM) -> HeldoutSpecimen:
    return HeldoutSpecimen(names, (side, side), pixel_um, seed=np.random.default_rng(seed))


def pixel_depth(cell: HeldoutSpecimen) -> np.ndarray:
    """How far inside the cell edge each pixel centre is (um)."""
    ys = (np.arange(cell.shape[0]) + 0.5) * cell.pixel_size_um
    xs = (np.arange(cell.shape[1]) + 0.5) * cell.pixel_size_um
    return cell.cell.depth(ys[:, None], xs[None])


@pytest.fixture(scope="module")
def cells() -> list[HeldoutSpecimen]:
    """20 cells at time 0 (tests must not advance them)."""
    return [make(seed) for seed in range(20)]


@pytest.fixture(scope="module")
def renders(cells: list[HeldoutSpecimen]) -> list[np.ndarray]:
    return [cell.render() for cell in cells]


# -- contract ---------------------------------------------------------------------------------------------------


def test_render_is_finite_non_negative_float32_with_channels_in_structure_order() -> None:
    cell = HeldoutSpecimen(["Lysosomes", "Microtubules", "ER"], (96, 128), SR_UM, seed=np.random.default_rng(1))
    img = cell.render()
    assert img.dtype == np.float32 and img.shape == (3, 96, 128)
    assert np.isfinite(img).all() and img.min() >= 0.0
    assert cell.kinds == ["lysosomes", "microtubules", "er"] and cell.time_s == 0.0
    same = HeldoutSpecimen(NAMES, (96, 128), SR_UM, seed=np.random.default_rng(1)).render()
    np.testing.assert_array_equal(img, same[[2, 0, 1]])  # the same cell, channels follow the names
    background = cell.background()
    assert background.dtype == np.float32 and background.shape == (96, 128)


def test_leaving_structures_out_does_not_change_the_others() -> None:
    full = make(3, side=128).render()
    np.testing.assert_array_equal(make(3, ["ER"], side=128).render()[0], full[1])
    np.testing.assert_array_equal(make(3, ["Lysosomes"], side=128).render()[0], full[2])


def test_background_is_a_faint_smooth_positive_glow(cells: list[HeldoutSpecimen]) -> None:
    for cell in cells[:6]:
        bg = cell.background()
        inside = pixel_depth(cell) > 1.0
        assert bg.min() > 0
        assert 0.01 * 0.7 <= float(np.median(bg[inside])) <= 0.05 * 1.3  # 1-5 % of a bright (~1) pixel
        assert max(np.abs(np.diff(bg, axis=0)).max(), np.abs(np.diff(bg, axis=1)).max()) < 0.005  # smooth
        np.testing.assert_array_equal(bg, cell.background())  # unlabelled light does not flicker


# -- determinism and scale --------------------------------------------------------------------------------------


def test_same_seed_same_cell_and_time_lapse_other_seeds_differ() -> None:
    a, b, c = make(7, side=128), make(7, side=128), make(8, side=128)
    for _ in range(3):
        np.testing.assert_array_equal(a.render(), b.render())
        a.advance(2.0)
        b.advance(2.0)
    np.testing.assert_array_equal(a.background(), b.background())
    assert not np.array_equal(make(7, side=128).render(), c.render())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_integrated_intensity_per_um2_does_not_depend_on_the_pixel_size(seed: int) -> None:
    fine = make(seed, side=256, pixel_um=0.0313).render().reshape(3, -1).sum(axis=1) * 0.0313**2
    coarse = make(seed, side=128, pixel_um=0.0626).render().reshape(3, -1).sum(axis=1) * 0.0626**2
    present = fine > 0.05  # a channel with any structure in this 8 um field
    assert present.any()
    np.testing.assert_allclose(coarse[present], fine[present], rtol=0.1)


@pytest.mark.parametrize("pixel_um", [0.0313, 0.0626, 0.02])
@pytest.mark.parametrize("angle", [0.0, 0.4, np.pi / 4])
def test_a_single_line_keeps_its_integral_and_peaks_near_one_on_the_reference_grid(
    pixel_um: float, angle: float
) -> None:
    sigma = 0.02
    direction = np.array([np.sin(angle), np.cos(angle)])
    pts = ho._arc_resample(np.array([2.0 - 1.5 * direction, 2.0 + 1.5 * direction]), 0.1)
    ends = np.zeros(len(pts) - 1, bool)
    cap0, cap1 = ends.copy(), ends.copy()
    cap0[0], cap1[-1] = True, True
    side = round(4.0 / pixel_um)
    img = ho.draw_segments((side, side), pixel_um, pts[:-1], pts[1:], np.ones(len(pts) - 1), sigma, cap0, cap1)
    per_um = img.sum() * pixel_um**2 / 3.0  # intensity x um^2 per um of line (the caps add ~1 %)
    expected = np.sqrt(2 * np.pi) * np.sqrt(sigma**2 + SR_UM**2 / 12)
    assert per_um == pytest.approx(expected, rel=0.06)
    if pixel_um == SR_UM:
        assert 0.8 <= img.max() <= 1.1


# -- statistics within the documented ranges --------------------------------------------------------------------


def test_some_fields_show_a_cell_edge_and_nothing_is_drawn_outside(
    cells: list[HeldoutSpecimen], renders: list[np.ndarray]
) -> None:
    with_edge = 0
    for cell, img in zip(cells, renders, strict=True):
        outside = pixel_depth(cell) < 0
        with_edge += bool(outside.any())
        assert (img[:, outside] == 0).all()
        assert (pixel_depth(cell) > 0).mean() >= 0.3  # the cell covers at least ~35 % of the field
    assert 2 <= with_edge <= 18


def test_microtubule_counts_are_in_range(cells: list[HeldoutSpecimen]) -> None:
    densities = []
    for cell in cells:
        mts = cell.microtubules
        assert mts is not None and 20 <= mts.per_field <= 300
        covered = ho._covered_fraction(cell.cell, cell.field, 0.0) * cell.field.area_um2
        densities.append(mts.count_in_field() / covered * FIELD_COUNT_AREA)
        lengths = [mt.visible_um for mt in mts.tubules]
        assert min(lengths) >= 0.5 and np.median(lengths) >= 3.0  # long filaments, not fragments
    # counts are whole numbers: a small field rounds, so allow that around 20-300 per 16 um field
    assert 14 <= min(densities) and max(densities) <= 310
    assert max(densities) / min(densities) > 3  # the density really varies between cells


def test_microtubules_are_brightest_at_about_one_and_bundles_are_brighter(
    cells: list[HeldoutSpecimen], renders: list[np.ndarray]
) -> None:
    peaks = []
    for cell, img in zip(cells, renders, strict=True):
        mt = img[0] / cell.brightness["microtubules"]
        if (mt > 0.05).sum() > 200:
            ridge = mt[(mt >= ndi.maximum_filter(mt, 5)) & (mt > 0.3)]  # local maxima across the lines
            peaks.append(float(np.median(ridge)))
    assert len(peaks) >= 10
    assert 0.6 <= float(np.median(peaks)) <= 1.4  # the ridge of a typical (single) microtubule


def test_er_mesh_and_junctions_are_in_range(cells: list[HeldoutSpecimen], renders: list[np.ndarray]) -> None:
    drawn, measured, degrees = [], [], []
    for cell, img in zip(cells, renders, strict=True):
        er = cell.er
        assert er is not None and 0.3 <= er.mesh_um <= 2.0
        assert 0.05 / 2.3548 <= er.sigma_um <= 0.12 / 2.3548
        if len(er.polygon_diameters_um) >= 5:
            assert 0.25 <= float(np.median(er.polygon_diameters_um)) <= 2.5
        degrees.append(er.degree_per_junction)
        # Mesh size from the image: the dark lumens between tubules, plus one tubule width.
        lumen, n = ndi.label(img[1] / cell.brightness["er"] < 0.25)
        area = np.bincount(lumen.ravel()) * SR_UM**2
        edge = np.unique(np.concatenate([lumen[0], lumen[-1], lumen[:, 0], lumen[:, -1]]))
        deepest = ndi.minimum(pixel_depth(cell), lumen, np.arange(n + 1))
        keep = [i for i in range(1, n + 1) if i not in edge and area[i] > 0.03 and deepest[i] > 0.5]
        if len(keep) >= 5:
            drawn.append(er.mesh_um)
            measured.append(float(np.median(2 * np.sqrt(area[keep] / np.pi))) + 2.3548 * er.sigma_um)
    degree = np.concatenate(degrees)
    assert set(np.unique(degree)) <= {3, 4} and (degree == 3).mean() >= 0.85  # mostly three-way junctions
    assert len(drawn) >= 12
    assert spearmanr(drawn, measured)[0] > 0.6  # the drawn mesh size is the one seen in the image
    assert 0.2 <= np.median(measured) <= 2.5


def test_lysosome_counts_sizes_rings_and_brightness_are_in_range(cells: list[HeldoutSpecimen]) -> None:
    counted = covered = 0.0
    diameters, big_rings, peaks = [], [], []
    for cell in cells:
        lyso = cell.lysosomes
        assert lyso is not None and 10 <= lyso.per_field <= 150
        counted += lyso.count_in_field(cell.cytoskeleton_drift, 0.0)
        covered += ho._covered_fraction(cell.cell, cell.field, 0.3) * cell.field.area_um2
        diameters += list(2 * lyso.radius)
        big = 2 * lyso.radius >= 0.3
        big_rings += list(lyso.shell_um[big] > 0)
        assert not (lyso.shell_um[~big] > 0).any()  # rings only where they are big enough to be rings
        peaks += list(lyso.peak)
        pos = lyso.positions(cell.cytoskeleton_drift, 0.0)
        if len(pos) > 1:  # hard core: no two overlap
            gap = np.hypot(*(pos[:, None] - pos[None]).transpose(2, 0, 1)) - lyso.radius[:, None] - lyso.radius
            np.fill_diagonal(gap, np.inf)
            assert gap.min() > -0.05  # (the drift field can nudge neighbours by a few nm)
    assert 10 <= counted / covered * FIELD_COUNT_AREA <= 150
    assert 0.15 <= min(diameters) and max(diameters) <= 0.9 and np.median(diameters) >= 0.2
    assert 0.1 <= np.mean(big_rings) <= 0.55  # ring probability 0-60 % per cell
    assert 0.55 <= min(peaks) and max(peaks) <= 2.75 and max(peaks) / min(peaks) >= 3


def test_rings_are_dark_in_the_middle_and_puncta_are_not(cells: list[HeldoutSpecimen]) -> None:
    rings = puncta = 0
    for cell in cells:
        lyso = cell.lysosomes
        assert lyso is not None
        drawn = lyso.render(cell.shape, SR_UM, cell.cytoskeleton_drift, 0.0)
        for (cy, cx), r, shell in zip(lyso.positions(cell.cytoskeleton_drift, 0.0), lyso.radius, lyso.shell_um,
                                      strict=True):  # fmt: skip
            i, j = int(cy / SR_UM), int(cx / SR_UM)
            k = int(np.ceil(r / SR_UM)) + 1
            if r < 0.15 or min(i, j) < k or max(i, j) >= SIDE - k:
                continue
            yy, xx = np.mgrid[i - k : i + k + 1, j - k : j + k + 1]
            own = np.hypot((yy + 0.5) * SR_UM - cy, (xx + 0.5) * SR_UM - cx) <= r  # its disc, no neighbour
            window = drawn[i - k : i + k + 1, j - k : j + k + 1][own]
            if shell > 0:
                rings += 1
                assert drawn[i, j] < 0.6 * window.max()
            else:
                puncta += 1
                assert drawn[i, j] > 0.85 * window.max()
    assert rings >= 3 and puncta >= 3


# -- motion -----------------------------------------------------------------------------------------------------


def test_motion_between_timepoints_is_small_but_not_zero() -> None:
    for seed in range(5):
        cell = make(seed, side=192)
        before = cell.render()
        lyso, mts = cell.lysosomes, cell.microtubules
        assert lyso is not None and mts is not None
        where = lyso.positions(cell.cytoskeleton_drift, cell.time_s)
        tips = np.array([mt.visible_um for mt in mts.tubules])
        cell.advance(2.0)
        after = cell.render()
        assert cell.time_s == 2.0
        for c in (0, 1):  # microtubules and ER: everything moved a little, nothing jumped
            assert not np.array_equal(before[c], after[c])
            assert np.corrcoef(before[c].ravel(), after[c].ravel())[0, 1] > 0.6
        steps = np.hypot(*(lyso.positions(cell.cytoskeleton_drift, cell.time_s) - where).T)
        if len(steps):
            assert steps.max() <= 2.0 * 2.0 + 0.3  # fastest run 2 um/s, plus drift
            assert np.median(steps) < 0.3
        growth = np.array([mt.visible_um for mt in mts.tubules]) - tips
        assert np.abs(growth).max() <= 0.35 * 2.0 + 1e-9
    still = make(0, side=96)
    first = still.render()
    still.advance(0.0)
    np.testing.assert_array_equal(first, still.render())


@pytest.mark.parametrize("dt", [-1.0, float("nan"), float("inf")])
def test_time_steps_must_be_finite_and_not_negative(dt: float) -> None:
    with pytest.raises(SynthError, match="time step"):
        make(0, side=64).advance(dt)


# -- bad input, registration ------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [["ER", "CCPs"], ["Mitochondria"], []])
def test_structures_it_cannot_make_are_refused_in_one_clear_line(names: list[str]) -> None:
    with pytest.raises(SynthError, match="heldout") as info:
        HeldoutSpecimen(names, (64, 64), SR_UM, seed=np.random.default_rng(0))
    assert "\n" not in str(info.value)
    if names:
        assert "microtubules, er, lysosomes" in str(info.value)


@pytest.mark.parametrize(("shape", "pixel_um"), [((4, 64), SR_UM), ((64, 64), 0.0), ((64, 64), float("nan"))])
def test_bad_fields_are_refused(shape: tuple[int, int], pixel_um: float) -> None:
    with pytest.raises(SynthError, match="heldout"):
        HeldoutSpecimen(NAMES, shape, pixel_um, seed=np.random.default_rng(0))


def test_heldout_is_an_evaluation_world_and_not_a_training_world() -> None:
    from pydantic import ValidationError

    from imcsr_live.train.config import DataTable
    from imcsr_live.train.evaluate import check_world_available, eval_worlds

    assert "heldout" in eval_worlds()
    check_world_available("heldout")  # no error: the generator module is installed
    with pytest.raises(ValidationError, match="world"):
        DataTable(world="heldout", kind="pipeline")
