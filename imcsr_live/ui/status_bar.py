"""Status bar: display rate, per-stage latency, dropped frames, queue fill, and the value under the cursor."""

from __future__ import annotations

from qtpy import QtWidgets

from imcsr_live.pipeline.views import RunStatus

_STAGES = (("acquire", "acq"), ("reconstruct", "recon"), ("separate", "sep"))


def status_text(status: RunStatus, display_ms: float | None) -> str:
    """One line: fps, median ms per stage (acquire/recon/separate/display), dropped, queue fill."""
    parts = [f"{status.fps:4.2f} fps"]
    latencies = [f"{short} {status.latencies_ms[key]:.0f}" for key, short in _STAGES if key in status.latencies_ms]
    if display_ms is not None:
        latencies.append(f"display {display_ms:.0f}")
    if latencies:
        parts.append("latency ms: " + " / ".join(latencies))
    dropped = sum(status.dropped.values())
    detail = ", ".join(f"{k} {v}" for k, v in status.dropped.items() if v)
    parts.append(f"dropped {dropped}" + (f" ({detail})" if detail else ""))
    parts.append(f"skipped slots {status.skipped_slots}")
    if status.queue_fill:
        parts.append("queues " + " ".join(f"{k} {v * 100:.0f}%" for k, v in status.queue_fill.items()))
    if status.errors:
        parts.append(f"errors {status.errors}")
    if status.paused:
        parts.append("PAUSED")
    elif not status.running:
        parts.append("stopped")
    return "   ".join(parts)


class StatusLine:
    """Two permanent labels in the main window's status bar: cursor (left) and run numbers (right)."""

    def __init__(self, bar: QtWidgets.QStatusBar) -> None:
        self.cursor = QtWidgets.QLabel("")
        self.run = QtWidgets.QLabel("waiting for the first timepoint ...")
        bar.addWidget(self.cursor, 1)
        bar.addPermanentWidget(self.run)

    def show(self, status: RunStatus, display_ms: float | None) -> None:
        self.run.setText(status_text(status, display_ms))
