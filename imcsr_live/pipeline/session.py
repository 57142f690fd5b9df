"""Assemble a live run from a rig config: backend, reconstructor, model + engine, pipeline, optional recorder.

Used by ``imcsr-live live`` (any rig) and ``imcsr-live demo`` (the simulated rig). Building the engine includes
its warm-up/compilation, reported through ``progress`` before the first live frame.
"""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imcsr_live.config import RecordingFormat, RigConfig
from imcsr_live.engine import ModelSource, load_model, select_engine
from imcsr_live.engine.base import Progress
from imcsr_live.engine.model_source import WEIGHTS_DIR
from imcsr_live.engine.select import engine_options
from imcsr_live.errors import CheckpointError, InputDataError
from imcsr_live.hardware import MicroscopeBackend, create_backend
from imcsr_live.io.streams import is_tiff
from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
from imcsr_live.pipeline.recorder import Recorder, recording_targets
from imcsr_live.pipeline.recording import ModelIdentity, RecordingPlan, record_item, recording_plan
from imcsr_live.pipeline.validation import ValidationSettings, ValidationUnavailableError, Validator, resolve_presets
from imcsr_live.recon.reconstructor import Reconstructor

log = logging.getLogger(__name__)


def shipped_models() -> list[Path]:
    """Model cards shipped with the app (``imcsr_live/weights/*.json``), best first by name order."""
    return sorted(p.with_suffix("") for p in WEIGHTS_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def default_model(structures: list[str], engine_kind: str = "auto") -> Path | None:
    """The shipped model for the rig's structures, chosen for where ``engine_kind`` runs (GPU-size model on a CUDA
    GPU, else the CPU-size one), or None."""
    from imcsr_live.engine.model_source import choose_default_model

    return choose_default_model(structures, engine_kind)[0]


@dataclass(frozen=True)
class LiveRequest:
    """What the operator asked for on the command line."""

    model: Path | None = None
    timepoints: int | None = None
    interval_s: float | None = None
    record: Path | None = None
    validate_every: int | None = None  # live validation against the real colours every K timepoints


def resolve_model(rig: RigConfig, requested: Path | None) -> ModelSource:
    """Load the requested checkpoint, or the shipped one for the rig's structures."""
    path = requested or default_model(rig.structure_names, rig.engine.kind)
    if path is None:
        raise CheckpointError(
            f"no model given and none shipped for structures {rig.structure_names}; pass --model NAME "
            "(a NAME.safetensors + NAME.json checkpoint, e.g. from `imcsr-live train`)"
        )
    return load_model(path, expect_structures=rig.structure_names)


def recording_format(path: Path, configured: RecordingFormat) -> RecordingFormat:
    """An explicit ``.tif``/``.ome.tif`` or ``.zarr`` suffix wins over ``[recording] format``."""
    if is_tiff(path):
        return "ome-tiff"
    if path.name.endswith(".zarr"):
        return "ome-zarr"
    return configured


def frame_shape(backend: MicroscopeBackend) -> tuple[int, int]:
    """Camera frame size of an opened backend."""
    shape = backend.info().get("frame_shape")
    if not shape:
        raise CheckpointError("the backend did not report its frame size")  # pragma: no cover - all ours do
    return int(shape[0]), int(shape[1])


@dataclass(frozen=True)
class RecorderFactory:
    """Builds a :class:`Recorder` for a live run (``--record`` or the GUI's record button); never overwrites."""

    rig: RigConfig
    raw_shape: tuple[int, int]
    identity: ModelIdentity
    expected_timepoints: int
    interval_s: float | None = None
    validator: Validator | None = None  # real colours are recorded when validation is on at the recording's start

    def __call__(self, path: Path, metadata: dict[str, Any] | None = None, interval_s: float | None = None) -> Recorder:
        """``interval_s``: the interval in force now (the operator may have changed it since the start)."""
        dt = self.interval_s if interval_s is None else interval_s
        validating = self.validator is not None and self.validator.every is not None
        plan = recording_plan(self.rig, path, self.raw_shape, self.identity, self.expected_timepoints, dt, validating)
        plan = replace(plan, format=recording_format(path, self.rig.recording.format))
        refuse_taken(plan)
        plan.separated.attributes.update(metadata or {})  # e.g. the display settings at the start
        return Recorder(plan)


def free_name(path: Path) -> Path:
    """``path`` if no recording of that name is there, else the first free ``NAME-2``, ``NAME-3`` ... (never
    overwrite). Side files count: an OME-TIFF recording ``NAME.ome.tif`` also writes ``NAME.raw.ome.tif`` etc."""
    name = path.name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif"):
        if name.endswith(suffix):
            stem, ext = name[: -len(suffix)], suffix
            break
    else:
        stem, ext = name, ""

    def taken(candidate: Path, candidate_stem: str) -> bool:
        return candidate.exists() or any(candidate.parent.glob(glob.escape(candidate_stem) + ".*"))

    if not taken(path, stem):
        return path
    n = 2
    while taken(candidate := path.with_name(f"{stem}-{n}{ext}"), f"{stem}-{n}"):
        n += 1
    return candidate


def refuse_taken(plan: RecordingPlan) -> None:
    """Raise :class:`InputDataError` if a file the recording would write exists (an earlier one is never lost)."""
    taken = [p for p in recording_targets(plan).values() if p.exists()]
    if taken:
        raise InputDataError(f"{taken[0]} already exists; choose another recording path (nothing is overwritten)")


def build_live_pipeline(
    rig: RigConfig,
    request: LiveRequest,
    *,
    backend: MicroscopeBackend | None = None,
    source: ModelSource | None = None,
    progress: Progress | None = None,
    backend_options: dict[str, Any] | None = None,
) -> LivePipeline:
    """A ready-to-start pipeline (backend opened, engine warmed up for the backend's frame size)."""
    source = source or resolve_model(rig, request.model)
    backend = backend or create_backend(rig, **(backend_options or {}))
    backend.open()
    try:
        ny, nx = frame_shape(backend)
        validator, unavailable = build_validator(rig, backend, request.validate_every)
        expected = request.timepoints or rig.acquisition.timepoints
        if request.record is not None:  # a taken path is an input error: say it before the warm-up's progress
            provisional = ModelIdentity(source.name, source.weights_sha256, rig.engine.kind, rig.engine.precision)
            plan = recording_plan(rig, request.record, (ny, nx), provisional, expected, request.interval_s)
            refuse_taken(replace(plan, format=recording_format(request.record, rig.recording.format)))
        engine = select_engine(
            rig.engine.kind, source, rig.engine.precision, (2 * ny, 2 * nx), progress=progress,
            options=engine_options(rig.engine.max_tile_pixels),
        )  # fmt: skip
        identity = ModelIdentity(source.name, source.weights_sha256, engine.name, engine.precision)
        factory = RecorderFactory(rig, (ny, nx), identity, expected, request.interval_s, validator)
        recorder = factory(request.record) if request.record is not None else None
    except BaseException:
        backend.close()
        raise
    settings = PipelineSettings(
        interval_s=rig.acquisition.interval_s if request.interval_s is None else request.interval_s,
        timepoints=request.timepoints,
        acquisition_timeout_s=rig.backend.timeout_s,
        max_consecutive_failures=rig.acquisition.max_consecutive_failures,
        in_frames=source.cfg.in_frames,
    )
    pipeline = LivePipeline(backend, Reconstructor(rig), engine, settings, recorder, record_item, validator=validator)
    pipeline.recorder_factory = factory
    pipeline.validation_unavailable = unavailable
    return pipeline


def build_validator(
    rig: RigConfig, backend: MicroscopeBackend, every: int | None
) -> tuple[Validator | None, str | None]:
    """The run's validator (off unless ``every``), or None and why the rig cannot validate. Asking for validation
    (``every``) on a rig without a preset per structure raises :class:`ValidationUnavailableError` (one line)."""
    try:
        presets = resolve_presets(rig, backend)
    except ValidationUnavailableError as exc:
        if every is not None:
            raise ValidationUnavailableError(f"--validate-every refused: {exc}") from None
        return None, str(exc)
    settings = ValidationSettings(every=every, presets=presets)
    return Validator(settings, lambda: Reconstructor(rig)), None
