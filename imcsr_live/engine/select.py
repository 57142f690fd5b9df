"""Choosing and building an engine: ``[engine] kind = "auto"`` takes the first one that works here, in a fixed order.

Order (fastest first): ``tensorrt`` > ``torch-cuda`` > the CPU engines. On the CPU, ``torch-cpu`` and
``onnxruntime`` were within +-20 % of each other at 512x512 on our shared 2-core VM, and which one led flipped with
the machine's load (interleaved runs, see docs/PERFORMANCE.md); torch needs no export step and no extra package, so
it comes first and onnxruntime (the ``onnx`` extra) is the CPU fallback. ``auto`` does not time the candidates:
``imcsr-live benchmark`` does, and names the setting for the fastest one when it is not the one ``auto`` takes.
Every candidate is built *and warmed up* on the real frame size before it is accepted, so a broken one (missing
runtime, stale TensorRT plan, out of memory) is skipped with a logged reason and the next one is tried. CPU engines
run fp32 unless bf16 is asked for: fp16 has no fast CPU kernels.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Any

import torch

from imcsr_live.engine.base import BaseEngine, Progress
from imcsr_live.engine.devices import device_of
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.errors import EngineError

log = logging.getLogger(__name__)

KINDS = ("tensorrt", "torch-cuda", "torch-cpu", "onnxruntime")
AUTO_ORDER = KINDS


def unavailable_reason(kind: str) -> str | None:
    """Why ``kind`` cannot run here (cheap checks only), or None if it may."""
    cuda = torch.cuda.is_available()
    if kind == "tensorrt":
        if _find_spec("tensorrt") is None:
            return "tensorrt is not installed"
        from imcsr_live.engine.tensorrt_engine import tensorrt_import_problem

        # Installed is not enough: a broken install (missing NVIDIA libraries) must say so, not "no CUDA GPU".
        return tensorrt_import_problem() or (None if cuda else "no CUDA GPU")
    if kind == "torch-cuda":
        return None if cuda else "no CUDA GPU"
    if kind == "onnxruntime":
        return None if importlib.util.find_spec("onnxruntime") is not None else "onnxruntime is not installed"
    if kind == "torch-cpu":
        return None
    return f"unknown engine kind {kind!r}"


def _find_spec(name: str) -> object | None:
    """``importlib.util.find_spec`` that treats a module blocked in ``sys.modules`` (None) as missing."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def engine_precision(kind: str, precision: str, device: str) -> str:
    """The precision an engine runs at: CPU engines use fp32 for fp16 requests (no fast fp16 CPU kernels)."""
    if device == "cpu" and precision == "fp16":
        return "fp32"
    if kind == "onnxruntime" and precision == "bf16":
        return "fp16" if device == "cuda" else "fp32"
    return precision


def build_engine(kind: str, source: ModelSource, precision: str, **options: Any) -> BaseEngine:
    """Construct one engine (no warm-up). ``options`` go to its constructor (device, max_tile_pixels, ...)."""
    from imcsr_live.engine.ort_engine import OnnxRuntimeEngine
    from imcsr_live.engine.tensorrt_engine import TensorRTEngine
    from imcsr_live.engine.torch_engine import TorchEngine

    factories: dict[str, Callable[..., BaseEngine]] = {
        "torch-cpu": lambda: TorchEngine(source, precision, device="cpu", **options),
        "torch-cuda": lambda: TorchEngine(source, precision, device="cuda", **options),
        "onnxruntime": lambda: OnnxRuntimeEngine(source, precision, **options),
        "tensorrt": lambda: TensorRTEngine(source, precision, **options),
    }
    if kind not in factories:
        raise EngineError(f"unknown engine kind {kind!r}; choose auto or one of {', '.join(KINDS)}")
    return factories[kind]()


def engine_options(max_tile_pixels: int | None) -> dict[str, dict[str, Any]] | None:
    """Per-kind constructor options from the rig's ``[engine]`` table (the same tile cap for every engine)."""
    if max_tile_pixels is None:
        return None
    return {kind: {"max_tile_pixels": max_tile_pixels} for kind in KINDS}


def select_engine(
    kind: str,
    source: ModelSource,
    precision: str,
    shape: tuple[int, int],
    *,
    progress: Progress | None = None,
    strict: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> BaseEngine:
    """Build, warm up and return a working engine for frames of ``shape`` (H, W).

    ``kind = "auto"`` tries :data:`AUTO_ORDER`; a named kind is tried first and, unless ``strict``, falls back to
    the engines after it with a warning. ``options`` maps kind -> extra constructor arguments.

    Raises
    ------
    EngineError
        No engine works (the message lists why each one failed), or ``strict`` and the named one fails.
    """
    if kind == "auto":
        order = list(AUTO_ORDER)
    elif kind in KINDS:
        order = [kind] if strict else [kind, *[k for k in AUTO_ORDER if k != kind]]
    else:
        raise EngineError(f"unknown engine kind {kind!r}; choose auto or one of {', '.join(KINDS)}")
    tried: list[str] = []
    for candidate in order:
        reason = unavailable_reason(candidate)
        if reason is None:
            device = device_of(candidate)
            prec = engine_precision(candidate, precision, device)
            opts = dict((options or {}).get(candidate, {}))
            if candidate == "onnxruntime":
                opts.setdefault("device", device)
            try:
                engine = build_engine(candidate, source, prec, **opts)
                engine.warmup(shape, progress)
            except EngineError as exc:
                reason = str(exc)
            except Exception as exc:  # a runtime's own error (CUDA, compiler): fall back, keep the reason
                log.debug("engine %s failed", candidate, exc_info=True)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                why = "; ".join(tried) if tried else "first choice"
                if prec != precision:
                    why += f"; {precision} -> {prec} on this device"
                msg = f"engine: using {engine.name} {engine.precision} for {shape[0]}x{shape[1]} frames ({why})"
                if kind != "auto" and candidate != kind:
                    log.warning(msg)
                else:
                    log.info(msg)
                return engine
        tried.append(f"{candidate}: {reason}")
        if kind != "auto" and candidate == kind:
            if strict:
                raise EngineError(f"engine {kind} does not work here: {reason}")
            log.warning("engine %s does not work here (%s); falling back", kind, reason)
        else:
            log.info("engine %s skipped: %s", candidate, reason)
    raise EngineError("no inference engine works here: " + "; ".join(tried))
