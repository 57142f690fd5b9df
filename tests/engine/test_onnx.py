from __future__ import annotations

import pytest

from imcsr_live.engine import nrmse, random_model
from imcsr_live.engine.onnx_export import export_onnx, onnx_cache_path
from imcsr_live.engine.ort_engine import OnnxRuntimeEngine
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import EngineError
from imcsr_live.model.imcsr_net import IMCSRNetConfig

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_onnxruntime_fp32_parity_at_several_frame_sizes(small_source, sr_window) -> None:
    ref_engine = TorchEngine(small_source)
    eng = OnnxRuntimeEngine(small_source)
    assert eng.name == "onnxruntime (CPU)"
    # The exported graph has dynamic height/width: the 96x96 window and a non-square crop both run.
    for window in (sr_window, sr_window[:, 5:77, 10:90]):
        ref = ref_engine.separate(window).channels
        out = eng.separate(window).channels
        assert out.shape == ref.shape
        assert nrmse(out, ref) <= 1e-4


def test_onnxruntime_fp16_graph_parity(small_source, sr_window) -> None:
    ref = TorchEngine(small_source).separate(sr_window).channels
    out = OnnxRuntimeEngine(small_source, "fp16").separate(sr_window).channels
    assert nrmse(out, ref) <= 1e-2


def test_local_pooling_network_exports(sr_window) -> None:
    src = random_model(IMCSRNetConfig(width=8, groups=1, blocks=2, reduction=4, pooling="local", pool_window=32))
    ref = TorchEngine(src).separate(sr_window).channels
    assert nrmse(OnnxRuntimeEngine(src).separate(sr_window).channels, ref) <= 1e-4


def test_context_branch_network_exports(sr_window) -> None:
    """Dilated convolutions export with dynamic frame sizes; the branch is given weights (it starts at zero)."""
    import torch

    from imcsr_live.engine.model_source import ModelSource, state_sha256

    net = random_model(IMCSRNetConfig(width=8, groups=1, blocks=2, reduction=4, context_width=4), seed=3).net
    assert net.context is not None
    with torch.no_grad():
        net.context.fuse.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    src = ModelSource(net, "context-branch", state_sha256(net))  # keyed by the changed weights
    ref = TorchEngine(src).separate(sr_window).channels
    assert nrmse(OnnxRuntimeEngine(src).separate(sr_window).channels, ref) <= 1e-4


def test_export_is_cached_and_keyed(small_source, tmp_path) -> None:
    path = export_onnx(small_source, "fp32")
    assert path == onnx_cache_path(small_source, "fp32") and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert export_onnx(small_source, "fp32") == path and path.stat().st_mtime_ns == stamp  # not re-exported
    assert onnx_cache_path(small_source, "fp16") != path
    other = random_model(small_source.cfg, seed=99)
    assert onnx_cache_path(other, "fp32") != path  # other weights, other key
    explicit = export_onnx(small_source, "fp32", tmp_path / "m.onnx")
    assert explicit.read_bytes()[:2] == path.read_bytes()[:2]


def test_bf16_is_refused_with_a_hint(small_source) -> None:
    with pytest.raises(EngineError, match=r"bf16.*use fp16 or fp32"):
        OnnxRuntimeEngine(small_source, "bf16")


def test_cuda_request_without_cuda_provider(small_source) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(EngineError, match="onnxruntime-gpu"):
        OnnxRuntimeEngine(small_source, device="cuda")


def test_bf16_export_is_a_valid_graph(small_source) -> None:
    """bf16 needs opset 22 (where Conv accepts bfloat16): the strict ONNX checker accepts the graph."""
    import onnx

    model = onnx.load(export_onnx(small_source, "bf16"))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 22
    types = {i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.BFLOAT16 in types
    # I/O stays float32 so every engine feeds and reads the same buffers
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_exported_opsets_are_inside_tensorrts_documented_range(small_source) -> None:
    import onnx

    from imcsr_live.engine.onnx_export import TENSORRT_MAX_OPSET, opset_for

    for precision in ("fp32", "fp16", "bf16"):
        model = onnx.load(export_onnx(small_source, precision))
        assert model.opset_import[0].version == opset_for(precision) <= TENSORRT_MAX_OPSET


def test_bf16_graph_computes_the_torch_bf16_network(small_source, sr_window) -> None:
    """onnxruntime has no bf16 Conv kernel (NOT_IMPLEMENTED: Conv(22)), so ONNX's reference evaluator runs the
    opset-22 graph (bf16 convolutions, an ONNX Gelu node) against torch's bf16 and fp32 networks."""
    import numpy as np
    import onnx
    import torch
    from onnx.reference import ReferenceEvaluator

    from imcsr_live.engine.onnx_export import INPUT_NAME
    from imcsr_live.engine.torch_engine import cast_network

    model = onnx.load(export_onnx(small_source, "bf16"))
    assert "Gelu" in {n.op_type for n in model.graph.node}
    x = np.ascontiguousarray(sr_window[None, :, :32, :40] / sr_window.max(), dtype=np.float32)
    got = ReferenceEvaluator(model).run(None, {INPUT_NAME: x})[0]
    with torch.no_grad():
        ref16 = cast_network(small_source, "bf16")(torch.from_numpy(x)).numpy()
        ref32 = cast_network(small_source, "fp32").eval()(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and got.shape == ref32.shape
    assert nrmse(got, ref16) <= 1.5e-2  # measured 6e-3 (bf16 rounding differs in order)
    assert nrmse(got, ref32) <= 1.5e-2  # measured 6e-3
