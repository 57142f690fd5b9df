"""TensorRT code paths against a fake ``tensorrt`` module (see fake_tensorrt.py); the real one needs NVIDIA's index."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.engine import nrmse
from imcsr_live.engine.onnx_export import INPUT_NAME
from imcsr_live.engine.tensorrt_engine import (
    INSTALL_HINT,
    PlanSpec,
    ShapeProfile,
    TensorRTEngine,
    network_flags,
    plan_paths,
    timing_cache_path,
)
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.errors import EngineError, EnginePlanError
from tests.engine.fake_tensorrt import make_fake_tensorrt

pytest.importorskip("onnxruntime")
GPU = ("Fake H100", "sm_90")


@pytest.fixture(params=["10.16.1", "11.4.0"])
def fake_trt(request, monkeypatch):
    trt = make_fake_tensorrt(request.param)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def make_engine(source, **kw) -> TensorRTEngine:
    return TensorRTEngine(source, kw.pop("precision", "fp16"), device="cpu", gpu=kw.pop("gpu", GPU), **kw)


def test_missing_tensorrt_says_how_to_install(small_source, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as if not installed
    with pytest.raises(EngineError, match="imcsr-live\\[tensorrt\\]") as info:
        TensorRTEngine(small_source)
    assert str(info.value) == INSTALL_HINT


def test_network_flags_per_version() -> None:
    """Values from the real bindings (10.16.1.11, 11.4.0.106): STRONGLY_TYPED is 1 in 10, kept but ignored (0) in
    11.4, whose BuilderFlag has no FP16/BF16/INT8 any more."""
    trt10, trt11 = make_fake_tensorrt("10.16.1"), make_fake_tensorrt("11.4.0")
    assert int(trt10.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 1
    assert int(trt11.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == 0
    assert network_flags(trt10) == 1 << 1  # STRONGLY_TYPED must be requested in 10
    assert network_flags(trt11) == 0  # always strongly typed in 11; the deprecated flag is not passed
    assert {"FP16", "BF16", "INT8"} <= set(trt10.BuilderFlag.__members__)
    assert not {"FP16", "BF16", "INT8"} & set(trt11.BuilderFlag.__members__)


def _broken_tensorrt(tmp_path, monkeypatch) -> str:
    """A ``tensorrt`` package whose import fails like a wheel without its NVIDIA libraries."""
    msg = "libnvonnxparser.so.11: cannot open shared object file: No such file or directory"
    pkg = tmp_path / "site" / "tensorrt"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"raise ImportError({msg!r})\n")
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return msg


def test_broken_tensorrt_install_reports_the_loader_error(small_source, tmp_path, monkeypatch, caplog) -> None:
    from typer.testing import CliRunner

    from imcsr_live.cli import app
    from imcsr_live.engine import select_engine
    from imcsr_live.engine.select import unavailable_reason
    from imcsr_live.engine.tensorrt_engine import import_tensorrt

    msg = _broken_tensorrt(tmp_path, monkeypatch)
    with pytest.raises(EngineError, match="installed but does not load") as info:
        import_tensorrt()
    text = str(info.value)
    assert msg in text and "installed but does not load" in text and "\n" not in text
    assert "is not installed" not in text
    reason = unavailable_reason("tensorrt")
    assert reason is not None and msg in reason and "no CUDA GPU" not in reason
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        select_engine("auto", small_source, "fp32", (16, 16))
    assert f"tensorrt: {text}" in caplog.text or f"tensorrt skipped: {text}" in caplog.text
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert msg in result.output


def test_missing_tensorrt_is_still_not_installed(monkeypatch) -> None:
    from imcsr_live.engine.select import unavailable_reason

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert unavailable_reason("tensorrt") == "tensorrt is not installed"


def test_peak_memory_reads_only_the_v2_size(small_source, monkeypatch) -> None:
    """TensorRT 10 deprecates ``device_memory_size`` (a warning per read); it must not be touched when ``_v2``
    exists (it was, as the eagerly evaluated default of getattr)."""
    import warnings

    import torch

    trt = make_fake_tensorrt("10.16.1")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    eng = make_engine(small_source)
    eng.warmup((28, 28))  # a size no other test uses: the plan cache is shared by the session
    monkeypatch.setattr(eng, "device", torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert eng.peak_memory_bytes() == 1000 + (1 << 20)
    assert trt.stats["v1_memory_reads"] == 0


def test_fake_parser_rejects_what_tensorrt_rejects(tmp_path) -> None:
    """Operators without a TensorRT importer, and opsets beyond the parser's documented range, fail to parse."""
    import onnx
    from onnx import TensorProto, helper

    from imcsr_live.engine.onnx_export import TENSORRT_MAX_OPSET
    from imcsr_live.engine.tensorrt_engine import build_plan

    def graph(op: str, opset: int) -> Path:
        x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, 4, 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
        model = helper.make_model(
            helper.make_graph([helper.make_node(op, [INPUT_NAME], ["y"], name="n0")], "g", [x], [y]),
            opset_imports=[helper.make_opsetid("", opset)],
        )
        path = tmp_path / f"{op}-{opset}.onnx"
        onnx.save(model, path)
        return path

    spec = PlanSpec("a" * 64, "10.16.1", *GPU, "fp32", 3, ShapeProfile.fixed((4, 4)))
    trt = make_fake_tensorrt("10.16.1")
    assert build_plan(trt, graph("Relu", 18), spec, None)  # supported op, documented opset
    with pytest.raises(EngineError, match=r"could not parse.*operator: Det .*UNSUPPORTED_NODE"):
        build_plan(trt, graph("Det", 18), spec, None)
    assert build_plan(trt, graph("Relu", TENSORRT_MAX_OPSET), spec, None)
    with pytest.raises(EngineError, match=f"opset {TENSORRT_MAX_OPSET + 1} is outside"):
        build_plan(trt, graph("Relu", TENSORRT_MAX_OPSET + 1), spec, None)
    with pytest.raises(EngineError, match=r"opset 22 is outside .*9\.\.20"):  # TensorRT 10.0 documented up to 20
        build_plan(make_fake_tensorrt("10.0.1"), graph("Relu", 22), spec, None)


@pytest.mark.parametrize("version", ["10.16.1", "11.4.0"])
def test_exported_graphs_parse_in_the_fake_parser(small_source, version) -> None:
    from imcsr_live.engine.onnx_export import export_onnx

    trt = make_fake_tensorrt(version)
    for precision in ("fp32", "fp16", "bf16"):
        parser = trt.OnnxParser(trt.Builder(None).create_network(network_flags(trt)), None)
        assert parser.parse_from_file(str(export_onnx(small_source, precision))), parser.errors


def test_build_run_and_parity(fake_trt, small_source, sr_window) -> None:
    eng = make_engine(small_source)
    eng.warmup(sr_window.shape[1:])
    assert fake_trt.stats["builds"] == 1
    assert eng.last_plan is not None and eng.last_plan.is_file()
    meta = json.loads(eng.last_plan.with_suffix(".json").read_text())
    assert meta["tensorrt_version"] == fake_trt.__version__ and meta["gpu_name"] == GPU[0]
    assert meta["precision"] == "fp16" and meta["profile"]["opt_hw"] == [96, 96]
    ref = TorchEngine(small_source).separate(sr_window).channels
    out = eng.separate(sr_window)
    assert out.engine == "tensorrt" and out.precision == "fp16"
    assert nrmse(out.channels, ref) <= 1e-2
    # a new frame size outside the fixed profile gets its own plan
    eng.separate(sr_window[:, :64, :80])
    assert fake_trt.stats["builds"] == 2


def test_plan_cache_survives_restart(fake_trt, small_source) -> None:
    make_engine(small_source).warmup((40, 40))
    builds = fake_trt.stats["builds"]
    again = make_engine(small_source)  # a new process would do exactly this
    again.warmup((40, 40))
    assert fake_trt.stats["builds"] == builds  # loaded, not rebuilt
    tc = timing_cache_path(fake_trt.__version__, *GPU)
    assert tc.is_file()


def test_timing_cache_is_fed_back_to_the_builder(fake_trt, small_source) -> None:
    make_engine(small_source).warmup((48, 40))
    make_engine(small_source).warmup((48, 56))
    assert fake_trt.stats["timing_cache_in"][-1] != b""  # second build started from the saved cache


def test_stale_cached_plan_is_rebuilt_with_warning(small_source, monkeypatch, caplog) -> None:
    old = make_fake_tensorrt("10.16.1")
    monkeypatch.setitem(sys.modules, "tensorrt", old)
    eng = make_engine(small_source)
    eng.warmup((32, 32))
    stale = eng.last_plan
    # TensorRT upgraded in place, same version string reported to the key -> same cache file, but the plan
    # header says otherwise (what a null deserialisation looks like in practice).
    new = make_fake_tensorrt("10.16.1")
    stale.write_bytes(stale.read_bytes().replace(b'"10.16.1"', b'"10.15.1"'))
    monkeypatch.setitem(sys.modules, "tensorrt", new)
    with caplog.at_level(logging.WARNING):
        eng2 = make_engine(small_source)
        eng2.warmup((32, 32))
    assert new.stats["builds"] == 1
    assert "does not load here" in caplog.text and "rebuilding" in caplog.text
    assert eng2.last_plan == stale and b'"10.16.1"' in stale.read_bytes()


def test_incompatible_explicit_plan_names_the_difference(small_source, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("10.16.1"))
    eng = make_engine(small_source)
    eng.warmup((32, 32))
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.4.0"))
    with pytest.raises(EnginePlanError, match=r"TensorRT 10\.16\.1 \(here 11\.4\.0\)") as info:
        make_engine(small_source, plan_path=eng.last_plan, gpu=("RTX 4090", "sm_89"))
    msg = str(info.value)
    assert "TensorRT 10.16.1 (here 11.4.0)" in msg
    assert "GPU Fake H100 (here RTX 4090)" in msg and "compute capability sm_90 (here sm_89)" in msg
    assert "imcsr-live export --model M --engine tensorrt" in msg
    damaged = tmp_path / "x.plan"
    damaged.write_bytes(b"not a plan")
    with pytest.raises(EnginePlanError, match="damaged or was built elsewhere"):
        make_engine(small_source, plan_path=damaged)


def test_explicit_plan_loads_and_enforces_its_profile(fake_trt, small_source) -> None:
    built = make_engine(small_source, profile=ShapeProfile((16, 16), (32, 32), (64, 64)))
    built.warmup((32, 32))
    eng = make_engine(small_source, plan_path=built.last_plan)
    assert eng.separate(np.ones((3, 48, 20), np.float32)).channels.shape == (3, 48, 20)
    with pytest.raises(EngineError, match="accepts frames"):
        eng.separate(np.ones((3, 80, 80), np.float32))


def test_plan_key_depends_on_every_field(small_source) -> None:
    base = PlanSpec("a" * 64, "10.16.1", "H100", "sm_90", "fp16", 3, ShapeProfile.fixed((512, 512)))
    variants = [
        dataclasses.replace(base, onnx_sha256="b" * 64),
        dataclasses.replace(base, tensorrt_version="11.4.0"),
        dataclasses.replace(base, gpu_name="A100"),
        dataclasses.replace(base, compute_capability="sm_80"),
        dataclasses.replace(base, precision="bf16"),
        dataclasses.replace(base, in_frames=1),
        dataclasses.replace(base, profile=ShapeProfile.fixed((1024, 1024))),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == len(variants) + 1
    assert base.key() == PlanSpec(**dataclasses.asdict(base) | {"profile": base.profile}).key()
    plan, meta = plan_paths(base, "m")
    assert plan.suffix == ".plan" and meta.suffix == ".json" and base.key() in plan.name


def test_no_gpu_is_a_clear_error(fake_trt, small_source) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    with pytest.raises(EngineError, match="needs a CUDA GPU"):
        TensorRTEngine(small_source)


def test_plan_build_reports_progress(fake_trt, small_source) -> None:
    seen: list[tuple[str, float]] = []
    make_engine(small_source).warmup((24, 24), lambda msg, frac: seen.append((msg, frac)))
    msgs = [m for m, _ in seen]
    assert any("building plan" in m for m in msgs)
    assert "tensorrt: Tactic selection 3/3" in msgs and "tensorrt: Building engine 2/2" in msgs
    fracs = [f for _, f in seen]
    assert fracs == sorted(fracs)  # never goes backwards, although TensorRT's phases nest
    assert seen[-1][1] == 1.0


def test_export_tensorrt_plan_with_profile(fake_trt, small_source, tmp_path, sr_window) -> None:
    from imcsr_live.engine.exporting import export_model

    out = tmp_path / "scope" / "model.plan"
    files, summary = export_model(
        small_source, "tensorrt", "fp16", output=out, size=64, min_size=32, max_size=128, device="cpu", gpu=GPU
    )
    assert files == [out, out.with_suffix(".json")] and all(f.is_file() for f in files)
    assert "frames 32..128" in summary
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["profile"] == {"min_hw": [32, 32], "opt_hw": [64, 64], "max_hw": [128, 128]}
    eng = make_engine(small_source, plan_path=out)  # what the scope PC does with the copied plan
    ref = TorchEngine(small_source).separate(sr_window).channels
    assert nrmse(eng.separate(sr_window).channels, ref) <= 1e-2
    with pytest.raises(EngineError, match="min-size <= size <= max-size"):
        export_model(small_source, "tensorrt", "fp16", size=16, min_size=32, device="cpu", gpu=GPU)
