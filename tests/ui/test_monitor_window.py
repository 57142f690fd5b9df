"""Demo window offscreen: shows the newest frame, pixels are the composite, screenshots work."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


@pytest.fixture
def window(qtbot):
    from imcsr_live.ui.preview_window import PreviewWindow

    rig = load_rig_config(SIMULATED)
    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64))), interval_s=0.05, frames=3)
    win = PreviewWindow(rig, preview, poll_ms=20)
    qtbot.addWidget(win)
    win.show()
    preview.start()
    yield win
    preview.stop()
    win.close()


def test_window_shows_the_newest_frame(window, qtbot) -> None:
    qtbot.waitUntil(lambda: not window.preview.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.shown_index == 2, timeout=5_000)
    latest = window.preview.latest()
    np.testing.assert_array_equal(window.overlay_item.image, latest.overlay_rgb)
    np.testing.assert_array_equal(window.widefield_item.image, latest.widefield_u8)
    assert "timepoint 3" in window.status.text()


def test_rendered_pixels_match_the_composite(window, qtbot) -> None:
    qtbot.waitUntil(lambda: window.shown_index >= 0, timeout=60_000)
    window.overlay_view.setRange(xRange=(0, 128), yRange=(0, 128), padding=0)
    qtbot.wait(50)
    image = window.overlay_view.scene().views()[0].grab().toImage()
    assert image.width() > 0
    rgb = window.overlay_item.image
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


def test_demo_screenshot_cli(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "imcsr_live", "demo", "--frames", "2", "--interval", "0.1", "--size", "64",
         "--screenshot", str(png)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "summary: 2 timepoints" in result.stdout
    from qtpy import QtGui

    image = QtGui.QImage(str(png))
    assert image.width() >= 600 and image.height() >= 300, time.monotonic() - start


def test_headless_demo_records(tmp_path: Path) -> None:
    out = tmp_path / "rec.tif"
    result = subprocess.run(
        [sys.executable, "-m", "imcsr_live", "demo", "--headless", "--frames", "3", "--interval", "0",
         "--size", "64", "--record", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("timepoint ") == 3
    from imcsr_live.io.tiff import read_tiff

    raw, _ = read_tiff(out)
    assert raw.shape == (3, 9, 64, 64) and raw.min() > 0
