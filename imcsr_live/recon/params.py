"""Pattern parameters of one SIM acquisition, as estimated from the data (or given)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SimParameters:
    """Illumination pattern of one timepoint (same conventions as ``synth/forward.py``).

    Attributes
    ----------
    k0_cycles_per_um
        ``(A, 2)`` wave vectors as ``(ky, kx)``; the pattern is ``1 + m cos(2 pi k0 . x + phi)``.
    phases_rad
        ``(A, P)`` pattern phases at the centre of camera pixel (0, 0).
    modulation
        ``(A,)`` modulation depth per angle.
    peak_to_noise
        ``(A,)`` height of the band cross-correlation peak over its background (NaN when not measured).
    phase_sigma_rad
        ``(A,)`` predicted rms phase error from the noise in the data (NaN when not measured).
    side_band_snr
        ``(A,)`` mean signal/noise power of band +1 where it carries super-resolution frequencies (NaN when
        not measured); below ~1 the SR detail of that angle is noise-dominated.
    gains
        ``(A, P)`` relative intensity of each frame within its angle (mean 1 per angle): lamp / laser
        fluctuations between the phase frames, estimated from the band overlap (``estimate.py``) and divided
        out where the bands are separated. Empty (the default, and in old JSON files) means 1 for every frame.
    confident
        False when a guard fired: the values are (partly) the last good ones or the nominal ones.
    notes
        Human-readable reasons for low confidence (empty when confident).
    """

    k0_cycles_per_um: np.ndarray
    phases_rad: np.ndarray
    modulation: np.ndarray
    peak_to_noise: np.ndarray = field(default_factory=lambda: np.full(0, np.nan))
    phase_sigma_rad: np.ndarray = field(default_factory=lambda: np.full(0, np.nan))
    side_band_snr: np.ndarray = field(default_factory=lambda: np.full(0, np.nan))
    gains: np.ndarray = field(default_factory=lambda: np.ones((0, 0)))
    confident: bool = True
    notes: tuple[str, ...] = ()

    @property
    def n_angles(self) -> int:
        return int(self.phases_rad.shape[0])

    @property
    def n_phases(self) -> int:
        return int(self.phases_rad.shape[1])

    def frame_gains(self) -> np.ndarray:
        """``(A, P)`` per-frame intensity gains; ones where none were estimated (or any is not finite)."""
        g = np.asarray(self.gains, dtype=np.float64)
        shape = self.phases_rad.shape
        if g.shape != shape or not np.all(np.isfinite(g)) or np.any(g <= 0):
            return np.ones(shape)
        return g

    def k0_pixels(self, raw_shape: tuple[int, int], pixel_size_um: float) -> np.ndarray:
        """Wave vectors in camera-FFT pixels ``(A, 2)`` as ``(ky, kx)``."""
        scale = np.asarray(raw_shape, dtype=np.float64) * pixel_size_um
        return np.asarray(self.k0_cycles_per_um, dtype=np.float64) * scale

    def with_flag(self, note: str) -> SimParameters:
        """A copy marked low-confidence with one more note."""
        return replace(self, confident=False, notes=(*self.notes, note))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (degrees for angles and phases, cycles/um for k0)."""
        k0 = np.asarray(self.k0_cycles_per_um, dtype=np.float64)
        return {
            "k0_cycles_per_um": k0.round(6).tolist(),
            "period_um": (1.0 / np.hypot(k0[:, 0], k0[:, 1])).round(6).tolist(),
            "angle_deg": np.degrees(np.arctan2(k0[:, 0], k0[:, 1])).round(4).tolist(),
            "phases_deg": np.degrees(np.asarray(self.phases_rad)).round(3).tolist(),
            "modulation": np.asarray(self.modulation, dtype=np.float64).round(4).tolist(),
            "peak_to_noise": [None if not np.isfinite(v) else round(float(v), 2) for v in self.peak_to_noise],
            "phase_sigma_deg": [
                None if not np.isfinite(v) else round(float(np.degrees(v)), 3) for v in self.phase_sigma_rad
            ],
            "side_band_snr": [None if not np.isfinite(v) else round(float(v), 3) for v in self.side_band_snr],
            "frame_gains": self.frame_gains().round(6).tolist(),
            "confident": bool(self.confident),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimParameters:
        """Inverse of :meth:`to_dict`."""
        k0 = np.asarray(data["k0_cycles_per_um"], dtype=np.float64)
        ptn = np.asarray([np.nan if v is None else v for v in data.get("peak_to_noise", [])], dtype=np.float64)
        sig = [np.nan if v is None else np.radians(v) for v in data.get("phase_sigma_deg", [])]
        snr = [np.nan if v is None else float(v) for v in data.get("side_band_snr", [])]
        gains = np.asarray(data.get("frame_gains", []), dtype=np.float64)  # absent in older files: ones
        return cls(
            k0_cycles_per_um=k0,
            phases_rad=np.radians(np.asarray(data["phases_deg"], dtype=np.float64)),
            modulation=np.asarray(data["modulation"], dtype=np.float64),
            peak_to_noise=ptn if ptn.size else np.full(k0.shape[0], np.nan),
            phase_sigma_rad=np.asarray(sig, dtype=np.float64) if sig else np.full(k0.shape[0], np.nan),
            side_band_snr=np.asarray(snr, dtype=np.float64) if snr else np.full(k0.shape[0], np.nan),
            gains=gains.reshape(k0.shape[0], -1) if gains.size else np.ones((0, 0)),
            confident=bool(data.get("confident", True)),
            notes=tuple(data.get("notes", ())),
        )


def nominal_parameters(
    angles_deg: list[float] | tuple[float, ...], period_um: float, n_phases: int, modulation: float
) -> SimParameters:
    """Parameters as the rig config describes them (phase offset 0, equal steps): the fall-back before any fit."""
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64))
    k0 = np.stack([np.sin(theta), np.cos(theta)], axis=1) / period_um
    steps = 2.0 * np.pi * np.arange(n_phases) / n_phases
    return SimParameters(
        k0_cycles_per_um=k0,
        phases_rad=np.tile(steps, (theta.size, 1)),
        modulation=np.full(theta.size, float(modulation)),
        peak_to_noise=np.full(theta.size, np.nan),
        phase_sigma_rad=np.full(theta.size, np.nan),
        side_band_snr=np.full(theta.size, np.nan),
        confident=False,
        notes=("nominal parameters from the rig config (not estimated)",),
    )
