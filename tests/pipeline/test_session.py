"""A whole live session from a rig TOML and a checkpoint: the real MMCore sim rig, recorder, clean shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import CheckpointError
from imcsr_live.io.zarr import read_ome_zarr
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline, resolve_model

CONFIGS = Path(__file__).resolve().parents[2] / "hardware_configs"


def tiny_checkpoint(tmp_path: Path, rig, in_frames: int = 3) -> Path:
    net = IMCSRNet(IMCSRNetConfig(in_frames=in_frames, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    stem = tmp_path / "tiny"
    save_checkpoint(stem, net, structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return stem


def test_mmcore_sim_rig_runs_and_records(tmp_path: Path) -> None:
    rig = load_rig_config(CONFIGS / "sim_demo.toml")
    record = tmp_path / "live.ome.zarr"
    request = LiveRequest(model=tiny_checkpoint(tmp_path, rig), timepoints=3, interval_s=0.0, record=record)
    pipeline = build_live_pipeline(rig, request)
    pipeline.start()
    assert pipeline.wait(180)
    pipeline.stop()
    assert pipeline.stats.separated == 3 and pipeline.stats.errors == 0, list(pipeline.events)
    separated, attributes = read_ome_zarr(record)
    assert separated.shape[0] == 3 and separated.shape[1] == len(rig.structures)
    assert attributes["imcsr_live"]["model"]["name"] == "tiny"


def test_model_for_other_structures_is_refused(tmp_path: Path) -> None:
    rig = load_rig_config(CONFIGS / "simulated.toml")
    other = rig.model_copy(update={"structures": rig.structures[:2]})
    stem = tiny_checkpoint(tmp_path, rig)
    with pytest.raises(CheckpointError, match="but the configuration asks for"):
        resolve_model(other, stem)


@pytest.mark.parametrize("taken", ["run.ome.zarr", "run.raw.ome.tif"])
def test_a_recording_never_overwrites_an_earlier_one(tmp_path: Path, taken: str) -> None:
    from imcsr_live.errors import InputDataError
    from imcsr_live.pipeline.recording import ModelIdentity
    from imcsr_live.pipeline.session import RecorderFactory

    rig = load_rig_config(CONFIGS / "simulated.toml")
    factory = RecorderFactory(rig, (16, 16), ModelIdentity("m", "0" * 64, "torch-cpu", "fp32"), 2)
    earlier = tmp_path / taken  # the main image, or a side stream of an OME-TIFF recording of that name
    earlier.mkdir() if taken.endswith(".zarr") else earlier.write_bytes(b"earlier data")
    target = tmp_path / ("run.ome.zarr" if taken.endswith(".zarr") else "run.ome.tif")
    with pytest.raises(InputDataError, match="already exists"):
        factory(target)
    assert earlier.exists() and (earlier.is_dir() or earlier.read_bytes() == b"earlier data")
