"""Monitor window: a grey view and a colour overlay side by side (synced zoom/pan), scale bar, status line.

Shows any :class:`~imcsr_live.pipeline.views.DisplaySource`: the live pipeline (SR + separated channels) or the
simulated microscope's ground-truth preview. Sources render 8-bit images on their worker threads; this window
only uploads the newest one on a timer ("latest wins"), so the GUI thread never reconstructs or infers.
"""

from __future__ import annotations

import pyqtgraph as pg
from qtpy import QtCore, QtGui, QtWidgets

from imcsr_live.config import RigConfig
from imcsr_live.pipeline.views import DisplayImages, DisplaySource

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class MonitorWindow(QtWidgets.QMainWindow):
    """Two synced views plus a status line."""

    def __init__(self, rig: RigConfig, source: DisplaySource, poll_ms: int = 100, title: str = "") -> None:
        super().__init__()
        self.rig = rig
        self.source = source
        self.shown_index = -1
        self.setWindowTitle(title or "imcsr-live")
        self.resize(1300, 720)

        layout = pg.GraphicsLayoutWidget()
        self.setCentralWidget(layout)
        self.left_view = layout.addViewBox(row=1, col=0, lockAspect=True, invertY=True)
        self.right_view = layout.addViewBox(row=1, col=1, lockAspect=True, invertY=True)
        self.right_view.setXLink(self.left_view)
        self.right_view.setYLink(self.left_view)
        layout.addLabel(source.left_title, row=0, col=0)
        layout.addLabel(source.right_title, row=0, col=1)

        self.left_item = pg.ImageItem()
        self.right_item = pg.ImageItem()
        self.left_view.addItem(self.left_item)
        self.right_view.addItem(self.right_item)
        self._add_scale_bar(self.right_view)

        self.status = QtWidgets.QLabel("waiting for the first timepoint ...")
        self.statusBar().addWidget(self.status, 1)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(poll_ms)

    def _add_scale_bar(self, view: pg.ViewBox) -> None:
        sr_px_um = self.rig.optics.pixel_size_um / 2
        bar = pg.ScaleBar(size=5.0 / sr_px_um, suffix="", width=6, brush="w")
        bar.text.setText("5 µm")
        bar.setParentItem(view)
        bar.anchor((1, 1), (1, 1), offset=(-20, -20))

    def refresh(self) -> None:
        """Show the newest images if they are new; report errors from the source."""
        error = self.source.error_text()
        images = self.source.newest()
        if images is not None and images.key != self.shown_index:
            self.show_images(images)
        if error:
            self.status.setText(f"{self.status.text().split('   |')[0]}   | {error}")

    def show_images(self, images: DisplayImages) -> None:
        first = self.shown_index < 0
        # camera-grid images are scaled onto the SR grid so both views align pixel for pixel
        self.left_item.setTransform(QtGui.QTransform.fromScale(images.left_scale, images.left_scale))
        self.left_item.setImage(images.left, levels=(0, 255), autoLevels=False)
        self.right_item.setImage(images.right, levels=(0, 255), autoLevels=False)
        if first:
            self.left_view.autoRange(padding=0)
        self.shown_index = images.key
        self.status.setText(images.status)

    def grab_png(self, path: str) -> None:
        """Render the window (works offscreen) and save it as PNG."""
        QtWidgets.QApplication.processEvents()
        if not self.grab().save(path, "PNG"):
            raise OSError(f"could not save the screenshot to {path}")

    def closeEvent(self, event: object) -> None:
        self.timer.stop()
        self.source.stop()
        super().closeEvent(event)
