"""Live validation panel: the on/off switch with its interval, the per-channel PCC trend and the newest error maps.

The source validates every K-th timepoint against the real colours (:mod:`imcsr_live.pipeline.validation`); this
panel only reads :meth:`DisplaySource.validation_state` on the window's status timer and redraws when a new
validated timepoint is there. Error maps are separated minus real in ``evaluate``'s normalised units (the real
image's 0.1-99.9 % range is 0..1), shown on a fixed blue-white-red scale of ±:data:`ERROR_RANGE`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtWidgets

from imcsr_live.errors import ImcsrError
from imcsr_live.pipeline.validation import ValidationState
from imcsr_live.pipeline.views import DisplaySource
from imcsr_live.ui.overlay_view import ZeroColourBar

ERROR_RANGE = 0.5  # error-map colour scale: -0.5 (blue, separated too dim) .. +0.5 (red, too bright)
ERROR_UNIT = "Δ (real range = 1)"  # separated − real, in units of the real image's 0.1-99.9 % range
DEFAULT_EVERY = 10


def error_lut() -> np.ndarray:
    """256-entry blue-white-red colour table (uint8 RGB)."""
    t = np.linspace(-1.0, 1.0, 256)
    up, down = np.clip(t, 0, 1), np.clip(-t, 0, 1)
    rgb = np.stack([1 - down, 1 - np.abs(t), 1 - up], axis=1)
    return (rgb * 255).round().astype(np.uint8)


class ValidationPanel(QtWidgets.QWidget):
    """In one row: the 'validate every K' switch and the newest scores, PCC per channel over time (pyqtgraph), the
    newest error map per channel."""

    message = QtCore.Signal(int, str)  # log level, text (for the log panel)

    def __init__(
        self,
        source: DisplaySource,
        names: Sequence[str],
        colors: Sequence[str],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.names = list(names)
        self.shown_index: int | None = None  # the validated timepoint on screen
        info = source.info()
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        controls = QtWidgets.QVBoxLayout()
        self.enable_box = QtWidgets.QCheckBox("Validate every")
        self.every_spin = QtWidgets.QSpinBox()
        self.every_spin.setRange(1, 100_000)
        self.every_spin.setValue(info.validate_every or DEFAULT_EVERY)
        self.every_spin.setSuffix(" timepoints")
        self.every_spin.setKeyboardTracking(False)
        self.enable_box.setChecked(info.validate_every is not None)
        tip = (
            "multi-colour sample: every K-th timepoint also takes one stack per structure's excitation preset; the "
            "separated channels are scored against those real colours (PCC as in `imcsr-live evaluate`)"
        )
        for widget in (self.enable_box, self.every_spin):
            widget.setEnabled(info.can_validate)
            widget.setToolTip(tip if info.can_validate else info.validation_note or "this source cannot validate")
        controls.addWidget(self.enable_box)
        controls.addWidget(self.every_spin)
        self.summary = QtWidgets.QLabel("no validated timepoint yet" if info.can_validate else info.validation_note)
        self.summary.setWordWrap(True)
        self.summary.setMinimumWidth(180)
        controls.addWidget(self.summary, 1)
        layout.addLayout(controls)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumSize(260, 120)
        self.plot.setBackground("k")
        self.plot.setLabel("left", "PCC")
        self.plot.setLabel("bottom", "timepoint")
        self.plot.setYRange(0.0, 1.0)
        self.plot.showGrid(y=True, alpha=0.3)
        self.plot.addLegend(offset=(-4, 4), labelTextSize="7pt")
        self.curves = [
            self.plot.plot([], [], pen=pg.mkPen(c, width=2), symbol="o", symbolSize=4, symbolBrush=c, name=n)
            for n, c in zip(self.names, colors, strict=True)
        ]
        layout.addWidget(self.plot, 2)
        self.maps = pg.GraphicsLayoutWidget()
        self.maps.setBackground("k")
        self.maps.setMinimumSize(100 * len(self.names), 120)
        self.maps.setToolTip(
            f"Δ = separated minus real, in units of the real image's 0.1-99.9 % range: blue -{ERROR_RANGE:g} (too dim) "
            f".. red +{ERROR_RANGE:g} (too bright)"
        )
        self.map_items: list[pg.ImageItem] = []
        lut = error_lut()
        for c, name in enumerate(self.names):
            self.maps.addLabel(name, row=0, col=c, size="7pt")
            view = self.maps.addViewBox(row=1, col=c, lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem(lut=lut, levels=(-ERROR_RANGE, ERROR_RANGE))
            view.addItem(item)
            self.map_items.append(item)
        colour_map = pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), lut)
        self.colour_bar = ZeroColourBar(colour_map, ERROR_UNIT, zero_pen="k", width=10, label_size="6pt")
        self.colour_bar.set_half_range(ERROR_RANGE)
        self.maps.addItem(self.colour_bar, row=1, col=len(self.names))
        layout.addWidget(self.maps, 2)
        self.enable_box.toggled.connect(self._apply)
        self.every_spin.valueChanged.connect(self._every_changed)

    def _every_changed(self, _: int) -> None:
        if self.enable_box.isChecked():
            self._apply(True)

    def _apply(self, on: bool) -> None:
        every = self.every_spin.value() if on else None
        try:
            self.source.set_validate_every(every)
        except ImcsrError as exc:
            self.message.emit(logging.WARNING, str(exc))
            self.enable_box.blockSignals(True)
            self.enable_box.setChecked(False)
            self.enable_box.blockSignals(False)
            return
        text = f"validating every {every} timepoints (from the next multiple of {every})" if on else "validation off"
        self.message.emit(logging.INFO, text)

    def refresh(self) -> None:
        """Redraw if a new timepoint was validated (called on the window's status timer)."""
        state = self.source.validation_state()
        if state is None or state.newest is None or state.newest.index == self.shown_index:
            return
        self.show_state(state)

    def show_state(self, state: ValidationState) -> None:
        """The PCC trend of every validated timepoint and the newest error maps."""
        x = np.array([i + 1 for i, _ in state.history], dtype=np.float64)  # 1-based, as in the window
        values = np.array([v for _, v in state.history], dtype=np.float64).reshape(len(x), -1)
        for c, curve in enumerate(self.curves):
            curve.setData(x, np.nan_to_num(values[:, c], nan=0.0))
        newest = state.newest
        assert newest is not None
        for item, image in zip(self.map_items, newest.display_error(), strict=True):
            item.setImage(image, levels=(-ERROR_RANGE, ERROR_RANGE), autoLevels=False)
        for item in self.map_items:
            view = item.getViewBox()
            if view is not None:
                view.autoRange(padding=0.0)
        scores = "  ".join(f"{n} {v:.2f}" for n, v in zip(newest.names, newest.pcc, strict=True))
        failed = f"  ({state.failures} failed)" if state.failures else ""
        self.summary.setText(f"timepoint {newest.index + 1}: PCC {scores}{failed}")
        self.shown_index = newest.index
