"""The window fits the screen it opens on: never larger than the available area (frame included), centred,
with the views, the splitter and the docks still usable on a 1366x768 laptop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def _preview(rig) -> SimulatedPreview:
    return SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1)


@pytest.mark.parametrize("origin", [(0, 0), (1920, 24)], ids=["laptop", "second-monitor-below-a-panel"])
def test_fitted_geometry_is_inside_the_available_area_and_centred(origin: tuple[int, int]) -> None:
    from qtpy import QtCore

    from imcsr_live.ui.main_window import fitted_geometry

    available = QtCore.QRect(origin[0], origin[1], 1366, 768 - origin[1])
    frame = QtCore.QMargins(1, 30, 1, 1)
    rect = fitted_geometry(QtCore.QSize(1500, 860), available, frame)
    assert available.contains(rect.marginsAdded(frame))
    assert (rect.width(), rect.height()) == (1366 - 2, available.height() - 31)  # all the room there is
    assert abs(rect.marginsAdded(frame).center().x() - available.center().x()) <= 1
    small = fitted_geometry(QtCore.QSize(700, 500), available, frame)  # a smaller window keeps its size, centred
    assert (small.width(), small.height()) == (700, 500)
    assert abs(small.center().x() - available.marginsRemoved(frame).center().x()) <= 1
    assert abs(small.center().y() - available.marginsRemoved(frame).center().y()) <= 1


OPEN_ON_LAPTOP = """
import json
from qtpy import QtWidgets
from imcsr_live.config import load_rig_config
from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from imcsr_live.ui.main_window import MainWindow

app = QtWidgets.QApplication([])
rig = load_rig_config({rig!r})
window = MainWindow(rig, SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1))
window.show()
app.processEvents()
rect = lambda r: [r.x(), r.y(), r.width(), r.height()]
print(json.dumps({{"available": rect(window.screen().availableGeometry()), "frame": rect(window.frameGeometry())}}))
window.close()
"""


def test_window_opens_inside_a_laptop_screen(tmp_path: Path) -> None:
    """A real start on a 1366x768 screen (the offscreen platform given that screen, window frames on): the
    1500x860 design size is shrunk so that the window, frame included, lies inside the screen, centred."""
    screens = {"windowFrameMargins": True, "screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1366,
               "height": 768, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}  # fmt: skip
    config = tmp_path / "screen.json"
    config.write_text(json.dumps(screens))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}", "IMCSR_LIVE_CONFIG_DIR": str(tmp_path)}
    script = OPEN_ON_LAPTOP.format(rig=str(SIMULATED))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    ax, ay, aw, ah = shown["available"]
    fx, fy, fw, fh = shown["frame"]
    assert (aw, ah) == (1366, 768)  # the premise: the design size would not fit
    assert ax <= fx and ay <= fy and fx + fw <= ax + aw and fy + fh <= ay + ah, shown
    assert fw >= 1300 and fh >= 700  # shrunk to the screen, not to a stamp
    assert abs((fx + fw / 2) - (ax + aw / 2)) <= 2 and abs((fy + fh / 2) - (ay + ah / 2)) <= 2


def test_on_a_laptop_screen_the_frame_fits_and_the_panels_stay_usable(rig, open_window, qtbot) -> None:
    from qtpy import QtCore, QtWidgets

    window = open_window(rig, _preview(rig), resize=False)
    window.resize(1500, 860)  # as before the fit, e.g. a geometry saved on a larger monitor
    laptop = QtCore.QRect(0, 0, 1366, 768 - 40)  # a 1366x768 screen less a 40 px task bar
    window.fit_to_screen(laptop)
    qtbot.wait(20)
    assert laptop.contains(window.frameGeometry()), window.frameGeometry()
    assert window.minimumSizeHint().width() <= laptop.width() and window.minimumSizeHint().height() <= laptop.height()
    centre = window.frameGeometry().center()
    assert abs(centre.x() - laptop.center().x()) <= 4 and abs(centre.y() - laptop.center().y()) <= 20
    # the image views share the space left by the docks; every one of them is still a usable size
    for panel in window.panels:
        assert panel.width() >= 150 and panel.height() >= 120, (panel, panel.size())
    docks = {d.windowTitle(): d for d in window.findChildren(QtWidgets.QDockWidget) if d.isVisible()}
    assert {"Controls", "Log"} <= set(docks)
    assert docks["Controls"].width() >= 300 and docks["Log"].height() >= 60
    controls = docks["Controls"].widget()
    assert isinstance(controls, QtWidgets.QScrollArea)
    assert controls.horizontalScrollBar().maximum() == 0  # channel rows, buttons and boxes fit across the dock
    window.fit_to_screen(QtCore.QRect(0, 0, 2560, 1440))  # a window that fits is left where it is
    assert laptop.contains(window.frameGeometry())
