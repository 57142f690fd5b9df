from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from imcsr_live.engine import nrmse, random_model
from imcsr_live.engine.tiling import axis_tiles, axis_weight, tile_shape, tiled_inference
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import EngineError
from imcsr_live.model.imcsr_net import IMCSRNetConfig
from tests.engine.conftest import sensitized

CAP = 64 * 64  # forces a 3x3 grid of tiles on the 96x96... window below (tiles hold the 2*16+8 px overlap)


@given(n=st.integers(8, 600), tile=st.integers(48, 300), margin=st.integers(0, 16))
@settings(max_examples=150, deadline=None)
def test_axis_tiles_cover_and_cores_partition(n, tile, margin) -> None:
    tiles = axis_tiles(n, tile, margin)
    assert tiles[0].start == 0 and tiles[-1].stop == n
    assert all(t.stop - t.start == min(tile, n) for t in tiles)
    # cores partition the axis exactly (pooled sums count every pixel once)
    assert [t.core_start for t in tiles[1:]] == [t.core_stop for t in tiles[:-1]]
    assert tiles[0].core_start == 0 and tiles[-1].core_stop == n
    # every pixel has positive total weight, and only clean pixels (>= margin from an interior edge) get weight
    total = np.zeros(n)
    for t in tiles:
        w = axis_weight(t, n, margin)
        total[t.start : t.stop] += w
        if t.start > 0:
            assert np.all(w[:margin] == 0)
        if t.stop < n:
            assert np.all(w[len(w) - margin :] == 0)
        assert t.start <= t.core_start < t.core_stop <= t.stop
    assert np.all(total > 0)


def test_tile_shape_respects_cap() -> None:
    for h, w, cap in [(1024, 1024, 512 * 512), (2048, 300, 256 * 256), (100, 100, 1 << 20)]:
        th, tw = tile_shape(h, w, cap)
        assert th * tw <= cap and th <= h and tw <= w


@pytest.fixture(scope="module")
def big_window(sr_window) -> np.ndarray:
    # 96x96 synthetic frames plus a brightness gradient, so each tile's own mean differs from the frame's
    x = np.concatenate([sr_window, sr_window[:, :, ::-1]], axis=2)[:, :, :160]
    return (x * np.linspace(0.3, 1.5, x.shape[2])[None, None, :]).astype(np.float32)


def test_global_pooling_tiles_share_frame_statistics(small_source, big_window) -> None:
    eng = TorchEngine(small_source)
    x = (big_window / np.percentile(big_window[1], 99.9))[None].astype(np.float32)
    ref = eng._infer(x)
    naive = nrmse(tiled_inference(eng, x, CAP, passes=0), ref)
    shared = nrmse(tiled_inference(eng, x, CAP), ref)
    assert shared <= 1e-5
    assert naive > 20 * shared  # per-tile pooling is measurably wrong; sharing fixes it


def test_local_pooling_tiles_match_untiled(big_window) -> None:
    cfg = IMCSRNetConfig(width=16, groups=2, blocks=2, reduction=4, pooling="local", pool_window=16)
    eng = TorchEngine(sensitized(random_model(cfg, seed=4)))
    x = (big_window / np.percentile(big_window[1], 99.9))[None].astype(np.float32)
    assert nrmse(tiled_inference(eng, x, 72 * 72), eng._infer(x)) <= 1e-5


def test_separate_tiles_above_the_cap(small_source, big_window) -> None:
    whole = TorchEngine(small_source).separate(big_window)
    tiled = TorchEngine(small_source, max_tile_pixels=CAP).separate(big_window)
    assert nrmse(tiled.channels, whole.channels) <= 1e-5


def test_opaque_engine_warns_about_per_tile_pooling(small_source, big_window, caplog) -> None:
    pytest.importorskip("onnxruntime")
    from imcsr_live.engine.ort_engine import OnnxRuntimeEngine

    eng = OnnxRuntimeEngine(small_source, max_tile_pixels=CAP)
    with caplog.at_level(logging.WARNING):
        out = eng.separate(big_window)
    assert "each tile pools over itself" in caplog.text
    assert nrmse(out.channels, TorchEngine(small_source).separate(big_window).channels) < 1e-2


def test_cap_too_small_for_receptive_field(small_source, big_window) -> None:
    with pytest.raises(EngineError, match="overlap"):
        TorchEngine(small_source, max_tile_pixels=32 * 32).separate(big_window)


class _SmallDevice(TorchEngine):
    """A torch engine on a "device" that holds at most ``limit`` pixels per call (the out-of-memory boundary)."""

    limit = 70 * 70

    def _infer(self, x, eager=False):
        from imcsr_live.engine.base import EngineOutOfMemory

        if x.shape[-2] * x.shape[-1] > self.limit:
            raise EngineOutOfMemory("simulated")
        return super()._infer(x, eager)


def test_out_of_memory_falls_back_to_tiles(small_source, big_window, caplog) -> None:
    whole = TorchEngine(small_source).separate(big_window)
    eng = _SmallDevice(small_source)
    with caplog.at_level(logging.WARNING):
        res = eng.separate(big_window)
    assert "out of device memory; tiling" in caplog.text
    assert eng.max_tile_pixels is not None and eng.max_tile_pixels <= _SmallDevice.limit
    assert nrmse(res.channels, whole.channels) <= 1e-5
    tiny = _SmallDevice(small_source)
    tiny.limit = 10
    with pytest.raises(EngineError, match="out of device memory even for tiles"):
        tiny.separate(big_window)


def test_context_branch_tiles_match_untiled(big_window) -> None:
    """The dilated context branch widens the receptive field to ~70 px: tiles get that margin, and the tiled
    result equals the untiled one."""
    cfg = IMCSRNetConfig(width=8, groups=1, blocks=2, reduction=4, pooling="local", pool_window=16, context_width=4)
    plain = random_model(cfg, seed=5)
    assert plain.net.context is not None
    with torch.no_grad():  # the projection starts at zero; give the branch a say
        plain.net.context.fuse.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(2))
    source = sensitized(plain)
    margin = source.receptive_radius()
    assert margin >= 1 + 62 + 4 + 2
    eng = TorchEngine(source)
    frames = np.tile(big_window, (1, 3, 2))  # 288 x 320: a 2 x 2 grid or more under the cap below
    x = (frames / np.percentile(frames[1], 99.9))[None].astype(np.float32)
    cap = (2 * margin + 40) ** 2
    assert len(axis_tiles(x.shape[2], tile_shape(*x.shape[2:], cap)[0], margin)) > 1
    assert nrmse(tiled_inference(eng, x, cap), eng._infer(x)) <= 1e-5
