"""The training-dataset folder written by ``imcsr-live acquire-training`` and read by ``[data] kind = "acquired"``.

Layout::

    DIR/dataset.json                                    the manifest (:class:`DatasetManifest`)
    DIR/rig.toml                                        the rig TOML exactly as it was when the dataset began
    DIR/p000/t00000/<Structure>.raw.tif                 uint16 (9, Y, X): the structure's own SIM stack
    DIR/p000/t00000/<Structure>.sr.tif                  float32 (2Y, 2X): its reconstruction
    DIR/p000/t00000/<Structure>.params.json             the parameters that reconstruction used

``pNNN`` is the stage position (0 when the stage is not moved), ``tNNNNN`` the timepoint. Every file is written
atomically, and a timepoint is listed in ``dataset.json`` only once every file of all its positions is written:
what is listed is complete; anything else on disk is an interrupted timepoint, taken again on resume.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imcsr_live.errors import InputDataError
from imcsr_live.fileio import atomic_path, atomic_write

MANIFEST = "dataset.json"
RIG_COPY = "rig.toml"
FORMAT = "imcsr-live training dataset"
VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetStructure(_Model):
    name: str
    color: str
    preset: str = Field(min_length=1, description="the excitation preset that images this structure alone")


class StagePosition(_Model):
    x_um: float
    y_um: float


class FinishedTimepoint(_Model):
    index: int = Field(ge=0)
    session: int = Field(ge=0, description="which run of acquire-training took it (a resume starts a new one)")
    started: str = Field(description="UTC time the timepoint's first stack started (ISO 8601)")
    seconds: float = Field(ge=0, description="acquisition + reconstruction + writing, all positions")
    shift_px: dict[str, list[list[float]]] = Field(
        default_factory=dict, description="per structure, per position: [dy, dx, peak] against the other channels"
    )


class DatasetManifest(_Model):
    """Everything a training run (and a person) needs to know about an acquired dataset."""

    format: str = FORMAT
    version: int = VERSION
    rig_name: str
    rig_sha256: str = Field(description="SHA-256 of the rig TOML text the dataset was taken with")
    backend: str
    structures: list[DatasetStructure] = Field(min_length=1)
    positions: list[StagePosition] = Field(
        default_factory=list, description="stage positions visited per timepoint (empty: the stage is not moved)"
    )
    raw_shape: tuple[int, int]
    sr_pixel_size_um: float = Field(gt=0)
    interval_s: float = Field(ge=0)
    exposure_ms: float = Field(gt=0)
    photons: float | None = Field(default=None, description="photons at the brightest pixels, if the rig says")
    created: str
    updated: str
    sessions: int = Field(default=0, ge=0)
    timepoints: list[FinishedTimepoint] = Field(default_factory=list)
    registration: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="per structure: median residual shift (px, SR grid) and peak correlation"
    )

    @property
    def structure_names(self) -> list[str]:
        return [s.name for s in self.structures]

    @property
    def presets(self) -> list[str]:
        return [s.preset for s in self.structures]

    @property
    def n_positions(self) -> int:
        return max(1, len(self.positions))

    @property
    def finished(self) -> list[int]:
        return [t.index for t in self.timepoints]


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_stem(structure: str) -> str:
    """A file-name-safe form of a structure name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", structure).strip("._") or "structure"


def timepoint_dir(root: Path, position: int, timepoint: int) -> Path:
    return Path(root) / f"p{position:03d}" / f"t{timepoint:05d}"


def structure_files(root: Path, position: int, timepoint: int, structure: str) -> dict[str, Path]:
    """The raw / sr / params paths of one structure at one position and timepoint."""
    folder = timepoint_dir(root, position, timepoint)
    stem = file_stem(structure)
    return {kind: folder / f"{stem}.{kind}.{ext}" for kind, ext in (("raw", "tif"), ("sr", "tif"), ("params", "json"))}


def read_manifest(root: Path) -> DatasetManifest | None:
    """The manifest of ``root``, None if there is none; :class:`InputDataError` if it is not one of ours."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = DatasetManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise InputDataError(f"{path} is not an imcsr-live training dataset manifest ({first})") from None
    if manifest.format != FORMAT or manifest.version != VERSION:
        raise InputDataError(f"{path}: {manifest.format!r} version {manifest.version} is not readable by this app")
    return manifest


def write_manifest(root: Path, manifest: DatasetManifest) -> Path:
    manifest.updated = now_utc()
    return atomic_write(Path(root) / MANIFEST, manifest.model_dump_json(indent=2) + "\n")


def write_tiff(path: Path, data: np.ndarray) -> Path:
    """A plain TIFF, written atomically."""
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data)
    return path


def write_json(path: Path, data: dict) -> Path:
    return atomic_write(path, json.dumps(data, indent=2) + "\n")


def read_sr(root: Path, position: int, timepoint: int, structure: str) -> np.ndarray:
    """One structure's SR image ``(2Y, 2X)`` float32; :class:`InputDataError` naming the file if it is unreadable."""
    from imcsr_live.io.tiff import read_tiff  # a cut-off copy is refused as truncated

    path = structure_files(root, position, timepoint, structure)["sr"]
    data = np.asarray(read_tiff(path)[0], dtype=np.float32)
    if data.ndim != 2:
        raise InputDataError(f"{path}: SR image has shape {data.shape}; expected (Y, X)")
    return data
