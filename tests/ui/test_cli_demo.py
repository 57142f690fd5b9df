"""`imcsr-live demo` in a subprocess: the offscreen screenshot and the headless ground-truth path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", "demo", "--size", "64", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def rig_without_shipped_model(tmp_path: Path) -> Path:
    """The simulated rig with structures no shipped model covers (the demo then shows ground truth)."""
    path = tmp_path / "rig.toml"
    path.write_text(SIMULATED.read_text().replace('name = "Lysosomes"', 'name = "CCPs"'))
    return path


def test_demo_screenshot_cli(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "IMCSR_LIVE_CONFIG_DIR": str(tmp_path / "config")}  # fmt: skip
    result = demo("--frames", "2", "--interval", "0.1", "--screenshot", str(png), env=env)
    assert result.returncode == 0, result.stderr
    assert "summary: 2 timepoints" in result.stdout
    from qtpy import QtGui

    image = QtGui.QImage(str(png))
    assert image.width() >= 600 and image.height() >= 300
    assert not (tmp_path / "config" / "viewer.json").exists()  # screenshots neither read nor write settings


def test_ground_truth_demo_records_raw_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "rec.tif"
    result = demo("--headless", "--frames", "3", "--interval", "0", "--record", str(out),
                  "-c", str(rig_without_shipped_model(tmp_path)))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "showing the specimen's ground truth" in result.stdout
    assert result.stdout.count("timepoint ") == 3
    from imcsr_live.io.tiff import read_tiff

    raw, _ = read_tiff(out)
    gt, meta = read_tiff(tmp_path / "rec.gt.tif")
    assert raw.shape == (3, 9, 64, 64) and raw.min() > 0
    assert gt.shape == (3, 3, 128, 128) and meta.channel_names == ("Microtubules", "ER", "CCPs")
