"""SIM illumination geometry shared by the simulator, the SLM/DMD pattern images of real rigs and the tests.

The rig's ``[sim]`` table becomes a :class:`PatternParams`: ``A`` angles x ``P`` equally spaced phase steps of a
sinusoid ``I(x) = 1 + m cos(2 pi k_a . x + phi_ap)``, with the conventions of ``synth/forward.py`` (phase at the
centre of camera pixel (0, 0), wave vectors as ``(ky, kx)`` in cycles/um, angle-major order). Production code
(``hardware/patterns.py``) and the simulator both import it from here, so neither depends on the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import SynthError

GOLDEN_ANGLE_DEG = 180.0 * (3.0 - math.sqrt(5.0))  # ~137.508 deg


def default_phase_offsets_deg(n_angles: int) -> tuple[float, ...]:
    """Seed-independent, irregular starting phases: ``phi0_a = ((a + 1) * 137.508 deg) mod 360``."""
    return tuple(((a + 1) * GOLDEN_ANGLE_DEG) % 360.0 for a in range(n_angles))


@dataclass(frozen=True)
class PatternParams:
    """Sinusoidal illumination: ``A = len(angles_deg)`` orientations x ``phases`` equally spaced steps."""

    angles_deg: tuple[float, ...]
    period_um: float
    modulation: float
    phases: int = 3
    phase_offsets_deg: tuple[float, ...] | None = None  # phi0 per angle; None -> default_phase_offsets_deg
    phase_jitter_deg: float = 0.0  # rms of a random per-frame phase error (drawn at simulate time)

    def __post_init__(self) -> None:
        object.__setattr__(self, "angles_deg", tuple(float(a) for a in self.angles_deg))
        if self.phase_offsets_deg is not None:
            object.__setattr__(self, "phase_offsets_deg", tuple(float(a) for a in self.phase_offsets_deg))
        if not self.angles_deg:
            raise SynthError("the SIM pattern needs at least one angle (sim.angles_deg is empty)")
        if self.phases < 1:
            raise SynthError(f"the SIM pattern needs at least one phase step (got {self.phases})")
        if self.period_um <= 0:
            raise SynthError(f"the pattern period must be > 0 um (got {self.period_um})")
        if not 0 <= self.modulation <= 1:
            raise SynthError(f"the pattern modulation must be in [0, 1] (got {self.modulation})")
        if self.phase_jitter_deg < 0:
            raise SynthError(f"phase jitter must be >= 0 deg (got {self.phase_jitter_deg})")
        if self.phase_offsets_deg is not None and len(self.phase_offsets_deg) != len(self.angles_deg):
            raise SynthError(
                f"phase_offsets_deg has {len(self.phase_offsets_deg)} values for {len(self.angles_deg)} angles"
            )

    @property
    def n_angles(self) -> int:
        return len(self.angles_deg)

    def k0_cycles_per_um(self) -> np.ndarray:
        """Pattern wave vectors, float64 ``(A, 2)`` as ``(ky, kx)`` in cycles/um."""
        theta = np.deg2rad(np.asarray(self.angles_deg, dtype=np.float64))
        return np.stack([np.sin(theta), np.cos(theta)], axis=1) / self.period_um

    def start_phases_rad(self) -> np.ndarray:
        """``phi0_a`` (A,) in radians."""
        offsets = self.phase_offsets_deg
        if offsets is None:
            offsets = default_phase_offsets_deg(self.n_angles)
        return np.deg2rad(np.asarray(offsets, dtype=np.float64))

    def nominal_phases_rad(self) -> np.ndarray:
        """Jitter-free phases ``phi0_a + 2 pi p / P`` (A, P), wrapped to [0, 2 pi)."""
        steps = 2.0 * np.pi * np.arange(self.phases) / self.phases
        return np.mod(self.start_phases_rad()[:, None] + steps[None, :], 2.0 * np.pi)


def pattern_params(rig: RigConfig, phase_jitter_deg: float = 0.0) -> PatternParams:
    """Forward-model illumination pattern from the rig config."""
    return PatternParams(
        angles_deg=tuple(rig.sim.angles_deg),
        period_um=rig.sim.period_um,
        modulation=rig.sim.modulation,
        phases=rig.sim.phases,
        phase_jitter_deg=phase_jitter_deg,
    )
