"""Acquisition controls: live on/off (pause/resume), interval, exposure, and which engine/model separates."""

from __future__ import annotations

import logging

from qtpy import QtCore, QtWidgets

from imcsr_live.errors import ImcsrError
from imcsr_live.pipeline.views import DisplaySource, RunStatus, SourceInfo

log = logging.getLogger(__name__)


class AcquisitionPanel(QtWidgets.QGroupBox):
    """Start/stop live, edit the interval (where the source allows), show exposure, engine and model."""

    message = QtCore.Signal(int, str)  # log level, text (for the log panel)

    def __init__(self, source: DisplaySource, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Acquisition", parent)
        self.source = source
        self.ended = False  # the run is over (timepoints reached, or a stage stopped it): nothing to control
        self._seen_running = False
        info: SourceInfo = source.info()
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        self.live_button = QtWidgets.QPushButton("Stop live")
        self.live_button.setCheckable(True)
        self.live_button.setChecked(True)
        self.live_button.setEnabled(info.can_pause)
        self.live_button.setToolTip("pause/resume acquiring (the time grid keeps running)")
        self.live_button.toggled.connect(self._live_toggled)
        form.addRow(self.live_button)
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
        (they would pretend to control a run that no longer exists). Returns :attr:`ended`."""
        if status.running:
            self._seen_running = True
        elif not self.ended and (self._seen_running or status.timepoints or status.errors):  # not "not started yet"
            self.ended = True
            self.live_button.setEnabled(False)
            self.live_button.setText("Run ended")
            self.live_button.setToolTip("the run has ended; start the app again for a new one")
            self.interval_spin.setEnabled(False)
            self.message.emit(logging.INFO, f"the live run has ended after {status.timepoints} timepoints")
        return self.ended
