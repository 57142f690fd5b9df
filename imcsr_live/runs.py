"""The long-running commands behind ``imcsr-live demo`` and ``imcsr-live live``: GUI or headless.

Demo: the simulated microscope through the full pipeline (SIM reconstruction + IMC-SR separation) with the
model shipped for its structures; with no such model it shows the specimen's ground truth instead and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from imcsr_live.config import RigConfig
from imcsr_live.errors import HardwareError, InputDataError
from imcsr_live.pipeline.views import DisplaySource

if TYPE_CHECKING:
    from imcsr_live.pipeline.preview import SimulatedPreview
    from imcsr_live.pipeline.session import LiveRequest
    from imcsr_live.pipeline.views import LiveView
    from imcsr_live.synth.export import SyntheticTimelapseWriter
    from imcsr_live.synth.world import WorldSettings

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """Options shared by demo and live."""

    headless: bool = False
    frames: int | None = None
    interval_s: float | None = None
    record: Path | None = None
    screenshot: Path | None = None
    model: Path | None = None
    validate_every: int | None = None  # live validation against the real colours (pipeline/validation.py)


def _show(rig: RigConfig, source: DisplaySource, options: RunOptions, title: str, echo: Echo) -> None:
    """Run ``source`` in the monitor window or headless until it ends (or the window is closed)."""
    if options.headless:
        source.start()
        try:
            while source.running:
                source.wait(0.2)
        finally:
            source.stop()
        if options.screenshot is not None:
            echo("--screenshot needs the window; run without --headless (QT_QPA_PLATFORM=offscreen works)")
        return
    from imcsr_live.ui.app import run_monitor_gui

    run_monitor_gui(rig, source, options.screenshot, title=title)
    if options.screenshot is not None:
        echo(f"screenshot {options.screenshot}")


def run_live_pipeline(
    rig: RigConfig,
    options: RunOptions,
    echo: Echo,
    title: str,
    backend: object | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, object]:
    """Build the live pipeline for ``rig`` and run it; return its summary."""
    from imcsr_live.pipeline.live import timepoint_label
    from imcsr_live.pipeline.session import LiveRequest

    request = LiveRequest(options.model, options.frames, options.interval_s, options.record, options.validate_every)
    view = live_view(rig, request, backend=backend, progress=progress, window=not options.headless)
    pipeline = view.pipeline
    if options.headless:
        total = options.frames

        def line() -> None:
            frame, _ = pipeline.display.latest()
            if frame is not None:
                ms = frame.latencies_ms
                echo(
                    f"{timepoint_label(frame.index, total)}  reconstruct {ms['reconstruct']:5.0f} ms"
                    f"  separate {ms['separate']:6.0f} ms  last raw -> display {ms['last_raw_to_display']:6.0f} ms"
                    + (f"  {validation_text(frame.validation)}" if frame.validation is not None else "")
                )

        pipeline.display.subscribe(line)
    _show(rig, view, options, title, echo)
    pipeline = view.pipeline  # the last run (the window's Run again replaces it)
    summary = pipeline.summary()
    medians = summary["latency_medians_ms"]
    dropped: dict[str, int] = summary["dropped_frames"]
    dropped_text = f"{sum(dropped.values())} (" + ", ".join(f"{k} {v}" for k, v in dropped.items()) + ")"
    echo(
        f"summary: {summary['timepoints_separated']} timepoints separated, dropped {dropped_text}, "
        f"skipped slots {summary['skipped_slots']}, failed acquisitions {summary['timepoints_failed']}, "
        f"errors {summary['errors']}, engine {pipeline.engine.name}, "
        "median latency " + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items())
    )
    if pipeline.validator is not None and pipeline.validator.every is not None:
        echo(validation_summary_text(summary["validation"]))
    failure = pipeline.failure  # said once, as the error line below
    for event in [e for e in pipeline.events if failure is None or not e.endswith(failure)][-5:]:
        echo(f"event: {event}")
    for earlier in view.earlier_recordings:  # runs before the window's Run again
        problem = f" (incomplete: {earlier.error})" if earlier.error else ""
        echo(f"recorded {earlier.timepoints} timepoints to {earlier.path} in an earlier run{problem}")
    recording = view.recording()  # the newest recording (stop() has detached it from the pipeline)
    if recording is not None:
        echo(f"recorded {recording.timepoints} timepoints to {recording.path}")
    if failure is not None:  # the run ended on its own because the camera kept failing: exit non-zero
        raise HardwareError(failure)
    if recording is not None and recording.error:  # never a silent partial result: the exit status says so
        raise InputDataError(f"the recording is incomplete: {recording.error}")
    return summary


def live_view(
    rig: RigConfig,
    request: LiveRequest,
    *,
    backend: object | None = None,
    progress: Callable[[str, float], None] | None = None,
    window: bool = True,
) -> LiveView:
    """The first run's pipeline (built, not started) behind a :class:`LiveView`. For the ``window``, the view can
    start the run again once it has ended (Run again): the next pipeline is built as the first one, with the interval
    and validation in force then, and a ``--record`` recording goes to a free variant of its path (``NAME-2`` ...),
    never over the earlier one."""
    from imcsr_live.pipeline.live import LivePipeline
    from imcsr_live.pipeline.session import build_live_pipeline
    from imcsr_live.pipeline.views import LiveView

    def rebuild(interval_s: float, validate_every: int | None) -> LivePipeline:
        record = _free_record_path(request.record) if request.record is not None else None
        again = replace(request, interval_s=interval_s, validate_every=validate_every, record=record)
        return build_live_pipeline(rig, again, backend=backend, progress=progress)  # type: ignore[arg-type]

    pipeline = build_live_pipeline(rig, request, backend=backend, progress=progress)  # type: ignore[arg-type]
    return LiveView(pipeline, rig, prepare=window, rebuild=rebuild if window else None)


def validation_text(result: object) -> str:
    """``validation PCC Microtubules 0.93 ER 0.88 ...`` for one validated timepoint."""
    names, values = result.names, result.pcc  # type: ignore[attr-defined]
    return "validation PCC " + " ".join(f"{n} {v:.3f}" for n, v in zip(names, values, strict=True))


def validation_summary_text(summary: dict[str, object]) -> str:
    """One line: validated timepoints, median PCC per structure, failures, median extra cost."""
    medians: dict[str, float | None] = summary["median_pcc"]  # type: ignore[assignment]
    cost: dict[str, float] = summary["median_cost_ms"]  # type: ignore[assignment]
    pcc = ", ".join(f"{n} {v:.3f}" if v is not None else f"{n} -" for n, v in medians.items())
    extra = f", median extra cost {sum(cost.values()):.0f} ms (" + ", ".join(
        f"{k} {v:.0f}" for k, v in cost.items()) + ")" if cost else ""  # fmt: skip
    return (
        f"validation: every {summary['every']} timepoints, {len(summary['timepoints'])} validated "  # type: ignore[arg-type]
        f"{summary['timepoints']}, median PCC {pcc}, {summary['failed']} failed{extra}"
    )


@dataclass(frozen=True)
class DemoWorld:
    size: int = 256
    photons: float = 1000.0
    seed: int = 3
    world: str = "default"  # a synthetic world by name (imcsr_live.synth.world.WORLDS)


def run_demo(rig: RigConfig, options: RunOptions, world: DemoWorld, echo: Echo) -> None:
    """The simulated microscope: full pipeline if a model is available, otherwise the ground-truth preview."""
    from imcsr_live.pipeline.session import default_model
    from imcsr_live.synth.world import WorldSettings

    if rig.backend.kind != "simulated":
        raise InputDataError(f'the demo needs a rig with [backend] kind = "simulated" (got {rig.backend.kind!r})')
    settings = WorldSettings(
        raw_shape=(world.size, world.size), photons=world.photons, seed=world.seed, world=world.world
    )
    model = options.model or default_model(rig.structure_names, rig.engine.kind)
    if model is not None:
        from imcsr_live.hardware.simulated import SimulatedBackend

        echo(f"demo: simulated microscope {world.size}x{world.size}, model {model.name}")
        options = RunOptions(**{**options.__dict__, "model": model})
        run_live_pipeline(
            rig, options, echo, "imcsr-live — simulated microscope", backend=SimulatedBackend(rig, settings)
        )
        return
    echo("demo: no trained model shipped for these structures — showing the specimen's ground truth instead")
    _run_ground_truth_preview(rig, options, settings, echo)


@dataclass
class GroundTruthRecordings:
    """The ``--record`` files of a ground-truth preview: one writer per run, the newest one still open."""

    writers: list[SyntheticTimelapseWriter] = field(default_factory=list)
    current: SyntheticTimelapseWriter | None = None

    def close(self) -> None:
        """Finish the open run's files (they are complete up to the timepoints written)."""
        if self.current is not None:
            self.current.close()
            self.current = None

    @property
    def paths(self) -> list[Path]:
        return [path for writer in self.writers for path in writer.paths]


def ground_truth_preview(
    rig: RigConfig, options: RunOptions, settings: WorldSettings, echo: Echo
) -> tuple[SimulatedPreview, GroundTruthRecordings]:
    """The simulated specimen's ground truth as a display source, and its ``--record`` files (one set per run: the
    window's Run again starts a fresh specimen and records to a free variant of the path)."""
    from imcsr_live.pipeline.preview import PreviewFrame, SimulatedPreview
    from imcsr_live.synth.export import SyntheticTimelapseWriter
    from imcsr_live.synth.world import SyntheticMicroscope

    interval_s = rig.acquisition.interval_s if options.interval_s is None else options.interval_s
    frames = options.frames
    if options.record is not None and frames is None:
        raise InputDataError("--record needs --frames N (the file is pre-allocated for N timepoints)")
    recordings = GroundTruthRecordings()

    def session() -> tuple[SyntheticMicroscope, Callable[[PreviewFrame], None]]:
        recordings.close()  # the previous run's files are complete
        world = SyntheticMicroscope(rig, settings)
        writer = None
        if options.record is not None and frames is not None:
            path = _free_record_path(options.record) if recordings.writers else options.record
            writer = SyntheticTimelapseWriter(world, path, frames)
            recordings.writers.append(writer)
            recordings.current = writer

        def on_frame(frame: PreviewFrame) -> None:
            if writer is not None:
                writer.put(frame.point)
            if options.headless:
                echo(
                    f"timepoint {frame.point.index + 1}/{frames}  t={frame.point.time_s:6.1f} s  "
                    f"acquisition {frame.acquired_s * 1e3:6.0f} ms"
                )

        return world, on_frame

    world, on_frame = session()
    rebuild = None if options.headless else session
    return SimulatedPreview(world, interval_s, frames, on_frame=on_frame, rebuild=rebuild), recordings


def _free_record_path(path: Path) -> Path:
    """``path``, or the free name a new run records to instead (said in the log): never over an earlier one."""
    from imcsr_live.pipeline.session import free_name

    free = free_name(path)
    if free != path:
        log.warning("%s exists; the new run records to %s instead", path, free)
    return free


def _run_ground_truth_preview(rig: RigConfig, options: RunOptions, settings: WorldSettings, echo: Echo) -> None:
    preview, recordings = ground_truth_preview(rig, options, settings, echo)
    try:
        _show(rig, preview, options, "imcsr-live — simulated microscope (ground truth)", echo)
    finally:
        preview.stop()
        recordings.close()
    if preview.error is not None:
        raise preview.error
    stats = preview.stats
    echo(
        f"summary: {stats.timepoints} timepoints, {stats.skipped_slots} skipped slots, median simulated "
        f"acquisition {stats.median_acquisition_s * 1e3:.0f} ms, interval {preview.interval_s:g} s"
    )
    for path in recordings.paths:
        echo(f"recorded {path}")
