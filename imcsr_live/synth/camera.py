"""Scientific-camera noise model: shot noise, read noise, gain, offset, quantisation and saturation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import SynthError

UINT16_MAX = 65535


@dataclass(frozen=True)
class CameraParams:
    """sCMOS-like camera. ADU = round(gain * (Poisson(e) + N(0, read_noise^2)) + offset), clipped."""

    offset_adu: float = 100.0
    gain_adu_per_e: float = 1.0
    read_noise_e: float = 1.0  # rms, in electrons
    full_well_adu: int = UINT16_MAX  # saturation level (<= 65535)

    def __post_init__(self) -> None:
        if self.gain_adu_per_e <= 0:
            raise SynthError(f"camera gain must be > 0 ADU/e- (got {self.gain_adu_per_e})")
        if self.read_noise_e < 0:
            raise SynthError(f"camera read noise must be >= 0 e- (got {self.read_noise_e})")
        if not 0 < self.full_well_adu <= UINT16_MAX:
            raise SynthError(f"camera full well must be in 1..{UINT16_MAX} ADU (got {self.full_well_adu})")
        if not 0 <= self.offset_adu < self.full_well_adu:
            raise SynthError(f"camera offset must be in [0, full well) ADU (got {self.offset_adu})")


def expose(expected_e: np.ndarray, camera: CameraParams, rng: np.random.Generator) -> np.ndarray:
    """Noisy camera read-out of an expected photoelectron image (any shape).

    Steps: ``Poisson(max(expected, 0))`` electrons, plus Gaussian read noise (``read_noise_e`` rms), times
    ``gain_adu_per_e``, plus ``offset_adu``, rounded to the nearest integer and clipped to
    ``[0, full_well_adu]``; returned as uint16. Random draws: one Poisson array, then (if the read noise is
    non-zero) one standard-normal float32 array, both of the input's shape, from ``rng``.
    """
    lam = np.asarray(expected_e, dtype=np.float64)
    if not np.all(np.isfinite(lam)):
        raise SynthError("the expected photoelectron image contains NaN or inf; check the specimen and photon scale")
    electrons = rng.poisson(np.maximum(lam, 0.0))
    signal = electrons.astype(np.float32)
    if camera.read_noise_e > 0:
        noise = rng.standard_normal(lam.shape, dtype=np.float32)
        noise *= np.float32(camera.read_noise_e)
        signal += noise
    signal *= np.float32(camera.gain_adu_per_e)
    signal += np.float32(camera.offset_adu)
    np.rint(signal, out=signal)
    np.clip(signal, 0, camera.full_well_adu, out=signal)
    return signal.astype(np.uint16)
