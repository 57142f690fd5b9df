"""Detection OTF for the reconstruction: a model from NA / wavelength / pixel size, or a measured one.

The model is the circular-pupil OTF with the empirical damping and the camera-pixel sinc used by the forward
model (``imcsr_live/optics.py``), so simulated data and reconstruction agree by construction. A measured OTF
(radial profile, or the radial average of a bead image's spectrum) replaces the model; it already contains the
camera-pixel integration, so no sinc is applied on top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import InputDataError
from imcsr_live.optics import DEFAULT_OTF_DAMPING, ideal_otf, otf_cutoff_cycles_per_um


@dataclass(frozen=True)
class OtfModel:
    """Radially symmetric detection OTF, evaluated at arbitrary frequencies (cycles/um).

    Parameters
    ----------
    cutoff_cycles_per_um
        Support radius ``kc``; the OTF is 0 beyond it.
    camera_pixel_um
        Camera pixel (sample plane); its integration sinc is applied when ``measured`` is None.
    damping
        Empirical ``damping ** (|k| / kc)`` factor of the model (ignored for a measured OTF).
    measured
        ``(k, value)`` radial profile of a measured OTF (k ascending, value 1 at k = 0), or None.
    """

    cutoff_cycles_per_um: float
    camera_pixel_um: float
    damping: float = DEFAULT_OTF_DAMPING
    measured: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_optics(
        cls, na: float, emission_wavelength_nm: float, pixel_size_um: float, damping: float = DEFAULT_OTF_DAMPING
    ) -> OtfModel:
        """Model OTF of a circular pupil (cutoff ``2 NA / lambda``) with damping and pixel sinc."""
        if not 0 < damping <= 1:
            raise InputDataError(f"OTF damping must be in (0, 1] (got {damping}); 1 is the ideal OTF")
        return cls(otf_cutoff_cycles_per_um(na, emission_wavelength_nm), pixel_size_um, damping)

    @classmethod
    def from_radial_profile(
        cls, k_cycles_per_um: np.ndarray, values: np.ndarray, pixel_size_um: float, *, threshold: float = 1e-3
    ) -> OtfModel:
        """A measured radial OTF; values are normalised to 1 at k = 0, the cutoff is where they end.

        Raises :class:`InputDataError` when the profile is not a usable OTF (too short, not ascending,
        non-finite, zero at k = 0).
        """
        k = np.asarray(k_cycles_per_um, dtype=np.float64).ravel()
        v = np.abs(np.asarray(values, dtype=np.float64).ravel())
        if k.size < 4 or k.size != v.size:
            raise InputDataError(f"a measured OTF needs >= 4 (k, value) pairs of equal length (got {k.size}, {v.size})")
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(v))):
            raise InputDataError("the measured OTF contains NaN or inf; re-measure or use the model OTF")
        if np.any(np.diff(k) <= 0) or k[0] > 0.05 * k[-1]:
            raise InputDataError("the measured OTF's k values must ascend from (close to) 0 cycles/um")
        if v[0] <= 0:
            raise InputDataError("the measured OTF is 0 at k = 0; it cannot be normalised")
        v = v / v[0]
        above = np.nonzero(v > threshold)[0]
        cutoff = float(k[above[-1] + 1]) if above[-1] + 1 < k.size else float(k[-1])
        v = np.where(k <= cutoff, v, 0.0)
        return cls(cutoff, pixel_size_um, 1.0, (k, v))

    @classmethod
    def from_psf_image(cls, psf: np.ndarray, pixel_size_um: float, background: float | None = None) -> OtfModel:
        """OTF as the radially averaged spectrum magnitude of a (bead) PSF image sampled at ``pixel_size_um``."""
        img = np.asarray(psf, dtype=np.float64)
        if img.ndim != 2 or min(img.shape) < 16:
            raise InputDataError(f"a PSF image must be 2D and at least 16 x 16 pixels (got shape {img.shape})")
        if not np.all(np.isfinite(img)):
            raise InputDataError("the PSF image contains NaN or inf")
        img = img - (np.median(img) if background is None else background)
        img = np.clip(img, 0.0, None)
        if img.sum() <= 0:
            raise InputDataError("the PSF image is empty after background subtraction; use a brighter bead")
        ny, nx = img.shape
        spec = np.abs(np.fft.fft2(img))
        ky = np.fft.fftfreq(ny, pixel_size_um)[:, None]
        kx = np.fft.fftfreq(nx, pixel_size_um)[None, :]
        k = np.hypot(ky, kx)
        dk = 1.0 / (max(ny, nx) * pixel_size_um)
        bins = np.rint(k / dk).astype(np.int64)
        n_bins = min(ny, nx) // 2
        sums = np.bincount(bins.ravel(), spec.ravel(), minlength=n_bins)[:n_bins]
        counts = np.bincount(bins.ravel(), minlength=n_bins)[:n_bins]
        profile = sums / np.maximum(counts, 1)
        # The noise floor beyond the support is flat: subtract it so the cutoff is where signal ends.
        floor = float(np.median(profile[int(0.8 * n_bins) :]))
        profile = np.clip(profile - floor, 0.0, None)
        return cls.from_radial_profile(np.arange(n_bins) * dk, profile, pixel_size_um, threshold=0.01)

    # -------------------------------------------------------------------------------------------- evaluation
    def radial(self, k_cycles_per_um: np.ndarray | float) -> np.ndarray:
        """Radial part of the OTF at ``|k|`` (no pixel sinc), float64."""
        k = np.abs(np.asarray(k_cycles_per_um, dtype=np.float64))
        if self.measured is not None:
            kk, vv = self.measured
            return np.interp(k, kk, vv, right=0.0)
        rho = k / self.cutoff_cycles_per_um
        return ideal_otf(rho) * np.power(self.damping, np.minimum(rho, 1.0))

    def __call__(self, ky: np.ndarray, kx: np.ndarray) -> np.ndarray:
        """OTF at wave vectors ``(ky, kx)`` (broadcastable arrays, cycles/um), float64."""
        h = self.radial(np.hypot(ky, kx))
        if self.measured is None:
            a = self.camera_pixel_um
            h = h * np.sinc(np.asarray(ky) * a) * np.sinc(np.asarray(kx) * a)
        return h
