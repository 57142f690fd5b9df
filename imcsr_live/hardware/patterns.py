"""SIM illumination patterns as SLM/DMD images, and the inverse: which pattern an SLM image shows.

Geometry: the SLM is imaged onto the same field as the camera, so SLM pixel ``(i, j)`` sits at sample position
``(x, y) = (j, i) * slm_pixel_um`` with ``slm_pixel_um = camera_pixel_um * camera_width / slm_width``; its
pixel (0, 0) centre coincides with camera pixel (0, 0)'s (the convention of ``illumination.py``). The image of
pattern ``(a, p)`` is the grey-level sinusoid ``(1 + cos(2 pi k_a . x + phi_ap)) / 2`` scaled to the SLM's
range, with the same ``k_a`` and ``phi_ap`` the forward model uses, so a simulated camera that decodes the
displayed image renders exactly the frame the forward model would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.illumination import pattern_params

MIN_CONTRAST = 0.2  # below this an SLM image counts as uniform illumination


def slm_pixel_um(rig: RigConfig, camera_width: int, slm_width: int) -> float:
    """Size of one SLM pixel in the sample plane when the SLM fills the camera's field."""
    return rig.optics.pixel_size_um * camera_width / slm_width


def sim_pattern_images(rig: RigConfig, slm_shape: tuple[int, int], pixel_um: float) -> np.ndarray:
    """The rig's A*P SIM patterns as uint8 SLM images ``(A*P, H, W)``, angle-major (the running order)."""
    pattern = pattern_params(rig)
    k = pattern.k0_cycles_per_um() * pixel_um  # (A, 2) cycles per SLM pixel as (ky, kx)
    phases = pattern.nominal_phases_rad()
    h, w = slm_shape
    out = np.empty((pattern.n_angles * pattern.phases, h, w), dtype=np.uint8)
    for a in range(pattern.n_angles):
        # Reduce the per-axis phase to [0, 1) cycles before the cosine (accuracy on large SLMs).
        cyc_y = np.mod(k[a, 0] * np.arange(h), 1.0)[:, None]
        cyc_x = np.mod(k[a, 1] * np.arange(w), 1.0)[None, :]
        for p in range(pattern.phases):
            img = 127.5 * (1.0 + np.cos(2.0 * np.pi * (cyc_y + cyc_x) + phases[a, p]))
            out[a * pattern.phases + p] = np.rint(img).astype(np.uint8)
    return out


@dataclass(frozen=True)
class DecodedPattern:
    """What an SLM image illuminates the sample with."""

    angle_index: int | None  # None: no SIM pattern (uniform illumination)
    phase_rad: float  # pattern phase at the centre of camera pixel (0, 0)
    contrast: float  # modulation of the displayed sinusoid, 0..1 (1 = full-range sinusoid)
    brightness: float  # mean level as a fraction of the SLM's full range
    pattern_index: int | None  # a * P + p of the nearest nominal phase step (None if uniform)


class PatternDecoder:
    """Finds angle, phase and contrast of a sinusoidal SLM image by projecting it on the rig's wave vectors."""

    def __init__(self, rig: RigConfig, slm_shape: tuple[int, int], pixel_um: float) -> None:
        pattern = pattern_params(rig)
        self.phases = pattern.phases
        self.start_phases = pattern.start_phases_rad()
        k = pattern.k0_cycles_per_um() * pixel_um
        h, w = slm_shape
        self.shape = (h, w)
        # Separable conjugate exponentials: coefficient = ey^H (img) ex^* / N, two matrix-vector products.
        self._ey = [np.exp(-2j * np.pi * np.mod(k[a, 0] * np.arange(h), 1.0)) for a in range(len(k))]
        self._ex = [np.exp(-2j * np.pi * np.mod(k[a, 1] * np.arange(w), 1.0)) for a in range(len(k))]

    def decode(self, image: np.ndarray, full_scale: float) -> DecodedPattern:
        """Angle, phase, contrast and brightness of ``image`` (any numeric dtype, shape = the SLM's)."""
        img = np.asarray(image, dtype=np.float64)
        if img.shape != self.shape:
            raise ValueError(f"SLM image shape {img.shape} != decoder shape {self.shape}")
        mean = float(img.mean())
        brightness = mean / full_scale
        if mean <= 0:
            return DecodedPattern(None, 0.0, 0.0, 0.0, None)
        centred = img - mean
        n = img.size
        coeffs = [complex(ey @ centred @ ex) / n for ey, ex in zip(self._ey, self._ex, strict=True)]
        a = int(np.argmax([abs(c) for c in coeffs]))
        contrast = min(1.0, 2.0 * abs(coeffs[a]) / mean)
        if contrast < MIN_CONTRAST:
            return DecodedPattern(None, 0.0, contrast, brightness, None)
        phase = float(np.angle(coeffs[a])) % (2.0 * math.pi)
        step = 2.0 * math.pi / self.phases
        p = round(((phase - self.start_phases[a]) % (2.0 * math.pi)) / step) % self.phases
        return DecodedPattern(a, phase, contrast, brightness, a * self.phases + p)
