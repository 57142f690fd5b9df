"""Acquisition controls: live on/off (pause/resume), interval, exposure, which engine/model separates, and Run
again once the run has ended (a fresh run built as the first one; on a helper thread, as it warms the engine up)."""

from __future__ import annotations

import logging
import threading

from qtpy import QtCore, QtWidgets

from imcsr_live.errors import ImcsrError
from imcsr_live.pipeline.views import DisplaySource, RunStatus, SourceInfo

log = logging.getLogger(__name__)


class AcquisitionPanel(QtWidgets.QGroupBox):
    """Start/stop live, edit the interval (where the source allows), show exposure, engine and model."""

    message = QtCore.Signal(int, str)  # log level, text (for the log panel)
    restarted = QtCore.Signal()  # a fresh run has started (Run again)

    def __init__(self, source: DisplaySource, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Acquisition", parent)
        self.source = source
        self.ended = False  # the run is over (timepoints reached, or a stage stopped it): nothing to control
        self._seen_running = False
        self._restarter: threading.Thread | None = None
        self._restart_error: str | None = None
        self._restart_ready = True  # nothing else (a recording still finishing) holds the ended run
        info: SourceInfo = source.info()
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        self.live_button = QtWidgets.QPushButton("Stop live")
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.setEnabled(info.can_pause)
        self.live_button.setToolTip("pause/resume acquiring (the time grid keeps running)")
        self.live_button.toggled.connect(self._live_toggled)
        self.again_button = QtWidgets.QPushButton("Run again")
        self.again_button.setToolTip("start a new run with the same settings (a recording goes to a new name)")
        self.again_button.setVisible(info.can_restart)
        self.again_button.setEnabled(False)
        self.again_button.clicked.connect(self.run_again)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.live_button, 1)
        row.addWidget(self.again_button, 1)
        form.addRow(row)
        self.interval_spin = QtWidgets.QDoubleSpinBox()
        self.interval_spin.setRange(0.0, 3600.0)
        self.interval_spin.setDecimals(2)
        self.interval_spin.setSuffix(" s")
        self.interval_spin.setSpecialValueText("free-run")
        self.interval_spin.setValue(info.interval_s)
        self.interval_spin.setKeyboardTracking(False)
        self.interval_spin.setEnabled(info.can_set_interval)
        self.interval_spin.setToolTip("time between timepoints; 0 = as fast as possible (not while recording)")
        self.interval_spin.valueChanged.connect(self._interval_changed)
        form.addRow("Interval", self.interval_spin)
        exposure = "—" if info.exposure_ms is None else f"{info.exposure_ms:g} ms per raw frame"
        self.exposure_label = QtWidgets.QLabel(exposure)
        self.exposure_label.setToolTip("set in the rig TOML: [acquisition] exposure_ms")
        form.addRow("Exposure", self.exposure_label)
        engine = info.engine + (f" · {info.precision}" if info.precision else "")
        self.engine_label = QtWidgets.QLabel(engine or "—")
        self.model_label = QtWidgets.QLabel(info.model or "—")
        self.model_label.setWordWrap(True)
        form.addRow("Engine", self.engine_label)
        form.addRow("Model", self.model_label)

    def _live_toggled(self, live: bool) -> None:
        if live:
            self.source.resume()  # type: ignore[attr-defined]
            self.live_button.setText("Stop live")
            self.message.emit(logging.INFO, "live acquisition resumed")
        else:
            self.source.pause()  # type: ignore[attr-defined]
            self.live_button.setText("Start live")
            self.message.emit(logging.INFO, "live acquisition paused")

    def _interval_changed(self, value: float) -> None:
        try:
            self.source.set_interval(float(value))  # type: ignore[attr-defined]
        except ImcsrError as exc:
            self.message.emit(logging.WARNING, str(exc))
            self.interval_spin.blockSignals(True)
            self.interval_spin.setValue(self.source.info().interval_s)
            self.interval_spin.blockSignals(False)
            return
        self.message.emit(logging.INFO, f"interval set to {value:g} s")

    def set_recording(self, recording: bool) -> None:
        """The interval is fixed while recording (the file's time axis)."""
        self.interval_spin.setEnabled(self.source.info().can_set_interval and not recording and not self.ended)

    def show_run(self, status: RunStatus) -> bool:
        """Called with every status update; once the run has ended, the live and interval controls are disabled
        (they would pretend to control a run that no longer exists) and Run again is offered. Returns
        :attr:`ended`."""
        if self._restarter is not None and not self._restarter.is_alive():
            self._restart_finished()
            return self.ended
        if status.running:
            self._seen_running = True
        elif not self.ended and (self._seen_running or status.timepoints or status.errors):  # not "not started yet"
            self.ended = True
            self.live_button.setEnabled(False)
            self.live_button.setText("Run ended")
            again = "press Run again" if self.source.info().can_restart else "start the app again"
            self.live_button.setToolTip(f"the run has ended; {again} for a new one")
            self.interval_spin.setEnabled(False)
            self.message.emit(logging.INFO, f"the live run has ended after {status.timepoints} timepoints")
        self._update_again()
        return self.ended

    def set_restart_ready(self, ready: bool) -> None:
        """Run again only when nothing else still holds the ended run (the window: a recording being finished)."""
        self._restart_ready = ready
        self._update_again()

    def run_again(self) -> None:
        """Start a fresh run on a helper thread (the source stops the old one, builds the new one and starts it)."""
        if not self.ended or self._restarter is not None:
            return
        self.again_button.setEnabled(False)
        self.again_button.setText("starting …")
        self.message.emit(logging.INFO, "starting a new run")
        self._restart_error = None
        self._restarter = threading.Thread(target=self._restart, name="run-again", daemon=True)
        self._restarter.start()

    def _restart(self) -> None:
        try:
            self.source.restart()
        except Exception as exc:  # a camera that will not open again must not take the window down: say it
            self._restart_error = str(exc) if isinstance(exc, ImcsrError) else f"{type(exc).__name__}: {exc}"
            log.debug("run again failed", exc_info=True)

    def _restart_finished(self) -> None:
        self._restarter = None
        self.again_button.setText("Run again")
        if self._restart_error is not None:
            self.message.emit(logging.ERROR, f"could not start a new run: {self._restart_error}")
            self._update_again()
            return
        self.ended, self._seen_running = False, False
        can_pause = self.source.info().can_pause
        self.live_button.blockSignals(True)
        self.live_button.setChecked(True)
        self.live_button.blockSignals(False)
        self.live_button.setText("Stop live")
        self.live_button.setToolTip("pause/resume acquiring (the time grid keeps running)")
        self.live_button.setEnabled(can_pause)
        self.set_recording(False)
        self._update_again()
        self.message.emit(logging.INFO, "a new run has started")
        self.restarted.emit()

    def _update_again(self) -> None:
        ready = self.ended and self._restart_ready and self._restarter is None
        self.again_button.setEnabled(ready and self.source.info().can_restart)
