"""The domain-randomised training world: families, documented ranges, determinism, cell effects."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.synth.microtubules import MicrotubuleParams, Microtubules
from imcsr_live.synth.randomised import (
    ER_FAMILIES,
    LYSOSOME_FAMILIES,
    MICROTUBULE_FAMILIES,
    REFERENCE_SPAN_S,
    RandomisedSpecimen,
    StyledER,
    StyledERParams,
    StyledMicrotubules,
    bend_vertices,
    draw_cell,
    family_example,
    straighten_bends,
)
from imcsr_live.synth.render import Field, Grid
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

NAMES = ["Microtubules", "ER", "Lysosomes"]
FIELD = Field(16.0, 16.0)
PX = 0.0313


@pytest.fixture(scope="module")
def cells():
    return [draw_cell(np.random.default_rng(s), FIELD) for s in range(300)]


def test_every_family_is_drawn(cells):
    for kind, families in (("microtubules", MICROTUBULE_FAMILIES), ("er", ER_FAMILIES),
                           ("lysosomes", LYSOSOME_FAMILIES)):  # fmt: skip
        seen = {c.families[kind] for c in cells}
        assert seen == set(families), kind


def test_parameters_lie_in_the_documented_ranges(cells):
    for c in cells:
        mt, er, ly, style = c.params.microtubules, c.params.er, c.params.lysosomes, c.style
        fam = c.families
        lo, hi = {"sparse": (0.15, 1.5), "aster": (2.0, 25.0), "parallel": (0.5, 15.0)}[fam["microtubules"]]
        assert lo <= mt.length_density_um_per_um2 <= hi
        assert mt.arrangement == {"sparse": "random", "aster": "aster", "parallel": "parallel"}[fam["microtubules"]]
        assert 0.0 <= mt.bundle_fraction <= 0.4 and 0.1 <= mt.along_sigma <= 0.6
        corr, std = mt.curvature_correlation_um, mt.curvature_std_per_um
        assert 0.3 <= corr <= 3.0
        if fam["microtubules"] == "parallel":
            assert 0.02 <= std <= 0.06 and mt.max_curvature_per_um == 0.3
        else:  # up to 0.4 rad of heading change per correlation length
            assert 0.05 - 1e-9 <= std <= min(0.8, 0.4 / corr) + 1e-9
            assert mt.max_curvature_per_um == pytest.approx(max(0.3, 3.0 * std))
        assert 0.0 <= er.bow_std <= 0.25 and 0.0 <= er.tension <= 1.0
        assert 0.3 <= er.polygon_size_um <= 2.0 and 0.04 <= er.tubule_width_um <= 0.14
        assert (er.perinuclear_radius_um > 0) == (fam["er"] == "perinuclear")
        if er.perinuclear_radius_um > 0:  # its centre lies outside the field, so only a part of it enters
            assert not FIELD.contains(np.array([er.perinuclear_center_um]))[0]
        assert 0.04 <= ly.density_per_um2 <= 0.3 and 0.2 <= ly.directed_fraction <= 0.7
        assert 0.35 <= ly.brightness_sigma <= 0.6 and ly.diameter_range_um[0] >= 0.15
        assert 0.005 <= style.background <= 0.05 and 0.5 <= style.haze_sigma_um <= 2.0
        for tau in style.bleach_time_s.values():  # 5-30 % lost per 200 s
            assert 0.05 - 1e-9 <= 1 - math.exp(-REFERENCE_SPAN_S / tau) <= 0.3 + 1e-9
        lo_b, hi_b = c.params.cell_brightness_range
        assert hi_b / lo_b == pytest.approx(4.0)  # ratios between two structures span 0.25-4x
    with_edge = np.mean([c.style.edge_radius_um > 0 for c in cells])
    assert 0.3 < with_edge < 0.5  # 40 % of cells show an edge


def test_microtubule_densities_run_from_sparse_to_very_dense(cells):
    # Log-uniform draws: a tenth of cells below 0.4 um/um^2 and a tenth above 5 (the 30-350 filaments per 16 um
    # field of a real COS-7 periphery), not a narrow band around one density.
    density = np.array([c.params.microtubules.length_density_um_per_um2 for c in cells])
    assert np.mean(density < 0.4) > 0.1 and np.mean(density > 5.0) > 0.1
    # The drawn density is what lands in the field: filament length inside it per um^2, from the centre lines.
    for family in ("sparse", "parallel"):
        seed = family_example("microtubules", family, FIELD, seed=11)
        specimen = RandomisedSpecimen(NAMES, (512, 512), PX, seed)
        nominal = specimen.cell.params.microtubules.length_density_um_per_um2
        measured = _length_in_field(specimen.generator("microtubules").centerlines()) / FIELD.area_um2
        assert 0.3 * nominal <= measured <= 1.5 * nominal, (family, nominal, measured)


def _length_in_field(lines: list[np.ndarray]) -> float:
    total = 0.0
    for line in lines:
        mid = 0.5 * (line[1:] + line[:-1])
        inside = FIELD.contains(mid)
        total += float(np.hypot(*np.diff(line, axis=0).T)[inside].sum())
    return total


def test_same_seed_same_cell_and_time_lapse():
    a = RandomisedSpecimen(NAMES, (128, 128), PX, 7)
    b = RandomisedSpecimen(NAMES, (128, 128), PX, 7)
    np.testing.assert_array_equal(a.render(), b.render())
    a.advance(2.0)
    b.advance(2.0)
    np.testing.assert_array_equal(a.render(), b.render())
    c = RandomisedSpecimen(NAMES, (128, 128), PX, 8)
    assert not np.array_equal(a.render(), c.render())


def test_render_shapes_and_values():
    spec = RandomisedSpecimen(NAMES, (96, 128), PX, 3)
    img = spec.render()
    assert img.shape == (3, 96, 128) and img.dtype == np.float32
    assert np.all(img >= 0) and np.all(np.isfinite(img))
    bg = spec.background()
    assert bg.shape == (96, 128) and bg.dtype == np.float32 and np.all(bg > 0)


def test_intensity_per_area_does_not_depend_on_the_pixel_size():
    coarse = RandomisedSpecimen(NAMES, (128, 128), 2 * PX, 11).render().sum(axis=(1, 2)) * (2 * PX) ** 2
    fine = RandomisedSpecimen(NAMES, (256, 256), PX, 11).render().sum(axis=(1, 2)) * PX**2
    np.testing.assert_allclose(coarse, fine, rtol=0.1)


def test_bleaching_follows_each_structures_time_constant():
    spec = RandomisedSpecimen(NAMES, (128, 128), PX, 5)
    before = spec.render().sum(axis=(1, 2))
    spec.time_s = REFERENCE_SPAN_S  # the clock alone: the structures have not moved
    after = spec.render().sum(axis=(1, 2))
    expected = np.array([math.exp(-REFERENCE_SPAN_S / spec.cell.style.bleach_time_s[k]) for k in spec.kinds])
    lit = before > 0
    assert lit.sum() >= 2
    np.testing.assert_allclose(after[lit] / before[lit], expected[lit], rtol=1e-5)


def test_a_visible_cell_edge_leaves_the_outside_dark():
    seed = next(s for s in range(100) if RandomisedSpecimen(NAMES, (64, 64), PX, s).cell.style.edge_radius_um > 0)
    spec = RandomisedSpecimen(NAMES, (256, 256), PX, seed)
    style = spec.cell.style
    y, x = np.mgrid[0:256, 0:256]
    r = np.hypot((x + 0.5) * PX - style.center_um[0], (y + 0.5) * PX - style.center_um[1])
    outside = r > style.edge_radius_um * 1.3 + 1.0  # beyond the wavy outline and its soft edge
    if outside.any():
        assert spec.render()[:, outside].max() < 1e-3
    inside = r < style.edge_radius_um * 0.7 - 1.0
    if inside.any():
        assert spec.background()[inside].mean() > spec.background()[outside].mean() if outside.any() else True


def test_family_example_finds_each_family():
    for kind, families in (("microtubules", MICROTUBULE_FAMILIES), ("er", ER_FAMILIES)):
        for family in families:
            seed = family_example(kind, family, FIELD)
            assert RandomisedSpecimen(NAMES, (512, 512), PX, seed).families[kind] == family


def _mean_radial_alignment(params: MicrotubuleParams, center: np.ndarray) -> float:
    """Mean |cos| between the filaments' local direction and the radial direction, 3-7 um from ``center``."""
    mts = Microtubules(FIELD, params, np.random.default_rng(0))
    cos = []
    for line in mts.centerlines():
        tangent = np.gradient(line, axis=0)
        radial = line - center
        r = np.linalg.norm(radial, axis=1)
        sel = (r > 3.0) & (r < 7.0)
        dot = np.abs((tangent[sel] * radial[sel]).sum(axis=1))
        cos.extend(dot / (np.linalg.norm(tangent[sel], axis=1) * r[sel] + 1e-12))
    return float(np.mean(cos))


def _heading_change_per_um(params: MicrotubuleParams, seed: int) -> tuple[float, float]:
    """Median |heading change| per um along the filaments, and the 99th percentile of the total turn over 5 um."""
    mts = StyledMicrotubules(FIELD, params, np.random.default_rng(seed))
    rates, turns = [], []
    for line in mts.centerlines():
        if len(line) < 110:  # at least ~5.5 um
            continue
        heading = np.unwrap(np.arctan2(*np.diff(line, axis=0).T[::-1]))
        step_um = float(np.linalg.norm(line[1] - line[0]))
        rates.append(np.abs(np.diff(heading)).mean() / step_um)
        window = round(5.0 / step_um)
        turns.extend(np.abs(heading[window:] - heading[:-window]))
    return float(np.median(rates)), float(np.percentile(turns, 99))


def test_microtubules_run_from_gently_curved_to_wavy_without_curling_up(cells):
    bends = [(c.params.microtubules, i) for i, c in enumerate(cells) if c.families["microtubules"] == "sparse"]
    stds = [p.curvature_std_per_um for p, _ in bends]
    straightest = bends[int(np.argmin(stds))]
    waviest = bends[int(np.argmax(stds))]
    calm_rate, _ = _heading_change_per_um(replace(straightest[0], length_density_um_per_um2=1.5), straightest[1])
    wavy_rate, wavy_turn = _heading_change_per_um(replace(waviest[0], length_density_um_per_um2=1.5), waviest[1])
    assert wavy_rate > 4 * calm_rate  # the waviest filaments bend far more per um than the calmest
    assert wavy_turn < 2 * np.pi  # they may turn back (an effective persistence length of ~2 um), never loop


def test_aster_filaments_point_away_from_the_centre():
    center = np.array([8.0, 8.0])
    aster = MicrotubuleParams(arrangement="aster", arrangement_center_um=(8.0, 8.0), orientation_spread_rad=0.1,
                              curvature_std_per_um=0.0, undulation_curvature_per_um=0.0)  # fmt: skip
    isotropic = MicrotubuleParams(curvature_std_per_um=0.0, undulation_curvature_per_um=0.0)
    assert _mean_radial_alignment(aster, center) > 0.95
    assert _mean_radial_alignment(isotropic, center) < 0.85  # |cos| of random directions averages 2/pi (~30 here)


def test_fenestrated_sheets_have_holes():
    grid = Grid((256, 256), PX)
    base = {"sheet_density_per_um2": 0.05, "sheet_diameter_range_um": (2.0, 3.0), "missing_edge_fraction": 0.99}
    plain = StyledER(FIELD, StyledERParams(**base), np.random.default_rng(1)).render(grid)
    holed = StyledER(FIELD, StyledERParams(**base, hole_density_per_um2=8.0), np.random.default_rng(1)).render(grid)
    assert holed.sum() < 0.97 * plain.sum()
    assert np.all(holed <= plain + 1e-5)  # holes only remove sheet membrane


def test_the_synthetic_microscope_images_the_randomised_world():
    rig = load_rig_config("hardware_configs/simulated.toml")
    mic = SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), world="randomised", seed=2, photons=300))
    truth, background = mic.specimen.render(), mic.specimen.background()
    tp = mic.next_timepoint()  # images the state just rendered, then moves on
    assert tp.raw.shape == (9, 64, 64) and tp.raw.dtype == np.uint16
    assert tp.ground_truth.shape == (3, 128, 128) and np.all(np.isfinite(tp.ground_truth))
    # The unlabelled background reaches the camera but no structure's truth.
    light = (truth.sum(axis=0).mean() + background.mean()) * tp.photon_scale
    np.testing.assert_allclose(tp.widefield.mean(), light, rtol=0.03)
    structures = truth.sum(axis=0).mean() * tp.photon_scale
    np.testing.assert_allclose(tp.ground_truth.sum(axis=0).mean(), structures, rtol=0.03)


def test_tension_straightens_a_chain_of_bends_between_two_junctions():
    # A zig-zag of three bends between two ends (0 and 4): under full tension it becomes the straight line 0-4,
    # evenly spaced; a closed ring of bends (5-7) and a loop back into its own junction (8: 9-10) stay as drawn.
    v = np.array([[0, 0], [1, 1], [2, -1], [3, 1], [4, 0],  # chain
                  [10, 10], [11, 10], [10.5, 11],  # ring
                  [20, 20], [21, 21], [19, 21], [20, 18]], dtype=float)  # fmt: skip
    tubules = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [5, 6], [6, 7], [7, 5], [8, 9], [9, 10], [10, 8], [8, 11]])
    bend = bend_vertices(tubules, np.ones(len(tubules)), len(v))
    assert list(np.flatnonzero(bend)) == [1, 2, 3, 5, 6, 7, 9, 10]
    out = straighten_bends(v, tubules, bend, tension=1.0)
    np.testing.assert_allclose(out[1:4], [[1, 0], [2, 0], [3, 0]], atol=1e-3)
    np.testing.assert_array_equal(out[[0, 4]], v[[0, 4]])  # the ends stay
    np.testing.assert_array_equal(out[5:], v[5:])
    np.testing.assert_array_equal(straighten_bends(v, tubules, bend, tension=0.0), v)
    # Half tension each sweep still converges on the line; a partial tubule at a vertex makes it a junction.
    np.testing.assert_allclose(straighten_bends(v, tubules, bend, tension=0.5)[1:4, 1], 0.0, atol=0.02)
    fractions = np.ones(len(tubules) + 1)
    fractions[-1] = 0.5
    assert not bend_vertices(np.vstack([tubules, [2, 11]]), fractions, len(v))[2]


def _bend_angles(er: StyledER) -> np.ndarray:
    """Angle between the two tubules' chords at every bend of an ER network (0 = straight through), radians."""
    pos = er.junction_positions_um()
    edges = er.edges[er.edge_fractions >= 1.0]
    bend = bend_vertices(er.edges, er.edge_fractions, len(pos))
    angles = []
    for b in np.flatnonzero(bend):
        a, c = [int(e[0] if e[1] == b else e[1]) for e in edges if b in e]
        u, w = pos[b] - pos[a], pos[c] - pos[b]
        angles.append(np.arccos(np.clip(u @ w / (np.linalg.norm(u) * np.linalg.norm(w)), -1, 1)))
    return np.array(angles)


def test_taut_er_keeps_its_junctions_and_loses_its_kinks():
    # With a third of the Voronoi edges missing, the bends kink by ~60 degrees (Voronoi corners are ~120 degrees);
    # full tension takes most of them to nearly straight, and no three-way junction moves.
    base = {"polygon_size_um": 1.0, "missing_edge_fraction": 0.35, "junction_drift_um": 0.0}
    slack = StyledER(FIELD, StyledERParams(**base), np.random.default_rng(4))
    taut = StyledER(FIELD, StyledERParams(**base, tension=1.0), np.random.default_rng(4))
    kinks_slack, kinks_taut = _bend_angles(slack), _bend_angles(taut)
    assert len(kinks_slack) > 50
    assert np.median(kinks_slack) > np.radians(40)
    assert np.median(kinks_taut) < np.radians(10)
    degree = np.bincount(taut.edges[taut.edge_fractions > 0].ravel(), minlength=len(taut.junction_positions_um()))
    junction = degree >= 3
    np.testing.assert_array_equal(taut.junction_positions_um()[junction], slack.junction_positions_um()[junction])
