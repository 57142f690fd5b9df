"""Live validation: every K-th timepoint, the real per-structure images next to the separated ones.

On a multi-colour sample (each structure in its own colour) the rig can image every structure alone by switching
its excitation preset. Every ``every``-th timepoint (grid slots 0, K, 2K, ...) the acquisition thread takes, after
the live stack, one SIM stack per structure's preset (:func:`~imcsr_live.hardware.training.acquire_training_timepoint`,
which restores the live preset); the reconstruction thread reconstructs each with its own
:class:`~imcsr_live.recon.reconstructor.Reconstructor` (one per structure, its own estimated parameters); the
separation thread scores the separated channels of that timepoint against them exactly as ``imcsr-live evaluate``
does (:func:`~imcsr_live.model.metrics.scored_pair`: percentile normalisation, linear fit, Pearson's
correlation) and keeps the error map (separated minus real, in those normalised units).

The extra stacks are not timepoints: they are never counted as acquired or dropped. Any failure (a preset gone,
a stack that times out, a reconstruction that fails) costs only that validation: one line in the log, and live
imaging goes on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.hardware.base import MicroscopeBackend, RawStack, SupportsPresets
from imcsr_live.hardware.training import acquire_training_timepoint
from imcsr_live.model.metrics import pcc, scored_pair
from imcsr_live.pipeline.structure_recon import StructureReconstructors

#: Longest side of the error maps kept for the window (strided; the scores use every pixel).
DISPLAY_SIDE = 512


class ValidationUnavailableError(InputDataError):
    """The rig cannot validate live (no excitation preset per structure)."""


class ValidationSettings(BaseModel):
    """How often to validate, and which excitation preset images each structure alone (model order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 1 = every timepoint (the cadence then suffers most); 100000 timepoints at 2 s are over two days.
    every: int | None = Field(default=None, ge=1, le=100_000, description="validate grid slots 0, K, 2K, ...")
    presets: dict[str, str] = Field(min_length=1, description="structure name -> excitation preset")
    #: A channel whose PCC falls below this is warned about in the log (0 = never).
    warn_below_pcc: float = Field(default=0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _presets_named(self) -> ValidationSettings:
        if any(not name or not preset for name, preset in self.presets.items()):
            raise ValueError("every structure needs a non-empty preset name")
        return self

    @property
    def names(self) -> list[str]:
        return list(self.presets)

    def due(self, slot: int) -> bool:
        """True for the grid slots that are validated (0, K, 2K, ...)."""
        return self.every is not None and slot % self.every == 0


def resolve_presets(rig: RigConfig, backend: MicroscopeBackend, purpose: str = "live validation") -> dict[str, str]:
    """Structure -> excitation preset for an opened backend, or :class:`ValidationUnavailableError` (one line
    starting with ``purpose``).

    A structure's preset is its ``preset`` in the rig TOML, else a preset of the structure's own name (the
    simulated microscope has those).
    """
    if not isinstance(backend, SupportsPresets):
        raise ValidationUnavailableError(
            f"{purpose} needs a rig that switches excitation presets; the {type(backend).__name__} cannot"
        )
    available = list(backend.channel_presets())
    presets: dict[str, str] = {}
    for structure in rig.structures:
        preset = structure.preset or (structure.name if structure.name in available else None)
        if preset is None:
            raise ValidationUnavailableError(
                f"{purpose} needs an excitation preset per structure: {structure.name} has none; add "
                f'preset = "..." under its [[structures]] in the rig TOML (presets: {", ".join(available) or "none"})'
            )
        if preset not in available:
            raise ValidationUnavailableError(
                f"{purpose}: preset {preset!r} of {structure.name} is not defined on this rig "
                f"(presets: {', '.join(available) or 'none'})"
            )
        presets[structure.name] = preset
    return presets


@dataclass
class ValidationStacks:
    """The per-structure stacks of one validated timepoint, as the acquisition thread took them."""

    index: int
    stacks: dict[str, RawStack]  # by structure name, model order
    acquire_s: float


@dataclass
class RealImages:
    """The reconstructed per-structure images of one validated timepoint."""

    index: int
    images: np.ndarray  # float32 (C, 2H, 2W), model order
    seconds: dict[str, float]  # acquire, reconstruct


@dataclass(frozen=True)
class ValidationResult:
    """One validated timepoint: per-channel PCC, error maps, the real images and what it cost."""

    index: int
    names: tuple[str, ...]
    pcc: tuple[float, ...]
    error: np.ndarray  # float32 (C, 2H, 2W): separated minus real, in evaluate's normalised units
    real: np.ndarray  # float32 (C, 2H, 2W): the real per-structure SR images
    seconds: dict[str, float]  # acquire, reconstruct, score

    def display_error(self, side: int = DISPLAY_SIDE) -> np.ndarray:
        """The error maps strided down to at most ``side`` pixels a side (for the window)."""
        step = max(1, -(-max(self.error.shape[-2:]) // side))
        return np.ascontiguousarray(self.error[:, ::step, ::step])

    def to_dict(self) -> dict[str, Any]:
        """The provenance of one validated timepoint (a line of ``*.timepoints.jsonl``)."""
        return {
            "pcc": {n: _finite(v) for n, v in zip(self.names, self.pcc, strict=True)},
            "cost_ms": {k: round(v * 1e3, 2) for k, v in self.seconds.items()},
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def score(separated: np.ndarray, real: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Per-channel PCC (as ``evaluate``) and error maps (separated minus real, normalised) of ``(C, H, W)`` images."""
    sep = np.asarray(separated)
    ref = np.asarray(real)
    if sep.shape != ref.shape or sep.ndim != 3:
        raise ValueError(f"separated {sep.shape} and real {ref.shape} images must both be (C, H, W)")
    values, maps = [], []
    for c in range(sep.shape[0]):
        pred_t, gt_n = scored_pair(sep[c], ref[c])
        values.append(pcc(pred_t, gt_n))
        maps.append((pred_t - gt_n).astype(np.float32))
    return values, np.stack(maps)


@dataclass(frozen=True)
class ValidationState:
    """What the window shows: the PCC trend, the newest result, and how validation is set."""

    every: int | None
    names: tuple[str, ...]
    history: tuple[tuple[int, tuple[float, ...]], ...]  # (timepoint, per-channel PCC)
    newest: ValidationResult | None
    failures: int


@dataclass
class Validator:
    """Validation of one live run; the three pipeline stages call :meth:`take`, :meth:`reconstruct`, :meth:`compare`.

    ``report(message)`` logs one line (the pipeline's event log); no method raises for a failed validation.
    """

    settings: ValidationSettings
    make_reconstructor: Callable[[], Any]  # a fresh Reconstructor for the rig (one per structure)
    report: Callable[[str], None] = lambda message: None
    label: Callable[[int], str] = lambda index: f"timepoint {index + 1}"
    history_size: int = 10_000
    failures: int = 0
    _reconstructors: StructureReconstructors | None = None
    _history: deque[tuple[int, tuple[float, ...]]] = field(default_factory=deque)
    _costs: deque[dict[str, float]] = field(default_factory=lambda: deque(maxlen=1000))
    _newest: ValidationResult | None = None
    _low: tuple[str, ...] = ()  # channels below warn_below_pcc at the last validation
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def every(self) -> int | None:
        return self.settings.every

    def set_every(self, every: int | None) -> None:
        """Validate every ``every``-th grid slot from the next one on (None: off)."""
        if every is not None and not 1 <= every <= 100_000:
            raise InputDataError(f"validate every K timepoints needs 1 <= K <= 100000, got {every}")
        self.settings = self.settings.model_copy(update={"every": every})

    def due(self, slot: int) -> bool:
        return self.settings.due(slot)

    def _fail(self, index: int, stage: str, exc: BaseException) -> None:
        self.failures += 1
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.report(f"{self.label(index)}: validation skipped ({stage} failed: {reason}); live imaging goes on")

    # -- acquisition thread --------------------------------------------------------------------------------------
    def take(
        self, backend: MicroscopeBackend, slot: int, timeout_s: float | None, quiet: threading.Event | None = None
    ) -> ValidationStacks | None:
        """One stack per structure's preset (the live preset restored); None if not due or it failed."""
        if not self.due(slot):
            return None
        start = time.monotonic()
        presets = self.settings.presets
        try:
            point = acquire_training_timepoint(backend, list(presets.values()), slot, timeout_s)
        except Exception as exc:  # a validation never stops live imaging
            if quiet is None or not quiet.is_set():  # stopping: the abort is no failure
                self._fail(slot, "acquisition", exc)
            return None
        stacks = {name: point.stacks[preset] for name, preset in presets.items()}
        return ValidationStacks(slot, stacks, time.monotonic() - start)

    # -- reconstruction thread -----------------------------------------------------------------------------------
    def reconstruct(self, taken: ValidationStacks | None) -> RealImages | None:
        """Each structure's stack through its own reconstructor; None if nothing was taken or it failed."""
        if taken is None:
            return None
        start = time.monotonic()
        if self._reconstructors is None:
            self._reconstructors = StructureReconstructors(self.make_reconstructor)
        try:
            real = self._reconstructors.images(taken.stacks, taken.index)
        except Exception as exc:
            self._fail(taken.index, "reconstruction", exc)
            return None
        return RealImages(taken.index, real, {"acquire": taken.acquire_s, "reconstruct": time.monotonic() - start})

    # -- separation thread ---------------------------------------------------------------------------------------
    def compare(self, index: int, separated: np.ndarray, real: RealImages | None) -> ValidationResult | None:
        """Score the separated channels of timepoint ``index`` against its real images; None if there are none."""
        if real is None:
            return None
        start = time.monotonic()
        try:
            values, error = score(separated, real.images)
        except Exception as exc:
            self._fail(index, "comparison", exc)
            return None
        seconds = real.seconds | {"score": time.monotonic() - start}
        names = tuple(self.settings.names)
        result = ValidationResult(index, names, tuple(values), error, real.images, seconds)
        with self._lock:
            self._history.append((index, result.pcc))
            while len(self._history) > self.history_size:
                self._history.popleft()
            self._costs.append(seconds)
            self._newest = result
        low = tuple(n for n, v in zip(names, values, strict=True) if v < self.settings.warn_below_pcc)
        if low and low != self._low:  # said when it starts or another channel joins, not at every validation
            scores = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, values, strict=True) if n in low)
            self.report(f"{self.label(index)}: validation: low agreement with the real colours (PCC {scores})")
        self._low = low
        return result

    # -- readers ---------------------------------------------------------------------------------------------------
    def state(self) -> ValidationState:
        with self._lock:
            return ValidationState(
                self.every, tuple(self.settings.names), tuple(self._history), self._newest, self.failures
            )

    def summary(self) -> dict[str, Any]:
        """For the recording's metadata: presets, validated timepoints, PCC per structure, medians, cost."""
        with self._lock:
            history = list(self._history)
            costs = list(self._costs)
        names = self.settings.names
        pccs = {n: [_finite(v[c]) for _, v in history] for c, n in enumerate(names)}
        medians = {}
        for n, values in pccs.items():
            finite = [v for v in values if v is not None]
            medians[n] = float(np.median(finite)) if finite else None
        stages = ("acquire", "reconstruct", "score")
        cost = {k: float(np.median([c[k] for c in costs])) * 1e3 for k in stages} if costs else {}
        return {
            "every": self.every,
            "presets": dict(self.settings.presets),
            "scoring": "imcsr-live evaluate: 0.1/99.9 percentile normalisation, linear fit, Pearson (full frame)",
            "timepoints": [i for i, _ in history],
            "pcc": pccs,
            "median_pcc": medians,
            "failed": self.failures,
            "median_cost_ms": cost,
        }
