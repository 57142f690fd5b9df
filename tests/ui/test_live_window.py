"""The window on real live runs (simulated microscope, SIM reconstruction, shipped model): the GUI thread never
reconstructs or infers, hardware errors reach the log panel and the notice while the GUI keeps running, the record
panel writes a readable recording with the display settings, and settings survive a restart."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.errors import CameraTimeoutError
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.pipeline.views import LiveView
from imcsr_live.synth.world import WorldSettings


def test_gui_thread_never_reconstructs_or_infers(rig, open_window, live_pipeline, qtbot) -> None:
    pipeline = live_pipeline(rig, timepoints=3)
    calls: dict[str, set[int]] = {"reconstruct": set(), "separate": set(), "prepare": set(), "show": set()}

    def spy(name: str, function):
        def wrapped(*args, **kwargs):
            calls[name].add(threading.get_ident())
            return function(*args, **kwargs)

        return wrapped

    pipeline.reconstructor.reconstruct = spy("reconstruct", pipeline.reconstructor.reconstruct)
    pipeline.engine.separate = spy("separate", pipeline.engine.separate)
    view = LiveView(pipeline, rig)
    view.prepare = spy("prepare", view.prepare)
    window = open_window(rig, view)
    window.show_frame = spy("show", window.show_frame)
    window.grey_choice.setCurrentIndex(window.grey_choice.findData("residual"))  # SR minus the channels' sum
    window.split_box.setChecked(True)  # per-channel panels
    view.start()
    qtbot.waitUntil(lambda: not view.running, timeout=120_000)
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.index == 2, timeout=5_000)
    gui = threading.get_ident()
    assert calls["show"] == {gui}  # the window did render ...
    for stage in ("reconstruct", "separate", "prepare"):  # ... and nothing heavy ran on its thread
        assert calls[stage] and gui not in calls[stage], stage
    assert window.overlay.layers[0].shape == (128, 128)
    assert window.grey_panel.layer.shape == (128, 128) and window.widefield_panel.layer.shape == (64, 64)
    window.update_status()
    assert "latency ms: acq" in window.status_line.run.text() and "display" in window.status_line.run.text()
    # the grey view shows the sum residual of the same frame (its values: test_residual_view_*): the network's
    # channels are sigmoid outputs (> 0), so SR minus their sum lies below the clipped SR everywhere
    live, _ = pipeline.display.latest()
    assert live.index == window.frame.index and window.frame.grey_kind == "residual"
    layer = window.grey_panel.layer
    sr = np.maximum(live.recon.sr, 0)
    assert (live.separated.channels > 0).all() and live.separated.input_scale > 0
    assert (layer.values() <= sr + layer.value_per_count).all()
    assert (layer.values() < sr - layer.value_per_count).mean() > 0.5  # not the SR itself
    assert "residual" in window.grey_panel.title.text
    np.testing.assert_array_equal(window.channel_panels[1].items[0].image, window.frame.channels[1].counts)


class FailingBackend(SimulatedBackend):
    """The simulated microscope whose camera fails every other stack after ``good`` stacks (a loose trigger
    cable: never ``max_consecutive_failures`` in a row, so the run goes on while errors keep coming)."""

    def __init__(self, *args, good: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.good = good
        self.calls = 0

    def acquire_sim_stack(self, timeout_s: float | None = None):
        self.calls += 1
        if self.calls > self.good and (self.calls - self.good) % 2:
            raise CameraTimeoutError("camera delivered 4 of 9 frames; check the trigger cable, then restart live")
        return super().acquire_sim_stack(timeout_s)


def test_backend_error_shows_in_log_and_notice_while_gui_runs(rig, open_window, live_pipeline, qtbot) -> None:
    from qtpy import QtCore

    backend = FailingBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    pipeline = live_pipeline(rig, timepoints=None, interval_s=0.05, backend=backend)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    ticks = {"n": 0}
    heartbeat = QtCore.QTimer(window)
    heartbeat.timeout.connect(lambda: ticks.__setitem__("n", ticks["n"] + 1))
    heartbeat.start(10)
    view.start()
    qtbot.waitUntil(lambda: "camera delivered 4 of 9" in window.log_panel.toPlainText(), timeout=60_000)
    qtbot.waitUntil(lambda: window.notice.isVisible(), timeout=5_000)
    assert "hardware error" in window.notice.label.text() and "trigger cable" in window.notice.label.text()
    assert window.log_panel.errors >= 1
    before, errors = ticks["n"], pipeline.stats.errors
    # the event loop keeps running while errors keep coming (no deadline: a slow machine only takes longer)
    qtbot.waitUntil(lambda: ticks["n"] >= before + 5 and pipeline.stats.errors > errors, timeout=60_000)
    assert view.running  # and the run goes on (the next slot is tried again)
    window.notice.dismiss.click()
    assert not window.notice.isVisible()


def test_record_panel_writes_a_readable_recording(rig, open_window, live_pipeline, qtbot, tmp_path: Path) -> None:
    from imcsr_live.io.zarr import channel_names, read_ome_zarr

    pipeline = live_pipeline(rig, timepoints=None, interval_s=0.05)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    window.channels.rows[0].set_colour("#FFAA00")
    view.start()
    qtbot.waitUntil(lambda: window.frame is not None, timeout=60_000)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    window.record.path_edit.setText(str(blocker / "live.ome.zarr"))  # a folder inside a file: cannot be made
    window.record.record_button.click()
    assert not window.record.record_button.isChecked() and not pipeline.recording_active
    assert "cannot record to" in window.log_panel.toPlainText()
    path = tmp_path / "live.ome.zarr"
    window.record.path_edit.setText(str(path))
    window.record.record_button.click()
    assert window.record.record_button.isChecked() and pipeline.recording_active
    assert not window.acquisition.interval_spin.isEnabled()  # fixed time axis while recording
    qtbot.waitUntil(lambda: pipeline.recorder is not None and pipeline.recorder.written >= 2, timeout=60_000)
    window.record.record_button.click()
    qtbot.waitUntil(lambda: not window.record.finishing and window.record.record_button.text() == "● Record",
                    timeout=30_000)  # fmt: skip
    assert window.acquisition.interval_spin.isEnabled()
    assert "MB" in window.record.numbers.text() and "recorded" in window.record.numbers.text()
    separated, attributes = read_ome_zarr(path)
    assert separated.shape[0] >= 2 and separated.shape[1:] == (3, 128, 128) and np.isfinite(separated).all()
    assert channel_names(attributes) == rig.structure_names
    display = attributes["imcsr_live"]["display"]
    assert display["channels"][0]["color"] == "#FFAA00" and display["composite"] == "additive"
    assert "recording finished" in window.log_panel.toPlainText()
    # a second recording to the same path never overwrites the first
    window.record.record_button.click()
    assert Path(window.record.path_edit.text()).name == "live-2.ome.zarr"
    window.record.record_button.click()
    qtbot.waitUntil(lambda: not window.record.finishing, timeout=30_000)


def test_pause_and_interval_controls(rig, open_window, live_pipeline, qtbot) -> None:
    pipeline = live_pipeline(rig, timepoints=None, interval_s=0.05)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    view.start()
    window.acquisition.live_button.click()
    assert pipeline.paused and window.acquisition.live_button.text() == "Start live"
    window.acquisition.interval_spin.setValue(0.5)
    assert pipeline.settings.interval_s == 0.5
    window.acquisition.live_button.click()
    assert not pipeline.paused
    assert "interval set to 0.5 s" in window.log_panel.toPlainText()


def test_settings_survive_a_restart(rig, open_window, qtbot) -> None:
    from imcsr_live.pipeline.preview import SimulatedPreview
    from imcsr_live.synth.world import SyntheticMicroscope
    from imcsr_live.ui.settings import settings_path

    def preview() -> SimulatedPreview:
        return SimulatedPreview(SyntheticMicroscope(rig, WorldSettings(raw_shape=(32, 32))), 0.02, frames=1)

    first = open_window(rig, preview())
    rows = first.channels.rows
    first.channels.palette_box.setCurrentText("Okabe-Ito")  # a colour-blind-safe set
    first.channels.apply_palette("Okabe-Ito")
    assert [d.color for d in first.displays] == ["#E69F00", "#56B4E9", "#009E73"]
    rows[0].set_colour("#123456")
    rows[1].visible_box.setChecked(False)
    rows[2].gamma_spin.setValue(1.25)
    rows[2].min_spin.setValue(0.1)
    rows[2].max_spin.setValue(0.7)
    rows[2].max_spin.editingFinished.emit()
    rows[0].auto_box.setChecked(True)
    first.resize(700, 520)  # inside the offscreen screen (restoreGeometry keeps windows on screen)
    size = (first.width(), first.height())
    expected = [d.to_dict() for d in first.displays]
    first.close()
    assert settings_path().exists()

    second = open_window(rig, preview(), resize=False)
    assert [d.to_dict() for d in second.displays] == expected
    assert not second.overlay.items[1].isVisible()
    assert second.channels.palette_box.currentText() == "Okabe-Ito"
    assert second.displays[1].color == "#56B4E9" and second.displays[0].color == "#123456"
    assert second.channels.rows[2].gamma_spin.value() == 1.25
    assert (second.width(), second.height()) == size != (1400, 800)


def test_when_the_run_ends_the_controls_say_so_and_the_recording_is_final(
    rig, open_window, live_pipeline, qtbot, tmp_path: Path
) -> None:
    from imcsr_live.io.zarr import read_ome_zarr

    pipeline = live_pipeline(rig, timepoints=12, interval_s=0.25)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    view.start()
    qtbot.waitUntil(lambda: window.frame is not None, timeout=60_000)
    path = tmp_path / "until-the-end.ome.zarr"
    window.record.path_edit.setText(str(path))
    window.record.record_button.click()
    assert pipeline.recording_active
    qtbot.waitUntil(lambda: not view.running, timeout=120_000)
    qtbot.waitUntil(lambda: window.acquisition.ended, timeout=5_000)
    live = window.acquisition.live_button
    assert not live.isEnabled() and live.text() == "Run ended" and not window.acquisition.interval_spin.isEnabled()
    # the recording is finalised when the run ends, not only when the window closes
    qtbot.waitUntil(lambda: pipeline.recorder is None and not window.record.finishing, timeout=30_000)
    qtbot.waitUntil(lambda: window.record.record_button.text() == "● Record", timeout=5_000)
    assert not window.record.record_button.isEnabled()  # a new recording would get no frames
    separated, attributes = read_ome_zarr(path)
    assert attributes["imcsr_live"]["timepoints_recorded"] == separated.shape[0] >= 1
    # separated timepoints: 12 on an idle machine, fewer where a loaded one dropped some (each counted)
    separated_count = pipeline.stats.separated
    assert 1 <= separated_count <= 12
    assert f"the live run has ended after {separated_count} timepoints" in window.log_panel.toPlainText()


def test_closing_the_window_while_recording_leaves_a_final_readable_recording(
    rig, open_window, live_pipeline, qtbot, tmp_path: Path
) -> None:
    from imcsr_live.io.zarr import read_ome_zarr

    pipeline = live_pipeline(rig, timepoints=None, interval_s=0.05)
    view = LiveView(pipeline, rig)
    window = open_window(rig, view)
    view.start()
    qtbot.waitUntil(lambda: window.frame is not None, timeout=60_000)
    path = tmp_path / "closed.ome.zarr"
    window.record.path_edit.setText(str(path))
    window.record.record_button.click()
    recorder = pipeline.recorder
    qtbot.waitUntil(lambda: recorder.written >= 2, timeout=60_000)
    window.record.record_button.click()  # "finishing ..." on its helper thread ...
    window.close()  # ... and the window closed at once
    assert not pipeline.running and recorder.stopped_s is not None and not window.record.finishing
    separated, attributes = read_ome_zarr(path)
    assert attributes["imcsr_live"]["timepoints_recorded"] == recorder.written == separated.shape[0]
    assert np.isfinite(separated).all()


def analytic_frame(sr: np.ndarray, channels: np.ndarray, input_scale: float):
    """A separated timepoint made by hand: the pipeline's frame with known SR, channels and scale."""
    from types import SimpleNamespace

    from imcsr_live.pipeline.live import LiveFrame

    recon = SimpleNamespace(sr=sr, widefield=None, warnings=())
    separated = SimpleNamespace(channels=channels, input_scale=input_scale, uncertainty=None)
    return LiveFrame(7, SimpleNamespace(t_start_s=0.0), recon, separated, {}, None)


def test_residual_view_is_zero_when_the_channels_explain_the_sr_and_shows_what_they_miss(rig, live_pipeline) -> None:
    view = LiveView(live_pipeline(rig, timepoints=1), rig, prepare=False)
    view.grey_kind = "residual"
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)

    def blob(y: float, x: float, amplitude: float) -> np.ndarray:
        return (amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 3.0**2))).astype(np.float32)

    parts = np.stack([blob(30, 30, 0.8), blob(64, 90, 0.6), np.full((128, 128), 0.1, np.float32)])
    sr = parts.sum(axis=0)
    scale = 2.0  # channels are in normalised units: channels * input_scale is in SR units
    exact = view.prepare(analytic_frame(sr, parts / scale, scale))
    assert exact.grey_kind == "residual"
    np.testing.assert_allclose(exact.grey.values(), 0.0, atol=1e-6)
    # ringing below zero in the SR is not signal the channels missed: clipped before the difference
    ringing = sr.copy()
    ringing[100:110, 10:20] = -0.3
    clipped_parts = parts.copy()
    clipped_parts[:, 100:110, 10:20] = 0.0
    np.testing.assert_allclose(view.prepare(analytic_frame(ringing, clipped_parts / scale, scale)).grey.values(), 0.0,
                               atol=1e-6)  # fmt: skip
    # a structure the network left out shows up as itself, everything else stays zero
    missing = blob(96, 40, 0.5)
    shown = view.prepare(analytic_frame(sr + missing, parts / scale, scale)).grey
    np.testing.assert_allclose(shown.values(), missing, atol=1.01 * shown.value_per_count)
    assert np.unravel_index(np.argmax(shown.values()), shown.shape) == (96, 40)
    assert shown.values().max() == pytest.approx(0.5, abs=shown.value_per_count)
    # signal the network invented (in a channel, not in the SR) is negative
    overfull = parts.copy()
    overfull[0] += missing
    invented = view.prepare(analytic_frame(sr, overfull / scale, scale)).grey
    np.testing.assert_allclose(invented.values(), -missing, atol=1.01 * invented.value_per_count)
