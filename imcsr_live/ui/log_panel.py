"""Log panel (every ``imcsr_live`` log record, warnings and errors highlighted) and the red error notice.

Pipeline threads log from their own threads; :class:`QtLogHandler` hands each record to the GUI thread through
a queued Qt signal, so no widget is ever touched from a worker.
"""

from __future__ import annotations

import html
import logging
import time

from qtpy import QtCore, QtWidgets

_COLOURS = {logging.ERROR: "#ff5555", logging.CRITICAL: "#ff5555", logging.WARNING: "#e0a000"}


class _Emitter(QtCore.QObject):
    record = QtCore.Signal(int, str)  # level, formatted line


class QtLogHandler(logging.Handler):
    """A logging handler that forwards formatted records as a Qt signal (queued to the GUI thread)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.emitter = _Emitter()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.emitter.record.emit(record.levelno, self.format(record))
        except RuntimeError:  # the panel is gone (window closed while a worker still logs)
            pass


class LogPanel(QtWidgets.QPlainTextEdit):
    """Read-only, bounded log view; attach() hooks it to a logger until detach()."""

    def __init__(self, parent: QtWidgets.QWidget | None = None, max_lines: int = 2000) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(max_lines)
        self.setPlaceholderText("log: warnings and errors of the acquisition, reconstruction and separation")
        self.handler = QtLogHandler()
        self.handler.emitter.record.connect(self.add_line)
        self._logger: logging.Logger | None = None
        self.warnings = 0
        self.errors = 0

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(600, 110)  # a few lines; the images get the height

    def attach(self, logger: logging.Logger) -> None:
        self._logger = logger
        logger.addHandler(self.handler)

    def detach(self) -> None:
        if self._logger is not None:
            self._logger.removeHandler(self.handler)
            self._logger = None

    def add_line(self, level: int, text: str) -> None:
        if level >= logging.ERROR:
            self.errors += 1
        elif level >= logging.WARNING:
            self.warnings += 1
        colour = _COLOURS.get(level)
        escaped = html.escape(text)
        if colour:
            weight = "bold" if level >= logging.ERROR else "normal"
            self.appendHtml(f"<span style='color:{colour}; font-weight:{weight}'>{escaped}</span>")
        else:
            self.appendHtml(f"<span>{escaped}</span>")

    def note(self, text: str, level: int = logging.INFO) -> None:
        """A line from the GUI itself (e.g. 'recording started'); also to the log file, at DEBUG."""
        self.add_line(level, f"{time.strftime('%H:%M:%S')} {logging.getLevelName(level)} gui: {text}")
        logging.getLogger("imcsr_live.ui").debug(text)  # below the panel handler's level: no echo

    def gui_message(self, level: int, text: str) -> None:
        self.note(text, level)


class NoticeBanner(QtWidgets.QFrame):
    """A red strip above the images for hardware/engine errors; stays until dismissed or a newer one comes."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("NoticeBanner { background: #b00020; } QLabel { color: white; font-weight: bold; }")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(8, 3, 8, 3)
        self.label = QtWidgets.QLabel()
        self.label.setWordWrap(True)
        self.dismiss = QtWidgets.QPushButton("Dismiss")
        self.dismiss.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.dismiss)
        self.shown_seq = 0
        self.hide()

    def reset(self) -> None:
        """A new run: its errors count from 1 again."""
        self.shown_seq = 0
        self.hide()

    def show_error(self, seq: int, text: str, total: int) -> None:
        """Show error number ``seq`` (only if newer than the last one shown)."""
        if seq <= self.shown_seq:
            return
        self.shown_seq = seq
        more = f"   ({total} errors in this run — see the log)" if total > 1 else ""
        self.label.setText(f"⚠ {text}{more}")
        self.show()
