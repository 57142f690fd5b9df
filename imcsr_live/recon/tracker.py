"""Guards and temporal smoothing for per-frame parameter estimates.

A bad estimate must never reach the reconstruction silently: it would print stripes or ghost copies into the
SR frame. Each angle's new estimate is checked; failing values are replaced by the last good ones (or the
rig config's nominal ones before any success) and the result is flagged low-confidence with the reason.
Accepted k0 and modulation are smoothed over time (exponential moving average); phases are not (they move
from frame to frame for real).

One check is a warning only: a weak side band (side-band SNR below ``min_side_band_snr``) means the
super-resolved detail of that angle is noise-dominated. The parameters can still be right (k0 and the phases
are found well below that light level), so they are used as estimated, but the timepoint is flagged
low-confidence with the reason: too few photons for a trustworthy SR frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.recon.params import SimParameters


@dataclass(frozen=True)
class GuardSettings:
    """Thresholds of the parameter guards (docs/method.md#parameter-guards)."""

    min_peak_to_noise: float = 3.0
    max_phase_step_error_deg: float = 10.0
    max_k0_jump_px: float = 0.5
    max_phase_sigma_deg: float = 3.0  # predicted rms phase error above which phases are not trusted
    min_side_band_snr: float = 1.0  # flag (values kept) when the SR part of a side band is below the noise
    modulation_range: tuple[float, float] = (0.5, 1.0)
    smoothing: float = 0.5  # weight of the new value in the moving average of k0 and m


class ParameterTracker:
    """Applies the guards to successive estimates and remembers the last good parameters."""

    def __init__(
        self,
        nominal: SimParameters,
        raw_shape: tuple[int, int],
        pixel_size_um: float,
        settings: GuardSettings | None = None,
    ) -> None:
        self.nominal = nominal
        self.settings = settings or GuardSettings()
        self._scale = np.asarray(raw_shape, dtype=np.float64) * pixel_size_um  # cycles/um -> FFT pixels
        self._centre_um = 0.5 * self._scale  # (y, x) of the field centre
        self.last_good: SimParameters | None = None

    def reset(self) -> None:
        self.last_good = None

    def accept(self, est: SimParameters) -> SimParameters:
        """Guarded (and smoothed) parameters for this timepoint."""
        g = self.settings
        ref = self.last_good if self.last_good is not None else self.nominal
        n_a, n_p = est.phases_rad.shape
        k0 = np.array(est.k0_cycles_per_um, dtype=np.float64)
        phases = np.array(est.phases_rad, dtype=np.float64)
        m = np.array(est.modulation, dtype=np.float64)
        notes = list(est.notes)
        good_angles = 0
        nominal_step = 2.0 * np.pi / n_p
        for a in range(n_a):
            pnr = float(est.peak_to_noise[a]) if est.peak_to_noise.size else np.inf
            sigma = float(np.degrees(est.phase_sigma_rad[a])) if est.phase_sigma_rad.size else 0.0
            steps = np.diff(np.unwrap(phases[a]))
            step_err = float(np.degrees(np.max(np.abs((steps - nominal_step + np.pi) % (2 * np.pi) - np.pi))))
            jump = float(np.max(np.abs((k0[a] - ref.k0_cycles_per_um[a]) * self._scale)))
            reason = None
            if not np.isfinite(pnr) or pnr < g.min_peak_to_noise:
                reason = f"angle {a}: no clear pattern peak (peak/noise {pnr:.1f} < {g.min_peak_to_noise:g})"
            elif self.last_good is not None and jump > g.max_k0_jump_px:
                reason = f"angle {a}: k0 jumped by {jump:.2f} px (> {g.max_k0_jump_px:g})"
            elif step_err > g.max_phase_step_error_deg:
                reason = f"angle {a}: phase steps off nominal by {step_err:.1f} deg (> {g.max_phase_step_error_deg:g})"
            elif not np.isfinite(sigma) or sigma > g.max_phase_sigma_deg:
                reason = f"angle {a}: phases too noisy (predicted error {sigma:.1f} deg > {g.max_phase_sigma_deg:g})"
            if reason is not None:
                notes.append(reason + "; keeping the last good values")
                k0[a] = ref.k0_cycles_per_um[a]
                phases[a] = ref.phases_rad[a]
                m[a] = ref.modulation[a]
                continue
            good_angles += 1
            snr = float(est.side_band_snr[a]) if est.side_band_snr.size else np.nan
            if np.isfinite(snr) and snr < g.min_side_band_snr:
                notes.append(
                    f"angle {a}: weak side band (SNR {snr:.2f} < {g.min_side_band_snr:g}): too few photons, the "
                    "super-resolved detail is noise-dominated; parameters used as estimated"
                )
            lo, hi = g.modulation_range
            m_new = float(np.clip(m[a], lo, hi)) if np.isfinite(m[a]) else float(ref.modulation[a])
            if self.last_good is not None:
                w = g.smoothing
                k_new = w * k0[a] + (1.0 - w) * self.last_good.k0_cycles_per_um[a]
                # Phases are referenced to camera pixel (0, 0); the data pin the pattern down best at the
                # field centre. Keep the phase there unchanged when k0 is smoothed.
                phases[a] = np.mod(phases[a] + 2.0 * np.pi * float((k0[a] - k_new) @ self._centre_um), 2.0 * np.pi)
                k0[a] = k_new
                m_new = w * m_new + (1.0 - w) * float(self.last_good.modulation[a])
            m[a] = m_new
        if self.last_good is None and good_angles < n_a:
            notes.append("no earlier good parameters: failed angles use the rig config's nominal pattern")
        out = SimParameters(
            k0_cycles_per_um=k0,
            phases_rad=phases,
            modulation=m,
            peak_to_noise=np.asarray(est.peak_to_noise, dtype=np.float64),
            phase_sigma_rad=np.asarray(est.phase_sigma_rad, dtype=np.float64),
            side_band_snr=np.asarray(est.side_band_snr, dtype=np.float64),
            confident=not notes,
            notes=tuple(notes),
        )
        if good_angles == n_a:
            self.last_good = out
        return out
