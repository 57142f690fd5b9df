"""PyTorch engines: ``torch-cpu`` and ``torch-cuda``.

On CUDA the network runs in fp16/bf16 (the channel-attention pooling stays in fp32 inside the model), in
channels_last layout, compiled with ``torch.compile(mode="max-autotune")`` (which also captures CUDA graphs for
each fixed frame size); without compilation a CUDA graph is captured by hand per frame size. On the CPU the
network runs eagerly in channels_last (fp32 by default; bf16/fp16 work for parity checks).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch

from imcsr_live.engine.base import BaseEngine, EngineOutOfMemory, Progress
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.errors import EngineError

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class PrecisionWrapper(torch.nn.Module):
    """Runs ``net`` in ``dtype`` with float32 input and output (so callers and exported graphs stay fp32 at the
    boundary while the precision lives inside the graph, as TensorRT 11 requires)."""

    def __init__(self, net: torch.nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.net = net.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.dtype)).float()


def cast_network(source: ModelSource, precision: str) -> torch.nn.Module:
    """A private copy of the source network at ``precision`` with fp32 I/O."""
    net = copy.deepcopy(source.net)
    if precision == "fp32":
        return net
    return PrecisionWrapper(net, DTYPES[precision]).eval()


class _CudaGraphRunner:
    """One captured CUDA graph per frame size: static input/output buffers, replay per frame."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in self.graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm the allocator and cuDNN autotuning outside the capture
                    self.fn(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.fn(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()


class TorchEngine(BaseEngine):
    """The IMC-SR network in PyTorch on the CPU or one CUDA GPU."""

    def __init__(
        self,
        source: ModelSource,
        precision: str = "fp32",
        *,
        device: str = "cpu",
        compile: bool | None = None,
        cuda_graphs: bool | None = None,
        channels_last: bool | None = None,
        compile_mode: str = "max-autotune",
        max_tile_pixels: int | None = None,
    ) -> None:
        super().__init__(source, precision, max_tile_pixels=max_tile_pixels)
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if cuda and not torch.cuda.is_available():
            raise EngineError("torch-cuda needs a CUDA GPU and a CUDA build of PyTorch; none found here")
        if cuda and precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise EngineError("this GPU has no bf16 support; use precision fp16 or fp32")
        self.kind = "torch-cuda" if cuda else "torch-cpu"
        self.compile = cuda if compile is None else compile
        self.cuda_graphs = (cuda and not self.compile) if cuda_graphs is None else cuda_graphs
        if self.cuda_graphs and not cuda:
            raise EngineError("CUDA graphs need device cuda")
        # channels_last: faster on CUDA (tensor cores); on the CPU it was faster in most of our runs (oneDNN).
        self.channels_last = True if channels_last is None else channels_last
        net = cast_network(source, precision).to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack the keyword
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed frame size: autotuned kernels pay off
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.module = net
        self.normalize_on = self.device if cuda else None
        fn: Any = net
        if self.compile:
            # max-autotune: Triton kernel search + CUDA graphs per static shape; dynamic=False recompiles per size.
            fn = torch.compile(net, mode=compile_mode if cuda else "default", dynamic=False)
        if self.cuda_graphs:
            fn = _CudaGraphRunner(fn)
        self._fn = fn

    def _prepare(self, shape: tuple[int, int], progress: Progress | None) -> None:
        if progress and (self.compile or self.cuda_graphs):
            progress(f"{self.name}: compiling for {shape[0]}x{shape[1]} (can take minutes the first time)", 0.1)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor, eager: bool = False) -> torch.Tensor:
        t = x.to(self.device, non_blocking=True)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        return self.module(t) if eager else self._fn(t)

    def _infer_eager(self, x: np.ndarray) -> np.ndarray:
        """Uncompiled, no CUDA graph: used by tiling, which swaps the attention layers' pooling."""
        return self._infer(x, eager=True)

    def _infer(self, x: np.ndarray, eager: bool = False) -> np.ndarray:
        try:
            out = self._forward(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), eager)
        except torch.cuda.OutOfMemoryError:
            raise EngineOutOfMemory(f"{self.name}: out of GPU memory for a {x.shape[-2]}x{x.shape[-1]} frame") from None
        return out.float().contiguous().cpu().numpy()

    def _infer_tensor(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self._forward(x)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise EngineOutOfMemory(f"{self.name}: out of GPU memory for a {x.shape[-2]}x{x.shape[-1]} frame") from None

    def peak_memory_bytes(self) -> int | None:
        """Peak GPU memory allocated by torch since the last warm-up (None on the CPU)."""
        if self.device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self.device))
