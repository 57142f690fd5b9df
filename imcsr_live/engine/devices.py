"""On which device an engine kind runs here (shared by engine selection and the default-model choice)."""

from __future__ import annotations

import torch


def device_of(kind: str) -> str:
    """``"cuda"`` or ``"cpu"``: where engine ``kind`` (not ``auto``) runs on this machine."""
    if kind in ("tensorrt", "torch-cuda"):
        return "cuda"
    if kind == "onnxruntime":
        return "cuda" if torch.cuda.is_available() and ort_has_cuda() else "cpu"
    return "cpu"


def ort_has_cuda() -> bool:
    """Whether the installed ONNX Runtime offers its CUDA execution provider."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()
