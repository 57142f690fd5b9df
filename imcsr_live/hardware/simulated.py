"""The simulated microscope backend: the synthetic world (``imcsr_live.synth``) without Micro-Manager.

Deterministic for a seed; optionally paced in real time (each burst takes A*P exposures of wall time).
Excitation presets: ``"all"`` (every structure in one colour, the IMC-SR case) or one structure name (a
per-structure stack, as a lab would record for training ground truth). The specimen moves on by the acquisition
interval just before each ``"all"`` stack after the first, so per-structure stacks taken right after one (live
validation) image the state it saw; it also moves on before a per-structure stack whose preset was already used
since it last moved (training data: one stack per preset per timepoint, the next round is the next timepoint).

Stage positions (:meth:`SimulatedBackend.move_to`): there is no real stage, so each XY position is honestly a
*different specimen* (its own seed, derived from the backend's seed and the position; the start position keeps
the seed itself), with its own clock: coming back to a position finds that cell where it was left.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import AcquisitionAbortedError, DeviceMissingError, HardwareError
from imcsr_live.hardware.base import BackendBase, FrameMeta, RawStack
from imcsr_live.synth.world import SyntheticMicroscope, SynthTimepoint, WorldSettings

ALL = "all"


def position_seed(seed: int, x_um: float, y_um: float) -> int:
    """The specimen seed at a stage position: ``seed`` at (0, 0), else a hash of the seed and the position."""
    if round(x_um, 3) == 0 and round(y_um, 3) == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{x_um:.3f}:{y_um:.3f}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class _FieldOfView:
    """One stage position: its specimen and how far it has been imaged since it last moved."""

    world: SyntheticMicroscope
    live_stacks: int = 0  # "all" stacks taken: the specimen moves on before each one after the first
    imaged: set[str] = field(default_factory=set)  # per-structure presets used since the specimen last moved


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
        self.position_um = (0.0, 0.0)
        self._abort = threading.Event()
        self._index = 0
        self._fields: dict[tuple[float, float], _FieldOfView] = {}

    def open(self) -> None:
        if self.world is None:
            self._fields = {}
            self.move_to(*self.position_um)

    def close(self) -> None:
        self.world = None
        self._fields = {}

    @property
    def _field(self) -> _FieldOfView:
        return self._fields[self.position_um]

    def move_to(self, x_um: float, y_um: float) -> None:
        """Go to a stage position: another specimen (see the module doc), created on the first visit."""
        key = (round(float(x_um), 3), round(float(y_um), 3))
        if key not in self._fields:
            settings = replace(self.settings, seed=position_seed(self.settings.seed, *key))
            self._fields[key] = _FieldOfView(SyntheticMicroscope(self.rig, settings))
        self.position_um = key
        self.world = self._fields[key].world

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
            "position_um": self.position_um,
            "stage": "simulated: each position is another specimen (seed from the position)",
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
        here = self._field
        if self.preset == ALL:
            if here.live_stacks:
                self._move_specimen_on(here)
            point = self.world.next_timepoint(dt_s=0.0)
            here.live_stacks += 1
            raw = point.raw
        else:
            if self.preset in here.imaged:
                self._move_specimen_on(here)
            here.imaged.add(self.preset)
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

    def _move_specimen_on(self, here: _FieldOfView) -> None:
        here.world.specimen.advance(self.rig.acquisition.interval_s)
        here.imaged.clear()

    def _single_structure(self, channel: int) -> tuple[np.ndarray, SynthTimepoint]:
        """A stack of one structure only; the specimen does not move (the other presets see the same state)."""
        assert self.world is not None
        point = self.world.next_timepoint(dt_s=0.0, channels=[channel])
        return point.raw, point
