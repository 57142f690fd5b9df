"""``imcsr-live acquire-training`` on real parts: the simulated SIM rig through the real Micro-Manager core (UniMMCore
+ mm-test-adapters + the Python devices incl. the XY stage, per-laser labelling), the real reconstructor, and the
dataset's files read back from disk; an interruption in the middle of a timepoint, then a resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from imcsr_live.config import load_rig_config
from imcsr_live.hardware import create_backend
from imcsr_live.io.training_dataset import (
    DatasetManifest,
    DatasetStructure,
    FinishedTimepoint,
    read_manifest,
    structure_files,
)
from imcsr_live.pipeline.training_data import (
    AcquisitionStoppedError,
    TrainingRequest,
    acquire_training_dataset,
    describe_dataset,
    read_positions,
    registration_summary,
)

from .test_live_validation import SIZE, mm_rig

NAMES = ["Microtubules", "ER", "Lysosomes"]


@pytest.fixture
def rig_path(tmp_path: Path) -> Path:
    pytest.importorskip("mm_test_adapters")
    return mm_rig(tmp_path)


def positions_file(folder: Path) -> Path:
    path = folder / "positions.csv"
    path.write_text("x_um,y_um\n0,0  # the first cell\n\n250.5,-40\n")
    return path


def test_interrupted_acquisition_resumes_without_losing_or_duplicating_timepoints(tmp_path, rig_path) -> None:
    root = tmp_path / "data"
    positions = read_positions(positions_file(tmp_path))
    rig = load_rig_config(rig_path)
    backend = create_backend(rig)
    moves: list[tuple[float, float]] = []
    original_move = backend.move_to

    def move_then_interrupt(x_um: float, y_um: float) -> None:
        if len(moves) == 5:  # the third timepoint (index 2), second position: never taken
            raise KeyboardInterrupt
        moves.append((x_um, y_um))
        original_move(x_um, y_um)

    backend.move_to = move_then_interrupt  # Ctrl-C while the stage moves
    finished: list[int] = []
    with pytest.raises(AcquisitionStoppedError, match=f"stopped on request: 2 of 6 timepoints are saved in {root}"):
        acquire_training_dataset(
            rig, TrainingRequest(root, 6, 0.001, None, positions), lambda done: finished.append(done.index), backend
        )
    assert finished == [0, 1] and moves == [(0.0, 0.0), (250.5, -40.0)] * 2 + [(0.0, 0.0)]
    interrupted = read_manifest(root)
    assert interrupted is not None and interrupted.finished == [0, 1]
    assert structure_files(root, 0, 2, "ER")["sr"].is_file()  # position 0 of timepoint 2 was written ...
    assert not (root / "p001" / "t00002").exists()  # ... position 1 not: the timepoint is not listed

    manifest = acquire_training_dataset(load_rig_config(rig_path), TrainingRequest(root, 4, 0.001, None, positions))
    assert manifest.finished == [0, 1, 2, 3]
    assert [t.session for t in manifest.timepoints] == [0, 0, 1, 1] and manifest.sessions == 2
    on_disk = read_manifest(root)
    assert on_disk is not None and on_disk.model_dump() == manifest.model_dump()
    assert on_disk.presets == ["488", "561", "640"] and on_disk.photons == 1000.0 and on_disk.n_positions == 2
    assert (root / "rig.toml").read_text() == rig_path.read_text()
    for p in range(2):
        assert sorted(d.name for d in (root / f"p{p:03d}").iterdir()) == [f"t{t:05d}" for t in range(4)]
        for t in range(4):
            for name in NAMES:
                paths = structure_files(root, p, t, name)
                assert tifffile.imread(paths["raw"]).shape == (9, SIZE, SIZE)
                sr = tifffile.imread(paths["sr"])
                assert sr.dtype == np.float32 and sr.shape == (2 * SIZE, 2 * SIZE) and np.isfinite(sr).all()
                params = json.loads(paths["params"].read_text())
                assert params["preset"] == dict(zip(NAMES, on_disk.presets, strict=True))[name]
                assert len(params["parameters"]["k0_cycles_per_um"]) == 3
    assert not list(root.rglob("*.tmp"))
    # the stage positions are different cells; each structure is its own image
    a = tifffile.imread(structure_files(root, 0, 0, "ER")["sr"])
    b = tifffile.imread(structure_files(root, 1, 0, "ER")["sr"])
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.5
    # registration: measured on every stack, summarised per structure
    assert set(on_disk.registration) == set(NAMES)
    assert all(len(t.shift_px["ER"]) == 2 for t in on_disk.timepoints)

    again = acquire_training_dataset(load_rig_config(rig_path), TrainingRequest(root, 4, 0.001, None, positions))
    assert again.finished == [0, 1, 2, 3] and again.sessions == 2  # complete: nothing taken, nothing changed


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "imcsr_live", "acquire-training", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_preset_that_does_not_exist_and_a_structure_without_preset_are_refused(tmp_path, rig_path) -> None:
    line = _one_error_line(_cli("-c", str(rig_path), "-o", str(tmp_path / "a"), "--presets", "488,561,405"))
    assert "preset '405' is not defined" in line and "488, 561, 640" in line
    line = _one_error_line(_cli("-c", str(mm_rig(tmp_path, presets=False)), "-o", str(tmp_path / "b")))
    assert "training data needs an excitation preset per structure: Microtubules has none" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any folder is made


def test_a_folder_of_another_rig_is_refused(tmp_path, rig_path) -> None:
    root = tmp_path / "data"
    done = _cli("-c", str(rig_path), "-o", str(root), "--timepoints", "1", "--interval", "0.001")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{root}: 1 timepoints x 1 position(s) x 3 structures")
    other = rig_path.with_name("other.toml")
    other.write_text(rig_path.read_text().replace("wiener = 0.05", "wiener = 0.08"))
    line = _one_error_line(_cli("-c", str(other), "-o", str(root), "--timepoints", "2", "--interval", "0.001"))
    assert f"{root} was taken with another rig (rig.toml" in line
    manifest = read_manifest(root)
    assert manifest is not None and manifest.finished == [0]  # untouched


def test_positions_file_format_errors_name_the_line(tmp_path) -> None:
    path = tmp_path / "positions.csv"
    path.write_text("x_um,y_um\n1,2\n3;4\n")
    with pytest.raises(Exception, match=r"line 3: '3;4' is not 'x_um,y_um'"):
        read_positions(path)
    path.write_text("1,2\n1.0,2.0\n")
    with pytest.raises(Exception, match="lists a position twice"):
        read_positions(path)


def test_registration_summary_keeps_only_measured_shifts() -> None:
    """A shift on the search window's edge or with a weak peak is no measurement; the rest give the median."""
    manifest = DatasetManifest(
        rig_name="rig.toml", rig_sha256="0" * 64, backend="simulated", raw_shape=(64, 64), sr_pixel_size_um=0.0313,
        interval_s=1.0, exposure_ms=1.0, created="2026-01-01T00:00:00+00:00", updated="2026-01-01T00:00:00+00:00",
        structures=[DatasetStructure(name=n, color="#FFFFFF", preset=p) for n, p in (("MT", "488"), ("ER", "561"))],
        timepoints=[FinishedTimepoint(index=0, session=0, started="2026-01-01T00:00:00+00:00", seconds=1.0,
                                      shift_px={"MT": [[0.3, -0.4, 0.9], [7.9, 0.0, 0.9]], "ER": [[0.1, 0.0, 0.1]]})],
    )  # fmt: skip
    summary = registration_summary(manifest)
    assert summary["MT"] == {"dy_px": 0.3, "dx_px": -0.4, "shift_nm": 15.7, "measured_fraction": 0.5}
    assert summary["ER"] == {"dy_px": None, "dx_px": None, "shift_nm": None, "measured_fraction": 0.0}
    manifest.registration = summary
    lines = describe_dataset(Path("DIR"), manifest)
    assert lines[1] == "registration MT: dy +0.30 px, dx -0.40 px (16 nm, SR pixels) against the other colours, " \
        "measured on 50% of the stacks"  # fmt: skip
    assert lines[2].startswith("registration ER: not measurable on these images")
