"""What an engine runs: an IMC-SR network in fp32 on the CPU plus its identity (name, weights hash, card).

Engines never read checkpoints themselves; they get a :class:`ModelSource`, built from a checkpoint
(:func:`load_model`) or from a seeded random network (:func:`random_model`, for benchmarks and tests while no
trained weights exist). The weights hash keys every on-disk artefact (ONNX files, TensorRT plans).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from imcsr_live.errors import EngineError
from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig

#: Named network sizes for benchmarks and the CPU demo (the paper's is the model default).
PRESETS: dict[str, IMCSRNetConfig] = {
    "paper": IMCSRNetConfig(),
    # Paper size with local attention pooling over the training patch size (SCIENCE.md section 1): for timing both.
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
        """Number of stacked 3x3 convolutions on the longest path (each widens the receptive field by 1 px)."""
        return 1 + self.cfg.groups * self.cfg.blocks * 2 + 2

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
    """A checkpoint (``NAME.safetensors`` + ``NAME.json``) as a :class:`ModelSource`.

    Raises
    ------
    CheckpointError
        Missing/corrupt files or a structure list that differs from ``expect_structures``.
    """
    from imcsr_live.train.checkpoint import load_checkpoint  # lazy: keeps engine imports light

    net, card = load_checkpoint(path, expect_structures=expect_structures)
    return ModelSource(net, str(card.get("name", Path(path).stem)), str(card["weights_sha256"]), card)
