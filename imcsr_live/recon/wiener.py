"""Wiener SIM reconstruction in torch (CPU or CUDA, same code), real-space-demodulation form.

For one angle with phases ``phi_p`` and modulation ``m`` the bands are ``B = M^+ D`` with
``M[p] = [1, (m/2) e^{i phi_p}, (m/2) e^{-i phi_p}]``; band +1 holds ``H(k) S(k - k0)`` and moves back to its
place by multiplying its (up-sampled) real-space image with ``e^{-i 2 pi k0 . x}``. Because band separation,
OTF weighting and zero-padding are linear, the whole reconstruction is

    out = F^-1[ post(k) F[ sum_a ( g0_a + 2 Re( e^{-i 2 pi k0_a . x} z_a(x) ) ) ] ]

with ``g0_a = up(F^-1[pre(k) sum_p c0_ap D_p])`` (all angles share one inverse FFT) and
``z_a = up(F^-1[pre(k) sum_p c+_ap D_p])``: one real and A complex inverse FFTs at 2N, and no pattern images.
``pre = H att`` (OTF times the attenuation notch) is fixed; ``post`` (apodisation / Wiener denominator) depends on
k0 only and is rebuilt when k0 moves by more than a tolerance; phases and modulation enter as 3 x P
coefficients and cost nothing to change. Intensities are on the widefield scale (photoelectrons per camera
pixel): the transfer matches the apodisation target in the mid band, so a flat object without attenuation
gives a flat output at the widefield level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.optics import frequency_grid, ideal_otf
from imcsr_live.recon.estimate import band_matrix
from imcsr_live.recon.otf import OtfModel
from imcsr_live.recon.params import SimParameters

K0_REBUILD_TOLERANCE_PX = 0.05  # post-filter rebuild threshold (a smooth function of k0)
PHASOR_REBUILD_TOLERANCE_PX = 0.002  # demodulation phasor rebuild threshold (<= 0.7 deg at the far edge)


@dataclass(frozen=True)
class WienerSettings:
    """Filter settings (fairSIM normalisation; ``[recon]`` table of the rig config)."""

    wiener: float = 0.05
    apodization_bend: float = 0.8
    attenuation: float = 0.99
    attenuation_fwhm_per_um: float = 1.2
    post_filter: str = "wiener"
    hifi_w1: float = 1.0  # HiFi-style first-step Wiener constant
    hifi_w2: float = 0.1  # HiFi-style second-step (equivalent-OTF deconvolution) constant

    def __post_init__(self) -> None:
        if self.post_filter not in POST_FILTERS:
            raise InputDataError(f"unknown post filter {self.post_filter!r}; choose one of {sorted(POST_FILTERS)}")
        if self.wiener <= 0 or self.hifi_w1 <= 0 or self.hifi_w2 <= 0:
            raise InputDataError("Wiener constants must be > 0")


def attenuation(k: np.ndarray, strength: float, fwhm_per_um: float) -> np.ndarray:
    """Notch ``1 - strength exp(-k^2 / (2 sigma^2))`` that suppresses each band's centre (out-of-focus light)."""
    sigma = fwhm_per_um / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    return 1.0 - strength * np.exp(-0.5 * (k / sigma) ** 2)


def support_radius(ky: np.ndarray, kx: np.ndarray, k0: np.ndarray, kc: float) -> np.ndarray:
    """Distance from the origin to the edge of the SIM passband (union of OTF discs) along each ``k``'s direction."""
    kabs = np.hypot(ky, kx)
    uy = np.where(kabs > 0, ky / np.maximum(kabs, 1e-30), 0.0)
    ux = np.where(kabs > 0, kx / np.maximum(kabs, 1e-30), 1.0)
    centres = [np.zeros(2)] + [s * np.asarray(c, dtype=np.float64) for c in k0 for s in (1.0, -1.0)]
    radius = np.zeros(np.broadcast_shapes(ky.shape, kx.shape))
    for cy, cx in centres:
        proj = cy * uy + cx * ux
        disc = kc * kc - (cy * cy + cx * cx) + proj * proj
        reach = np.where(disc >= 0, proj + np.sqrt(np.maximum(disc, 0.0)), 0.0)
        radius = np.maximum(radius, reach)
    return radius


def _wiener_post(den: np.ndarray, apod: np.ndarray, s: WienerSettings) -> np.ndarray:
    return apod / (den + s.wiener**2)


def _hifi_post(den: np.ndarray, apod: np.ndarray, s: WienerSettings) -> np.ndarray:
    # Step 1: strongly regularised Wiener -> spectrum with an "equivalent OTF" h_eq (smooth, no holes);
    # step 2: Wiener-deconvolve h_eq towards the apodised target. Both are multiplicative, so one filter.
    step1 = 1.0 / (den + s.hifi_w1**2)
    h_eq = den * step1
    return step1 * apod * h_eq / (h_eq * h_eq + s.hifi_w2**2)


POST_FILTERS: dict[str, Callable[[np.ndarray, np.ndarray, WienerSettings], np.ndarray]] = {
    "wiener": _wiener_post,
    "hifi": _hifi_post,
}


class WienerReconstructor:
    """Reconstructs pre-processed stacks ``(A*P, N, M)`` into ``(2N, 2M)`` SR frames with given parameters."""

    def __init__(
        self,
        raw_shape: tuple[int, int],
        pixel_size_um: float,
        otf: OtfModel,
        n_angles: int,
        n_phases: int,
        settings: WienerSettings | None = None,
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        ny, nx = (int(s) for s in raw_shape)
        if ny % 2 or nx % 2:
            raise InputDataError(f"raw frames must have even sizes (got {raw_shape})")
        self.raw_shape = (ny, nx)
        self.sr_shape = (2 * ny, 2 * nx)
        self.pixel_size_um = float(pixel_size_um)
        self.otf = otf
        self.n_angles, self.n_phases = n_angles, n_phases
        self.settings = settings or WienerSettings()
        self.device = torch.device(device)
        s = self.settings
        ky, kx = frequency_grid(self.raw_shape, self.pixel_size_um)
        pre = otf(ky, kx) * attenuation(np.hypot(ky, kx), s.attenuation, s.attenuation_fwhm_per_um)
        pre *= 4.0  # zero-padding N -> 2N keeps the mean intensity (fourier_resize convention)
        self._pre = torch.as_tensor(pre.astype(np.float32), device=self.device)
        self._pre_half = self._pre[:, : nx // 2 + 1].contiguous()
        sy = np.arange(self.sr_shape[0]) * (self.pixel_size_um / 2.0)
        sx = np.arange(self.sr_shape[1]) * (self.pixel_size_um / 2.0)
        self._sr_y, self._sr_x = sy, sx  # SR pixel centres in um (shared origin with camera pixel (0, 0))
        self._post: torch.Tensor | None = None
        self._post_k0: np.ndarray | None = None
        self._phasors: torch.Tensor | None = None
        self._phasor_k0: np.ndarray | None = None
        self._mix: torch.Tensor | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        self.params: SimParameters | None = None
        self.rebuilds = 0
        self.clip = True  # docs/method.md#sim-reconstruction: output clipped at 0; quality tools may switch it off

    # ------------------------------------------------------------------------------------------- filters
    def _build_post(self, k0: np.ndarray) -> None:
        s = self.settings
        ky, kx = frequency_grid(self.sr_shape, self.pixel_size_um / 2.0, rfft=True)
        den = np.zeros((ky.shape[0], kx.shape[1]))
        for a in range(self.n_angles):
            for sign in (0.0, 1.0, -1.0):
                qy, qx = ky + sign * k0[a, 0], kx + sign * k0[a, 1]
                h = self.otf(qy, qx)
                den += h * h * attenuation(np.hypot(qy, qx), s.attenuation, s.attenuation_fwhm_per_um)
        radius = support_radius(ky, kx, k0, self.otf.cutoff_cycles_per_um)
        rho = np.hypot(ky, kx) / np.maximum(radius, 1e-30)
        apod = np.where(rho < 1.0, np.power(ideal_otf(rho), s.apodization_bend), 0.0)
        post = POST_FILTERS[s.post_filter](den, apod, s)
        # The chain's transfer is den * post (times the object spectrum). Scale it to match the apodisation
        # target in the well-measured mid band (0.2-0.5 kc). Not at k = 0: the attenuation notch makes den
        # small there, so a DC normalisation would boost everything else by up to den0 / (den0 + w^2).
        # Without attenuation the output mean equals the widefield mean; with it, the lowest frequencies
        # (out-of-focus background) are suppressed on purpose.
        kabs = np.hypot(ky, kx)
        kc = self.otf.cutoff_cycles_per_um
        band = (kabs > 0.2 * kc) & (kabs < 0.5 * kc) & (apod > 0)
        gain = float(np.median((den * post)[band] / apod[band])) if band.any() else float(den[0, 0] * post[0, 0])
        post /= max(gain, 1e-30)
        self._post = torch.as_tensor(post.astype(np.float32), device=self.device)
        self._post_k0 = k0.copy()
        self.rebuilds += 1

    def set_parameters(self, params: SimParameters) -> None:
        """Use ``params`` from now on.

        The post-filter is rebuilt only when k0 moved by more than ``K0_REBUILD_TOLERANCE_PX``, the
        demodulation phasors when it moved by more than ``PHASOR_REBUILD_TOLERANCE_PX``; phases and
        modulation only change 2 x P coefficients per angle; so do the per-frame intensity gains
        (``params.gains``), which the band separation divides out.
        """
        if params.phases_rad.shape != (self.n_angles, self.n_phases):
            raise InputDataError(
                f"parameters for {params.phases_rad.shape} angles x phases do not match this reconstructor "
                f"({self.n_angles} x {self.n_phases})"
            )
        k0 = np.asarray(params.k0_cycles_per_um, dtype=np.float64)
        scale = np.asarray(self.raw_shape) * self.pixel_size_um
        if self._post_k0 is None or np.max(np.abs((k0 - self._post_k0) * scale)) > K0_REBUILD_TOLERANCE_PX:
            self._build_post(k0)
        if self._phasor_k0 is None or np.max(np.abs((k0 - self._phasor_k0) * scale)) > PHASOR_REBUILD_TOLERANCE_PX:
            self._build_phasors(k0)
        n_a, n_p = self.n_angles, self.n_phases
        coef0 = np.zeros((n_a, n_p))
        coef1 = np.zeros((n_a, n_p), dtype=np.complex128)
        gains = params.frame_gains()  # the frames' relative intensities are divided out here (ones if unknown)
        for a in range(n_a):
            m = float(params.modulation[a]) if np.isfinite(params.modulation[a]) else 1.0
            inv = band_matrix(params.phases_rad[a], max(m, 1e-3), gains[a])
            coef0[a] = inv[0].real
            coef1[a] = inv[1]
        # Mixing matrix for one real matmul: row 0 = band 0 (all angles summed), rows 1 + 2a / 2 + 2a = real /
        # imaginary part of band +1 of angle a.
        mix = np.zeros((1 + 2 * n_a, n_a * n_p))
        mix[0] = coef0.reshape(-1)
        for a in range(n_a):
            mix[1 + 2 * a, a * n_p : (a + 1) * n_p] = coef1[a].real
            mix[2 + 2 * a, a * n_p : (a + 1) * n_p] = coef1[a].imag
        self._mix = torch.as_tensor(mix.astype(np.float32), device=self.device)
        self.params = params

    def _build_phasors(self, k0: np.ndarray) -> None:
        """``e^{-i 2 pi k0_a . x}`` on the SR grid per angle (complex64), written in place (no reallocation:
        this runs whenever the per-frame update moves k0); cycles reduced mod 1 for float accuracy."""
        if self._phasors is None:
            self._phasors = torch.empty((self.n_angles, *self.sr_shape), dtype=torch.complex64, device=self.device)
        for a in range(self.n_angles):
            ey = np.exp(-2j * np.pi * np.mod(k0[a, 0] * self._sr_y, 1.0)).astype(np.complex64)
            ex = np.exp(-2j * np.pi * np.mod(k0[a, 1] * self._sr_x, 1.0)).astype(np.complex64)
            t_ey = torch.as_tensor(ey, device=self.device)[:, None]
            t_ex = torch.as_tensor(ex, device=self.device)[None, :]
            torch.mul(t_ey, t_ex, out=self._phasors[a])
        self._phasor_k0 = k0.copy()

    # ------------------------------------------------------------------------------------------- compute
    def _workspace(self) -> dict[str, torch.Tensor]:
        """Persistent buffers: fresh multi-MB allocations cost page faults on every call (and fragment GPU
        memory); the zero regions of the padded spectra are never written, so they stay zero."""
        if not self._buffers:
            ny, nx = self.raw_shape
            n_a = self.n_angles
            dev = self.device
            c64 = torch.complex64
            self._buffers = {
                "mix": torch.empty((1 + 2 * n_a, ny * nx), dtype=torch.float32, device=dev),
                "b1": torch.empty((n_a, ny, nx), dtype=c64, device=dev),
                "spec0": torch.empty((ny, nx // 2 + 1), dtype=c64, device=dev),
                "spec1": torch.empty((n_a, ny, nx), dtype=c64, device=dev),
                "pad0": torch.zeros((2 * ny, nx + 1), dtype=c64, device=dev),
                "pad1": torch.zeros((2 * ny, 2 * nx), dtype=c64, device=dev),
                "band": torch.empty((2 * ny, 2 * nx), dtype=c64, device=dev),
                "total": torch.empty(self.sr_shape, dtype=torch.float32, device=dev),
                "spect": torch.empty((2 * ny, nx + 1), dtype=c64, device=dev),
            }
        return self._buffers

    def _pad_into(self, spec: torch.Tensor, out: torch.Tensor, *, rfft: bool) -> torch.Tensor:
        """Copy an (N, M) full or (N, M/2+1) rfft spectrum into the zero-padded 2N x 2M buffer ``out``
        (the Nyquist row/column is dropped: the pre-filter is 0 there)."""
        ny, nx = self.raw_shape
        hy, hx = ny // 2, nx // 2
        out[:hy, :hx] = spec[:hy, :hx]
        out[2 * ny - hy + 1 :, :hx] = spec[hy + 1 :, :hx]
        if not rfft:
            out[:hy, 2 * nx - hx + 1 :] = spec[:hy, hx + 1 :]
            out[2 * ny - hy + 1 :, 2 * nx - hx + 1 :] = spec[hy + 1 :, hx + 1 :]
        return out

    @torch.no_grad()
    def reconstruct(self, frames: np.ndarray | torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """SR frame ``(2N, 2M)`` float32 on the reconstructor's device, clipped at 0.

        ``out`` (a float32 tensor of the SR shape on the same device) is filled and returned if given; the
        live loop passes one to avoid a fresh allocation per frame.
        """
        if self._post is None or self._mix is None or self._phasors is None:
            raise InputDataError("no SIM parameters set; call set_parameters() (or estimate them) first")
        x = torch.as_tensor(frames, device=self.device, dtype=torch.float32)
        n_a, n_p = self.n_angles, self.n_phases
        if x.shape != (n_a * n_p, *self.raw_shape):
            raise InputDataError(f"expected frames of shape {(n_a * n_p, *self.raw_shape)}, got {tuple(x.shape)}")
        ny, nx = self.raw_shape
        w = self._workspace()
        # Band separation is linear and pixel-wise: combine the frames in real space (one small matmul), then
        # transform one real image (band 0 of all angles) and one complex image per angle (band +1).
        torch.mm(self._mix, x.reshape(n_a * n_p, -1), out=w["mix"])
        b1 = torch.view_as_real(w["b1"])
        b1[..., 0].copy_(w["mix"][1::2].reshape(n_a, ny, nx))
        b1[..., 1].copy_(w["mix"][2::2].reshape(n_a, ny, nx))
        torch.fft.rfft2(w["mix"][0].reshape(ny, nx), out=w["spec0"])
        w["spec0"].mul_(self._pre_half)
        total = torch.fft.irfft2(self._pad_into(w["spec0"], w["pad0"], rfft=True), s=self.sr_shape, out=w["total"])
        torch.fft.fft2(w["b1"], out=w["spec1"])
        w["spec1"].mul_(self._pre)
        for a in range(n_a):
            band = torch.fft.ifft2(self._pad_into(w["spec1"][a], w["pad1"], rfft=False), out=w["band"])
            band.mul_(self._phasors[a])
            total.add_(torch.view_as_real(band)[..., 0], alpha=2.0)
        torch.fft.rfft2(total, out=w["spect"])
        w["spect"].mul_(self._post)
        if out is None:
            out = torch.empty(self.sr_shape, dtype=torch.float32, device=self.device)
        torch.fft.irfft2(w["spect"], s=self.sr_shape, out=out)
        return out.clamp_(min=0.0) if self.clip else out
