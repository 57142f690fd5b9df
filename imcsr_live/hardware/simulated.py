"""The simulated microscope backend: the synthetic world (``imcsr_live.synth``) without Micro-Manager.

Deterministic for a seed; optionally paced in real time (each burst takes A*P exposures of wall time).
Excitation presets: ``"all"`` (every structure in one colour, the IMC-SR case) or one structure name (a
per-structure stack, as a lab would record for training ground truth). The specimen moves on by the acquisition
interval just before each ``"all"`` stack after the first, so per-structure stacks taken right after one (live
validation) image the state it saw.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import AcquisitionAbortedError, DeviceMissingError, HardwareError
from imcsr_live.hardware.base import BackendBase, FrameMeta, RawStack
from imcsr_live.synth.world import SyntheticMicroscope, SynthTimepoint, WorldSettings

ALL = "all"


class SimulatedBackend(BackendBase):
    """Pure numpy microscope; ``last_timepoint`` keeps the ground truth of the newest stack."""

    kind = "simulated"

    def __init__(self, rig: RigConfig, settings: WorldSettings | None = None, *, realtime: bool = False) -> None:
        self.rig = rig
        self.settings = settings or WorldSettings()
        self.realtime = realtime
        self.world: SyntheticMicroscope | None = None
        self.last_timepoint: SynthTimepoint | None = None
        self.preset = ALL
        self._abort = threading.Event()
        self._index = 0
        self._live_stacks = 0  # "all" stacks taken: the specimen moves on before each one after the first

    def open(self) -> None:
        if self.world is None:
            self.world = SyntheticMicroscope(self.rig, self.settings)
            self._live_stacks = 0

    def close(self) -> None:
        self.world = None

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": self.kind,
            "open": self.world is not None,
            "frame_shape": s.raw_shape,
            "photons": s.photons,
            "seed": s.seed,
            "realtime": self.realtime,
            "preset": self.preset,
        }

    def abort(self) -> None:
        self._abort.set()

    def channel_presets(self) -> list[str]:
        return [ALL, *self.rig.structure_names]

    def set_channel_preset(self, preset: str) -> None:
        if preset not in self.channel_presets():
            raise DeviceMissingError(
                f"the simulated microscope has no preset {preset!r}; choose from {', '.join(self.channel_presets())}"
            )
        self.preset = preset

    def acquire_sim_stack(self, timeout_s: float | None = None) -> RawStack:
        """Image the specimen now (then let it move on by the acquisition interval)."""
        if self.world is None:
            raise HardwareError("the simulated microscope is not open; call open() or use it in a with-block")
        self._abort.clear()
        t0 = time.monotonic()
        if self.preset == ALL:
            if self._live_stacks:
                self.world.specimen.advance(self.rig.acquisition.interval_s)
            point = self.world.next_timepoint(dt_s=0.0)
            self._live_stacks += 1
            raw = point.raw
        else:
            raw, point = self._single_structure(self.rig.structure_names.index(self.preset))
        self.last_timepoint = point
        exposure_s = self.rig.acquisition.exposure_ms / 1e3
        n = raw.shape[0]
        if self.realtime:
            end = t0 + n * exposure_s
            while (left := end - time.monotonic()) > 0:
                if self._abort.wait(min(left, 0.05)):
                    break
        if self._abort.is_set():
            raise AcquisitionAbortedError("acquisition aborted on request; start it again when ready")
        meta = [
            FrameMeta(
                pattern_index=i,
                image_number=self._index * n + i,
                camera_time_ms=i * exposure_s * 1e3,
                received_s=time.monotonic(),
            )
            for i in range(n)
        ]
        stack = RawStack(
            frames=raw, meta=meta, index=self._index, t_start_s=t0, t_end_s=time.monotonic(),
            info={"mode": "simulated", "preset": self.preset, "exposure_ms": self.rig.acquisition.exposure_ms},
        )  # fmt: skip
        self._index += 1
        return stack

    def _single_structure(self, channel: int) -> tuple[np.ndarray, SynthTimepoint]:
        """A stack of one structure only; the specimen does not move (the other presets see the same state)."""
        assert self.world is not None
        point = self.world.next_timepoint(dt_s=0.0, channels=[channel])
        return point.raw, point
