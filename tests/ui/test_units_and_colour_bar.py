"""The views name the unit of what they show (channel levels and histograms, grey and widefield views), and the
sum residual gets a diverging colour bar, symmetric about zero, with zero marked; checked against the values."""

from __future__ import annotations

import numpy as np

from imcsr_live.pipeline.preview import SimulatedPreview
from imcsr_live.pipeline.views import LiveView
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings


def test_ground_truth_preview_says_photoelectrons_and_camera_counts(rig, open_window, qtbot) -> None:
    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32), seed=2)), 0.02, frames=2)
    window = open_window(rig, preview)
    preview.start()
    qtbot.waitUntil(lambda: not preview.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.index == 1, timeout=5_000)
    point = preview.latest().point
    # what the labels claim is what the layers hold: ground truth (photoelectrons), mean raw frame (camera counts)
    for layer, truth in zip(window.overlay.layers, point.ground_truth, strict=True):
        np.testing.assert_allclose(layer.values(), truth, atol=layer.value_per_count)
    wf = window.widefield_panel.layer
    np.testing.assert_allclose(wf.values(), point.raw.astype(np.float32).mean(axis=0), atol=wf.value_per_count)
    assert window.channels.unit_label.isVisible()
    assert window.channels.unit_label.text() == "Levels and histograms in photoelectrons (ground truth)"
    row = window.channels.rows[0]
    assert "photoelectrons" in row.histogram.toolTip() and "photoelectrons" in row.min_spin.toolTip()
    assert window.grey_panel.title.text.endswith(">photoelectrons (ground truth)</span>")
    assert window.widefield_panel.title.text.endswith(">camera counts (ADU)</span>")
    assert not window.grey_panel.colour_bar.isVisible()  # an unsigned image: grey, no colour bar


def test_live_units_and_the_residual_colour_bar_with_zero(rig, open_window, live_pipeline, qtbot) -> None:
    pipeline = live_pipeline(rig, timepoints=None, interval_s=0.05)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    window.grey_choice.setCurrentIndex(window.grey_choice.findData("residual"))
    view.start()
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.grey_kind == "residual", timeout=120_000)
    # channels: the network's outputs, relative to its normalised input (0..1), as the label says
    assert "normalised SR intensity" in window.channels.unit_label.text() and window.channels.unit_label.isVisible()
    for layer in window.frame.channels:
        assert 0.0 <= layer.offset and layer.offset + 65535 * layer.value_per_count <= 1.0 + 1e-6
    panel = window.grey_panel
    assert "Sum residual" in panel.title.text and panel.title.text.endswith(">SR intensity, a.u.</span>")
    # the residual: diverging colours, levels symmetric about zero, a colour bar in SR units with 0 marked
    bar = panel.colour_bar
    assert bar.isVisible() and bar in panel.ci.items
    low, high = panel.levels
    assert -low == high > 0 and bar.levels() == (low, high)
    layer = panel.layer
    counts_low, counts_high = panel.item.levels
    assert np.isclose(counts_low, layer.to_counts(low)) and np.isclose(counts_high, layer.to_counts(high))
    ticks = bar.axis._tickLevels[0]
    assert (0.0, "0") in ticks
    assert bar.zero_line.value() == 128  # the bar's middle: value 0
    assert bar.getAxis("left").labelText == "SR intensity, a.u."
    assert panel.item.lut is not None and tuple(panel.item.lut[128][:3]) == (34, 31, 33)  # zero is dark
    # the SR view again: grey, no colour bar
    window.grey_choice.setCurrentIndex(window.grey_choice.findData("sr"))
    qtbot.waitUntil(lambda: window.frame.grey_kind == "sr", timeout=60_000)
    assert not bar.isVisible() and bar not in panel.ci.items and panel.item.lut is None
    assert panel.title.text.endswith(">SR intensity, a.u.</span>") and panel.levels == window.frame.grey.auto_levels


def test_validation_error_maps_have_a_colour_bar_with_zero(rig, open_window) -> None:
    from imcsr_live.ui.validation_panel import ERROR_RANGE, error_lut

    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1)
    panel = open_window(rig, preview).validation
    bar = panel.colour_bar
    assert bar in panel.maps.ci.items
    assert bar.levels() == (-ERROR_RANGE, ERROR_RANGE) and (0.0, "0") in bar.axis._tickLevels[0]
    assert bar.getAxis("left").labelText == "Δ (real range = 1)" and "separated minus real" in panel.maps.toolTip()
    # the bar's colours are the maps' colour table (white at zero)
    np.testing.assert_array_equal(bar.colorMap().getLookupTable(nPts=256, mode="byte")[:, :3], error_lut())
    assert error_lut()[127:129].min() >= 250  # ... where the zero line is
