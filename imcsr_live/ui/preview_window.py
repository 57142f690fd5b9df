"""Demo window on the simulated microscope: widefield and per-structure ground truth side by side.

The worker thread produces finished 8-bit images; this window only uploads the newest one on a timer
("latest wins"), so the GUI thread never simulates or reconstructs anything.
"""

from __future__ import annotations

import pyqtgraph as pg
from qtpy import QtCore, QtGui, QtWidgets

from imcsr_live.config import RigConfig
from imcsr_live.pipeline.preview import PreviewFrame, SimulatedPreview

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class PreviewWindow(QtWidgets.QMainWindow):
    """Two synced views (widefield on the camera grid scaled 2x, overlay on the SR grid) plus a status line."""

    def __init__(self, rig: RigConfig, preview: SimulatedPreview, poll_ms: int = 100) -> None:
        super().__init__()
        self.rig = rig
        self.preview = preview
        self.shown_index = -1
        self.setWindowTitle("imcsr-live — simulated microscope")
        self.resize(1300, 720)

        layout = pg.GraphicsLayoutWidget()
        self.setCentralWidget(layout)
        self.widefield_view = layout.addViewBox(row=1, col=0, lockAspect=True, invertY=True)
        self.overlay_view = layout.addViewBox(row=1, col=1, lockAspect=True, invertY=True)
        self.overlay_view.setXLink(self.widefield_view)
        self.overlay_view.setYLink(self.widefield_view)
        layout.addLabel("Widefield (sum of the 9 raw SIM frames)", row=0, col=0)
        legend = "  ".join(f"<span style='color:{s.color}'>&#9632; {s.name}</span>" for s in rig.structures)
        layout.addLabel(f"Ground truth of the simulated specimen: {legend}", row=0, col=1)

        self.widefield_item = pg.ImageItem()
        self.widefield_item.setTransform(
            QtGui.QTransform.fromScale(2.0, 2.0)
        )  # camera pixels -> SR pixels, so the views align
        self.overlay_item = pg.ImageItem()
        self.widefield_view.addItem(self.widefield_item)
        self.overlay_view.addItem(self.overlay_item)
        self._add_scale_bar(self.overlay_view)

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
        """Show the newest frame if it is new; report errors from the worker."""
        if self.preview.error is not None:
            self.status.setText(f"acquisition stopped: {self.preview.error}")
            return
        frame = self.preview.latest()
        if frame is None or frame.point.index == self.shown_index:
            return
        self.show_frame(frame)

    def show_frame(self, frame: PreviewFrame) -> None:
        first = self.shown_index < 0
        self.widefield_item.setImage(frame.widefield_u8, levels=(0, 255), autoLevels=False)
        self.overlay_item.setImage(frame.overlay_rgb, levels=(0, 255), autoLevels=False)
        if first:
            self.widefield_view.autoRange(padding=0)
        self.shown_index = frame.point.index
        stats = self.preview.stats
        self.status.setText(
            f"timepoint {frame.point.index + 1}   t = {frame.point.time_s:6.1f} s   "
            f"simulated acquisition {frame.acquired_s * 1e3:5.0f} ms   skipped slots {stats.skipped_slots}   "
            f"interval {self.preview.interval_s:g} s"
        )

    def grab_png(self, path: str) -> None:
        """Render the window (works offscreen) and save it as PNG."""
        QtWidgets.QApplication.processEvents()
        if not self.grab().save(path, "PNG"):
            raise OSError(f"could not save the screenshot to {path}")

    def closeEvent(self, event: object) -> None:
        self.timer.stop()
        self.preview.stop()
        super().closeEvent(event)
