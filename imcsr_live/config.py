"""Pydantic v2 models for the rig TOML (schema: docs/architecture.md#rig-config) and its loader.

Every table forbids unknown keys so a typo is an error, not a silently ignored setting. Units are part of the
field names (``_nm``, ``_um``, ``_s``, ``_ms``). ``optics`` and ``sim`` are required; every other table has
defaults that suit the simulated microscope.

Every number has physical bounds (the reason is noted at each field) and must be finite: a NaN or infinite
value, or one far outside what a SIM microscope can have, would otherwise exhaust memory (sizes derived from
it), hang (waits derived from it) or give NaN images without an error.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from imcsr_live.colours import is_hex_colour
from imcsr_live.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _bounded(low: float, high: float, **kwargs: Any) -> Any:
    """A finite float field in ``[low, high]``."""
    return Field(allow_inf_nan=False, ge=low, le=high, **kwargs)


#: Largest camera frame side accepted (pixels): no SIM camera is larger, and the SR frame (twice the side) then
#: stays within the engines' 16384-pixel limit.
MAX_RAW_SIDE = 8192


def available_memory_bytes() -> int | None:
    """Memory the OS can still give this process (``MemAvailable``), or None where it does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_frame_budget(shape: tuple[int, ...], bytes_per_pixel: float, what: str) -> None:
    """Refuse a frame size before allocating: a side above :data:`MAX_RAW_SIDE` or more memory than available.

    Raises
    ------
    InputDataError
        Naming the size, the memory it needs and what to do.
    """
    from imcsr_live.errors import InputDataError

    ny, nx = (int(v) for v in shape[-2:])
    if max(ny, nx) > MAX_RAW_SIDE:
        raise InputDataError(
            f"{what}: frames of {ny} x {nx} pixels exceed the {MAX_RAW_SIDE}-pixel limit per side; crop or bin them"
        )
    need = ny * nx * bytes_per_pixel
    free = available_memory_bytes()
    if free is not None and need > free:
        raise InputDataError(
            f"{what}: {ny} x {nx} frames need about {need / 2**30:.1f} GiB of memory but only "
            f"{free / 2**30:.1f} GiB is free; use smaller frames or free memory"
        )


RecordingFormat = Literal["ome-zarr", "ome-tiff"]


class _Table(BaseModel):
    """Base for every TOML table: unknown keys are errors, values are checked on assignment too.

    Strict types: TOML has real numbers and booleans, so a quoted "1.4" or "0" is a mistake worth reporting.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


class BackendConfig(_Table):
    """Which microscope the app drives."""

    kind: Literal["simulated", "pycromanager", "pymmcore-plus"] = "simulated"
    mm_config: Path | None = Field(
        default=None,
        strict=False,  # TOML gives a string
        description="Micro-Manager .cfg file (relative paths: to the current folder, then the TOML)",
    )
    # >= 10 ms: no camera delivers a frame faster; <= 10 min: longer looks like a frozen app to the operator.
    timeout_s: float = _bounded(0.01, 600.0, default=5.0)
    # Micro-Manager backends only (ignored by the simulated backend); see imcsr_live/hardware/.
    burst: Literal["triggered", "software"] = Field(
        default="triggered",
        description="triggered: SLM advances on camera TTLs during a 9-frame sequence; software: set, snap, x9",
    )
    slm: str | None = Field(
        default=None,
        description='SLM/DMD device label; None = the core\'s SLM device; "external" = patterns preloaded on '
        "hardware that Micro-Manager does not control (triggered bursts only)",
    )
    pattern_index_tag: str | None = Field(
        default=None, description="image metadata tag carrying the displayed pattern index, if the rig has one"
    )
    channel_group: str = Field(default="Channel", description="config group holding acquisition.channel_preset")
    resync_attempts: int = Field(default=2, ge=0, le=10)


class OpticsConfig(_Table):
    """Detection optics. ``pixel_size_um`` is the camera pixel projected into the sample plane."""

    # 0.1 (a weak lens) up to 1.7 (the highest-index immersion objectives).
    na: float = _bounded(0.1, 1.7, description="numerical aperture of the objective")
    # Fluorophore emission from near-UV to near-IR, where cameras and objectives work.
    emission_wavelength_nm: float = _bounded(300.0, 1100.0)
    # 10 nm - 1 um in the sample plane: finer pixels are impossible magnifications and make every pixel-derived
    # size (PSF kernels, frames) explode; coarser ones cannot sample any SIM pattern.
    pixel_size_um: float = Field(ge=0.01, lt=1.0, allow_inf_nan=False)

    @property
    def otf_cutoff_per_um(self) -> float:
        """Incoherent OTF cutoff 2 NA / lambda in cycles per um."""
        return 2.0 * self.na / (self.emission_wavelength_nm * 1e-3)


class SimConfig(_Table):
    """Structured-illumination pattern: ``angles`` x ``phases`` raw frames per timepoint."""

    angles: int = Field(default=3, ge=1, le=8)
    phases: int = Field(default=3, ge=3, le=9)
    order: Literal["angle-major", "phase-major"] = "angle-major"
    # Orientations are angles: one turn either way covers every convention.
    angles_deg: list[Annotated[float, _bounded(-360.0, 360.0)]] = Field(
        description="pattern orientation per angle, degrees from the camera x axis"
    )
    # Below 50 nm no light pattern exists (and the OTF check rejects it); 10 um is far beyond any SIM period.
    period_um: float = Field(ge=0.05, lt=10, allow_inf_nan=False, description="pattern period in the sample plane")
    # A modulation depth is a fraction; below 1 % the side bands are pure noise.
    modulation: float = _bounded(0.01, 1.0, default=0.8, description="expected modulation depth (start value)")

    @model_validator(mode="after")
    def _angles_match(self) -> SimConfig:
        if len(self.angles_deg) != self.angles:
            raise ValueError(
                f"angles_deg has {len(self.angles_deg)} values but angles = {self.angles}; give one per angle"
            )
        return self

    @property
    def frames_per_timepoint(self) -> int:
        return self.angles * self.phases


class ReconConfig(_Table):
    """Wiener reconstruction settings (fairSIM normalisation)."""

    # fairSIM's Wiener constant: below 1e-6 it divides by ~0 (noise x 1e6, overflow); above 10 the filter only
    # blurs (usual values 0.001 - 0.5).
    wiener: float = _bounded(1e-6, 10.0, default=0.05)
    # Exponent of the apodization: 0.1 - 2 spans everything from a flat to a steep roll-off.
    apodization_bend: float = _bounded(0.1, 2.0, default=0.8)
    attenuation: float = _bounded(0.0, 1.0, default=0.99)  # a fraction of the band-0 strength
    # Notch width in cycles/um: between 1 % and ~4x of a high-NA OTF cutoff (~6 /um).
    attenuation_fwhm_per_um: float = _bounded(0.01, 25.0, default=1.2)
    update: Literal["per-frame", "fixed"] = "per-frame"
    post_filter: Literal["wiener", "hifi"] = "wiener"
    # The camera delivers 16-bit counts: an offset above 65535 would blank every frame.
    camera_offset_adu: float = _bounded(0.0, 65535.0, default=100.0, description="camera dark level subtracted first")
    # Below 0.01 the model OTF is ~0 beyond k = 0 and the Wiener filter divides by it.
    otf_damping: float = _bounded(0.01, 1.0, default=0.7, description="model OTF *= damping ** (|k| / kc)")


class StructureConfig(_Table):
    """One output channel of the separation network, in model order."""

    name: str = Field(min_length=1)
    color: str = Field(description="display colour as #RRGGBB")
    # On a multi-colour sample: the [backend] channel_group preset that images this structure alone (live
    # validation, training data). Unset: a preset of the structure's own name, if the rig has one.
    preset: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        if not is_hex_colour(value):
            raise ValueError(f'colour {value!r} is not of the form #RRGGBB (e.g. "#00FF00")')
        return value.upper()


def _default_structures() -> list[StructureConfig]:
    return [
        StructureConfig(name="Microtubules", color="#00FF00"),
        StructureConfig(name="ER", color="#FF00FF"),
        StructureConfig(name="Lysosomes", color="#00FFFF"),
    ]


class AcquisitionConfig(_Table):
    # >= 1 ms (0 = free-running is a command-line choice; a timepoint takes 9 exposures anyway); <= 1 h: a longer
    # wait between timepoints looks like a hang, and nothing in a living cell stays put that long.
    interval_s: float = _bounded(0.001, 3600.0, default=2.0)
    # 10 us (fastest sCMOS) - 10 s per raw frame: 9 frames of 10 s already take 1.5 min per timepoint.
    exposure_ms: float = _bounded(0.01, 10_000.0, default=30.0)
    channel_preset: str = "488"
    # One million timepoints: over 23 days at 2 s; beyond that only pre-allocation sizes would grow.
    timepoints: int = Field(default=100, ge=1, le=1_000_000)
    # Consecutive failed timepoints (camera timeouts, frame slips) before a live run stops with an error: 1 = at
    # the first failure; 1000 failures at the longest timeout (10 min) already mean a week without an image.
    max_consecutive_failures: int = Field(default=5, ge=1, le=1000)


class EngineConfig(_Table):
    kind: Literal["auto", "tensorrt", "torch-cuda", "onnxruntime", "torch-cpu"] = "auto"
    precision: Literal["fp16", "bf16", "fp32"] = "fp16"
    # Frames with more pixels are separated in overlapping tiles (memory cap on small GPUs); None = whole frames,
    # tiling only after running out of device memory.
    # 64^2 (smaller tiles are mostly overlap) up to 16384^2 pixels (no frame is larger; see MAX_FRAME_SIDE).
    max_tile_pixels: Annotated[int, Field(ge=4096, le=16384**2)] | None = None


class DisplayConfig(_Table):
    gamma: float = _bounded(0.1, 10.0, default=0.8)  # display gamma: beyond 0.1 - 10 an image is black or white
    autocontrast_percentiles: list[FiniteFloat] = Field(default_factory=lambda: [0.1, 99.9], min_length=2, max_length=2)

    @field_validator("autocontrast_percentiles")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        low, high = value
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"need 0 <= low < high <= 100, got {list(value)}")
        return value


class RecordingConfig(_Table):
    format: RecordingFormat = "ome-zarr"
    save_raw: bool = True
    save_sr: bool = True


class RigConfig(_Table):
    """A whole rig: what ``imcsr-live live -c RIG.toml`` and the simulated microscope run from."""

    backend: BackendConfig = Field(default_factory=BackendConfig)
    optics: OpticsConfig
    sim: SimConfig
    recon: ReconConfig = Field(default_factory=ReconConfig)
    structures: list[StructureConfig] = Field(default_factory=_default_structures, min_length=1)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    display: DisplayConfig = Field(default_factory=DisplayConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)

    _source_path: Path | None = PrivateAttr(default=None)
    _source_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _pattern_is_transmitted(self) -> RigConfig:
        k0 = 1.0 / self.sim.period_um
        kc = self.optics.otf_cutoff_per_um
        if k0 >= kc:
            raise ValueError(
                f"sim.period_um = {self.sim.period_um} gives a pattern frequency of {k0:.3f} /um, beyond the OTF "
                f"cutoff 2 NA / lambda = {kc:.3f} /um: the objective cannot transmit it; use a period above "
                f"{1.0 / kc:.4f} um"
            )
        names = [s.name for s in self.structures]
        if len(set(names)) != len(names):
            raise ValueError(f"structure names must be unique, got {names}")
        return self

    @property
    def k0_fraction_of_cutoff(self) -> float:
        """Pattern frequency as a fraction of the OTF cutoff (0.9 is a typical TIRF/GI-SIM choice)."""
        return (1.0 / self.sim.period_um) / self.optics.otf_cutoff_per_um

    @property
    def structure_names(self) -> list[str]:
        return [s.name for s in self.structures]

    @property
    def source_path(self) -> Path | None:
        """The TOML file this config was loaded from, if any."""
        return self._source_path

    @property
    def source_text(self) -> str | None:
        """The TOML text exactly as written (kept for recording provenance)."""
        return self._source_text

    def resolved_mm_config(self) -> Path | None:
        """The Micro-Manager .cfg path: as given if it exists, else relative to the TOML file's folder."""
        path = self.backend.mm_config
        if path is None or path.is_absolute() or path.exists() or self._source_path is None:
            return path
        beside = self._source_path.parent / path
        return beside if beside.exists() else path


def _location(loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into the TOML key a person would look for: ``[sim] period_um``."""
    parts = [str(p) for p in loc]
    if not parts:
        return "(top level)"
    if len(parts) == 1:
        return f"[{parts[0]}]" if parts[0] in RigConfig.model_fields else parts[0]
    table, rest = parts[0], parts[1:]
    if table == "structures" and rest and rest[0].isdigit():
        return f"[[structures]] #{int(rest[0]) + 1}" + (f" {'.'.join(rest[1:])}" if rest[1:] else "")
    return f"[{table}] {'.'.join(rest)}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed in the table that holds ``loc`` (for "unknown key" messages)."""
    tables: dict[str, type[BaseModel]] = {
        name: field.annotation
        for name, field in RigConfig.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    tables["structures"] = StructureConfig
    model = tables.get(str(loc[0])) if len(loc) > 1 else RigConfig
    return sorted((model or RigConfig).model_fields)


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    where = _location(tuple(error["loc"]))
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "extra_forbidden":
        return f"{where}: unknown key; allowed here: {', '.join(_allowed_keys(tuple(error['loc'])))}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # model-level checks name their keys themselves
        return message
    got = error.get("input")
    if kind not in ("value_error",) and not isinstance(got, dict | list):
        message += f" (got {got!r})"
    return f"{where}: {message}"


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line naming every bad key and what is wrong with it."""
    problems = [_describe(e) for e in error.errors()]
    return f"{source}: " + "; ".join(problems)


def parse_rig_config(data: dict[str, Any], source: str = "rig config") -> RigConfig:
    """Validate an already-parsed TOML mapping; raise :class:`ConfigError` with a one-line message."""
    try:
        return RigConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_rig_config(path: str | Path) -> RigConfig:
    """Read and validate a rig TOML file.

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or does not match the schema. The message is one line that
        names the file, the key and the problem.
    """
    path = Path(path)
    if not path.is_file():
        hint = "pass -c with an existing file, e.g. hardware_configs/simulated.toml"
        raise ConfigError(f"rig config {str(path)!r} not found: {hint}")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file; a rig config is a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax at that line") from None
    config = parse_rig_config(data, source=str(path))
    config._source_path = path.resolve()
    config._source_text = text
    return config


def pattern_k0_per_um(config: RigConfig) -> list[tuple[float, float]]:
    """Nominal pattern wave vectors (kx, ky) in cycles/um from the config's angles and period."""
    k = 1.0 / config.sim.period_um
    return [(k * math.cos(math.radians(a)), k * math.sin(math.radians(a))) for a in config.sim.angles_deg]
