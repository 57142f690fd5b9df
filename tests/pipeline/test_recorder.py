"""Recorder: OME-Zarr and OME-TIFF streams on a writer thread; failures stop recording with a clear message."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.io.streams import read_timepoints
from imcsr_live.io.tiff import read_tiff
from imcsr_live.io.zarr import ImageSpec, read_ome_zarr
from imcsr_live.pipeline.recorder import Recorder, RecordingPlan, RecordItem

SEP = ImageSpec((3, 32, 32), "float32", 0.0313, 2.0, ("MT", "ER", "Lyso"), ("#00FF00", "#FF00FF", "#00FFFF"),
                name="separated", attributes={"app": "imcsr-live"})  # fmt: skip
RAW = ImageSpec((9, 16, 16), "uint16", 0.0626, 2.0, name="raw")
SR = ImageSpec((32, 32), "float32", 0.0313, 2.0, name="sr")


def item(t: int) -> RecordItem:
    return RecordItem(
        index=t,
        separated=np.full((3, 32, 32), t / 10, np.float32),
        raw=np.full((9, 16, 16), 100 + t, np.uint16),
        sr=np.full((32, 32), t, np.float32),
        provenance={"k0": [1.0, 2.0], "modulation": 0.7},
    )


@pytest.mark.parametrize("fmt", ["ome-zarr", "ome-tiff"])
def test_records_all_streams_and_provenance(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / ("rec.ome.zarr" if fmt == "ome-zarr" else "rec.ome.tif")
    recorder = Recorder(RecordingPlan(path, fmt, SEP, RAW, SR, expected_timepoints=4))  # type: ignore[arg-type]
    for t in range(4):
        assert recorder.put(item(t))
        time.sleep(0.01)
    recorder.stop({"dropped_frames": 0})
    assert recorder.error is None and recorder.written == 4
    if fmt == "ome-zarr":
        separated, attributes = read_ome_zarr(path)
        raw, _ = read_ome_zarr(path / "raw")
        sr, _ = read_ome_zarr(path / "sr")
        assert attributes["imcsr_live"]["timepoints_recorded"] == 4
    else:
        separated, meta = read_tiff(path)
        raw, _ = read_tiff(tmp_path / "rec.raw.ome.tif")
        sr, _ = read_tiff(tmp_path / "rec.sr.ome.tif")
        assert meta.channel_names == ("MT", "ER", "Lyso")
        assert (tmp_path / "rec.timepoints.jsonl").is_file()
    assert separated.shape == (4, 3, 32, 32) and raw.shape == (4, 9, 16, 16) and sr.shape == (4, 32, 32)
    np.testing.assert_allclose(separated[:, 0, 0, 0], [0.0, 0.1, 0.2, 0.3], rtol=1e-6)
    assert raw[3, 0, 0, 0] == 103
    assert [r["index"] for r in read_timepoints(path)] == [0, 1, 2, 3]
    assert recorder.bytes_written == 4 * (3 * 32 * 32 * 4 + 9 * 16 * 16 * 2 + 32 * 32 * 4)


def test_write_failure_stops_recording_but_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    recorder = Recorder(RecordingPlan(path, "ome-zarr", SEP, expected_timepoints=2))
    for t in range(2):
        recorder.put(item(t))
    deadline = time.monotonic() + 10
    while recorder.written < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    # the folder disappears under the recorder (USB disk unplugged, network share gone)
    shutil.rmtree(path / "0")
    (path / "0").write_text("not a folder any more")
    recorder.put(item(2))
    deadline = time.monotonic() + 10
    while recorder.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not recorder.active
    assert recorder.error is not None and recorder.error.startswith("recording stopped at timepoint 2")
    assert "start recording again to a new path" in recorder.error
    assert recorder.put(item(3)) is False  # refused, and the caller carries on
    recorder.stop()
    assert recorder.written == 2


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    recorder = Recorder(RecordingPlan(tmp_path / "r.ome.zarr", "ome-zarr", SEP, queue_size=1))
    accepted = sum(recorder.put(item(t)) for t in range(50))  # a burst far faster than a disk write
    recorder.stop()
    assert recorder.dropped > 0
    assert accepted + recorder.dropped == 50
    assert recorder.written == accepted


def test_a_failure_while_finalising_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "final.ome.zarr"
    recorder = Recorder(RecordingPlan(path, "ome-zarr", SEP, expected_timepoints=4))
    for t in range(2):
        assert recorder.put(item(t))
    deadline = time.monotonic() + 30
    while recorder.written < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    shutil.rmtree(path / "0")  # the array vanished under the recorder (unplugged disk, cleanup script)
    (path / "0").write_text("not an array")
    recorder.stop({})  # trimming the time axis fails inside tensorstore (a ValueError)
    assert recorder.error is not None and "could not be finalised" in recorder.error
    assert recorder.stopped_s is not None and not recorder.active


@pytest.mark.parametrize("fmt", ["ome-zarr", "ome-tiff"])
def test_each_timepoint_has_its_line_before_the_separated_image_holds_it(tmp_path: Path, fmt: str) -> None:
    # After a kill, the lines are the only record of when each timepoint was taken: none may be missing.
    path = tmp_path / ("rec.ome.zarr" if fmt == "ome-zarr" else "rec.ome.tif")
    recorder = Recorder(RecordingPlan(path, fmt, SEP, RAW, SR, expected_timepoints=3))  # type: ignore[arg-type]
    separated = recorder._streams["separated"]
    lines_when_appended: list[int] = []
    real_append = separated.append

    def observed_append(frame: np.ndarray, time_s: float | None = None) -> int:
        lines_when_appended.append(len(read_timepoints(path)))
        return real_append(frame, time_s)

    separated.append = observed_append  # type: ignore[method-assign]
    for t in range(3):
        assert recorder.put(item(t))
    recorder.stop({})
    assert recorder.error is None and lines_when_appended == [1, 2, 3]


def test_a_timepoint_the_separated_image_refuses_leaves_no_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    recorder = Recorder(RecordingPlan(path, "ome-zarr", SEP, RAW, SR, expected_timepoints=3))  # type: ignore[arg-type]
    recorder.put(item(0))
    bad = item(1)
    bad.separated = np.zeros((3, 16, 16), np.float32)  # not the recording's frame shape: the append fails
    recorder.put(bad)
    recorder.stop({})
    assert recorder.error is not None and "timepoint 1" in recorder.error
    assert [r["index"] for r in read_timepoints(path)] == [0]
    assert read_ome_zarr(path)[0].shape[0] == 1
