"""The training TOML (``imcsr-live train -c TRAIN.toml``): one pydantic model, saved into every model card.

Unknown keys are errors. Paths are relative to the TOML file's folder. See ``hardware_configs/train_*.toml``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from imcsr_live.config import StructureConfig, _default_structures
from imcsr_live.errors import ConfigError
from imcsr_live.model.confidence import check_sizes
from imcsr_live.model.imcsr_net import IMCSRNetConfig


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelTable(_Table):
    """Network architecture (``out_channels`` follows from the structures and the variant)."""

    in_frames: Literal[1, 3] = 1
    width: int = Field(default=64, ge=4, le=512)
    groups: int = Field(default=5, ge=1, le=32)
    blocks: int = Field(default=10, ge=1, le=64)
    reduction: int = Field(default=16, ge=1)
    pooling: Literal["global", "local"] = "global"
    pool_window: int = Field(default=128, ge=3)
    uncertainty: bool = False
    context_width: int = Field(default=0, ge=0, le=128)  # dilated context branch (0: none); see IMCSRNetConfig
    context_dilations: tuple[int, ...] = Field(default=(1, 2, 4, 8, 16, 1, 2, 4, 8, 16), min_length=1, max_length=16)


class DataTable(_Table):
    kind: Literal["synthetic", "pipeline", "folder", "acquired"] = Field(
        default="synthetic",
        description="synthetic: per-structure cells through the fast SIM approximation; pipeline: whole cells "
        "through the synthetic microscope + real Reconstructor (rendered once, cached); folder: images on disk; "
        "acquired: a dataset folder from imcsr-live acquire-training (root)",
    )
    root: Path | None = Field(default=None, description="acquired: the folder acquire-training -o wrote")
    val_fraction: float = Field(
        default=0.25, gt=0.0, lt=1.0, description="acquired: share of positions (one position: of timepoints) held out"
    )
    path: Path | None = Field(default=None, description="folder dataset: ROOT/<Structure>/*.tif|*.mrc")
    val_path: Path | None = Field(default=None, description="folder dataset for validation (default: held-out images)")
    rig: Path | None = Field(default=None, description="rig TOML for the SIM degradation (default: simulated.toml)")
    patch: int = Field(default=128, ge=16)
    cells: int = Field(default=16, ge=1, description="synthetic cells per structure (pipeline: per photon level)")
    val_cells: int = Field(default=4, ge=1, description="validation cells, other seeds (as cells)")
    size: int = Field(default=256, ge=32, description="synthetic image size (SR pixels)")
    interval_s: float = Field(default=2.0, gt=0, description="synthetic time-lapse interval (TC)")
    frames: int = Field(
        default=0,
        ge=0,
        le=64,
        description="synthetic time-lapse frames per cell (0: the model's in_frames); set it equal across models "
        "so 1-frame and TC models see the same rendered cells",
    )
    # "heldout" (imcsr_live.synth.world.WORLDS) is deliberately missing: the held-out world is evaluation-only,
    # so that no model ever trains on it (imcsr-live evaluate --data heldout, tools/cross_world.py).
    world: Literal["default", "randomised", "independent"] = Field(
        default="default",
        description="pipeline: the synthetic world the cells come from (randomised = many morphology families "
        "per structure; independent = a second, separately written generator; models trained on it are tested on "
        "the held-out world)",
    )
    default_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=0.9,
        description="pipeline: share of each photon level's cells drawn from the default world instead of `world` "
        "(keeps the quality on the default world while training on another; 0 = all from `world`)",
    )
    mix: dict[Literal["default", "randomised", "independent"], float] = Field(
        default_factory=dict,
        description="pipeline: shares of each photon level's cells drawn from other training worlds instead of "
        "`world`, e.g. {default = 0.25, independent = 0.25} (more generators seen = more ways a structure can look)",
    )
    render_workers: int = Field(
        default=1, ge=1, le=64, description="pipeline: processes rendering the pool (the result does not depend on it)"
    )
    photons: list[float] = Field(default_factory=lambda: [100.0, 300.0, 1000.0], min_length=1)
    brightness_range: tuple[float, float] = (0.5, 2.0)
    val_samples: int = Field(default=32, ge=1)
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes")
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> DataTable:
        if self.kind == "folder" and self.path is None:
            raise ValueError("[data] kind = 'folder' needs path = 'ROOT' (ROOT/<Structure>/*.tif)")
        if (self.kind == "acquired") != (self.root is not None):
            raise ValueError("[data] root = 'DIR' (an acquire-training dataset) goes with kind = 'acquired', and only")
        if self.world != "default" and self.kind != "pipeline":
            raise ValueError(f"[data] world = {self.world!r} needs kind = 'pipeline'")
        if self.default_fraction > 0 and (self.kind != "pipeline" or self.world == "default"):
            raise ValueError("[data] default_fraction needs kind = 'pipeline' and a world other than 'default'")
        self._check_mix()
        if self.kind == "pipeline" and (self.size % 4 or self.size < 128):
            raise ValueError(
                f"[data] kind = 'pipeline' needs size = a multiple of 4, >= 128 (raw >= 64), got {self.size}"
            )
        lo, hi = self.brightness_range
        if not 0 < lo <= hi:
            raise ValueError(f"[data] brightness_range must be an increasing positive pair, got {[lo, hi]}")
        if any(p <= 0 for p in self.photons):
            raise ValueError("[data] photons must all be > 0")
        return self

    def _check_mix(self) -> None:
        if not self.mix:
            return
        if self.kind != "pipeline":
            raise ValueError("[data] mix needs kind = 'pipeline'")
        if self.world in self.mix:
            raise ValueError(f"[data] mix names {self.world!r}, the main world; list only the other worlds")
        if "default" in self.mix and self.default_fraction:
            raise ValueError("[data] mix.default and default_fraction say the same thing; keep one of them")
        if any(not 0 < share <= 0.9 for share in self.mix.values()):
            raise ValueError(f"[data] mix shares must each be in (0, 0.9], got {dict(self.mix)}")
        if sum(self.mix.values()) + self.default_fraction > 0.9:
            raise ValueError(
                f"[data] mix + default_fraction take {sum(self.mix.values()) + self.default_fraction:.2f} of the "
                f"cells; keep at most 0.9 so that {self.world!r} stays the main world"
            )

    def other_worlds(self) -> dict[str, float]:
        """The worlds mixed into ``world`` with their shares of the cells: the default world first (as
        ``default_fraction`` always put it), then the others by name."""
        shares = dict(self.mix)
        if self.default_fraction:
            shares["default"] = self.default_fraction
        return {w: shares[w] for w in sorted(shares, key=lambda w: (w != "default", w))}


class LossTable(_Table):
    ssim_weight: float = Field(default=0.1, ge=0)
    ssim_warmup_iterations: int = Field(
        default=0, ge=0, description="ramp the SSIM weight linearly from 0 over this many iterations (0: off)"
    )
    summation_alpha: float = Field(default=0.02, ge=0, description="All models only (ignored for Single)")
    nll_weight: float = Field(default=1.0, ge=0)


class TrainTable(_Table):
    iterations: int = Field(default=200_000, ge=1)
    batch_size: int = Field(default=3, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    lr_factor: float = Field(default=0.5, gt=0, lt=1)
    plateau_iterations: int = Field(
        default=10_000, ge=1, description="halve lr after this long without a better val NRMSE"
    )
    min_lr: float = Field(default=1e-6, ge=0)
    val_every: int = Field(default=1000, ge=1)
    checkpoint_every: int = Field(default=5000, ge=1)
    log_every: int = Field(default=50, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(default=True, description="bf16 autocast on GPU (ignored on CPU)")
    threads: int = Field(default=0, ge=0, description="torch CPU threads (0: torch default)")
    seed: int = Field(default=0, ge=0)
    init: Path | None = Field(
        default=None, description="checkpoint stem to start from (fine-tuning); same structures and architecture"
    )
    context_lr_scale: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="lr multiplier for the context branch: added to a trained model, it starts at zero and at the "
        "fine-tuning lr barely moves",
    )
    # 8, not 4: with 4 frames per level the P95 of the pooled frames was noisy enough to flag 25 % of the model's own
    # world's 512-px frames (8: 4 %; docs/cross_world/uncertainty.md)
    confidence_frames: int = Field(
        default=8,
        ge=0,
        le=100,
        description="synthetic data: fit the best checkpoint's confidence thresholds at the end of a run on this many "
        "whole pipeline frames per photon level and frame size of the training world(s) (0: keep the thresholds "
        "fitted on the validation patches, as for a user's data)",
    )
    confidence_sizes: list[int] = Field(
        default=[128, 256, 512],
        min_length=1,
        max_length=8,
        description="SR frame sizes (px) the confidence thresholds are fitted at; a live frame is judged by the "
        "nearest",
    )
    train_only: Literal["all", "uncertainty"] = Field(
        default="all",
        description="'uncertainty': train only the log-variance head on top of [train] init, whose separation "
        "stays bit-identical (the best checkpoint is then chosen by validation loss, not NRMSE)",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainTable:
        check_sizes(self.confidence_sizes)
        return self


class TrainConfig(_Table):
    """A whole training run."""

    name: str = Field(default="imcsr", pattern=r"^[A-Za-z0-9_.-]+$", description="checkpoint file stem")
    output_dir: Path = Path("runs")
    variant: Literal["all", "single"] = "all"
    single_structure: str | None = None
    structures: list[StructureConfig] = Field(default_factory=_default_structures, min_length=1)
    model: ModelTable = Field(default_factory=ModelTable)
    data: DataTable = Field(default_factory=DataTable)
    loss: LossTable = Field(default_factory=LossTable)
    train: TrainTable = Field(default_factory=TrainTable)

    _source_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _variant(self) -> TrainConfig:
        names = self.structure_names
        if len(set(names)) != len(names):
            raise ValueError(f"structure names must be unique, got {names}")
        if self.variant == "single":
            if self.single_structure not in names:
                raise ValueError(f"variant 'single' needs single_structure = one of {names}")
        elif self.single_structure is not None:
            raise ValueError("single_structure is only used with variant = 'single'")
        if self.train.train_only == "uncertainty" and not (self.model.uncertainty and self.train.init is not None):
            raise ValueError(
                "[train] train_only = 'uncertainty' needs [model] uncertainty = true and [train] init = the model "
                "whose separation it keeps"
            )
        if self.data.frames and self.data.frames < self.model.in_frames:
            raise ValueError(
                f"[data] frames = {self.data.frames} is fewer than [model] in_frames = {self.model.in_frames}"
            )
        return self

    @property
    def structure_names(self) -> list[str]:
        return [s.name for s in self.structures]

    @property
    def target_indices(self) -> list[int] | None:
        """Structure indices the network outputs (None: all)."""
        if self.variant == "single":
            return [self.structure_names.index(self.single_structure or "")]
        return None

    @property
    def output_structures(self) -> list[StructureConfig]:
        idx = self.target_indices
        return list(self.structures) if idx is None else [self.structures[i] for i in idx]

    def net_config(self) -> IMCSRNetConfig:
        return IMCSRNetConfig(out_channels=len(self.output_structures), **self.model.model_dump())

    @property
    def summation_alpha(self) -> float:
        return self.loss.summation_alpha if self.variant == "all" else 0.0

    def resolve(self, path: Path | None) -> Path | None:
        """A path from the TOML, relative to the TOML's folder."""
        if path is None or path.is_absolute() or self._source_path is None:
            return path
        return self._source_path.parent / path


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training TOML; :class:`ConfigError` with one line naming the key on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config {str(path)!r} not found; see hardware_configs/train_tiny.toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = "unknown key" if e["type"] == "extra_forbidden" else str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {msg}")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    cfg._source_path = path.resolve()
    return cfg


__all__ = ["TrainConfig", "load_train_config"]
