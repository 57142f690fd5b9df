"""Optical transfer functions and Fourier-grid helpers shared by the SIM forward model and the reconstruction.

Conventions
-----------
* Frequencies are in cycles per micrometre. An array of shape ``(Y, X)`` with pixel size ``p`` um has
  ``ky = fftfreq(Y, p)`` along axis 0 (rows) and ``kx = fftfreq(X, p)`` (or ``rfftfreq``) along axis 1.
* Spectra use numpy's unshifted FFT layout ("full": ``fft2``; "rfft": ``rfft2``, last axis halved) and
  numpy's default normalisation (forward unscaled, inverse divided by the number of samples).
* The incoherent in-focus OTF of a circular pupil, cutoff ``kc = 2 NA / lambda_em``:
  ``H(rho) = (2/pi) (acos(rho) - rho sqrt(1 - rho^2))`` for ``rho = |k| / kc <= 1``, 0 beyond, ``H(0) = 1``.
  Real objectives fall off faster than this ideal; an empirical factor ``damping ** rho`` (``damping`` in
  (0, 1], 1 = ideal) models it, in the spirit of the "curved" OTF approximations used in SIM software.
  In real space that factor is a convolution with a positive (Poisson-kernel) blur, so the PSF stays >= 0.
* A camera pixel is a square of side ``a`` that integrates the image: transfer ``sinc(kx a) sinc(ky a)`` with
  the normalised ``sinc(t) = sin(pi t) / (pi t)``.
"""

from __future__ import annotations

import numpy as np

# Mild by design: the OTF is multiplied by 0.7 at the cutoff and by ~0.84 at half the cutoff.
# Use 1.0 for the ideal diffraction-limited OTF, smaller values for a more aberrated objective.
DEFAULT_OTF_DAMPING = 0.7


def otf_cutoff_cycles_per_um(na: float, emission_wavelength_nm: float) -> float:
    """Incoherent cutoff ``kc = 2 NA / lambda_em`` in cycles/um."""
    if na <= 0 or emission_wavelength_nm <= 0:
        raise ValueError(f"NA and emission wavelength must be > 0 (got {na}, {emission_wavelength_nm} nm)")
    return 2.0 * na / (emission_wavelength_nm * 1e-3)


def frequency_grid(
    shape: tuple[int, int], pixel_size_um: float, *, rfft: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies (cycles/um) of an FFT of an image of ``shape`` with square pixels.

    Returns ``(ky, kx)`` as broadcastable float64 arrays of shape ``(Y, 1)`` and ``(1, X)`` (``(1, X//2+1)``
    with ``rfft=True``), in numpy's unshifted FFT order.
    """
    ny, nx = (int(s) for s in shape)
    if pixel_size_um <= 0:
        raise ValueError(f"pixel size must be > 0 (got {pixel_size_um} um)")
    ky = np.fft.fftfreq(ny, d=pixel_size_um)[:, None]
    kx = (np.fft.rfftfreq if rfft else np.fft.fftfreq)(nx, d=pixel_size_um)[None, :]
    return ky, kx


def radial_frequency(shape: tuple[int, int], pixel_size_um: float, *, rfft: bool = False) -> np.ndarray:
    """``|k|`` in cycles/um on the FFT grid of ``shape`` (float64, full or rfft layout)."""
    ky, kx = frequency_grid(shape, pixel_size_um, rfft=rfft)
    return np.hypot(ky, kx)


def ideal_otf(rho: np.ndarray | float) -> np.ndarray:
    """Diffraction-limited incoherent OTF of a circular pupil at normalised radius ``rho = |k| / kc``.

    ``(2/pi) (acos rho - rho sqrt(1 - rho^2))`` for ``0 <= rho <= 1``, 0 for ``rho > 1``; ``H(0) = 1``.
    """
    r = np.abs(np.asarray(rho, dtype=np.float64))
    rc = np.minimum(r, 1.0)
    h = (2.0 / np.pi) * (np.arccos(rc) - rc * np.sqrt(1.0 - rc * rc))
    return np.where(r < 1.0, h, 0.0)


def otf_at(
    k_cycles_per_um: np.ndarray | float,
    na: float,
    emission_wavelength_nm: float,
    *,
    damping: float = DEFAULT_OTF_DAMPING,
) -> np.ndarray:
    """OTF ``H(rho) * damping ** rho`` at radial frequencies ``|k|`` (cycles/um); 1 at ``k = 0``."""
    if not 0 < damping <= 1:
        raise ValueError(f"OTF damping must be in (0, 1] (got {damping})")
    rho = np.abs(np.asarray(k_cycles_per_um, dtype=np.float64)) / otf_cutoff_cycles_per_um(na, emission_wavelength_nm)
    return ideal_otf(rho) * np.power(damping, np.minimum(rho, 1.0))


def otf_2d(
    shape: tuple[int, int],
    pixel_size_um: float,
    na: float,
    emission_wavelength_nm: float,
    *,
    damping: float = DEFAULT_OTF_DAMPING,
    rfft: bool = False,
) -> np.ndarray:
    """OTF on the FFT grid of an image of ``shape`` (float64, full or rfft layout, unshifted)."""
    return otf_at(radial_frequency(shape, pixel_size_um, rfft=rfft), na, emission_wavelength_nm, damping=damping)


def pixel_sinc(
    shape: tuple[int, int],
    pixel_size_um: float,
    camera_pixel_um: float | None = None,
    *,
    rfft: bool = False,
) -> np.ndarray:
    """Transfer function of integration over a square camera pixel of side ``camera_pixel_um``.

    Evaluated on the FFT grid of ``shape`` with sampling ``pixel_size_um`` (the camera pixel itself when
    ``camera_pixel_um`` is None): ``sinc(kx a) sinc(ky a)``, 1 at ``k = 0``.
    """
    a = pixel_size_um if camera_pixel_um is None else camera_pixel_um
    ky, kx = frequency_grid(shape, pixel_size_um, rfft=rfft)
    return np.sinc(ky * a) * np.sinc(kx * a)


def resize_fft_axis(x: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Crop or zero-pad one full-layout FFT axis from ``n_in`` to ``n_out`` bins (no rescaling).

    Even-size Nyquist bins: on a crop the two input bins that fold onto the output Nyquist bin are summed;
    on a pad the input Nyquist bin is split in halves between +N/2 and -N/2. Both keep a real signal real and
    make crop(pad(x)) == x.
    """
    n_in = x.shape[axis]
    if n_out == n_in:
        return x
    m = min(n_in, n_out)
    n_pos = (m + 1) // 2  # bins 0 .. n_pos-1, strictly below Nyquist
    n_neg = (m - 1) // 2  # bins -n_neg .. -1
    out_shape = list(x.shape)
    out_shape[axis] = n_out
    out = np.zeros(out_shape, dtype=x.dtype)
    xs = np.moveaxis(x, axis, 0)
    os_ = np.moveaxis(out, axis, 0)
    os_[:n_pos] = xs[:n_pos]
    if n_neg:
        os_[n_out - n_neg :] = xs[n_in - n_neg :]
    if m % 2 == 0:
        h = m // 2
        if n_out < n_in:  # output Nyquist collects +h and -h of the input
            os_[h] = xs[h] + xs[n_in - h]
        else:  # input Nyquist is split between +h and -h of the output
            os_[h] = 0.5 * xs[h]
            os_[n_out - h] = 0.5 * xs[h]
    return out


def _resize_rfft_last(x: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """Crop or pad the halved last axis of an ``rfft2`` spectrum from real length ``n_in`` to ``n_out``."""
    if n_out == n_in:
        return x
    out = np.zeros((*x.shape[:-1], n_out // 2 + 1), dtype=x.dtype)
    m = min(n_in, n_out)
    out[..., : (m + 1) // 2] = x[..., : (m + 1) // 2]
    if m % 2 == 0:
        h = m // 2
        col = x[..., h]
        if n_out < n_in:
            # X[ky, -h] = conj(X[-ky, h]) for a real signal: fold it onto the output Nyquist column.
            partner = np.conj(np.roll(np.flip(col, axis=-1), 1, axis=-1))
            out[..., h] = col + partner
        else:
            out[..., h] = 0.5 * col
    return out


def fourier_resize(spectrum: np.ndarray, out_shape: tuple[int, int], *, rfft_width: int | None = None) -> np.ndarray:
    """Resample a 2D spectrum (last two axes) to ``out_shape`` by Fourier cropping or zero-padding.

    ``spectrum`` is in full ``fft2`` layout, or in ``rfft2`` layout when ``rfft_width`` (the real length of
    the last axis) is given; the result uses the same layout for ``out_shape``. Values are rescaled by
    ``prod(out_shape) / prod(in_shape)`` so that the inverse FFT at the new size preserves intensities (a
    constant image stays the same constant). Samples of the output sit at the same physical positions as
    input samples ``0, n_in/n_out, 2 n_in/n_out, ...`` (shared origin at sample 0). Exact (band-limited
    interpolation / decimation) for content strictly below both Nyquist frequencies.
    """
    ny_in = spectrum.shape[-2]
    nx_in = spectrum.shape[-1] if rfft_width is None else int(rfft_width)
    ny_out, nx_out = (int(s) for s in out_shape)
    if rfft_width is not None and spectrum.shape[-1] != nx_in // 2 + 1:
        raise ValueError(f"rfft spectrum width {spectrum.shape[-1]} does not match real width {nx_in}")
    out = spectrum
    if rfft_width is None:
        out = resize_fft_axis(out, nx_out, axis=out.ndim - 1)
    else:
        out = _resize_rfft_last(out, nx_in, nx_out)
    out = resize_fft_axis(out, ny_out, axis=out.ndim - 2)
    scale = (ny_out * nx_out) / (ny_in * nx_in)
    if out is spectrum:
        out = out.copy()
    out *= np.asarray(scale, dtype=out.real.dtype)
    return out
