from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from imcsr_live.errors import InputDataError
from imcsr_live.train.data import SampleSpec, SeparationSampler, folder_pool, synthetic_pool

NAMES = ["Microtubules", "ER", "Lysosomes"]


@pytest.fixture(scope="module")
def pool():
    return synthetic_pool(NAMES, cells=2, size=64, frames=3, seed=5)


def test_synthetic_pool_is_reproducible_and_moves(pool) -> None:
    again = synthetic_pool(NAMES, cells=2, size=64, frames=3, seed=5)
    for a, b in zip(pool.images, again.images, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.shape == (2, 3, 64, 64) and a.min() >= 0
        for cell in a:  # each cell scaled to 99.9th percentile 1 (a tiny field can hold no lysosome at all)
            assert cell.max() == 0 or np.percentile(cell, 99.9) == pytest.approx(1.0, rel=1e-3)
    mt = pool.images[0][0]
    assert not np.allclose(mt[0], mt[2])  # the specimen moves between frames
    other = synthetic_pool(NAMES, cells=2, size=64, frames=1, seed=6)
    assert not np.allclose(other.images[1][0, 0], pool.images[1][0, 0])


def test_sample_targets_add_up_to_clean_input(pool) -> None:
    sampler = SeparationSampler(pool, SampleSpec(patch=32, in_frames=3, photons=[1e9]))
    rng = np.random.default_rng(0)
    clean, targets = sampler.clean_sum_and_targets(rng)
    assert clean.shape == (3, 32, 32) and targets.shape == (3, 32, 32)
    np.testing.assert_allclose(clean[1], targets.sum(0), rtol=1e-5, atol=1e-6)
    x, y, photons = sampler.sample(np.random.default_rng(1))
    assert photons == 1e9 and x.dtype == y.dtype == np.float32
    assert np.percentile(x[1], 99.9) == pytest.approx(1.0, rel=1e-3)  # normalised input
    # At a huge photon count the input is the (Wiener-damped) sum of the targets.
    assert np.corrcoef(x[1].ravel(), y.sum(0).ravel())[0, 1] > 0.98


def test_brightness_ratios_and_single_target(pool) -> None:
    spec = SampleSpec(patch=32, in_frames=1, target=[1], brightness_range=(0.1, 10.0))
    sampler = SeparationSampler(pool, spec)
    x, y, _ = sampler.sample(np.random.default_rng(2))
    assert x.shape == (1, 32, 32) and y.shape == (1, 32, 32)
    rng = np.random.default_rng(3)
    ratios = []
    for _ in range(30):
        c = rng.integers(2)
        _, t = sampler.clean_sum_and_targets(rng, cells=[c, c, c], augment=False)
        ratios.append(t[0].sum() / max(t[1].sum(), 1e-9))
    assert np.ptp(np.log(ratios)) > 2.0  # per-structure brightness varies widely


def test_augmentation_keeps_frames_aligned(pool) -> None:
    er = type(pool)(["ER"], [pool.images[1]], "test")
    sampler = SeparationSampler(er, SampleSpec(patch=64, in_frames=3, brightness_range=(1.0, 1.0)))
    rng = np.random.default_rng(4)
    clean, _ = sampler.clean_sum_and_targets(rng, cells=[0])
    ref = er.images[0][0]  # (3, 64, 64): the patch is the whole image, so only the flip/rotation is random
    found = any(
        np.allclose(clean, np.rot90(r, k, axes=(-2, -1)), atol=1e-5) for k in range(4) for r in (ref, ref[..., ::-1])
    )
    assert found


def test_tc_needs_time_lapse_and_patch_must_fit() -> None:
    single = synthetic_pool(["ER"], cells=1, size=32, frames=1)
    with pytest.raises(InputDataError, match="temporal continuity"):
        SeparationSampler(single, SampleSpec(patch=16, in_frames=3))
    with pytest.raises(InputDataError, match="larger than the images"):
        SeparationSampler(single, SampleSpec(patch=64))


def _write(path: Path, shape: tuple[int, ...], seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.random.default_rng(seed).random(shape, dtype=np.float32))


def test_folder_pool_loads_tiff_and_mrc(tmp_path: Path) -> None:
    import mrcfile

    _write(tmp_path / "ER" / "a.tif", (40, 40))
    _write(tmp_path / "ER" / "b.tiff", (40, 40), 1)
    (tmp_path / "Microtubules").mkdir()
    with mrcfile.new(tmp_path / "Microtubules" / "c.mrc") as mrc:
        mrc.set_data(np.random.default_rng(2).random((40, 40), dtype=np.float32))
    pool = folder_pool(tmp_path, ["Microtubules", "ER"], min_size=32)
    assert [im.shape for im in pool.images] == [(1, 1, 40, 40), (2, 1, 40, 40)]
    x, y, photons = SeparationSampler(pool, SampleSpec(patch=32)).sample(np.random.default_rng(0))
    assert x.shape == (1, 32, 32) and y.shape == (2, 32, 32) and np.isnan(photons)


def test_folder_pool_errors_name_the_file(tmp_path: Path) -> None:
    _write(tmp_path / "ER" / "a.tif", (40, 40))
    _write(tmp_path / "Microtubules" / "m.tif", (40, 48))
    with pytest.raises(InputDataError, match=r"m\.tif: image is 40x48 but .*a\.tif is 40x40"):
        folder_pool(tmp_path, ["ER", "Microtubules"])
    (tmp_path / "Lysosomes").mkdir()
    (tmp_path / "Lysosomes" / "notes.txt").write_text("x")
    with pytest.raises(InputDataError, match=r"Lysosomes: structure 'Lysosomes' has no images"):
        folder_pool(tmp_path, ["ER", "Lysosomes"])
    with pytest.raises(InputDataError, match="no folder for structure 'CCPs'"):
        folder_pool(tmp_path, ["ER", "CCPs"])
    (tmp_path / "ER" / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputDataError, match=r"bad\.tif is not a readable TIFF"):
        folder_pool(tmp_path, ["ER"])
    (tmp_path / "ER" / "bad.tif").write_bytes((tmp_path / "ER" / "a.tif").read_bytes()[:2000])  # a cut-off copy
    with pytest.raises(InputDataError, match=r"bad\.tif is truncated or damaged: .*; re-copy it"):
        folder_pool(tmp_path, ["ER"])
