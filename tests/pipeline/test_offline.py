"""`imcsr-live process` and `imcsr-live separate` on files made here: the live pipeline played back from disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.engine import load_model
from imcsr_live.errors import InputDataError
from imcsr_live.hardware.replay import ReplayBackend, ReplayFinished
from imcsr_live.io.tiff import StackMetadata, create_timelapse, read_tiff
from imcsr_live.io.zarr import channel_names, read_ome_zarr
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.pipeline.offline import process_file, separate_file
from imcsr_live.synth.export import write_synthetic_timelapse
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


@pytest.fixture(scope="module")
def rig():
    return load_rig_config(SIMULATED)


@pytest.fixture(scope="module")
def files(rig, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("offline")
    raw = folder / "cell.tif"
    write_synthetic_timelapse(SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), seed=4)), raw, 3)
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    save_checkpoint(folder / "tiny", net, structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return {"raw": raw, "model": folder / "tiny", "folder": folder}


def test_process_writes_separated_sr_raw_and_provenance(rig, files: dict[str, Path]) -> None:
    out = files["folder"] / "out.ome.zarr"
    seen: list[int] = []
    summary = process_file(files["raw"], rig, load_model(files["model"]), out, on_timepoint=lambda d, t: seen.append(d))
    separated, attributes = read_ome_zarr(out)
    sr, _ = read_ome_zarr(out / "sr")
    raw, _ = read_ome_zarr(out / "raw")
    original, _ = read_tiff(files["raw"])
    assert separated.shape == (3, 3, 128, 128) and sr.shape == (3, 128, 128)
    np.testing.assert_array_equal(raw, original)  # the raw stream is the input, in order
    assert channel_names(attributes) == rig.structure_names
    assert summary["timepoints_separated"] == 3 and summary["dropped_frames"] == {
        "reconstruct": 0,
        "separate": 0,
        "record": 0,
    }
    assert seen[-1] == 3


def test_engine_tile_cap_from_the_rig_gives_the_untiled_result(
    rig, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[engine] max_tile_pixels`` reaches the engine: 128x128 frames in <= 4096-pixel tiles, same output."""
    import imcsr_live.engine.tiling as engine_tiling

    tiled_calls: list[int] = []
    real_tiled = engine_tiling.tiled_inference

    def counting_tiled(engine, x, max_pixels):  # the real tiling, counted
        tiled_calls.append(max_pixels)
        return real_tiled(engine, x, max_pixels)

    monkeypatch.setattr(engine_tiling, "tiled_inference", counting_tiled)
    capped = rig.model_copy(update={"engine": rig.engine.model_copy(update={"max_tile_pixels": 4096})})
    outputs = []
    for name, this_rig in (("whole", rig), ("tiled", capped)):
        out = files["folder"] / f"tiles-{name}.ome.zarr"
        process_file(files["raw"], this_rig, load_model(files["model"]), out, engine_kind="torch-cpu")
        outputs.append(read_ome_zarr(out)[0])
    whole, tiled = outputs
    assert tiled_calls and set(tiled_calls) == {4096}  # only the capped run tiled
    nrmse = np.sqrt(np.mean((tiled - whole) ** 2)) / (whole.max() - whole.min())
    assert nrmse < 1e-4, nrmse


def test_separate_cli_on_an_sr_stack(files: dict[str, Path], tmp_path: Path) -> None:
    sr = np.random.default_rng(0).random((2, 96, 80)).astype(np.float32)
    mm = create_timelapse(tmp_path / "sr.tif", sr.shape, np.float32, StackMetadata("TYX", 0.0313, 2.0))
    mm[:] = sr
    mm.flush()
    del mm
    out = tmp_path / "sep.ome.tif"
    result = subprocess.run(
        [sys.executable, "-m", "imcsr_live", "separate", str(tmp_path / "sr.tif"), "--model", str(files["model"]),
         "-o", str(out)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data, meta = read_tiff(out)
    assert data.shape == (2, 3, 96, 80)
    assert meta.channel_names == ("Microtubules", "ER", "Lysosomes")
    assert meta.extra["model"]["name"] == "tiny"


def test_bad_offline_inputs(rig, files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="overwrite"):
        separate_file(files["raw"], load_model(files["model"]), files["raw"])
    with pytest.raises(InputDataError, match="must end in"):
        process_file(files["raw"], rig, load_model(files["model"]), tmp_path / "out.png")
    with pytest.raises(InputDataError, match=r"\(9, Y, X\)"):
        ReplayBackend(np.zeros((2, 8, 16, 16), np.uint16), 9)
    backend = ReplayBackend(np.zeros((1, 9, 16, 16), np.uint16), 9)
    backend.acquire_sim_stack()
    with pytest.raises(ReplayFinished, match="all 1 recorded timepoints have been played back"):
        backend.acquire_sim_stack()


def test_process_cli_to_ome_tiff(files: dict[str, Path]) -> None:
    out = files["folder"] / "processed.ome.tif"
    cmd = [sys.executable, "-m", "imcsr_live", "process", str(files["raw"]), "-c", str(SIMULATED),
           "--model", str(files["model"]), "-o", str(out)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    separated, meta = read_tiff(out)
    sr, _ = read_tiff(files["folder"] / "processed.sr.ome.tif")
    assert separated.shape == (3, 3, 128, 128) and sr.shape == (3, 128, 128)
    assert meta.channel_names == ("Microtubules", "ER", "Lysosomes")
    assert "3 timepoints" in result.stdout


def test_process_of_a_live_recording_reproduces_the_live_separation(rig, files: dict[str, Path]) -> None:
    from imcsr_live.hardware.simulated import SimulatedBackend
    from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline

    live_out = files["folder"] / "live.ome.tif"
    request = LiveRequest(model=files["model"], timepoints=4, interval_s=0.0, record=live_out)
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=9))
    cpu_rig = rig.model_copy(update={"engine": rig.engine.model_copy(update={"kind": "torch-cpu"})})
    pipeline = build_live_pipeline(cpu_rig, request, backend=backend)
    pipeline.start()
    assert pipeline.wait(120)
    pipeline.stop()
    live_separated, _ = read_tiff(live_out)
    replay_out = files["folder"] / "replayed.ome.tif"
    process_file(files["folder"] / "live.raw.ome.tif", rig, load_model(files["model"]), replay_out,
                 engine_kind="torch-cpu")  # fmt: skip
    replayed, _ = read_tiff(replay_out)
    assert live_separated.shape == replayed.shape == (4, 3, 128, 128)
    np.testing.assert_allclose(replayed, live_separated, atol=1e-5)
