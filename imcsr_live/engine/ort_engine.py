"""ONNX Runtime engine: the exported graph on the CPU, or on its CUDA / TensorRT execution providers.

The graph comes from :func:`imcsr_live.engine.onnx_export.export_onnx` (cached on disk). ONNX Runtime runs
fp32 and fp16 graphs; it has no bf16 convolution kernels, so bf16 is refused with a hint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from imcsr_live.engine.base import BaseEngine, Progress
from imcsr_live.engine.cache import cache_dir
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.engine.onnx_export import INPUT_NAME, export_onnx
from imcsr_live.errors import EngineError

log = logging.getLogger(__name__)

_SHORT = {"CPUExecutionProvider": "CPU", "CUDAExecutionProvider": "CUDA", "TensorrtExecutionProvider": "TensorRT"}


def ort_available() -> str | None:
    """None if onnxruntime imports, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc}); pip install onnxruntime"
    return None


class OnnxRuntimeEngine(BaseEngine):
    """The IMC-SR network as an ONNX graph in ONNX Runtime."""

    kind = "onnxruntime"

    def __init__(
        self,
        source: ModelSource,
        precision: str = "fp32",
        *,
        device: str = "cpu",
        use_tensorrt_provider: bool = True,
        threads: int | None = None,
        onnx_path: str | Path | None = None,
        max_tile_pixels: int | None = None,
    ) -> None:
        super().__init__(source, precision, max_tile_pixels=max_tile_pixels)
        why = ort_available()
        if why:
            raise EngineError(why)
        import onnxruntime as ort

        if precision == "bf16":
            raise EngineError("onnxruntime has no bf16 convolution kernels; use fp16 or fp32 (or tensorrt for bf16)")
        available = ort.get_available_providers()
        providers: list[str | tuple[str, dict[str, object]]] = []
        if device == "cuda":
            if "TensorrtExecutionProvider" in available and use_tensorrt_provider:
                trt_cache = cache_dir() / "ort-trt"
                trt_cache.mkdir(parents=True, exist_ok=True)
                providers.append(
                    (
                        "TensorrtExecutionProvider",
                        {
                            "trt_engine_cache_enable": True,
                            "trt_engine_cache_path": str(trt_cache),
                            "trt_timing_cache_enable": True,
                            "trt_fp16_enable": precision == "fp16",
                        },
                    )
                )
            if "CUDAExecutionProvider" not in available:
                raise EngineError(
                    "onnxruntime has no CUDA provider here (CPU-only build or no GPU); "
                    "pip install onnxruntime-gpu on a CUDA machine, or use device cpu"
                )
            providers.append("CUDAExecutionProvider")
        elif device != "cpu":
            raise EngineError(f"onnxruntime device must be 'cpu' or 'cuda', got {device!r}")
        providers.append("CPUExecutionProvider")
        self.onnx_path = Path(onnx_path) if onnx_path is not None else export_onnx(source, precision)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3  # warnings about provider fallbacks go to our log, not the console
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), sess_options=opts, providers=providers)
        except Exception as exc:
            raise EngineError(f"onnxruntime could not load {self.onnx_path.name}: {exc}") from None
        self.provider = self.session.get_providers()[0]
        self.device = device

    @property
    def name(self) -> str:
        return f"onnxruntime ({_SHORT.get(self.provider, self.provider)})"

    def _prepare(self, shape: tuple[int, int], progress: Progress | None) -> None:
        if progress and self.provider == "TensorrtExecutionProvider":
            progress(f"{self.name}: building a TensorRT engine for {shape[0]}x{shape[1]} (minutes, cached)", 0.1)

    def _infer(self, x: np.ndarray) -> np.ndarray:
        try:
            return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
        except Exception as exc:
            raise EngineError(f"{self.name} failed on a {x.shape[-2]}x{x.shape[-1]} frame: {exc}") from None
