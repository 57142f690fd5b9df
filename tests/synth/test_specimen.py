"""The specimen as a whole: naming, channels, determinism, pixel-size independence, density scaling."""

from __future__ import annotations

import re

import numpy as np
import pytest

from imcsr_live.errors import SynthError
from imcsr_live.synth.specimen import STRUCTURE_KINDS, Specimen, SpecimenParams, structure_kind

SR_PIXEL_UM = 0.0313
ALL = ("Microtubules", "ER", "Lysosomes", "CCPs")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Microtubules", "microtubules"),
        ("microtubule", "microtubules"),
        ("MTs", "microtubules"),
        ("tubulin", "microtubules"),
        ("alpha-Tubulin (488)", "microtubules"),
        ("ER", "er"),
        ("er", "er"),
        ("Endoplasmic reticulum", "er"),
        ("Sec61b", "er"),
        ("Lysosomes", "lysosomes"),
        ("Lyso", "lysosomes"),
        ("LAMP1", "lysosomes"),
        ("LAMP1-mEmerald", "lysosomes"),
        ("CCPs", "ccps"),
        ("Clathrin-coated pits", "ccps"),
        ("clathrin", "ccps"),
        ("  ccp ", "ccps"),
    ],
)
def test_structure_kind_maps_display_names(name: str, kind: str) -> None:
    assert structure_kind(name) == kind
    assert kind in STRUCTURE_KINDS


@pytest.mark.parametrize("name", ["F-actin", "Mitochondria", "", "nucleus"])
def test_structure_kind_rejects_unknown_with_one_line_message(name: str) -> None:
    with pytest.raises(SynthError, match=re.escape(repr(name))) as info:
        structure_kind(name)
    msg = str(info.value)
    assert "\n" not in msg
    assert repr(name) in msg
    for known in ("Microtubules", "ER", "Lysosomes", "CCPs"):
        assert known in msg


def test_render_channels_follow_structure_order() -> None:
    sp = Specimen(["ER", "Lysosomes", "MTs", "CCPs"], (256, 256), SR_PIXEL_UM, seed=1)
    assert sp.structures == ("ER", "Lysosomes", "MTs", "CCPs")
    assert sp.kinds == ("er", "lysosomes", "microtubules", "ccps")
    img = sp.render()
    assert img.shape == (4, 256, 256) and img.dtype == np.float32
    assert np.all(np.isfinite(img)) and img.min() >= 0
    for c in range(4):
        assert img[c].max() > 0.1, sp.structures[c]
    # Each channel is its own structure: the same kinds in another order give the same channels permuted.
    other = Specimen(["CCPs", "MTs", "ER", "Lysosomes"], (256, 256), SR_PIXEL_UM, seed=1).render()
    np.testing.assert_array_equal(other[[2, 3, 1, 0]], img)


def test_bright_pixels_are_of_order_one_on_the_sr_grid() -> None:
    sp = Specimen(ALL, (512, 512), SR_PIXEL_UM, seed=2)
    img = sp.render()
    for c, kind in enumerate(sp.kinds):
        peak = np.percentile(img[c][img[c] > 0.05 * img[c].max()], 95) / sp.cell_brightness[kind]
        assert 0.3 < peak < 3.0, kind
    lo, hi = SpecimenParams().cell_brightness_range
    assert all(lo <= f <= hi for f in sp.cell_brightness.values())


def test_same_seed_is_bit_identical_and_different_seeds_differ() -> None:
    def run(seed: int | np.random.Generator) -> np.ndarray:
        sp = Specimen(ALL, (192, 192), SR_PIXEL_UM, seed=seed)
        for dt in (2.0, 2.0, 0.7, 5.0):
            sp.advance(dt)
        assert sp.time_s == pytest.approx(9.7)
        return sp.render()

    a, b = run(5), run(5)
    np.testing.assert_array_equal(a, b)
    c = run(6)
    for ch in range(len(ALL)):
        assert not np.array_equal(a[ch], c[ch])
    np.testing.assert_array_equal(run(np.random.default_rng(3)), run(np.random.default_rng(3)))


def test_large_steps_are_taken_in_small_substeps() -> None:
    a = Specimen(ALL, (128, 128), SR_PIXEL_UM, seed=8)
    b = Specimen(ALL, (128, 128), SR_PIXEL_UM, seed=8)
    a.advance(10.0)
    for _ in range(40):
        b.advance(0.25)
    np.testing.assert_array_equal(a.render(), b.render())
    assert a.time_s == pytest.approx(b.time_s)


def test_structures_move_between_frames() -> None:
    sp = Specimen(ALL, (256, 256), SR_PIXEL_UM, seed=7)
    first = sp.render()
    sp.advance(10.0)
    second = sp.render()
    for c in range(len(ALL)):
        change = np.abs(second[c] - first[c]).sum() / first[c].sum()
        assert change > 0.02, sp.structures[c]
    # ... but stay the same specimen: still strongly correlated after 2 s.
    sp.advance(2.0)
    third = sp.render()
    for c in (0, 1):  # the network structures move little in 2 s
        assert np.corrcoef(second[c].ravel(), third[c].ravel())[0, 1] > 0.5


def test_geometry_is_independent_of_pixel_size() -> None:
    coarse = Specimen(ALL, (256, 256), SR_PIXEL_UM, seed=11)
    fine = Specimen(ALL, (512, 512), SR_PIXEL_UM / 2, seed=11)
    for sp in (coarse, fine):
        sp.advance(3.0)
    for a, b in zip(coarse.microtubules.centerlines(), fine.microtubules.centerlines(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(coarse.er.junction_positions_um(), fine.er.junction_positions_um(), atol=1e-9)
    np.testing.assert_allclose(coarse.lysosomes.positions_um(), fine.lysosomes.positions_um(), atol=1e-9)
    np.testing.assert_allclose(coarse.ccps.positions_um(), fine.ccps.positions_um(), atol=1e-9)
    # The fine rendering, binned 2 x 2, is the coarse one (up to the slightly sharper anti-aliasing).
    c = coarse.render()
    f = fine.render().reshape(len(ALL), 256, 2, 256, 2).mean(axis=(2, 4))
    for ch in range(len(ALL)):
        assert c[ch].sum() > 0, ALL[ch]
        np.testing.assert_allclose(f[ch].sum(), c[ch].sum(), rtol=0.02)
        assert np.corrcoef(f[ch].ravel(), c[ch].ravel())[0, 1] > 0.9


def test_adding_structures_does_not_change_the_others() -> None:
    alone = Specimen(["Microtubules"], (192, 192), SR_PIXEL_UM, seed=4)
    mixed = Specimen(["ER", "Microtubules", "Lysosomes"], (192, 192), SR_PIXEL_UM, seed=4)
    for sp in (alone, mixed):
        sp.advance(4.0)
    np.testing.assert_array_equal(alone.render()[0], mixed.render()[1])


def test_lysosomes_alone_still_ride_unrendered_microtubules() -> None:
    sp = Specimen(["Lysosomes"], (256, 256), SR_PIXEL_UM, seed=9)
    assert sp.microtubules is not None and sp.microtubules.count > 0
    assert sp.lysosomes is not None and sp.lysosomes.is_directed.any()
    img = sp.render()
    assert img.shape == (1, 256, 256)
    sp.advance(2.0)
    assert sp.render().shape == (1, 256, 256)


def test_object_counts_scale_with_field_area() -> None:
    params = SpecimenParams()
    kinds = ["ER", "Lysosomes", "CCPs"]

    def densities(shape: tuple[int, int], seeds: range) -> dict[str, float]:
        counts = {"lysosomes": 0, "ccps": 0, "er": 0}
        area = 0.0
        for s in seeds:
            sp = Specimen(kinds, shape, SR_PIXEL_UM, seed=s)
            fld = sp.grid.field
            area += fld.area_um2
            counts["lysosomes"] += fld.contains(sp.lysosomes.positions_um()).sum()
            counts["ccps"] += fld.contains(sp.ccps.positions_um()).sum()
            counts["er"] += fld.contains(sp.er.junction_positions_um()).sum()
        return {k: v / area for k, v in counts.items()}

    small = densities((256, 256), range(40))  # 8 x 8 um fields
    big = densities((1024, 1024), range(3))  # 32 x 32 um fields
    # Poisson counts of ~100+ objects per side: 30 % is > 3 standard errors.
    for d in (small, big):
        assert d["lysosomes"] == pytest.approx(params.lysosomes.density_per_um2, rel=0.3)
        assert d["ccps"] == pytest.approx(params.ccps.density_per_um2, rel=0.3)
    assert small["er"] == pytest.approx(big["er"], rel=0.15)
    # Realistic numbers for a 32 x 32 um field.
    assert 20 <= big["lysosomes"] * 1024 <= 60
    assert 50 <= big["ccps"] * 1024 <= 150


def test_specimen_input_errors() -> None:
    with pytest.raises(SynthError, match="F-actin"):
        Specimen(["Microtubules", "F-actin"], (64, 64), SR_PIXEL_UM, seed=0)
    with pytest.raises(SynthError, match="only once"):
        Specimen(["Microtubules", "tubulin"], (64, 64), SR_PIXEL_UM, seed=0)
    with pytest.raises(SynthError, match="at least one"):
        Specimen([], (64, 64), SR_PIXEL_UM, seed=0)
    with pytest.raises(SynthError, match="pixel size"):
        Specimen(["ER"], (64, 64), 0.0, seed=0)
    with pytest.raises(SynthError, match="seed"):
        Specimen(["ER"], (64, 64), SR_PIXEL_UM, seed=-1)
    sp = Specimen(["ER"], (64, 64), SR_PIXEL_UM, seed=0)
    with pytest.raises(SynthError, match="time step"):
        sp.advance(-1.0)
    with pytest.raises(SynthError, match="time step"):
        sp.advance(float("nan"))
    with pytest.raises(SynthError, match="no Lysosomes"):
        sp.generator("Lysosomes")
    with pytest.raises(SynthError, match="cell_brightness_range"):
        SpecimenParams(cell_brightness_range=(2.0, 0.5))
