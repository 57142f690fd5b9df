"""`demo`/`live` runs as the command line does them, in-process: what they report at the end."""

from __future__ import annotations

from pathlib import Path

from imcsr_live.config import load_rig_config
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.io.zarr import read_ome_zarr
from imcsr_live.runs import RunOptions, run_live_pipeline
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def test_a_headless_recording_run_says_what_it_recorded(tmp_path: Path) -> None:
    rig = load_rig_config(SIMULATED)
    path = tmp_path / "headless.ome.zarr"
    lines: list[str] = []
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    options = RunOptions(headless=True, frames=2, interval_s=0.0, record=path)
    summary = run_live_pipeline(rig, options, lines.append, "test", backend=backend)
    assert summary["timepoints_separated"] == 2
    assert f"recorded 2 timepoints to {path}" in lines
    separated, attributes = read_ome_zarr(path)
    assert separated.shape[0] == attributes["imcsr_live"]["timepoints_recorded"] == 2
