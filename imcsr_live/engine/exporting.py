"""``imcsr-live export``: a checkpoint -> ONNX graph (checked against torch) or TensorRT plan (cached + copied)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.engine.base import Progress, nrmse
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.errors import EngineError

EXPORT_KINDS = ("onnx", "tensorrt")


def export_model(
    source: ModelSource,
    kind: str,
    precision: str,
    *,
    output: Path | None = None,
    default_dir: Path | None = None,
    size: int = 1024,
    min_size: int | None = None,
    max_size: int | None = None,
    progress: Progress | None = None,
    **engine_options: Any,
) -> tuple[list[Path], str]:
    """Export ``source``; returns (written files, a one-line summary).

    onnx: writes ``NAME.PRECISION.onnx`` (next to the checkpoint unless ``output``) and checks it in ONNX Runtime
    against the torch network on a synthetic 64x64 window. tensorrt: builds a plan for frames ``min_size`` ..
    ``max_size`` (default: exactly ``size``) into the engine cache, and copies it (+ JSON sidecar) to ``output``.
    ``engine_options`` go to :class:`~imcsr_live.engine.tensorrt_engine.TensorRTEngine`.
    """
    if kind not in EXPORT_KINDS:
        raise EngineError(f"export engine must be one of {', '.join(EXPORT_KINDS)}, got {kind!r}")
    if precision not in ("fp32", "fp16", "bf16"):
        raise EngineError(f"precision {precision!r} is not one of fp32, fp16, bf16")
    folder = default_dir or Path.cwd()
    if kind == "onnx":
        from imcsr_live.engine.onnx_export import export_onnx, opset_for

        target = output or folder / f"{source.name}.{precision}.onnx"
        if progress:
            progress(f"exporting {source.name} ({precision}) to ONNX", 0.1)
        path = export_onnx(source, precision, target)
        summary = f"ONNX graph {path} (dynamic height/width, opset {opset_for(precision)})"
        if precision != "bf16":
            from imcsr_live.engine.ort_engine import OnnxRuntimeEngine, ort_available
            from imcsr_live.engine.torch_engine import TorchEngine

            if ort_available() is None:
                window = np.random.default_rng(0).random((source.cfg.in_frames, 64, 64), dtype=np.float32)
                ref = TorchEngine(source).separate(window).channels
                got = OnnxRuntimeEngine(source, precision, onnx_path=path).separate(window).channels
                summary += f"; onnxruntime vs torch fp32 NRMSE {nrmse(got, ref):.1e}"
        return [path], summary
    from imcsr_live.engine.tensorrt_engine import ShapeProfile, TensorRTEngine

    lo, hi = min_size or size, max_size or size
    if not lo <= size <= hi:
        raise EngineError(f"need min-size <= size <= max-size, got {lo} <= {size} <= {hi}")
    profile = ShapeProfile((lo, lo), (size, size), (hi, hi))
    engine = TensorRTEngine(source, precision, profile=profile, **engine_options)
    plan = engine.ensure_plan((size, size), progress)
    assert plan is not None
    files = [plan, plan.with_suffix(".json")]
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plan, output)
        shutil.copyfile(plan.with_suffix(".json"), output.with_suffix(".json"))
        files = [output, output.with_suffix(".json")]
    return files, f"TensorRT plan {files[0]} ({precision}, frames {lo}..{hi}, cached for the live app)"
