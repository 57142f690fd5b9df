"""The synthetic microscope world: a moving specimen imaged by the SIM forward model, one timepoint at a time.

This is what the simulated backend, the demo, ``imcsr-live synth`` and the synthetic training data run on.
Randomness comes from one seed split into independent streams (specimen motion, camera noise) so that the
same seed always gives the same time-lapse, and changing e.g. the photon level does not change the specimen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import SynthError
from imcsr_live.illumination import pattern_params
from imcsr_live.synth.camera import CameraParams
from imcsr_live.synth.forward import OpticsParams, SimForwardModel
from imcsr_live.synth.specimen import Specimen, SpecimenParams

# Photon level = expected photoelectrons at the 99.9th percentile of the noiseless widefield frame, fixed at the
# first timepoint like a real exposure setting. SNR presets in the spirit of BioSR's levels.
SNR_PRESETS_PHOTONS: dict[str, float] = {"medium": 100.0, "high": 300.0, "very-high": 1000.0}
PHOTON_PERCENTILE = 99.9


class SpecimenModel(Protocol):
    """What the synthetic microscope needs of a specimen (every world implements it)."""

    time_s: float

    def render(self) -> np.ndarray:
        """Per-structure truth density now, float32 ``(C, H, W)``, non-negative, channels in structure order."""
        ...

    def advance(self, dt_s: float) -> None:
        """Let the specimen evolve for ``dt_s`` seconds."""
        ...

    def background(self) -> np.ndarray | None:
        """Unlabelled light now (autofluorescence, out-of-focus haze of no structure), ``(H, W)`` or None.

        It reaches the camera but belongs to no structure, so it is in the raw frames and not in the truth.
        """
        ...


SpecimenFactory = Callable[..., SpecimenModel]


def _default_world(
    structures: Sequence[str],
    shape: tuple[int, int],
    pixel_size_um: float,
    rng: np.random.Generator,
    params: SpecimenParams | None = None,
) -> SpecimenModel:
    return Specimen(structures, shape, pixel_size_um, seed=rng, params=params)


def _lazy_world(module: str, cls: str) -> SpecimenFactory:
    """A factory that imports its world's module on first use (the other worlds cost nothing at start-up)."""

    def factory(
        structures: Sequence[str],
        shape: tuple[int, int],
        pixel_size_um: float,
        rng: np.random.Generator,
        params: SpecimenParams | None = None,
    ) -> SpecimenModel:
        specimen_type = getattr(importlib.import_module(module), cls)
        return specimen_type(structures, shape, pixel_size_um, seed=rng)

    return factory


# Synthetic worlds by name. "default": the project's original cells; "randomised": the domain-randomised
# training world (many morphology families per structure); "independent": a separately written generator (a
# test world at first, now a quarter of the shipped model's training cells: [data] mix); "heldout": a third
# generator written without reading the others and never tuned against, for evaluation only (the training config
# does not accept it).
WORLDS: dict[str, SpecimenFactory] = {
    "default": _default_world,
    "randomised": _lazy_world("imcsr_live.synth.randomised", "RandomisedSpecimen"),
    "independent": _lazy_world("imcsr_live.synth.independent", "IndependentSpecimen"),
    "heldout": _lazy_world("imcsr_live.synth.heldout", "HeldoutSpecimen"),
}


def make_specimen(
    world: str,
    structures: Sequence[str],
    shape: tuple[int, int],
    pixel_size_um: float,
    rng: np.random.Generator,
    params: SpecimenParams | None = None,
) -> SpecimenModel:
    """A specimen of the named world (``params`` only shapes the default world)."""
    factory = WORLDS.get(world)
    if factory is None:
        raise SynthError(f"unknown synthetic world {world!r}; choose one of {', '.join(WORLDS)}")
    return factory(structures, shape, pixel_size_um, rng, params)


@dataclass(frozen=True)
class WorldSettings:
    """Everything about the synthetic world that the rig TOML does not say."""

    raw_shape: tuple[int, int] = (512, 512)
    photons: float = 1000.0
    seed: int = 0
    oversample: int = 2  # truth grid / camera grid; 2 = the SR grid
    phase_jitter_deg: float = 1.0
    camera: CameraParams = field(default_factory=CameraParams)
    specimen: SpecimenParams | None = None
    world: str = "default"  # see WORLDS

    def __post_init__(self) -> None:
        if self.world not in WORLDS:
            raise SynthError(f"unknown synthetic world {self.world!r}; choose one of {', '.join(WORLDS)}")
        if self.photons <= 0:
            raise SynthError(f"photons must be > 0 (got {self.photons}); try 100 (medium SNR) to 1000 (very high)")
        if min(self.raw_shape) < 32 or any(s % 2 for s in self.raw_shape):
            raise SynthError(f"raw frame size {self.raw_shape} must be even and at least 32 x 32 pixels")
        if self.oversample not in (1, 2, 4):
            raise SynthError(f"oversample must be 1, 2 or 4 (got {self.oversample})")


@dataclass
class SynthTimepoint:
    """One simulated timepoint with everything known about it."""

    index: int
    time_s: float
    raw: np.ndarray  # uint16 (A*P, Y, X), angle-major
    widefield: np.ndarray  # float32 (Y, X), noiseless expected photoelectrons
    ground_truth: np.ndarray  # float32 (C, 2Y, 2X), per-structure SIM-resolution truth, photoelectron units
    phases_rad: np.ndarray  # (A, P) true pattern phases
    k0_cycles_per_um: np.ndarray  # (A, 2) true pattern wave vectors
    modulation: float
    photon_scale: float


def _with_background(truth: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """The light the camera sees: the structures plus any unlabelled background as one more channel."""
    if background is None:
        return truth
    return np.concatenate([truth, np.asarray(background, np.float32)[None]])


def optics_params(rig: RigConfig) -> OpticsParams:
    """Forward-model optics from the rig config."""
    return OpticsParams(
        na=rig.optics.na,
        emission_wavelength_nm=rig.optics.emission_wavelength_nm,
        pixel_size_um=rig.optics.pixel_size_um,
    )


class SyntheticMicroscope:
    """A specimen that moves between timepoints, imaged as raw SIM stacks with camera noise."""

    def __init__(self, rig: RigConfig, settings: WorldSettings | None = None) -> None:
        self.rig = rig
        self.settings = settings or WorldSettings()
        if rig.sim.order != "angle-major":
            raise SynthError('the simulated microscope produces angle-major stacks; set [sim] order = "angle-major"')
        specimen_seq, noise_seq = np.random.SeedSequence(self.settings.seed).spawn(2)
        s = self.settings
        truth_shape = (s.raw_shape[0] * s.oversample, s.raw_shape[1] * s.oversample)
        self.specimen = make_specimen(
            s.world,
            rig.structure_names,
            truth_shape,
            rig.optics.pixel_size_um / s.oversample,
            np.random.default_rng(specimen_seq),
            params=s.specimen,
        )
        self.forward = SimForwardModel(
            optics_params(rig),
            pattern_params(rig, s.phase_jitter_deg),
            s.raw_shape,
            oversample=s.oversample,
            camera=s.camera,
        )
        self._noise_rng = np.random.default_rng(noise_seq)
        self._photon_scale: float | None = None
        self._index = 0

    @property
    def structure_names(self) -> list[str]:
        return self.rig.structure_names

    @property
    def sr_pixel_size_um(self) -> float:
        return self.rig.optics.pixel_size_um / 2

    def next_timepoint(self, dt_s: float | None = None, channels: Sequence[int] | None = None) -> SynthTimepoint:
        """Image the specimen now, then let it move on by ``dt_s`` (default: the acquisition interval).

        ``channels`` images only those structures (a per-structure "real colour" stack, as a lab records for
        training ground truth); the photon scale stays the one calibrated on the whole specimen.
        """
        truth = self.specimen.render()
        background = self.specimen.background()
        if self._photon_scale is None:
            self._photon_scale = self._calibrate(_with_background(truth, background))
        if channels is not None:
            truth = truth[list(channels)]
        # Unlabelled light reaches the camera but is no structure's truth.
        frame = self.forward.simulate(_with_background(truth, background), self._photon_scale, self._noise_rng)
        gt = self.forward.sr_ground_truth(truth) * np.float32(self._photon_scale)
        point = SynthTimepoint(
            index=self._index,
            time_s=self.specimen.time_s,
            raw=frame.raw,
            widefield=frame.widefield,
            ground_truth=gt.astype(np.float32, copy=False),
            phases_rad=frame.phases_rad,
            k0_cycles_per_um=frame.k0_cycles_per_um,
            modulation=frame.modulation,
            photon_scale=self._photon_scale,
        )
        self.specimen.advance(self.rig.acquisition.interval_s if dt_s is None else dt_s)
        self._index += 1
        return point

    def _calibrate(self, truth: np.ndarray) -> float:
        """Photon scale that puts the widefield frame's 99.9th percentile at the requested photon level."""
        _, widefield, _ = self.forward.expected_images(truth)
        level = float(np.percentile(widefield, PHOTON_PERCENTILE))
        if level <= 0:
            raise SynthError("the synthetic specimen rendered an empty field; try another seed or a larger frame")
        return self.settings.photons / level
