"""Recorded raw SIM data played back through the backend protocol, so offline processing runs the live pipeline.

Frames come from a ``(T, A*P, Y, X)`` uint16 array (e.g. a file read with ``io.tiff.read_tiff``); the pattern
order is taken as recorded (angle-major). After the last timepoint ``acquire_sim_stack`` raises
:class:`ReplayFinished`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from imcsr_live.errors import HardwareError, InputDataError
from imcsr_live.hardware.base import BackendBase, FrameMeta, RawStack


class ReplayFinished(HardwareError):
    """Every recorded timepoint has been handed out."""


class ReplayBackend(BackendBase):
    """Hands out the timepoints of a recorded raw time-lapse, one per call."""

    kind = "replay"

    def __init__(self, raw: np.ndarray, frames_per_timepoint: int) -> None:
        if raw.ndim == 3:
            raw = raw[None]
        if raw.ndim != 4 or raw.shape[1] != frames_per_timepoint:
            raise InputDataError(
                f"raw SIM data must be ({frames_per_timepoint}, Y, X) or (T, {frames_per_timepoint}, Y, X); "
                f"got {raw.shape}. Check [sim] angles/phases in the rig config"
            )
        if raw.dtype != np.uint16:
            raise InputDataError(f"raw SIM data must be uint16 camera counts, got {raw.dtype}")
        self.raw = raw
        self.next_index = 0
        self.is_open = False

    @property
    def timepoints(self) -> int:
        return int(self.raw.shape[0])

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def abort(self) -> None:
        """Nothing is in flight between calls."""

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "frame_shape": tuple(self.raw.shape[2:]), "timepoints": self.timepoints}

    def acquire_sim_stack(self, timeout_s: float | None = None) -> RawStack:
        if self.next_index >= self.timepoints:
            raise ReplayFinished(f"all {self.timepoints} recorded timepoints have been played back")
        t = self.next_index
        now = time.monotonic()
        frames = np.ascontiguousarray(self.raw[t])
        n = len(frames)
        meta = [FrameMeta(pattern_index=i, image_number=t * n + i, received_s=now) for i in range(n)]
        self.next_index += 1
        return RawStack(frames=frames, meta=meta, index=t, t_start_s=now, t_end_s=now, info={"mode": "replay"})
