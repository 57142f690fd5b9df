"""UI test helpers: real windows offscreen, closed deterministically; live runs on the simulated microscope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imcsr_live.config import RigConfig, load_rig_config
from imcsr_live.synth.world import WorldSettings

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


@pytest.fixture(scope="session")
def rig() -> RigConfig:
    return load_rig_config(SIMULATED)


@pytest.fixture
def open_window(qtbot) -> Iterator[Callable[..., object]]:
    """Factory for MainWindows; every one is closed (settings saved, source stopped) and deleted at the end."""
    from qtpy import QtWidgets

    from imcsr_live.ui.main_window import MainWindow

    windows: list[MainWindow] = []

    def make(rig: RigConfig, source: object, **kwargs: object) -> MainWindow:
        resize = kwargs.pop("resize", True)
        window = MainWindow(rig, source, poll_ms=kwargs.pop("poll_ms", 20), **kwargs)  # type: ignore[arg-type]
        if resize:
            window.resize(1400, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        window.source.stop()
        window.deleteLater()
    QtWidgets.QApplication.processEvents()


@pytest.fixture
def live_pipeline() -> Callable[..., object]:
    """Factory: the real session plumbing (shipped model, torch engine, recorder factory), 64x64 simulated camera."""
    from imcsr_live.hardware.simulated import SimulatedBackend
    from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline

    def make(rig: RigConfig, timepoints: int | None, interval_s: float = 0.0, backend: object | None = None):
        backend = backend or SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
        return build_live_pipeline(rig, LiveRequest(None, timepoints, interval_s), backend=backend)  # type: ignore[arg-type]

    return make
