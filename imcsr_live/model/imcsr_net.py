"""The IMC-SR network: a shallow residual-channel-attention network (RCAN-style) that separates structures.

Architecture (paper + docs/method.md#imc-sr-network): head conv3x3 + GELU; ``groups`` residual groups of ``blocks``
residual channel-attention blocks (RCAB) each, a group adds its input to the output of its last block (no extra
conv); tail conv3x3 + GELU, conv3x3 -> ``out_channels`` + sigmoid. RCAB = conv3x3, GELU, conv3x3, GELU, channel
attention, + block input. Channel attention pools each feature map (globally, or over a local window so that a
large inference frame sees the same statistics as the training patches), squeezes ``width -> width / reduction``
(ReLU) and expands back (sigmoid). The paper's configuration (the defaults, 3 input frames, 3 outputs) has
3,762,251 parameters.

An optional uncertainty head predicts a per-pixel log-variance per output channel (trained with a Gaussian NLL, on
features it does not back-propagate into: the separation trains as without the head); the network then returns
``2 * out_channels`` channels: the separated images first, the log-variances after
(see :func:`split_output`).

An optional context branch (``context_width > 0``) widens the receptive field cheaply: a narrow stack of residual
dilated 3x3 convolutions on the input frames (dilations 1, 2, 4, 8, 16, twice: a radius of 63 SR pixels, about 2 um,
against the body's 15), added to the head features through a zero-initialised 1x1 convolution. A network with the
branch therefore starts as the one without it, and fine-tuning from a trained model begins from that model's output.
Dilated convolutions keep the network translation-equivariant (unlike pooling pyramids), so tiled inference stays
exact with a margin of :func:`receptive_radius`. No training logic and no file I/O here.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn
from torch.nn import functional as F

OUTPUT_BIAS_INIT = -3.0  # sigmoid(-3) = 0.047, about the mean of a normalised target channel


class IMCSRNetConfig(BaseModel):
    """Architecture of one IMC-SR network; saved in every model card, so a checkpoint rebuilds its network."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_frames: Literal[1, 3] = Field(default=3, description="1: single frame; 3: temporal continuity (t-1, t, t+1)")
    out_channels: int = Field(default=3, ge=1, le=16, description="separated structures (1 for a Single model)")
    width: int = Field(default=64, ge=4, le=512, description="feature channels")
    groups: int = Field(default=5, ge=1, le=32, description="residual groups")
    blocks: int = Field(default=10, ge=1, le=64, description="RCABs per residual group")
    reduction: int = Field(default=16, ge=1, description="channel-attention squeeze factor (64 -> 4 for 16)")
    pooling: Literal["global", "local"] = Field(default="global", description="channel-attention pooling")
    pool_window: int = Field(default=128, ge=3, description="local pooling window (pixels), = training patch size")
    uncertainty: bool = Field(default=False, description="add a per-pixel log-variance head")
    context_width: int = Field(default=0, ge=0, le=128, description="context branch features (0: no branch)")
    context_dilations: tuple[int, ...] = Field(
        default=(1, 2, 4, 8, 16, 1, 2, 4, 8, 16), min_length=1, max_length=16, description="context branch dilations"
    )

    @model_validator(mode="after")
    def _squeeze_fits(self) -> IMCSRNetConfig:
        if self.width // self.reduction < 1:
            raise ValueError(f"width {self.width} / reduction {self.reduction} leaves no channel-attention features")
        if any(not 1 <= d <= 64 for d in self.context_dilations):
            raise ValueError(f"context_dilations {list(self.context_dilations)}: each must be 1-64")
        return self


def box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window`` x ``window`` box centred on each pixel (box clipped at the borders), via cumsums.

    O(H W) whatever the window, so local pooling costs about as much as global pooling on a 1024^2 frame.
    """
    r_lo = window // 2
    r_hi = window - 1 - r_lo

    def along(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = t.shape[dim]
        c = torch.cumsum(t, dim=dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)  # c[i] = sum of t[:i]
        idx = torch.arange(n, device=t.device)
        hi = (idx + r_hi + 1).clamp(max=n)
        lo = (idx - r_lo).clamp(min=0)
        s = c.index_select(dim, hi) - c.index_select(dim, lo)
        count = (hi - lo).to(t.dtype)
        shape = [1] * t.dim()
        shape[dim] = n
        return s, count.view(shape)

    s, cy = along(x, x.dim() - 2)
    s, cx = along(s, x.dim() - 1)
    return s / (cy * cx)


class ChannelAttention(nn.Module):
    """Squeeze (pool) -> 1x1 conv down + ReLU -> 1x1 conv up + sigmoid -> rescale the features."""

    def __init__(self, width: int, reduction: int, pooling: str = "global", pool_window: int = 128) -> None:
        super().__init__()
        self.down = nn.Conv2d(width, width // reduction, 1)
        self.up = nn.Conv2d(width // reduction, width, 1)
        self.pooling = pooling
        self.pool_window = pool_window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Pool in fp32: a mean over a million fp16 values loses precision (docs/method.md#channel-attention-pooling).
        xf = x.float()
        if self.pooling == "local":
            pooled = box_mean(xf, self.pool_window)
        else:
            pooled = xf.mean(dim=(2, 3), keepdim=True)
        pooled = pooled.to(x.dtype)
        w = torch.sigmoid(self.up(F.relu(self.down(pooled))))
        return x * w


class RCAB(nn.Module):
    """Residual channel-attention block: conv, GELU, conv, GELU, channel attention, + input."""

    def __init__(self, cfg: IMCSRNetConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.width, cfg.width, 3, padding=1)
        self.conv2 = nn.Conv2d(cfg.width, cfg.width, 3, padding=1)
        self.attention = ChannelAttention(cfg.width, cfg.reduction, cfg.pooling, cfg.pool_window)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv1(x))
        y = F.gelu(self.conv2(y))
        return x + self.attention(y)


class ResidualGroup(nn.Module):
    """``blocks`` RCABs with a skip from the group input to the output of the last block."""

    def __init__(self, cfg: IMCSRNetConfig) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(RCAB(cfg) for _ in range(cfg.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


class ContextBranch(nn.Module):
    """Narrow residual stack of dilated 3x3 convolutions on the input; its zero-initialised 1x1 projection to the
    network width makes it contribute nothing until training teaches it to."""

    def __init__(self, cfg: IMCSRNetConfig) -> None:
        super().__init__()
        c = cfg.context_width
        self.entry = nn.Conv2d(cfg.in_frames, c, 3, padding=1)
        self.dilated = nn.ModuleList(nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in cfg.context_dilations)
        self.fuse = nn.Conv2d(c, cfg.width, 1)
        with torch.no_grad():
            self.fuse.weight.zero_()
            assert self.fuse.bias is not None  # Conv2d(bias=True)
            self.fuse.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.entry(x))
        for conv in self.dilated:
            y = y + F.gelu(conv(y))
        return self.fuse(y)


class IMCSRNet(nn.Module):
    """IMC-SR separation network.

    Input ``(B, in_frames, H, W)`` normalised SR frames (see the model card's normalisation); output
    ``(B, out_channels, H, W)`` in [0, 1], or ``(B, 2 * out_channels, H, W)`` with the uncertainty head
    (log-variances appended). Works on any H, W (fully convolutional).
    """

    def __init__(self, cfg: IMCSRNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or IMCSRNetConfig()
        c = self.cfg
        self.head = nn.Conv2d(c.in_frames, c.width, 3, padding=1)
        self.context = ContextBranch(c) if c.context_width else None
        self.body = nn.Sequential(*(ResidualGroup(c) for _ in range(c.groups)))
        self.tail = nn.Conv2d(c.width, c.width, 3, padding=1)
        self.out = nn.Conv2d(c.width, c.out_channels, 3, padding=1)
        self.logvar = nn.Conv2d(c.width, c.out_channels, 3, padding=1) if c.uncertainty else None
        # Start near the typical target (sparse structures: most pixels dark) instead of sigmoid(0) = 0.5: from 0.5
        # the first Adam steps drive every logit far negative together and the sigmoid saturates ("dead" output).
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            assert self.out.bias is not None  # Conv2d(bias=True)
            self.out.bias.fill_(OUTPUT_BIAS_INIT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.gelu(self.head(x))
        if self.context is not None:
            f = f + self.context(x)
        f = self.body(f)
        f = F.gelu(self.tail(f))
        y = torch.sigmoid(self.out(f))
        if self.logvar is None:
            return y
        # The head reads the separation's features but does not shape them: its NLL gradient is hundreds of times
        # the separation loss's, and through shared features it would train the body for the variance instead.
        # Clamp keeps exp(-logvar) finite in the NLL early in training.
        return torch.cat([y, self.logvar(f.detach()).clamp(-20.0, 10.0)], dim=1)


def split_output(out: torch.Tensor, out_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(separated, log_variance or None)`` from a network output."""
    if out.shape[1] == out_channels:
        return out, None
    if out.shape[1] == 2 * out_channels:
        return out[:, :out_channels], out[:, out_channels:]
    raise ValueError(f"network output has {out.shape[1]} channels; expected {out_channels} or {2 * out_channels}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def flops_per_pixel(cfg: IMCSRNetConfig) -> float:
    """Multiply-adds x 2 per output pixel of the convolutions (the attention's 1x1 convs run once per frame)."""
    w = cfg.width
    conv = 2 * 9 * w * w
    per_pixel = 2 * 9 * cfg.in_frames * w + cfg.groups * cfg.blocks * 2 * conv + conv
    per_pixel += 2 * 9 * w * cfg.out_channels * (2 if cfg.uncertainty else 1)
    if cfg.context_width:
        c = cfg.context_width
        per_pixel += 2 * 9 * cfg.in_frames * c + len(cfg.context_dilations) * 2 * 9 * c * c + 2 * c * w
    return float(per_pixel)


def conv_radius(cfg: IMCSRNetConfig) -> int:
    """How far (pixels) an output pixel sees through the convolutions: the longer of the head and the context
    branch, then 1 px per 3x3 convolution of the body, the tail and the output (channel attention excluded)."""
    entry = 1 + (sum(cfg.context_dilations) if cfg.context_width else 0)
    return entry + cfg.groups * cfg.blocks * 2 + 2


def set_pooling(net: IMCSRNet, pooling: Literal["global", "local"], window: int | None = None) -> IMCSRNet:
    """Switch every channel-attention module of a (trained) network to global or local pooling, in place.

    Why: a network trained on 128 x 128 patches pools over 128 x 128 pixels; at inference on a 1024 x 1024
    frame global pooling averages over a much larger, differently composed area. Local pooling with the
    training patch size as window restores the training statistics (docs/method.md#channel-attention-pooling).
    """
    window = window or net.cfg.pool_window
    for m in net.modules():
        if isinstance(m, ChannelAttention):
            m.pooling = pooling
            m.pool_window = window
    net.cfg = net.cfg.model_copy(update={"pooling": pooling, "pool_window": window})
    return net
