"""2D linear SIM forward model: truth density -> raw SIM frames (expected photoelectrons and camera ADU).

Coordinates and phase convention (shared by every grid here and by ``imcsr_live/optics.py``)
---------------------------------------------------------------------------------------
* Arrays are indexed ``[row, column]`` = ``[y, x]``; x grows with the column index, y with the row index
  (downwards on screen when row 0 is drawn at the top).
* All grids share one origin, ``(x, y) = (0, 0)`` um = the centre of camera pixel ``(0, 0)``:
  camera pixel ``(i, j)`` is centred at ``(x, y) = (j, i) * p`` (``p = pixel_size_um``), truth pixel
  ``(I, J)`` at ``(J, I) * p / oversample`` and SR pixel ``(n, m)`` at ``(m, n) * p / 2``. So truth pixel
  ``(s i, s j)`` (``s = oversample``) and SR pixel ``(2 i, 2 j)`` sit on the centre of camera pixel
  ``(i, j)``, and with ``oversample = 2`` the truth grid *is* the SR grid.
* Pattern of angle ``a`` and phase step ``p``: ``I(x) = 1 + m cos(2 pi k_a . x + phi_ap)`` with
  ``k_a = (kx, ky) = (cos theta_a, sin theta_a) / period_um`` cycles/um, ``theta_a = angles_deg[a]`` measured
  from the +x axis (columns) towards +y (rows), and ``phi_ap = phi0_a + 2 pi p / P + jitter_ap``.
  ``phi`` is therefore the pattern phase at the centre of camera pixel (0, 0); a maximum of the
  illumination lies at ``k_a . x = -phi / (2 pi)``. Wave vectors are reported as ``(ky, kx)`` (array-axis
  order), in cycles/um; in camera-FFT pixels they are ``(ky * Y * p, kx * X * p)``.
* Stacks are angle-major: frame ``a * P + p``.

Image formation and normalisation
---------------------------------
The truth (``(C, sY, sX)`` or ``(sY, sX)``, channels summed) holds point samples of a fluorophore density,
interpreted as the band-limited function through those samples on a periodic field. Each raw frame is
``[(truth * I) conv PSF]`` integrated over each camera pixel and sampled at the camera pixel centres, i.e. in
Fourier space ``OTF(k) * sinc(kx p) sinc(ky p)`` applied to the spectrum of ``truth * I``, followed by exact
decimation to the camera grid (a Fourier crop when ``kc <= 1 / (2p)``, aliasing otherwise). Intensity scale:
a camera pixel reads the *mean* of the (blurred) density over its area, so a uniform truth of value ``v``
gives exactly ``v`` expected photoelectrons per pixel in the widefield image and on average in each raw
frame; ``simulate`` multiplies by ``photon_scale`` before the camera noise. Convolutions are circular (the
field wraps around); a pattern that is not periodic on the field leaves a seam a few PSF widths wide at the
borders.

Computation (per timepoint): one real FFT of the truth for the widefield and one complex FFT of
``truth * exp(+i 2 pi k_a . x)`` per angle, each pruned to the camera-sized spectrum; then
``frame_ap = widefield + m Re(exp(i phi_ap) v_a)`` with ``v_a`` the camera-grid image of the modulated band,
so the P phases of an angle cost only a few array operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from imcsr_live.errors import SynthError
from imcsr_live.illumination import PatternParams
from imcsr_live.optics import (
    DEFAULT_OTF_DAMPING,
    fourier_resize,
    frequency_grid,
    ideal_otf,
    otf_2d,
    otf_cutoff_cycles_per_um,
    pixel_sinc,
    resize_fft_axis,
)
from imcsr_live.synth.camera import CameraParams, expose

DEFAULT_CAMERA = CameraParams()
DEFAULT_SR_APODIZATION_BEND = 0.8


@dataclass(frozen=True)
class OpticsParams:
    """Detection optics. ``pixel_size_um`` is the camera pixel in the sample plane."""

    na: float
    emission_wavelength_nm: float
    pixel_size_um: float
    otf_damping: float = DEFAULT_OTF_DAMPING  # OTF *= damping ** (|k| / kc); 1 = ideal, 0.7 = mild

    def __post_init__(self) -> None:
        if self.na <= 0 or self.emission_wavelength_nm <= 0 or self.pixel_size_um <= 0:
            raise SynthError(
                f"optics need NA, emission wavelength and pixel size > 0 (got NA {self.na}, "
                f"{self.emission_wavelength_nm} nm, {self.pixel_size_um} um)"
            )
        if not 0 < self.otf_damping <= 1:
            raise SynthError(f"otf_damping must be in (0, 1] (got {self.otf_damping}); 1 means the ideal OTF")

    @property
    def cutoff_cycles_per_um(self) -> float:
        """Incoherent OTF cutoff ``2 NA / lambda_em``."""
        return otf_cutoff_cycles_per_um(self.na, self.emission_wavelength_nm)


def pattern_frame(
    widefield: np.ndarray,
    band: np.ndarray,
    modulation: float,
    phase_rad: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """One noiseless raw frame ``widefield + m Re(exp(i phi) band)`` (float32, written into ``out`` if given).

    ``band`` is one angle's entry of :meth:`SimForwardModel.band_images`; ``phi`` follows the phase convention
    in the module docstring (pattern phase at the centre of camera pixel (0, 0)).
    """
    if out is None:
        out = np.empty(widefield.shape, dtype=np.float32)
    np.multiply(band.real, np.float32(modulation * math.cos(phase_rad)), out=out)
    out -= np.float32(modulation * math.sin(phase_rad)) * band.imag
    out += widefield
    return out


@dataclass
class SimFrame:
    """One simulated SIM acquisition (one timepoint)."""

    raw: np.ndarray  # uint16 (A*P, Y, X), angle-major
    expected: np.ndarray  # float32 (A*P, Y, X), noiseless expected photoelectrons
    widefield: np.ndarray  # float32 (Y, X), noiseless unmodulated frame, same scale as `expected`
    phases_rad: np.ndarray  # float64 (A, P), true phases used (jitter included), in [0, 2 pi)
    k0_cycles_per_um: np.ndarray  # float64 (A, 2), true wave vectors as (ky, kx)
    modulation: float
    photon_scale: float = 1.0


class SimForwardModel:
    """Noiseless and noisy raw SIM frames of a truth density on a grid ``oversample`` x finer than the camera.

    See the module docstring for the coordinate, phase and intensity conventions. Filters and pattern
    factors are cached per instance (the shapes are fixed); an instance is not meant to be shared between
    threads that call it concurrently.
    """

    def __init__(
        self,
        optics: OpticsParams,
        pattern: PatternParams,
        raw_shape: tuple[int, int],
        oversample: int = 2,
        camera: CameraParams = DEFAULT_CAMERA,
        *,
        workers: int = -1,
    ) -> None:
        ny, nx = (int(s) for s in raw_shape)
        if ny < 2 or nx < 2:
            raise SynthError(f"raw frame shape must be at least 2 x 2 pixels (got {raw_shape})")
        if int(oversample) != oversample or oversample < 1:
            raise SynthError(f"oversample must be a positive integer (got {oversample})")
        self.optics = optics
        self.pattern = pattern
        self.camera = camera
        self.raw_shape = (ny, nx)
        self.oversample = int(oversample)
        self.workers = workers
        p = optics.pixel_size_um
        self.truth_shape = (ny * self.oversample, nx * self.oversample)
        self.sr_shape = (2 * ny, 2 * nx)
        self.truth_pixel_size_um = p / self.oversample
        self.sr_pixel_size_um = p / 2.0
        self.cutoff_cycles_per_um = optics.cutoff_cycles_per_um
        self.k0_cycles_per_um = pattern.k0_cycles_per_um()
        kc = self.cutoff_cycles_per_um
        # Working grid: fine enough that every object frequency shifted into the passband by the pattern is
        # represented without wrap-around (|k0| + kc below its Nyquist along each axis).
        need = float(np.max(np.abs(self.k0_cycles_per_um))) + kc
        work = self.oversample
        while work / (2.0 * p) <= need:
            work += 1
        self.work_factor = work
        self.work_shape = (ny * work, nx * work)
        self._crop_path = kc <= 1.0 / (2.0 * p)  # camera samples the band-limited image without aliasing
        self._cache: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def n_frames(self) -> int:
        return self.pattern.n_angles * self.pattern.phases

    @property
    def k0_pixels(self) -> np.ndarray:
        """Wave vectors in camera-FFT pixels, ``(A, 2)`` as ``(ky, kx)``."""
        ny, nx = self.raw_shape
        scale = np.array([ny, nx], dtype=np.float64) * self.optics.pixel_size_um
        return self.k0_cycles_per_um * scale

    def camera_transfer(self, shape: tuple[int, int], pixel_size_um: float, *, rfft: bool = False) -> np.ndarray:
        """OTF x camera-pixel sinc on the FFT grid of ``shape`` with sampling ``pixel_size_um`` (float64)."""
        o = self.optics
        otf = otf_2d(shape, pixel_size_um, o.na, o.emission_wavelength_nm, damping=o.otf_damping, rfft=rfft)
        return otf * pixel_sinc(shape, pixel_size_um, o.pixel_size_um, rfft=rfft)

    def _filters(self) -> dict[str, np.ndarray]:
        if not self._cache:
            p = self.optics.pixel_size_um
            w2 = float(self.work_factor**2)  # decimation by w per axis keeps the mean: divide by w^2
            if self._crop_path:
                full = self.camera_transfer(self.raw_shape, p) / w2
                half = self.camera_transfer(self.raw_shape, p, rfft=True) / w2
                self._cache["full"] = full.astype(np.complex64)
                self._cache["half"] = half.astype(np.float32)
            else:
                q = p / self.work_factor
                self._cache["full"] = (self.camera_transfer(self.work_shape, q) / w2).astype(np.complex64)
        return self._cache

    def _modulation(self, a: int) -> np.ndarray:
        """``exp(+i 2 pi k_a . x)`` on the working grid (complex64), cached per angle."""
        key = f"mod{a}"
        if key not in self._cache:
            q = self.optics.pixel_size_um / self.work_factor
            ky, kx = self.k0_cycles_per_um[a]
            wy, wx = self.work_shape
            # Reduce to [0, 1) cycles before the exponential so that large arguments keep float64 accuracy.
            cyc_y = np.mod(ky * q * np.arange(wy), 1.0)
            cyc_x = np.mod(kx * q * np.arange(wx), 1.0)
            ey = np.exp(2j * np.pi * cyc_y).astype(np.complex64)
            ex = np.exp(2j * np.pi * cyc_x).astype(np.complex64)
            self._cache[key] = ey[:, None] * ex[None, :]
        return self._cache[key]

    def _to_work_grid(self, density: np.ndarray) -> np.ndarray:
        if self.work_factor == self.oversample:
            return density
        spec = sfft.rfft2(density, workers=self.workers)
        spec = fourier_resize(spec, self.work_shape, rfft_width=density.shape[-1])
        return sfft.irfft2(spec, s=self.work_shape, workers=self.workers).astype(np.float32)

    def _camera_image(self, x: np.ndarray, *, real: bool) -> np.ndarray:
        """Blur + pixel-integrate + sample on the camera grid: real (Y, X) float32 or complex64."""
        ny, nx = self.raw_shape
        f = self._filters()
        w = self.workers
        if not self._crop_path:  # general path: full spectrum, then fold the aliases onto the camera grid
            spec = sfft.fft2(x, workers=w) * f["full"]
            s = self.work_factor
            spec = spec.reshape(s, ny, s, nx).sum(axis=(0, 2))
            out = sfft.ifft2(spec, workers=w, overwrite_x=True)
            return out.real.astype(np.float32) if real else out.astype(np.complex64)
        # Pruned 2D FFT: transform rows, keep the camera's columns, transform those columns, keep its rows.
        if real:
            t = sfft.rfft(x, axis=1, workers=w)[:, : nx // 2 + 1]
        else:
            t = resize_fft_axis(sfft.fft(x, axis=1, workers=w, overwrite_x=True), nx, axis=1)
        t = resize_fft_axis(sfft.fft(t, axis=0, workers=w, overwrite_x=True), ny, axis=0)
        if real:
            t *= f["half"]
            return sfft.irfft2(t, s=(ny, nx), workers=w, overwrite_x=True).astype(np.float32, copy=False)
        t *= f["full"]
        return sfft.ifft2(t, workers=w, overwrite_x=True).astype(np.complex64, copy=False)

    def _density(self, truth: np.ndarray) -> np.ndarray:
        arr = np.asarray(truth)
        if arr.ndim == 3:
            if arr.shape[1:] != self.truth_shape:
                raise SynthError(
                    f"truth has shape {arr.shape}; expected (C, {self.truth_shape[0]}, "
                    f"{self.truth_shape[1]}) for raw frames of {self.raw_shape}"
                )
            return arr.sum(axis=0, dtype=np.float32)
        if arr.ndim == 2 and arr.shape == self.truth_shape:
            return arr.astype(np.float32, copy=False)
        raise SynthError(
            f"truth has shape {arr.shape}; expected (C, {self.truth_shape[0]}, {self.truth_shape[1]}) "
            f"or {self.truth_shape} for raw frames of {self.raw_shape}"
        )

    # ------------------------------------------------------------------------------------------------ public
    def phases_rad(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Phases of one acquisition (A, P): nominal, plus N(0, jitter) if ``rng`` is given and jitter > 0."""
        phases = self.pattern.nominal_phases_rad()
        if rng is not None and self.pattern.phase_jitter_deg > 0:
            phases = phases + np.deg2rad(self.pattern.phase_jitter_deg) * rng.standard_normal(phases.shape)
        return np.mod(phases, 2.0 * np.pi)

    def expected_images(
        self, truth: np.ndarray, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noiseless raw frames for a truth density (channels summed).

        Returns ``(expected, widefield, phases_rad)``: float32 ``(A*P, Y, X)`` angle-major, float32
        ``(Y, X)``, float64 ``(A, P)``. A uniform truth of value ``v`` gives ``widefield == v`` exactly.
        Phase jitter is drawn from ``rng`` (A*P standard normals, only if jitter > 0); without ``rng`` the
        phases are nominal.
        """
        phases = self.phases_rad(rng)
        widefield, bands = self.band_images(truth)
        n_a, n_p = phases.shape
        expected = np.empty((n_a * n_p, *self.raw_shape), dtype=np.float32)
        for a in range(n_a):
            for p in range(n_p):
                pattern_frame(widefield, bands[a], self.pattern.modulation, phases[a, p], out=expected[a * n_p + p])
        return expected, widefield, phases

    def band_images(self, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Widefield image and one modulated-band image per angle, for rendering single patterns.

        Returns ``(widefield, bands)``: float32 ``(Y, X)`` and complex64 ``(A, Y, X)``, noiseless, same scale as
        ``expected_images``. The frame under angle ``a`` at phase ``phi`` with modulation ``m`` is
        ``pattern_frame(widefield, bands[a], m, phi)``; this lets a simulated camera render whatever pattern an
        SLM shows now, at the cost of a few array operations per frame once the bands are cached.
        """
        density = self._to_work_grid(self._density(truth))
        widefield = self._camera_image(density, real=True)
        bands = np.empty((self.pattern.n_angles, *self.raw_shape), dtype=np.complex64)
        for a in range(self.pattern.n_angles):
            bands[a] = self._camera_image(density * self._modulation(a), real=False)
        return widefield, bands

    def simulate(self, truth: np.ndarray, photon_scale: float, rng: np.random.Generator) -> SimFrame:
        """Expected frames times ``photon_scale`` (photoelectrons per unit density), then camera noise.

        ``rng`` draws, in order: the phase jitter (if any), then the camera noise (see ``camera.expose``).
        """
        if not photon_scale > 0:
            raise SynthError(f"photon_scale must be > 0 (got {photon_scale})")
        expected, widefield, phases = self.expected_images(truth, rng)
        scale = np.float32(photon_scale)
        expected *= scale
        widefield *= scale
        raw = expose(expected, self.camera, rng)
        return SimFrame(
            raw=raw,
            expected=expected,
            widefield=widefield,
            phases_rad=phases,
            k0_cycles_per_um=self.k0_cycles_per_um.copy(),
            modulation=float(self.pattern.modulation),
            photon_scale=float(photon_scale),
        )

    @property
    def sr_support_cycles_per_um(self) -> float:
        """Radius of the ideal SIM passband ``kc + |k0|`` (limited to the SR grid's Nyquist frequency)."""
        k0 = float(np.max(np.hypot(self.k0_cycles_per_um[:, 0], self.k0_cycles_per_um[:, 1])))
        return min(self.cutoff_cycles_per_um + k0, 1.0 / self.optics.pixel_size_um)

    def sr_transfer(self, *, apodization_bend: float = DEFAULT_SR_APODIZATION_BEND, rfft: bool = False) -> np.ndarray:
        """Ideal-SIM transfer function on the SR grid: ``H_ideal(|k| / R) ** bend``, ``R = kc + |k0|``.

        ``H_ideal`` is the circular-pupil OTF shape (smooth edge, no ringing); ``bend`` 0 gives a hard disc,
        1 the shape of a widefield OTF with doubled-ish support. The default 0.8 matches the reconstruction's
        apodisation (docs/method.md#sim-reconstruction), so ground truth and reconstructions share one target spectrum.
        """
        if apodization_bend < 0:
            raise SynthError(f"apodization bend must be >= 0 (got {apodization_bend})")
        rho = np.hypot(*frequency_grid(self.sr_shape, self.sr_pixel_size_um, rfft=rfft))
        rho /= self.sr_support_cycles_per_um
        return np.where(rho < 1.0, np.power(ideal_otf(rho), apodization_bend), 0.0)

    def sr_ground_truth(
        self, truth: np.ndarray, *, apodization_bend: float = DEFAULT_SR_APODIZATION_BEND
    ) -> np.ndarray:
        """Each truth channel band-limited to the ideal SIM passband, on the SR grid: float32 (C, 2Y, 2X).

        Same intensity scale as ``truth`` (transfer 1 at k = 0, mean-preserving Fourier resampling: a flat
        truth stays flat at the same value). SR pixel ``(2i, 2j)`` is centred on camera pixel ``(i, j)``.
        """
        arr = np.asarray(truth, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != self.truth_shape:
            raise SynthError(
                f"truth has shape {np.shape(truth)}; expected (C, {self.truth_shape[0]}, "
                f"{self.truth_shape[1]}) or {self.truth_shape}"
            )
        key = f"sr{apodization_bend!r}"
        if key not in self._cache:
            transfer = self.sr_transfer(apodization_bend=apodization_bend, rfft=True)
            self._cache[key] = transfer.astype(np.float32)
        spec = sfft.rfft2(arr, workers=self.workers)
        spec = fourier_resize(spec, self.sr_shape, rfft_width=arr.shape[-1])
        spec *= self._cache[key]
        out = sfft.irfft2(spec, s=self.sr_shape, workers=self.workers)
        return out.astype(np.float32, copy=False)
