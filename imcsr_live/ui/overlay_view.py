"""Image panels: a grey view (SR, residual, widefield) and the additive colour overlay of the channels.

The overlay is one pyqtgraph ``ImageItem`` per channel, stacked, drawn with ``CompositionMode_Plus`` so Qt adds
the colours; each item gets uint16 counts, scalar levels and a 256-entry colour table with gamma baked in — the
fast path of pyqtgraph (docs/method.md#display-and-recording). All panels share one coordinate system:
channel-grid (SR) pixels. A signed grey image (the sum residual) is drawn with a diverging colour map, levels
symmetric about zero, and a colour bar in its unit with zero marked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from qtpy import QtCore, QtGui, QtWidgets

from imcsr_live.pipeline.views import ImageLayer

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

_NICE_UM = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)
#: Signed images: blue below zero, black at zero (the dark background stays dark where nothing is left), red above.
SIGNED_COLOUR_MAP = "CET-D4"


class ZeroColourBar(pg.ColorBarItem):
    """A fixed (not draggable) colour bar for signed values: levels symmetric about zero, ticks at both ends and at
    0, a line across the bar at 0, and the unit along it."""

    def __init__(
        self, colour_map: pg.ColorMap, unit: str = "", zero_pen: str = "w", width: int = 12, label_size: str = "9pt"
    ) -> None:
        super().__init__(values=(-1.0, 1.0), colorMap=colour_map, interactive=False, width=width, colorMapMenu=False)
        self.label_size = label_size
        self.zero_line = pg.InfiniteLine(pos=128, angle=0, pen=pg.mkPen(zero_pen, width=1))  # bar coordinates 0..256
        self.addItem(self.zero_line)
        self.set_unit(unit)

    def set_unit(self, unit: str) -> None:
        axis = self.getAxis("left")
        if axis.labelText != unit:
            axis.setLabel(unit, **{**axis.labelStyle, "font-size": self.label_size})  # keeps the axis' text colour

    def set_half_range(self, half: float) -> None:
        """Levels ``(-half, half)``: zero in the middle, where the line is."""
        self.setLevels((-half, half))
        self.axis.setTicks([[(-half, f"{-half:.3g}"), (0.0, "0"), (half, f"{half:.3g}")]])


def symmetric_levels(levels: tuple[float, float], floor: float) -> tuple[float, float]:
    """``(-m, m)`` with ``m`` the larger magnitude of ``levels`` (at least ``floor``): zero in the middle."""
    m = max(abs(levels[0]), abs(levels[1]), floor)
    return -m, m


def nice_bar_um(field_um: float) -> float:
    """The largest round length that fits a quarter of the field."""
    fitting = [v for v in _NICE_UM if v <= field_um / 4]
    return fitting[-1] if fitting else _NICE_UM[0]


class ImagePanel(pg.GraphicsLayoutWidget):
    """A titled view box (aspect locked, y down) with a corner label; emits the cursor in image pixels."""

    cursor_moved = QtCore.Signal(float, float)

    def __init__(self, title: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("k")
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.title = self.addLabel(title, row=0, col=0, size="9pt")
        self.view: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.corner = pg.LabelItem("", color="w", size="9pt", justify="left")
        self.corner.setParentItem(self.view)
        self.corner.anchor((0, 0), (0, 0), offset=(6, 4))
        self.scale_bar: pg.ScaleBar | None = None
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    def set_title(self, text: str) -> None:
        if self.title.text != text:
            self.title.setText(text, size="9pt")

    def _mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if self.view.sceneBoundingRect().contains(scene_pos):
            point = self.view.mapSceneToView(scene_pos)
            self.cursor_moved.emit(point.x(), point.y())

    def add_scale_bar(self, pixel_size_um: float, field_px: int) -> None:
        """A bar of a round length in µm, bottom right; replaced when the field changes."""
        if self.scale_bar is not None:
            self.scale_bar.setParentItem(None)
            self.scene().removeItem(self.scale_bar)
        length_um = nice_bar_um(field_px * pixel_size_um)
        bar = pg.ScaleBar(size=length_um / pixel_size_um, suffix="", width=5, brush="w")
        bar.text.setText(f"{length_um:g} µm")
        bar.setParentItem(self.view)
        bar.anchor((1, 1), (1, 1), offset=(-15, -15))
        self.scale_bar = bar

    def fit(self) -> None:
        self.view.autoRange(padding=0)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, centred where the view is now."""
        rect = self.view.viewRect()
        centre = rect.center()
        w, h = self.view.width(), self.view.height()
        self.view.setRange(
            xRange=(centre.x() - w / 2, centre.x() + w / 2), yRange=(centre.y() - h / 2, centre.y() + h / 2),
            padding=0,
        )  # fmt: skip


class ViewSync:
    """Keeps panels of different sizes showing the same image region (same centre and extent).

    pyqtgraph's axis links line views up by screen position (made for stacked plots), which shifts images in
    panels of different sizes; here a user zoom/pan in any panel, or :meth:`sync_from`, sets the region of all.
    """

    def __init__(self, panels: Sequence[ImagePanel]) -> None:
        self.panels = list(panels)
        self._busy = False
        for panel in self.panels:
            panel.view.sigRangeChangedManually.connect(lambda *_, p=panel: self.sync_from(p))

    def sync_from(self, source: ImagePanel) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            rect = source.view.viewRect()
            for panel in self.panels:
                if panel is not source:
                    panel.view.setRange(rect=rect, padding=0)
        finally:
            self._busy = False


class GreyPanel(ImagePanel):
    """One grey image (levels from its percentiles); ``scale`` maps its pixels onto the channel grid. A signed image
    (``signed=True``) gets a diverging colour map, levels symmetric about zero and a colour bar with zero marked."""

    def __init__(self, title: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.item = pg.ImageItem()
        self.view.addItem(self.item)
        self.layer: ImageLayer | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)  # in values, as drawn
        self.signed = False
        self._scale = 1.0
        colour_map = pg.colormap.get(SIGNED_COLOUR_MAP)
        self._signed_lut = colour_map.getLookupTable(nPts=256)
        self.colour_bar = ZeroColourBar(colour_map)
        self.colour_bar.setVisible(False)

    def show_layer(self, layer: ImageLayer | None, scale: float = 1.0, signed: bool = False, unit: str = "") -> None:
        """Show ``layer``; ``signed``: diverging colours about zero plus the colour bar, labelled with ``unit``."""
        self.layer = layer
        self._set_signed(signed, unit)
        if layer is None:
            self.item.clear()
            return
        if scale != self._scale:
            self.item.setTransform(QtGui.QTransform.fromScale(scale, scale))
            self._scale = scale
        self.levels = symmetric_levels(layer.auto_levels, layer.value_per_count) if signed else layer.auto_levels
        if signed:
            self.colour_bar.set_half_range(self.levels[1])
        low, high = (layer.to_counts(v) for v in self.levels)
        self.item.setImage(layer.counts, autoLevels=False, levels=(low, max(high, low + 1)))

    def _set_signed(self, signed: bool, unit: str) -> None:
        if signed:
            self.colour_bar.set_unit(unit)
        if signed == self.signed:
            return
        self.signed = signed
        self.item.setLookupTable(self._signed_lut if signed else None)
        if signed:
            self.ci.addItem(self.colour_bar, row=1, col=1)
        else:
            self.ci.removeItem(self.colour_bar)
        self.colour_bar.setVisible(signed)

    def value_at(self, x: float, y: float) -> float | None:
        """The value under channel-grid position (x, y), or None outside the image."""
        if self.layer is None:
            return None
        col, row = int(np.floor(x / self._scale)), int(np.floor(y / self._scale))
        h, w = self.layer.shape
        return self.layer.value_at(row, col) if 0 <= row < h and 0 <= col < w else None


class OverlayPanel(ImagePanel):
    """The channels stacked and added (``CompositionMode_Plus``), each with its colour table and levels."""

    def __init__(self, n_channels: int, title: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.items: list[pg.ImageItem] = []
        for index in range(n_channels):
            item = pg.ImageItem()
            if index > 0:  # the first one is drawn over black; the rest add to it
                item.setCompositionMode(QtGui.QPainter.CompositionMode.CompositionMode_Plus)
            item.setZValue(index)
            self.view.addItem(item)
            self.items.append(item)
        self.layers: list[ImageLayer | None] = [None] * n_channels
        self._levels: list[tuple[float, float]] = [(0.0, 1.0)] * n_channels

    def set_lut(self, index: int, lut: np.ndarray) -> None:
        self.items[index].setLookupTable(lut)

    def set_visible(self, index: int, visible: bool) -> None:
        self.items[index].setVisible(visible)

    def preset_levels(self, index: int, levels: tuple[float, float]) -> None:
        """Levels for the next :meth:`show_layers` (no redraw now)."""
        self._levels[index] = levels

    def set_levels(self, index: int, levels: tuple[float, float]) -> None:
        """Levels in channel values; converted to the current layer's counts."""
        self._levels[index] = levels
        layer = self.layers[index]
        if layer is not None:
            self.items[index].setLevels(self.count_levels(index))

    def count_levels(self, index: int) -> tuple[float, float]:
        layer = self.layers[index]
        assert layer is not None
        low, high = (layer.to_counts(v) for v in self._levels[index])
        return low, max(high, low + 1e-3)

    def show_layers(self, layers: Sequence[ImageLayer]) -> None:
        for index, (item, layer) in enumerate(zip(self.items, layers, strict=True)):
            self.layers[index] = layer
            item.setImage(layer.counts, autoLevels=False, levels=self.count_levels(index))

    def values_at(self, x: float, y: float) -> list[float] | None:
        """Each channel's value at channel-grid position (x, y), or None outside."""
        if any(layer is None for layer in self.layers):
            return None
        col, row = int(np.floor(x)), int(np.floor(y))
        h, w = self.layers[0].shape  # type: ignore[union-attr]
        if not (0 <= row < h and 0 <= col < w):
            return None
        return [layer.value_at(row, col) for layer in self.layers]  # type: ignore[union-attr]
