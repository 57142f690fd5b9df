"""Simulated-microscope preview: the synthetic world on a worker thread, one timepoint per interval.

This is the demo's acquisition loop until the full live pipeline (reconstruction + separation) exists. It keeps
the rules the pipeline will keep: timepoints start on a fixed time grid; a timepoint that overruns makes the next
grid slot be skipped and counted (never silently shifted); the display reads only the newest result
("latest wins", as a :class:`~imcsr_live.pipeline.views.DisplayFrame` prepared on the worker thread); the thread
never touches widgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imcsr_live.errors import InputDataError
from imcsr_live.pipeline.live import PipelineEvent
from imcsr_live.pipeline.scheduler import IntervalScheduler, Pausable
from imcsr_live.pipeline.views import DisplayFrame, GreyKind, RunStatus, SourceInfo, make_layer
from imcsr_live.synth.world import SyntheticMicroscope, SynthTimepoint

log = logging.getLogger(__name__)

PREVIEW_NO_TRAINING = (
    "the ground-truth preview is no microscope: take training data with `imcsr-live live -c RIG.toml` or "
    "`imcsr-live acquire-training`"
)
GROUND_TRUTH_UNIT = "photoelectrons (ground truth)"  # synth/world.py: SynthTimepoint.ground_truth


@dataclass
class PreviewFrame:
    """One simulated timepoint and its display form (per-channel ground truth, widefield)."""

    point: SynthTimepoint
    display: DisplayFrame
    acquired_s: float  # seconds the simulated acquisition took
    started_monotonic: float


@dataclass
class PreviewStats:
    timepoints: int = 0
    skipped_slots: int = 0
    # the newest ones only: a run of days must not grow a list per timepoint
    acquisition_s: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    @property
    def median_acquisition_s(self) -> float:
        return float(np.median(self.acquisition_s)) if self.acquisition_s else float("nan")


#: Builds the next run of a preview (Run again): a fresh specimen and what to do with each of its frames.
PreviewSession = Callable[[], tuple[SyntheticMicroscope, Callable[[PreviewFrame], None] | None]]


class SimulatedPreview(Pausable):
    """Runs ``world`` on a thread every ``interval_s`` seconds for ``frames`` timepoints (None = until stopped)."""

    def __init__(
        self,
        world: SyntheticMicroscope,
        interval_s: float,
        frames: int | None = None,
        on_frame: Callable[[PreviewFrame], None] | None = None,
        rebuild: PreviewSession | None = None,
    ) -> None:
        """``rebuild``: the next run's specimen and frame handler, for :meth:`restart` (None: no Run again)."""
        self.world = world
        self._rebuild = rebuild
        self._run_lock = threading.Lock()  # restart() and stop() one at a time
        self._closed = False
        self.interval_s = interval_s
        self.frames = frames
        self.on_frame = on_frame
        self.stats = PreviewStats()
        self.error: BaseException | None = None
        self._latest: PreviewFrame | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._times: deque[float] = deque(maxlen=8)
        self._errors: list[PipelineEvent] = []
        self._thread = threading.Thread(target=self._run, name="simulated-acquisition", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._run_lock:
            self._closed = True
            self._halt(timeout_s)

    def _halt(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def restart(self) -> None:
        """A fresh run once this one has ended: a new specimen from ``rebuild`` (its frames handled as it says),
        statistics from zero, a new acquisition thread."""
        if self._rebuild is None:
            raise InputDataError("the ground-truth preview cannot be started again; start the demo again for a new run")
        with self._run_lock:
            if self._closed:
                raise InputDataError("the window was closed; no new run")
            if self.running:
                raise InputDataError("the run is still going; it can be started again once it has ended")
            self._halt(10.0)
            self.world, self.on_frame = self._rebuild()
            self.stats = PreviewStats()
            self.error = None
            self._errors = []
            self._times.clear()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="simulated-acquisition", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run has finished; True if it did."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    title = "Ground truth of the simulated specimen (no model shipped for these structures)"

    @property
    def channel_names(self) -> list[str]:
        return list(self.world.rig.structure_names)

    @property
    def channel_colors(self) -> list[str]:
        return [s.color for s in self.world.rig.structures]

    def newest(self) -> DisplayFrame | None:
        """The newest frame as the window shows it."""
        frame = self.latest()
        return None if frame is None else frame.display

    def info(self) -> SourceInfo:
        rig = self.world.rig
        return SourceInfo(
            engine="none (ground truth)", exposure_ms=float(rig.acquisition.exposure_ms), interval_s=self.interval_s,
            pixel_size_um=rig.optics.pixel_size_um / 2, can_pause=True, channel_unit=GROUND_TRUTH_UNIT,
            can_restart=self._rebuild is not None, training_note=PREVIEW_NO_TRAINING,
        )  # fmt: skip

    def status(self) -> RunStatus:
        times = list(self._times)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        acquisition = list(self.stats.acquisition_s)[-20:]
        return RunStatus(
            running=self.running, paused=self.paused, timepoints=self.stats.timepoints, fps=fps,
            latencies_ms={"acquire": float(np.median(acquisition)) * 1e3} if acquisition else {},
            dropped={}, skipped_slots=self.stats.skipped_slots, queue_fill={}, errors=len(self._errors),
        )  # fmt: skip

    def error_events(self) -> list[PipelineEvent]:
        return list(self._errors)

    def set_grey_kind(self, kind: GreyKind) -> None:
        """Nothing to choose: the grey view is always the sum of the ground truth (``grey_kinds`` is ("sr",))."""

    def set_display_settings(self, settings: dict[str, Any]) -> None:
        """Nothing records them: the preview has no recorder."""

    def validation_state(self) -> None:
        """The ground truth needs no validation (``can_validate`` is False)."""
        return None

    def set_validate_every(self, every: int | None) -> None:
        raise InputDataError("the ground-truth preview separates nothing, so there is nothing to validate")

    def acquire_training(self, request: Any, on_timepoint: Any = None, stop: Any = None) -> Any:
        """Nothing to acquire from: the preview is no microscope (``can_acquire_training`` is False)."""
        raise InputDataError(PREVIEW_NO_TRAINING)

    def latest(self) -> PreviewFrame | None:
        """The newest finished frame (older ones are simply replaced: latest wins)."""
        with self._lock:
            return self._latest

    def _render(self, point: SynthTimepoint, seconds: float, started: float) -> PreviewFrame:
        low, high = self.world.rig.display.autocontrast_percentiles
        pct = (low, high)
        widefield = point.raw.astype(np.float32).mean(axis=0)
        truth = np.asarray(point.ground_truth, dtype=np.float32)
        display = DisplayFrame(
            index=point.index,
            time_s=point.time_s,
            channels=tuple(make_layer(c, pct) for c in truth),
            grey=make_layer(truth.sum(axis=0), pct),  # what a perfect one-colour SR image would show
            widefield=make_layer(widefield, pct),
            widefield_scale=truth.shape[-1] / widefield.shape[-1],
            grey_kind="sr",
            grey_title="Sum of the ground-truth channels (a perfect one-colour image)",
            grey_unit=GROUND_TRUTH_UNIT,
        )
        return PreviewFrame(point=point, display=display, acquired_s=seconds, started_monotonic=started)

    def _run(self) -> None:
        scheduler = IntervalScheduler(self.interval_s)
        try:
            while self.frames is None or self.stats.timepoints < self.frames:
                if scheduler.wait_for_next(self._stop) is None:
                    break
                if self._skip_paused_slot(self.interval_s, self._stop):
                    continue
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
                self._times.append(time.monotonic())
                self.stats.acquisition_s.append(seconds)
                if self.on_frame is not None:
                    self.on_frame(frame)
        except BaseException as exc:  # surfaced to the caller via .error; the thread must not die silently
            log.exception("simulated acquisition failed")
            self.error = exc
            self._errors.append(PipelineEvent(1, time.strftime("%H:%M:%S"), "hardware", f"acquisition stopped: {exc}"))
