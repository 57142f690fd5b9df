"""Offline IMC-SR on recorded data, with the same parts as the live app.

- ``process``: raw SIM time-lapse -> reconstruction -> 3-frame buffer -> separation -> recording, by playing the
  file back through the live pipeline (:class:`~imcsr_live.hardware.replay.ReplayBackend`, no drops).
- ``separate``: an SR time-lapse (T, Y, X) -> separated (T, C, Y, X), through the same temporal buffer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.engine import Engine, ModelSource, Separated, select_engine
from imcsr_live.engine.select import engine_options
from imcsr_live.errors import InputDataError
from imcsr_live.hardware.replay import ReplayBackend
from imcsr_live.io.raw_readers import read_raw_stack
from imcsr_live.io.streams import is_tiff, open_stream
from imcsr_live.io.tiff import read_tiff
from imcsr_live.io.zarr import ImageSpec
from imcsr_live.pipeline.buffer import TemporalBuffer
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.pipeline.recorder import Recorder
from imcsr_live.pipeline.recording import ModelIdentity, provenance_of_model, record_item, recording_plan
from imcsr_live.pipeline.session import recording_format
from imcsr_live.recon.reconstructor import Reconstructor

log = logging.getLogger(__name__)

OnTimepoint = Callable[[int, int], None]  # (timepoints done, total)


def _check_output(output: Path, inputs: list[Path]) -> None:
    if any(output.resolve() == p.resolve() for p in inputs):
        raise InputDataError("the output would overwrite the input; choose another -o path")
    if not (is_tiff(output) or output.name.endswith(".zarr")):
        raise InputDataError(f"output {output} must end in .ome.zarr (default format) or .ome.tif")


def process_file(
    raw_path: Path,
    rig: RigConfig,
    source: ModelSource,
    output: Path,
    on_timepoint: OnTimepoint | None = None,
    engine_kind: str | None = None,
) -> dict[str, object]:
    """Reconstruct and separate every timepoint of a raw file into ``output``; return the run summary."""
    _check_output(output, [raw_path])
    raw = read_raw_stack(raw_path, rig.sim.frames_per_timepoint)
    backend = ReplayBackend(raw.data, rig.sim.frames_per_timepoint)
    ny, nx = backend.raw.shape[2:]
    engine = select_engine(
        engine_kind or rig.engine.kind, source, rig.engine.precision, (2 * ny, 2 * nx),
        options=engine_options(rig.engine.max_tile_pixels),
    )  # fmt: skip
    identity = ModelIdentity(source.name, source.weights_sha256, engine.name, engine.precision)
    fmt = recording_format(output, "ome-zarr")
    dt = raw.time_increment_s or rig.acquisition.interval_s
    plan = recording_plan(rig, output, (ny, nx), identity, backend.timepoints, interval_s=dt)
    recorder = Recorder(replace(plan, format=fmt, queue_size=max(plan.queue_size, 4)))
    pipeline = LivePipeline(
        backend, Reconstructor(rig), engine,
        PipelineSettings(interval_s=0.0, timepoints=backend.timepoints, in_frames=source.cfg.in_frames),
        recorder, record_item,
    )  # fmt: skip
    if on_timepoint is not None:
        pipeline.display.subscribe(lambda: on_timepoint(pipeline.stats.separated + 1, backend.timepoints))
    pipeline.start()
    pipeline.wait()
    pipeline.stop()
    if recorder.error:
        raise InputDataError(recorder.error)
    if pipeline.stats.separated != backend.timepoints:
        events = "; ".join(list(pipeline.events)[-3:])
        raise InputDataError(
            f"only {pipeline.stats.separated} of {backend.timepoints} timepoints were processed ({events})"
        )
    return pipeline.summary()


def load_sr_stack(path: Path) -> tuple[np.ndarray, float | None, float | None]:
    """SR time-lapse as float32 (T, Y, X) plus its pixel size (um) and time step (s) when the file says."""
    data, meta = read_tiff(path)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputDataError(f"{path}: an SR stack must be (T, Y, X) or (Y, X); got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputDataError(f"{path} contains NaN or infinite values; reconstruct it again")
    return data.astype(np.float32, copy=False), meta.pixel_size_um, meta.time_increment_s


def separate_file(
    sr_path: Path,
    source: ModelSource,
    output: Path,
    engine_kind: str = "auto",
    precision: str = "fp32",
    on_timepoint: OnTimepoint | None = None,
) -> Path:
    """Separate every frame of an SR time-lapse into ``output`` (OME-Zarr or OME-TIFF)."""
    _check_output(output, [sr_path])
    sr, pixel_um, dt = load_sr_stack(sr_path)
    n_t, ny, nx = sr.shape
    structures = source.card.get("structures") or [{"name": f"channel {i}", "color": "#FFFFFF"}
                                                    for i in range(source.cfg.out_channels)]  # fmt: skip
    engine = select_engine(engine_kind, source, precision, (ny, nx))
    spec = ImageSpec(
        frame_shape=(source.cfg.out_channels, ny, nx), dtype="float32",
        pixel_size_um=pixel_um or 1.0, time_increment_s=dt or 1.0,
        channel_names=tuple(s["name"] for s in structures), channel_colors=tuple(s["color"] for s in structures),
        name="separated",
        attributes=provenance_of_model(ModelIdentity(source.name, source.weights_sha256, engine.name,
                                                     engine.precision)) | {"input": str(sr_path)},
    )  # fmt: skip
    writer = open_stream(output, spec, n_t)
    done = 0
    try:
        for separated in separate_frames(sr, engine, source.cfg.in_frames):
            writer.append(separated.channels)
            done += 1
            if on_timepoint is not None:
                on_timepoint(done, n_t)
    finally:
        writer.update_attributes({"timepoints": done})
        writer.close()
    return output


def separate_frames(sr: np.ndarray, engine: Engine, in_frames: int) -> Iterator[Separated]:
    """Separate every frame of an SR time-lapse (T, Y, X) in order, through the live 3-frame buffer (edges
    replicate); one :class:`Separated` per timepoint, produced lazily so a caller can stop between frames."""
    buffer: TemporalBuffer[int] = TemporalBuffer(in_frames)
    for t in range(sr.shape[0]):
        window = buffer.push(sr[t], t)
        if window is not None:
            yield engine.separate(window.frames)
    last = buffer.flush()
    if last is not None:
        yield engine.separate(last.frames)
