"""`imcsr-live live` and `imcsr-live demo` with a model: the whole pipeline from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imcsr_live.config import load_rig_config
from imcsr_live.io.zarr import read_ome_zarr
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint

CONFIGS = Path(__file__).resolve().parents[1] / "hardware_configs"


def checkpoint(tmp_path: Path) -> Path:
    rig = load_rig_config(CONFIGS / "simulated.toml")
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    stem = tmp_path / "tiny"
    save_checkpoint(stem, net, structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return stem


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, timeout=600)


def test_live_on_the_micromanager_sim_rig_records(tmp_path: Path) -> None:
    out = tmp_path / "live.ome.zarr"
    result = run("live", "-c", str(CONFIGS / "sim_demo.toml"), "--headless", "--frames", "2",
                 "--model", str(checkpoint(tmp_path)), "--record", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "summary: 2 timepoints separated" in result.stdout
    assert result.stdout.count("timepoint ") >= 2
    separated, attributes = read_ome_zarr(out)
    assert separated.shape[:2] == (2, 3)
    assert attributes["imcsr_live"]["timepoints_recorded"] == 2


def test_demo_runs_the_pipeline_with_a_model(tmp_path: Path) -> None:
    result = run("demo", "--headless", "--frames", "2", "--size", "64", "--interval", "0",
                 "--model", str(checkpoint(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "model tiny" in result.stdout
    assert "summary: 2 timepoints separated" in result.stdout


def test_live_without_a_model_says_what_to_do(tmp_path: Path) -> None:
    other = tmp_path / "rig.toml"
    text = (CONFIGS / "simulated.toml").read_text().replace('name = "Lysosomes"', 'name = "Mitochondria"')
    other.write_text(text)
    result = run("live", "-c", str(other), "--headless", "--frames", "1")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "pass --model" in result.stderr
