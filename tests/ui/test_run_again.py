"""A finished run can be started again from the window (Run again) without relaunching: a fresh pipeline built as
the first one was, with the interval in force, and its --record recording under a new name, never over the first."""

from __future__ import annotations

from pathlib import Path

from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.synth.world import WorldSettings


def test_a_finished_run_starts_again_and_records_to_a_new_name(rig, open_window, qtbot, tmp_path: Path) -> None:
    from imcsr_live.io.zarr import read_ome_zarr
    from imcsr_live.pipeline.session import LiveRequest
    from imcsr_live.runs import live_view

    path = tmp_path / "run.ome.zarr"
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=1))
    view = live_view(rig, LiveRequest(None, 3, 0.1, path), backend=backend)  # as `demo --frames 3 --record PATH`
    window = open_window(rig, view)
    acquisition, again = window.acquisition, window.acquisition.again_button
    assert view.info().can_restart and again.isVisible() and not again.isEnabled()  # nothing ended yet
    view.start()
    first = view.pipeline
    qtbot.waitUntil(lambda: acquisition.ended, timeout=120_000)
    qtbot.waitUntil(again.isEnabled, timeout=30_000)  # once the first recording is final
    assert not window.record.finishing and window.record.record_button.text() == "● Record"
    separated, attributes = read_ome_zarr(path)
    assert separated.shape[0] == 3 and attributes["imcsr_live"]["timepoints_recorded"] == 3
    first_bytes = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    shown_before = window.frames_shown

    again.click()
    assert not again.isEnabled() and again.text() == "starting …"
    qtbot.waitUntil(lambda: not acquisition.ended, timeout=120_000)  # the new run has started
    second = view.pipeline
    assert second is not first and not first.running and first.backend is second.backend  # the same camera, reopened
    assert second.settings.interval_s == first.settings.interval_s and second.settings.timepoints == 3
    live = acquisition.live_button
    assert live.isEnabled() and live.isChecked() and live.text() == "Stop live" and not again.isEnabled()
    assert window.record.path_edit.isEnabled()
    qtbot.waitUntil(lambda: acquisition.ended, timeout=120_000)  # ... and ended after its own 3 timepoints
    assert window.frames_shown > shown_before  # its frames reached the window
    qtbot.waitUntil(lambda: second.recorder is None and not window.record.finishing, timeout=30_000)
    # its recording went to a new name; the first one is byte for byte what it was
    renamed = tmp_path / "run-2.ome.zarr"
    separated2, attributes2 = read_ome_zarr(renamed)
    assert separated2.shape[0] == 3 and attributes2["imcsr_live"]["timepoints_recorded"] == 3
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == first_bytes
    assert [(r.path, r.timepoints) for r in view.earlier_recordings] == [(path, 3)]  # for the summary at exit
    assert view.recording().path == renamed
    log = window.log_panel.toPlainText()
    assert "a new run has started" in log and f"the new run records to {renamed}" in log
    assert log.count("the live run has ended after 3 timepoints") == 2
    qtbot.waitUntil(again.isEnabled, timeout=30_000)  # and again


def test_run_again_is_not_offered_where_the_source_cannot_restart(rig, open_window, live_pipeline) -> None:
    from imcsr_live.pipeline.views import LiveView

    view = LiveView(live_pipeline(rig, timepoints=1), rig)  # no rebuild: e.g. a benchmark's pipeline
    window = open_window(rig, view)
    assert not view.info().can_restart and not window.acquisition.again_button.isVisible()


def test_a_failed_run_again_is_one_log_line_and_can_be_tried_again(rig, open_window, live_pipeline, qtbot) -> None:
    from imcsr_live.errors import CameraTimeoutError
    from imcsr_live.pipeline.views import LiveView

    tries: list[float] = []

    def camera_gone(interval_s: float, validate_every: int | None):
        tries.append(interval_s)
        raise CameraTimeoutError("camera not found; check its cable and power, then press Run again")

    first = live_pipeline(rig, timepoints=1)
    view = LiveView(first, rig, rebuild=camera_gone)
    window = open_window(rig, view)
    view.start()
    again = window.acquisition.again_button
    qtbot.waitUntil(again.isEnabled, timeout=120_000)
    again.click()
    qtbot.waitUntil(lambda: "could not start a new run: camera not found" in window.log_panel.toPlainText(),
                    timeout=30_000)  # fmt: skip
    assert view.pipeline is first and window.acquisition.ended and again.text() == "Run again"
    qtbot.waitUntil(again.isEnabled, timeout=5_000)  # the operator can fix the camera and try again
    again.click()
    qtbot.waitUntil(lambda: len(tries) == 2, timeout=30_000)
    assert tries == [0.0, 0.0]  # the interval in force was handed on


def test_closing_the_window_while_a_new_run_is_built_leaves_nothing_running(
    rig, open_window, live_pipeline, qtbot
) -> None:
    import threading

    from imcsr_live.pipeline.views import LiveView

    building, release = threading.Event(), threading.Event()
    built = []

    def slow_rebuild(interval_s: float, validate_every: int | None):
        building.set()
        release.wait(30)  # e.g. a long engine warm-up
        built.append(live_pipeline(rig, timepoints=None, interval_s=0.05))
        return built[-1]

    view = LiveView(live_pipeline(rig, timepoints=1), rig, rebuild=slow_rebuild)
    window = open_window(rig, view)
    view.start()
    again = window.acquisition.again_button
    qtbot.waitUntil(again.isEnabled, timeout=120_000)
    again.click()
    assert building.wait(30)
    threading.Timer(0.5, release.set).start()
    window.close()  # waits for the build, then stops the new run: no camera or recording left running
    assert built and not built[0].running and built[0].backend.world is None  # stopped, the camera closed
    assert not view.running


def test_the_ground_truth_preview_runs_again_with_a_fresh_specimen_and_recording(
    rig, open_window, qtbot, tmp_path: Path
) -> None:
    from imcsr_live.runs import RunOptions, ground_truth_preview

    path = tmp_path / "gt.tif"
    options = RunOptions(frames=2, interval_s=0.02, record=path)
    preview, recordings = ground_truth_preview(rig, options, WorldSettings(raw_shape=(32, 32), seed=5), print)
    window = open_window(rig, preview)
    acquisition, again = window.acquisition, window.acquisition.again_button
    assert preview.info().can_restart and again.isVisible()
    preview.start()
    first_world = preview.world
    qtbot.waitUntil(again.isEnabled, timeout=60_000)
    first_frame = window.frame
    again.click()
    qtbot.waitUntil(lambda: not acquisition.ended, timeout=60_000)
    qtbot.waitUntil(lambda: acquisition.ended, timeout=60_000)
    qtbot.waitUntil(lambda: window.frame is not first_frame and window.frame.index == 1, timeout=5_000)
    assert preview.world is not first_world and preview.stats.timepoints == 2
    # the first recording was finished when the second began; the second went to a new name
    first_files = {p: p.read_bytes() for p in recordings.writers[0].paths}
    recordings.close()
    assert [w.paths[0] for w in recordings.writers] == [path, tmp_path / "gt-2.tif"]
    assert {p: p.read_bytes() for p in recordings.writers[0].paths} == first_files
    from imcsr_live.io.tiff import read_tiff

    for writer in recordings.writers:
        raw, _ = read_tiff(writer.paths[0])
        assert raw.shape == (2, 9, 32, 32) and raw.min() > 0  # both runs' timepoints, complete
    assert "the new run records to" in window.log_panel.toPlainText()
