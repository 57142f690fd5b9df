"""Drops and skipped slots of the live pipeline are counted exactly, in the stats and in the recording's metadata.

Real parts (simulated microscope, SIM reconstruction, torch engine, OME-Zarr recorder) behind thin wrappers that
hold one call until the test releases it. The acquisition grid runs on a fake clock that only the backend moves
(one interval per timepoint, more for an overrun), and every acquisition after the first waits for a condition on
the pipeline, so which timepoint meets a full queue is decided by the test, not by the machine's speed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.engine.model_source import random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.io.zarr import read_ome_zarr
from imcsr_live.model import IMCSRNetConfig
from imcsr_live.pipeline import live
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.pipeline.recorder import Recorder, RecordItem
from imcsr_live.pipeline.recording import ModelIdentity, record_item, recording_plan
from imcsr_live.pipeline.scheduler import IntervalScheduler
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"
TINY = IMCSRNetConfig(in_frames=1, out_channels=3, width=8, groups=1, blocks=1, reduction=2)
INTERVAL_S = 1.0  # on the fake clock
PATIENCE_S = 120.0  # a generous bound on waiting for a condition (a busy CI machine), never a timing assertion

Predicate = Callable[[], bool]


def wait_until(condition: Predicate, what: str, timeout_s: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        threading.Event().wait(0.005)


class FakeClock:
    """Monotonic seconds for the acquisition grid that move only when the backend says an acquisition took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class PacedBackend(SimulatedBackend):
    """The simulated microscope; acquisition ``k`` first waits for ``gates[k]``, then takes ``slots.get(k, 1)``
    intervals of the fake clock (more than one = an overrun that makes the grid skip slots)."""

    def __init__(self, rig, clock: FakeClock, gates: dict[int, Predicate], slots: dict[int, int] | None = None):
        super().__init__(rig, WorldSettings(raw_shape=(64, 64), seed=2))
        self.clock, self.gates, self.slots = clock, gates, slots or {}
        self.calls = 0

    def acquire_sim_stack(self, timeout_s: float | None = None):
        k = self.calls
        self.calls += 1
        if k in self.gates:
            wait_until(self.gates[k], f"the condition for acquisition {k}")
        stack = super().acquire_sim_stack(timeout_s)
        self.clock.now += self.slots.get(k, 1) * INTERVAL_S
        return stack


class Hold:
    """Holds the first call of a stage until :meth:`release`; ``entered`` is set once that call is being held."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._release = threading.Event()
        self._first = True

    def __call__(self) -> None:
        if self._first:
            self._first = False
            self.entered.set()
            self._release.wait(PATIENCE_S)

    def release(self) -> None:
        self._release.set()


class HeldReconstructor:
    def __init__(self, reconstructor: Reconstructor, hold: Hold) -> None:
        self._reconstructor, self._hold = reconstructor, hold

    def reconstruct(self, raw, index: int | None = None):
        self._hold()
        return self._reconstructor.reconstruct(raw, index)


class HeldEngine:
    """A torch engine whose first ``separate`` is held (everything else, e.g. ``source``, passes through)."""

    def __init__(self, engine: TorchEngine, hold: Hold) -> None:
        self._engine, self._hold = engine, hold

    @property
    def name(self) -> str:
        return self._engine.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._engine, attribute)

    def separate(self, window):
        self._hold()
        return self._engine.separate(window)


class HeldRecorder(Recorder):
    """A recorder on a slow disk: writing the first timepoint is held."""

    hold: Hold

    def _write(self, item: RecordItem) -> None:
        self.hold()
        super()._write(item)


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(live, "IntervalScheduler", lambda interval_s: IntervalScheduler(interval_s, clock=fake))
    return fake


def build(
    rig,
    tmp_path: Path,
    backend: PacedBackend,
    timepoints: int,
    reconstruct_hold: Hold | None = None,
    separate_hold: Hold | None = None,
    record_hold: Hold | None = None,
) -> LivePipeline:
    """A run of ``timepoints`` on a grid of ``INTERVAL_S`` with hand-over queues of one, recording from the start."""
    reconstructor: Any = Reconstructor(rig)
    if reconstruct_hold is not None:
        reconstructor = HeldReconstructor(reconstructor, reconstruct_hold)
    torch_engine = TorchEngine(random_model(TINY, seed=0))
    engine: Any = torch_engine if separate_hold is None else HeldEngine(torch_engine, separate_hold)
    identity = ModelIdentity("tiny", torch_engine.source.weights_sha256, torch_engine.name, "fp32")
    plan = recording_plan(rig, tmp_path / "run.ome.zarr", (64, 64), identity, timepoints, INTERVAL_S)
    if record_hold is None:
        recorder = Recorder(plan)
    else:
        HeldRecorder.hold = record_hold
        recorder = HeldRecorder(replace(plan, queue_size=1))
    settings = PipelineSettings(interval_s=INTERVAL_S, timepoints=timepoints, in_frames=1, queue_size=1)
    return LivePipeline(backend, reconstructor, engine, settings, recorder=recorder, record_item=record_item)


def dropped_events(pipeline: LivePipeline, stage: str) -> int:
    return sum(e.endswith(f"dropped: {stage} is behind") for e in list(pipeline.events))


def recording_of(path: Path) -> tuple[dict[str, Any], list[int]]:
    """The recording's metadata and the slots it holds, read back from disk."""
    separated, attributes = read_ome_zarr(path)
    slots = [json.loads(line)["index"] for line in Path(f"{path}.timepoints.jsonl").read_text().splitlines()]
    assert separated.shape[0] == len(slots)
    return attributes["imcsr_live"], slots


def finish(pipeline: LivePipeline, *holds: Hold) -> None:
    for hold in holds:
        hold.release()
    try:
        assert pipeline.wait(PATIENCE_S)
    finally:
        pipeline.stop()


def test_timepoints_meeting_a_busy_reconstruction_are_dropped_and_counted(rig, tmp_path: Path, clock) -> None:
    hold = Hold()
    # 0 is held in reconstruction, 1 waits in the queue, 2 and 3 find it full
    backend = PacedBackend(rig, clock, gates={1: hold.entered.is_set})
    pipeline = build(rig, tmp_path, backend, timepoints=4, reconstruct_hold=hold)
    pipeline.start()
    try:
        wait_until(lambda: dropped_events(pipeline, "reconstruction") == 2, "two reconstruction drops")
    finally:
        finish(pipeline, hold)
    stats = pipeline.stats
    assert stats.dropped == {"reconstruct": 2, "separate": 0, "record": 0}
    assert (stats.acquired, stats.reconstructed, stats.separated, stats.skipped_slots) == (4, 2, 2, 0)
    meta, slots = recording_of(tmp_path / "run.ome.zarr")
    assert meta["dropped_frames"] == {"reconstruct": 2, "separate": 0, "record": 0}
    assert meta["timepoints_acquired"] == 4 and meta["timepoints_recorded"] == 2 and meta["skipped_slots"] == 0
    assert slots == [0, 1]


def test_timepoints_meeting_a_busy_separation_are_dropped_and_counted(rig, tmp_path: Path, clock) -> None:
    hold = Hold()
    # 0 is held in separation, 1 waits in the queue, 2 and 3 find it full (each reaches reconstruction alone)
    gates = {
        1: hold.entered.is_set,
        2: lambda: pipeline.stats.reconstructed >= 2,
        3: lambda: pipeline.stats.reconstructed >= 3,
    }
    backend = PacedBackend(rig, clock, gates)
    pipeline = build(rig, tmp_path, backend, timepoints=4, separate_hold=hold)
    pipeline.start()
    try:
        wait_until(lambda: dropped_events(pipeline, "separation") == 2, "two separation drops")
    finally:
        finish(pipeline, hold)
    stats = pipeline.stats
    assert stats.dropped == {"reconstruct": 0, "separate": 2, "record": 0}
    assert (stats.acquired, stats.reconstructed, stats.separated, stats.skipped_slots) == (4, 4, 2, 0)
    meta, slots = recording_of(tmp_path / "run.ome.zarr")
    assert meta["dropped_frames"] == {"reconstruct": 0, "separate": 2, "record": 0}
    assert meta["timepoints_separated"] == 2 and meta["timepoints_recorded"] == 2
    assert slots == [0, 1]


def test_timepoints_meeting_a_slow_disk_are_dropped_from_the_recording_and_counted(rig, tmp_path: Path, clock) -> None:
    hold = Hold()
    # 0 is held by the writer, 1 waits in the recorder's queue, 2 and 3 find it full (separation is never behind)
    gates = {
        1: hold.entered.is_set,
        2: lambda: pipeline.stats.separated >= 2,
        3: lambda: pipeline.stats.separated >= 3,
    }
    backend = PacedBackend(rig, clock, gates)
    pipeline = build(rig, tmp_path, backend, timepoints=4, record_hold=hold)
    pipeline.start()
    try:
        assert pipeline.wait(PATIENCE_S)  # every timepoint separated and offered to the recorder
    finally:
        finish(pipeline, hold)
    stats = pipeline.stats
    assert stats.dropped == {"reconstruct": 0, "separate": 0, "record": 2}
    assert (stats.acquired, stats.separated, stats.skipped_slots) == (4, 4, 0)
    meta, slots = recording_of(tmp_path / "run.ome.zarr")
    assert meta["dropped_frames"] == {"reconstruct": 0, "separate": 0, "record": 2}
    assert meta["timepoints_recorded"] == 2 and meta["timepoints_dropped_by_recorder"] == 2
    assert slots == [0, 1]


def test_overrunning_acquisitions_skip_grid_slots_and_count_them(rig, tmp_path: Path, clock) -> None:
    # acquisition 1 takes three intervals (slots 2 and 3 pass), acquisition 3 two (slot 6 passes)
    gates = {k: (lambda k=k: pipeline.stats.separated >= k) for k in range(1, 5)}  # never a drop
    backend = PacedBackend(rig, clock, gates, slots={1: 3, 3: 2})
    pipeline = build(rig, tmp_path, backend, timepoints=5)
    pipeline.start()
    finish(pipeline)
    stats = pipeline.stats
    assert stats.skipped_slots == 3 and stats.paused_slots == 0
    assert stats.dropped == {"reconstruct": 0, "separate": 0, "record": 0}
    assert stats.acquired == stats.separated == 5
    meta, slots = recording_of(tmp_path / "run.ome.zarr")
    assert meta["skipped_slots"] == 3 and meta["timepoints_recorded"] == 5
    assert slots == [0, 1, 4, 5, 7]  # the time axis stays truthful: slot = time / interval
