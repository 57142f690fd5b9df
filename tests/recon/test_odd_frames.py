"""Tiny, odd-sized and saturated raw frames: one clear error or warning, and a failure never breaks the next stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import imcsr_live.recon.reconstructor as reconstructor_module
from imcsr_live.config import load_rig_config
from imcsr_live.errors import InputDataError
from imcsr_live.recon.preprocess import saturation_warnings
from imcsr_live.recon.reconstructor import Reconstructor

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def _stack(ny: int, nx: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(300, 1200, (9, ny, nx)).astype(np.uint16)


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (127, 127), (64, 63)])
def test_tiny_or_odd_frames_are_one_clear_error_and_the_reconstructor_stays_usable(rig, shape) -> None:
    rec = Reconstructor(rig)
    for _ in range(2):  # the second attempt gets the same message, not an AssertionError
        with pytest.raises(InputDataError, match="even-sized and at least 64 x 64"):
            rec.reconstruct(_stack(*shape))
    assert rec.raw_shape is None
    assert rec.reconstruct(_stack(64, 64)).sr.shape == (128, 128)


def test_a_failed_setup_leaves_no_half_built_size(rig, monkeypatch: pytest.MonkeyPatch) -> None:
    real = reconstructor_module.WienerReconstructor
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise MemoryError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(reconstructor_module, "WienerReconstructor", flaky)
    rec = Reconstructor(rig)
    with pytest.raises(MemoryError, match="out of memory"):
        rec.reconstruct(_stack(64, 64))
    assert rec.raw_shape is None
    assert rec.reconstruct(_stack(64, 64)).sr.shape == (128, 128)  # tries again instead of an AssertionError


def test_frames_beyond_free_memory_are_refused_before_building(rig, monkeypatch: pytest.MonkeyPatch) -> None:
    import imcsr_live.config as config_module

    monkeypatch.setattr(config_module, "available_memory_bytes", lambda: 1 << 20)
    with pytest.raises(InputDataError, match="GiB of memory"):
        Reconstructor(rig).reconstruct(_stack(64, 64))


@pytest.mark.parametrize(
    ("stack", "level"),
    [
        (np.full((9, 64, 64), 65535, np.uint16), "65535"),
        (np.full((9, 64, 64), 4095, np.uint16), "4095"),  # a 12-bit camera stored as uint16
        (np.full((9, 64, 64), 4095.0, np.float32), "4095"),  # converted to float on the way
    ],
)
def test_all_saturated_frames_are_flagged(stack: np.ndarray, level: str) -> None:
    warnings = saturation_warnings(stack)
    assert warnings and "saturated" in warnings[0] and level in warnings[0]


def test_ordinary_frames_are_not_flagged() -> None:
    assert saturation_warnings(_stack(64, 64)) == ()


def test_reconstruct_cli_on_tiny_frames_is_one_line(tmp_path: Path) -> None:
    raw = tmp_path / "tiny.tif"
    tifffile.imwrite(raw, _stack(4, 4))
    result = subprocess.run(
        [sys.executable, "-m", "imcsr_live", "reconstruct", str(raw), "-c", str(SIMULATED),
         "-o", str(tmp_path / "sr.tif")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "64 x 64" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.tif"]  # no all-zero SR file left behind
