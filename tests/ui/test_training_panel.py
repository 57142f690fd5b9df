"""The window's "Training data" dock on a real live run (simulated microscope, real reconstructor, tiny model):
Start pauses live imaging, takes training timepoints through the window's own backend into a folder that the
trainer's reader reads back, Stop leaves it resumable, live imaging goes on; another rig's folder is refused with
one line; no dock where nothing can switch presets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.io.training_dataset import read_manifest, write_manifest
from imcsr_live.pipeline.session import LiveRequest, build_live_pipeline
from imcsr_live.pipeline.views import LiveView
from imcsr_live.synth.world import WorldSettings
from imcsr_live.train.acquired_data import load_runs, read_dataset
from imcsr_live.ui.training_panel import time_left_text

from ..pipeline.test_recording_kill import tiny_model


def test_the_panel_takes_training_data_between_live_stacks(rig, open_window, qtbot, tmp_path) -> None:
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    pipeline = build_live_pipeline(rig, LiveRequest(tiny_model(tmp_path), None, 0.05), backend=backend)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    panel = window.training
    messages: list[tuple[int, str]] = []
    panel.message.connect(lambda level, text: messages.append((level, text)))
    assert window.training_dock.isVisible()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    view.start()
    qtbot.waitUntil(lambda: view.status().timepoints >= 1, timeout=120_000)

    # Start, then Stop after the first timepoint: the folder holds what was finished
    root = tmp_path / "data"
    panel.dir_edit.setText(str(root))
    panel.timepoints_spin.setValue(3)
    panel.interval_spin.setValue(3.0)  # Stop lands in the wait before the second timepoint
    panel.start_button.click()
    assert panel.busy and not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel._progress is not None, timeout=120_000)
    assert pipeline.paused  # live imaging waits while the training stacks are taken
    acquired = pipeline.stats.acquired
    pipeline.resume()  # a Resume meanwhile takes no live stack until the training data is done
    qtbot.wait(300)
    assert pipeline.stats.acquired == acquired
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=120_000)
    assert (logging.INFO, f"training data stopped: 1 of 3 timepoints are saved in {root}; press Start to continue") in (
        messages
    )
    assert not pipeline.paused and panel.start_button.isEnabled()

    # Start again continues the same folder to 3 timepoints (no timepoint lost or taken twice)
    panel.interval_spin.setValue(0.01)
    panel.start_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=120_000)
    assert panel.progress.value() == 3
    assert any(text.startswith(f"{root}: 3 timepoints x 1 position(s) x 3 structures") for _, text in messages)
    manifest = read_dataset(root, rig.structure_names)  # the trainer's reader
    assert manifest.finished == [0, 1, 2] and [t.session for t in manifest.timepoints] == [0, 1, 1]
    runs = load_runs(root, manifest)
    assert [r.timepoints for r in runs] == [[0], [1, 2]]
    assert all(r.images.shape[1] == 3 and np.isfinite(r.images.astype(np.float32)).all() for r in runs)

    # live imaging goes on afterwards
    seen = view.status().timepoints
    qtbot.waitUntil(lambda: view.status().timepoints > seen + 1, timeout=120_000)
    assert not pipeline.paused

    # a folder taken with another rig: one line, the folder untouched, live imaging not held up
    other = manifest.model_copy(update={"rig_sha256": "0" * 64, "rig_name": "other.toml"})
    write_manifest(root, other)
    del messages[:]
    panel.timepoints_spin.setValue(5)
    panel.start_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=120_000)
    errors = [text for level, text in messages if level >= logging.WARNING]
    assert len(errors) == 1 and f"{root} was taken with another rig (other.toml" in errors[0], messages
    assert "\n" not in errors[0] and panel.status.text() == errors[0]
    again = read_manifest(root)
    assert again is not None and again.finished == [0, 1, 2]
    assert not pipeline.paused and panel.start_button.isEnabled()


def test_no_training_dock_where_nothing_can_switch_presets(rig, open_window, tmp_path) -> None:
    class OnePreset(SimulatedBackend):
        def channel_presets(self) -> list[str]:  # one laser line only: no structure can be imaged alone
            return ["all"]

    backend = OnePreset(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    pipeline = build_live_pipeline(rig, LiveRequest(tiny_model(tmp_path), 1, 0.0), backend=backend)
    window = open_window(rig, LiveView(pipeline, rig))
    panel = window.training
    assert not window.training_dock.isVisible()
    assert not panel.start_button.isEnabled() and not panel.dir_edit.isEnabled()
    assert panel.status.text().startswith("training data needs an excitation preset per structure: Microtubules")
    assert not panel.start()


def test_time_left_reads_as_a_clock() -> None:
    assert [time_left_text(s) for s in (0, 65.4, 3723)] == ["0:00", "1:05", "1:02:03"]


def test_the_ground_truth_preview_has_no_training_dock(rig, open_window) -> None:
    from imcsr_live.errors import InputDataError
    from imcsr_live.pipeline.preview import SimulatedPreview
    from imcsr_live.pipeline.training_data import TrainingRequest
    from imcsr_live.synth.world import SyntheticMicroscope

    preview = SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1)
    window = open_window(rig, preview)
    assert not window.training_dock.isVisible() and not window.training.start_button.isEnabled()
    assert window.training.status.text().startswith("the ground-truth preview is no microscope")
    with pytest.raises(InputDataError, match="no microscope"):
        preview.acquire_training(TrainingRequest(Path("unused"), 1))
