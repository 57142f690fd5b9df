"""Fast approximation of a live Wiener-SIM reconstruction of a known SR image (training inputs without raw frames).

Why: the live pipeline separates *reconstructed* SR frames (noise shaped by the Wiener filter, slightly damped
high frequencies), not clean ground truth. Simulating 9 raw frames and reconstructing them for every training
patch is slow, so this module produces the same first- and second-order statistics directly on the SR grid:

* signal: the reconstruction chain's transfer (fairSIM-style Wiener as in ``imcsr_live.recon``):
  ``T = D post``, ``D = sum_b |H_b|^2 att_b``, ``post = A_dir / (D + w^2)`` scaled to unit gain in the mid band,
  with ``att`` the notch that suppresses each band's centre (out-of-focus light) and ``A_dir`` the apodisation to
  the direction-dependent passband edge. The ground truth already carries its own isotropic apodisation
  (``SimForwardModel.sr_transfer``), which is divided out;
* noise: raw frames carry Poisson + read noise of variance ``sigma^2(x) = W(x) + r^2`` photoelectrons per camera
  pixel per frame (``W`` = widefield image, a raw frame's mean). Band separation of 3 phases gives band-0 noise
  ``sigma^2 / 3`` and side-band noise ``4 sigma^2 / (3 m^2)``; band ``b`` reaches the output through
  ``F_b = H_b att_b post``. The noise is drawn as white Gaussian noise with the local standard deviation
  ``sigma(x)`` (heteroscedastic, like Poisson noise), then shaped by ``sqrt(sum_b c_b |F_b|^2)``. A camera pixel
  is 2 x 2 SR pixels, so white noise of variance ``4 sigma^2`` per SR pixel, limited to the camera band, has
  ``sigma^2`` per camera pixel;
* the output is clipped at 0, as the reconstruction's is.

``H_b`` = OTF x camera-pixel sinc centred on ``b k0`` (3 angles, b = -1, 0, +1). ``noise_gain`` (default 1)
scales the noise: the hook for matching real reconstructions (``imcsr_live.recon``); measure the match with
``tools/check_sr_approximation.py`` (real Reconstructor on simulated raw stacks vs this approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from imcsr_live.config import RigConfig
from imcsr_live.optics import DEFAULT_OTF_DAMPING, frequency_grid, otf_at, otf_cutoff_cycles_per_um
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
    attenuation: float = 0.99
    attenuation_fwhm_per_um: float = 1.2
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
            "attenuation": rig.recon.attenuation,
            "attenuation_fwhm_per_um": rig.recon.attenuation_fwhm_per_um,
            "otf_damping": getattr(rig.recon, "otf_damping", DEFAULT_OTF_DAMPING),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _apodisation(rho: np.ndarray, bend: float) -> np.ndarray:
    """``H_ideal(rho) ** bend`` inside the unit radius, 0 outside (circular-pupil OTF shape, no ringing)."""
    r = np.minimum(rho, 1.0)
    ideal = (2.0 / np.pi) * (np.arccos(r) - r * np.sqrt(1.0 - r * r))
    return np.where(rho < 1.0, np.power(ideal, bend), 0.0)


class SimReconApproximation:
    """Turn clean SR images (photoelectron units) into reconstruction-like noisy SR images. Filters cached per shape."""

    def __init__(self, params: SimDegradeParams | None = None) -> None:
        self.p = params or SimDegradeParams()
        self._cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def filters(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """``signal`` (ground truth -> reconstruction), ``widefield`` (H_0) and ``noise`` (sqrt PSD per unit
        variance) on the rfft grid of an SR image of ``shape``."""
        if shape in self._cache:
            return self._cache[shape]
        p = self.p
        px = p.camera_pixel_um / 2.0
        ky, kx = frequency_grid(shape, px, rfft=True)
        kc = otf_cutoff_cycles_per_um(p.na, p.emission_wavelength_nm)
        sigma_att = p.attenuation_fwhm_per_um / (2.0 * np.sqrt(2.0 * np.log(2.0)))

        def h(sy: float, sx: float) -> tuple[np.ndarray, np.ndarray]:
            """Data transfer (OTF x pixel sinc) and attenuation notch of the band centred on (sy, sx)."""
            dy, dx = ky - sy, kx - sx
            q = np.hypot(dy, dx)
            otf = otf_at(q, p.na, p.emission_wavelength_nm, damping=p.otf_damping)
            otf = otf * np.sinc(dy * p.camera_pixel_um) * np.sinc(dx * p.camera_pixel_um)
            return otf, 1.0 - p.attenuation * np.exp(-0.5 * (q / sigma_att) ** 2)

        k0 = 1.0 / p.period_um
        centres = [(0.0, 0.0)]
        bands: list[tuple[np.ndarray, np.ndarray, float]] = []
        for a in p.angles_deg:
            t = np.deg2rad(a)
            s = (k0 * np.sin(t), k0 * np.cos(t))
            bands.append((*h(0.0, 0.0), 1.0 / 3.0))
            for sign in (-1.0, 1.0):
                centres.append((sign * s[0], sign * s[1]))
                bands.append((*h(sign * s[0], sign * s[1]), 4.0 / (3.0 * p.modulation**2)))
        den = sum(b * b * att for b, att, _ in bands)
        kabs = np.hypot(ky, kx)
        # Apodisation to the direction-dependent edge of the union of the shifted OTF discs (as the recon does).
        uy = np.where(kabs > 0, ky / np.maximum(kabs, 1e-30), 0.0)
        ux = np.where(kabs > 0, kx / np.maximum(kabs, 1e-30), 1.0)
        radius = np.zeros_like(kabs)
        for cy, cx in centres:
            proj = cy * uy + cx * ux
            disc = kc * kc - (cy * cy + cx * cx) + proj * proj
            radius = np.maximum(radius, np.where(disc >= 0, proj + np.sqrt(np.maximum(disc, 0.0)), 0.0))
        apod = _apodisation(kabs / np.maximum(radius, 1e-30), p.apodization_bend)
        post = apod / (den + p.wiener**2)
        mid = (kabs > 0.2 * kc) & (kabs < 0.5 * kc) & (apod > 0)
        post /= float(np.median((den * post)[mid] / apod[mid]))  # unit gain in the mid band, as the recon
        transfer = den * post  # object -> reconstruction
        # The ground truth already carries its own (isotropic) apodisation; divide it out where it is defined.
        gt_apod = _apodisation(kabs / min(kc + k0, 1.0 / p.camera_pixel_um), p.apodization_bend)
        signal = np.where(gt_apod > 1e-3, transfer / np.maximum(gt_apod, 1e-3), 0.0)
        psd = sum(c * (b * att * post) ** 2 for b, att, c in bands) * 4.0  # 4: camera pixel = 2 x 2 SR pixels
        out = {
            "signal": signal.astype(np.float32),
            "widefield": h(0.0, 0.0)[0].astype(np.float32),
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
