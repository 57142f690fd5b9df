"""Training data at the scope (``imcsr-live acquire-training``): per timepoint one SIM stack per structure's preset.

On a sample in which every structure carries its own colour, each timepoint (at every stage position) takes one
stack per structure's excitation preset (:func:`~imcsr_live.hardware.training.acquire_training_timepoint`),
reconstructs each with that structure's own :class:`~imcsr_live.recon.reconstructor.Reconstructor` (own estimated
parameters, :class:`~imcsr_live.pipeline.structure_recon.StructureReconstructors`) and writes raw stack, SR image
and parameters per structure into the dataset folder (:mod:`imcsr_live.io.training_dataset`). The residual shift
between the colours (:func:`~imcsr_live.recon.registration.channel_shifts`) is measured on every timepoint.

Resumable: a timepoint is listed in ``dataset.json`` only after all its files are written; a second run into the
same folder takes the unlisted timepoints (and deletes the files an interrupted one left). A folder taken with
another rig, other structures, presets or positions is refused with one line.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import HardwareConfigError, ImcsrError, InputDataError
from imcsr_live.fileio import atomic_write
from imcsr_live.hardware.base import MicroscopeBackend, SupportsPresets, SupportsStage
from imcsr_live.hardware.training import acquire_training_timepoint
from imcsr_live.io.training_dataset import (
    MANIFEST,
    RIG_COPY,
    DatasetManifest,
    DatasetStructure,
    FinishedTimepoint,
    StagePosition,
    now_utc,
    read_manifest,
    structure_files,
    timepoint_dir,
    write_json,
    write_manifest,
    write_tiff,
)
from imcsr_live.pipeline.structure_recon import StructureReconstructors
from imcsr_live.pipeline.validation import resolve_presets
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.recon.registration import MAX_SHIFT_PX, MIN_PEAK, Shift, channel_shifts

#: Most stage positions one dataset may visit per timepoint.
MAX_POSITIONS = 1000


class AcquisitionStoppedError(ImcsrError):
    """Training-data acquisition stopped on request (Ctrl-C); the finished timepoints are kept."""

    exit_code = 130


def read_positions(path: Path) -> list[StagePosition]:
    """Stage positions from a CSV file: one ``x_um,y_um`` per line; ``#`` comments, blank lines and a header
    line ``x_um,y_um`` are skipped. :class:`InputDataError` naming the line on anything else."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(
            f"positions file {path} cannot be read ({exc.__class__.__name__}); give a CSV of x_um,y_um"
        ) from None
    positions = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text or text.replace(" ", "").lower() == "x_um,y_um":
            continue
        parts = [p.strip() for p in text.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            x, y = float(parts[0]), float(parts[1])
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
        except ValueError:
            raise InputDataError(
                f"{path}, line {number}: {line.strip()!r} is not 'x_um,y_um' (two numbers in micrometres)"
            ) from None
        positions.append(StagePosition(x_um=x, y_um=y))
    if not positions:
        raise InputDataError(f"{path} holds no positions; write one 'x_um,y_um' per line")
    if len(positions) > MAX_POSITIONS:
        raise InputDataError(f"{path} holds {len(positions)} positions; at most {MAX_POSITIONS} per dataset")
    keys = [(round(p.x_um, 3), round(p.y_um, 3)) for p in positions]
    if len(set(keys)) != len(keys):
        raise InputDataError(f"{path} lists a position twice; each position must be a different field of view")
    return positions


def choose_presets(rig: RigConfig, backend: MicroscopeBackend, override: list[str] | None) -> dict[str, str]:
    """Structure -> preset: the rig's ``[[structures]] preset`` lines, or ``override`` (one per structure, in order)."""
    if override is None:
        return resolve_presets(rig, backend, purpose="training data")
    names = rig.structure_names
    if len(override) != len(names):
        raise InputDataError(
            f"--presets gives {len(override)} preset(s) for {len(names)} structures ({', '.join(names)}); "
            "give one per structure, in this order"
        )
    available = backend.channel_presets() if isinstance(backend, SupportsPresets) else []
    unknown = [p for p in override if p not in available]
    if unknown:
        raise InputDataError(
            f"--presets: preset {unknown[0]!r} is not defined on this rig (presets: {', '.join(available) or 'none'})"
        )
    return dict(zip(names, override, strict=True))


def new_manifest(
    rig: RigConfig,
    backend: MicroscopeBackend,
    presets: dict[str, str],
    positions: list[StagePosition],
    raw_shape: tuple[int, int],
    interval_s: float,
) -> DatasetManifest:
    """The manifest of a dataset about to be started with this rig and these settings."""
    import hashlib

    info = backend.info()
    photons = info.get("photons")
    stamp = now_utc()
    return DatasetManifest(
        rig_name=rig.source_path.name if rig.source_path is not None else "(rig given in code)",
        rig_sha256=hashlib.sha256((rig.source_text or "").encode()).hexdigest(),
        backend=str(info.get("kind", type(backend).__name__)),
        structures=[DatasetStructure(name=s.name, color=s.color, preset=presets[s.name]) for s in rig.structures],
        positions=positions,
        raw_shape=raw_shape,
        sr_pixel_size_um=rig.optics.pixel_size_um / 2,
        interval_s=interval_s,
        exposure_ms=rig.acquisition.exposure_ms,
        photons=float(photons) if isinstance(photons, int | float) else None,
        created=stamp,
        updated=stamp,
    )


def check_same_dataset(root: Path, existing: DatasetManifest, fresh: DatasetManifest) -> None:
    """:class:`InputDataError` (one line) unless a resume into ``root`` continues the same rig, structures,
    presets, positions and frame size."""
    again = "choose another -o DIR for a new dataset"
    if existing.rig_sha256 != fresh.rig_sha256:
        raise InputDataError(
            f"{root} was taken with another rig ({existing.rig_name}, its copy is {root / RIG_COPY}); resume with "
            f"that rig file or {again}"
        )
    if existing.structure_names != fresh.structure_names:
        raise InputDataError(
            f"{root} holds the structures {existing.structure_names}, not {fresh.structure_names}; {again}"
        )
    if existing.presets != fresh.presets:
        raise InputDataError(f"{root} was taken with the presets {existing.presets}, not {fresh.presets}; {again}")
    if existing.positions != fresh.positions:
        raise InputDataError(
            f"{root} was taken at other stage positions ({existing.n_positions}, listed in its {MANIFEST}); "
            f"resume with the same --positions file or {again}"
        )
    if tuple(existing.raw_shape) != tuple(fresh.raw_shape):
        raise InputDataError(
            f"{root} holds {existing.raw_shape[0]}x{existing.raw_shape[1]} frames but the camera gives "
            f"{fresh.raw_shape[0]}x{fresh.raw_shape[1]}; {again}"
        )


def clear_dataset(root: Path) -> None:
    """Remove what a dataset consists of (manifest, rig copy, position folders) and nothing else (--overwrite)."""
    for name in (MANIFEST, RIG_COPY):
        (root / name).unlink(missing_ok=True)
    for folder in root.glob("p[0-9][0-9][0-9]"):
        if folder.is_dir():
            shutil.rmtree(folder)


def open_dataset(root: Path, fresh: DatasetManifest, rig: RigConfig, overwrite: bool = False) -> DatasetManifest:
    """The manifest to continue: the existing one of ``root`` (checked against ``fresh``), else ``fresh``, written
    with a copy of the rig TOML. A non-empty folder that is not a dataset is refused."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputDataError(f"{root} is a file; -o needs a folder for the dataset")
    if overwrite and root.is_dir():
        clear_dataset(root)
    existing = read_manifest(root)
    if existing is not None:
        check_same_dataset(root, existing, fresh)
        return existing
    if root.is_dir() and any(not p.name.startswith(".") for p in root.iterdir()):
        raise InputDataError(
            f"{root} is not empty and holds no {MANIFEST}; choose an empty or new folder for the dataset"
        )
    root.mkdir(parents=True, exist_ok=True)
    if rig.source_text is not None:
        atomic_write(root / RIG_COPY, rig.source_text)
    write_manifest(root, fresh)
    return fresh


@dataclass(frozen=True)
class TimepointDone:
    """What the progress callback receives after each finished timepoint."""

    index: int  # the timepoint just finished
    done: int  # timepoints finished in the dataset
    total: int
    seconds: float  # this timepoint: acquisition + reconstruction + writing, all positions
    shifts: dict[str, list[list[float]]]  # per structure, per position: [dy, dx, peak] (SR pixels)


class TrainingAcquisition:
    """Takes the missing timepoints of a dataset; ``on_timepoint(TimepointDone)`` after each finished one.

    The backend must be open (and able to move a stage if the manifest lists positions).
    """

    def __init__(
        self,
        rig: RigConfig,
        backend: MicroscopeBackend,
        root: Path,
        manifest: DatasetManifest,
        on_timepoint: Callable[[TimepointDone], None] | None = None,
    ) -> None:
        self.rig = rig
        self.backend = backend
        self.root = Path(root)
        self.manifest = manifest
        self.on_timepoint = on_timepoint
        self.reconstructors = StructureReconstructors(lambda: Reconstructor(rig))
        self.presets = {s.name: s.preset for s in manifest.structures}

    def run(self, timepoints: int, stop: threading.Event | None = None) -> DatasetManifest:
        """Acquire until the dataset holds ``timepoints`` finished timepoints (none if it already does); once
        ``stop`` is set, no further timepoint is started (the one in progress is finished)."""
        m = self.manifest
        first = len(m.timepoints)
        if first >= timepoints:
            return m
        m.sessions += 1
        session = m.sessions - 1
        start = time.monotonic()
        for t in range(first, timepoints):
            due = start + (t - first) * m.interval_s
            while (left := due - time.monotonic()) > 0:
                if stop is not None and stop.wait(min(left, 0.2)):
                    break
                if stop is None:
                    time.sleep(min(left, 0.2))
            if stop is not None and stop.is_set():
                break
            self._take(t, session, timepoints)
        return m

    def _take(self, t: int, session: int, total: int) -> None:
        m = self.manifest
        started, t0 = now_utc(), time.monotonic()
        positions: list[StagePosition | None] = [*m.positions] or [None]
        for p in range(len(positions)):  # an interrupted earlier try of this timepoint leaves no files behind
            shutil.rmtree(timepoint_dir(self.root, p, t), ignore_errors=True)
        shifts: dict[str, list[list[float]]] = {name: [] for name in self.presets}
        for p, position in enumerate(positions):
            if position is not None:
                self.backend.move_to(position.x_um, position.y_um)  # type: ignore[attr-defined]
            images = self._take_position(t, p)
            for name, shift in zip(self.presets, channel_shifts(images), strict=True):
                shifts[name].append([round(shift.dy, 3), round(shift.dx, 3), round(shift.peak, 4)])
        seconds = time.monotonic() - t0
        m.timepoints.append(
            FinishedTimepoint(index=t, session=session, started=started, seconds=round(seconds, 3), shift_px=shifts)
        )
        m.registration = registration_summary(m)
        write_manifest(self.root, m)  # the timepoint counts only from here on
        if self.on_timepoint is not None:
            self.on_timepoint(TimepointDone(t, len(m.timepoints), total, seconds, shifts))

    def _take_position(self, t: int, p: int) -> np.ndarray:
        """One stack per structure's preset at the current position, reconstructed and written; the SR images."""
        point = acquire_training_timepoint(self.backend, list(self.presets.values()), t, self.rig.backend.timeout_s)
        stacks = {name: point.stacks[preset] for name, preset in self.presets.items()}
        frames = self.reconstructors.reconstruct(stacks, t)
        for name, frame in frames.items():
            paths = structure_files(self.root, p, t, name)
            stack = stacks[name]
            write_tiff(paths["raw"], stack.frames)
            write_tiff(paths["sr"], np.asarray(frame.sr, dtype=np.float32))
            write_json(
                paths["params"],
                {
                    "structure": name,
                    "preset": self.presets[name],
                    "timepoint": t,
                    "position": p,
                    "parameters": frame.params.to_dict(),
                    "low_confidence": frame.low_confidence,
                    "warnings": list(frame.warnings),
                    "stack": {k: v for k, v in stack.info.items() if isinstance(v, str | int | float | bool)},
                    "burst_s": round(stack.duration_s, 4),
                },
            )
        return np.stack([np.asarray(frames[name].sr, dtype=np.float32) for name in self.presets])


def registration_summary(manifest: DatasetManifest) -> dict[str, dict[str, float | None]]:
    """Per structure: median residual shift (SR pixels and nm) against the other colours over the timepoints and
    positions where it could be measured (:meth:`~imcsr_live.recon.registration.Shift.reliable`), and the fraction
    of those; None where it never could (the colours share too little structure: image beads)."""
    px_nm = manifest.sr_pixel_size_um * 1e3
    out: dict[str, dict[str, float | None]] = {}
    for name in manifest.structure_names:
        rows = [Shift(*row) for tp in manifest.timepoints for row in tp.shift_px.get(name, [])]
        if not rows:
            continue
        good = [r for r in rows if r.reliable()]
        dy = float(np.median([r.dy for r in good])) if good else None
        dx = float(np.median([r.dx for r in good])) if good else None
        out[name] = {
            "dy_px": None if dy is None else round(dy, 3),
            "dx_px": None if dx is None else round(dx, 3),
            "shift_nm": None if dy is None or dx is None else round(float(np.hypot(dy, dx)) * px_nm, 1),
            "measured_fraction": round(len(good) / len(rows), 3),
        }
    return out


@dataclass(frozen=True)
class TrainingRequest:
    """What ``imcsr-live acquire-training`` was asked for."""

    root: Path
    timepoints: int
    interval_s: float | None = None  # None: [acquisition] interval_s of the rig
    presets: list[str] | None = None  # None: each structure's preset in the rig TOML
    positions: list[StagePosition] | None = None  # None: the stage is not moved
    overwrite: bool = False


def acquire_training_dataset(
    rig: RigConfig,
    request: TrainingRequest,
    on_timepoint: Callable[[TimepointDone], None] | None = None,
    backend: MicroscopeBackend | None = None,
) -> DatasetManifest:
    """Open the rig, check everything (presets, stage, the folder) before the first stack, then take the missing
    timepoints. Returns the dataset's manifest."""
    from imcsr_live.hardware import create_backend

    if request.interval_s is not None:
        rig.acquisition.interval_s = request.interval_s  # the simulated specimen moves on by this much, too
    backend = backend or create_backend(rig)
    backend.open()
    try:
        return acquire_with_backend(rig, backend, request, on_timepoint)
    finally:
        backend.close()


def acquire_with_backend(
    rig: RigConfig,
    backend: MicroscopeBackend,
    request: TrainingRequest,
    on_timepoint: Callable[[TimepointDone], None] | None = None,
    stop: threading.Event | None = None,
    again: str = "run the same command again to continue",
) -> DatasetManifest:
    """:func:`acquire_training_dataset` on a backend that is open already (the window's live backend, with live
    acquisition paused): checks, then the missing timepoints; ``stop`` ends after the timepoint in progress.
    ``again`` says how to continue after a failure (one line). The backend is left open."""
    from imcsr_live.pipeline.session import frame_shape

    presets = choose_presets(rig, backend, request.presets)
    positions = list(request.positions or [])
    if positions and not isinstance(backend, SupportsStage):
        raise HardwareConfigError(
            f"the {type(backend).__name__} cannot move a stage, so it cannot visit --positions; drop the option"
        )
    interval_s = request.interval_s if request.interval_s is not None else rig.acquisition.interval_s
    fresh = new_manifest(rig, backend, presets, positions, frame_shape(backend), interval_s)
    manifest = open_dataset(request.root, fresh, rig, request.overwrite)
    acquisition = TrainingAcquisition(rig, backend, request.root, manifest, on_timepoint)
    try:
        return acquisition.run(request.timepoints, stop)
    except (ImcsrError, KeyboardInterrupt) as exc:
        saved = f"{len(manifest.timepoints)} of {request.timepoints} timepoints are saved in {request.root}; {again}"
        if isinstance(exc, KeyboardInterrupt):
            raise AcquisitionStoppedError(f"stopped on request: {saved}") from None
        raise type(exc)(f"{exc}; {saved}") from exc


def describe_dataset(root: Path, manifest: DatasetManifest) -> list[str]:
    """The lines ``acquire-training`` prints at the end: what the folder holds and the residual registration."""
    m = manifest
    lines = [
        f"{root}: {len(m.timepoints)} timepoints x {m.n_positions} position(s) x {len(m.structures)} structures "
        f"({', '.join(f'{s.name} <- {s.preset}' for s in m.structures)}); {m.sessions} session(s)"
    ]
    unmeasured = [name for name, r in m.registration.items() if r["dy_px"] is None]
    for name, r in m.registration.items():
        if r["dy_px"] is not None:
            lines.append(
                f"registration {name}: dy {r['dy_px']:+.2f} px, dx {r['dx_px']:+.2f} px ({r['shift_nm']:.0f} nm, SR "
                f"pixels) against the other colours, measured on {r['measured_fraction']:.0%} of the stacks"
            )
    if unmeasured:
        lines.append(
            f"registration {', '.join(unmeasured)}: not measurable on these images (no correlation peak >= "
            f"{MIN_PEAK} within {MAX_SHIFT_PX} SR pixels of the other colours: they share too little structure); "
            "image beads in every colour to measure the residual shift"
        )
    return lines
