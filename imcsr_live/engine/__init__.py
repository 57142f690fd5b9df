"""Inference engines behind one protocol: torch (CPU/CUDA, compiled), ONNX Runtime, TensorRT; engine cache.

Typical use::

    source = load_model("weights/imcsr-3")            # or random_model("cpu") for benchmarks
    engine = select_engine("auto", source, "fp16", shape=(1024, 1024), progress=print_progress)
    result = engine.separate(window)                  # window: (3, H, W) SR frames [t-1, t, t+1]
"""

from imcsr_live.engine.base import Engine, Separated, nrmse
from imcsr_live.engine.model_source import PRESETS, ModelSource, load_model, random_model
from imcsr_live.engine.select import KINDS, select_engine, unavailable_reason

__all__ = [
    "KINDS",
    "PRESETS",
    "Engine",
    "ModelSource",
    "Separated",
    "load_model",
    "nrmse",
    "random_model",
    "select_engine",
    "unavailable_reason",
]
