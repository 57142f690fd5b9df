"""Fast approximation of a live Wiener-SIM reconstruction of a known SR image (training inputs without raw frames).

Why: the live pipeline separates *reconstructed* SR frames (noise shaped by the Wiener filter, slightly damped
high frequencies), not clean ground truth. Simulating 9 raw frames and reconstructing them for every training
patch is slow, so this module produces the same first- and second-order statistics directly on the SR grid:

* signal: ``S(k) * R(k)`` with ``R = sum_b |H_b|^2 / (sum_b |H_b|^2 + w^2)`` (the Wiener filter's damping;
  the ground truth already carries the apodisation ``A(k)``, see ``SimForwardModel.sr_transfer``);
* noise: raw frames carry Poisson + read noise of variance ``sigma^2(x) = W(x) + r^2`` photoelectrons per camera
  pixel per frame (``W`` = widefield image, a raw frame's mean). Band separation of 3 phases gives band-0 noise
  ``sigma^2 / 3`` and side-band noise ``4 sigma^2 / (3 m^2)``; the Wiener filter maps band ``b`` to the output
  with ``F_b = A H_b / (sum |H|^2 + w^2)``. The noise is drawn as white Gaussian noise with the local standard
  deviation ``sigma(x)`` (heteroscedastic, like Poisson noise), then shaped by ``sqrt(sum_b c_b |F_b|^2)``.
  A camera pixel is 2 x 2 SR pixels, so white noise of variance ``4 sigma^2`` per SR pixel, limited to the
  camera band, has ``sigma^2`` per camera pixel.
* the output is clipped at 0, as the reconstruction's is.

``H_b`` = OTF x camera-pixel sinc centred on ``b k0`` (3 angles, b = -1, 0, +1). ``noise_gain`` (default 1)
scales the noise: the hook for matching real reconstructions (``imcsr_live.recon``) once measured, see
:func:`compare_with_reconstruction` in ``tools/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from imcsr_live.config import RigConfig
from imcsr_live.synth.optics import DEFAULT_OTF_DAMPING, frequency_grid, otf_at, otf_cutoff_cycles_per_um
from imcsr_live.synth.world import PHOTON_PERCENTILE


@dataclass(frozen=True)
class SimDegradeParams:
    """What the approximation needs to know about the rig (from the rig TOML: optics, sim, recon)."""

    na: float = 1.49
    emission_wavelength_nm: float = 525.0
    camera_pixel_um: float = 0.0626
    angles_deg: tuple[float, ...] = (12.0, 72.0, 132.0)
    period_um: float = 0.19575
    modulation: float = 0.8
    wiener: float = 0.05
    apodization_bend: float = 0.8
    read_noise_e: float = 1.0
    otf_damping: float = DEFAULT_OTF_DAMPING
    noise_gain: float = 1.0

    @classmethod
    def from_rig(cls, rig: RigConfig, **overrides: float) -> SimDegradeParams:
        values = {
            "na": rig.optics.na,
            "emission_wavelength_nm": rig.optics.emission_wavelength_nm,
            "camera_pixel_um": rig.optics.pixel_size_um,
            "angles_deg": tuple(rig.sim.angles_deg),
            "period_um": rig.sim.period_um,
            "modulation": rig.sim.modulation,
            "wiener": rig.recon.wiener,
            "apodization_bend": rig.recon.apodization_bend,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


class SimReconApproximation:
    """Turn clean SR images (photoelectron units) into reconstruction-like noisy SR images. Filters cached per shape."""

    def __init__(self, params: SimDegradeParams | None = None) -> None:
        self.p = params or SimDegradeParams()
        self._cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def filters(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """``signal`` (R), ``widefield`` (H_0) and ``noise`` (sqrt PSD per unit variance) on the rfft grid."""
        if shape in self._cache:
            return self._cache[shape]
        p = self.p
        px = p.camera_pixel_um / 2.0
        ky, kx = frequency_grid(shape, px, rfft=True)
        kc = otf_cutoff_cycles_per_um(p.na, p.emission_wavelength_nm)

        def h(sy: float, sx: float) -> np.ndarray:
            dy, dx = ky - sy, kx - sx
            otf = otf_at(np.hypot(dy, dx), p.na, p.emission_wavelength_nm, damping=p.otf_damping)
            return otf * np.sinc(dy * p.camera_pixel_um) * np.sinc(dx * p.camera_pixel_um)

        k0 = 1.0 / p.period_um
        bands: list[tuple[np.ndarray, float]] = []
        for a in p.angles_deg:
            t = np.deg2rad(a)
            s = (k0 * np.sin(t), k0 * np.cos(t))
            bands.append((h(0.0, 0.0), 1.0 / 3.0))
            for sign in (-1.0, 1.0):
                bands.append((h(sign * s[0], sign * s[1]), 4.0 / (3.0 * p.modulation**2)))
        total = sum(b * b for b, _ in bands)
        denom = total + p.wiener**2
        support = min(kc + k0, 1.0 / p.camera_pixel_um)
        rho = np.hypot(ky, kx) / support
        r = np.minimum(rho, 1.0)
        ideal = (2.0 / np.pi) * (np.arccos(r) - r * np.sqrt(1.0 - r * r))
        apod = np.where(rho < 1.0, np.power(ideal, p.apodization_bend), 0.0)
        psd = sum(c * (apod * b / denom) ** 2 for b, c in bands) * 4.0  # 4: camera pixel = 2 x 2 SR pixels
        out = {
            "signal": (total / denom).astype(np.float32),
            "widefield": h(0.0, 0.0).astype(np.float32),
            "noise": np.sqrt(psd).astype(np.float32),
        }
        self._cache[shape] = out
        return out

    def photon_scale(self, clean: np.ndarray, photons: float) -> float:
        """Factor that puts the widefield image's 99.9th percentile of ``clean`` (H, W) at ``photons``."""
        f = self.filters(clean.shape)
        wf = sfft.irfft2(sfft.rfft2(clean) * f["widefield"], s=clean.shape)
        level = float(np.percentile(wf, PHOTON_PERCENTILE))
        return photons / level if level > 0 else 1.0

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Reconstruction-like image of a clean SR image ``(H, W)`` in photoelectron units (float32)."""
        a = np.asarray(clean, dtype=np.float32)
        f = self.filters(a.shape)
        spec = sfft.rfft2(a)
        signal = sfft.irfft2(spec * f["signal"], s=a.shape)
        wf = np.maximum(sfft.irfft2(spec * f["widefield"], s=a.shape), 0.0)
        sigma = np.sqrt(wf + self.p.read_noise_e**2) * self.p.noise_gain
        white = rng.standard_normal(a.shape, dtype=np.float32) * sigma
        noise = sfft.irfft2(sfft.rfft2(white) * f["noise"], s=a.shape)
        return np.maximum(signal + noise, 0.0).astype(np.float32)

    def noise_std(self, shape: tuple[int, int], photons_per_pixel: float) -> float:
        """Predicted noise standard deviation per SR pixel of a uniform field (for tests and comparisons)."""
        f = self.filters(shape)
        n = shape[0] * shape[1]
        # Parseval on the rfft grid: count the mirrored half (all columns but 0 and, for even width, Nyquist).
        w = np.full(f["noise"].shape[1], 2.0)
        w[0] = 1.0
        if shape[1] % 2 == 0:
            w[-1] = 1.0
        power = float((f["noise"].astype(np.float64) ** 2 * w).sum()) / n
        return float(np.sqrt(power * (photons_per_pixel + self.p.read_noise_e**2))) * self.p.noise_gain
