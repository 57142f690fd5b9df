"""Recorder: a bounded queue and one writer thread, so disk speed never blocks acquisition.

Streams: the separated time-lapse (T, C, Y, X) always, raw (T, A*P, Y, X) and SR (T, 2Y, 2X) optionally, and
with live validation the real per-structure images of the validated timepoints (V, C, Y, X), V <= T.
OME-Zarr (default): ``PATH`` is the separated image; ``PATH/raw``, ``PATH/sr``, ``PATH/validation`` are sub-images.
OME-TIFF: ``PATH`` (``.ome.tif``) plus ``.raw.ome.tif`` / ``.sr.ome.tif`` / ``.validation.ome.tif`` beside it.
Every stream holds finished timepoints only (no zero-filled slots, even after a kill) and the real acquisition
time of each (``imcsr_live.timepoints_s`` / OME ``Plane DeltaT``). Per-timepoint provenance (reconstruction
parameters, latencies) is appended to a JSON-lines file beside the recording as it happens
(``PATH.timepoints.jsonl`` for OME-Zarr, ``STEM.timepoints.jsonl`` for OME-TIFF; never inside the zarr store).

Before each timepoint the recorder checks that its files are still there and that the disk has room for it
(with a margin). If not, or if writing fails (permissions, I/O errors), it stops with one clear message in
:attr:`Recorder.error` and refuses further items; the live pipeline carries on. Nothing is ever recreated.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.config import RecordingFormat
from imcsr_live.io.streams import OmeTiffWriter, StreamWriter, is_tiff, tiff_stem, timepoints_file
from imcsr_live.io.tiff import FileGoneError
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter, StoreGoneError

log = logging.getLogger(__name__)

_STOP = object()
FREE_SPACE_MARGIN_BYTES = 16 * 2**20  # kept free on top of twice a timepoint's size


class DiskFullError(OSError):
    """Not enough free space for the next timepoint (checked before writing it)."""


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` lives (``shutil.disk_usage``)."""
    return int(shutil.disk_usage(folder).free)


@dataclass
class RecordItem:
    """One timepoint to record."""

    index: int
    separated: np.ndarray  # (C, Y, X)
    raw: np.ndarray | None = None  # (A*P, y, x)
    sr: np.ndarray | None = None  # (Y, X)
    validation: np.ndarray | None = None  # (C, Y, X) real per-structure images (validated timepoints only)
    provenance: dict[str, Any] = field(default_factory=dict)  # e.g. reconstruction parameters used
    acquired_s: float | None = None  # when its raw frames were taken (monotonic clock), for the time metadata

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.separated, self.raw, self.sr, self.validation) if a is not None)


@dataclass(frozen=True)
class RecordingPlan:
    """Where and what to record."""

    path: Path
    format: RecordingFormat
    separated: ImageSpec
    raw: ImageSpec | None = None
    sr: ImageSpec | None = None
    validation: ImageSpec | None = None  # real per-structure images of validated timepoints
    expected_timepoints: int = 100
    queue_size: int = 8


class Recorder:
    """Write :class:`RecordItem` s on a background thread; ``put`` never blocks."""

    def __init__(self, plan: RecordingPlan) -> None:
        self.plan = plan
        self.error: str | None = None
        self.written = 0
        self.dropped = 0
        self.bytes_written = 0
        self.started_s = time.monotonic()
        self.stopped_s: float | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=plan.queue_size)
        self._streams: dict[str, StreamWriter] = {}
        self._timepoints_file: Path | None = None
        self._first_acquired_s: float | None = None
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._open()
        self._thread.start()

    # -- set-up -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        plan = self.plan
        specs = {"separated": plan.separated, "raw": plan.raw, "sr": plan.sr, "validation": plan.validation}
        targets = recording_targets(plan)
        for name, spec in specs.items():
            if spec is None:
                continue
            if plan.format == "ome-zarr":
                self._streams[name] = OmeZarrWriter(targets[name], spec, plan.expected_timepoints)
            else:
                self._streams[name] = OmeTiffWriter(targets[name], spec, plan.expected_timepoints)
        self._timepoints_file = targets["timepoints"]
        self._timepoints_file.write_text("")

    # -- producer side (pipeline threads) -----------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.error is None and self._thread.is_alive()

    def put(self, item: RecordItem) -> bool:
        """Queue one timepoint; False if it was dropped (queue full) or the recorder has stopped."""
        if not self.active:
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            log.warning("recorder queue full: timepoint %d not recorded (disk too slow?)", item.index)
            return False
        return True

    def queue_fill(self) -> float:
        return self._queue.qsize() / self.plan.queue_size

    def stop(self, summary: dict[str, Any] | None = None, timeout_s: float = 30.0) -> None:
        """Finish writing what is queued, add ``summary`` (e.g. dropped frames) to the metadata, close files."""
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive():
            try:  # a writer that just failed leaves a full queue behind: never block on it
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # the disk is far too slow: close anyway, say so
            if self.error is None:
                self.error = f"recording could not write its last timepoints within {timeout_s:g} s"
                log.error(self.error)
        final = {"timepoints_recorded": self.written, "timepoints_dropped_by_recorder": self.dropped}
        final |= summary or {}
        for stream in self._streams.values():
            try:
                stream.update_attributes(final)
                stream.close()
            except Exception as exc:  # tensorstore reports I/O failures as ValueError: never raise out of stop()
                if self.error is None:  # one message: an earlier failure already said what happened
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    self.error = f"recording could not be finalised: {reason}"
                    log.error("%s (%s)", self.error, self.plan.path)
        self._streams.clear()
        if self.stopped_s is None:
            self.stopped_s = time.monotonic()

    # -- writer thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, RecordItem)
            try:
                self._write(item)
            except Exception as exc:  # tensorstore reports I/O failures as ValueError; any failure stops recording
                self.error = f"recording stopped at timepoint {item.index}: {self._failure_text(exc, item)}"
                log.error(self.error)
                return

    def _failure_text(self, exc: Exception, item: RecordItem) -> str:
        """What went wrong and what to do, for one user message."""
        if not isinstance(exc, DiskFullError):  # a write that ran out of space says so in many ways (or not at all)
            try:
                self._check_room(item, margin=0)
            except DiskFullError as full:
                exc = full
            except OSError:
                pass
        if isinstance(exc, StoreGoneError | FileGoneError):
            return f"{exc}; live imaging goes on: start recording again to a new path"
        if isinstance(exc, DiskFullError):
            return f"{exc} ({self.plan.path}); free some disk space or choose another folder, then record again"
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        return f"{reason} ({self.plan.path}); free some disk space or choose another folder, then start recording again"

    def _check_room(self, item: RecordItem, margin: int | None = None) -> None:
        """Refuse a timepoint the disk cannot take (2x its size + ``margin``, default 16 MB, stays free)."""
        need = 2 * item.nbytes + (FREE_SPACE_MARGIN_BYTES if margin is None else margin)
        free = free_bytes(self.plan.path.parent)
        if free < need:
            raise DiskFullError(f"the disk is full ({free / 2**20:.0f} MB free, {need / 2**20:.0f} MB needed)")

    def _append_line(self, line: str) -> int:
        """Append one line to the timepoints file, flushed; returns where it starts (to undo it)."""
        assert self._timepoints_file is not None
        with self._timepoints_file.open("a") as handle:
            start = handle.tell()
            handle.write(line)
        return start

    def _truncate_lines(self, size: int) -> None:
        assert self._timepoints_file is not None
        try:
            with self._timepoints_file.open("r+") as handle:
                handle.truncate(size)
        except OSError:  # the file went with its folder: the failure being reported already says so
            pass

    def _write(self, item: RecordItem) -> None:
        for stream in self._streams.values():  # a deleted folder is reported, never silently recreated
            stream.check_present()
        self._check_room(item)
        if self._first_acquired_s is None:
            self._first_acquired_s = item.acquired_s
        time_s = None
        if item.acquired_s is not None and self._first_acquired_s is not None:
            time_s = item.acquired_s - self._first_acquired_s
        # Side streams first, then the timepoint's line, then the separated image (which readers trust): after a
        # kill, every timepoint the separated image holds is complete in all streams and has its line (times
        # live only there until close). A line may run one timepoint ahead of the image, never behind it.
        for name, frame in (("raw", item.raw), ("sr", item.sr), ("validation", item.validation)):
            if name in self._streams and frame is not None:
                self._streams[name].append(frame, time_s)
                self.bytes_written += frame.nbytes
        record = {"index": item.index, **({"time_s": round(time_s, 6)} if time_s is not None else {})}
        line_start = self._append_line(json.dumps(record | item.provenance) + "\n")
        try:
            self._streams["separated"].append(item.separated, time_s)
        except BaseException:
            self._truncate_lines(line_start)  # the timepoint did not make it: neither does its line
            raise
        self.bytes_written += item.separated.nbytes
        self.written += 1


def recording_targets(plan: RecordingPlan) -> dict[str, Path]:
    """Every path a recording writes, by stream (``separated``, ``raw``, ``sr``, ``validation``) plus ``timepoints``."""
    path = plan.path
    if plan.format == "ome-zarr":
        return {
            "separated": path,
            "raw": path / "raw",
            "sr": path / "sr",
            "validation": path / "validation",
            "timepoints": timepoints_file(path, "ome-zarr"),
        }
    stem = tiff_stem(path)
    return {
        "separated": path if is_tiff(path) else path.with_name(stem + ".ome.tif"),  # PATH itself if a TIFF name
        "raw": path.with_name(f"{stem}.raw.ome.tif"),
        "sr": path.with_name(f"{stem}.sr.ome.tif"),
        "validation": path.with_name(f"{stem}.validation.ome.tif"),
        "timepoints": timepoints_file(path, "ome-tiff"),
    }
