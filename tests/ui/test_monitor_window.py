"""Monitor window offscreen: shows the newest frame, pixels are the composite, screenshots work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


@pytest.fixture
def window(qtbot):
    from imcsr_live.ui.monitor_window import MonitorWindow

    rig = load_rig_config(SIMULATED)
    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64))), interval_s=0.05, frames=3)
    win = MonitorWindow(rig, preview, poll_ms=20)
    qtbot.addWidget(win)
    win.show()
    preview.start()
    yield win
    preview.stop()
    win.close()


def test_window_shows_the_newest_frame(window, qtbot) -> None:
    qtbot.waitUntil(lambda: not window.source.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.shown_index == 2, timeout=5_000)
    latest = window.source.latest()
    np.testing.assert_array_equal(window.right_item.image, latest.overlay_rgb)
    np.testing.assert_array_equal(window.left_item.image, latest.widefield_u8)
    assert "timepoint 3" in window.status.text()


def test_rendered_pixels_match_the_composite(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.shown_index >= 0, timeout=60_000)
    window.right_view.setRange(xRange=(0, 128), yRange=(0, 128), padding=0)
    qtbot.wait(50)
    image = window.right_view.scene().views()[0].grab().toImage()
    assert image.width() > 0
    rgb = window.right_item.image
    # the brightest composite pixel is drawn: the view contains a pixel of (almost) that colour
    target = rgb.reshape(-1, 3)[rgb.reshape(-1, 3).sum(axis=1).argmax()].astype(int)
    found = False
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if abs(c.red() - target[0]) + abs(c.green() - target[1]) + abs(c.blue() - target[2]) <= 6:
                found = True
                break
        if found:
            break
    assert found


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
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = demo("--frames", "2", "--interval", "0.1", "--screenshot", str(png), env=env)
    assert result.returncode == 0, result.stderr
    assert "summary: 2 timepoints" in result.stdout
    from qtpy import QtGui

    image = QtGui.QImage(str(png))
    assert image.width() >= 600 and image.height() >= 300


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


def test_live_window_shows_reconstruction_and_separation(qtbot, tmp_path: Path) -> None:
    from imcsr_live.engine.model_source import random_model
    from imcsr_live.engine.torch_engine import TorchEngine
    from imcsr_live.hardware.simulated import SimulatedBackend
    from imcsr_live.model import IMCSRNetConfig
    from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
    from imcsr_live.pipeline.views import LiveView
    from imcsr_live.recon.reconstructor import Reconstructor
    from imcsr_live.ui.monitor_window import MonitorWindow

    rig = load_rig_config(SIMULATED)
    cfg = IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2)
    pipeline = LivePipeline(
        SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1)), Reconstructor(rig),
        TorchEngine(random_model(cfg)), PipelineSettings(interval_s=0.0, timepoints=3),
    )  # fmt: skip
    view = LiveView(pipeline, rig)
    win = MonitorWindow(rig, view, poll_ms=20)
    qtbot.addWidget(win)
    win.show()
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=120_000)
    qtbot.waitUntil(lambda: win.shown_index == 2, timeout=5_000)
    assert win.left_item.image.shape == (128, 128)  # SR grid
    assert win.right_item.image.shape == (128, 128, 3)
    assert "temporal continuity" in view.right_title
    assert "end-to-end" in win.status.text()
    win.close()
