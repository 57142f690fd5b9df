"""The independent evaluation world: contract, determinism, scale, statistics within the documented ranges, motion."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.errors import SynthError
from imcsr_live.synth import independent as ind
from imcsr_live.synth.independent import IndependentSpecimen

ALL = ["Microtubules", "ER", "Lysosomes"]
SR_UM = 0.0313


def _spec(seed: int, structures=ALL, shape=(256, 256), px: float = 2 * SR_UM) -> IndependentSpecimen:
    return IndependentSpecimen(structures, shape, px, seed=np.random.default_rng(seed))


def _segment_distance(points: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest of the segments p0-p1."""
    d = p1 - p0
    rel = points[:, None, :] - p0[None]
    t = np.clip((rel * d[None]).sum(-1) / np.maximum((d * d).sum(-1), 1e-12)[None], 0, 1)
    return np.hypot(*(rel - t[..., None] * d[None]).transpose(2, 0, 1)).min(axis=1)


def _filament_segments(spec: IndependentSpecimen) -> tuple[np.ndarray, np.ndarray]:
    mts = spec.microtubules
    xy = mts.positions()
    a = np.flatnonzero((mts.ident[:-1] == mts.ident[1:]) & (mts.s[:-1] < mts.length[mts.ident[:-1]]))
    return xy[a], xy[a + 1]


def test_render_contract_and_channel_order() -> None:
    spec = _spec(3, ["Lysosomes", "Microtubules", "ER"], shape=(128, 96))
    truth = spec.render()
    assert truth.shape == (3, 128, 96) and truth.dtype == np.float32
    assert np.isfinite(truth).all() and truth.min() >= 0
    assert (truth.reshape(3, -1).max(axis=1) > 0.1).all()
    assert spec.time_s == 0.0
    bg = spec.background()
    assert bg.shape == (128, 96) and bg.dtype == np.float32 and bg.min() >= 0
    # channels follow the requested order, and a structure looks the same whatever else is requested
    alone = [_spec(3, [name], shape=(128, 96)).render()[0] for name in ("Lysosomes", "Microtubules", "ER")]
    for k in range(3):
        np.testing.assert_array_equal(truth[k], alone[k])


def test_same_seed_same_cell_and_timelapse_different_seed_different_cell() -> None:
    a, b, c = _spec(11, shape=(128, 128)), _spec(11, shape=(128, 128)), _spec(12, shape=(128, 128))
    np.testing.assert_array_equal(a.render(), b.render())
    for s in (a, b):
        s.advance(2.0)
        s.advance(2.0)
    np.testing.assert_array_equal(a.render(), b.render())
    np.testing.assert_array_equal(a.background(), b.background())
    assert not np.allclose(_spec(11, shape=(128, 128)).render(), c.render())


def test_geometry_does_not_depend_on_the_pixel_size() -> None:
    coarse = _spec(5, shape=(256, 256), px=2 * SR_UM)
    fine = _spec(5, shape=(512, 512), px=SR_UM)
    np.testing.assert_allclose(coarse.lysosome_centres_um(), fine.lysosome_centres_um(), atol=1e-9)
    np.testing.assert_allclose(coarse.microtubules.xy, fine.microtubules.xy, atol=1e-9)
    np.testing.assert_allclose(coarse.er.nodes, fine.er.nodes, atol=1e-9)
    tc, tf = coarse.render(), fine.render()
    # the same intensity per um^2 (densities, not per-pixel sums), channel by channel
    np.testing.assert_allclose(tc.mean(axis=(1, 2)), tf.mean(axis=(1, 2)), rtol=0.03)
    # and the same picture once both are brought to one grid and blurred a little
    binned = tf.reshape(3, 256, 2, 256, 2).mean(axis=(2, 4))
    from scipy import ndimage

    for c in range(3):
        x, y = ndimage.gaussian_filter(tc[c], 1.5), ndimage.gaussian_filter(binned[c], 1.5)
        assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.97
    np.testing.assert_allclose(coarse.background().mean(), fine.background().mean(), rtol=0.01)


def test_isolated_structures_peak_near_one_on_the_sr_grid() -> None:
    px, rng = SR_UM, np.random.default_rng(0)
    for rho, sigma in [
        (ind.MT_LINE_DENSITY, ind.MT_SIGMA_UM),
        (ind.ER_DENSITY_PER_WIDTH * ind.ER_BIN_WIDTH_UM[1], ind.ER_BIN_WIDTH_UM[1] / 4),
    ]:
        tops, totals = [], []
        for _ in range(6):
            buf = np.zeros((160, 160), np.float32)
            angle = rng.uniform(0, np.pi)
            half = 1.5 * np.array([np.cos(angle), np.sin(angle)])
            centre = np.array([2.5, 2.5]) + rng.uniform(-0.05, 0.05, 2)
            r = np.array([rho])
            ind._splat_segments(buf, (centre - half)[None], (centre + half)[None], r, r, px, (5.0, 5.0))
            img = ind._blur(buf, sigma, px)
            n_line = int(3.0 / px * max(abs(np.cos(angle)), abs(np.sin(angle))))
            tops.append(np.sort(img.ravel())[-n_line:].mean())
            totals.append(img.sum() * px * px)
        assert 0.8 < np.mean(tops) < 1.25
        np.testing.assert_allclose(totals, rho * 3.0, rtol=1e-4)  # intensity x um per um of length, exactly


def test_counts_and_ranges_over_many_cells_match_the_documentation() -> None:
    mt_counts, lyso_counts, bright, on_frac, near_frac, edges = [], [], [], [], [], []
    for seed in range(14):
        spec = _spec(seed, ["Microtubules", "Lysosomes"])  # a 16 um field
        assert spec.width_um == pytest.approx(16.0256)
        n_mt = int(spec.microtubules.in_field(spec.width_um, spec.height_um).sum())
        assert n_mt <= 360
        if not spec.cell.has_edge:
            assert n_mt >= 28
        mt_counts.append(n_mt)
        lyso = spec.lysosomes
        assert 15 <= lyso.count <= 60
        lyso_counts.append(lyso.count)
        assert (lyso.diameter_um >= 0.15).all() and (lyso.diameter_um <= 0.8).all()
        assert (lyso.diameter_um[lyso.ring] > 0.3).all()
        assert lyso.brightness.max() / lyso.brightness.min() <= 5.0
        bright.append(lyso.brightness)
        assert all(0.5 <= b <= 2.0 for b in spec.brightness.values())
        # cargo sits exactly on a filament's path; count how many of all lysosomes lie near one
        centres = spec.lysosome_centres_um()
        p0, p1 = _filament_segments(spec)
        dist = _segment_distance(centres, p0, p1)
        n_on = len(lyso.mt)
        assert (dist[:n_on] < 1e-3).all()
        on_frac.append(n_on / lyso.count)
        near_frac.append(float((dist < 0.06).mean()))
        edges.append(spec.cell.has_edge)
    assert max(mt_counts) / min(mt_counts) > 3  # sparse to dense
    assert max(lyso_counts) - min(lyso_counts) >= 15
    pooled = np.concatenate(bright)
    assert pooled.max() / pooled.min() > 4.5  # the documented ~5x spread
    assert 0.38 < np.mean(on_frac) < 0.62  # about half ride on microtubules
    assert np.mean(on_frac) <= np.mean(near_frac) < 0.85
    assert 0 < sum(edges) < len(edges)  # some fields show a cell edge, others do not


def test_er_network_has_junctions_dangling_ends_and_brighter_junctions() -> None:
    spec = _spec(4, ["ER"], shape=(512, 512), px=SR_UM)
    er = spec.er
    assert 0.3 <= er.mesh_um <= 2.0
    deg = er.degree
    assert (deg == 1).sum() > 0 and (deg >= 3).sum() > 0
    ends_and_junctions = deg[(deg != 2) & (deg > 0)]
    assert (ends_and_junctions >= 3).mean() > 0.65  # mostly three-way junctions, some dangling ends
    assert 0.045 <= er.width_um.min() and er.width_um.max() <= 0.14
    img = spec.render()[0] / spec.brightness["er"]
    pts = spec.er.smooth @ er.nodes
    inner = pts[er.segments[len(er.segments) // 3 :: 7]]  # points along tubules

    def sample(xy: np.ndarray) -> np.ndarray:
        ij = np.floor(xy / SR_UM).astype(int)
        ok = (ij >= 2).all(1) & (ij < 510).all(1)
        ij = ij[ok]
        return np.array([img[i - 1 : i + 2, j - 1 : j + 2].max() for j, i in ij])

    assert np.median(sample(er.nodes[er.junctions])) > 1.2 * np.median(sample(inner))
    for seed in range(3):
        s = _spec(seed, ["ER"], shape=(64, 64), px=0.25)  # the same 16 um field, coarse: geometry only
        assert 0.45 <= s.er.mesh_um <= 1.5
        for sheet in s.er.sheets:
            assert (sheet.hole_r >= 0.05 * 0.7 - 1e-9).all() and (sheet.hole_r <= 0.15 * 1.4 + 1e-9).all()


def test_cell_edge_leaves_the_outside_empty_and_background_small() -> None:
    seen_edge = seen_plain = False
    for seed in range(5):
        spec = _spec(seed, shape=(128, 128), px=0.125)  # 16 um field, coarse grid
        truth, bg = spec.render(), spec.background()
        y, x = (np.mgrid[0:128, 0:128] + 0.5) * 0.125
        depth = spec.cell.edge_distance(x, y)
        inside_level = bg[depth > 1.0].mean()
        assert 0.008 < inside_level < 0.06  # 1-5 % of the structures' ~1 peak
        if not spec.cell.has_edge:
            seen_plain = True
            continue
        seen_edge = True
        outside = depth < -1.0
        if outside.sum() < 200:
            continue
        assert truth[:, outside].max() == 0.0
        assert bg[outside].mean() < 0.35 * inside_level
    assert seen_edge and seen_plain


def test_motion_between_timepoints() -> None:
    spec = _spec(2, shape=(256, 256))
    first = spec.render()
    lyso0 = spec.lysosome_centres_um()
    nodes0 = spec.er.nodes.copy()
    spec.advance(0.05)
    small = spec.render()
    spec.advance(1.95)
    assert spec.time_s == pytest.approx(2.0)
    big = spec.render()
    for c in range(3):
        d_small = np.abs(small[c] - first[c]).sum()
        d_big = np.abs(big[c] - first[c]).sum()
        assert d_big > 0
        assert d_small < 0.6 * d_big
    moved = np.hypot(*(spec.lysosome_centres_um() - lyso0).T)
    n_on = len(spec.lysosomes.mt)
    assert moved[:n_on].max() > 0.5  # runs along microtubules at 0.5-2 um/s
    assert moved[:n_on].max() < 2.0 * 2.0 + 0.2
    assert 0 < np.median(moved[n_on:]) < 0.3  # free ones only diffuse
    er_step = np.hypot(*(spec.er.nodes - nodes0).T)
    assert 0 < np.sqrt((er_step**2).mean()) < 0.3  # junctions drift slowly
    assert np.linalg.norm(spec.offset_um) <= 0.015 * 2.0 + 1e-12  # whole-field drift <= 15 nm/s


@pytest.mark.parametrize("name", ["CCPs", "Mitochondria"])
def test_structures_it_cannot_make_are_refused_in_one_clear_line(name: str) -> None:
    with pytest.raises(SynthError, match=r"independent synthetic world cannot make .*microtubules, er, lysosomes"):
        IndependentSpecimen(["ER", name], (64, 64), SR_UM, seed=np.random.default_rng(0))
