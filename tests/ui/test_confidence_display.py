"""The window shows the separation's per-frame confidence: "ok" on the simulated specimen, a red "LOW (reason)"
plus a log warning when the shipped model is fed frames unlike anything it was trained on (pure noise)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from imcsr_live.pipeline.views import LiveView


@pytest.mark.parametrize("noise", [False, True], ids=["specimen", "noise"])
def test_window_shows_confidence_and_warns_when_out_of_distribution(
    rig, open_window, live_pipeline, qtbot, noise: bool
) -> None:
    pipeline = live_pipeline(rig, timepoints=3)
    if noise:  # the reconstruction of a specimen the model never saw: no structure at all
        rng = np.random.default_rng(0)
        real = pipeline.reconstructor.reconstruct

        def noisy(raw, index=None):
            frame = real(raw, index)
            return replace(frame, sr=(100 * rng.random(frame.sr.shape)).astype(np.float32))

        pipeline.reconstructor.reconstruct = noisy
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=120_000)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.index == 2, timeout=5_000)
    label = window.status_line.confidence
    conf = window.frame.confidence
    assert conf is not None
    if noise:
        assert not conf.in_distribution
        assert label.text().startswith("confidence: LOW (sum residual") and "ff5555" in label.styleSheet()
        assert "sum residual" in label.toolTip()
        qtbot.waitUntil(lambda: "low confidence" in window.log_panel.toPlainText(), timeout=5_000)
        assert window.log_panel.toPlainText().count("low confidence") == 1  # rate-limited: 3 low frames, 1 warning
    else:
        assert conf.in_distribution and label.text() == "confidence: ok" and label.styleSheet() == ""
        assert "low confidence" not in window.log_panel.toPlainText()
