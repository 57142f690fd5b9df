"""Status bar: display rate, per-stage latency, dropped frames, queue fill, the value under the cursor, and the
separation's per-frame confidence ("confidence: ok" / "confidence: LOW (reason)")."""

from __future__ import annotations

from qtpy import QtWidgets

from imcsr_live.model.confidence import FrameConfidence
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


def confidence_text(confidence: FrameConfidence | None) -> str:
    """``"confidence: ok"``, ``"confidence: LOW (reason)"``, or ``""`` for a frame that was not judged."""
    return "" if confidence is None else f"confidence: {confidence.label}"


def confidence_detail(confidence: FrameConfidence) -> str:
    """Tooltip: the numbers behind the verdict."""
    lines = [f"sum residual {confidence.residual:.3f}"]
    if confidence.predicted_error is not None:
        names = confidence.channel_names or tuple(f"channel {i}" for i in range(len(confidence.predicted_error)))
        lines += [f"{n} predicted error {v:.3f}" for n, v in zip(names, confidence.predicted_error, strict=True)]
    return "\n".join(lines)


class StatusLine:
    """Permanent labels in the main window's status bar: cursor (left), confidence and run numbers (right)."""

    def __init__(self, bar: QtWidgets.QStatusBar) -> None:
        self.cursor = QtWidgets.QLabel("")
        self.confidence = QtWidgets.QLabel("")
        self.run = QtWidgets.QLabel("waiting for the first timepoint ...")
        bar.addWidget(self.cursor, 1)
        bar.addPermanentWidget(self.confidence)
        bar.addPermanentWidget(self.run)

    def show(self, status: RunStatus, display_ms: float | None) -> None:
        self.run.setText(status_text(status, display_ms))

    def show_confidence(self, confidence: FrameConfidence | None) -> None:
        """The newest frame's verdict: plain when ok, bold red when low."""
        self.confidence.setText(confidence_text(confidence))
        low = confidence is not None and not confidence.in_distribution
        self.confidence.setStyleSheet("color: #ff5555; font-weight: bold;" if low else "")
        self.confidence.setToolTip(confidence_detail(confidence) if confidence is not None else "")
