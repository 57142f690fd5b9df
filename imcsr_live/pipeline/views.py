"""What the GUI shows, prepared off the GUI thread: per-channel images (uint16), grey views, statistics.

Sources prepare a :class:`DisplayFrame` on their worker thread: every image is downcast to uint16 counts
(``value = offset + counts * value_per_count``) with its percentile levels and a small histogram computed from a
subsample, so the GUI thread only uploads arrays and applies colour tables (the colouring itself is the GPU/Qt
compositor's job, never the worker's). Two sources: the live pipeline (:class:`LiveView`) and the simulated
microscope's ground-truth preview (:mod:`pipeline.preview`). The GUI reads only the newest frame ("latest wins").
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.model.confidence import FrameConfidence
from imcsr_live.pipeline.live import LiveFrame, LivePipeline, PipelineEvent
from imcsr_live.pipeline.validation import ValidationState

if TYPE_CHECKING:
    from imcsr_live.io.training_dataset import DatasetManifest
    from imcsr_live.pipeline.training_data import TimepointDone, TrainingRequest

log = logging.getLogger(__name__)

GreyKind = Literal["sr", "residual", "uncertainty"]
#: Per grey-view kind: the panel title, and the short label of the view chooser and the cursor read-out.
GREY_TITLES: dict[str, str] = {
    "sr": "SIM reconstruction",
    "residual": "Sum residual (SR input − Σ channels)",
    "uncertainty": "Uncertainty (Σ channel σ)",
}
GREY_LABELS: dict[str, str] = {"sr": "SR reconstruction", "residual": "Sum residual", "uncertainty": "Uncertainty"}
#: Units of what the views show (labels of levels, histograms, colour bars and panel titles). The network's channels
#: are relative to its normalised input: the SR frame divided by its 99.9th percentile (model/normalization.py).
SR_UNIT = "SR intensity, a.u."
NORMALISED_UNIT = "normalised SR intensity, a.u. (1 = the frame's 99.9th percentile)"
WIDEFIELD_UNIT = "camera counts (ADU)"  # the mean of the raw frames
GREY_UNITS: dict[str, str] = {"sr": SR_UNIT, "residual": SR_UNIT, "uncertainty": "σ, normalised SR intensity, a.u."}
_COUNTS = 65535.0


@dataclass(frozen=True)
class ImageLayer:
    """One image as uint16 counts plus what is needed to show it: value scale, auto levels, histogram."""

    counts: np.ndarray  # (H, W) uint16
    offset: float
    value_per_count: float
    auto_levels: tuple[float, float]  # percentile levels, in values
    hist_counts: np.ndarray  # (bins,) from a subsample
    hist_edges: np.ndarray  # (bins + 1,) in values

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape

    def value_at(self, y: int, x: int) -> float:
        """The image value at pixel (y, x) (to within one count)."""
        return self.offset + float(self.counts[y, x]) * self.value_per_count

    def to_counts(self, value: float) -> float:
        """A value (e.g. a display level) in this layer's counts."""
        return (value - self.offset) / self.value_per_count

    def values(self) -> np.ndarray:
        return (self.offset + self.counts.astype(np.float32) * np.float32(self.value_per_count)).astype(np.float32)


def make_layer(
    image: np.ndarray, percentiles: tuple[float, float] = (0.1, 99.9), bins: int = 64, step: int = 4
) -> ImageLayer:
    """Downcast ``image`` to uint16 over its own [min, max]; levels and histogram from every ``step``-th pixel."""
    image = np.asarray(image, dtype=np.float32)
    finite = np.nan_to_num(image, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(finite.min()), float(finite.max())
    span = high - low if high > low else 1.0
    scale = np.float32(_COUNTS / span)
    counts = ((finite - np.float32(low)) * scale + np.float32(0.5)).astype(np.uint16)
    sample = finite[::step, ::step]
    p_low, p_high = (float(v) for v in np.percentile(sample, percentiles))
    if p_high <= p_low:
        p_high = p_low + span / _COUNTS
    hist, edges = np.histogram(sample, bins=bins, range=(low, low + span))
    return ImageLayer(counts, low, span / _COUNTS, (p_low, p_high), hist.astype(np.int64), edges.astype(np.float64))


@dataclass(frozen=True)
class DisplayFrame:
    """One timepoint for the GUI: channel layers (model order), a grey view, the widefield, and when it was made."""

    index: int  # timepoint index (grid slot)
    time_s: float  # acquisition start since the run started
    channels: tuple[ImageLayer, ...]
    grey: ImageLayer | None  # SR reconstruction, or the residual / uncertainty (``grey_kind``)
    widefield: ImageLayer | None  # camera grid
    widefield_scale: float  # widefield pixel -> channel-grid pixels
    grey_kind: str = "sr"
    grey_title: str = ""  # overrides GREY_TITLES[grey_kind]
    grey_unit: str = ""  # overrides GREY_UNITS[grey_kind]
    published_s: float = field(default_factory=time.monotonic)  # monotonic, when the frame was prepared
    warnings: tuple[str, ...] = ()
    confidence: FrameConfidence | None = None  # the separation's per-frame confidence (None: not judged)


@dataclass(frozen=True)
class SourceInfo:
    """What the acquisition panel shows and which controls the source supports."""

    engine: str = ""
    precision: str = ""
    model: str = ""
    exposure_ms: float | None = None
    interval_s: float = 0.0
    pixel_size_um: float = 0.1  # of the channel grid (SR)
    can_pause: bool = False
    can_record: bool = False
    can_set_interval: bool = False
    grey_kinds: tuple[str, ...] = ("sr",)
    can_validate: bool = False  # live validation against the real colours (a preset per structure)
    validate_every: int | None = None  # validation interval in force (None: off)
    validation_note: str = ""  # why the source cannot validate
    channel_unit: str = ""  # of the channel values (levels, histograms, cursor read-out)
    can_restart: bool = False  # an ended run can be started again as a fresh one (:meth:`DisplaySource.restart`)
    can_acquire_training: bool = False  # training data via the live backend (DisplaySource.acquire_training)
    training_note: str = ""  # why the source cannot take training data


@dataclass(frozen=True)
class RunStatus:
    """Numbers for the status bar."""

    running: bool
    paused: bool
    timepoints: int
    fps: float  # separated timepoints per second over the last few
    latencies_ms: dict[str, float]  # medians per stage
    dropped: dict[str, int]
    skipped_slots: int
    queue_fill: dict[str, float]
    errors: int


@dataclass(frozen=True)
class RecordingStatus:
    path: Path
    active: bool
    elapsed_s: float
    timepoints: int
    bytes_written: int
    free_bytes: int | None
    error: str | None


class DisplaySource(Protocol):
    """Anything the main window can show; optional controls are announced by :meth:`info`."""

    @property
    def channel_names(self) -> list[str]: ...
    @property
    def channel_colors(self) -> list[str]: ...

    title: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def running(self) -> bool: ...

    def newest(self) -> DisplayFrame | None: ...

    def wait(self, timeout_s: float | None = None) -> bool: ...

    def info(self) -> SourceInfo: ...

    def status(self) -> RunStatus: ...

    def error_events(self) -> list[PipelineEvent]: ...

    def set_grey_kind(self, kind: GreyKind) -> None:
        """The grey view of the frames prepared from now on (one of ``info().grey_kinds``)."""
        ...

    def set_display_settings(self, settings: dict[str, Any]) -> None:
        """The window's channel display settings (levels, colours, palette), for recordings to store."""
        ...

    def validation_state(self) -> ValidationState | None:
        """Live validation so far (PCC trend, newest error maps); None when the source cannot validate."""
        ...

    def set_validate_every(self, every: int | None) -> None:
        """Validate every ``every``-th timepoint from now on (None: off); raises ImcsrError if it cannot."""
        ...

    def restart(self) -> None:
        """Start a fresh run after this one ended (``info().can_restart``); raises ImcsrError if it cannot. May block
        for seconds (hardware, engine warm-up): call it off the GUI thread."""
        ...

    def acquire_training(
        self,
        request: TrainingRequest,
        on_timepoint: Callable[[TimepointDone], None] | None = None,
        stop: threading.Event | None = None,
    ) -> DatasetManifest:
        """Training data into ``request.root`` as ``imcsr-live acquire-training`` takes it, through the source's own
        backend with live imaging paused meanwhile (``info().can_acquire_training``); ``stop`` ends after the timepoint
        in progress. Raises ImcsrError (one line) if it cannot. Blocks for the whole acquisition: call it off the GUI
        thread."""
        ...


def training_note(unavailable: str | None) -> str:
    """Why a source cannot take training data, from why its rig cannot validate (both need a preset per structure)."""
    reason = unavailable or "the rig has no excitation preset per structure"
    return reason.replace("live validation", "training data", 1)


def free_disk_bytes(path: Path) -> int | None:
    """Free space on the disk that holds ``path`` (or its nearest existing parent)."""
    probe = Path(path).resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


class LiveView:
    """Prepares the newest separated :class:`LiveFrame` for display on its own thread; wraps the controls.

    The separation thread only wakes the ``display-prep`` thread (latest wins: frames published while it is busy
    are skipped), so display preparation never delays the next separation.
    """

    def __init__(
        self,
        pipeline: LivePipeline,
        rig: RigConfig,
        prepare: bool = True,
        rebuild: Callable[[float, int | None], LivePipeline] | None = None,
    ) -> None:
        """``prepare=False``: no display frames (headless runs; saves the per-frame preparation). ``rebuild``: builds
        the next run's pipeline as the first one was built, given the interval and validation in force (see
        :meth:`restart`); None: the run cannot be started again."""
        self.pipeline = pipeline
        self._rebuild = rebuild
        self.earlier_recordings: list[RecordingStatus] = []  # of the runs before the current one (Run again)
        self.rig = rig
        self._channel_names = list(rig.structure_names)
        self._channel_colors = [s.color for s in rig.structures]
        self.grey_kind: GreyKind = "sr"  # set by the GUI thread; read once per frame by the worker
        self._lock = threading.Lock()
        self._newest: DisplayFrame | None = None
        self._shown: deque[float] = deque(maxlen=8)  # publish times, for the fps figure
        self._recorder = pipeline.recorder  # the newest recorder, still reported after it stopped
        lag = " — shown one interval late (temporal continuity)" if pipeline.settings.in_frames == 3 else ""
        self.title = f"Separated by IMC-SR ({pipeline.engine.name}){lag}"
        self._wake = threading.Event()
        self._busy = False
        self._closing = False
        self._run_lock = threading.Lock()  # restart() and stop() one at a time: a close waits for a restart
        self._stopped = False
        self._thread: threading.Thread | None = None
        if prepare:
            self._thread = threading.Thread(target=self._prepare_loop, name="display-prep", daemon=True)
            pipeline.display.subscribe(self._wake.set)

    @property
    def channel_names(self) -> list[str]:
        return self._channel_names

    @property
    def channel_colors(self) -> list[str]:
        return self._channel_colors

    def _prepare_loop(self) -> None:
        while True:
            self._wake.wait()
            self._busy = True
            self._wake.clear()
            try:
                if self._closing:
                    return
                frame, _ = self.pipeline.display.latest()
                if frame is not None:
                    prepared = self.prepare(frame)
                    with self._lock:
                        self._newest = prepared
                        self._shown.append(prepared.published_s)
            except Exception:  # a display bug must not end the run: log it, wait for the next frame
                log.exception("preparing timepoint for display failed")
            finally:
                self._busy = False

    def prepare(self, frame: LiveFrame) -> DisplayFrame:
        """Per-channel uint16 layers + the grey view (SR, residual or uncertainty) + the widefield."""
        low, high = self.rig.display.autocontrast_percentiles
        pct = (low, high)
        separated = frame.separated
        channels = np.asarray(separated.channels)
        kind = self.grey_kind
        sr = np.asarray(frame.recon.sr, dtype=np.float32)
        if kind == "residual":
            # in SR units: what the network's channels do not explain (negative: it invented signal)
            scale = float(getattr(separated, "input_scale", 1.0))
            grey_image = np.maximum(sr, 0) - channels.sum(axis=0) * np.float32(scale)
        elif kind == "uncertainty" and getattr(separated, "uncertainty", None) is not None:
            grey_image = np.asarray(separated.uncertainty).sum(axis=0)
        else:
            kind, grey_image = "sr", sr
        widefield = getattr(frame.recon, "widefield", None)
        wf_layer = make_layer(widefield, pct) if widefield is not None else None
        started = self.pipeline.started_s or frame.raw.t_start_s
        return DisplayFrame(
            index=frame.index,
            time_s=frame.raw.t_start_s - started,
            channels=tuple(make_layer(c, pct) for c in channels),
            grey=make_layer(grey_image, pct),
            widefield=wf_layer,
            widefield_scale=channels.shape[-1] / widefield.shape[-1] if widefield is not None else 1.0,
            grey_kind=kind,
            warnings=tuple(getattr(frame.recon, "warnings", ())),
            confidence=frame.confidence,
        )

    def newest(self) -> DisplayFrame | None:
        with self._lock:
            return self._newest

    def info(self) -> SourceInfo:
        engine = self.pipeline.engine
        source = getattr(engine, "source", None)
        kinds: tuple[str, ...] = ("sr", "residual")
        if getattr(getattr(source, "cfg", None), "uncertainty", False):
            kinds += ("uncertainty",)
        return SourceInfo(
            engine=engine.name,
            precision=str(getattr(engine, "precision", "")),
            model=str(getattr(source, "name", "")),
            exposure_ms=float(self.rig.acquisition.exposure_ms),
            interval_s=self.pipeline.settings.interval_s,
            pixel_size_um=self.rig.optics.pixel_size_um / 2,
            can_pause=True,
            can_record=self.pipeline.recorder_factory is not None and self.pipeline.record_item is not None,
            can_set_interval=True,
            grey_kinds=kinds,
            can_validate=self.pipeline.validator is not None,
            validate_every=self.pipeline.validator.every if self.pipeline.validator is not None else None,
            validation_note=self.pipeline.validation_unavailable or "",
            channel_unit=NORMALISED_UNIT,
            can_restart=self._rebuild is not None,
            can_acquire_training=self.pipeline.validator is not None,  # a preset per structure, as validation needs
            training_note=training_note(self.pipeline.validation_unavailable),
        )

    def status(self) -> RunStatus:
        stats = self.pipeline.stats
        with self._lock:
            times = list(self._shown)
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        return RunStatus(
            running=self.pipeline.running,
            paused=self.pipeline.paused,
            timepoints=stats.separated,
            fps=fps,
            latencies_ms=stats.medians_ms(),
            dropped=dict(stats.dropped),
            skipped_slots=stats.skipped_slots,
            queue_fill=self.pipeline.queue_fill(),
            errors=stats.errors,
        )

    def error_events(self) -> list[PipelineEvent]:
        return list(self.pipeline.errors)

    # -- controls ---------------------------------------------------------------------------------------------
    def set_grey_kind(self, kind: GreyKind) -> None:
        self.grey_kind = kind  # the display-prep worker reads it once per frame

    def pause(self) -> None:
        self.pipeline.pause()

    def resume(self) -> None:
        self.pipeline.resume()

    def set_interval(self, interval_s: float) -> None:
        self.pipeline.set_interval(interval_s)

    def set_display_settings(self, settings: dict[str, Any]) -> None:
        self.pipeline.display_settings = settings

    def validation_state(self) -> ValidationState | None:
        validator = self.pipeline.validator
        return validator.state() if validator is not None else None

    def set_validate_every(self, every: int | None) -> None:
        self.pipeline.set_validate_every(every)

    def acquire_training(
        self,
        request: TrainingRequest,
        on_timepoint: Callable[[TimepointDone], None] | None = None,
        stop: threading.Event | None = None,
    ) -> DatasetManifest:
        from imcsr_live.pipeline.training_data import acquire_with_backend

        pipeline = self.pipeline
        if pipeline.validator is None:
            raise InputDataError(training_note(pipeline.validation_unavailable))
        with pipeline.borrowed_backend() as backend:
            return acquire_with_backend(self.rig, backend, request, on_timepoint, stop, again="press Start to continue")

    def start_recording(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        self._recorder = self.pipeline.start_recording(path, metadata)

    def stop_recording(self) -> None:
        """Blocks while the recorder drains its queue: call it off the GUI thread."""
        self.pipeline.stop_recording()

    def recording(self) -> RecordingStatus | None:
        recorder = self.pipeline.recorder or self._recorder
        if recorder is None:
            return None
        end = recorder.stopped_s or time.monotonic()
        return RecordingStatus(
            path=recorder.plan.path,
            active=recorder.active,
            elapsed_s=end - recorder.started_s,
            timepoints=recorder.written,
            bytes_written=recorder.bytes_written,
            free_bytes=free_disk_bytes(recorder.plan.path),
            error=recorder.error,
        )

    # -- run ---------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.pipeline.start()
        if self._thread is not None:
            self._thread.start()

    def restart(self) -> None:
        """A fresh run once this one has ended: the old pipeline is stopped (its recording finalised, the camera
        released), a new one is built by ``rebuild`` with the interval and validation now in force, and started.
        The display settings carry over. Blocks (backend, engine warm-up): call it off the GUI thread."""
        if self._rebuild is None:
            raise InputDataError("this run cannot be started again; start the app again for a new run")
        with self._run_lock:  # a window closed meanwhile stops the new run once it is built (never left running)
            if self._stopped:
                raise InputDataError("the window was closed; no new run")
            old = self.pipeline
            if old.running:
                raise InputDataError("the run is still going; it can be started again once it has ended")
            old.stop()
            finished = self.recording()
            if finished is not None and all(r.path != finished.path for r in self.earlier_recordings):  # a retry
                self.earlier_recordings.append(finished)
            every = old.validator.every if old.validator is not None else None
            new = self._rebuild(old.settings.interval_s, every)
            new.display_settings = old.display_settings
            if self._thread is not None:
                new.display.subscribe(self._wake.set)
            with self._lock:
                self.pipeline = new
                self._recorder = new.recorder
                self._shown.clear()
            new.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.pipeline.wait(timeout_s)

    def stop(self) -> None:
        """Stop the run (and one that :meth:`restart` is building: waits until it is built, then stops it)."""
        with self._run_lock:
            self._stopped = True
            self.pipeline.stop()
        if self._thread is not None and self._thread.is_alive():
            self._closing = True
            self._wake.set()
            self._thread.join(10.0)

    @property
    def running(self) -> bool:
        """True while the pipeline runs or the newest frame is still being prepared for display."""
        preparing = self._thread is not None and self._thread.is_alive() and (self._busy or self._wake.is_set())
        return self.pipeline.running or preparing
