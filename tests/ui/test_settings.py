"""Saved viewer settings that are damaged or from another version never stop the window: defaults + one warning."""

from __future__ import annotations

import json
import logging

import pytest

from imcsr_live.synth.world import WorldSettings


def preview(rig):
    from imcsr_live.pipeline.preview import SimulatedPreview
    from imcsr_live.synth.world import SyntheticMicroscope

    return SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1)


DAMAGED = {
    "version": 1,
    "channels": {
        "Microtubules": {"color": "#123456", "gamma": "bright", "levels": [0.1, 0.5]},  # not a number
        "ER": {"color": "#00FF00", "gamma": 1.0, "levels": ["low", None], "visible": False},
        "Lysosomes": {"color": "#ABCDEF", "gamma": 1.5, "levels": [0.2, 0.4], "visible": False},  # fine
    },
    "palette": 7,
    "geometry": "not base64 at all!",
}


@pytest.mark.parametrize("content", [json.dumps(DAMAGED), '{"version": 1, "channels": {', json.dumps({"version": 0})])
def test_damaged_or_old_settings_give_defaults_and_one_warning(rig, open_window, qtbot, caplog, content) -> None:
    from imcsr_live.ui.settings import settings_path

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="imcsr_live"):
        window = open_window(rig, preview(rig))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "viewer settings" in r.getMessage()]
    assert len(warnings) == 1
    names = [s.name for s in rig.structures]
    defaults = {s.name: s.color for s in rig.structures}
    for display in window.displays[:2]:  # the damaged entries: rig defaults
        assert display.color == defaults[display.name] and display.gamma == rig.display.gamma and display.visible
    if content == json.dumps(DAMAGED):
        lyso = window.displays[names.index("Lysosomes")]
        assert (lyso.color, lyso.gamma, lyso.levels, lyso.visible) == ("#ABCDEF", 1.5, (0.2, 0.4), False)
    qtbot.waitUntil(lambda: "viewer settings" in window.log_panel.toPlainText(), timeout=5_000)
