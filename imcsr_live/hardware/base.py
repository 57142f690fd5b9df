"""What every microscope backend hands out, and the protocol the pipeline drives them through.

A backend's one job per timepoint is :meth:`MicroscopeBackend.acquire_sim_stack`: 9 raw frames (angles x phases)
in angle-major order, each with the metadata needed to prove that order (pattern index, camera frame number,
timestamps). The pipeline never gets a stack whose order was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame metadata of one raw SIM frame.

    ``pattern_index`` is the index (angle-major, ``a * P + p``) of the pattern the frame was exposed under, as
    reported by the hardware (None when the rig cannot say). ``image_number`` is the camera/core frame counter
    and ``camera_time_ms`` the camera/core timestamp, when available; ``received_s`` is our own
    ``time.monotonic()`` when the frame reached the backend.
    """

    pattern_index: int | None
    image_number: int | None = None
    camera_time_ms: float | None = None
    received_s: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RawStack:
    """One SIM acquisition: uint16 ``(A*P, H, W)`` angle-major frames plus how they were taken."""

    frames: np.ndarray
    meta: list[FrameMeta]
    index: int  # timepoint index (counts stacks handed out by this backend)
    t_start_s: float  # time.monotonic() when the burst started
    t_end_s: float  # time.monotonic() when the last frame arrived
    resyncs: int = 0  # how many times the burst was re-synchronised after a frame slip
    reordered: bool = False  # frames arrived in another order and were sorted by pattern index
    info: dict[str, Any] = field(default_factory=dict)  # mode, preset, exposure, ...

    def __post_init__(self) -> None:
        if self.frames.ndim != 3 or self.frames.dtype != np.uint16:
            raise ValueError(f"RawStack needs uint16 (N, H, W) frames, got {self.frames.dtype} {self.frames.shape}")
        if len(self.meta) != self.frames.shape[0]:
            raise ValueError(f"{len(self.meta)} metadata entries for {self.frames.shape[0]} frames")

    @property
    def pattern_indices(self) -> list[int | None]:
        return [m.pattern_index for m in self.meta]

    @property
    def duration_s(self) -> float:
        return self.t_end_s - self.t_start_s


@runtime_checkable
class MicroscopeBackend(Protocol):
    """A microscope the app can drive: real Micro-Manager, Micro-Manager with simulated devices, or pure numpy.

    Use as a context manager (``with backend: stack = backend.acquire_sim_stack(5.0)``); errors are
    :class:`imcsr_live.errors.HardwareError` subclasses whose message says what to do.
    """

    def open(self) -> None: ...

    def close(self) -> None: ...

    def info(self) -> dict[str, Any]: ...

    def acquire_sim_stack(self, timeout_s: float | None = None) -> RawStack: ...

    def abort(self) -> None: ...

    def __enter__(self) -> MicroscopeBackend: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class SupportsPresets(Protocol):
    """A backend that can switch excitation presets (one per real colour) between stacks."""

    def channel_presets(self) -> list[str]: ...

    def set_channel_preset(self, preset: str) -> None: ...


@runtime_checkable
class SupportsStage(Protocol):
    """A backend that can move the sample to an XY position (micrometres) between stacks."""

    def move_to(self, x_um: float, y_um: float) -> None: ...


class BackendBase:
    """Context-manager plumbing shared by the concrete backends."""

    def open(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
