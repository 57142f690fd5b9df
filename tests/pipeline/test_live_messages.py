"""What a live run tells the operator: a too-slow machine, one timepoint numbering, no warm-up before an input
error, each recording message once. Real parts: simulated microscope, SIM reconstruction, torch engine."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import RigConfig, load_rig_config
from imcsr_live.engine.base import Engine, Progress, Separated
from imcsr_live.engine.model_source import random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import CameraTimeoutError, InputDataError
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.runs import RunOptions, run_live_pipeline
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"
TINY = IMCSRNetConfig(in_frames=1, out_channels=3, width=8, groups=1, blocks=1, reduction=2)


@pytest.fixture
def rig() -> RigConfig:
    rig = load_rig_config(SIMULATED)
    rig.engine.kind = "torch-cpu"
    return rig


def small_backend(rig: RigConfig) -> SimulatedBackend:
    return SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2))


def tiny_checkpoint(rig: RigConfig, folder: Path) -> Path:
    stem = folder / "tiny"
    save_checkpoint(stem, IMCSRNet(TINY), structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return stem


class SlowEngine:
    """A real engine, ``delay_s`` slower per separation: a machine too slow for the interval."""

    def __init__(self, inner: TorchEngine, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.source = inner.source  # the model card (confidence reference)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def precision(self) -> str:
        return self.inner.precision

    def separate(self, window: np.ndarray) -> Separated:
        time.sleep(self.delay_s)
        return self.inner.separate(window)

    def warmup(self, shape: tuple[int, int], progress: Progress | None = None) -> None:
        self.inner.warmup(shape, progress)


def test_a_machine_slower_than_the_interval_is_warned_about_once_with_the_fix(rig) -> None:
    engine: Engine = SlowEngine(TorchEngine(random_model(TINY, seed=0)), delay_s=0.6)
    settings = PipelineSettings(interval_s=0.2, timepoints=5, in_frames=1)
    pipeline = LivePipeline(small_backend(rig), Reconstructor(rig), engine, settings)
    pipeline.start()
    assert pipeline.wait(300)
    pipeline.stop()
    warnings = [e for e in pipeline.events if "per timepoint but the interval is" in e]
    assert len(warnings) == 1, list(pipeline.events)
    match = re.search(r"separation takes ([\d.]+) s per timepoint but the interval is 0.2 s, .*: use a smaller "
                      r"field, a GPU, a lighter model or an interval of ([\d.]+) s", warnings[0])  # fmt: skip
    assert match is not None, warnings[0]
    took, advised = float(match[1]), float(match[2])
    assert took >= 0.6 and advised > took  # the advised interval leaves room
    assert f"interval_s = {advised:g}" in warnings[0]


def test_timepoints_are_numbered_k_of_n_in_every_message(rig, tmp_path) -> None:
    backend = small_backend(rig)
    real = backend.acquire_sim_stack
    calls = {"n": 0}

    def flaky(timeout_s: float | None = None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise CameraTimeoutError("camera delivered 4 of 9 frames")
        return real(timeout_s)

    backend.acquire_sim_stack = flaky  # type: ignore[method-assign]
    lines: list[str] = []
    options = RunOptions(headless=True, frames=3, interval_s=0.0, model=tiny_checkpoint(rig, tmp_path))
    run_live_pipeline(rig, options, lines.append, "test", backend=backend)
    progress = [line for line in lines if line.startswith("timepoint ")]
    assert [line.split()[:2] for line in progress] == [["timepoint", "1/3"], ["timepoint", "3/3"]]
    assert any(re.fullmatch(r"event: \S+ timepoint 2/3: camera delivered 4 of 9 frames", line) for line in lines)
    numbers = re.findall(r"timepoint (\S+)", "\n".join(lines))
    assert numbers and all(re.fullmatch(r"[1-3]/3:?", n) for n in numbers), numbers
    assert not any("per timepoint but the interval" in line for line in lines)  # free-running: nothing to keep up


def test_a_taken_recording_path_is_refused_before_the_engine_warm_up(rig, tmp_path) -> None:
    taken = tmp_path / "run.ome.zarr"
    taken.mkdir()
    progress: list[str] = []
    backend = small_backend(rig)
    request = LiveRequest(model=tiny_checkpoint(rig, tmp_path), timepoints=2, record=taken)
    with pytest.raises(InputDataError, match="already exists; choose another recording path"):
        build_live_pipeline(rig, request, backend=backend, progress=lambda message, _: progress.append(message))
    assert progress == []  # no warm-up lines (a progress display) before the error
    assert backend.world is None  # closed again


def test_recording_start_and_stop_are_left_to_the_caller_to_say(rig, tmp_path) -> None:
    """The record button says "recording to ..." / "recording finished ..." in the log panel; the pipeline's own
    log (which the panel shows too) must not say it again."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("imcsr_live.pipeline.live")
    level = logger.level
    logger.setLevel(logging.DEBUG)  # as under the app's logging set-up: INFO and up reach the panel
    logger.addHandler(handler)
    try:
        request = LiveRequest(model=tiny_checkpoint(rig, tmp_path), timepoints=None, interval_s=0.0)
        pipeline = build_live_pipeline(rig, request, backend=small_backend(rig))
        pipeline.start()
        try:
            pipeline.start_recording(tmp_path / "mid.ome.zarr")
            deadline = time.monotonic() + 120
            while pipeline.recorder is not None and pipeline.recorder.written < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            recorder = pipeline.stop_recording()
        finally:
            pipeline.stop()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert recorder is not None and recorder.written >= 1
    assert [r.getMessage() for r in records if "recording" in r.getMessage()] == []
