"""Structure generators against their configured physics: sizes, widths, curvatures, speeds, dynamics."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from imcsr_live.errors import SynthError
from imcsr_live.synth.ccps import CCPParams, ClathrinCoatedPits
from imcsr_live.synth.er import EndoplasmicReticulum, ERParams
from imcsr_live.synth.lysosomes import LysosomeParams, Lysosomes
from imcsr_live.synth.microtubules import MicrotubuleParams, Microtubules
from imcsr_live.synth.render import Field, Grid

FULL_FIELD = Field(32.0, 32.0)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def fwhm(profile: np.ndarray, step: float) -> float:
    """FWHM of a single-peaked profile, linearly interpolated at the half-level crossings."""
    p = np.asarray(profile, dtype=np.float64)
    k = int(np.argmax(p))
    half = 0.5 * p[k]
    left, right = k, k
    while p[left - 1] > half:
        left -= 1
    while p[right + 1] > half:
        right += 1
    x_left = left - (p[left] - half) / (p[left] - p[left - 1])
    x_right = right + (p[right] - half) / (p[right] - p[right + 1])
    return (x_right - x_left) * step


def cross_section_fwhm(img: np.ndarray, px: float, point: np.ndarray, tangent: np.ndarray) -> float:
    """FWHM of the image across a line through ``point`` (um) with direction ``tangent``."""
    n = np.array([-tangent[1], tangent[0]]) / np.linalg.norm(tangent)
    t = np.arange(-0.15, 0.15, px / 4)
    pts = point[None, :] + t[:, None] * n[None, :]
    # map_coordinates takes (row, col) pixel coordinates; pixel centres sit at (i + 0.5) * px.
    prof = ndimage.map_coordinates(img.astype(np.float64), [pts[:, 1] / px - 0.5, pts[:, 0] / px - 0.5], order=1)
    return fwhm(prof, px / 4)


def isolated_points(points: np.ndarray, field: Field, clearance: float) -> np.ndarray:
    """Indices of ``points`` at least ``clearance`` inside the field and from every other point."""
    ok = []
    for i, p in enumerate(points):
        d = np.linalg.norm(np.delete(points, i, axis=0) - p, axis=1)
        if field.contains(p[None], -clearance)[0] and not np.any(d < clearance):
            ok.append(i)
    return np.array(ok, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------
# Microtubules


def test_microtubule_count_and_length_density_are_realistic_and_size_independent() -> None:
    counts = []
    for seed in range(3):
        mts = Microtubules(FULL_FIELD, MicrotubuleParams(), rng(seed))
        counts.append(sum(bool(FULL_FIELD.contains(line).any()) for line in mts.centerlines()))
    assert 15 <= np.mean(counts) <= 45

    def visible_density(field: Field, seeds: range) -> float:
        total = 0.0
        for s in seeds:
            mts = Microtubules(field, MicrotubuleParams(), rng(s))
            total += sum(field.contains(line).sum() for line in mts.centerlines()) * 0.05
        return total / (field.area_um2 * len(seeds))

    big = visible_density(FULL_FIELD, range(2))
    small = visible_density(Field(8.0, 8.0), range(24))
    assert small == pytest.approx(big, rel=0.3)
    assert big == pytest.approx(MicrotubuleParams().length_density_um_per_um2, rel=0.3)


def test_microtubule_curvature_and_length_within_configured_bounds() -> None:
    p = MicrotubuleParams()
    mts = Microtubules(FULL_FIELD, p, rng(3))
    assert mts.count > 10
    assert np.all((mts.lengths_um >= p.length_range_um[0]) & (mts.lengths_um <= p.length_range_um[1]))
    for step in range(3):
        kappas = mts.curvatures()
        assert max(np.abs(k).max() for k in kappas) <= p.max_curvature_per_um
        # Curvature measured from the geometry itself (turning angle per arc length) obeys the same bound.
        for line in mts.centerlines():
            seg = np.diff(line[:-1], axis=0)  # drop the (shorter) last segment
            heading = np.unwrap(np.arctan2(seg[:, 1], seg[:, 0]))
            measured = np.diff(heading) / p.sample_spacing_um
            assert np.abs(measured).max() <= 1.05 * p.max_curvature_per_um
        # "Gently curved": typical curvature well below the bound.
        assert np.median(np.abs(np.concatenate(kappas))) < 0.5 * p.max_curvature_per_um
        mts.advance(20.0 * (step + 1))


def test_microtubule_arc_length_equals_length() -> None:
    mts = Microtubules(FULL_FIELD, MicrotubuleParams(), rng(4))
    mts.advance(7.3)
    for line, length in zip(mts.centerlines(), mts.lengths_um, strict=True):
        arc = np.sum(np.linalg.norm(np.diff(line, axis=0), axis=1))
        assert arc == pytest.approx(length, rel=1e-3)


def test_microtubule_rendered_width_matches_configuration() -> None:
    # A dense, small field on a 5 nm grid: measure across filament points far from any other filament.
    field = Field(2.0, 2.0)
    p = replace(MicrotubuleParams(), length_density_um_per_um2=3.0)
    mts = Microtubules(field, p, rng(5))
    grid = Grid((400, 400), 0.005)
    img = mts.render(grid)
    lines = mts.centerlines()
    all_pts = np.concatenate(lines)
    owner = np.concatenate([np.full(len(line), i) for i, line in enumerate(lines)])
    widths = []
    for i, line in enumerate(lines):
        inside = np.flatnonzero(field.contains(line, -0.3))
        for k in inside[5:-5:10]:
            others = all_pts[owner != i]
            if len(others) and np.min(np.linalg.norm(others - line[k], axis=1)) < 0.15:
                continue
            widths.append(cross_section_fwhm(img, 0.005, line[k], line[k + 1] - line[k - 1]))
    assert len(widths) >= 3
    assert np.median(widths) == pytest.approx(p.width_um, rel=0.2)


def test_microtubule_plus_ends_grow_and_shrink_minus_ends_stay() -> None:
    p = MicrotubuleParams()
    mts = Microtubules(FULL_FIELD, p, rng(6))
    minus = np.array([line[0] for line in mts.centerlines()])
    lengths = [mts.lengths_um]
    states = [mts.growing]
    dt = 0.5  # one internal sub-step, so a step is either pure growth, pure shrinkage or one switch
    for _ in range(240):
        mts.advance(dt)
        lengths.append(mts.lengths_um)
        states.append(mts.growing)
    rates = np.diff(np.array(lengths), axis=0) / dt
    assert (rates > 0).sum() > 100 and (rates < 0).sum() > 100
    assert rates.max() <= p.growth_speed_range_um_per_s[1] + 1e-9
    assert rates.min() >= -p.shrink_speed_range_um_per_s[1] - 1e-9
    # Steps that were pure growth or pure shrinkage run at speeds inside the configured ranges.
    s = np.array(states)
    pure_grow = rates[s[:-1] & s[1:]]
    pure_shrink = rates[~s[:-1] & ~s[1:]]
    assert pure_grow.min() >= p.growth_speed_range_um_per_s[0] - 1e-9
    assert -pure_shrink.max() >= p.shrink_speed_range_um_per_s[0] - 1e-9
    catastrophes = (s[:-1] & ~s[1:]).sum()
    rescues = (~s[:-1] & s[1:]).sum()
    assert catastrophes > 10 and rescues > 10
    np.testing.assert_allclose(np.array([line[0] for line in mts.centerlines()]), minus, atol=1e-9)
    # The rest of the filament undulates slowly: it moves, but by far less than a micron per 10 s.
    before = mts.positions_at(0, np.array([5.0]))
    mts.advance(10.0)
    shift = np.linalg.norm(mts.positions_at(0, np.array([5.0])) - before)
    assert 0 < shift < 0.5


def test_microtubule_params_validation() -> None:
    with pytest.raises(SynthError, match="length_range_um"):
        MicrotubuleParams(length_range_um=(40.0, 10.0))
    with pytest.raises(SynthError, match="width_um"):
        MicrotubuleParams(width_um=0.0)


# ----------------------------------------------------------------------------------------------------------
# ER


def test_er_junctions_are_mostly_three_way_and_polygons_micron_sized() -> None:
    er = EndoplasmicReticulum(FULL_FIELD, ERParams(), rng(7))
    deg = er.junction_degrees()
    assert deg.max() <= 3
    nodes = deg[(deg > 0) & (deg != 2)]  # degree 2 is a bend in a tubule, not a junction
    assert np.mean(nodes == 3) > 0.8
    pos = er.junction_positions_um()
    e = er.edges
    length = np.linalg.norm(pos[e[:, 1]] - pos[e[:, 0]], axis=1)
    assert 0.5 < np.median(length) < 1.5  # polygons of 3-8 such sides are ~1-3 um across
    # Complete Voronoi network without missing edges: every inner junction is three-way.
    full = EndoplasmicReticulum(FULL_FIELD, replace(ERParams(), missing_edge_fraction=0.0), rng(7))
    inner = full.field.contains(full.junction_positions_um(), -2.0)
    assert np.all(full.junction_degrees()[inner] == 3)


def test_er_tubule_width_and_sheet_sizes() -> None:
    p = ERParams()
    field = Field(3.0, 3.0)
    er = EndoplasmicReticulum(field, replace(p, sheet_density_per_um2=0.0), rng(8))
    img = er.render(Grid((600, 600), 0.005))
    pos = er.junction_positions_um()
    curves = er.tubule_curves()
    widths = []
    for curve in curves:
        mid = curve[len(curve) // 2]
        # Far from junctions (and so from other tubules) and inside the field.
        if not field.contains(mid[None], -0.2)[0] or np.min(np.linalg.norm(pos - mid, axis=1)) < 0.25:
            continue
        widths.append(cross_section_fwhm(img, 0.005, mid, curve[len(curve) // 2 + 1] - curve[len(curve) // 2 - 1]))
    assert len(widths) >= 3
    assert np.median(widths) == pytest.approx(p.tubule_width_um, rel=0.2)

    er = EndoplasmicReticulum(FULL_FIELD, replace(p, sheet_density_per_um2=0.02), rng(9))
    d = er.sheet_diameters_um
    assert len(d) > 5
    assert np.all((d >= p.sheet_diameter_range_um[0]) & (d <= p.sheet_diameter_range_um[1]))


def test_er_junctions_slide_and_tubules_close_rings_and_retract() -> None:
    p = replace(ERParams(), ring_closure_rate_per_s=0.02)
    er = EndoplasmicReticulum(FULL_FIELD, p, rng(10))
    start = er.junction_positions_um()
    frac0 = er.edge_fractions
    saw_partial = False
    for _ in range(60):
        er.advance(2.0)
        f = er.edge_fractions
        saw_partial |= bool(np.any((f > 0) & (f < 1)))
    f = er.edge_fractions
    assert saw_partial
    assert np.sum((frac0 == 0) & (f == 1)) > 10  # rings closed
    assert np.sum((frac0 == 1) & (f == 0)) > 5  # tubules retracted
    assert np.mean(f == 0) == pytest.approx(p.missing_edge_fraction, abs=0.06)  # stationary
    rms = np.sqrt(np.mean(np.sum((er.junction_positions_um() - start) ** 2, axis=1)))
    assert 0.03 < rms < 0.5
    # Smooth drift: over a short step the junctions move much less than over the whole run.
    before = er.junction_positions_um()
    er.advance(0.5)
    small = np.sqrt(np.mean(np.sum((er.junction_positions_um() - before) ** 2, axis=1)))
    assert small < 0.2 * rms


# ----------------------------------------------------------------------------------------------------------
# Lysosomes


def test_lysosome_sizes_from_parameters_and_rendered_objects() -> None:
    p = replace(LysosomeParams(), density_per_um2=0.1, directed_fraction=0.0, ring_fraction=0.8)
    field = Field(14.0, 14.0)
    mts = Microtubules(field, MicrotubuleParams(), rng(11))
    lyso = Lysosomes(field, p, rng(12), mts)
    d = lyso.diameters_um
    assert lyso.count > 5
    assert np.all((d >= 0.2) & (d <= 0.8))
    assert lyso.is_ring.any() and (~lyso.is_ring).any()
    px = 0.014
    img = lyso.render(Grid((1000, 1000), px))
    pos = lyso.positions_um()
    yy, xx = np.mgrid[:1000, :1000]
    xx = (xx + 0.5) * px
    yy = (yy + 0.5) * px
    checked = {True: 0, False: 0}
    for i in range(lyso.count):
        gap = np.linalg.norm(pos - pos[i], axis=1) - 0.5 * (d + d[i])  # edge-to-edge distances
        gap[i] = np.inf
        if not field.contains(pos[i][None], -(0.5 * d[i] + 0.3))[0] or np.any(gap < 0.3):
            continue
        r = np.hypot(xx - pos[i, 0], yy - pos[i, 1])
        near = r < 0.5 * d[i] + 0.15
        if lyso.is_ring[i]:
            bins = np.arange(0, 0.5 * d[i] + 0.15, px)
            which = np.digitize(r[near], bins)
            prof = np.bincount(which, img[near], len(bins) + 1) / np.maximum(np.bincount(which, None, len(bins) + 1), 1)
            outer = bins[int(np.argmax(prof)) - 1] + 0.5 * px + 0.5 * p.ring_thickness_um
            assert outer == pytest.approx(0.5 * d[i], abs=0.02)
        else:
            r2 = np.sum(img[near] * r[near] ** 2) / np.sum(img[near])
            s2 = p.edge_softness_um**2 + (0.5 * px) ** 2
            assert 2 * math.sqrt(2 * (r2 - 2 * s2)) == pytest.approx(d[i], rel=0.1)
        checked[bool(lyso.is_ring[i])] += 1
    assert checked[True] >= 2 and checked[False] >= 2, checked


def test_directed_lysosomes_ride_tracks_at_configured_speeds() -> None:
    p = replace(
        LysosomeParams(),
        directed_fraction=1.0,
        pause_rate_per_s=0.0,
        reversal_rate_per_s=0.0,
        track_switch_rate_per_s=0.0,
    )
    field = Field(16.0, 16.0)
    mts = Microtubules(field, MicrotubuleParams(), rng(13))
    lyso = Lysosomes(field, p, rng(14), mts)
    assert lyso.is_directed.all() and lyso.count > 5
    dt = 0.5
    track = [lyso.positions_um()]
    for _ in range(20):
        mts.advance(dt)
        lyso.advance(dt)
        track.append(lyso.positions_um())
    steps = np.linalg.norm(np.diff(np.array(track), axis=0), axis=2) / dt  # (T, n)
    speed = np.median(steps, axis=0)
    lo, hi = p.directed_speed_range_um_per_s
    assert np.all((speed >= 0.9 * lo) & (speed <= 1.1 * hi))
    np.testing.assert_allclose(speed, lyso.speeds_um_per_s, rtol=0.1)
    # They sit on their filaments.
    pts, _, _ = mts.track_points()
    for q in track[-1]:
        assert np.min(np.linalg.norm(pts - q, axis=1)) < 0.05


def test_lysosomes_pause_and_switch_tracks() -> None:
    p = replace(LysosomeParams(), directed_fraction=1.0, track_switch_rate_per_s=0.5, density_per_um2=0.3)
    field = Field(16.0, 16.0)
    mts = Microtubules(field, MicrotubuleParams(), rng(15))
    lyso = Lysosomes(field, p, rng(16), mts)
    tracks0 = lyso._track.copy()
    paused = 0
    for _ in range(40):
        mts.advance(0.5)
        lyso.advance(0.5)
        paused += int(lyso.paused.sum())
    assert paused > 0
    assert np.sum(lyso._track != tracks0) > 3


def test_directed_lysosomes_do_not_drain_out_of_the_field() -> None:
    # Tracks reach ~20 um beyond the field; carriers turn back at the rim, so the view keeps its lysosomes.
    field = Field(10.0, 10.0)
    p = replace(LysosomeParams(), directed_fraction=1.0, density_per_um2=0.3)
    mts = Microtubules(field, MicrotubuleParams(), rng(22))
    lyso = Lysosomes(field, p, rng(23), mts)
    start = field.contains(lyso.positions_um(), 1.0).sum()
    for _ in range(60):
        mts.advance(5.0)
        lyso.advance(5.0)
    assert field.contains(lyso.positions_um(), 1.0).sum() >= 0.6 * start
    assert field.contains(lyso.positions_um(), 2.5).all()


def test_diffusing_lysosomes_msd_matches_4dt() -> None:
    d_coef = 0.005
    p = replace(
        LysosomeParams(),
        directed_fraction=0.0,
        density_per_um2=1.0,
        diffusion_range_um2_per_s=(d_coef, d_coef),
    )
    field = Field(16.0, 16.0)
    mts = Microtubules(field, MicrotubuleParams(), rng(17))
    lyso = Lysosomes(field, p, rng(18), mts)
    assert lyso.count > 200 and not lyso.is_directed.any()
    start = lyso.positions_um()
    msd = []
    for _ in range(10):
        lyso.advance(1.0)
        msd.append(np.mean(np.sum((lyso.positions_um() - start) ** 2, axis=1)))
    t = np.arange(1, 11, dtype=float)
    slope = np.sum(np.array(msd) * t) / np.sum(t * t)  # least-squares line through the origin
    # Standard error of the MSD over n particles is ~ MSD / sqrt(n): ~6 % here.
    assert slope == pytest.approx(4 * d_coef, rel=0.2)


# ----------------------------------------------------------------------------------------------------------
# CCPs


def test_ccp_sizes_from_parameters_and_rendered_objects() -> None:
    p = replace(CCPParams(), density_per_um2=0.5, brightness_sigma=0.0)
    field = Field(5.0, 5.0)
    ccps = ClathrinCoatedPits(field, p, rng(19))
    d = ccps.diameters_um
    assert ccps.count > 5 and np.all((d >= 0.1) & (d <= 0.2))
    # Render at full intensity to measure the geometry (intensity ramps are tested separately).
    ccps._age = ccps._lifetime * 0.9
    px = 0.005
    img = ccps.render(Grid((1000, 1000), px))
    pos = ccps.positions_um()
    checked = 0
    for i in isolated_points(pos, field, 0.35):
        lo = np.floor((pos[i] - 0.2) / px).astype(int)
        win = img[lo[1] : lo[1] + 80, lo[0] : lo[0] + 80]
        yy, xx = np.mgrid[: win.shape[0], : win.shape[1]]
        dx = (xx + lo[0] + 0.5) * px - pos[i, 0]
        dy = (yy + lo[1] + 0.5) * px - pos[i, 1]
        r2 = np.sum(win * (dx**2 + dy**2)) / win.sum()
        s2 = p.edge_softness_um**2 + (0.5 * px) ** 2
        assert 2 * math.sqrt(2 * (r2 - 2 * s2)) == pytest.approx(d[i], rel=0.1)
        checked += 1
    assert checked >= 3


def test_ccps_are_born_and_die_at_the_steady_state_rates() -> None:
    p = CCPParams()
    field = Field(16.0, 16.0)
    ccps = ClathrinCoatedPits(field, p, rng(20))
    area = (16.0 + 0.6) ** 2
    n0 = ccps.count
    assert n0 == pytest.approx(p.density_per_um2 * area, rel=0.3)
    seen = set(ccps.ids.tolist())
    alive = set(seen)
    births = deaths = 0
    for _ in range(120):
        ccps.advance(1.0)
        now = set(ccps.ids.tolist())
        births += len(now - alive)
        deaths += len(alive - now)
        alive = now
    expected = p.density_per_um2 * area / (np.mean(p.lifetime_range_s) + p.scission_fade_s) * 120
    assert births == pytest.approx(expected, rel=0.35)
    assert deaths == pytest.approx(expected, rel=0.35)
    assert ccps.count == pytest.approx(p.density_per_um2 * area, rel=0.35)


def test_ccp_intensity_ramps_up_then_drops_and_pits_stay_put() -> None:
    p = CCPParams()
    ccps = ClathrinCoatedPits(Field(8.0, 8.0), p, rng(21))
    first_new_id = int(ccps.ids.max()) + 1
    while ccps.ids.max() < first_new_id:  # wait for a birth
        ccps.advance(0.5)
    pit = first_new_id
    k = int(np.flatnonzero(ccps.ids == pit)[0])
    start = ccps.positions_um()[k]
    life = float(ccps.lifetimes_s[k])
    assert p.lifetime_range_s[0] <= life <= p.lifetime_range_s[1]
    ages, levels = [], []
    last = start
    while pit in ccps.ids:
        k = int(np.flatnonzero(ccps.ids == pit)[0])
        ages.append(float(ccps.ages_s[k]))
        levels.append(float(ccps.intensities()[k]))
        last = ccps.positions_um()[k]
        ccps.advance(0.5)
    age, lev = np.array(ages), np.array(levels)
    growing = age < p.assembly_fraction * life
    assert lev[0] < 0.05 and np.all(np.diff(lev[growing]) >= 0)
    plateau = (age > p.assembly_fraction * life) & (age <= life)
    assert plateau.any() and np.allclose(lev[plateau], 1.0)
    assert lev[-1] < 0.3  # dropped at scission
    assert life + p.scission_fade_s - 0.6 <= age[-1] <= life + p.scission_fade_s
    assert np.linalg.norm(last - start) < 0.3  # roughly stationary over its whole life


def test_structure_params_validation() -> None:
    with pytest.raises(SynthError, match="missing_edge_fraction"):
        ERParams(missing_edge_fraction=1.0)
    with pytest.raises(SynthError, match="diameter_range_um"):
        LysosomeParams(diameter_range_um=(0.8, 0.2))
    with pytest.raises(SynthError, match="lifetime_range_s"):
        CCPParams(lifetime_range_s=(0.0, 10.0))
