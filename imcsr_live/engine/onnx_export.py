"""ONNX export of the IMC-SR network with dynamic height and width (opset 18, 22 for bf16; ``torch.export``).

The precision is baked into the graph (fp16/bf16 weights and activations, fp32 at the input/output and in the
channel-attention pooling), because TensorRT 11 takes precision from the graph only
(docs/method.md#inference-deployment). Exports are cached in the engine cache under a key of weights hash,
architecture, precision, opset and torch version.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from imcsr_live.engine.cache import cache_dir, cache_key
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.engine.torch_engine import cast_network
from imcsr_live.errors import EngineError
from imcsr_live.fileio import atomic_write

log = logging.getLogger(__name__)

OPSET = 18
#: bf16 convolutions are valid ONNX only from opset 22 (18 rejects tensor(bfloat16) inputs to Conv).
OPSET_BF16 = 22
#: Highest opset TensorRT's ONNX parser documents (onnx-tensorrt docs/operators.md: "TensorRT 10.15 supports
#: operators in the inclusive range of opset 9 to opset 24"; 11.x the same; 10.0 documented 9..20).
TENSORRT_MAX_OPSET = 24


def opset_for(precision: str) -> int:
    """ONNX opset used for a precision: 18 (widest runtime support), 22 for bf16.

    Both are inside the range TensorRT's ONNX parser documents (9..24 for TensorRT 10.15+ and 11.x, which the
    ``tensorrt`` extra installs); TensorRT 10.0-10.14 documented less (10.0: up to 20), so bf16 wants TensorRT
    10.15 or newer. The bf16 graph (opset 22, with an ONNX ``Gelu`` node) has only been checked with ONNX's
    reference evaluator, not yet parsed by a real TensorRT: to check on the first GPU run.
    """
    return OPSET_BF16 if precision == "bf16" else OPSET


INPUT_NAME = "window"
OUTPUT_NAME = "separated"
#: Frame sizes the exported graph accepts (multiples of nothing in particular: the network is fully convolutional).
MIN_SIDE, MAX_SIDE = 8, 16384


def onnx_cache_path(source: ModelSource, precision: str) -> Path:
    """Where :func:`export_onnx` caches the graph for this network and precision."""
    key = cache_key(
        {
            "weights": source.weights_sha256,
            "arch": source.cfg.model_dump(),
            "precision": precision,
            "opset": opset_for(precision),
            "torch": torch.__version__,
        }
    )
    return cache_dir() / "onnx" / f"{source.name}-{precision}-{key}.onnx"


def export_onnx(source: ModelSource, precision: str = "fp32", path: str | Path | None = None) -> Path:
    """Export ``source`` to ONNX (cached when ``path`` is None) and return the file path.

    Raises
    ------
    EngineError
        The ONNX exporter's packages (``onnx``, ``onnxscript``) are missing, or the export failed.
    """
    target = Path(path) if path is not None else onnx_cache_path(source, precision)
    if path is None and target.is_file():
        return target
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with our message, not deep inside torch)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise EngineError(
            f"ONNX export needs the 'onnx' and 'onnxscript' packages ({exc.name} is missing): "
            "pip install 'imcsr-live[onnx]'"
        ) from None
    net = cast_network(source, precision).eval()
    example = torch.rand(1, source.cfg.in_frames, 64, 64)
    dim = torch.export.Dim
    dynamic = {"x": {2: dim("height", min=MIN_SIDE, max=MAX_SIDE), 3: dim("width", min=MIN_SIDE, max=MAX_SIDE)}}
    log.info("exporting %s (%s) to ONNX", source.name, precision)
    sink = io.StringIO()
    try:
        # The exporter prints progress lines and deprecation warnings that mean nothing to a microscopist.
        quiet = logging.getLogger("torch.onnx")
        level = quiet.level
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            quiet.setLevel(logging.ERROR)  # "torchvision is not installed" notices
            program = torch.onnx.export(
                net,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset_for(precision),
                dynamo=True,
                dynamic_shapes=dynamic,
                verbose=False,
            )
            assert program is not None  # dynamo=True returns the program
            data = program.model_proto.SerializeToString()
    except Exception as exc:
        log.debug("exporter output:\n%s", sink.getvalue())
        raise EngineError(f"ONNX export of {source.name} ({precision}) failed: {exc}") from exc
    finally:
        quiet.setLevel(level)
    atomic_write(target, data)
    return target
