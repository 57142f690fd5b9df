"""The napari plugin's tests need the ``napari`` extra and an X display for napari's OpenGL canvas.

pytest-xvfb (dev extra) starts a virtual display when Xvfb is installed (.ci/run installs it); Qt stays on the
offscreen platform, which renders through that display's GLX.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("napari", reason="the napari extra is not installed (pip install -e '.[dev]')")


@pytest.fixture(autouse=True)
def _x_display() -> None:
    # checked per test: pytest-xvfb sets DISPLAY after this file is imported
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display for napari's OpenGL canvas: install Xvfb (apt-get install xvfb)")


@pytest.fixture
def notifications():
    """Messages napari shows as notifications during the test, in order."""
    from napari.utils.notifications import notification_manager

    shown: list[str] = []

    def collect(event) -> None:
        shown.append(str(event.message if hasattr(event, "message") else event))

    notification_manager.notification_ready.connect(collect)
    yield shown
    notification_manager.notification_ready.disconnect(collect)
