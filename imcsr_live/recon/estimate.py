"""Pattern-parameter estimation from the raw frames: wave vector, per-frame phases, modulation depth.

Methods (docs/method.md#parameter-estimation):
* k0: the cross-correlation of band 0 with band +1 (both OTF-weighted) peaks at k0. A start-up search takes the
  highest peak in the annulus 0.5-1.15 kc; two zoomed DFTs (matrix-product DFT evaluated on a fine grid
  around the peak) refine it to 0.01 px, and a parabola through the best sample refines further.
* phases: Wicker's non-iterative auto-correlation. ``sum_k D*(k) D(k + k0)`` of one OTF-weighted frame is
  dominated by ``(m/2) e^{i phi} (|S(k)|^2 + |S(k+k0)|^2)``, so its argument is the pattern phase. It is
  computed in real space as ``sum_x f(x)^2 e^{-i 2 pi k0 . x}`` (one matrix-vector product per frame). The
  phase-independent object term is the same for all phases of an angle and is removed by subtracting the mean.
  That estimate is noise-robust but biased by the object's own spectrum: the other terms of the correlation
  (band 0 x band -1 and band +1 x band -1 products, i.e. the object's autocorrelation at k0 and 2 k0, with
  phase factors e^{-i phi}, e^{+-2i phi}) are not removed by the mean, and neither is the object term where
  the frame gains differ (the correlation is divided by the squared gains first). On a dense bead slide
  (flat spectrum) that leaves per-frame errors of up to ~2.6 deg, enough for residual pattern peaks.
* phase refinement (overlap fit): with k0 known, the object spectrum S(k) appears twice, in band 0 at k
  (``H(k) S(k)``) and in band +1 at k + k0 (``m H(k + k0) S(k)``). The discrepancy
  ``E(k) = H(k) B+1(k + k0) - m H(k + k0) B0(k)`` of the bands separated with trial phases vanishes at the
  true phases on noiseless data whatever the object is. A few Gauss-Newton steps from the Wicker phases
  minimise ``sum_k w(k) |E(k)|^2`` over the overlap of the two supports, normalised by its noise expectation
  (so that noise does not pull the phase steps towards equal spacing), over the P phases and m. The sums
  reduce to one 2P x 2P Gram matrix of the frames' spectra at k and the frames' spectra at k + k0 (one FFT per
  frame of ``f e^{-i 2 pi k0 . x}``), so each Gauss-Newton step is a few 3 x 3 products. Where the side band
  is weak the fit is noisier than Wicker's estimate (the noise enters both bands: errors in variables), so the
  two are blended with the weight ``snr / (snr + 20)`` of the side-band SNR (below).
* frame gains (lamp / laser fluctuations between the phase frames): P - 1 more parameters of the same fit
  per angle (log-gains on the zero-sum subspace; the common scale is not identifiable). A wrong gain leaks
  band 0 into band +1, which the discrepancy sees; a frame's mean does not tell the gain, because it holds
  the specimen's content at k0 (``preprocess.py``). The fit runs on the frames under a wider edge taper
  (1/8 of the field) so that the 16-px taper's smearing of band 0's low frequencies does not bias it. The
  fitted gains are shrunk towards the frame-mean ones by :func:`combine_gains` according to the fit's
  predicted error (the white-noise ``(J^T J)^-1`` value times ``sqrt(1 + 170 / snr)``, calibrated on the
  synthetic cell and bead slide): on a bead slide the fit (0.1-0.2 % error against 1-2 % for the means)
  wins, on a cell at 1000 photons (fit 0.3-1 %, means 0.2-0.3 %) the means. Where the gains end up
  different from the fitted ones the phases are fitted again with the gains held.
* modulation: band +1 shifted back by k0 against band 0 (OTF-weighted least squares) over the region where
  both OTFs exceed 0.1; the noise power of band 0 (measured outside the OTF support) is subtracted so that
  noise does not bias m low. It reuses the real-space band +1 of the k0 search.
* side-band SNR: the mean spectral signal-to-noise power ratio of band +1 where it carries object frequencies
  beyond the widefield cutoff (``|k| < 0.8 kc`` and ``|k - k0| > kc``), with the noise power measured outside
  the OTF support. It is the quantity SIM lives on: below ~1 the super-resolved detail is noise-dominated
  even when k0 and the phases are still found (the confidence check of the tracker uses it). Per-pixel
  powers, so it does not depend on the field size; it scales linearly with the photon count.
All of it is numpy + scipy.fft, float32/complex64 arrays with float64 accumulations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft as sfft
from threadpoolctl import ThreadpoolController

from imcsr_live.optics import frequency_grid
from imcsr_live.recon.otf import OtfModel
from imcsr_live.recon.params import SimParameters
from imcsr_live.recon.preprocess import DEFAULT_TAPER_PX, edge_taper, mean_gains

# The estimator's matrix products are small: multi-threaded BLAS only adds synchronisation, and on a busy
# 2-core machine it made the per-frame update 5x slower (measured). They run single-threaded.
_BLAS = ThreadpoolController()

ANNULUS = (0.5, 1.15)  # k0 search range in units of kc
OVERLAP_OTF_MIN = 0.1  # modulation estimate uses frequencies where both OTFs exceed this
OVERLAP_CACHE_PX = 0.05  # the overlap mask/weights are reused while k0 stays within this distance
NOTCH_FRACTION = 0.15  # Gaussian low-frequency notch of the k0 search, sigma in units of kc
PNR_RING_STEP_DEG = 30.0  # background of the k0 peak: the cross-correlation on its ring, every 30 deg
PNR_EXCLUDE_DEG = 20.0  # ... except within 20 deg of the peak
START_LEVELS = ((1.0, 0.1), (0.1, 0.02))  # zoomed-DFT refinement after the coarse peak: (half width, step) px
UPDATE_LEVELS = ((0.5, 0.1), (0.1, 0.02))  # per-frame update around the previous k0
NULL_ROTATIONS_DEG = (20.0, 40.0, 90.0, -20.0, -40.0, -90.0)  # where the phase-noise reference is measured
SIDE_BAND_INNER = 0.8  # side-band SNR region: |k| < 0.8 kc (where the OTF still carries signal) ...
SIDE_BAND_OUTER = 1.0  # ... and |k - k0| > 1.0 kc (object frequencies beyond the widefield cutoff)
FIT_SNR_HALF = 20.0  # the overlap-fit phases get the weight snr / (snr + 20) against Wicker's (side-band SNR)
FIT_MIN_WEIGHT = 0.02  # below this weight the fit is skipped
FIT_ITERATIONS = 8  # Gauss-Newton steps of the overlap fit
FIT_STEP_CAP_DEG = 3.0  # largest phase change per step
FIT_TOLERANCE_RAD = 1e-5  # ... and the step (0.0006 deg) at which it stops
FIT_MAX_DEV_DEG = 10.0  # a fit that moves a phase further than this from Wicker's is discarded
FIT_NOISE_RATIO = 0.16  # ML weight 1 / (H(k)^2 + r H(k + k0)^2): r = m^2 |u|^2 / |v|^2 ~ 0.8^2 / 4
FIT_TAPER_FRACTION = 0.125  # the overlap fit sees the frames under a wider cos^2 edge taper (1/8 of the field)
FIT_GAIN_SIGMA_SNR = 170.0  # the fit's gain error is its (J^T J)^-1 prediction times sqrt(1 + 170 / side-band SNR)
FIT_GAIN_STEP_CAP = 0.01  # largest change of a log frame gain per Gauss-Newton step
FIT_MAX_GAIN_DEV = 0.1  # a fit that moves a frame gain by more than 10 % from the frame-mean start is discarded


def band_matrix(phases_rad: np.ndarray, modulation: float = 1.0, gains: np.ndarray | None = None) -> np.ndarray:
    """Pseudo-inverse of the mixing matrix ``M[p] = g_p [1, (m/2) e^{i phi_p}, (m/2) e^{-i phi_p}]``: (3, P).

    ``gains`` (P,): the frames' relative intensities (None: all 1); the separation divides them out.
    """
    ph = np.asarray(phases_rad, dtype=np.float64)
    half = 0.5 * modulation
    mix = np.stack([np.ones_like(ph), half * np.exp(1j * ph), half * np.exp(-1j * ph)], axis=1)
    if gains is not None:
        mix = mix * np.asarray(gains, dtype=np.float64)[:, None]
    return np.linalg.pinv(mix)


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


def combine_gains(start: np.ndarray, fitted: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Frame gains ``(A, P)`` from the frame-mean start and the overlap fit (predicted rms error ``sigma`` (A,),
    NaN where the fit did not run).

    The frame means are precise but biased by the specimen's content at k0 (a few 0.1 % on a cell, up to
    ~2 % on a bead slide); the fit is unbiased but noisy where the side band is weak. Shrinkage in the log
    domain: ``g = start (fitted / start)^lam`` with ``lam = max(0, 1 - sigma^2 / mean(d^2))``, ``d`` the
    log-differences of all fitted frames (the bias is a property of the specimen, pooled over the angles).
    With equal-intensity frames and a correct fit the result is the fit's, whatever the specimen.
    """
    start = np.asarray(start, dtype=np.float64)
    ok = np.isfinite(sigma)
    if not ok.any():
        return start.copy()
    d = np.log(np.asarray(fitted, dtype=np.float64)[ok] / start[ok])
    spread = float(np.mean(d * d))
    lam = max(0.0, 1.0 - float(np.mean(np.asarray(sigma)[ok] ** 2)) / spread) if spread > 0 else 0.0
    out = start.copy()
    out[ok] = start[ok] * np.exp(lam * d)
    return out / out.mean(axis=1, keepdims=True)


def fit_weight(side_band_snr: float) -> float:
    """Weight of the overlap-fit phases against Wicker's: ``snr / (snr + FIT_SNR_HALF)``; 0 for NaN or <= 0."""
    snr = float(side_band_snr)
    return snr / (snr + FIT_SNR_HALF) if np.isfinite(snr) and snr > 0 else 0.0


@dataclass(frozen=True)
class _PeakSearch:
    """The k0 search of one angle: the peak and the bands it was found with."""

    k0_px: np.ndarray
    peak: float  # |cross-correlation| at k0
    at_edge: bool  # the refinement hit the edge of its first window
    band0: np.ndarray  # band 0 spectrum
    band1_weighted: np.ndarray  # search-weighted band +1, real space
    product: np.ndarray  # cross-correlation product (its DFT peaks at k0)
    band1: np.ndarray  # band +1 spectrum


@dataclass(frozen=True)
class _OverlapFit:
    """The overlap fit of one angle and the Gram factor it ran on (for a refit with the final gains)."""

    phases: np.ndarray  # (P,)
    gains: np.ndarray  # (P,)
    gain_sigma: float  # predicted rms error of the gains, scaled for the side-band SNR
    gram: tuple[np.ndarray, float, float, int]


@dataclass(frozen=True)
class _AngleEstimate:
    """First-pass estimate of one angle, kept until the final frame gains (pooled over the angles) are known."""

    k0_px: np.ndarray
    k0_jumped: bool  # the per-frame update ran into the edge of its search window
    correlation: np.ndarray  # Wicker correlation (P, Q), for the phases again with the final gains
    phases: np.ndarray  # Wicker's phases with the start gains
    phase_sigma: float
    modulation: float
    side_band_snr: float
    peak_to_noise: float
    fit_weight: float  # of the overlap-fit phases against Wicker's
    fit: _OverlapFit | None  # None: the fit did not run or failed


class ParameterEstimator:
    """Estimates :class:`SimParameters` from pre-processed frames ``(A*P, Y, X)`` (angle-major).

    Without a previous estimate it searches k0 anywhere in the annulus (start-up); with one it refines
    around the previous k0 and re-measures phases and modulation (the cheap per-frame path).
    """

    def __init__(
        self,
        raw_shape: tuple[int, int],
        pixel_size_um: float,
        otf: OtfModel,
        n_angles: int,
        n_phases: int,
        *,
        workers: int = -1,
    ) -> None:
        self.raw_shape = (int(raw_shape[0]), int(raw_shape[1]))
        self.pixel_size_um = float(pixel_size_um)
        self.otf = otf
        self.n_angles = n_angles
        self.n_phases = n_phases
        self.workers = workers
        ny, nx = self.raw_shape
        self._ky, self._kx = frequency_grid(self.raw_shape, pixel_size_um)
        self._h = otf(self._ky, self._kx).astype(np.float32)
        kabs = np.hypot(self._ky, self._kx)
        kc = otf.cutoff_cycles_per_um
        support = kabs < kc
        # k0-search weights: OTF within the support with the low frequencies notched out. The object's strong
        # low-frequency content otherwise adds a broad hill to the cross-correlation whose inner edge can
        # outgrow the k0 peak (and whose slope would bias the sub-pixel fit).
        self._notch = 1.0 - np.exp(-0.5 * (kabs / (NOTCH_FRACTION * kc)) ** 2)
        self._xcorr_weight = (self._h * support * self._notch).astype(np.float32)
        self._h_half = (self._h * support)[:, : nx // 2 + 1].astype(np.float32)
        # Outside the OTF support there is only noise (flat for Poisson + read noise): used as noise floor.
        nyq = 0.5 / pixel_size_um
        noise = (kabs > 1.1 * kc) & (np.abs(self._ky) < 0.95 * nyq) & (np.abs(self._kx) < 0.95 * nyq)
        self._noise_idx = np.flatnonzero(noise)
        self._annulus = (kabs > ANNULUS[0] * kc) & (kabs < ANNULUS[1] * kc)
        self._overlap_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._side_cache: dict[tuple[int, int], np.ndarray] = {}
        self._fit_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._fit_window = edge_taper(self.raw_shape, max(DEFAULT_TAPER_PX, int(FIT_TAPER_FRACTION * min(ny, nx))))
        self._inner_idx = np.flatnonzero(kabs < SIDE_BAND_INNER * kc)
        self._fy = np.fft.fftfreq(ny) * ny  # signed FFT pixel index per row
        self._fx = np.fft.fftfreq(nx) * nx
        self._y = np.arange(ny, dtype=np.float64)
        self._x = np.arange(nx, dtype=np.float64)

    # ------------------------------------------------------------------------------------------- helpers
    def _to_cycles(self, k_px: np.ndarray) -> np.ndarray:
        return np.asarray(k_px, dtype=np.float64) / (np.asarray(self.raw_shape, dtype=np.float64) * self.pixel_size_um)

    def _to_px(self, k_cyc: np.ndarray) -> np.ndarray:
        return np.asarray(k_cyc, dtype=np.float64) * np.asarray(self.raw_shape, dtype=np.float64) * self.pixel_size_um

    def _phasor(self, qy: np.ndarray, qx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``e^{-i 2 pi q . x}`` factors ``(Q, Y)`` and ``(Q, X)`` for FFT-pixel frequencies ``q``."""
        ny, nx = self.raw_shape
        ey = np.exp(-2j * np.pi * np.outer(np.atleast_1d(qy), self._y) / ny).astype(np.complex64)
        ex = np.exp(-2j * np.pi * np.outer(np.atleast_1d(qx), self._x) / nx).astype(np.complex64)
        return ey, ex

    def spectra(self, frames: np.ndarray) -> np.ndarray:
        """Full 2D FFTs of the frames, complex64 ``(N, Y, X)``."""
        return sfft.fft2(np.asarray(frames, dtype=np.float32), workers=self.workers)

    def bands(
        self, spec_angle: np.ndarray, phases_rad: np.ndarray, modulation: float = 1.0, gains: np.ndarray | None = None
    ) -> np.ndarray:
        """Separate the P spectra of one angle into bands 0, +1, -1 (complex64 ``(3, Y, X)``)."""
        inv = band_matrix(phases_rad, modulation, gains).astype(np.complex64)
        return np.tensordot(inv, spec_angle, axes=(1, 0))

    def _search_images(
        self, spec_angle: np.ndarray, phases_rad: np.ndarray, gains: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(band-0 spectrum, real-space weighted band +1, cross-correlation product, band +1 spectrum).

        The DFT of the product at q is the band0 x band+1 cross-correlation at shift q (peak at k0).
        """
        inv = band_matrix(phases_rad, 1.0, gains).astype(np.complex64)
        b0 = np.tensordot(inv[0], spec_angle, axes=(0, 0))
        b1s = np.tensordot(inv[1], spec_angle, axes=(0, 0))
        w = self._xcorr_weight
        r0 = sfft.ifft2(b0 * w, workers=self.workers)
        r1 = sfft.ifft2(b1s * w, workers=self.workers)
        return b0, r1, np.conj(r0) * r1, b1s

    def _dft_at(self, prod: np.ndarray, qy: np.ndarray, qx: np.ndarray) -> np.ndarray:
        """DFT of ``prod`` at fractional frequencies (FFT pixels) ``qy`` x ``qx`` (outer grid)."""
        ey, ex = self._phasor(qy, qx)
        return ey @ prod @ ex.T

    def _refine(
        self, prod: np.ndarray, start_px: np.ndarray, levels: tuple[tuple[float, float], ...]
    ) -> tuple[np.ndarray, float, bool]:
        """Zoomed-DFT peak search around ``start_px``; returns (k0 px, |peak|, hit the edge of the first window)."""
        centre = np.asarray(start_px, dtype=np.float64)
        at_edge = False
        best = 0.0
        for i, (half, step) in enumerate(levels):
            offs = np.arange(-half, half + 0.5 * step, step)
            vals = np.abs(self._dft_at(prod, centre[0] + offs, centre[1] + offs)).astype(np.float64)
            iy, ix = np.unravel_index(int(np.argmax(vals)), vals.shape)
            if i == 0 and (iy in (0, offs.size - 1) or ix in (0, offs.size - 1)):
                at_edge = True
            dy, dx = 0.0, 0.0
            # Parabolic interpolation through the best sample and its neighbours (per axis).
            if 0 < iy < offs.size - 1:
                a, b, c = vals[iy - 1, ix], vals[iy, ix], vals[iy + 1, ix]
                den = a - 2 * b + c
                dy = 0.5 * (a - c) / den if den < 0 else 0.0
            if 0 < ix < offs.size - 1:
                a, b, c = vals[iy, ix - 1], vals[iy, ix], vals[iy, ix + 1]
                den = a - 2 * b + c
                dx = 0.5 * (a - c) / den if den < 0 else 0.0
            centre = centre + np.array([offs[iy] + dy * step, offs[ix] + dx * step])
            best = float(vals[iy, ix])
        return centre, best, at_edge

    def _peak_to_noise(self, prod: np.ndarray, k0_px: np.ndarray, peak: float) -> float:
        """Peak height over the mean cross-correlation magnitude on the ring ``|q| = |k0|`` away from the peak."""
        rot = np.radians(np.arange(PNR_RING_STEP_DEG, 360.0 - 0.5 * PNR_RING_STEP_DEG, PNR_RING_STEP_DEG))
        rot = rot[np.abs(np.degrees(rot) - 180.0) < 180.0 - PNR_EXCLUDE_DEG]
        qy = np.cos(rot) * k0_px[0] + np.sin(rot) * k0_px[1]
        qx = -np.sin(rot) * k0_px[0] + np.cos(rot) * k0_px[1]
        ey, ex = self._phasor(qy, qx)
        bg = np.abs(np.einsum("qy,yq->q", ey, prod @ ex.T))  # sum_y sum_x ey[q, y] prod[y, x] ex[q, x]
        return float(peak / max(float(bg.mean()), 1e-30))

    def phases(
        self, spec_angle: np.ndarray, k0_px: np.ndarray, gains: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Wicker auto-correlation phases (P,) of one angle's frames, and their predicted rms error (rad).

        The error comes from the same correlation evaluated at "null" wave vectors (k0 rotated, where no
        pattern is): after the mean over phases is removed only the frames' independent noise is left there.
        ``gains`` (P,): the frames' relative intensities, divided out (squared: the correlation is quadratic).
        """
        return self._wicker_phases(self._wicker_correlation(spec_angle, k0_px), gains)

    def _wicker_correlation(self, spec_angle: np.ndarray, k0_px: np.ndarray) -> np.ndarray:
        """``sum_x f_p(x)^2 e^{-i 2 pi q . x}`` per frame p at k0 and at the null wave vectors: ``(P, Q)``."""
        ny, nx = self.raw_shape
        n_p = spec_angle.shape[0]
        filt = sfft.irfft2(spec_angle[:, :, : nx // 2 + 1] * self._h_half, s=self.raw_shape, workers=self.workers)
        sq = (filt * filt).astype(np.float32)
        rot = np.radians(np.array([0.0, *NULL_ROTATIONS_DEG]))
        qy = np.cos(rot) * k0_px[0] + np.sin(rot) * k0_px[1]
        qx = -np.sin(rot) * k0_px[0] + np.cos(rot) * k0_px[1]
        ey, ex = self._phasor(qy, qx)
        n_q = rot.size
        # corr[p, q] = sum_y ey[q, y] sum_x sq[p, y, x] ex[q, x]; the x sum as one real matmul.
        exr = np.concatenate([ex.real, ex.imag], axis=0).T  # (X, 2Q)
        t = (sq.reshape(-1, nx) @ exr).reshape(n_p, ny, 2 * n_q)
        tx = t[..., :n_q] + 1j * t[..., n_q:]
        return np.einsum("qy,pyq->pq", ey, tx).astype(np.complex128)

    @staticmethod
    def _wicker_phases(corr: np.ndarray, gains: np.ndarray | None) -> tuple[np.ndarray, float]:
        if gains is not None:
            corr = corr / np.asarray(gains, dtype=np.float64)[:, None] ** 2
        corr = corr - corr.mean(axis=0, keepdims=True)  # remove the phase-independent object term
        signal = np.abs(corr[:, 0])
        noise = float(np.sqrt(np.mean(np.abs(corr[:, 1:]) ** 2) / 2.0))  # one quadrature component
        sigma = float(np.sqrt(np.mean((noise / np.maximum(signal, 1e-30)) ** 2)))
        return np.mod(np.angle(corr[:, 0]), 2.0 * np.pi), sigma

    def _per_k0(self, cache: dict, k0_px: np.ndarray, build: Callable[[np.ndarray], Any]) -> Any:
        """``build(k0 in cycles/um)``, cached while k0 stays within ``OVERLAP_CACHE_PX`` (bounded cache)."""
        key = (round(float(k0_px[0]) / OVERLAP_CACHE_PX), round(float(k0_px[1]) / OVERLAP_CACHE_PX))
        hit = cache.get(key)
        if hit is None:
            if len(cache) > 64:
                cache.clear()
            hit = cache[key] = build(self._to_cycles(k0_px))
        return hit

    def _otf_pair(self, k0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``H(k)`` (float64) and ``H(k + k0)`` on the camera FFT grid, k0 in cycles/um."""
        return self._h.astype(np.float64), self.otf(self._ky + k0[0], self._kx + k0[1])

    def _fit_region(self, k0_px: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Overlap of the band-0 and the shifted band +1 supports: flat indices, H(k), H(k + k0), weights."""

        def build(k0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            h0, h1 = self._otf_pair(k0)
            idx = np.flatnonzero((h0 > 0.0) & (h1 > 0.0))
            h0i, h1i = h0.ravel()[idx], h1.ravel()[idx]
            return idx, h0i, h1i, 1.0 / (h0i * h0i + FIT_NOISE_RATIO * h1i * h1i)

        return self._per_k0(self._fit_cache, k0_px, build)

    def overlap_fit(
        self,
        frames_angle: np.ndarray | None,
        spec_angle: np.ndarray | None,
        k0_px: np.ndarray,
        phases_rad: np.ndarray,
        modulation: float,
        gains: np.ndarray | None = None,
        *,
        fit_gains: bool = True,
        gram: tuple[np.ndarray, float, float, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Phases (P,), frame gains (P,) and the gains' predicted rms error (white-noise (J^T J)^-1 estimate)
        that make band 0 and band +1 agree where both carry the same object frequencies.

        ``frames_angle``: the P pre-processed frames of one angle (real space), ``spec_angle`` their FFTs,
        ``phases_rad`` and ``gains`` the start (Wicker's estimate; the frame-mean gains, None: ones). The
        gains are the frames' relative intensities: a wrong gain leaks band 0 (the object's strong low
        frequencies) into band +1, which the discrepancy measures; their common scale is not determined and
        is fixed by normalising them to mean 1. With ``fit_gains=False`` they stay at the start. Returns None
        where the fit is undetermined or moves a phase by more than ``FIT_MAX_DEV_DEG`` or a gain by more
        than ``FIT_MAX_GAIN_DEV`` (then the start is kept). ``gram``: :meth:`fit_gram` of these frames, if
        already computed (then ``frames_angle`` and ``spec_angle`` are not used).
        """
        if gram is None and frames_angle is not None:
            gram = self.fit_gram(frames_angle, k0_px)
        if gram is None:
            return None
        chol, n1, n2, n_idx = gram
        return self._fit(chol, n1, n2, n_idx, phases_rad, modulation, gains, fit_gains)

    def fit_gram(self, frames_angle: np.ndarray, k0_px: np.ndarray) -> tuple[np.ndarray, float, float, int] | None:
        """Cholesky factor of the overlap fit's normalised 2P x 2P Gram matrix, the noise expectations of the
        two halves of the discrepancy and the number of overlap frequencies; None where undetermined."""
        idx, h0i, h1i, w = self._fit_region(k0_px)
        n_p = frames_angle.shape[0]
        if idx.size < 16:
            return None
        ey, ex = self._phasor(k0_px[0], k0_px[1])
        # The frames under a wider edge taper: the 16-px taper of pre-processing convolves each band with a
        # kernel broad enough to smear the strong low frequencies of band 0 over the overlap region, which
        # biased the fitted gains by up to 0.2 % and the phases by up to 0.3 deg on a noiseless bead slide
        # (a 64-px taper on 512 px: 0.12 %, 0.13 deg).
        windowed = frames_angle * self._fit_window
        shifted = sfft.fft2(windowed * (ey[0][:, None] * ex[0][None, :]), workers=self.workers)  # D(k + k0)
        direct = sfft.fft2(windowed, workers=self.workers)
        z = np.concatenate([shifted.reshape(n_p, -1)[:, idx] * h0i, direct.reshape(n_p, -1)[:, idx] * h1i]).astype(
            np.complex128
        )
        gram = (z * w) @ z.conj().T  # (2P, 2P): sum_k w z z^H
        scale = float(np.trace(gram).real)
        if not scale > 0:
            return None
        gram /= scale
        n1 = float(np.sum(w * h0i * h0i))  # noise expectation of the two halves of E (white noise, per unit)
        n2 = float(np.sum(w * h1i * h1i))
        try:
            chol = np.linalg.cholesky(gram + 1e-12 * np.eye(2 * n_p))
        except np.linalg.LinAlgError:
            return None
        return chol, n1, n2, int(idx.size)

    @staticmethod
    def _fit(
        chol: np.ndarray,
        n1: float,
        n2: float,
        n_idx: int,
        phases_rad: np.ndarray,
        modulation: float,
        gains: np.ndarray | None,
        fit_gains: bool,
    ) -> tuple[np.ndarray, np.ndarray, float] | None:
        n_p = chol.shape[0] // 2
        g_start = np.ones(n_p) if gains is None else np.asarray(gains, dtype=np.float64)
        # Log-gains relative to the start on the zero-sum subspace (the common scale is not identifiable).
        basis = np.linalg.svd(np.eye(n_p) - 1.0 / n_p)[0][:, : n_p - 1] if fit_gains else np.zeros((n_p, 0))
        n_g = basis.shape[1]

        def residual(theta: np.ndarray) -> np.ndarray:
            # E summed against the Gram factor: ||chol^T x||^2 = x^T gram conj(x), x = [v / g; -m u / g].
            ph = theta[:n_p]
            mix = np.stack([np.ones(n_p), 0.5 * np.exp(1j * ph), 0.5 * np.exp(-1j * ph)], axis=1)
            inv = np.linalg.inv(mix) if n_p == 3 else np.linalg.pinv(mix)  # = band_matrix(ph, 1.0)
            h = np.exp(-(basis @ theta[n_p + 1 :])) / g_start
            u, v, m = inv[0] * h, inv[1] * h, theta[n_p]
            x = np.concatenate([v, -m * u])
            den = float(np.sum(np.abs(v) ** 2)) * n1 + m * m * float(np.sum(np.abs(u) ** 2)) * n2
            r = (chol.T @ x) / np.sqrt(den)
            return np.concatenate([r.real, r.imag])

        theta = np.concatenate(
            [np.asarray(phases_rad, dtype=np.float64), [float(np.clip(modulation, 0.3, 1.2))], np.zeros(n_g)]
        )
        n_t = theta.size
        cap = np.radians(FIT_STEP_CAP_DEG)

        def linearised(theta: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
            """Residual and its forward-difference Jacobian at ``theta``."""
            r0 = residual(theta)
            jac = np.empty((r0.size, n_t))
            for i in range(n_t):
                d = np.zeros(n_t)
                d[i] = eps
                jac[:, i] = (residual(theta + d) - r0) / eps
            return r0, jac

        for _ in range(FIT_ITERATIONS):
            r0, jac = linearised(theta)
            step = np.linalg.lstsq(jac, -r0, rcond=None)[0]
            if not np.all(np.isfinite(step)):
                return None
            big = float(np.max(np.abs(step[:n_p])))
            big_g = float(np.max(np.abs(basis @ step[n_p + 1 :]))) if n_g else 0.0
            shrink = min(1.0, cap / max(big, 1e-300), FIT_GAIN_STEP_CAP / max(big_g, 1e-300))
            theta = theta + shrink * step
            if big < FIT_TOLERANCE_RAD and big_g < FIT_TOLERANCE_RAD:
                break
        if np.max(np.abs(_wrap(theta[:n_p] - phases_rad))) > np.radians(FIT_MAX_DEV_DEG) or not 0.05 < theta[n_p] < 2.0:
            return None
        g = g_start * np.exp(basis @ theta[n_p + 1 :])
        g /= g.mean()
        if np.max(np.abs(g / (g_start / g_start.mean()) - 1.0)) > FIT_MAX_GAIN_DEV:
            return None
        sigma_g = float("nan")
        if n_g:
            # Predicted rms error of the (log) gains: residual variance at the minimum times (J^T J)^-1.
            r0, jac = linearised(theta)
            try:
                cov = np.linalg.inv(jac.T @ jac)[n_p + 1 :, n_p + 1 :] * float(r0 @ r0) / n_idx
                sigma_g = float(np.sqrt(np.trace(basis @ cov @ basis.T) / n_p))
            except np.linalg.LinAlgError:
                pass
        return np.mod(theta[:n_p], 2.0 * np.pi), g, sigma_g

    def _overlap(self, k0_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices where both OTFs exceed 0.1 and the weights there; cached while k0 stays put."""

        def build(k0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            h0, h1 = self._otf_pair(k0)
            idx = np.flatnonzero((h0 > OVERLAP_OTF_MIN) & (h1 > OVERLAP_OTF_MIN))
            kabs1 = np.hypot(self._ky + k0[0], self._kx + k0[1]).ravel()[idx]
            notch1 = 1.0 - np.exp(-0.5 * (kabs1 / (NOTCH_FRACTION * self.otf.cutoff_cycles_per_um)) ** 2)
            h0i, h1i = h0.ravel()[idx], h1.ravel()[idx]
            # Numerator weight H0 H1 / W(k + k0): the shifted band +1 arrives weighted by the search weight W.
            return idx, np.stack([h0i / np.maximum(notch1, 1e-6), h1i * h1i])

        return self._per_k0(self._overlap_cache, k0_px, build)

    def side_band_snr(self, band1: np.ndarray, k0_px: np.ndarray) -> float:
        """Mean signal/noise power of band +1 (spectrum, any scale) over its super-resolution region; NaN when
        the camera samples too coarsely to measure the noise outside the OTF support."""

        def build(k0: np.ndarray) -> np.ndarray:
            far = np.hypot(self._ky - k0[0], self._kx - k0[1]).ravel()[self._inner_idx]
            return self._inner_idx[far > SIDE_BAND_OUTER * self.otf.cutoff_cycles_per_um]

        idx = self._per_k0(self._side_cache, k0_px, build)
        if idx.size == 0 or self._noise_idx.size == 0:
            return float("nan")
        flat = band1.ravel()
        sig = flat[idx]
        noise = flat[self._noise_idx]
        p_sig = float(np.mean(sig.real.astype(np.float64) ** 2 + sig.imag.astype(np.float64) ** 2))
        p_noise = float(np.mean(noise.real.astype(np.float64) ** 2 + noise.imag.astype(np.float64) ** 2))
        return p_sig / p_noise - 1.0 if p_noise > 0 else float("nan")

    def modulation(self, band0: np.ndarray, r1: np.ndarray, k0_px: np.ndarray) -> float:
        """Modulation depth of one angle from band 0 (spectrum) and the search-weighted band +1 (real space)."""
        ey, ex = self._phasor(k0_px[0], k0_px[1])
        shifted = sfft.fft2(r1 * ey[0][:, None] * ex[0][None, :], workers=self.workers)  # W B+1 at k + k0
        idx, w = self._overlap(k0_px)
        if idx.size == 0:
            return float("nan")
        b0 = band0.ravel()[idx].astype(np.complex128)
        noise = 0.0
        if self._noise_idx.size:
            vals = band0.ravel()[self._noise_idx]
            noise = float(np.mean(vals.real.astype(np.float64) ** 2 + vals.imag.astype(np.float64) ** 2))
        num = np.sum(np.conj(b0) * shifted.ravel()[idx] * w[0])
        den = np.sum((np.abs(b0) ** 2 - noise) * w[1])
        return float(np.abs(num) / den) if den > 0 else float("nan")

    # -------------------------------------------------------------------------------------------- public
    def estimate(
        self,
        frames: np.ndarray,
        previous: SimParameters | None = None,
        *,
        spectra: np.ndarray | None = None,
        gains: np.ndarray | None = None,
    ) -> SimParameters:
        """Estimate all parameters; a full annulus search without ``previous``, a local update with it.

        ``gains`` ``(A, P)``: start values of the frame gains (default: the frames' means over their angle's
        mean, :func:`~imcsr_live.recon.preprocess.mean_gains`); the overlap fit replaces them where it runs.

        The result is not guarded (see :class:`~imcsr_live.recon.tracker.ParameterTracker`); ``notes``
        records local refinements that ran into the edge of their search window.
        """
        with _BLAS.limit(limits=1, user_api="blas"):
            return self._estimate(frames, previous, spectra, gains)

    def _estimate(
        self,
        frames: np.ndarray,
        previous: SimParameters | None,
        spectra: np.ndarray | None,
        gains: np.ndarray | None,
    ) -> SimParameters:
        """A first pass per angle with the start gains, the frame gains combined over all angles, then each
        angle's phases again with the final gains."""
        spec = self.spectra(frames) if spectra is None else spectra
        n_a, n_p = self.n_angles, self.n_phases
        start = mean_gains(frames, n_a, n_p) if gains is None else gains
        g_start = np.array(start, dtype=np.float64).reshape(n_a, n_p)
        rows = [slice(a * n_p, (a + 1) * n_p) for a in range(n_a)]  # the frames of each angle
        angles = [self._estimate_angle(a, frames[r], spec[r], g_start[a], previous) for a, r in enumerate(rows)]
        g_fit = np.array([g if e.fit is None else e.fit.gains for e, g in zip(angles, g_start, strict=True)])
        fit_sigma = np.array([np.nan if e.fit is None else e.fit.gain_sigma for e in angles])  # NaN: no fit
        g_out = combine_gains(g_start, g_fit, fit_sigma)
        final = [self._final_phases(e, g) for e, g in zip(angles, g_out, strict=True)]
        moved = [a for a, e in enumerate(angles) if e.k0_jumped]
        notes = [f"angle {a}: k0 moved by more than 0.5 px since the last timepoint" for a in moved]
        return SimParameters(
            np.array([self._to_cycles(e.k0_px) for e in angles], dtype=np.float64),
            np.array([phases for phases, _ in final], dtype=np.float64),
            np.array([e.modulation for e in angles], dtype=np.float64),
            np.array([e.peak_to_noise for e in angles], dtype=np.float64),
            phase_sigma_rad=np.array([sigma for _, sigma in final], dtype=np.float64),
            side_band_snr=np.array([e.side_band_snr for e in angles], dtype=np.float64),
            gains=g_out,
            confident=not notes,
            notes=tuple(notes),
        )

    def _estimate_angle(
        self,
        a: int,
        frames_angle: np.ndarray,
        spec_angle: np.ndarray,
        gains: np.ndarray,
        previous: SimParameters | None,
    ) -> _AngleEstimate:
        """First pass over one angle with the start gains: k0, Wicker phases, modulation, SNR, overlap fit."""
        if previous is None:
            search = self._search_annulus(spec_angle, gains)
        else:
            search = self._search_near(spec_angle, gains, previous.k0_cycles_per_um[a], previous.phases_rad[a])
        k0_px = search.k0_px
        correlation = self._wicker_correlation(spec_angle, k0_px)
        phases, sigma = self._wicker_phases(correlation, gains)
        modulation = self.modulation(search.band0, search.band1_weighted, k0_px)
        snr = self.side_band_snr(search.band1, k0_px)
        weight = fit_weight(snr)
        fit = self._fit_angle(frames_angle, k0_px, phases, modulation, gains, snr) if weight >= FIT_MIN_WEIGHT else None
        return _AngleEstimate(
            k0_px=k0_px,
            k0_jumped=previous is not None and search.at_edge,
            correlation=correlation,
            phases=phases,
            phase_sigma=sigma,
            modulation=modulation,
            side_band_snr=snr,
            peak_to_noise=self._peak_to_noise(search.product, k0_px, search.peak),
            fit_weight=weight,
            fit=fit,
        )

    def _search_annulus(self, spec_angle: np.ndarray, gains: np.ndarray) -> _PeakSearch:
        """Start-up k0 search: the highest cross-correlation peak in the annulus, refined; then a second pass
        with the phases measured at that k0 (cleaner bands, better k0)."""
        nominal_steps = 2.0 * np.pi * np.arange(self.n_phases) / self.n_phases
        _, _, prod, _ = self._search_images(spec_angle, nominal_steps, gains)
        cc = np.abs(sfft.fft2(prod, workers=self.workers))
        cc[~self._annulus] = 0.0
        iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
        start = np.array([self._fy[iy], self._fx[ix]])
        k0_px, _, _ = self._refine(prod, start, START_LEVELS)
        first, _ = self.phases(spec_angle, k0_px, gains)
        b0, r1, prod, b1 = self._search_images(spec_angle, first, gains)
        k0_px, peak, at_edge = self._refine(prod, k0_px, ((0.05, 0.01),))
        return _PeakSearch(k0_px, peak, at_edge, b0, r1, prod, b1)

    def _search_near(
        self, spec_angle: np.ndarray, gains: np.ndarray, k0_cycles: np.ndarray, phases_rad: np.ndarray
    ) -> _PeakSearch:
        """Per-frame k0 update: a local refinement around the previous k0 with the previous phases."""
        start = self._to_px(k0_cycles)
        b0, r1, prod, b1 = self._search_images(spec_angle, phases_rad, gains)
        k0_px, peak, at_edge = self._refine(prod, start, UPDATE_LEVELS)
        return _PeakSearch(k0_px, peak, at_edge, b0, r1, prod, b1)

    def _fit_angle(
        self,
        frames_angle: np.ndarray,
        k0_px: np.ndarray,
        phases: np.ndarray,
        modulation: float,
        gains: np.ndarray,
        side_band_snr: float,
    ) -> _OverlapFit | None:
        """The overlap fit of one angle from Wicker's phases and the start gains; None where it did not run."""
        gram = self.fit_gram(frames_angle, k0_px)
        fitted = None if gram is None else self.overlap_fit(None, None, k0_px, phases, modulation, gains, gram=gram)
        if fitted is None or gram is None:
            return None
        fit_phases, fit_gains, gain_sigma = fitted
        return _OverlapFit(
            phases=fit_phases,
            gains=fit_gains,
            gain_sigma=float(gain_sigma * np.sqrt(1.0 + FIT_GAIN_SIGMA_SNR / side_band_snr)),
            gram=gram,
        )

    def _final_phases(self, angle: _AngleEstimate, gains: np.ndarray) -> tuple[np.ndarray, float]:
        """Phases and their predicted rms error with the final gains: Wicker's again, blended with the overlap
        fit (fitted again with the gains held where they are not the fitted ones)."""
        fit = angle.fit
        if fit is None:
            return angle.phases, angle.phase_sigma
        fit_phases = fit.phases
        if np.max(np.abs(gains / fit.gains - 1.0)) > 1e-7:
            # The final gains are not the fitted ones (noisy fit): phases again, with the gains held.
            refit = self.overlap_fit(
                None, None, angle.k0_px, fit.phases, angle.modulation, gains, fit_gains=False, gram=fit.gram
            )
            fit_phases = fit_phases if refit is None else refit[0]
        phases, sigma = self._wicker_phases(angle.correlation, gains)
        return np.mod(phases + angle.fit_weight * _wrap(fit_phases - phases), 2.0 * np.pi), sigma
