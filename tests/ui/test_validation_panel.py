"""The window's live-validation dock on a real live run (simulated microscope, real reconstructor, tiny model):
the PCC trend and error maps of every validated timepoint, the switch, and no dock where nothing can validate."""

from __future__ import annotations

import numpy as np

from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline
from imcsr_live.pipeline.views import LiveView
from imcsr_live.synth.world import WorldSettings
from imcsr_live.ui.validation_panel import ERROR_RANGE

from ..pipeline.test_recording_kill import tiny_model


def test_window_shows_the_pcc_trend_and_error_maps(rig, open_window, qtbot, tmp_path) -> None:
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    request = LiveRequest(tiny_model(tmp_path), 5, 0.0, validate_every=2)
    pipeline = build_live_pipeline(rig, request, backend=backend)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    panel = window.validation
    assert window.validation_dock.isVisible()
    assert panel.enable_box.isEnabled() and panel.enable_box.isChecked() and panel.every_spin.value() == 2
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=120_000)
    window.update_status()  # the status timer's work, now
    state = pipeline.validator.state()
    assert [i for i, _ in state.history] == [0, 2, 4]
    for c, curve in enumerate(panel.curves):  # one point per validated timepoint, 1-based on the time axis
        x, y = curve.getData()
        np.testing.assert_array_equal(x, [1, 3, 5])
        np.testing.assert_allclose(y, [v[c] for _, v in state.history])
    assert panel.shown_index == 4 and panel.summary.text().startswith("timepoint 5: PCC Microtubules")
    for item, error in zip(panel.map_items, state.newest.error, strict=True):
        assert item.image.shape == error.shape == (128, 128)
        np.testing.assert_array_equal(item.image, error)
        assert tuple(item.getLevels()) == (-ERROR_RANGE, ERROR_RANGE)
    panel.enable_box.setChecked(False)  # the switch reaches the pipeline
    assert pipeline.validator.every is None
    panel.every_spin.setValue(4)
    panel.enable_box.setChecked(True)
    assert pipeline.validator.every == 4


def test_no_validation_dock_where_the_source_cannot_validate(rig, open_window, tmp_path) -> None:
    class OnePreset(SimulatedBackend):
        def channel_presets(self) -> list[str]:  # one laser line only: no structure can be imaged alone
            return ["all"]

    backend = OnePreset(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    pipeline = build_live_pipeline(rig, LiveRequest(tiny_model(tmp_path), 1, 0.0), backend=backend)
    window = open_window(rig, LiveView(pipeline, rig))
    assert pipeline.validator is None
    assert not window.validation_dock.isVisible() and not window.validation.enable_box.isEnabled()
    assert "Microtubules has none" in window.validation.summary.text()
