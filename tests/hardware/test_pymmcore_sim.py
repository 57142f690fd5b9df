"""The simulated SIM rig through the real MMCore (pymmcore-plus UniMMCore, mm-test-adapters, Python devices)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import (
    CameraTimeoutError,
    DeviceMissingError,
    FrameSlipError,
    HardwareConfigError,
    PixelTypeError,
)
from imcsr_live.hardware import MicroscopeBackend, create_backend
from imcsr_live.hardware.mmcore_backends import PymmcorePlusBackend
from imcsr_live.hardware.training import acquire_training_timepoint
from imcsr_live.synth.forward import pattern_frame

from .conftest import SIM_DEMO_CFG, SIM_DEMO_TOML, SIZE

ORDER = list(range(9))


@pytest.mark.parametrize("burst", ["triggered", "software"])
def test_burst_pattern_order_from_metadata(sim_rig, sim_core, burst) -> None:
    sim_rig.backend.burst = burst
    backend = PymmcorePlusBackend(sim_rig, core=sim_core)
    assert isinstance(backend, MicroscopeBackend)
    with backend:
        for index in range(2):
            stack = backend.acquire_sim_stack()
            assert stack.frames.shape == (9, SIZE, SIZE) and stack.frames.dtype == np.uint16
            assert stack.pattern_indices == ORDER and stack.resyncs == 0 and not stack.reordered
            assert stack.index == index and stack.info["mode"] == burst
            assert stack.t_end_s >= stack.t_start_s
        if burst == "triggered":  # per-frame camera metadata from the real sequence buffer
            assert [m.tags["SLM-SequencePosition"] for m in stack.meta] == [str(i) for i in ORDER]
            numbers = [m.image_number for m in stack.meta]
            assert numbers == list(range(numbers[0], numbers[0] + 9))
            assert all(m.camera_time_ms is not None for m in stack.meta)
    assert sim_core.getShutterOpen() is False  # the burst leaves the sample dark


def test_frames_show_the_specimen_under_each_pattern(sim_rig, sim_core) -> None:
    """Bright, noisy 300-photon frames whose modulated part matches the forward model for that pattern."""
    sim_core.setProperty("SimCam", "Photons", 2000)
    with PymmcorePlusBackend(sim_rig, core=sim_core) as backend:
        stack = backend.acquire_sim_stack()
        world = sim_core._pydevices["SimCam"]._world  # the camera's own specimen: the truth to compare with
        wf, bands = world.bands(tuple(range(3)))
    frames = stack.frames.astype(np.float64) - 100.0  # camera offset
    nominal = world.forward.pattern.nominal_phases_rad()
    for i in ORDER:
        a, p = divmod(i, 3)
        model = pattern_frame(wf, bands[a], 0.8, nominal[a, p]).astype(np.float64)
        # The modulated part (frame - widefield) correlates with the model's for the right pattern only.
        own = np.corrcoef((frames[i] - wf).ravel(), (model - wf).ravel())[0, 1]
        wrong = pattern_frame(wf, bands[a], 0.8, nominal[a, (p + 1) % 3]) - wf
        other = np.corrcoef((frames[i] - wf).ravel(), wrong.ravel())[0, 1]
        assert own > 0.5 and other < own - 0.3
        assert abs(frames[i].mean() / wf.mean() - 1.0) < 0.05


def test_forced_slip_is_detected_and_recovered(sim_rig, sim_core, caplog) -> None:
    with PymmcorePlusBackend(sim_rig, core=sim_core) as backend:
        sim_core.setProperty("SLM", "DropTriggerAt", 4)  # the SLM misses the 4th camera trigger once
        with caplog.at_level(logging.WARNING):
            stack = backend.acquire_sim_stack()
        assert stack.pattern_indices == ORDER and stack.resyncs == 1
        assert any("repeated [3]" in r.getMessage() for r in caplog.records)
        assert backend.acquire_sim_stack().resyncs == 0  # back in step


def test_slip_that_persists_raises(sim_rig, sim_core) -> None:
    sim_rig.backend.resync_attempts = 0
    with PymmcorePlusBackend(sim_rig, core=sim_core) as backend:
        sim_core.setProperty("SLM", "DropTriggerAt", 2)
        with pytest.raises(FrameSlipError, match=r"out of step.*trigger cable"):
            backend.acquire_sim_stack()


def test_camera_timeout_mid_burst(sim_rig, sim_core) -> None:
    with PymmcorePlusBackend(sim_rig, core=sim_core) as backend:
        sim_core.setProperty("SimCam", "StopAfterFrames", 4)
        with pytest.raises(CameraTimeoutError, match="delivered 4 of 9"):
            backend.acquire_sim_stack(timeout_s=0.5)
        sim_core.setProperty("SimCam", "StopAfterFrames", -1)
        assert backend.acquire_sim_stack().pattern_indices == ORDER  # usable again after the error


def test_wrong_pixel_type(sim_rig, sim_core) -> None:
    sim_core.setProperty("SimCam", "PixelType", "8bit")
    with pytest.raises(PixelTypeError, match=r"8-bit greyscale.*PixelType,16bit"):
        PymmcorePlusBackend(sim_rig, core=sim_core).open()


def test_missing_devices_and_presets(sim_rig, sim_core) -> None:
    sim_rig.backend.slm = "DMD"
    with pytest.raises(DeviceMissingError, match=r"slm = 'DMD'.*no such device"):
        PymmcorePlusBackend(sim_rig, core=sim_core).open()
    sim_rig.backend.slm = "SLM"
    sim_rig.acquisition.channel_preset = "405"
    with pytest.raises(DeviceMissingError, match=r"no preset '405'.*488, 561, 640"):
        PymmcorePlusBackend(sim_rig, core=sim_core).open()


def test_cfg_problems_give_distinct_errors(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    rig = load_rig_config(SIM_DEMO_TOML)
    text = SIM_DEMO_CFG.read_text()
    broken = tmp_path / "broken.cfg"
    broken.write_text(text.replace("Device,DemoShutter,DemoCamera,DShutter", "Device,DemoShutter,NoSuchAdapter,X"))
    rig.backend.mm_config = broken
    with pytest.raises(HardwareConfigError, match="did not load") as err:
        create_backend(rig).open()
    assert not isinstance(err.value, DeviceMissingError)
    no_shutter = tmp_path / "no_shutter.cfg"
    no_shutter.write_text(text + "\n#py Property,Core,Shutter,\n")  # clear the shutter role
    rig.backend.mm_config = no_shutter
    with pytest.raises(DeviceMissingError, match="no shutter"):
        create_backend(rig).open()
    rig.backend.mm_config = tmp_path / "absent.cfg"
    with pytest.raises(HardwareConfigError, match="not found"):
        create_backend(rig).open()


def test_backend_loads_cfg_itself_and_training_mode(tmp_path) -> None:
    """create_backend on the shipped TOML (relative .cfg path); per-laser labelling gives one structure per preset."""
    pytest.importorskip("mm_test_adapters")
    cfg = tmp_path / "small.cfg"
    text = SIM_DEMO_CFG.read_text()
    for key in ("SensorWidth", "SensorHeight", "Width", "Height"):
        text = text.replace(f",{key},512", f",{key},{SIZE}")
    cfg.write_text(text + "\n#py Property,SimCam,Labelling,per-laser\n#py Property,SimCam,Photons,1000\n")
    toml = tmp_path / "rig.toml"
    shutil.copy(SIM_DEMO_TOML, toml)
    toml.write_text(toml.read_text().replace('mm_config = "sim_demo.cfg"', 'mm_config = "small.cfg"'))
    rig = load_rig_config(toml)
    rig.acquisition.exposure_ms = 1.0
    backend = create_backend(rig)
    with backend:
        point = acquire_training_timepoint(backend, ["488", "561", "640"])
        core = backend.core
        world = core._pydevices["SimCam"]._world
        truths = [world.bands((c,))[0] for c in range(3)]
        assert core.getCurrentConfig("Channel") == "488"  # preset restored
    assert list(point.stacks) == ["488", "561", "640"]
    for c, stack in enumerate(point.stacks.values()):
        assert stack.pattern_indices == ORDER and stack.info["preset"] == ["488", "561", "640"][c]
        wide = stack.frames.astype(np.float64).mean(axis=0)
        corr = [np.corrcoef(wide.ravel(), t.ravel())[0, 1] for t in truths]
        assert int(np.argmax(corr)) == c and corr[c] > 0.8
