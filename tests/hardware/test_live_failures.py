"""A live run whose camera keeps failing ends: real MMCore, the Python SIM camera told to stop mid-burst."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from imcsr_live.config import AcquisitionConfig, RigConfig
from imcsr_live.errors import HardwareError
from imcsr_live.hardware.mmcore_backends import PymmcorePlusBackend
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.runs import RunOptions, run_live_pipeline

TINY = IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2)


def tiny_checkpoint(rig: RigConfig, folder: Path) -> Path:
    stem = folder / "tiny"
    save_checkpoint(stem, IMCSRNet(TINY), structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return stem


def failing_run(sim_rig: RigConfig, sim_core, tmp_path: Path, frames: int) -> tuple[list[str], HardwareError | None]:
    """``live --headless --frames N`` on the MM rig whose camera delivers 4 of 9 frames per burst."""
    sim_rig.backend.timeout_s = 0.3  # a short wait for the missing frames
    sim_rig.engine.kind = "torch-cpu"
    sim_core.setProperty("SimCam", "StopAfterFrames", 4)
    lines: list[str] = []
    errors: list[HardwareError] = []
    options = RunOptions(headless=True, frames=frames, interval_s=0.0, model=tiny_checkpoint(sim_rig, tmp_path))
    backend = PymmcorePlusBackend(sim_rig, core=sim_core)

    def run() -> None:
        try:
            run_live_pipeline(sim_rig, options, lines.append, "test", backend=backend)
        except HardwareError as exc:
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(300)  # generous: each failed burst waits 0.3 s for the frames that never come
    if runner.is_alive():
        backend.abort()
        pytest.fail(f"the run did not end; its output so far: {lines}")
    return lines, errors[0] if errors else None


def test_a_camera_that_keeps_failing_ends_the_run_with_one_clear_error(sim_rig, sim_core, tmp_path) -> None:
    assert sim_rig.acquisition.max_consecutive_failures == 5  # the default
    lines, error = failing_run(sim_rig, sim_core, tmp_path, frames=9)
    assert error is not None
    message = str(error)
    assert message.startswith("acquisition failed 5 times in a row: camera 'SimCam' delivered 4 of 9")
    assert "check the camera" in message and "\n" not in message and "Traceback" not in message
    summary = next(line for line in lines if line.startswith("summary:"))
    assert "0 timepoints separated" in summary and "failed acquisitions 5," in summary and "errors 5," in summary
    assert not any("acquisition failed 5 times" in line for line in lines)  # said once: as the error


def test_failed_timepoints_count_toward_frames(sim_rig, sim_core, tmp_path) -> None:
    lines, error = failing_run(sim_rig, sim_core, tmp_path, frames=3)  # fewer than 5 in a row: no error, it ends
    assert error is None
    summary = next(line for line in lines if line.startswith("summary:"))
    assert "0 timepoints separated" in summary and "failed acquisitions 3," in summary and "errors 3," in summary


def test_the_limit_comes_from_the_rig(sim_rig, sim_core, tmp_path) -> None:
    sim_rig.acquisition.max_consecutive_failures = 2
    _, error = failing_run(sim_rig, sim_core, tmp_path, frames=9)
    assert error is not None and str(error).startswith("acquisition failed 2 times in a row: ")


@pytest.mark.parametrize("value", [0, 1001])
def test_max_consecutive_failures_is_bounded(value: int) -> None:
    with pytest.raises(ValidationError, match="max_consecutive_failures"):
        AcquisitionConfig(max_consecutive_failures=value)
