"""The `imcsr-live` command: info works, bad input is one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SIMULATED = REPO / "hardware_configs" / "simulated.toml"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_info_reports_versions_and_engines() -> None:
    result = run_cli("info", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["packages"]["torch"].startswith("2.")
    assert "torch-cpu" in data["engines"]
    assert data["torch devices"][0].startswith("cpu")
    assert data["qt"].split()[0] in {"PySide6", "PyQt6", "PyQt5", "PySide2"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["synth", "-c", "missing.toml", "-o", "x.tif"], "not found"),
        (["synth", "-c", str(SIMULATED), "-o", "x.png"], "must end in .tif"),
        (["demo", "--headless", "-c", "missing.toml"], "not found"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args: list[str], expected: str, tmp_path: Path) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_a_frame_size_beyond_memory_is_refused_before_allocating(tmp_path: Path) -> None:
    from imcsr_live.config import available_memory_bytes

    free = available_memory_bytes()
    if free is None or free > 8192**2 * 1024:
        pytest.skip("this machine has the memory for an 8192 x 8192 synthetic microscope")
    result = run_cli("synth", "-c", str(SIMULATED), "-o", str(tmp_path / "x.tif"), "--size", "8192")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "GiB of memory" in result.stderr and not (tmp_path / "x.tif").exists()


def test_unknown_config_key_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "rig.toml"
    bad.write_text(SIMULATED.read_text().replace("wiener = 0.05", "wiener = 0.05\nweiner = 0.1"))
    result = run_cli("synth", "-c", str(bad), "-o", str(tmp_path / "x.tif"))
    assert result.returncode == 2
    assert "[recon] weiner: unknown key" in result.stderr
    assert not (tmp_path / "x.tif").exists()


def test_verbose_and_quiet_flags_change_console_output(tmp_path: Path) -> None:
    loud = run_cli("-vv", "info")
    quiet = run_cli("-q", "info")
    assert loud.returncode == quiet.returncode == 0
    assert "DEBUG" in loud.stderr
    assert "DEBUG" not in quiet.stderr


def test_synth_draws_cells_of_the_chosen_world(tmp_path: Path) -> None:
    import tifffile

    outs = {}
    for world in ("default", "randomised", "independent", "heldout"):
        out = tmp_path / f"{world}.tif"
        result = run_cli("synth", "-c", str(SIMULATED), "-o", str(out), "--frames", "1", "--size", "64",
                         "--world", world)  # fmt: skip
        assert result.returncode == 0, result.stderr
        outs[world] = tifffile.imread(out.with_name(f"{world}.gt.tif"))
    assert not np.array_equal(outs["default"], outs["randomised"])
    assert not np.array_equal(outs["randomised"], outs["independent"])
    assert not np.array_equal(outs["independent"], outs["heldout"])
    bad = run_cli("synth", "-c", str(SIMULATED), "-o", str(tmp_path / "x.tif"), "--world", "mars")
    assert bad.returncode != 0 and "unknown --world 'mars'" in bad.stderr and "Traceback" not in bad.stderr
