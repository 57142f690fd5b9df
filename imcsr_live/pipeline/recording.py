"""What a live recording contains: image specs, provenance, and one :class:`RecordItem` per :class:`LiveFrame`.

Provenance (docs/architecture.md#recordings): app version, model name + weights SHA-256, engine + precision, the rig
config as written, reconstruction parameters and the per-frame confidence per timepoint (``*.timepoints.jsonl``
beside the recording), and dropped frames and the confidence summary (added when the recording stops). With live
validation, each validated timepoint's line carries its per-channel PCC, the metadata the run's validation summary
(``validation``: timepoints, PCC per structure, medians, cost), and the real per-structure images form the
``validation`` stream.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live import __version__
from imcsr_live.config import RigConfig
from imcsr_live.io.zarr import ImageSpec
from imcsr_live.pipeline.live import LiveFrame
from imcsr_live.pipeline.recorder import RecordingPlan, RecordItem


@dataclass(frozen=True)
class ModelIdentity:
    """Which network produced the separation."""

    name: str
    weights_sha256: str
    engine: str
    precision: str


def provenance_of_model(model: ModelIdentity) -> dict[str, Any]:
    """App, model and engine identity: the part of the provenance every output carries."""
    return {
        "app": "imcsr-live",
        "app_version": __version__,
        "python": platform.python_version(),
        "model": {"name": model.name, "weights_sha256": model.weights_sha256},
        "engine": {"kind": model.engine, "precision": model.precision},
    }


def provenance(rig: RigConfig, model: ModelIdentity) -> dict[str, Any]:
    """The static provenance block written when a recording starts."""
    return provenance_of_model(model) | {
        "rig_config_toml": rig.source_text,
        "rig_config": rig.model_dump(mode="json"),
    }


def recording_plan(
    rig: RigConfig,
    path: Path,
    raw_shape: tuple[int, int],
    model: ModelIdentity,
    expected_timepoints: int,
    interval_s: float | None = None,
    validation: bool = False,
) -> RecordingPlan:
    """Streams to record for a rig with ``raw_shape`` camera frames: separated always, raw/SR per ``[recording]``,
    and the real per-structure images of validated timepoints if ``validation``."""
    dt = rig.acquisition.interval_s if interval_s is None else interval_s
    ny, nx = raw_shape
    sr_px = rig.optics.pixel_size_um / 2
    meta = provenance(rig, model)
    separated = ImageSpec(
        frame_shape=(len(rig.structures), 2 * ny, 2 * nx),
        dtype="float32",
        pixel_size_um=sr_px,
        time_increment_s=dt,
        channel_names=tuple(rig.structure_names),
        channel_colors=tuple(s.color for s in rig.structures),
        name="separated",
        attributes=meta,
    )
    raw = None
    if rig.recording.save_raw:
        raw = ImageSpec(
            frame_shape=(rig.sim.frames_per_timepoint, ny, nx),
            dtype="uint16",
            pixel_size_um=rig.optics.pixel_size_um,
            time_increment_s=dt,
            channel_names=tuple(f"a{a}p{p}" for a in range(rig.sim.angles) for p in range(rig.sim.phases)),
            name="raw",
            attributes={"order": "angle-major"},
        )
    sr = None
    if rig.recording.save_sr:
        sr = ImageSpec((2 * ny, 2 * nx), "float32", sr_px, dt, name="sr")
    real = None
    if validation:
        real = ImageSpec(
            separated.frame_shape, "float32", sr_px, dt, channel_names=separated.channel_names,
            channel_colors=separated.channel_colors, name="validation",
            attributes={"content": "real per-structure SR images of the validated timepoints (see timepoints.jsonl)"},
        )  # fmt: skip
    return RecordingPlan(
        path, rig.recording.format, separated, raw, sr, validation=real, expected_timepoints=expected_timepoints
    )


def record_item(frame: LiveFrame) -> RecordItem:
    """The recorded form of one separated timepoint (channels in SR intensity units stay in [0, 1])."""
    params = getattr(frame.recon, "params", None)
    info: dict[str, Any] = {
        "slot": frame.index,
        "acquired_monotonic_s": frame.raw.t_start_s,
        "resyncs": frame.raw.resyncs,
        "latency_ms": {k: round(v, 2) for k, v in frame.latencies_ms.items()},
        "input_scale": float(getattr(frame.separated, "input_scale", 1.0)),
    }
    if params is not None:
        info["recon_params"] = params.to_dict()
    warnings = getattr(frame.recon, "warnings", ())
    if warnings:
        info["warnings"] = list(warnings)
    if frame.confidence is not None:
        info["confidence"] = frame.confidence.to_dict()
    if frame.validation is not None:
        info["validation"] = frame.validation.to_dict()
    return RecordItem(
        index=frame.index,
        separated=np.asarray(frame.separated.channels, dtype=np.float32),
        raw=frame.raw.frames,
        sr=np.asarray(frame.recon.sr, dtype=np.float32),
        validation=frame.validation.real if frame.validation is not None else None,
        provenance=info,
        acquired_s=frame.raw.t_start_s,
    )
