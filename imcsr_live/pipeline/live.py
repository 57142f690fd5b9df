"""The live pipeline: acquire -> reconstruct -> 3-frame buffer -> separate -> display bus + recorder.

Three worker threads joined by bounded queues (size ``queue_size``):

    acquisition (on the interval grid) --raw--> reconstruction --SR--> separation --> DisplayBus, Recorder

Acquisition never waits for the stages behind it: when a queue is full the newest item is dropped and
counted (``stats.dropped``). Each :class:`LiveFrame` carries monotonic timestamps per stage, so latencies and
drops are measured, not guessed. Errors in any stage are logged and kept in ``events`` (for the GUI's log
panel) and in ``errors`` (structured, for its notice) and the pipeline carries on with the next timepoint. A run
ends when :meth:`LivePipeline.stop` is called, when ``timepoints`` were attempted (a failed acquisition counts:
``--frames N`` always ends), or after ``max_consecutive_failures`` failed acquisitions in a row (``failure`` then
says why, in one line). A recording can be attached at start (``recorder``) or started and stopped
mid-run (:meth:`LivePipeline.start_recording`, built by ``recorder_factory``).

Every separated timepoint gets a per-frame confidence (:class:`~imcsr_live.model.confidence.FrameConfidence`,
judged against the model card's reference; computed on a subsample, a few ms); a frame out of distribution is
warned about in ``events`` and the log at most once per ``confidence_warn_interval_s``.

With a :class:`~imcsr_live.pipeline.validation.Validator` (``live --validate-every K``), every K-th timepoint also
takes one stack per structure's excitation preset and is scored against those real colours
(:mod:`imcsr_live.pipeline.validation`); a failed validation is one log line, never a lost timepoint.

Every message names a timepoint the same way, 1-based and out of the run's total: ``timepoint k/N`` (k = grid
slot + 1, as in the window and on the recording's time axis). When the first timepoints show that reconstruction
or separation takes longer than the interval, one warning says so, with what to change.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np

from imcsr_live.errors import HardwareError, ImcsrError, InputDataError
from imcsr_live.hardware.base import MicroscopeBackend, RawStack
from imcsr_live.model.confidence import ConfidenceModel, FrameConfidence
from imcsr_live.pipeline.buffer import TemporalBuffer
from imcsr_live.pipeline.display_bus import DisplayBus
from imcsr_live.pipeline.memory import keep_large_allocations_unpooled
from imcsr_live.pipeline.recorder import Recorder, RecordItem
from imcsr_live.pipeline.scheduler import IntervalScheduler, Pausable
from imcsr_live.pipeline.validation import RealImages, ValidationResult, ValidationStacks, Validator

log = logging.getLogger(__name__)

_END = object()  # end-of-run marker passed down the queues
# What the separation thread keeps per timepoint: raw stack, SR frame, stage stamps, real colours if validated.
_Centre = tuple[RawStack, Any, dict[str, float], RealImages | None]


class SRFrameLike(Protocol):
    """What the pipeline uses of a reconstruction result (``imcsr_live.recon.SRFrame``)."""

    sr: np.ndarray
    widefield: np.ndarray
    warnings: tuple[str, ...]

    @property
    def low_confidence(self) -> bool: ...


class ReconstructorLike(Protocol):
    def reconstruct(self, raw: np.ndarray, index: int | None = None) -> Any: ...


class EngineLike(Protocol):
    @property
    def name(self) -> str: ...

    def separate(self, window: np.ndarray) -> Any: ...


@dataclass
class LiveFrame:
    """Everything known about one timepoint once it has been separated."""

    index: int  # grid slot = time / interval
    raw: RawStack
    recon: Any  # SRFrame
    separated: Any  # Separated
    stamps: dict[str, float]  # monotonic seconds: acquired, reconstructed, separated, published
    confidence: FrameConfidence | None = None  # None if it could not be computed
    validation: ValidationResult | None = None  # set on validated timepoints (pipeline/validation.py)

    @property
    def latencies_ms(self) -> dict[str, float]:
        s = self.stamps
        return {
            "acquire": (s["acquired"] - self.raw.t_start_s) * 1e3,
            "reconstruct": (s["reconstructed"] - s["recon_start"]) * 1e3,
            "separate": (s["separated"] - s["separate_start"]) * 1e3,
            "end_to_end": (s["published"] - self.raw.t_start_s) * 1e3,
            # from the last raw frame the window needed (t+1 in TC mode) to display: the one-interval TC lag
            # is excluded, so this is the pipeline's own latency
            "last_raw_to_display": (s["published"] - s["window_complete"]) * 1e3,
        }


@dataclass
class PipelineStats:
    acquired: int = 0
    reconstructed: int = 0
    separated: int = 0
    failed: int = 0  # timepoints whose acquisition failed (hardware errors)
    skipped_slots: int = 0
    paused_slots: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"reconstruct": 0, "separate": 0, "record": 0})
    errors: int = 0
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    # the separation thread adds latencies while the GUI thread reads the medians (a dict that grows a key
    # while it is iterated raises)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_latencies(self, values: dict[str, float], keep: int = 1000) -> None:
        with self._lock:
            for key, value in values.items():
                series = self.latencies_ms.setdefault(key, [])
                series.append(value)
                del series[:-keep]

    def medians_ms(self) -> dict[str, float]:
        with self._lock:
            series = {k: list(v) for k, v in self.latencies_ms.items() if v}
        return {k: float(np.median(v)) for k, v in series.items()}


ErrorKind = Literal["hardware", "reconstruction", "engine", "recording", "pipeline"]


@dataclass(frozen=True)
class PipelineEvent:
    """One error of a run, for the GUI's notice: ``seq`` counts errors from 1 (a new one has a higher seq)."""

    seq: int
    clock: str  # local wall time HH:MM:SS
    kind: ErrorKind
    message: str

    def __str__(self) -> str:
        return f"{self.clock} {self.kind} error: {self.message}"


def timepoint_label(index: int, total: int | None) -> str:
    """``timepoint k/N`` for grid slot ``index`` (0-based) of a run of ``total`` timepoints; ``timepoint k`` if open."""
    return f"timepoint {index + 1}/{total}" if total else f"timepoint {index + 1}"


def interval_advice(stage: str, seconds: float, interval_s: float) -> str:
    """The warning for a machine slower than the interval: how slow, and what to change."""
    need = math.ceil(seconds * 1.25) if seconds >= 0.8 else math.ceil(seconds * 12.5) / 10  # 25 % headroom
    return (
        f"{stage} takes {seconds:.1f} s per timepoint but the interval is {interval_s:g} s, so frames are dropped "
        f"and the display lags: use a smaller field, a GPU, a lighter model or an interval of {need:g} s "
        f"([acquisition] interval_s = {need:g}; demo: --interval {need:g})"
    )


#: Timepoints measured before judging whether the machine keeps up with the interval (the first may be slower).
PACE_SAMPLES = 2


@dataclass(frozen=True)
class PipelineSettings:
    interval_s: float = 2.0
    timepoints: int | None = None  # attempted timepoints (failed ones count); None = until stopped
    acquisition_timeout_s: float = 5.0
    max_consecutive_failures: int = 5  # failed acquisitions in a row that end the run
    in_frames: int = 3  # 3 = temporal continuity (display lags one interval), 1 = single frame
    queue_size: int = 2


class LivePipeline(Pausable):
    """Owns the worker threads of one live run. ``start()``, then ``stop()`` (or wait for ``timepoints``)."""

    def __init__(
        self,
        backend: MicroscopeBackend,
        reconstructor: ReconstructorLike,
        engine: EngineLike,
        settings: PipelineSettings,
        recorder: Recorder | None = None,
        record_item: Callable[[LiveFrame], RecordItem] | None = None,
        confidence: ConfidenceModel | None = None,
        validator: Validator | None = None,
    ) -> None:
        """``confidence``: how frames are judged; by default from the engine's model card. ``validator``: live
        validation against the real colours (a rig with a preset per structure), on or off."""
        self.backend = backend
        self.reconstructor = reconstructor
        self.engine = engine
        self.settings = settings
        self.recorder = recorder
        self.record_item = record_item
        self.display: DisplayBus[LiveFrame] = DisplayBus()
        self.stats = PipelineStats()
        self.confidence = confidence or confidence_model_of(engine)
        self.validator = validator
        self.validation_unavailable: str | None = None  # why this rig cannot validate (set by the session)
        if validator is not None:
            validator.report, validator.label = self._event, self._tp
        self.confidence_warn_interval_s = 30.0  # at most one low-confidence warning this often
        self.confidence_counts = {"checked": 0, "low": 0}
        self._confidence_warned_s: float | None = None  # monotonic time of the last warning
        self._confidence_unreported = 0  # low frames since then
        self._pace: list[tuple[float, float]] = []  # (reconstruct, separate) seconds of the first timepoints
        self.events: deque[str] = deque(maxlen=500)  # human-readable warnings/errors, newest last
        self.errors: deque[PipelineEvent] = deque(maxlen=100)  # the errors among them, structured
        # builds a Recorder for a path mid-run (set by session.build_live_pipeline): (path, extra metadata,
        # the interval in force, which becomes the recording's time increment)
        self.recorder_factory: Callable[[Path, dict[str, Any], float], Recorder] | None = None
        self.display_settings: dict[str, Any] | None = None  # set by the GUI; goes into recording metadata
        self.started_s: float | None = None  # monotonic time of start()
        self.failure: str | None = None  # why the run ended by itself on an error (one line), else None
        self._scheduler: IntervalScheduler | None = None
        self._record_lock = threading.Lock()  # guards self.recorder: attach, detach, and every put
        self._finish_lock = threading.Lock()  # held while a detached recorder finalises its files
        self._event_lock = threading.Lock()  # three stages report errors; each needs its own seq
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._backend_lock = threading.Lock()  # held by live acquisition per stack, or by a borrower
        self._lent = threading.Event()  # set while a borrower has (or waits for) the backend
        self._stopped = False
        self._raw_q: queue.Queue[object] = queue.Queue(settings.queue_size)
        self._sr_q: queue.Queue[object] = queue.Queue(settings.queue_size)
        self._threads = [
            threading.Thread(target=self._guard(self._acquire_loop), name="acquisition", daemon=True),
            threading.Thread(target=self._guard(self._reconstruct_loop), name="reconstruction", daemon=True),
            threading.Thread(target=self._guard(self._separate_loop), name="separation", daemon=True),
        ]

    # -- control ------------------------------------------------------------------------------------------
    def start(self) -> None:
        keep_large_allocations_unpooled()  # flat RSS over long runs (see pipeline/memory.py)
        self.backend.open()
        self.started_s = time.monotonic()
        # made here, not on the acquisition thread: an interval set between start() and that thread's first
        # line would otherwise be lost
        self._scheduler = IntervalScheduler(self.settings.interval_s)
        for thread in self._threads:
            thread.start()

    def set_interval(self, interval_s: float) -> None:
        """Change the acquisition interval from the next timepoint on (not while recording: fixed time axis)."""
        if interval_s < 0:
            raise InputDataError(f"the interval must be >= 0 s, got {interval_s}")
        if self.recording_active:
            raise InputDataError("stop the recording before changing the interval (its time axis is fixed)")
        self.settings = replace(self.settings, interval_s=interval_s)
        if self._scheduler is not None:
            self._scheduler.set_interval(interval_s)

    def set_validate_every(self, every: int | None) -> None:
        """Validate every ``every``-th timepoint from the next grid slot on (None: off); see pipeline/validation.py."""
        if self.validator is None:
            raise InputDataError("this run cannot validate: the rig has no excitation preset per structure")
        self.validator.set_every(every)

    def queue_fill(self) -> dict[str, float]:
        """How full the hand-over queues are, 0..1 (raw -> reconstruction, SR -> separation, recorder)."""
        fill = {
            "reconstruct": self._raw_q.qsize() / self.settings.queue_size,
            "separate": self._sr_q.qsize() / self.settings.queue_size,
        }
        recorder = self.recorder
        if recorder is not None and recorder.active:
            fill["record"] = recorder.queue_fill()
        return fill

    # -- recording mid-run ------------------------------------------------------------------------------------
    @property
    def recording_active(self) -> bool:
        recorder = self.recorder
        return recorder is not None and recorder.active

    def start_recording(self, path: Path, metadata: dict[str, Any] | None = None) -> Recorder:
        """Record from the next separated timepoint on into ``path`` (``metadata`` joins the provenance)."""
        with self._record_lock:
            if self.recording_active:
                raise InputDataError("a recording is already running; stop it before starting another")
            if self.recorder_factory is None or self.record_item is None:
                raise InputDataError("this run cannot record (no recording set-up); start it with --record PATH")
            if self._stopped or not self.running:
                # nothing would ever be written, and nobody would finalise the files
                raise InputDataError("the live run has ended; start a new run to record")
            recorder = self.recorder_factory(Path(path), dict(metadata or {}), self.settings.interval_s)
            self.recorder = recorder
        log.debug("recording to %s", path)  # the caller (record button) says it in the window's log, once
        return recorder

    def stop_recording(self) -> Recorder | None:
        """Detach the recorder, let it write what is queued and finalise its metadata (blocks; may take seconds).

        A second caller (e.g. :meth:`stop` on window close while the record button's helper thread is still
        finishing) waits until the files are final instead of returning early.
        """
        with self._finish_lock:
            with self._record_lock:  # no put() after this: nothing lands behind the recorder's stop marker
                recorder, self.recorder = self.recorder, None
            if recorder is not None:
                recorder.stop(self.summary())
                if recorder.error:
                    # counted and kept, logged at DEBUG: the recorder logged it when it happened (one ERROR line)
                    self._event(recorder.error, error=True, kind="recording", quiet=True)
                # DEBUG: the caller reports it (the window's log panel, the headless summary), once
                log.debug("recording stopped: %d timepoints in %s", recorder.written, recorder.plan.path)
        return recorder

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run finished by itself (``timepoints`` reached); True if it did."""
        self._threads[-1].join(timeout_s)
        return not self._threads[-1].is_alive()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop acquiring, finish what is in flight, close the recorder and the backend (once)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        try:
            self.backend.abort()
        except Exception as exc:  # abort is best effort; closing below still happens
            self._event(f"abort failed: {exc}")
        try:
            acquisition = self._threads[0]
            if acquisition.is_alive():
                acquisition.join(timeout_s)
            if acquisition.is_alive():  # stuck in a driver call that ignores abort(): end the stages behind it
                self._event(f"acquisition did not stop within {timeout_s:g} s (camera driver hung?)", error=True,
                            kind="hardware")  # fmt: skip
                _put_end(self._raw_q)
            for thread in self._threads[1:]:
                if thread.is_alive():
                    thread.join(timeout_s)
            self.stop_recording()
        finally:  # the camera is released whatever happened to the recording (after a borrower is done with it)
            lent = not self._backend_lock.acquire(timeout=timeout_s)
            try:
                self.backend.close()
            finally:
                if not lent:
                    self._backend_lock.release()

    @contextmanager
    def borrowed_backend(self, timeout_s: float = 60.0) -> Iterator[MicroscopeBackend]:
        """The open backend for the caller alone (e.g. training data, :mod:`imcsr_live.pipeline.training_data`):
        live acquisition pauses at the next grid slot, the stack in flight (and its validation) is finished first,
        and acquisition resumes afterwards unless it was paused before. :class:`InputDataError` (one line) once the
        run has ended or when the stack in flight does not finish within ``timeout_s``."""
        if self._stop.is_set() or not self.running:
            raise InputDataError("the run has ended; press Run again (or start the app again) first")
        was_paused = self.paused
        self.pause()
        self._lent.set()
        if not self._backend_lock.acquire(timeout=timeout_s):
            self._lent.clear()
            if not was_paused:
                self.resume()
            raise InputDataError(f"live acquisition did not finish its stack within {timeout_s:g} s; try again")
        try:
            if self._stop.is_set():
                raise InputDataError("the run has ended; press Run again (or start the app again) first")
            yield self.backend
        finally:
            self._lent.clear()
            self._backend_lock.release()
            if not was_paused:
                self.resume()

    def _skip_lent_slot(self) -> bool:
        """True while the backend is lent out (:meth:`borrowed_backend`); free-running: after a short nap."""
        if not self._lent.is_set():
            return False
        self._stop.wait(0.05 if self.settings.interval_s <= 0 else 0.0)
        return True

    def summary(self) -> dict[str, Any]:
        s = self.stats
        summary = {
            "timepoints_acquired": s.acquired,
            "timepoints_separated": s.separated,
            "timepoints_failed": s.failed,
            "skipped_slots": s.skipped_slots,
            "paused_slots": s.paused_slots,
            "dropped_frames": dict(s.dropped),
            "errors": s.errors,
            "latency_medians_ms": s.medians_ms(),
        }
        summary["confidence"] = {
            "timepoints_checked": self.confidence_counts["checked"],
            "timepoints_low": self.confidence_counts["low"],
            "reference": self.confidence.reference.to_dict(),
        }
        if self.display_settings is not None:
            summary["display"] = self.display_settings
        if self.validator is not None:
            summary["validation"] = self.validator.summary()
        return summary

    # -- helpers --------------------------------------------------------------------------------------------
    def _tp(self, index: int) -> str:
        return timepoint_label(index, self.settings.timepoints)

    def _event(self, message: str, error: bool = False, kind: ErrorKind = "pipeline", quiet: bool = False) -> None:
        """Keep ``message`` in ``events`` (and ``errors``) and log it; ``quiet``: at DEBUG (the caller reports it)."""
        stamp = time.strftime("%H:%M:%S")
        self.events.append(f"{stamp} {message}")
        if error:
            with self._event_lock:
                self.stats.errors += 1
                self.errors.append(PipelineEvent(self.stats.errors, stamp, kind, message))
        level = logging.DEBUG if quiet else logging.ERROR if error else logging.WARNING
        log.log(level, message)

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception as exc:  # a bug in a stage: report it, end the run cleanly
                log.exception("pipeline stage %s crashed", threading.current_thread().name)
                self._event(f"{threading.current_thread().name} stopped: {exc}", error=True, kind="pipeline")
                self._stop.set()
                for q in (self._raw_q, self._sr_q):
                    _put_end(q)

        return run

    @staticmethod
    def _offer(q: queue.Queue[object], item: object, wait_while: threading.Event | None = None) -> bool:
        """Put without blocking (False = dropped); with ``wait_while``, block until there is room or it is set."""
        while True:
            try:
                q.put(item, timeout=0.1) if wait_while is not None else q.put_nowait(item)
                return True
            except queue.Full:
                if wait_while is None or wait_while.is_set():
                    return False

    # -- stages ---------------------------------------------------------------------------------------------
    def _acquire_loop(self) -> None:
        scheduler = self._scheduler
        assert scheduler is not None  # made by start()
        limit = self.settings.timepoints
        in_a_row = 0  # failed acquisitions since the last good one
        try:
            while not self._stop.is_set() and (limit is None or self.stats.acquired + self.stats.failed < limit):
                slot = scheduler.wait_for_next(self._stop)
                self.stats.skipped_slots = scheduler.skipped
                if slot is None:
                    break
                # not acquired, not an overrun: paused, or the backend is lent out (a Resume meanwhile waits for it)
                if self._skip_paused_slot(self.settings.interval_s, self._stop) or self._skip_lent_slot():
                    self.stats.paused_slots += 1
                    continue
                with self._backend_lock:  # the backend is lent out (training data) between live stacks only
                    if self._paused.is_set() or self._lent.is_set():  # paused while this slot waited for the lock
                        self.stats.paused_slots += 1
                        continue
                    try:
                        stack = self.backend.acquire_sim_stack(self.settings.acquisition_timeout_s)
                    except HardwareError as exc:
                        if self._stop.is_set():
                            break
                        self.stats.failed += 1
                        in_a_row += 1
                        if in_a_row >= self.settings.max_consecutive_failures:
                            self._give_up(in_a_row, exc)
                            break
                        self._event(f"{self._tp(slot)}: {exc}", error=True, kind="hardware")
                        continue
                    in_a_row = 0
                    stack.index = slot
                    self.stats.acquired += 1
                    acquired = time.monotonic()
                    taken = None  # per-structure stacks of a validated slot: not timepoints, never counted as such
                    if self.validator is not None:
                        taken = self.validator.take(self.backend, slot, self.settings.acquisition_timeout_s, self._stop)
                # Free-running (interval 0) is throughput mode: wait for the stages instead of dropping.
                wait = self.settings.interval_s <= 0
                if not self._offer(self._raw_q, (stack, acquired, taken), wait_while=None if not wait else self._stop):
                    self.stats.dropped["reconstruct"] += 1
                    self._event(f"{self._tp(slot)} dropped: reconstruction is behind")
        finally:
            _put_end(self._raw_q, wait=True)

    def _give_up(self, failures: int, exc: HardwareError) -> None:
        """End the run after ``failures`` failed acquisitions in a row; ``failure`` says why (the caller reports
        it, so the log gets it at DEBUG only: one line for the operator, not two)."""
        self.failure = (
            f"acquisition failed {failures} times in a row: {exc}; check the camera (power, cable, trigger mode, "
            "not in use by another program) and start the run again"
        )
        self._event(self.failure, error=True, kind="hardware", quiet=True)

    def _reconstruct_loop(self) -> None:
        while True:
            item = self._raw_q.get()
            if item is _END:
                break
            stack, acquired, taken = cast("tuple[RawStack, float, ValidationStacks | None]", item)
            start = time.monotonic()
            try:
                recon = self.reconstructor.reconstruct(stack.frames, stack.index)
            except ImcsrError as exc:
                message = f"{self._tp(stack.index)}: reconstruction failed: {exc}"
                self._event(message, error=True, kind="reconstruction")
                continue
            for warning in getattr(recon, "warnings", ()):
                self._event(f"{self._tp(stack.index)}: {warning}")
            self.stats.reconstructed += 1
            stamps = {"acquired": acquired, "recon_start": start, "reconstructed": time.monotonic()}
            real = self.validator.reconstruct(taken) if self.validator is not None else None
            wait = self._stop if self.settings.interval_s <= 0 else None
            if not self._offer(self._sr_q, (stack, recon, stamps, real), wait_while=wait):
                self.stats.dropped["separate"] += 1
                self._event(f"{self._tp(stack.index)} dropped: separation is behind")
        _put_end(self._sr_q, wait=True)

    def _separate_loop(self) -> None:
        buffer: TemporalBuffer[_Centre] = TemporalBuffer(self.settings.in_frames)
        while True:
            item = self._sr_q.get()
            if item is _END:
                window = buffer.flush()
                if window is not None:
                    self._separate(window.frames, window.centre, window.centre[2]["acquired"])
                break
            stack, recon, stamps, real = cast(_Centre, item)
            window = buffer.push(np.asarray(recon.sr, dtype=np.float32), (stack, recon, stamps, real))
            if window is not None:
                self._separate(window.frames, window.centre, stamps["acquired"])

    def _separate(self, frames: np.ndarray, centre: _Centre, window_complete: float) -> None:
        """Separate the centre frame; ``window_complete`` = when the newest raw stack of the window arrived."""
        stack, recon, stamps, real = centre
        stamps = dict(stamps, separate_start=time.monotonic(), window_complete=window_complete)
        try:
            separated = self.engine.separate(frames)
        except ImcsrError as exc:
            self._event(f"{self._tp(stack.index)}: separation failed: {exc}", error=True, kind="engine")
            return
        confidence = self._assess(frames, separated, stack.index)
        stamps["separated"] = time.monotonic()
        validation = None
        if self.validator is not None:  # scored after the separation stamp: its cost is the validation's
            validation = self.validator.compare(stack.index, separated.channels, real)
        frame = LiveFrame(stack.index, stack, recon, separated, stamps, confidence, validation)
        stamps["published"] = time.monotonic()
        self.display.publish(frame)
        self.stats.separated += 1
        self.stats.add_latencies(frame.latencies_ms)
        self._check_pace(frame)
        if self.record_item is None or not self.recording_active:
            return
        item = self.record_item(frame)
        with self._record_lock:  # put() never blocks; the lock orders it before any detach by stop_recording
            recorder = self.recorder
            if recorder is None or not recorder.active:
                return
            if not recorder.put(item):
                self.stats.dropped["record"] += 1

    def _check_pace(self, frame: LiveFrame) -> None:
        """Once, from the first :data:`PACE_SAMPLES` timepoints: warn if a stage is slower than the interval."""
        if len(self._pace) >= PACE_SAMPLES:
            return
        ms = frame.latencies_ms
        self._pace.append((ms["reconstruct"] / 1e3, ms["separate"] / 1e3))
        interval_s = self.settings.interval_s
        if len(self._pace) < PACE_SAMPLES or interval_s <= 0:  # free-running: nothing to keep up with
            return
        reconstruct = min(r for r, _ in self._pace)  # the faster of the first ones: no warning for a one-off
        separate = min(s for _, s in self._pace)
        stage, seconds = ("separation", separate) if separate >= reconstruct else ("reconstruction", reconstruct)
        if seconds > interval_s:
            self._event(interval_advice(stage, seconds, interval_s))

    def _assess(self, frames: np.ndarray, separated: Any, index: int) -> FrameConfidence | None:
        """The frame's confidence (a few ms: subsampled); warns about a low one, rate-limited."""
        try:
            mid = frames[frames.shape[0] // 2] if frames.ndim == 3 else frames
            confidence = self.confidence.assess(
                separated.channels, getattr(separated, "uncertainty", None), mid, float(separated.input_scale)
            )
        except Exception as exc:  # a confidence bug must not cost the frame
            log.warning("%s: confidence not computed: %s", self._tp(index), exc)
            return None
        self.confidence_counts["checked"] += 1
        if confidence.in_distribution:
            return confidence
        self.confidence_counts["low"] += 1
        now = time.monotonic()
        last = self._confidence_warned_s
        if last is not None and now - last < self.confidence_warn_interval_s:
            self._confidence_unreported += 1
            return confidence
        more = self._confidence_unreported
        extra = (
            f" ({more} more low-confidence timepoint{'s' if more != 1 else ''} since the last warning)" if more else ""
        )
        self._event(f"{self._tp(index)}: low confidence, the separation may be wrong: {confidence.reason}{extra}")
        self._confidence_warned_s, self._confidence_unreported = now, 0
        return confidence


def confidence_model_of(engine: Any) -> ConfidenceModel:
    """The :class:`ConfidenceModel` of an engine's model card (defaults for a model without a card)."""
    source = getattr(engine, "source", None)
    cfg = getattr(source, "cfg", None)
    card = getattr(source, "card", None)
    channels, head = getattr(cfg, "out_channels", None), getattr(cfg, "uncertainty", None)
    return ConfidenceModel.from_card(
        card if isinstance(card, dict) else None,
        channels if isinstance(channels, int) else None,
        head if isinstance(head, bool) else None,
    )


def _put_end(q: queue.Queue[object], wait: bool = False, patience_s: float = 30.0) -> None:
    """Deliver the end marker. ``wait``: give the consumer up to ``patience_s`` to make room (it is finishing
    real work); otherwise, or if it never does (it crashed), drop the oldest item to make room."""
    deadline = time.monotonic() + (patience_s if wait else 0.0)
    while True:
        try:
            q.put(_END, timeout=max(0.0, min(0.5, deadline - time.monotonic()))) if wait else q.put_nowait(_END)
            return
        except queue.Full:
            if wait and time.monotonic() < deadline:
                continue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
