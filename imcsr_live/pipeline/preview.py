"""Simulated-microscope preview: the synthetic world on a worker thread, one timepoint per interval.

This is the demo's acquisition loop until the full live pipeline (reconstruction + separation) exists. It keeps
the rules the pipeline will keep: timepoints start on a fixed time grid; a timepoint that overruns makes the next
grid slot be skipped and counted (never silently shifted); the display reads only the newest result
("latest wins"); the thread never touches widgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from imcsr_live.pipeline.composite import additive_composite, grey
from imcsr_live.pipeline.scheduler import IntervalScheduler
from imcsr_live.pipeline.views import DisplayImages
from imcsr_live.synth.world import SyntheticMicroscope, SynthTimepoint

log = logging.getLogger(__name__)


@dataclass
class PreviewFrame:
    """What the display needs of one timepoint, already rendered to 8-bit on the worker thread."""

    point: SynthTimepoint
    widefield_u8: np.ndarray  # (Y, X)
    overlay_rgb: np.ndarray  # (2Y, 2X, 3)
    acquired_s: float  # seconds the simulated acquisition took
    started_monotonic: float


@dataclass
class PreviewStats:
    timepoints: int = 0
    skipped_slots: int = 0
    acquisition_s: list[float] = field(default_factory=list)

    @property
    def median_acquisition_s(self) -> float:
        return float(np.median(self.acquisition_s)) if self.acquisition_s else float("nan")


class SimulatedPreview:
    """Runs ``world`` on a thread every ``interval_s`` seconds for ``frames`` timepoints (None = until stopped)."""

    def __init__(
        self,
        world: SyntheticMicroscope,
        interval_s: float,
        frames: int | None = None,
        on_frame: Callable[[PreviewFrame], None] | None = None,
    ) -> None:
        self.world = world
        self.interval_s = interval_s
        self.frames = frames
        self.on_frame = on_frame
        self.stats = PreviewStats()
        self.error: BaseException | None = None
        self._latest: PreviewFrame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-acquisition", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run has finished; True if it did."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    left_title = "Widefield (sum of the 9 raw SIM frames)"

    @property
    def right_title(self) -> str:
        legend = "  ".join(f"<span style='color:{s.color}'>&#9632; {s.name}</span>" for s in self.world.rig.structures)
        return f"Ground truth of the simulated specimen: {legend}"

    def newest(self) -> DisplayImages | None:
        """The newest frame as the monitor window shows it."""
        frame = self.latest()
        if frame is None:
            return None
        status = (
            f"timepoint {frame.point.index + 1}   t = {frame.point.time_s:6.1f} s   "
            f"simulated acquisition {frame.acquired_s * 1e3:5.0f} ms   skipped slots {self.stats.skipped_slots}   "
            f"interval {self.interval_s:g} s"
        )
        return DisplayImages(frame.point.index, frame.widefield_u8, frame.overlay_rgb, status, left_scale=2.0)

    def error_text(self) -> str | None:
        return None if self.error is None else f"acquisition stopped: {self.error}"

    def latest(self) -> PreviewFrame | None:
        """The newest finished frame (older ones are simply replaced: latest wins)."""
        with self._lock:
            return self._latest

    def _render(self, point: SynthTimepoint, seconds: float, started: float) -> PreviewFrame:
        rig = self.world.rig
        low, high = rig.display.autocontrast_percentiles
        percentiles = (low, high)
        widefield = point.raw.astype(np.float32).sum(axis=0)
        return PreviewFrame(
            point=point,
            widefield_u8=grey(widefield, percentiles),
            overlay_rgb=additive_composite(
                point.ground_truth, [s.color for s in rig.structures], percentiles, rig.display.gamma
            ),
            acquired_s=seconds,
            started_monotonic=started,
        )

    def _run(self) -> None:
        scheduler = IntervalScheduler(self.interval_s)
        try:
            while self.frames is None or self.stats.timepoints < self.frames:
                if scheduler.wait_for_next(self._stop) is None:
                    break
                if scheduler.skipped > self.stats.skipped_slots:
                    log.warning("a timepoint overran the %.2f s interval; %d slot(s) skipped so far",
                                self.interval_s, scheduler.skipped)  # fmt: skip
                self.stats.skipped_slots = scheduler.skipped
                started = time.monotonic()
                point = self.world.next_timepoint()
                seconds = time.monotonic() - started
                frame = self._render(point, seconds, started)
                with self._lock:
                    self._latest = frame
                self.stats.timepoints += 1
                self.stats.acquisition_s.append(seconds)
                if self.on_frame is not None:
                    self.on_frame(frame)
        except BaseException as exc:  # surfaced to the caller via .error; the thread must not die silently
            log.exception("simulated acquisition failed")
            self.error = exc
