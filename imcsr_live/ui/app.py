"""Start the Qt application for the demo window, optionally save a screenshot and quit."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from imcsr_live.config import RigConfig
from imcsr_live.pipeline.views import DisplaySource

log = logging.getLogger(__name__)


def run_monitor_gui(rig: RigConfig, source: DisplaySource, screenshot: Path | None = None, title: str = "") -> int:
    """Show the main window until it is closed; with ``screenshot``, save it after the last frame and quit."""
    from qtpy import QtCore, QtWidgets

    from imcsr_live.ui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = MainWindow(rig, source, title=title, persist=screenshot is None)
    window.show()
    source.start()

    if screenshot is not None:

        def check_done() -> None:
            if not source.running:
                window.refresh()
                window.update_status()
                window.grab_png(str(screenshot))
                log.info("screenshot saved to %s", screenshot)
                window.close()
                app.exit(0)

        poll = QtCore.QTimer(window)
        poll.timeout.connect(check_done)
        poll.start(100)
    code = app.exec()
    source.stop()
    window.deleteLater()
    QtWidgets.QApplication.processEvents()
    return int(code)
