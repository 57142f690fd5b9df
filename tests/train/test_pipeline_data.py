"""``[data] kind = "pipeline"``: training samples made by the synthetic microscope + the real Reconstructor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.config import load_rig_config
from imcsr_live.errors import ConfigError
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.config import load_train_config
from imcsr_live.train.data import SampleSpec
from imcsr_live.train.pipeline_data import (
    EDGE_MARGIN,
    PipelineSampler,
    cached_pipeline_pool,
    pipeline_session,
    render_pipeline_pool,
)

REPO = Path(__file__).resolve().parents[2]
RIG_PATH = REPO / "hardware_configs" / "simulated.toml"
SIZE = 128


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(RIG_PATH)


@pytest.fixture(scope="module")
def pool(rig):
    return render_pipeline_pool(rig, photons=[1000.0], cells=2, size=SIZE, frames=3, seed=11, in_frames=3)


def _pcc(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_inputs_match_what_the_live_engine_gets(rig, pool) -> None:
    # The live path for the same rig and cell: microscope -> Reconstructor -> normalize_input (engine/base.py).
    mic, rec = pipeline_session(rig, 1000.0, SIZE, 11, (0.5, 2.0))
    live = np.stack([rec.reconstruct(mic.next_timepoint().raw).sr for _ in range(3)])
    m = EDGE_MARGIN  # the pool keeps the interior, where the reconstruction is not faded
    live_x, _ = normalize_input(live[:, m:-m, m:-m])
    sampler = PipelineSampler(pool, SampleSpec(patch=SIZE - 2 * EDGE_MARGIN, in_frames=3, augment=False))
    x, y, photons = sampler.sample(np.random.default_rng(0))
    inner = SIZE - 2 * m
    assert x.shape == live_x.shape == (3, inner, inner) and x.dtype == live_x.dtype == np.float32
    assert y.shape == (3, inner, inner) and y.dtype == np.float32 and photons == 1000.0
    full = [a for a, _ in sampler.iter_full()]
    np.testing.assert_allclose(
        full[0], live_x, rtol=2e-3, atol=1e-3
    )  # float16 storage  # sequence 0 is exactly that cell
    assert np.percentile(x[1], 99.9) == pytest.approx(1.0, rel=1e-3) and x.min() >= 0


def test_truth_is_aligned_and_gain_matched(pool) -> None:
    sampler = PipelineSampler(pool, SampleSpec(patch=SIZE - 2 * EDGE_MARGIN, in_frames=3, augment=False))
    for x, y in sampler.iter_full():
        s = y.sum(0)
        assert _pcc(x[1], s) > 0.5
        assert _pcc(x[1], s) > _pcc(x[1], np.roll(s, 6, axis=1)) + 0.2
        # gain-matched over the sequence: the channels add up to the input (least-squares slope ~1; without the gain ~2)
        assert float((x[1] * s).sum() / (s * s).sum()) == pytest.approx(1.0, abs=0.15)


def test_crops_and_augmentations_keep_alignment(pool) -> None:
    sampler = PipelineSampler(pool, SampleSpec(patch=32, in_frames=3, augment=True))
    rng = np.random.default_rng(3)
    pccs, shifted = [], []
    for _ in range(12):
        x, y, _ = sampler.sample(rng)
        assert x.shape == (3, 32, 32) and y.shape == (3, 32, 32)
        if y.sum(0).std() > 0:
            pccs.append(_pcc(x[1], y.sum(0)))
            shifted.append(_pcc(x[1], np.roll(y.sum(0), 5, axis=0)))
    assert np.median(pccs) > 0.5 and np.median(pccs) > np.median(shifted) + 0.2
    # one input frame for 1-frame models; a Single model gets its structure only
    x, y, _ = PipelineSampler(pool, SampleSpec(patch=32, in_frames=1, target=[1])).sample(rng)
    assert x.shape == (1, 32, 32) and y.shape == (1, 32, 32)


def test_cache_hit_skips_rendering(rig, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(tmp_path))
    calls: list[int] = []
    kw = {"photons": [300.0], "cells": 1, "size": 128, "frames": 1, "seed": 2, "brightness_range": (0.5, 2.0)}
    first, path, hit = cached_pipeline_pool(rig, "rig", on_progress=lambda d, n: calls.append(d), **kw)
    assert not hit and calls == [1] and path.is_file() and path.parent.parent == tmp_path
    again, path2, hit2 = cached_pipeline_pool(rig, "rig", on_progress=lambda d, n: calls.append(d), **kw)
    assert hit2 and path2 == path and calls == [1]
    np.testing.assert_array_equal(first.inputs, again.inputs)
    np.testing.assert_array_equal(first.truth, again.truth)
    # another rig text or photon level is another cache entry
    _, path3, hit3 = cached_pipeline_pool(rig, "other rig", **kw)
    assert not hit3 and path3 != path


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[data]\nkind = "pipeline"\nsize = 66\n')
    with pytest.raises(ConfigError, match="multiple of 4") as e:
        load_train_config(cfg)
    assert "\n" not in str(e.value)
    cfg.write_text('[data]\nkind = "pipline"\n')
    with pytest.raises(ConfigError, match=r"data\.kind"):
        load_train_config(cfg)


def _pipeline_config(tmp_path: Path, extra_train: str = "") -> Path:
    text = (REPO / "hardware_configs" / "train_tiny.toml").read_text()
    text = text.replace('output_dir = "../runs/tiny"', f'output_dir = "{tmp_path / "run"}"')
    text = text.replace('kind = "synthetic"', 'kind = "pipeline"').replace("size = 64", "size = 128")
    text = text.replace("in_frames = 1 ", "in_frames = 3 ").replace("cells = 2", "cells = 1")
    text = text.replace("photons = [100.0, 300.0, 1000.0]", f'photons = [300.0, 1000.0]\nrig = "{RIG_PATH}"')
    text = text.replace("iterations = 60", "iterations = 6").replace("val_every = 20", "val_every = 3")
    text = text.replace("checkpoint_every = 30", f"checkpoint_every = 3\n{extra_train}")
    path = tmp_path / "pipe.toml"
    path.write_text(text)
    return path


def test_tiny_pipeline_config_trains_end_to_end_and_fine_tunes(tmp_path: Path, monkeypatch) -> None:
    from imcsr_live.model.checkpoint import load_checkpoint, read_card
    from imcsr_live.train.trainer import Trainer

    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_train_config(_pipeline_config(tmp_path))
    assert cfg.data.kind == "pipeline" and cfg.model.in_frames == 3
    result = Trainer(cfg).run()
    assert result.iterations == 6 and result.best_path.with_suffix(".safetensors").is_file()
    card = read_card(result.best_path)
    assert "live pipeline" in json.dumps(card)
    pools = sorted((tmp_path / "cache" / "train-pipeline").glob("pool-*.npz"))
    assert len(pools) == 2  # train + validation, each 1 cell x 2 photon levels
    stamps = [p.stat().st_mtime_ns for p in pools]

    # Fine-tuning from that checkpoint: the pools come from the cache (not rewritten), weights start from init.
    text = _pipeline_config(tmp_path, f'init = "{result.best_path}"').read_text()
    path2 = tmp_path / "pipe2.toml"
    old_out, new_out = tmp_path / "run", tmp_path / "tuned"
    text = text.replace(f'output_dir = "{old_out}"', f'output_dir = "{new_out}"')
    path2.write_text(text.replace("iterations = 6", "iterations = 1"))
    cfg2 = load_train_config(path2)
    start, _ = load_checkpoint(result.best_path)
    import imcsr_live.train.trainer as trainer_mod

    seen = {}
    orig = trainer_mod.Trainer._init_from

    def spy(self, model):
        orig(self, model)
        seen["w"] = {k: v.clone() for k, v in model.state_dict().items()}

    monkeypatch.setattr(trainer_mod.Trainer, "_init_from", spy)
    Trainer(cfg2).run()
    for k, v in start.state_dict().items():
        assert torch.equal(seen["w"][k], v)
    assert [p.stat().st_mtime_ns for p in pools] == stamps


def test_mix_takes_the_first_cells_of_each_level_from_the_mixed_worlds_in_order(rig) -> None:
    kw = {"photons": [1000.0], "size": SIZE, "frames": 1, "brightness_range": (0.5, 2.0)}
    mixed = render_pipeline_pool(
        rig, cells=3, seed=11, world="randomised", mix={"default": 1 / 3, "independent": 1 / 3}, **kw
    )
    for k, world in enumerate(["default", "independent", "randomised"]):
        alone = render_pipeline_pool(rig, cells=1, seed=11 + k, world=world, **kw)
        np.testing.assert_array_equal(mixed.truth[k], alone.truth[0])
    assert not np.array_equal(mixed.truth[2], render_pipeline_pool(rig, cells=1, seed=13, **kw).truth[0])
    assert "1 from the default world, 1 from the independent world" in mixed.describe()


@pytest.mark.parametrize(
    ("mix", "cells", "worlds"),
    [
        ({}, 3, ["R"] * 3),
        ({"default": 0.25}, 8, ["default"] * 2 + ["R"] * 6),
        ({"default": 0.25, "independent": 0.25}, 64, ["default"] * 16 + ["independent"] * 16 + ["R"] * 32),
        ({"default": 0.5, "independent": 0.4}, 2, ["default", "R"]),  # the main world always keeps a cell
    ],
)
def test_cell_worlds_of_a_mix(mix: dict[str, float], cells: int, worlds: list[str]) -> None:
    from imcsr_live.train.pipeline_data import mixed_cell_worlds

    assert mixed_cell_worlds("R", mix, cells) == worlds


def test_a_default_only_mix_keeps_the_cache_key_of_default_fraction(rig, tmp_path: Path, monkeypatch) -> None:
    """Pools rendered with ``default_fraction`` before the general mix existed are found again, and a mix with
    another world gets a key of its own."""
    import imcsr_live.train.pipeline_data as pd

    keys: list[dict] = []
    real_path = pd.pool_cache_path
    monkeypatch.setattr(pd, "pool_cache_path", lambda key: keys.append(key) or real_path(key))
    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(tmp_path))
    empty = pd.PipelinePool(list(rig.structure_names), np.zeros((1, 1, 4, 4), np.float16),
                            np.zeros((1, 1, 3, 4, 4), np.float16), np.ones(1, np.float32), "test")  # fmt: skip
    monkeypatch.setattr(pd, "render_pipeline_pool", lambda *a, **k: empty)
    kw = {"photons": [1000.0], "cells": 1, "size": SIZE, "frames": 1, "seed": 0, "world": "randomised"}
    paths = [pd.cached_pipeline_pool(rig, "rig", mix=mix, **kw)[1] for mix in ({"default": 0.25},
             {"default": 0.25, "independent": 0.25}, {})]  # fmt: skip
    assert keys[0]["default_fraction"] == 0.25 and "mix" not in keys[0]
    assert keys[1]["mix"] == [["default", 0.25], ["independent", 0.25]] and "default_fraction" not in keys[1]
    assert "mix" not in keys[2] and "default_fraction" not in keys[2]
    assert len(set(paths)) == 3


def test_default_fraction_needs_another_world(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[data]\nkind = "pipeline"\ndefault_fraction = 0.25\n')
    with pytest.raises(ConfigError, match="default_fraction needs") as e:
        load_train_config(cfg)
    assert "\n" not in str(e.value)
    cfg.write_text('[data]\nkind = "pipeline"\nworld = "randomised"\ndefault_fraction = 0.25\n')
    data = load_train_config(cfg).data
    assert data.default_fraction == 0.25 and data.other_worlds() == {"default": 0.25}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('world = "randomised"\nmix = { randomised = 0.2 }', "mix names 'randomised', the main world"),
        ('world = "randomised"\ndefault_fraction = 0.2\nmix = { default = 0.2 }', "say the same thing"),
        ('world = "randomised"\nmix = { independent = 0.0 }', "shares must each be in"),
        ('world = "randomised"\nmix = { default = 0.5, independent = 0.5 }', "keep at most 0.9"),
        ('world = "randomised"\nmix = { heldout = 0.2 }', "mix"),  # evaluation only: never trained on
    ],
)
def test_a_bad_mix_is_one_line(tmp_path: Path, lines: str, message: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(f'[data]\nkind = "pipeline"\n{lines}\n')
    with pytest.raises(ConfigError, match=message) as e:
        load_train_config(cfg)
    assert "\n" not in str(e.value)


def test_mix_orders_the_default_world_first(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('[data]\nkind = "pipeline"\nworld = "randomised"\ndefault_fraction = 0.2\n'
                   'mix = { independent = 0.3 }\n')  # fmt: skip
    assert list(load_train_config(cfg).data.other_worlds().items()) == [("default", 0.2), ("independent", 0.3)]


_ORPHAN_SCRIPT = """
import sys, time
from imcsr_live.train.pipeline_data import render_pool

if __name__ == "__main__":
    pool = render_pool(2)
    list(pool.map(time.sleep, [0.0, 0.0]))  # both workers up
    for _ in range(2):
        pool.submit(time.sleep, 600)
    print(" ".join(str(p) for p in pool._processes), flush=True)
    time.sleep(600)
"""


def test_render_workers_end_when_their_trainer_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "trainer.py"
    script.write_text(_ORPHAN_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:  # do not leave them behind when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"render workers {left} outlived their killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
