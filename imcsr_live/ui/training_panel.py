"""Training-data panel: ``imcsr-live acquire-training`` from the window, through the window's own live backend.

Start pauses live imaging, takes the requested timepoints into DIR (one SIM stack per structure's preset, each
reconstructed, :mod:`imcsr_live.pipeline.training_data`) on a worker thread, then resumes live imaging. Stop ends
after the timepoint in progress; the folder stays resumable (Start again continues it). Refusals (a DIR of another
rig, a bad positions file, no preset per structure) are one line in the panel and the log. The worker never touches
widgets: the window's status timer calls :meth:`TrainingPanel.refresh`, which reads what the worker left.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from qtpy import QtCore, QtWidgets

from imcsr_live.errors import ImcsrError
from imcsr_live.pipeline.training_data import TimepointDone, TrainingRequest, describe_dataset, read_positions
from imcsr_live.pipeline.views import DisplaySource

DEFAULT_INTERVAL_S = 2.0  # training timepoints when live imaging free-runs (interval 0)


def time_left_text(seconds: float) -> str:
    """``1:05:03`` / ``4:07`` style (h:mm:ss or m:ss)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class TrainingPanel(QtWidgets.QWidget):
    """DIR, timepoints, interval, optional positions CSV, Start/Stop, a progress bar with the time left."""

    message = QtCore.Signal(int, str)  # log level, text (for the log panel)

    def __init__(self, source: DisplaySource, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = source
        info = source.info()
        self.available = info.can_acquire_training
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._progress: TimepointDone | None = None  # the newest finished timepoint (worker -> GUI)
        self._seconds: list[float] = []  # per timepoint of this session (time-left estimate)
        self._outcome: tuple[int, list[str]] | None = None  # log level and lines once the worker ended
        self._request: TrainingRequest | None = None
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.dir_edit = QtWidgets.QLineEdit(str(Path.cwd() / "training-data"))
        self.dir_edit.setToolTip("dataset folder DIR: a new or empty folder, or one to continue (same rig)")
        self.browse = QtWidgets.QPushButton("…")
        self.browse.setFixedWidth(28)
        self.browse.clicked.connect(self._choose_dir)
        self.timepoints_spin = QtWidgets.QSpinBox()
        self.timepoints_spin.setRange(1, 100_000)
        self.timepoints_spin.setValue(20)
        self.timepoints_spin.setToolTip("timepoints the dataset should hold in all (a resumed folder keeps its own)")
        self.interval_spin = QtWidgets.QDoubleSpinBox()
        self.interval_spin.setRange(0.001, 3600.0)
        self.interval_spin.setDecimals(3)
        self.interval_spin.setSuffix(" s")
        self.interval_spin.setValue(info.interval_s if info.interval_s > 0 else DEFAULT_INTERVAL_S)  # not free-run
        self.interval_spin.setToolTip("seconds between training timepoints")
        self.positions_edit = QtWidgets.QLineEdit()
        self.positions_edit.setPlaceholderText("positions CSV (optional): x_um,y_um per line")
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.setToolTip(
            "pauses live imaging, takes one SIM stack per structure's excitation preset per timepoint into DIR "
            "(each reconstructed), then resumes live imaging"
        )
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setToolTip("stop after the timepoint in progress; Start continues the folder later")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setFormat("%v / %m timepoints")
        self.progress.setRange(0, self.timepoints_spin.value())
        self.progress.setValue(0)
        idle = "live imaging pauses while training data is taken"
        self.status = QtWidgets.QLabel(idle if self.available else info.training_note)
        self.status.setWordWrap(True)
        layout.addWidget(QtWidgets.QLabel("DIR"), 0, 0)
        layout.addWidget(self.dir_edit, 0, 1, 1, 3)
        layout.addWidget(self.browse, 0, 4)
        layout.addWidget(QtWidgets.QLabel("timepoints"), 1, 0)
        layout.addWidget(self.timepoints_spin, 1, 1)
        layout.addWidget(QtWidgets.QLabel("interval"), 1, 2)
        layout.addWidget(self.interval_spin, 1, 3, 1, 2)
        layout.addWidget(self.positions_edit, 2, 0, 1, 5)
        layout.addWidget(self.start_button, 3, 0)
        layout.addWidget(self.stop_button, 3, 1)
        layout.addWidget(self.progress, 3, 2, 1, 3)
        layout.addWidget(self.status, 4, 0, 1, 5)
        layout.setRowStretch(5, 1)
        self._set_running(False)

    @property
    def busy(self) -> bool:
        """True while the worker takes training data (or an outcome waits for :meth:`refresh`)."""
        return (self._worker is not None and self._worker.is_alive()) or self._outcome is not None

    def _set_running(self, running: bool) -> None:
        for widget in (self.dir_edit, self.browse, self.timepoints_spin, self.interval_spin, self.positions_edit):
            widget.setEnabled(self.available and not running)
        self.start_button.setEnabled(self.available and not running)
        self.stop_button.setEnabled(self.available and running)

    def _choose_dir(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Training data folder", self.dir_edit.text())
        if path:
            self.dir_edit.setText(path)

    def _show(self, text: str) -> None:
        """The panel's one status line (its tooltip holds it whole where the dock is too low)."""
        self.status.setText(text)
        self.status.setToolTip(text)

    def _refuse(self, text: str) -> None:
        self._show(text)
        self.message.emit(logging.ERROR, text)

    def start(self) -> bool:
        """Check the inputs, then take the training data on a worker thread; False if refused before starting."""
        if self.busy or not self.available:
            return False
        root = Path(self.dir_edit.text().strip()).expanduser()
        if not self.dir_edit.text().strip():
            self._refuse("training data: choose a folder DIR for the dataset")
            return False
        positions = None
        if self.positions_edit.text().strip():
            try:
                positions = read_positions(Path(self.positions_edit.text().strip()).expanduser())
            except ImcsrError as exc:
                self._refuse(f"training data refused: {exc}")
                return False
        request = TrainingRequest(root, self.timepoints_spin.value(), self.interval_spin.value(), None, positions)
        self._request = request
        self._stop.clear()
        self._seconds = []
        with self._lock:
            self._progress = None
            self._outcome = None
        self.progress.setRange(0, request.timepoints)
        self.progress.setValue(0)
        self._show(f"live imaging paused: taking training data into {root} …")
        self.message.emit(
            logging.INFO, f"training data: live imaging paused, {request.timepoints} timepoints into {root}"
        )
        self._set_running(True)
        self._worker = threading.Thread(target=self._work, args=(request,), name="training-data", daemon=True)
        self._worker.start()
        return True

    def stop(self) -> None:
        """End after the timepoint in progress (the dataset stays resumable)."""
        if self._worker is not None and self._worker.is_alive():
            self._stop.set()
            self.stop_button.setEnabled(False)
            self._show("stopping after the timepoint in progress …")

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Stop and wait for the worker (the window is closing; the backend must not close under it)."""
        self._stop.set()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout_s)

    # -- worker thread -------------------------------------------------------------------------------------------
    def _done(self, done: TimepointDone) -> None:
        with self._lock:
            self._progress = done
            self._seconds.append(done.seconds)

    def _work(self, request: TrainingRequest) -> None:
        try:
            manifest = self.source.acquire_training(request, self._done, self._stop)
        except Exception as exc:  # one line in the panel and the log; the window stays live
            reason = str(exc) if isinstance(exc, ImcsrError) else f"{type(exc).__name__}: {exc}"
            outcome = (logging.ERROR, [f"training data: {reason}"])
        else:
            lines = describe_dataset(request.root, manifest)
            held = len(manifest.timepoints)
            if held < request.timepoints:
                lines.insert(0, f"training data stopped: {held} of {request.timepoints} timepoints are saved in "
                                f"{request.root}; press Start to continue")  # fmt: skip
            outcome = (logging.INFO, lines)
        with self._lock:
            self._outcome = outcome

    # -- GUI thread ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Progress, time left and the outcome (called on the window's status timer)."""
        with self._lock:
            done, outcome, seconds = self._progress, self._outcome, list(self._seconds)
        request = self._request
        if done is not None and request is not None:
            self.progress.setValue(done.done)
            if outcome is None:
                per = max(request.interval_s or 0.0, sum(seconds) / len(seconds)) if seconds else 0.0
                left = time_left_text((done.total - done.done) * per)
                self._show(
                    f"timepoint {done.index + 1} of {done.total} taken ({done.seconds:.1f} s); about {left} left"
                )
        if outcome is None or (self._worker is not None and self._worker.is_alive()):
            return
        level, lines = outcome
        with self._lock:
            self._outcome = None
        for line in lines:
            self.message.emit(level, line)
        if level == logging.INFO:
            self.message.emit(logging.INFO, "training data: done; live imaging goes on")
        self._show(lines[0])
        self._set_running(False)
