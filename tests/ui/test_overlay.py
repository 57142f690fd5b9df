"""The overlay draws the additive composite of the channels (probed in the rendered widget), toggling a channel
removes its colour, and the value under the cursor is the channel values at that pixel."""

from __future__ import annotations

import numpy as np
import pytest

from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from imcsr_live.ui.lut import colour_lut, composite_reference

TOLERANCE = 6  # grey levels per colour component (LUT index rounding at the level edges)


@pytest.fixture
def preview_window(rig, open_window, qtbot):
    """The ground-truth preview (3 timepoints of a 64x64 camera, 128x128 channels) in the main window."""
    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(64, 64), seed=4)), 0.02, frames=3)
    window = open_window(rig, preview)
    preview.start()
    qtbot.waitUntil(lambda: not preview.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.index == 2, timeout=5_000)
    window.overlay.view.setRange(xRange=(0, 128), yRange=(0, 128), padding=0)
    qtbot.wait(50)
    return window


def rendered(panel, points: np.ndarray) -> np.ndarray:
    """RGB of the rendered panel at the centres of image pixels ``points`` (N, 2) as (row, col)."""
    from qtpy import QtCore

    image = panel.viewport().grab().toImage()
    out = np.zeros((len(points), 3), dtype=np.int32)
    for i, (row, col) in enumerate(points):
        scene = panel.view.mapViewToScene(QtCore.QPointF(col + 0.5, row + 0.5))
        pos = panel.mapFromScene(scene)
        colour = image.pixelColor(pos.x(), pos.y())
        out[i] = colour.red(), colour.green(), colour.blue()
    return out


def expected(window, visible: list[bool]) -> np.ndarray:
    overlay = window.overlay
    counts = [layer.counts for layer in overlay.layers]
    luts = [colour_lut(d.color, d.gamma) for d in window.displays]
    levels = [overlay.count_levels(i) for i in range(len(counts))]
    return composite_reference(counts, luts, levels, visible).astype(np.int32)


def probe_points(window, n: int = 150) -> np.ndarray:
    """Random pixels plus each channel's brightest ones (where a wrong colour would show most)."""
    rng = np.random.default_rng(0)
    h, w = window.overlay.layers[0].shape
    points = [rng.integers(0, (h, w), size=(n, 2))]
    for layer in window.overlay.layers:
        flat = np.argsort(layer.counts, axis=None)[-20:]
        points.append(np.stack(np.unravel_index(flat, (h, w)), axis=1))
    return np.concatenate(points)


def test_overlay_pixels_are_the_additive_composite(preview_window) -> None:
    window = preview_window
    points = probe_points(window)
    reference = expected(window, [True, True, True])[points[:, 0], points[:, 1]]
    drawn = rendered(window.overlay, points)
    assert reference.max() > 200  # the probes include bright, coloured pixels
    np.testing.assert_array_less(np.abs(drawn - reference), TOLERANCE + 1)


def test_changed_levels_gamma_and_colour_are_drawn(preview_window, qtbot) -> None:
    window = preview_window
    rows = window.channels.rows
    rows[0].set_colour("#FF8000")
    rows[1].gamma_spin.setValue(1.5)
    low, high = rows[2].display.levels
    rows[2].min_spin.setValue(low + 0.2 * (high - low))
    rows[2].min_spin.editingFinished.emit()
    qtbot.wait(50)
    points = probe_points(window)
    reference = expected(window, [True, True, True])[points[:, 0], points[:, 1]]
    np.testing.assert_array_less(np.abs(rendered(window.overlay, points) - reference), TOLERANCE + 1)


def test_hiding_a_channel_removes_its_colour(preview_window, qtbot) -> None:
    window = preview_window
    points = probe_points(window)
    assert [d.color for d in window.displays] == ["#00FF00", "#FF00FF", "#00FFFF"]
    before = rendered(window.overlay, points)
    assert before[:, 0].max() > 150  # magenta ER: the only channel with red
    window.channels.rows[1].visible_box.setChecked(False)
    qtbot.wait(50)
    after = rendered(window.overlay, points)
    assert after[:, 0].max() <= TOLERANCE  # no red left anywhere
    reference = expected(window, [True, False, True])[points[:, 0], points[:, 1]]
    np.testing.assert_array_less(np.abs(after - reference), TOLERANCE + 1)
    assert "ER" not in window.overlay.title.text  # the legend lists the visible channels only


def test_value_under_cursor(preview_window, qtbot) -> None:
    from qtpy import QtCore

    window = preview_window
    row, col = 70, 41
    scene = window.overlay.view.mapViewToScene(QtCore.QPointF(col + 0.5, row + 0.5))
    pos = window.overlay.mapFromScene(scene)
    qtbot.mouseMove(window.overlay.viewport(), pos)
    qtbot.waitUntil(lambda: window.status_line.cursor.text() != "", timeout=2_000)
    text = window.status_line.cursor.text()
    truth = window.source.latest().point.ground_truth[:, row, col]
    assert text.startswith(f"x {col}  y {row}")
    for display, layer, value in zip(window.displays, window.frame.channels, truth, strict=True):
        shown = float(text.split(f"{display.name} ")[1].split()[0])
        assert shown == pytest.approx(float(value), abs=layer.value_per_count + 1e-3 * abs(float(value)))


def test_views_show_the_same_region(preview_window, qtbot) -> None:
    window = preview_window
    window.one_to_one()
    qtbot.wait(20)
    centre = window.overlay.view.viewRect().center()
    for panel in (window.widefield_panel, window.grey_panel):
        rect = panel.view.viewRect()
        assert abs(rect.center().x() - centre.x()) < 1 and abs(rect.center().y() - centre.y()) < 1
        # the panel shows at least the overlay's region (aspect locked: maybe more along one axis)
        overlay = window.overlay.view.viewRect()
        assert rect.width() >= overlay.width() - 1 and rect.height() >= overlay.height() - 1
    window.fit()
    overlay = window.overlay.view.viewRect()
    assert overlay.width() >= 127 and overlay.height() >= 127  # the whole 128x128 image


def test_zooming_one_view_zooms_all(preview_window, qtbot) -> None:
    window = preview_window
    grey = window.grey_panel.view
    grey.scaleBy((0.25, 0.25), center=(30, 40))  # what a wheel turn does, then pyqtgraph signals it
    grey.sigRangeChangedManually.emit([True, True])
    target = grey.viewRect()
    for panel in (window.overlay, window.widefield_panel):
        rect = panel.view.viewRect()
        assert abs(rect.center().x() - target.center().x()) < 1 and abs(rect.center().y() - target.center().y()) < 1
        assert min(rect.width() / target.width(), rect.height() / target.height()) == pytest.approx(1, abs=0.02)
