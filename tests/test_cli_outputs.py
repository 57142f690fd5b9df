"""Offline commands never destroy an existing output without --overwrite, and a failed run leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import InputDataError
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.outputs import refuse_existing, refuse_input_as_output, staged
from imcsr_live.synth.export import write_synthetic_timelapse
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "hardware_configs" / "simulated.toml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, timeout=300)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rig = load_rig_config(SIMULATED)
    folder = tmp_path_factory.mktemp("outputs")
    raw = folder / "cell.tif"
    write_synthetic_timelapse(SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), seed=4)), raw, 2)
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    save_checkpoint(folder / "tiny", net, structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return {"raw": raw, "model": folder / "tiny", "folder": folder}


def test_reconstruct_refuses_an_existing_output_then_overwrites_on_request(files, tmp_path: Path) -> None:
    out = tmp_path / "existing.ome.tif"
    out.write_bytes(b"a precious recording")
    result = run_cli("reconstruct", str(files["raw"]), "-c", str(SIMULATED), "-o", str(out))
    assert result.returncode == 3
    assert "already exists" in one_error_line(result) and "--overwrite" in result.stderr
    assert out.read_bytes() == b"a precious recording"
    result = run_cli("reconstruct", str(files["raw"]), "-c", str(SIMULATED), "-o", str(out), "--overwrite")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["existing.ome.tif"]  # no staging folder left


def test_process_refuses_an_existing_zarr_folder_and_keeps_its_files(files, tmp_path: Path) -> None:
    out = tmp_path / "existing.ome.zarr"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = run_cli("process", str(files["raw"]), "-c", str(SIMULATED), "-m", str(files["model"]), "-o", str(out))
    assert result.returncode == 3
    assert "already exists" in one_error_line(result)
    assert (out / "notes.txt").read_text() == "keep me"


def test_process_refuses_when_a_sibling_tiff_it_would_write_exists(files, tmp_path: Path) -> None:
    (tmp_path / "out.sr.ome.tif").write_bytes(b"old SR")
    result = run_cli(
        "process",
        str(files["raw"]),
        "-c",
        str(SIMULATED),
        "-m",
        str(files["model"]),
        "-o",
        str(tmp_path / "out.ome.tif"),
    )
    assert result.returncode == 3 and "out.sr.ome.tif already exists" in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.sr.ome.tif"]


def test_separate_refuses_an_existing_output(files, tmp_path: Path) -> None:
    out = tmp_path / "sep.ome.tif"
    out.write_bytes(b"old")
    result = run_cli("separate", str(files["raw"]), "-m", str(files["model"]), "-o", str(out))
    assert result.returncode == 3 and "already exists" in one_error_line(result)
    assert out.read_bytes() == b"old"


@pytest.mark.parametrize("command", ["reconstruct", "process", "separate"])
def test_a_truncated_input_tiff_is_one_line_saying_so(files, tmp_path: Path, command: str) -> None:
    source = files["raw"]
    if command == "separate":  # separate reads an SR stack: make a real one, then cut it
        source = tmp_path / "sr.ome.tif"
        done = run_cli("reconstruct", str(files["raw"]), "-c", str(SIMULATED), "-o", str(source))
        assert done.returncode == 0, done.stderr
    cut = tmp_path / "cut.tif"
    content = source.read_bytes()
    cut.write_bytes(content[: len(content) * 2 // 3])  # an interrupted copy
    options = ["-m", str(files["model"])] if command != "reconstruct" else []
    options += ["-c", str(SIMULATED)] if command != "separate" else []
    result = run_cli(command, str(cut), *options, "-o", str(tmp_path / "out.ome.tif"))
    assert result.returncode != 0
    line = one_error_line(result)
    assert "cut.tif is truncated or damaged" in line and "re-copy it" in line
    assert "shape" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["cut.tif"] + (["sr.ome.tif"] * (source != files["raw"]))
    )


def test_a_failed_run_leaves_no_output_and_keeps_what_was_there(tmp_path: Path) -> None:
    old = tmp_path / "old.ome.zarr"
    old.mkdir()
    (old / "data").write_text("old")
    new = tmp_path / "new.ome.tif"
    with pytest.raises(RuntimeError, match="disk full"), staged(old, new) as (a, b):
        a.mkdir()
        b.write_bytes(b"\0" * 100)  # a pre-allocated, never-filled file
        (b.parent / "new.raw.ome.tif").write_bytes(b"\0")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.ome.zarr"]
    assert (old / "data").read_text() == "old"


def test_a_successful_staged_run_replaces_files_and_folders(tmp_path: Path) -> None:
    old = tmp_path / "old.ome.zarr"
    old.mkdir()
    (old / "stale").write_text("old")
    with staged(old) as (a,):
        a.mkdir()
        (a / "fresh").write_text("new")
    assert [p.name for p in old.iterdir()] == ["fresh"]
    assert [p.name for p in tmp_path.iterdir()] == ["old.ome.zarr"]


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "x.tif").write_bytes(b"x")
    refuse_existing([tmp_path / "x.tif"], overwrite=True)
    with pytest.raises(InputDataError, match="already exists"):
        refuse_existing([tmp_path / "y.tif", tmp_path / "x.tif"], overwrite=False)
    with pytest.raises(InputDataError, match="would replace the input"):
        refuse_input_as_output(tmp_path / "rec.ome.zarr", [tmp_path / "rec.ome.zarr" / "raw"])
