"""The reconstruction stage of the live pipeline: raw stack -> guarded parameters -> SR frame.

``Reconstructor`` owns the per-rig state (OTF, filters, last good parameters) and picks the estimation path:
a full start-up search on the first stack, then either the cheap per-frame update (``[recon] update =
"per-frame"``) or nothing (``"fixed"``), or never (parameters given by the caller).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from imcsr_live.config import RigConfig, check_frame_budget
from imcsr_live.errors import InputDataError
from imcsr_live.recon.estimate import ParameterEstimator
from imcsr_live.recon.otf import OtfModel
from imcsr_live.recon.params import SimParameters, nominal_parameters
from imcsr_live.recon.preprocess import check_raw_shape, edge_taper, preprocess
from imcsr_live.recon.tracker import GuardSettings, ParameterTracker
from imcsr_live.recon.wiener import WienerReconstructor, WienerSettings

#: Memory the reconstruction holds per raw camera pixel (nine float32 frames, their spectra, the SR-size band
#: arrays and filters, 4x the pixels each): a generous bound, checked against free memory before building.
RECON_BYTES_PER_RAW_PIXEL = 1024


@dataclass
class SRFrame:
    """One reconstructed timepoint."""

    index: int
    sr: np.ndarray  # float32 (2Y, 2X), photoelectrons per camera-pixel area (the widefield scale)
    widefield: np.ndarray  # float32 (Y, X), mean of the raw frames minus the camera offset
    params: SimParameters  # parameters used (after the guards)
    warnings: tuple[str, ...] = ()  # input problems that did not stop the reconstruction (e.g. saturation)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def low_confidence(self) -> bool:
        """True when a guard fired or the input was flagged: look at ``params.notes`` and ``warnings``."""
        return not self.params.confident or bool(self.warnings)


def wiener_settings(rig: RigConfig) -> WienerSettings:
    r = rig.recon
    return WienerSettings(
        wiener=r.wiener,
        apodization_bend=r.apodization_bend,
        attenuation=r.attenuation,
        attenuation_fwhm_per_um=r.attenuation_fwhm_per_um,
        post_filter=r.post_filter,
    )


def model_otf(rig: RigConfig) -> OtfModel:
    """The rig's model OTF (NA, emission wavelength, pixel size, ``[recon] otf_damping``)."""
    o = rig.optics
    return OtfModel.from_optics(o.na, o.emission_wavelength_nm, o.pixel_size_um, damping=rig.recon.otf_damping)


class Reconstructor:
    """Raw SIM stacks -> :class:`SRFrame`, keeping parameters and filters between timepoints.

    Parameters
    ----------
    rig
        Rig config (optics, sim pattern, ``[recon]`` settings).
    device
        torch device of the Wiener stage ("cpu", "cuda", ...). Estimation runs in numpy on the CPU.
    otf
        Measured OTF replacing the model (see :class:`OtfModel`), or None.
    params
        Fixed parameters to use instead of estimating them (e.g. from ``--params-in`` or a calibration).
    update
        Overrides ``[recon] update``.
    """

    def __init__(
        self,
        rig: RigConfig,
        *,
        device: str | torch.device = "cpu",
        otf: OtfModel | None = None,
        params: SimParameters | None = None,
        update: str | None = None,
        guards: GuardSettings | None = None,
        workers: int = -1,
    ) -> None:
        if rig.sim.order != "angle-major":
            raise InputDataError('only angle-major stacks are supported; set [sim] order = "angle-major"')
        self.rig = rig
        self.device = torch.device(device)
        self.otf = otf or model_otf(rig)
        self.fixed_params = params
        self.update = update or rig.recon.update
        if self.update not in ("per-frame", "fixed"):
            raise InputDataError(f'update must be "per-frame" or "fixed" (got {self.update!r})')
        self.guards = guards
        self.workers = workers
        self.n_angles, self.n_phases = rig.sim.angles, rig.sim.phases
        self.nominal = nominal_parameters(rig.sim.angles_deg, rig.sim.period_um, rig.sim.phases, rig.sim.modulation)
        self.raw_shape: tuple[int, int] | None = None
        self._taper: np.ndarray | None = None
        self._estimator: ParameterEstimator | None = None
        self._tracker: ParameterTracker | None = None
        self._wiener: WienerReconstructor | None = None
        self._current: SimParameters | None = None
        self._gain_correction: np.ndarray | None = None  # fitted / frame-mean gains of the last estimate
        self._index = 0

    @property
    def n_frames(self) -> int:
        return self.n_angles * self.n_phases

    def _setup(self, raw_shape: tuple[int, int]) -> None:
        """Build the parts for ``raw_shape``; the new size is recorded only once all of them exist, so a failure
        (e.g. out of memory) leaves the reconstructor as it was and the next stack tries again."""
        if self.raw_shape == raw_shape and self._wiener is not None:
            return
        check_frame_budget(raw_shape, RECON_BYTES_PER_RAW_PIXEL, "SIM reconstruction")
        p = self.rig.optics.pixel_size_um
        taper = edge_taper(raw_shape)
        estimator = ParameterEstimator(raw_shape, p, self.otf, self.n_angles, self.n_phases, workers=self.workers)
        tracker = ParameterTracker(self.nominal, raw_shape, p, self.guards)
        wiener = WienerReconstructor(
            raw_shape, p, self.otf, self.n_angles, self.n_phases, wiener_settings(self.rig), device=self.device
        )
        self._taper, self._estimator, self._tracker, self._wiener = taper, estimator, tracker, wiener
        self.raw_shape = raw_shape
        self._current = None

    def reset(self) -> None:
        """Forget the parameters: the next stack gets a full start-up search."""
        self._current = None
        self._gain_correction = None
        if self._tracker is not None:
            self._tracker.reset()

    @property
    def parameters(self) -> SimParameters | None:
        """The parameters used for the last reconstruction."""
        return self._current

    def reconstruct(self, raw: np.ndarray, index: int | None = None) -> SRFrame:
        """Reconstruct one raw stack ``(A*P, Y, X)``; estimates or updates the parameters as configured."""
        arr = np.asarray(raw)
        if arr.ndim != 3:
            raise InputDataError(
                f"a raw SIM stack must have shape ({self.n_frames}, Y, X); got {arr.shape}. For a time-lapse "
                "pass one timepoint at a time"
            )
        check_raw_shape(arr, self.n_frames)  # before anything is built for this size
        self._setup((int(arr.shape[1]), int(arr.shape[2])))
        if self._estimator is None or self._tracker is None or self._wiener is None:  # pragma: no cover - _setup
            raise InputDataError(f"the reconstruction could not be set up for {arr.shape[1]} x {arr.shape[2]} frames")
        t0 = time.perf_counter()
        prep = preprocess(arr, self.n_angles, self.n_phases, self.rig.recon.camera_offset_adu, taper=self._taper)
        t1 = time.perf_counter()
        # Frame gains (lamp / laser fluctuations) belong to this timepoint: fitted with the parameters, else
        # the frame means corrected by the specimen's share found at the last estimate (ones for given params).
        if self.fixed_params is not None:
            params = replace(self.fixed_params, gains=prep.mean_gains)
        elif self._current is None or self.update == "per-frame":
            previous = self._tracker.last_good
            est = self._estimator.estimate(prep.frames, previous, gains=prep.mean_gains)
            params = replace(self._tracker.accept(est), gains=est.frame_gains())
            self._gain_correction = est.frame_gains() / prep.mean_gains
        else:
            corr = self._gain_correction if self._gain_correction is not None else 1.0
            gains = prep.mean_gains * corr
            params = replace(self._current, gains=gains / gains.mean(axis=1, keepdims=True))
        t2 = time.perf_counter()
        self._wiener.set_parameters(params)
        sr = self._wiener.reconstruct(prep.frames)
        if sr.device.type == "cuda":
            torch.cuda.synchronize(sr.device)
        sr_np = sr.cpu().numpy()
        t3 = time.perf_counter()
        self._current = params
        idx = self._index if index is None else index
        self._index = idx + 1
        return SRFrame(
            index=idx,
            sr=sr_np,
            widefield=prep.widefield,
            params=params,
            warnings=prep.warnings,
            timings_s={"preprocess": t1 - t0, "estimate": t2 - t1, "reconstruct": t3 - t2},
        )
