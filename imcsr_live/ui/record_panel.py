"""Record controls: path, start/stop, elapsed time, timepoints, MB written, free disk.

Stopping drains the recorder's queue and finalises the metadata, which can take seconds: it runs on a helper
thread so the window never freezes; the button says "finishing" until it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy import QtCore, QtWidgets

from imcsr_live.errors import ImcsrError
from imcsr_live.pipeline.session import free_name
from imcsr_live.pipeline.views import DisplaySource, RecordingStatus, free_disk_bytes


def default_recording_path() -> Path:
    return Path.cwd() / f"imcsr-{time.strftime('%Y%m%d-%H%M%S')}.ome.zarr"


class RecordPanel(QtWidgets.QGroupBox):
    """Path chooser + Record button + live numbers of the running recording."""

    message = QtCore.Signal(int, str)
    recording_changed = QtCore.Signal(bool)

    def __init__(
        self, source: DisplaySource, metadata: Callable[[], dict[str, Any]], parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__("Record", parent)
        self.source = source
        self.metadata = metadata
        self._stopper: threading.Thread | None = None
        self._ended = False  # the run is over: no new recording can get any frames
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        self.path_edit = QtWidgets.QLineEdit(str(default_recording_path()))
        self.path_edit.setToolTip("OME-Zarr folder (.ome.zarr, default) or OME-TIFF (.ome.tif)")
        self.browse = QtWidgets.QPushButton("…")
        self.browse.setFixedWidth(28)
        self.browse.clicked.connect(self._choose_path)
        self.record_button = QtWidgets.QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._toggled)
        self.numbers = QtWidgets.QLabel("not recording")
        self.free_label = QtWidgets.QLabel("")
        layout.addWidget(self.path_edit, 0, 0)
        layout.addWidget(self.browse, 0, 1)
        layout.addWidget(self.record_button, 1, 0, 1, 2)
        layout.addWidget(self.numbers, 2, 0, 1, 2)
        layout.addWidget(self.free_label, 3, 0, 1, 2)
        can = source.info().can_record
        for widget in (self.path_edit, self.browse, self.record_button):
            widget.setEnabled(can)
        if not can:
            self.numbers.setText("this source cannot record (ground-truth preview)")
        self.refresh()

    def _choose_path(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Record to", self.path_edit.text(), "OME-Zarr (*.ome.zarr);;OME-TIFF (*.ome.tif)"
        )
        if path:
            self.path_edit.setText(path)

    def _toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def start(self) -> bool:
        """Start recording to the path in the box (a free variant of it if something is already there)."""
        path = Path(self.path_edit.text()).expanduser()
        target = free_name(path)
        if target != path:
            self.message.emit(logging.WARNING, f"{path} exists; recording to {target} instead")
            self.path_edit.setText(str(target))
        try:
            self.source.start_recording(target, self.metadata())  # type: ignore[attr-defined]
        except Exception as exc:  # a bad path must never take the window down: say it, stay live
            reason = str(exc) if isinstance(exc, ImcsrError) else f"{type(exc).__name__}: {exc}"
            self.message.emit(logging.ERROR, f"cannot record to {target}: {reason}")
            self._set_button(False)
            return False
        self.message.emit(logging.INFO, f"recording to {target}")
        self._set_button(True)
        self.recording_changed.emit(True)
        return True

    def stop(self) -> None:
        """Stop on a helper thread (drains the queue); the button is disabled until that finished."""
        if self._stopper is not None and self._stopper.is_alive():
            return
        self.record_button.setEnabled(False)
        self.record_button.setText("finishing …")
        self._stopper = threading.Thread(target=self.source.stop_recording, name="recording-stop", daemon=True)  # type: ignore[attr-defined]
        self._stopper.start()

    @property
    def finishing(self) -> bool:
        return self._stopper is not None and self._stopper.is_alive()

    def _set_button(self, on: bool) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(on)
        self.record_button.blockSignals(False)
        self.record_button.setText("■ Stop recording" if on else "● Record")
        self.record_button.setEnabled(self.source.info().can_record and not self._ended)

    def run_ended(self) -> None:
        """The run is over: finalise a running recording now (not only at window close) and offer no new one."""
        if self._ended:
            return
        self._ended = True
        self.path_edit.setEnabled(False)
        self.browse.setEnabled(False)
        status = self._status()
        if status is not None and status.active and not self.finishing:
            self.message.emit(logging.INFO, "the run has ended: finishing the recording")
            self.stop()
        elif not self.finishing:
            self._set_button(False)

    def run_restarted(self) -> None:
        """A fresh run (Run again): recordings can be started again (to a free name, as at the first start); one
        the new run records from its start shows on the next :meth:`refresh`."""
        self._ended = False
        can = self.source.info().can_record
        self.path_edit.setEnabled(can)
        self.browse.setEnabled(can)
        self.numbers.setText("not recording")
        self.numbers.setStyleSheet("")
        if not self.finishing:
            self._set_button(False)

    def refresh(self) -> None:
        """Update the numbers (called on the window's slow timer)."""
        if self._stopper is not None and not self._stopper.is_alive():
            self._stopper = None
            self._set_button(False)
            self.recording_changed.emit(False)
            status = self._status()
            if status is not None:
                self.message.emit(logging.INFO, f"recording finished: {status.timepoints} timepoints in {status.path}")
        status = self._status()
        if status is not None:
            if status.active and not self.record_button.isChecked() and not self.finishing and not self._ended:
                self._set_button(True)  # started from the command line (--record)
                self.recording_changed.emit(True)
            self.numbers.setText(recording_text(status))
            self.numbers.setStyleSheet("color: #ff5555;" if status.error else "")
            if status.error and self.record_button.isChecked() and not self.finishing:
                self.stop()  # the recorder has logged the error already (log panel), and the notice will show it
        free = free_disk_bytes(Path(self.path_edit.text()).expanduser())
        self.free_label.setText("" if free is None else f"free disk: {free / 1e9:.1f} GB")

    def _status(self) -> RecordingStatus | None:
        getter = getattr(self.source, "recording", None)
        return getter() if getter is not None else None


def recording_text(status: RecordingStatus) -> str:
    minutes, seconds = divmod(int(status.elapsed_s), 60)
    state = "recording" if status.active else "recorded"
    text = f"{state} {minutes:02d}:{seconds:02d}   {status.timepoints} timepoints   {status.bytes_written / 1e6:.1f} MB"
    return text + (f"\n{status.error}" if status.error else "")
