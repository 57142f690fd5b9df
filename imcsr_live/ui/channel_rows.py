"""Channel rows: colour, visibility, min/max over a small histogram, Auto (once / continuous), gamma.

Each row edits one :class:`~imcsr_live.ui.lut.ChannelDisplay` and emits ``changed(index)``; the main window
applies it to the overlay. Levels are in channel values (the separated intensities), not display counts; the
panel names their unit (the source's ``channel_unit``) above the rows, and the histograms and level boxes say it
in their tooltips.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtGui, QtWidgets

from imcsr_live.pipeline.views import ImageLayer
from imcsr_live.ui.lut import PALETTES, ChannelDisplay

RIG_COLOURS = "Rig colours"


class ChannelRow(QtWidgets.QFrame):
    """One channel's display controls."""

    changed = QtCore.Signal(int)

    def __init__(
        self, index: int, display: ChannelDisplay, unit: str = "", parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.index = index
        self.unit = unit
        self.display = display
        self.layer: ImageLayer | None = None
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(4, 2, 4, 2)
        grid.setVerticalSpacing(2)

        self.colour_button = QtWidgets.QPushButton()
        self.colour_button.setFixedWidth(28)
        self.colour_button.setToolTip("channel colour")
        self.colour_button.clicked.connect(self._choose_colour)
        self.visible_box = QtWidgets.QCheckBox(display.name)
        self.visible_box.setChecked(display.visible)
        self.visible_box.setToolTip("show this channel in the overlay")
        self.visible_box.toggled.connect(self._visible_toggled)
        self.auto_button = QtWidgets.QPushButton("Auto")
        self.auto_button.setToolTip("set min/max to the percentiles of the current frame ([display] percentiles)")
        self.auto_button.clicked.connect(self.auto_once)
        self.auto_box = QtWidgets.QCheckBox("cont.")
        self.auto_box.setToolTip("auto min/max on every new frame")
        self.auto_box.setChecked(display.auto)
        self.auto_box.toggled.connect(self._auto_toggled)
        self.gamma_spin = QtWidgets.QDoubleSpinBox()
        self.gamma_spin.setRange(0.1, 5.0)
        self.gamma_spin.setSingleStep(0.1)
        self.gamma_spin.setDecimals(2)
        self.gamma_spin.setPrefix("γ ")
        self.gamma_spin.setValue(display.gamma)
        self.gamma_spin.valueChanged.connect(self._gamma_changed)
        grid.addWidget(self.colour_button, 0, 0)
        grid.addWidget(self.visible_box, 0, 1)
        grid.addWidget(self.auto_button, 0, 2)
        grid.addWidget(self.auto_box, 0, 3)
        grid.addWidget(self.gamma_spin, 0, 4)

        self.histogram = pg.PlotWidget(background=None)
        self.histogram.setFixedHeight(46)
        self.histogram.setMouseEnabled(x=False, y=False)
        self.histogram.hideButtons()
        self.histogram.getPlotItem().hideAxis("left")
        self.histogram.getPlotItem().hideAxis("bottom")
        self.histogram.setMenuEnabled(False)
        in_unit = f" ({unit})" if unit else ""
        self.histogram.setToolTip(f"{display.name}: pixels per value{in_unit}, log scale; the shaded band is min/max")
        self.curve = self.histogram.plot([0, 1], [0], stepMode="center", fillLevel=0)
        self.region = pg.LinearRegionItem(
            values=display.levels or (0.0, 1.0), swapMode="sort", brush=(128, 128, 128, 40),
            hoverBrush=(128, 128, 128, 70),
        )  # fmt: skip
        self.region.sigRegionChangeFinished.connect(self._region_moved)
        self.histogram.addItem(self.region)
        grid.addWidget(self.histogram, 1, 0, 1, 5)

        self.min_spin = _level_spin("min")
        self.max_spin = _level_spin("max")
        for spin in (self.min_spin, self.max_spin):
            spin.setToolTip(f"display level{in_unit}")
        self.min_spin.editingFinished.connect(self._spins_edited)
        self.max_spin.editingFinished.connect(self._spins_edited)
        grid.addWidget(self.min_spin, 2, 0, 1, 2)
        grid.addWidget(self.max_spin, 2, 2, 1, 3)
        self._apply_colour()
        self._show_levels()

    # -- from the window ----------------------------------------------------------------------------------------
    def show_layer(self, layer: ImageLayer) -> None:
        """A new frame: update the histogram; auto levels if continuous (or never set)."""
        self.layer = layer
        log_counts = np.log10(1.0 + layer.hist_counts.astype(np.float64))
        self.curve.setData(layer.hist_edges, log_counts)
        if self.display.auto or self.display.levels is None:
            self._set_levels(layer.auto_levels)

    def auto_once(self) -> None:
        if self.layer is not None:
            self._set_levels(self.layer.auto_levels)

    def set_colour(self, colour: str) -> None:
        self.display.color = colour.upper()
        self._apply_colour()
        self.changed.emit(self.index)

    def set_visible(self, visible: bool) -> None:
        self.visible_box.setChecked(visible)

    # -- internals ------------------------------------------------------------------------------------------------
    def _set_levels(self, levels: tuple[float, float]) -> None:
        low, high = float(levels[0]), float(levels[1])
        if high <= low:
            high = low + max(abs(low) * 1e-6, 1e-9)
        if self.display.levels == (low, high):
            return
        self.display.levels = (low, high)
        self._show_levels()
        self.changed.emit(self.index)

    def _show_levels(self) -> None:
        levels = self.display.levels or (0.0, 1.0)
        for widget, value in ((self.min_spin, levels[0]), (self.max_spin, levels[1])):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.region.blockSignals(True)
        self.region.setRegion(levels)
        self.region.blockSignals(False)

    def _apply_colour(self) -> None:
        colour = self.display.color
        self.colour_button.setStyleSheet(f"background-color: {colour}; border: 1px solid #555;")
        brush = QtGui.QColor(colour)
        brush.setAlpha(110)
        self.curve.setPen(pg.mkPen(colour))
        self.curve.setBrush(pg.mkBrush(brush))

    def _choose_colour(self) -> None:
        chosen = QtWidgets.QColorDialog.getColor(QtGui.QColor(self.display.color), self, f"{self.display.name} colour")
        if chosen.isValid():
            self.set_colour(chosen.name())

    def _visible_toggled(self, visible: bool) -> None:
        self.display.visible = visible
        self.changed.emit(self.index)

    def _auto_toggled(self, on: bool) -> None:
        self.display.auto = on
        if on:
            self.auto_once()
        self.changed.emit(self.index)

    def _gamma_changed(self, value: float) -> None:
        self.display.gamma = float(value)
        self.changed.emit(self.index)

    def _region_moved(self) -> None:
        low, high = self.region.getRegion()
        self._turn_off_auto()
        self._set_levels((low, high))

    def _spins_edited(self) -> None:
        self._turn_off_auto()
        self._set_levels((self.min_spin.value(), self.max_spin.value()))

    def _turn_off_auto(self) -> None:
        # a hand-set level would be overwritten by the next frame otherwise
        if self.display.auto:
            self.auto_box.blockSignals(True)
            self.auto_box.setChecked(False)
            self.auto_box.blockSignals(False)
            self.display.auto = False


def _level_spin(prefix: str) -> QtWidgets.QDoubleSpinBox:
    spin = QtWidgets.QDoubleSpinBox()
    spin.setRange(-1e9, 1e9)
    spin.setDecimals(4)
    spin.setSingleStep(0.01)
    spin.setPrefix(f"{prefix} ")
    spin.setKeyboardTracking(False)
    return spin


class ChannelPanel(QtWidgets.QGroupBox):
    """All channel rows plus a palette chooser (rig colours or a colour-blind-safe set)."""

    changed = QtCore.Signal(int)

    def __init__(
        self,
        displays: list[ChannelDisplay],
        rig_colours: list[str],
        unit: str = "",
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        """``unit``: of the channel values (levels and histograms), shown above the rows."""
        super().__init__("Channels", parent)
        self.rig_colours = rig_colours
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        palette_row = QtWidgets.QHBoxLayout()
        palette_row.addWidget(QtWidgets.QLabel("Palette"))
        self.palette_box = QtWidgets.QComboBox()
        self.palette_box.addItems([RIG_COLOURS, *PALETTES])
        self.palette_box.setToolTip("colour-blind-safe sets; single colours: click a colour button")
        self.palette_box.activated.connect(lambda _: self.apply_palette(self.palette_box.currentText()))
        palette_row.addWidget(self.palette_box, 1)
        layout.addLayout(palette_row)
        self.unit_label = QtWidgets.QLabel(f"Levels and histograms in {unit}" if unit else "")
        self.unit_label.setWordWrap(True)
        self.unit_label.setStyleSheet("color: palette(mid); font-size: 8pt;")
        self.unit_label.setVisible(bool(unit))
        layout.addWidget(self.unit_label)
        self.rows = [ChannelRow(i, d, unit) for i, d in enumerate(displays)]
        for row in self.rows:
            row.changed.connect(self.changed)
            layout.addWidget(row)
        layout.addStretch(1)

    def apply_palette(self, name: str) -> None:
        colours = self.rig_colours if name == RIG_COLOURS else PALETTES[name]
        for row in self.rows:
            row.set_colour(colours[row.index % len(colours)])
