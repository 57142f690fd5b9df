"""Per-frame confidence in the live pipeline (simulated microscope, SIM reconstruction, torch engine): every
separated timepoint is judged, the verdict is recorded per timepoint (read back from the written files and
recomputed from the recorded images), and low-confidence warnings are rate-limited."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.engine.model_source import random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.model import IMCSRNetConfig
from imcsr_live.model.confidence import DEFAULT_RESIDUAL, ConfidenceModel, ConfidenceReference
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"
TINY = IMCSRNetConfig(in_frames=1, out_channels=3, width=8, groups=1, blocks=1, reduction=2)


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


def make_pipeline(rig, timepoints: int, confidence: ConfidenceModel | None = None) -> LivePipeline:
    return LivePipeline(
        SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2)),
        Reconstructor(rig),
        TorchEngine(random_model(TINY, seed=0)),
        PipelineSettings(interval_s=0.0, timepoints=timepoints, in_frames=1),
        confidence=confidence,
    )


def test_recording_keeps_the_confidence_of_every_timepoint(rig, tmp_path: Path) -> None:
    from imcsr_live.io.zarr import read_ome_zarr
    from imcsr_live.pipeline.recorder import Recorder
    from imcsr_live.pipeline.recording import ModelIdentity, record_item, recording_plan

    pipeline = make_pipeline(rig, timepoints=3)
    # a card-less model without a head: the documented default, residual only
    assert pipeline.confidence.reference == ConfidenceReference(DEFAULT_RESIDUAL, None, "default")
    identity = ModelIdentity("tiny", pipeline.engine.source.weights_sha256, pipeline.engine.name, "fp32")
    path = tmp_path / "run.ome.zarr"
    pipeline.recorder = Recorder(recording_plan(rig, path, (64, 64), identity, expected_timepoints=3))
    pipeline.record_item = record_item
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    separated, attributes = read_ome_zarr(path)
    sr, _ = read_ome_zarr(path / "sr")
    lines = [json.loads(line) for line in Path(f"{path}.timepoints.jsonl").read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    for t, line in enumerate(lines):
        conf = line["confidence"]
        # recomputed from the recorded SR input and separated channels (128 x 128: no subsampling)
        x = np.maximum(sr[t], 0) / line["input_scale"]
        expected = np.sqrt(np.mean((x - separated[t].sum(axis=0)) ** 2)) / np.percentile(x, 99.9)
        assert conf["residual"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
        assert conf["in_distribution"] == (conf["residual"] <= DEFAULT_RESIDUAL)
        assert "predicted_error" not in conf
    summary = attributes["imcsr_live"]["confidence"]
    assert summary["timepoints_checked"] == 3
    assert summary["timepoints_low"] == sum(not line["confidence"]["in_distribution"] for line in lines)
    assert summary["reference"]["residual"] == DEFAULT_RESIDUAL


def test_low_confidence_is_warned_once_per_interval(rig) -> None:
    names = tuple(rig.structure_names)
    strict = ConfidenceModel(ConfidenceReference(residual=0.0, source="test"), channel_names=names)
    pipeline = make_pipeline(rig, timepoints=4, confidence=strict)  # every frame has some residual: all low
    pipeline.confidence_warn_interval_s = 3600.0
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    frame, _ = pipeline.display.latest()
    assert frame.confidence is not None and not frame.confidence.in_distribution
    assert frame.confidence.reason.startswith("sum residual")
    assert pipeline.confidence_counts == {"checked": 4, "low": 4}
    warnings = [e for e in pipeline.events if "low confidence" in e]
    assert len(warnings) == 1 and "timepoint 1/4:" in warnings[0]  # the first, then quiet for the interval
    assert pipeline.stats.errors == 0  # a warning, not an error


def test_warning_after_the_interval_counts_the_quiet_frames(rig) -> None:
    strict = ConfidenceModel(ConfidenceReference(residual=0.0), channel_names=tuple(rig.structure_names))
    pipeline = make_pipeline(rig, timepoints=1, confidence=strict)
    frames = np.ones((1, 16, 16), np.float32)

    class Sep:
        channels = np.zeros((3, 16, 16), np.float32)
        uncertainty = None
        input_scale = 1.0

    for i in range(3):
        pipeline._assess(frames, Sep(), i)
    pipeline._confidence_warned_s -= 3600.0  # the interval has passed
    pipeline._assess(frames, Sep(), 3)
    warnings = [e for e in pipeline.events if "low confidence" in e]
    assert len(warnings) == 2 and "(2 more low-confidence timepoints since the last warning)" in warnings[1]
