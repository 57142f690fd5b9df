"""The ``Engine`` protocol, its result type ``Separated``, and the shared front end of every engine.

Every engine takes a temporal window of SR frames as they come out of the reconstructor (``(3, H, W)`` for a
temporal-continuity model, ``(1, H, W)`` for a single-frame one, any positive scale), normalises it as the model
card says (:mod:`imcsr_live.model.normalization`), runs the network, and returns the separated channels of the
middle frame in [0, 1] (relative to the normalised input), plus the per-pixel standard deviation when the network
has an uncertainty head. Subclasses only implement :meth:`BaseEngine._infer` on a normalised float32 batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from imcsr_live.engine.model_source import ModelSource
from imcsr_live.errors import EngineError, InputDataError
from imcsr_live.model.normalization import INPUT_PERCENTILE, normalize_input

log = logging.getLogger(__name__)

Precision = str  # "fp32" | "fp16" | "bf16"
PRECISIONS = ("fp32", "fp16", "bf16")

#: Progress callback for warm-up / compilation: (message, fraction done in [0, 1]).
Progress = Callable[[str, float], None]


class EngineOutOfMemory(EngineError):
    """Raised by an engine's ``_infer`` when the device ran out of memory; the base class then tiles."""


@dataclass(frozen=True)
class Separated:
    """Separated channels of one timepoint (timepoint-agnostic: the pipeline adds index and timestamps).

    Attributes
    ----------
    channels
        ``(C, H, W)`` float32 in [0, 1], model channel order, relative to the normalised input.
    uncertainty
        ``(C, H, W)`` float32 predicted standard deviation (same units), or None without an uncertainty head.
    input_scale
        The divisor the input was normalised with; ``channels * input_scale`` is in SR intensity units.
    engine, precision
        Which engine produced it, at which precision.
    timings_s
        Seconds per stage: ``normalize``, ``infer`` (device work incl. transfers), ``total``.
    """

    channels: np.ndarray
    uncertainty: np.ndarray | None
    input_scale: float
    engine: str
    precision: str
    timings_s: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    """What the pipeline needs from an inference engine (docs/architecture.md#protocols)."""

    @property
    def name(self) -> str: ...

    @property
    def precision(self) -> str: ...

    def separate(self, window: np.ndarray) -> Separated: ...

    def warmup(self, shape: tuple[int, int], progress: Progress | None = None) -> None: ...


def nrmse(result: np.ndarray, reference: np.ndarray) -> float:
    """RMSE of ``result`` vs ``reference`` divided by the reference's range (the parity measure between engines)."""
    ref = np.asarray(reference, dtype=np.float64)
    res = np.asarray(result, dtype=np.float64)
    if ref.shape != res.shape:
        raise ValueError(f"shape {res.shape} vs reference {ref.shape}")
    span = float(ref.max() - ref.min()) or 1.0
    return float(np.sqrt(np.mean((res - ref) ** 2)) / span)


class BaseEngine:
    """Shared input checks, normalisation, tiling and output splitting. Subclasses implement ``_infer``."""

    kind: str = "base"

    def __init__(self, source: ModelSource, precision: str = "fp32", *, max_tile_pixels: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.source = source
        self._precision = precision
        self.max_tile_pixels = max_tile_pixels
        self.tile_overlap = source.receptive_radius()
        self._warm_shapes: set[tuple[int, int]] = set()

    # -- Engine protocol --------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.kind

    @property
    def precision(self) -> str:
        return self._precision

    #: Torch device on which to normalise (GPU engines): saves ~10 ms of CPU passes per 1024^2 window.
    normalize_on: Any = None

    def separate(self, window: np.ndarray) -> Separated:
        """Separate the middle frame of ``window`` (``(in_frames, H, W)``); see :class:`Separated`."""
        t0 = time.perf_counter()
        frames = self._check_window(window)
        h, w = frames.shape[-2:]
        tiled = self.max_tile_pixels is not None and h * w > self.max_tile_pixels
        out = None
        if self.normalize_on is not None and not tiled:
            x_dev = None
            try:
                x_dev, scale = normalize_on_device(frames, self.normalize_on)
                t1 = time.perf_counter()
                out = self._infer_tensor(x_dev[None])[0].float().cpu().numpy()
            except EngineOutOfMemory:
                x_dev = None  # free the device copy before the tiled retry
                self._shrink_tiles(h * w)
        if out is None:
            x, scale = normalize_input(frames)
            t1 = time.perf_counter()
            out = self.infer_normalized(x[None])[0]
        t2 = time.perf_counter()
        c = self.source.cfg.out_channels
        channels = np.ascontiguousarray(out[:c], dtype=np.float32)
        unc = None
        if out.shape[0] == 2 * c:
            # The head predicts log-variance; the UI and calibration want a standard deviation.
            unc = np.exp(0.5 * out[c:].astype(np.float32))
        t3 = time.perf_counter()
        timings = {"normalize": t1 - t0, "infer": t2 - t1, "total": t3 - t0}
        return Separated(channels, unc, scale, self.name, self.precision, timings)

    def warmup(self, shape: tuple[int, int], progress: Progress | None = None) -> None:
        """Build/compile for frames of ``shape`` (H, W) and run once, so the first live frame is not slow."""
        shape = (int(shape[0]), int(shape[1]))
        if progress:
            progress(f"{self.name}: preparing {shape[0]}x{shape[1]}", 0.0)
        self._prepare(shape, progress)
        rng = np.random.default_rng(0)
        x = rng.random((1, self.source.cfg.in_frames, *shape), dtype=np.float32)
        self.infer_normalized(x)
        self._warm_shapes.add(shape)
        if progress:
            progress(f"{self.name}: ready for {shape[0]}x{shape[1]}", 1.0)

    # -- shared machinery -------------------------------------------------------------------------------------
    def infer_normalized(self, x: np.ndarray) -> np.ndarray:
        """Network output for a normalised ``(1, F, H, W)`` float32 batch, tiled if it exceeds the memory cap."""
        from imcsr_live.engine.tiling import tiled_inference

        h, w = x.shape[-2:]
        while True:
            try:
                if self.max_tile_pixels is not None and h * w > self.max_tile_pixels:
                    return tiled_inference(self, x, self.max_tile_pixels)
                return self._infer(x)
            except EngineOutOfMemory:
                self._shrink_tiles(h * w)

    def _shrink_tiles(self, pixels: int) -> None:
        """After running out of device memory: halve the tile cap (kept for later frames), or give up."""
        cap = min(self.max_tile_pixels or pixels, pixels) // 2
        overlap = 2 * self.tile_overlap + 8
        if cap < (overlap + 16) ** 2:  # tiles must be wider than their overlap (tiling.axis_tiles)
            raise EngineError(
                f"{self.name}: out of device memory even for tiles of {cap} pixels; free GPU memory (other "
                "programs), use a smaller network or precision fp16"
            )
        log.warning("%s: out of device memory; tiling frames into tiles of at most %d pixels", self.name, cap)
        self.max_tile_pixels = cap

    def _check_window(self, window: np.ndarray) -> np.ndarray:
        a = np.asarray(window)
        need = self.source.cfg.in_frames
        if a.ndim == 2 and need == 1:
            a = a[None]
        if a.ndim != 3 or a.shape[0] != need:
            raise InputDataError(
                f"the model {self.source.name!r} takes {need} SR frame(s) (shape ({need}, H, W)); got shape "
                f"{a.shape}" + ("; pass the window [t-1, t, t+1]" if need == 3 else "")
            )
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise InputDataError(f"SR frames must be real numbers, got dtype {a.dtype}")
        if min(a.shape[1:]) < 8:
            raise InputDataError(f"SR frames of {a.shape[1]}x{a.shape[2]} are too small to separate (need >= 8x8)")
        if not np.all(np.isfinite(a)):
            raise InputDataError("SR window contains NaN or infinite values; check the reconstruction")
        return a

    def _prepare(self, shape: tuple[int, int], progress: Progress | None) -> None:
        """Engine-specific build/compile for one frame size (default: nothing)."""

    def _infer(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer_tensor(self, x: Any) -> Any:  # pragma: no cover - only engines that set normalize_on
        raise NotImplementedError


def normalize_on_device(frames: np.ndarray, device: Any) -> tuple[Any, float]:
    """:func:`~imcsr_live.model.normalization.normalize_input` computed by torch on ``device``.

    Same definition (clip at 0, divide by the linear-interpolated percentile of the middle frame, 1 if that is 0).
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).to(device, non_blocking=True).clamp_(min=0)
    mid = t[t.shape[0] // 2].flatten()
    # kthvalue around the percentile rank instead of torch.quantile (limited to 16M elements, sorts everything).
    pos = (INPUT_PERCENTILE / 100.0) * (mid.numel() - 1)
    lo = int(np.floor(pos))
    v_lo = torch.kthvalue(mid, lo + 1).values.double()
    v_hi = torch.kthvalue(mid, min(lo + 2, mid.numel())).values.double()
    scale = float(v_lo + (v_hi - v_lo) * (pos - lo))
    if not scale > 0:
        scale = 1.0
    return t / np.float32(scale), scale  # type: ignore[operator]  # torch stubs reject numpy scalars
