"""The live-imaging window: widefield, grey (SR / residual / uncertainty) and colour overlay views side by side
(linked zoom/pan), channel rows, acquisition, record and live-validation controls, log panel, error notice and
status bar.

Sources prepare :class:`~imcsr_live.pipeline.views.DisplayFrame` s on their worker threads; this window only
uploads the newest one on a timer ("latest wins"), so the GUI thread never reconstructs, infers or colours.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import numpy as np
from qtpy import QtCore, QtWidgets

from imcsr_live.config import RigConfig
from imcsr_live.pipeline.views import (
    GREY_LABELS,
    GREY_TITLES,
    GREY_UNITS,
    WIDEFIELD_UNIT,
    DisplayFrame,
    DisplaySource,
)
from imcsr_live.ui.acquisition_panel import AcquisitionPanel
from imcsr_live.ui.channel_rows import ChannelPanel
from imcsr_live.ui.log_panel import LogPanel, NoticeBanner
from imcsr_live.ui.lut import colour_lut
from imcsr_live.ui.overlay_view import GreyPanel, OverlayPanel, ViewSync
from imcsr_live.ui.record_panel import RecordPanel
from imcsr_live.ui.settings import channel_displays, load_settings, save_settings
from imcsr_live.ui.status_bar import StatusLine
from imcsr_live.ui.training_panel import TrainingPanel
from imcsr_live.ui.validation_panel import ValidationPanel

#: The window's design size; on a smaller screen it is shrunk to the screen's available area (:func:`fitted_geometry`).
DESIGN_SIZE = (1500, 860)
#: Window-manager frame assumed before the window is shown (title bar, borders); the real one is used once known.
ASSUMED_FRAME = QtCore.QMargins(4, 32, 4, 4)


def with_unit(title: str, unit: str) -> str:
    """A panel title with the unit of its values on a second, smaller line (the panels are narrow)."""
    return f"{title}<br><span style='font-size:8pt; color:#bbbbbb'>{unit}</span>" if unit else title


def fitted_geometry(
    size: QtCore.QSize, available: QtCore.QRect, frame: QtCore.QMargins, minimum: QtCore.QSize | None = None
) -> QtCore.QRect:
    """The client rectangle for a window of ``size`` whose frame (``frame`` around it) fits ``available``,
    centred there: never larger than the available area less the frame, never smaller than ``minimum``."""
    room = available.marginsRemoved(frame)
    width, height = min(size.width(), room.width()), min(size.height(), room.height())
    if minimum is not None:
        width, height = max(width, minimum.width()), max(height, minimum.height())
    rect = QtCore.QRect(0, 0, width, height)
    rect.moveCenter(room.center())
    return rect


class MainWindow(QtWidgets.QMainWindow):
    """Composes the panels; polls the source every ``poll_ms`` and renders the newest frame only."""

    def __init__(
        self, rig: RigConfig, source: DisplaySource, poll_ms: int = 100, title: str = "", persist: bool = True
    ) -> None:
        super().__init__()
        self.rig = rig
        self.source = source
        self.info = source.info()
        self.frame: DisplayFrame | None = None  # the one on screen
        self.frames_shown = 0
        self._display_ms: deque[float] = deque(maxlen=20)
        self._cursor: tuple[float, float] | None = None
        self._ticks = 0
        self.setWindowTitle(title or "imcsr-live")
        self.resize(*DESIGN_SIZE)
        self.persist = persist  # False: neither read nor write the saved settings (screenshots, benchmarks)
        self._shown_once = False  # the window manager's real frame is known from the first show on
        self._fitted_size: QtCore.QSize | None = None  # the size fit_to_screen gave (fitted again at first show)
        self.log_panel = LogPanel()  # first, so a warning about damaged saved settings shows in it
        self.log_panel.attach(logging.getLogger("imcsr_live"))
        saved = load_settings() if persist else {}
        self.displays = channel_displays(source.channel_names, source.channel_colors, rig.display.gamma, saved)
        self._build_views(show_channel_panels=bool(saved.get("channel_panels", False)))
        self._build_side_panels()
        self._build_status_bar()
        self._connect_signals()
        self._restore_settings(saved)
        if persist:  # screenshot runs keep the design size (reproducible pictures, whatever the screen)
            self.fit_to_screen()
        self._start_polling(poll_ms)

    # -- construction ----------------------------------------------------------------------------------------------
    def _build_views(self, show_channel_panels: bool) -> None:
        """The linked image views (overlay large; widefield and grey view stacked beside it), the error notice
        and the view tool row, as the central widget."""
        self.notice = NoticeBanner()
        self.widefield_panel = GreyPanel(with_unit("Widefield (mean of the raw frames)", WIDEFIELD_UNIT))
        self.grey_panel = GreyPanel(GREY_TITLES["sr"])
        self.overlay = OverlayPanel(len(self.displays), self._overlay_title())
        # small per-channel panels under the overlay (off by default: they cost an upload each)
        self.channel_panels = [OverlayPanel(1, d.name) for d in self.displays]
        self.sync = ViewSync([*self.panels, *self.channel_panels])
        self.channel_strip = QtWidgets.QWidget()
        strip = QtWidgets.QHBoxLayout(self.channel_strip)
        strip.setContentsMargins(0, 0, 0, 0)
        for panel in self.channel_panels:
            strip.addWidget(panel)
        self.channel_strip.setVisible(show_channel_panels)
        tools = self._build_view_tools()
        central = QtWidgets.QWidget()
        column = QtWidgets.QVBoxLayout(central)
        column.setContentsMargins(2, 2, 2, 2)
        column.addWidget(self.notice)
        column.addLayout(tools)
        column.addWidget(self._build_view_splitter(), 1)
        self.setCentralWidget(central)

    def _build_view_tools(self) -> QtWidgets.QHBoxLayout:
        """Zoom buttons, grey-view choice, channel-panels switch and the frame label, in one row."""
        self.fit_button = QtWidgets.QPushButton("Fit")
        self.fit_button.setShortcut("F")
        self.fit_button.setToolTip("whole image (F); mouse wheel zooms, drag pans, in any view")
        self.one_button = QtWidgets.QPushButton("1:1")
        self.one_button.setShortcut("1")
        self.one_button.setToolTip("one image pixel per screen pixel (1)")
        self.grey_choice = QtWidgets.QComboBox()
        for kind in self.info.grey_kinds:
            self.grey_choice.addItem(GREY_LABELS[kind], kind)
        self.grey_choice.setToolTip("middle view: SR input, or what the channels do not explain (SR − Σ channels)")
        self.grey_choice.setEnabled(len(self.info.grey_kinds) > 1)
        self.split_box = QtWidgets.QCheckBox("Channel panels")
        self.split_box.setToolTip("each channel on its own, in its colour, under the overlay")
        self.split_box.setChecked(self.channel_strip.isVisible())
        self.frame_label = QtWidgets.QLabel("")
        tools = QtWidgets.QHBoxLayout()
        for widget in (self.fit_button, self.one_button, QtWidgets.QLabel("Grey view"), self.grey_choice,
                       self.split_box):  # fmt: skip
            tools.addWidget(widget)
        tools.addStretch(1)
        tools.addWidget(self.frame_label)
        return tools

    def _build_view_splitter(self) -> QtWidgets.QSplitter:
        """The overlay (with the channel strip under it) large; widefield and the grey view stacked beside it."""
        greys = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        greys.addWidget(self.widefield_panel)
        greys.addWidget(self.grey_panel)
        colour = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        colour.addWidget(self.overlay)
        colour.addWidget(self.channel_strip)
        colour.setStretchFactor(0, 3)
        colour.setStretchFactor(1, 1)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.addWidget(colour)
        splitter.addWidget(greys)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([700, 350])
        return splitter

    def _build_side_panels(self) -> None:
        """Channel rows, acquisition and record controls in a scrollable dock on the right; the log at the bottom."""
        self.channels = ChannelPanel(self.displays, list(self.source.channel_colors), self.info.channel_unit)
        self.acquisition = AcquisitionPanel(self.source)
        self.record = RecordPanel(self.source, self.display_metadata)
        self.validation = ValidationPanel(self.source, self.source.channel_names, self.source.channel_colors)
        self.training = TrainingPanel(self.source)
        side = QtWidgets.QWidget()
        side_layout = QtWidgets.QVBoxLayout(side)
        side_layout.setContentsMargins(2, 2, 2, 2)
        for box in (self.channels, self.acquisition, self.record):
            side_layout.addWidget(box)
        side_layout.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        # as wide as the controls need (never a sideways scroll bar), whatever the window's size history
        bar = scroll.verticalScrollBar().sizeHint().width()
        scroll.setMinimumWidth(max(330, side.minimumSizeHint().width() + bar + 2 * scroll.frameWidth()))
        self._dock("Controls", scroll, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        log_dock = self._dock("Log", self.log_panel, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        # live validation beside the log (only where the source can validate: a rig with a preset per structure)
        self.validation_dock = self._dock("Validation (real colours)", self.validation,
                                          QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)  # fmt: skip
        self.splitDockWidget(log_dock, self.validation_dock, QtCore.Qt.Orientation.Horizontal)
        self.validation_dock.setVisible(self.info.can_validate)
        # training data (acquire-training from the window) beside them, where the source can switch presets
        self.training_dock = self._dock("Training data", self.training, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.validation_dock, self.training_dock, QtCore.Qt.Orientation.Horizontal)
        self.training_dock.setVisible(self.info.can_acquire_training)
        self.resizeDocks([log_dock], [150 if self.info.can_validate else 120], QtCore.Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        self.status_line = StatusLine(self.statusBar())

    def _connect_signals(self) -> None:
        """Wire the views, tools and panels to the window (before saved settings are applied: a restored palette
        recolours the channels through ``channels.changed``)."""
        for panel in (*self.panels, *self.channel_panels):
            panel.cursor_moved.connect(self._cursor_moved)
        self.fit_button.clicked.connect(self.fit)
        self.one_button.clicked.connect(self.one_to_one)
        self.grey_choice.currentIndexChanged.connect(self._grey_kind_changed)
        self.split_box.toggled.connect(self._split_toggled)
        self.channels.changed.connect(self._channel_changed)
        self.record.recording_changed.connect(self.acquisition.set_recording)
        self.acquisition.restarted.connect(self._run_restarted)
        for side in (self.acquisition, self.record, self.validation, self.training):
            side.message.connect(self.log_panel.gui_message)

    def _restore_settings(self, saved: dict[str, Any]) -> None:
        """Palette, channel colours and levels, window geometry and dock layout from the saved settings."""
        if isinstance(saved.get("palette"), str):
            self.channels.palette_box.setCurrentText(saved["palette"])
        for index in range(len(self.displays)):
            self._apply_channel(index)
        self._publish_display_settings()
        if isinstance(saved.get("geometry"), str):
            self.restoreGeometry(QtCore.QByteArray.fromBase64(saved["geometry"].encode()))
        if isinstance(saved.get("state"), str):
            self.restoreState(QtCore.QByteArray.fromBase64(saved["state"].encode()))

    def _start_polling(self, poll_ms: int) -> None:
        """Poll the source every ``poll_ms``; numbers, notice and recording every ~0.5 s."""
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(poll_ms)
        self._slow_every = max(1, 500 // max(poll_ms, 1))

    # -- layout helpers --------------------------------------------------------------------------------------------
    def fit_to_screen(self, available: QtCore.QRect | None = None, centre: bool = False) -> None:
        """Shrink the window (frame included) to the screen's available area and centre it there, if it does not
        fit (e.g. the 1500x860 design size on a 1366x768 laptop, or a geometry saved on a larger monitor);
        ``centre``: centre it even if it fits."""
        if available is None:
            screen = self.screen() or QtWidgets.QApplication.primaryScreen()
            if screen is None:
                return
            available = screen.availableGeometry()
        frame = self._frame_margins()
        if available.contains(self.geometry().marginsAdded(frame)) and not centre:
            return
        self.setGeometry(fitted_geometry(self.size(), available, frame, self.minimumSizeHint()))
        self._fitted_size = self.size()

    def _frame_margins(self) -> QtCore.QMargins:
        """The window manager's frame around the client area (assumed until the window has been shown)."""
        outer, inner = self.frameGeometry(), self.geometry()
        real = QtCore.QMargins(inner.left() - outer.left(), inner.top() - outer.top(),
                               outer.right() - inner.right(), outer.bottom() - inner.bottom())  # fmt: skip
        return real if self._shown_once else ASSUMED_FRAME

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._shown_once:
            return
        self._shown_once = True
        if self.persist and self.size() == self._fitted_size:  # fitted with an assumed frame: again, centred
            self.fit_to_screen(centre=True)

    @property
    def panels(self) -> tuple[GreyPanel, GreyPanel, OverlayPanel]:
        return self.widefield_panel, self.grey_panel, self.overlay

    def _dock(self, title: str, widget: QtWidgets.QWidget, area: QtCore.Qt.DockWidgetArea) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        dock.setFeatures(
            QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _overlay_title(self) -> str:
        legend = "  ".join(f"<span style='color:{d.color}'>&#9632; {d.name}</span>" for d in self.displays if d.visible)
        return f"{self.source.title}<br>{legend}"

    # -- rendering -------------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Timer tick: show the newest frame if it is new; every ~0.5 s update numbers, notice and recording."""
        frame = self.source.newest()
        if frame is not None and frame is not self.frame:
            self.show_frame(frame)
        self._ticks += 1
        if self._ticks % self._slow_every == 0:
            self.update_status()

    def show_frame(self, frame: DisplayFrame) -> None:
        """Upload one frame: channel rows (histograms, auto levels) first, then the images with final levels."""
        first = self.frame is None
        for row, layer in zip(self.channels.rows, frame.channels, strict=True):
            row.blockSignals(True)  # one upload per item below instead of one per level change
            row.show_layer(layer)
            row.blockSignals(False)
        for index, display in enumerate(self.displays):
            if display.levels is not None:
                self.overlay.preset_levels(index, display.levels)
        self.overlay.show_layers(frame.channels)
        if self.channel_strip.isVisible():
            self._show_channel_panels(frame)
        grey_unit = frame.grey_unit or GREY_UNITS.get(frame.grey_kind, "")
        self.grey_panel.show_layer(frame.grey, signed=frame.grey_kind == "residual", unit=grey_unit)
        grey_title = frame.grey_title or GREY_TITLES.get(frame.grey_kind, frame.grey_kind)
        self.grey_panel.set_title(with_unit(grey_title, grey_unit))
        self.widefield_panel.show_layer(frame.widefield, frame.widefield_scale)
        stamp = f"t = {frame.time_s:.1f} s    timepoint {frame.index + 1}"
        self.overlay.corner.setText(stamp)
        self.frame_label.setText(stamp + ("    " + "; ".join(frame.warnings) if frame.warnings else ""))
        self.status_line.show_confidence(frame.confidence)
        if first:
            _, w = frame.channels[0].shape
            for panel in (*self.panels, *self.channel_panels):
                panel.add_scale_bar(self.info.pixel_size_um, w)
            self.fit()
            self._publish_display_settings()
        self.frame = frame
        self.frames_shown += 1
        self._display_ms.append((time.monotonic() - frame.published_s) * 1e3)
        if self._cursor is not None:
            self._cursor_moved(*self._cursor)

    def update_status(self) -> None:
        status = self.source.status()
        display_ms = float(np.median(self._display_ms)) if self._display_ms else None
        self.status_line.show(status, display_ms)
        events = self.source.error_events()
        if events:
            newest = events[-1]
            self.notice.show_error(newest.seq, str(newest), newest.seq)
        self.record.refresh()
        self.validation.refresh()
        self.training.refresh()
        if self.acquisition.show_run(status):
            self.record.run_ended()  # finishes a recording still running
        self.acquisition.set_restart_ready(not self.record.finishing)  # the old run's recording is final first

    def _run_restarted(self) -> None:
        """Run again started a fresh run: recording is offered again, and the notice counts its errors from 1."""
        self.notice.reset()
        self.record.run_restarted()

    # -- channels ----------------------------------------------------------------------------------------------
    def _channel_changed(self, index: int) -> None:
        self._apply_channel(index)
        self.overlay.set_title(self._overlay_title())
        self._publish_display_settings()

    def _apply_channel(self, index: int) -> None:
        display = self.displays[index]
        lut = colour_lut(display.color, display.gamma)
        self.overlay.set_lut(index, lut)
        self.overlay.set_visible(index, display.visible)
        self.channel_panels[index].set_lut(0, lut)
        if display.levels is not None:
            self.overlay.set_levels(index, display.levels)
            self.channel_panels[index].set_levels(0, display.levels)

    def _show_channel_panels(self, frame: DisplayFrame) -> None:
        for panel, display, layer in zip(self.channel_panels, self.displays, frame.channels, strict=True):
            if display.levels is not None:
                panel.preset_levels(0, display.levels)
            panel.show_layers([layer])

    def _split_toggled(self, on: bool) -> None:
        self.channel_strip.setVisible(on)
        if on and self.frame is not None:
            self._show_channel_panels(self.frame)
        QtCore.QTimer.singleShot(0, lambda: self.sync.sync_from(self.overlay))  # after the layout settled

    # -- zoom ------------------------------------------------------------------------------------------------------
    def fit(self) -> None:
        """The whole image in the overlay; the other views show the same region."""
        self.overlay.fit()
        self.sync.sync_from(self.overlay)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel in the overlay; the other views show the same region."""
        self.overlay.one_to_one()
        self.sync.sync_from(self.overlay)

    def display_metadata(self) -> dict[str, Any]:
        """The display settings as recorded with the data (so a figure can be redrawn the same way)."""
        return {
            "display": {
                "channels": [d.to_dict() for d in self.displays],
                "palette": self.channels.palette_box.currentText(),
                "composite": "additive",
                "lut": "linear ramp to the colour, gamma baked in, 256 entries",
            }
        }

    def _publish_display_settings(self) -> None:
        self.source.set_display_settings(self.display_metadata()["display"])

    def _grey_kind_changed(self, _: int) -> None:
        self.source.set_grey_kind(self.grey_choice.currentData())

    # -- cursor ------------------------------------------------------------------------------------------------
    def _cursor_moved(self, x: float, y: float) -> None:
        self._cursor = (x, y)
        self.status_line.cursor.setText(self.cursor_text(x, y))

    def cursor_text(self, x: float, y: float) -> str:
        """'x 12  y 40   SR 103.2   Microtubules 0.412   ...' at channel-grid position (x, y)."""
        values = self.overlay.values_at(x, y)
        if values is None:
            return ""
        parts = [f"x {int(np.floor(x))}  y {int(np.floor(y))}"]
        grey = self.grey_panel.value_at(x, y)
        if grey is not None:
            parts.append(f"{GREY_LABELS.get(self.frame.grey_kind if self.frame else 'sr', 'grey')} {grey:.4g}")
        parts += [f"{d.name} {v:.4g}" for d, v in zip(self.displays, values, strict=True)]
        return "   ".join(parts)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            "channels": {d.name: d.to_dict() for d in self.displays},
            "palette": self.channels.palette_box.currentText(),
            "channel_panels": self.split_box.isChecked(),
            "geometry": bytes(self.saveGeometry().toBase64().data()).decode(),
            "state": bytes(self.saveState().toBase64().data()).decode(),
        }

    def grab_png(self, path: str) -> None:
        """Render the window (works offscreen) and save it as PNG."""
        QtWidgets.QApplication.processEvents()
        if not self.grab().save(path, "PNG"):
            raise OSError(f"could not save the screenshot to {path}")

    def closeEvent(self, event: Any) -> None:
        self.timer.stop()
        if self.persist:
            save_settings(self.settings())
        try:
            self.training.shutdown()  # the timepoint in progress first: the backend must not close under it
            self.source.stop()  # finalises a recording (also one the record button is still finishing)
        finally:  # a failing backend close must not leave this panel's handler on the logger
            self.log_panel.detach()
            super().closeEvent(event)
