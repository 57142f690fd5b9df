"""Offline reconstruction of a recorded raw SIM file: ``imcsr-live reconstruct RAW.tif -c RIG.toml -o SR.tif``.

Reads (9, Y, X) or (T, 9, Y, X) uint16 stacks, reconstructs every timepoint with the same
:class:`~imcsr_live.recon.reconstructor.Reconstructor` the live pipeline uses (start-up search, then the
configured per-frame update and guards), writes the SR stack (T, 2Y, 2X) float32 frame by frame into a
pre-allocated OME-TIFF and, on request, the parameters used per timepoint as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live import __version__
from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.fileio import atomic_write
from imcsr_live.io.raw_readers import read_raw_stack
from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.recon.otf import OtfModel
from imcsr_live.recon.reconstructor import Reconstructor, SRFrame


@dataclass
class OfflineSummary:
    """What a reconstruction run did."""

    timepoints: int
    low_confidence: list[int] = field(default_factory=list)
    median_seconds: float = 0.0
    paths: list[Path] = field(default_factory=list)


def load_raw_stack(path: Path, n_frames: int) -> np.ndarray:
    """Raw SIM data as uint16 (T, n_frames, Y, X) from TIFF/OME-TIFF/OME-Zarr/MRC; (n_frames, Y, X) becomes T = 1."""
    return read_raw_stack(path, n_frames).data


def reconstruct_file(
    raw_path: Path,
    rig: RigConfig,
    output: Path,
    *,
    params_out: Path | None = None,
    otf: OtfModel | None = None,
    device: str = "cpu",
    on_timepoint: Callable[[int, int, SRFrame], None] | None = None,
) -> OfflineSummary:
    """Reconstruct every timepoint of ``raw_path`` into ``output`` (and ``params_out``)."""
    if output.suffix.lower() not in (".tif", ".tiff"):
        raise InputDataError(f"output {output} must end in .tif or .tiff (it is written as OME-TIFF)")
    if output.resolve() == raw_path.resolve():
        raise InputDataError("the output would overwrite the raw input; choose another -o path")
    raw = load_raw_stack(raw_path, rig.sim.frames_per_timepoint)
    n_t, _, ny, nx = raw.shape
    rec = Reconstructor(rig, device=device, otf=otf)
    meta = StackMetadata(
        axes="TYX",
        pixel_size_um=rig.optics.pixel_size_um / 2.0,
        time_increment_s=rig.acquisition.interval_s,
        extra={
            "generator": f"imcsr-live {__version__} reconstruct",
            "source": raw_path.name,
            "recon": rig.recon.model_dump(),
            "otf": "measured" if otf is not None else "model",
        },
    )
    out = create_timelapse(output, (n_t, 2 * ny, 2 * nx), np.float32, meta)
    records: list[dict[str, Any]] = []
    summary = OfflineSummary(timepoints=n_t, paths=[output])
    seconds = []
    try:
        for t in range(n_t):
            frame = rec.reconstruct(raw[t], index=t)
            out[t] = frame.sr
            out.flush()
            seconds.append(sum(frame.timings_s.values()))
            if frame.low_confidence:
                summary.low_confidence.append(t)
            records.append(
                {
                    "timepoint": t,
                    "low_confidence": frame.low_confidence,
                    "warnings": list(frame.warnings),
                    "timings_ms": {k: round(v * 1e3, 2) for k, v in frame.timings_s.items()},
                    "params": frame.params.to_dict(),
                }
            )
            if params_out is not None:
                _write_json(params_out, {"source": str(raw_path), "timepoints": records})
            if on_timepoint is not None:
                on_timepoint(t, n_t, frame)
    finally:
        del out
    if params_out is not None:
        summary.paths.append(params_out)
    summary.median_seconds = float(np.median(seconds)) if seconds else 0.0
    return summary


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic rewrite, so a reader never sees half a file."""
    atomic_write(path, json.dumps(data, indent=1))
