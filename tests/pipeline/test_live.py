"""Live pipeline end to end on real parts: simulated microscope -> SIM reconstruction -> torch engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.engine.model_source import random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import CameraTimeoutError
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.model import IMCSRNetConfig
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"
TINY = IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2)


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


def make_pipeline(rig, timepoints: int, in_frames: int = 3, backend=None) -> LivePipeline:
    cfg = TINY.model_copy(update={"in_frames": in_frames})
    return LivePipeline(
        backend or SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2)),
        Reconstructor(rig),
        TorchEngine(random_model(cfg, seed=0)),
        PipelineSettings(interval_s=0.0, timepoints=timepoints, in_frames=in_frames),
    )


def wait_for(condition, timeout_s: float = 120.0) -> None:
    """Wait for ``condition`` (generously: a busy machine only takes longer; no timing is asserted)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.01)


def test_every_timepoint_is_separated_in_order_off_the_gui_thread(rig) -> None:
    pipeline = make_pipeline(rig, timepoints=4)
    seen: list[tuple[int, str]] = []
    pipeline.display.subscribe(
        lambda: seen.append((pipeline.display.latest()[0].index, threading.current_thread().name))
    )
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    assert [i for i, _ in seen] == [0, 1, 2, 3]  # TC: the last one comes from the flush at the end
    assert {name for _, name in seen} == {"separation"}
    frame, _ = pipeline.display.latest()
    assert frame.separated.channels.shape == (3, 128, 128)
    assert frame.recon.sr.shape == (128, 128)
    assert pipeline.stats.acquired == pipeline.stats.separated == 4
    medians = pipeline.stats.medians_ms()
    assert set(medians) == {"acquire", "reconstruct", "separate", "end_to_end", "last_raw_to_display"}
    assert all(v >= 0 for v in medians.values())
    assert medians["end_to_end"] >= medians["reconstruct"] + medians["separate"]


def test_hardware_errors_are_reported_and_the_run_goes_on(rig) -> None:
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2))
    real = backend.acquire_sim_stack
    calls = {"n": 0}

    def flaky(timeout_s: float | None = None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise CameraTimeoutError("camera delivered 4 of 9 frames")
        return real(timeout_s)

    backend.acquire_sim_stack = flaky  # type: ignore[method-assign]
    pipeline = make_pipeline(rig, timepoints=3, in_frames=1, backend=backend)
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    assert pipeline.stats.errors == 1 and pipeline.stats.failed == 1 and pipeline.failure is None
    assert any("camera delivered 4 of 9" in e for e in pipeline.events)
    assert pipeline.stats.separated == 2  # the failed timepoint counts toward the 3: the run ends after 3 tries


def test_stop_mid_run_joins_every_thread(rig) -> None:
    pipeline = make_pipeline(rig, timepoints=None)
    pipeline.start()
    while pipeline.stats.separated < 1:
        threading.Event().wait(0.01)
    pipeline.stop()
    assert not pipeline.running
    assert pipeline.backend.world is None  # closed
    assert np.isfinite(pipeline.display.latest()[0].separated.channels).all()


def test_recording_carries_separated_raw_sr_and_provenance(rig, tmp_path: Path) -> None:
    import json

    from imcsr_live.io.zarr import channel_names, read_ome_zarr
    from imcsr_live.pipeline.recorder import Recorder
    from imcsr_live.pipeline.recording import ModelIdentity, record_item, recording_plan

    pipeline = make_pipeline(rig, timepoints=3)
    identity = ModelIdentity(
        pipeline.engine.source.name, pipeline.engine.source.weights_sha256, pipeline.engine.name, "fp32"
    )
    path = tmp_path / "run.ome.zarr"
    pipeline.recorder = Recorder(recording_plan(rig, path, (64, 64), identity, expected_timepoints=3))
    pipeline.record_item = record_item
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    separated, attributes = read_ome_zarr(path)
    raw, _ = read_ome_zarr(path / "raw")
    sr, _ = read_ome_zarr(path / "sr")
    assert separated.shape == (3, 3, 128, 128) and raw.shape == (3, 9, 64, 64) and sr.shape == (3, 128, 128)
    assert channel_names(attributes) == rig.structure_names
    meta = attributes["imcsr_live"]
    assert meta["model"]["weights_sha256"] == pipeline.engine.source.weights_sha256
    assert meta["engine"]["kind"] == "torch-cpu"
    assert meta["rig_config_toml"] == SIMULATED.read_text()
    assert meta["timepoints_separated"] == 3 and meta["dropped_frames"]["record"] == 0
    lines = [json.loads(line) for line in Path(f"{path}.timepoints.jsonl").read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert len(lines[0]["recon_params"]["k0_cycles_per_um"]) == 3
    assert raw.min() > 0 and np.isfinite(separated).all()


def test_pause_stops_acquiring_and_resume_continues(rig) -> None:
    pipeline = make_pipeline(rig, timepoints=None, in_frames=1)
    pipeline.settings = PipelineSettings(interval_s=0.05, timepoints=None, in_frames=1)
    pipeline.start()
    while pipeline.stats.separated < 1:
        threading.Event().wait(0.01)
    pipeline.pause()
    # once a slot has been skipped for the pause, the acquisition in flight (if any) has finished
    wait_for(lambda: pipeline.stats.paused_slots >= 1)
    acquired, paused = pipeline.stats.acquired, pipeline.stats.paused_slots
    wait_for(lambda: pipeline.stats.paused_slots >= paused + 3)  # three more slots came and went ...
    assert pipeline.paused and pipeline.stats.acquired == acquired  # ... and none of them acquired
    pipeline.resume()
    deadline = time.monotonic() + 60
    while pipeline.stats.acquired == acquired and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    pipeline.stop()
    assert pipeline.stats.acquired > acquired


def test_recording_started_and_stopped_mid_run(rig, tmp_path: Path) -> None:
    import json

    from imcsr_live.errors import InputDataError
    from imcsr_live.io.zarr import read_ome_zarr

    pipeline = recording_pipeline(rig, tmp_path)
    pipeline.display_settings = {"channels": [{"name": "ER", "color": "#FF00FF"}]}
    pipeline.start()
    try:
        while pipeline.stats.separated < 2:
            threading.Event().wait(0.01)
        path = tmp_path / "mid.ome.zarr"
        recorder = pipeline.start_recording(path, {"display": {"note": "at start"}})
        with pytest.raises(InputDataError, match="already running"):
            pipeline.start_recording(tmp_path / "other.ome.zarr")
        with pytest.raises(InputDataError, match="stop the recording"):
            pipeline.set_interval(1.0)
        deadline = time.monotonic() + 60
        while recorder.written < 6 and time.monotonic() < deadline:  # more than expected: the file grows
            threading.Event().wait(0.01)
        assert pipeline.stop_recording() is recorder and not pipeline.recording_active
        written, separated = recorder.written, pipeline.stats.separated
        wait_for(lambda: pipeline.stats.separated >= separated + 3)  # three more timepoints went by ...
        assert recorder.written == written and not recorder.active  # ... and none was written after stop
        pipeline.set_interval(0.1)  # allowed again
    finally:
        pipeline.stop()
    separated, attributes = read_ome_zarr(path)
    assert separated.shape == (written, 3, 128, 128) and written >= 6
    meta = attributes["imcsr_live"]
    assert meta["display"] == {"channels": [{"name": "ER", "color": "#FF00FF"}]}  # the settings at the stop
    assert meta["timepoints_recorded"] == written
    indices = [json.loads(line)["index"] for line in Path(f"{path}.timepoints.jsonl").read_text().splitlines()]
    assert len(indices) == written and indices[0] >= 2  # started mid-run


def test_errors_are_structured_by_kind(rig) -> None:
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2))

    def broken(timeout_s: float | None = None):
        raise CameraTimeoutError("no frames")

    backend.acquire_sim_stack = broken  # type: ignore[method-assign]
    pipeline = make_pipeline(rig, timepoints=None, in_frames=1, backend=backend)
    pipeline.settings = PipelineSettings(interval_s=0.02, timepoints=None, in_frames=1)
    pipeline.start()
    while len(pipeline.errors) < 2:
        threading.Event().wait(0.01)
    pipeline.stop()
    first, second = list(pipeline.errors)[:2]
    assert (first.seq, second.seq) == (1, 2) and first.kind == "hardware" and "no frames" in str(first)


def recording_pipeline(rig, tmp_path: Path) -> LivePipeline:
    from imcsr_live.pipeline.recording import ModelIdentity, record_item
    from imcsr_live.pipeline.session import RecorderFactory

    pipeline = make_pipeline(rig, timepoints=None, in_frames=1)
    pipeline.settings = PipelineSettings(interval_s=0.05, timepoints=None, in_frames=1)
    identity = ModelIdentity("tiny", pipeline.engine.source.weights_sha256, pipeline.engine.name, "fp32")
    pipeline.recorder_factory = RecorderFactory(rig, (64, 64), identity, expected_timepoints=4)
    pipeline.record_item = record_item
    return pipeline


def test_stop_waits_for_a_recording_that_is_still_finishing(rig, tmp_path: Path) -> None:
    """Window closed while the record button's helper thread finalises: stop() returns only once it is final."""
    from imcsr_live.io.zarr import read_ome_zarr

    pipeline = recording_pipeline(rig, tmp_path)
    pipeline.start()
    path = tmp_path / "closing.ome.zarr"
    try:
        while pipeline.stats.separated < 1:
            threading.Event().wait(0.01)
        recorder = pipeline.start_recording(path)
        while recorder.written < 1:
            threading.Event().wait(0.01)
        real_stop = recorder.stop
        finishing = threading.Event()

        def slow_stop(*args, **kwargs) -> None:  # a slow disk: draining and finalising take a while
            finishing.set()
            threading.Event().wait(2.0)
            real_stop(*args, **kwargs)

        recorder.stop = slow_stop  # type: ignore[method-assign]
        finisher = threading.Thread(target=pipeline.stop_recording, name="recording-stop")
        finisher.start()
        assert finishing.wait(60)  # the helper thread is finalising when the window closes
    finally:
        pipeline.stop()
    assert recorder.stopped_s is not None  # finalised before stop() returned
    separated, attributes = read_ome_zarr(path)
    assert attributes["imcsr_live"]["timepoints_recorded"] == recorder.written == separated.shape[0]
    finisher.join(10)


def test_a_recording_started_after_an_interval_change_has_the_new_time_increment(rig, tmp_path: Path) -> None:
    from imcsr_live.io.zarr import read_ome_zarr

    pipeline = recording_pipeline(rig, tmp_path)
    pipeline.start()
    path = tmp_path / "dt.ome.zarr"
    try:
        pipeline.set_interval(0.2)
        recorder = pipeline.start_recording(path)
        while recorder.written < 1:
            threading.Event().wait(0.01)
        pipeline.stop_recording()
    finally:
        pipeline.stop()
    _, attributes = read_ome_zarr(path)
    scale = attributes["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[0] == 0.2


def test_no_recording_starts_once_the_run_has_ended(rig, tmp_path: Path) -> None:
    from imcsr_live.errors import InputDataError

    pipeline = recording_pipeline(rig, tmp_path)
    pipeline.settings = PipelineSettings(interval_s=0.0, timepoints=1, in_frames=1)
    pipeline.start()
    assert pipeline.wait(120)
    with pytest.raises(InputDataError, match="run has ended"):
        pipeline.start_recording(tmp_path / "late.ome.zarr")
    pipeline.stop()
    assert not (tmp_path / "late.ome.zarr").exists() and pipeline.recorder is None


def test_stop_ends_every_stage_even_when_the_camera_driver_hangs(rig) -> None:
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2))
    real = backend.acquire_sim_stack
    release = threading.Event()
    calls = {"n": 0}

    def hangs_on_the_third(timeout_s: float | None = None):
        calls["n"] += 1
        if calls["n"] >= 3:
            release.wait(60)  # a driver call that ignores abort()
        return real(timeout_s)

    backend.acquire_sim_stack = hangs_on_the_third  # type: ignore[method-assign]
    pipeline = make_pipeline(rig, timepoints=None, in_frames=1, backend=backend)
    pipeline.start()
    while calls["n"] < 3:
        threading.Event().wait(0.01)
    pipeline.stop(timeout_s=1.0)
    acquisition, reconstruction, separation = pipeline._threads
    assert acquisition.is_alive() and not reconstruction.is_alive() and not separation.is_alive()
    assert any("did not stop" in str(e) for e in pipeline.errors)
    assert pipeline.stats.separated == 2  # what was acquired before the hang is still finished
    release.set()
    acquisition.join(30)
