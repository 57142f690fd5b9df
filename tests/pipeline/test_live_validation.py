"""Live validation (``live --validate-every K``) on real parts: the simulated SIM rig through the real Micro-Manager
core (UniMMCore + mm-test-adapters + the Python devices, per-laser labelling: each preset images one structure),
the real reconstructor, a tiny torch model and a real recording read back from disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import RigConfig, load_rig_config
from imcsr_live.errors import DeviceMissingError
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.io.streams import read_timepoints
from imcsr_live.io.zarr import channel_names, read_ome_zarr
from imcsr_live.model.metrics import evaluate_image
from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline
from imcsr_live.pipeline.validation import ValidationUnavailableError
from imcsr_live.runs import RunOptions, run_live_pipeline
from imcsr_live.synth.world import WorldSettings

from .test_recording_kill import tiny_model

CONFIGS = Path(__file__).resolve().parents[2] / "hardware_configs"
SIZE = 64


def mm_rig(folder: Path, presets: bool = True) -> Path:
    """sim_demo.toml/.cfg shrunk to 64 x 64, 1 ms exposures, per-laser labelling; ``presets=False``: the
    structures' ``preset`` lines removed (a rig without per-structure presets)."""
    cfg = (CONFIGS / "sim_demo.cfg").read_text()
    for key in ("SensorWidth", "SensorHeight", "Width", "Height"):
        cfg = cfg.replace(f",{key},512", f",{key},{SIZE}")
    cfg += "\n#py Property,SimCam,Labelling,per-laser\n#py Property,SimCam,Photons,1000\n"
    (folder / "small.cfg").write_text(cfg)
    toml = (CONFIGS / "sim_demo.toml").read_text().replace('mm_config = "sim_demo.cfg"', 'mm_config = "small.cfg"')
    toml = toml.replace("exposure_ms = 30", "exposure_ms = 1")
    if not presets:
        toml = "\n".join(line for line in toml.splitlines() if not line.startswith("preset ="))
    path = folder / ("rig.toml" if presets else "rig_without_presets.toml")
    path.write_text(toml)
    return path


def test_headless_mm_run_validates_every_kth_timepoint_and_records_scores_evaluate_reproduces(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    rig = load_rig_config(mm_rig(tmp_path))
    out = tmp_path / "run.ome.zarr"
    lines: list[str] = []
    options = RunOptions(headless=True, frames=7, interval_s=0.0, record=out, model=tiny_model(tmp_path),
                         validate_every=3)  # fmt: skip
    summary = run_live_pipeline(rig, options, lines.append, "test")
    # the validation stacks are neither timepoints nor drops
    assert summary["timepoints_acquired"] == summary["timepoints_separated"] == 7
    assert sum(summary["dropped_frames"].values()) == 0 and summary["errors"] == 0
    validation = summary["validation"]
    assert validation["timepoints"] == [0, 3, 6] and validation["failed"] == 0
    assert validation["presets"] == {"Microtubules": "488", "ER": "561", "Lysosomes": "640"}
    assert any(line.startswith("validation: every 3 timepoints, 3 validated [0, 3, 6]") for line in lines)

    separated, attributes = read_ome_zarr(out)
    real, real_attributes = read_ome_zarr(out / "validation")
    assert separated.shape == (7, 3, 2 * SIZE, 2 * SIZE) and real.shape == (3, 3, 2 * SIZE, 2 * SIZE)
    assert channel_names(real_attributes) == rig.structure_names
    records = read_timepoints(out)
    assert [r["index"] for r in records] == list(range(7))
    validated = [r for r in records if "validation" in r]
    assert [r["index"] for r in validated] == [0, 3, 6]
    # offline, from the saved frames only, scored the way `imcsr-live evaluate` scores: the same numbers
    for v, record in enumerate(validated):
        t = record["index"]
        offline = [evaluate_image(separated[t, c], real[v, c]).pcc for c in range(3)]
        recorded = [record["validation"]["pcc"][name] for name in rig.structure_names]
        np.testing.assert_allclose(recorded, offline, rtol=1e-12, atol=1e-12)
        assert attributes["imcsr_live"]["validation"]["pcc"]["ER"][v] == record["validation"]["pcc"]["ER"]
    # per-laser labelling: each preset's real image is its own structure, not the one-colour live image
    sr, _ = read_ome_zarr(out / "sr")
    corr = np.corrcoef(real[0].reshape(3, -1))
    assert (corr[np.triu_indices(3, 1)] < 0.9).all()
    assert not np.allclose(real[0].sum(axis=0), sr[0])


def test_rig_without_presets_is_refused_at_start_with_one_line(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    rig = mm_rig(tmp_path, presets=False)
    cmd = [sys.executable, "-m", "imcsr_live", "live", "-c", str(rig), "--headless", "--frames", "2",
           "--model", str(tiny_model(tmp_path)), "--validate-every", "2"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "summary:" not in result.stdout  # refused before imaging
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert "--validate-every refused" in error[0] and "Microtubules has none" in error[0]
    assert 'preset = "..."' in error[0] and "488, 561, 640" in error[0]


def test_a_preset_that_does_not_exist_is_refused_and_no_flag_means_no_validation(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    path = mm_rig(tmp_path)
    path.write_text(path.read_text().replace('preset = "640"', 'preset = "405"'))
    rig = load_rig_config(path)
    model = tiny_model(tmp_path)
    with pytest.raises(ValidationUnavailableError, match=r"preset '405' of Lysosomes is not defined.*488, 561, 640"):
        build_live_pipeline(rig, LiveRequest(model, 2, 0.0, validate_every=2))
    pipeline = build_live_pipeline(rig, LiveRequest(model, 2, 0.0))  # without the flag the rig runs as before
    try:
        assert pipeline.validator is None and "405" in (pipeline.validation_unavailable or "")
    finally:
        pipeline.backend.close()


class FlakyPresetBackend(SimulatedBackend):
    """The simulated microscope whose ER preset fails on its ``fail_at``-th use (a filter wheel that jams)."""

    def __init__(self, *args, fail_at: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at, self.er_uses = fail_at, 0

    def set_channel_preset(self, preset: str) -> None:
        if preset == "ER":
            self.er_uses += 1
            if self.er_uses == self.fail_at:
                raise DeviceMissingError("preset 'ER' did not settle within 5 s (filter wheel)")
        super().set_channel_preset(preset)


@pytest.fixture(scope="module")
def simulated() -> RigConfig:
    return load_rig_config(CONFIGS / "simulated.toml")


def test_a_failed_validation_is_one_line_and_live_imaging_goes_on(simulated, tmp_path) -> None:
    backend = FlakyPresetBackend(simulated, WorldSettings(raw_shape=(SIZE, SIZE), seed=2))
    request = LiveRequest(tiny_model(tmp_path), 6, 0.0, validate_every=2)
    pipeline = build_live_pipeline(simulated, request, backend=backend)
    pipeline.start()
    assert pipeline.wait(300)
    pipeline.stop()
    summary = pipeline.summary()
    assert summary["timepoints_separated"] == 6 and summary["errors"] == 0
    assert summary["validation"]["timepoints"] == [0, 4] and summary["validation"]["failed"] == 1
    failed = [e for e in pipeline.events if "validation skipped" in e]
    assert len(failed) == 1 and "timepoint 3/6" in failed[0] and "filter wheel" in failed[0]
    assert backend.preset == "all"  # the live preset came back after the failure


def test_validation_is_switched_on_and_off_mid_run_on_grid_multiples(simulated, tmp_path) -> None:
    backend = SimulatedBackend(simulated, WorldSettings(raw_shape=(SIZE, SIZE), seed=2))
    pipeline = build_live_pipeline(simulated, LiveRequest(tiny_model(tmp_path), None, 0.0), backend=backend)
    assert pipeline.validator is not None and pipeline.validator.every is None  # can validate; off by default
    pipeline.set_validate_every(2)
    pipeline.start()
    try:
        while pipeline.stats.separated < 5:
            pipeline.wait(0.05)
        pipeline.set_validate_every(None)
        seen = pipeline.stats.acquired
        while pipeline.stats.separated < seen + 4:
            pipeline.wait(0.05)
    finally:
        pipeline.stop()
    validated = pipeline.validator.summary()["timepoints"]
    assert validated and all(i % 2 == 0 for i in validated)
    assert validated == list(range(0, validated[-1] + 1, 2))  # none missing while on
    assert validated[-1] <= seen + 1  # at most the slot in flight when it was switched off
    with pytest.raises(Exception, match="1 <= K"):
        pipeline.set_validate_every(0)


def test_simulated_rig_without_presets_cannot_validate(simulated, tmp_path) -> None:
    class NoPresets:  # a backend that cannot switch presets (e.g. a one-laser rig)
        def __init__(self, inner: SimulatedBackend) -> None:
            self.inner = inner

        def __getattr__(self, name: str):
            if name in ("channel_presets", "set_channel_preset"):
                raise AttributeError(name)
            return getattr(self.inner, name)

    backend = NoPresets(SimulatedBackend(simulated, WorldSettings(raw_shape=(SIZE, SIZE), seed=2)))
    with pytest.raises(ValidationUnavailableError, match="switches excitation presets"):
        build_live_pipeline(simulated, LiveRequest(tiny_model(tmp_path), 2, 0.0, validate_every=1), backend=backend)
