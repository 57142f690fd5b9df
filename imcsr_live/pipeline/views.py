"""What the monitor window shows, rendered off the GUI thread: a grey image, a colour overlay, a status line.

Two sources produce it: the ground-truth preview of the simulated microscope (:mod:`pipeline.preview`) and the
live pipeline (:class:`LiveView`: SR reconstruction + separated overlay). The window only uploads the newest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.pipeline.composite import additive_composite, grey
from imcsr_live.pipeline.live import LiveFrame, LivePipeline


@dataclass(frozen=True)
class DisplayImages:
    """One rendered timepoint. ``left_scale`` maps left-image pixels onto the right image's grid."""

    key: int
    left: np.ndarray  # (H, W) uint8
    right: np.ndarray  # (H2, W2, 3) uint8
    status: str
    left_scale: float = 1.0


class DisplaySource(Protocol):
    """Anything the monitor window can show."""

    left_title: str
    right_title: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def running(self) -> bool: ...

    def newest(self) -> DisplayImages | None: ...

    def wait(self, timeout_s: float | None = None) -> bool: ...

    def error_text(self) -> str | None: ...


class LiveView:
    """Renders each separated :class:`LiveFrame` as SR grey + channel overlay, on the separation thread."""

    left_title = "SIM reconstruction"

    def __init__(self, pipeline: LivePipeline, rig: RigConfig) -> None:
        self.pipeline = pipeline
        self.rig = rig
        self._lock = threading.Lock()
        self._newest: DisplayImages | None = None
        lag = " — shown one interval late (temporal continuity)" if pipeline.settings.in_frames == 3 else ""
        self.right_title = f"Separated by IMC-SR ({pipeline.engine.name}){lag}"
        pipeline.display.subscribe(self._render_newest)

    def _render_newest(self) -> None:
        frame, _ = self.pipeline.display.latest()
        if frame is not None:
            images = self.render(frame)
            with self._lock:
                self._newest = images

    def render(self, frame: LiveFrame) -> DisplayImages:
        low, high = self.rig.display.autocontrast_percentiles
        stats = self.pipeline.stats
        medians = stats.medians_ms()
        dropped = sum(stats.dropped.values())
        flag = "   LOW-CONFIDENCE SIM PARAMETERS" if getattr(frame.recon, "low_confidence", False) else ""
        status = (
            f"timepoint {frame.index + 1}   reconstruct {medians.get('reconstruct', 0):.0f} ms   "
            f"separate {medians.get('separate', 0):.0f} ms   end-to-end {medians.get('end_to_end', 0):.0f} ms   "
            f"dropped {dropped}   skipped slots {stats.skipped_slots}{flag}"
        )
        return DisplayImages(
            key=frame.index,
            left=grey(np.asarray(frame.recon.sr), (low, high)),
            right=additive_composite(
                np.asarray(frame.separated.channels),
                [s.color for s in self.rig.structures],
                (low, high),
                self.rig.display.gamma,
            ),
            status=status,
        )

    def newest(self) -> DisplayImages | None:
        with self._lock:
            return self._newest

    def error_text(self) -> str | None:
        errors = [e for e in self.pipeline.events if "failed" in e or "stopped" in e]
        return errors[-1] if errors else None

    def start(self) -> None:
        self.pipeline.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.pipeline.wait(timeout_s)

    def stop(self) -> None:
        self.pipeline.stop()

    @property
    def running(self) -> bool:
        return self.pipeline.running
