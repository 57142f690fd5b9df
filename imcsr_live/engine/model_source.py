"""What an engine runs: an IMC-SR network in fp32 on the CPU plus its identity (name, weights hash, card).

Engines never read checkpoints themselves; they get a :class:`ModelSource`, built from a checkpoint
(:func:`load_model`) or from a seeded random network (:func:`random_model`, for benchmarks and tests while no
trained weights exist). The weights hash keys every on-disk artefact (ONNX files, TensorRT plans).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from imcsr_live.errors import EngineError
from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig, conv_radius

log = logging.getLogger(__name__)

#: Named network sizes for benchmarks and the CPU demo (the paper's is the model default).
PRESETS: dict[str, IMCSRNetConfig] = {
    "paper": IMCSRNetConfig(),
    # Paper size with local attention pooling over the training patch size, for timing both
    # (docs/method.md#channel-attention-pooling).
    "paper-local": IMCSRNetConfig(pooling="local", pool_window=128),
    # The CPU demo size (the body of hardware_configs/train_cpu_small.toml, TC input): 36 GFLOP per 512x512 frame
    # (1.8 % of the paper's), measured 0.63-0.69 s per 512x512 on one torch thread of our shared 2-core VM.
    "cpu": IMCSRNetConfig(width=24, groups=2, blocks=3, reduction=4),
    "tiny": IMCSRNetConfig(width=8, groups=1, blocks=2, reduction=4),
}


def state_sha256(net: torch.nn.Module) -> str:
    """SHA-256 over the parameter names, shapes and fp32 bytes (stable across processes)."""
    h = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        t = value.detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass
class ModelSource:
    """An fp32 CPU network in eval mode and what identifies it."""

    net: IMCSRNet
    name: str
    weights_sha256: str
    card: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.net = self.net.to("cpu", torch.float32).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    @property
    def cfg(self) -> IMCSRNetConfig:
        return self.net.cfg

    @property
    def out_tensors(self) -> int:
        """Channels the network returns (doubled with an uncertainty head)."""
        return self.cfg.out_channels * (2 if self.cfg.uncertainty else 1)

    def conv_depth(self) -> int:
        """Receptive radius of the convolutions (pixels; each 3x3 adds 1, a dilated one its dilation)."""
        return conv_radius(self.cfg)

    def receptive_radius(self) -> int:
        """Tile overlap that makes convolutions exact at tile borders, rounded up to a multiple of 8.

        With local channel-attention pooling, half a pooling window is added: the box mean reaches that far.
        """
        r = self.conv_depth()
        if self.cfg.pooling == "local":
            r += self.cfg.pool_window // 2
        return -(-r // 8) * 8


def random_model(cfg: IMCSRNetConfig | str = "paper", seed: int = 0, name: str | None = None) -> ModelSource:
    """A seeded randomly initialised network (benchmarks, tests). ``cfg`` may be a preset name."""
    if isinstance(cfg, str):
        if cfg not in PRESETS:
            raise EngineError(f"unknown network preset {cfg!r}; choose one of {', '.join(PRESETS)}")
        label, cfg = cfg, PRESETS[cfg]
    else:
        label = f"w{cfg.width}g{cfg.groups}b{cfg.blocks}"
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        net = IMCSRNet(cfg)
    finally:
        torch.random.set_rng_state(gen_state)
    return ModelSource(net, name or f"random-{label}-seed{seed}", state_sha256(net))


def load_model(path: str | Path, expect_structures: list[str] | None = None) -> ModelSource:
    """A checkpoint (``NAME.safetensors`` + ``NAME.json``, or the name of a shipped model) as a ModelSource.

    Raises
    ------
    CheckpointError
        Missing/corrupt files or a structure list that differs from ``expect_structures``.
    """
    from imcsr_live.model.checkpoint import load_checkpoint  # lazy: keeps engine imports light

    path = resolve_checkpoint(path)
    net, card = load_checkpoint(path, expect_structures=expect_structures)
    return ModelSource(net, str(card.get("name", Path(path).stem)), str(card["weights_sha256"]), card)


# --- models shipped with the app (imcsr_live/weights/) ---

#: Where the shipped models live (``NAME.safetensors`` + ``NAME.json``).
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: Without ``runs_on`` in its card, a model with more parameters than this needs a GPU for the live cadence (the
#: CPU demo network has 0.07 M, the paper's 3.8 M).
GPU_MODEL_PARAMETERS = 1_000_000


@dataclass(frozen=True)
class ShippedModel:
    """A model in :data:`WEIGHTS_DIR`, described from its card (nothing is loaded)."""

    stem: Path
    card: dict[str, Any]

    @property
    def name(self) -> str:
        return self.stem.name

    @property
    def structures(self) -> list[str]:
        return [s["name"] for s in self.card["structures"]]

    @property
    def parameters(self) -> int:
        """Parameter count, from the fp32 weights file (4 bytes each; the header is negligible)."""
        return self.stem.with_suffix(".safetensors").stat().st_size // 4

    @property
    def uncertainty(self) -> bool:
        return bool(self.card["architecture"].get("uncertainty", False))

    @property
    def runs_on(self) -> str:
        """``gpu`` or ``cpu``: the card's ``runs_on``, else decided by the parameter count."""
        return self.card.get("runs_on") or ("gpu" if self.parameters > GPU_MODEL_PARAMETERS else "cpu")

    @property
    def world(self) -> str:
        """The synthetic world(s) its separation was trained on, joined by "+" (``randomised+default+independent``
        for a mix; ``folder`` / ``acquired`` for a user's data); ``default`` where the card does not say."""
        from imcsr_live.model.card import separation_data, separation_worlds

        data = separation_data(self.card)
        worlds = separation_worlds(data) if data else []
        return "+".join(worlds) or str(data.get("kind") or self.card.get("world") or "default")  # a user's data

    def summary(self) -> dict[str, Any]:
        """What ``imcsr-live info`` / ``models`` list."""
        return {
            "name": self.name,
            "structures": self.structures,
            "parameters": self.parameters,
            "runs_on": self.runs_on,
            "uncertainty": self.uncertainty,
            "world": self.world,
        }


def shipped_models(weights_dir: Path | None = None) -> list[ShippedModel]:
    """Valid shipped models (card + weights), by name; a damaged card is skipped (and logged)."""
    from imcsr_live.errors import CheckpointError
    from imcsr_live.model.checkpoint import read_card

    folder = WEIGHTS_DIR if weights_dir is None else weights_dir
    out = []
    for card_path in sorted(folder.glob("*.json")):
        stem = card_path.with_suffix("")
        if not stem.with_suffix(".safetensors").is_file():
            continue
        try:
            out.append(ShippedModel(stem, read_card(stem)))
        except CheckpointError as exc:
            log.warning("shipped model %s skipped: %s", stem.name, exc)
    return out


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself when its card exists (``DIR/NAME``, ``NAME.json``, ``NAME.safetensors``); else, for a bare
    name, the shipped model of that name. Unchanged otherwise (the loader then names what is missing)."""
    from imcsr_live.model.checkpoint import checkpoint_paths

    p = Path(path)
    if checkpoint_paths(p)[1].is_file() or len(p.parts) != 1:
        return p
    shipped = WEIGHTS_DIR / checkpoint_paths(p)[1].with_suffix("").name
    return shipped if checkpoint_paths(shipped)[1].is_file() else p


def engine_uses_gpu(kind: str) -> bool:
    """Whether engine ``kind`` (``auto`` included) would run on a CUDA GPU on this machine."""
    if not torch.cuda.is_available():
        return False
    from imcsr_live.engine.devices import device_of

    return kind == "auto" or device_of(kind) == "cuda"


def choose_default_model(structures: list[str], engine_kind: str = "auto") -> tuple[Path | None, str]:
    """The shipped model for ``structures`` and why: the GPU-size model when the engine runs on a CUDA GPU, else
    the CPU-size one (the GPU one cannot keep the live cadence on a CPU).

    Returns ``(stem, reason)``; ``stem`` is None when no shipped model separates these structures.
    """
    matching = [m for m in shipped_models() if m.structures == list(structures)]
    if not matching:
        return None, f"no shipped model separates {list(structures)}"
    gpu = [m for m in matching if m.runs_on == "gpu"]
    cpu = [m for m in matching if m.runs_on == "cpu"]
    on_gpu = engine_uses_gpu(engine_kind)
    if on_gpu and gpu:
        best = max(gpu, key=lambda m: m.parameters)
        return best.stem, f"CUDA GPU engine: the paper-size {best.name} keeps the live cadence there"
    if cpu:
        best = min(cpu, key=lambda m: m.parameters)
        if gpu and not on_gpu:
            why = "no CUDA GPU" if not torch.cuda.is_available() else f"engine {engine_kind} runs on the CPU"
            return best.stem, f"{why}; {gpu[0].name} needs one for the 2-s cadence"
        return best.stem, "the shipped model for these structures"
    best = min(gpu, key=lambda m: m.parameters)
    return best.stem, "only a GPU-size model is shipped for these structures; expect slow frames without a GPU"
