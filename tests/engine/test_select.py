from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from imcsr_live.engine import select as select_mod
from imcsr_live.engine import select_engine
from imcsr_live.engine.select import engine_precision, unavailable_reason
from imcsr_live.errors import EngineError
from tests.engine.fake_tensorrt import make_fake_tensorrt

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
EAGER = {"torch-cuda": {"compile": False}}  # no minutes of torch.compile in a test of the choice


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a CUDA GPU, also on one that has one: the CPU-side choices are tested everywhere."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_a_working_cpu_engine_and_says_why(small_source, caplog, no_cuda) -> None:
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32))
    assert eng.name == "torch-cpu" and eng.precision == "fp32"  # no fast fp16 on the CPU
    text = caplog.text
    assert "tensorrt: " in text and "torch-cuda: no CUDA GPU" in text
    assert "using torch-cpu fp32 for 32x32 frames" in text and "fp16 -> fp32 on this device" in text
    assert eng.separate(np.ones((3, 32, 32), np.float32)).channels.shape == (3, 32, 32)


def test_named_engine_is_used(small_source, no_cuda) -> None:
    pytest.importorskip("onnxruntime")
    eng = select_engine("onnxruntime", small_source, "fp32", (32, 32))
    assert eng.name == "onnxruntime (CPU)"


def test_unavailable_named_engine_falls_back_with_warning(small_source, caplog, no_cuda) -> None:
    with caplog.at_level(logging.WARNING):
        eng = select_engine("torch-cuda", small_source, "fp16", (32, 32))
    assert eng.name != "torch-cuda"
    assert "engine torch-cuda does not work here" in caplog.text and "falling back" in caplog.text
    with pytest.raises(EngineError, match="engine torch-cuda does not work here"):
        select_engine("torch-cuda", small_source, "fp16", (32, 32), strict=True)


def test_broken_tensorrt_plan_falls_back(small_source, monkeypatch, tmp_path, caplog, no_cuda) -> None:
    """A stale explicit plan (built by another TensorRT) makes the tensorrt candidate fail at warm-up: the
    selection logs why and moves on to the next engine."""
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.0.0"))
    real = unavailable_reason
    monkeypatch.setattr(select_mod, "unavailable_reason", lambda k: None if k == "tensorrt" else real(k))
    stale = tmp_path / "old.plan"
    stale.write_bytes(b"FAKETRTPLAN\0" + b'{"version": "10.0.0", "shapes": {}}\0')
    opts = {"tensorrt": {"device": "cpu", "gpu": ("Fake", "sm_90"), "plan_path": stale}}
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32), options=opts)
    assert eng.name == "torch-cpu"
    assert "tensorrt: TensorRT plan" in caplog.text and "cannot be loaded on this machine" in caplog.text


def test_nothing_works_lists_every_reason(small_source, monkeypatch) -> None:
    monkeypatch.setattr(select_mod, "unavailable_reason", lambda k: f"{k} switched off")
    with pytest.raises(EngineError, match="no inference engine works here: tensorrt: tensorrt switched off; "):
        select_engine("auto", small_source, "fp32", (32, 32))


def test_unknown_kind(small_source) -> None:
    with pytest.raises(EngineError, match="unknown engine kind 'tpu'"):
        select_engine("tpu", small_source, "fp32", (32, 32))


def test_precision_policy() -> None:
    assert engine_precision("torch-cpu", "fp16", "cpu") == "fp32"
    assert engine_precision("torch-cpu", "bf16", "cpu") == "bf16"
    assert engine_precision("torch-cuda", "fp16", "cuda") == "fp16"
    assert engine_precision("onnxruntime", "bf16", "cuda") == "fp16"
    assert engine_precision("tensorrt", "bf16", "cuda") == "bf16"


# --- on a CUDA machine: the GPU engines are tried first and a broken one falls back to the next -------------------
@pytest.mark.gpu
@needs_cuda
def test_auto_without_tensorrt_falls_back_to_torch_cuda_and_says_why(small_source, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32), options=EAGER)
    assert eng.name == "torch-cuda" and eng.precision == "fp16"  # fp16 stays fp16 on the GPU
    assert "engine tensorrt skipped: tensorrt is not installed" in caplog.text
    assert "using torch-cuda fp16 for 32x32 frames (tensorrt: tensorrt is not installed)" in caplog.text
    assert eng.separate(np.ones((3, 32, 32), np.float32)).channels.shape == (3, 32, 32)


@pytest.mark.gpu
@needs_cuda
def test_named_tensorrt_that_does_not_load_falls_back_to_torch_cuda_with_a_warning(
    small_source, monkeypatch, caplog
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with caplog.at_level(logging.WARNING, logger="imcsr_live.engine"):
        eng = select_engine("tensorrt", small_source, "fp16", (32, 32), options=EAGER)
    assert eng.name == "torch-cuda"
    assert "engine tensorrt does not work here (tensorrt is not installed); falling back" in caplog.text
    assert "engine: using torch-cuda fp16" in caplog.text  # a fallback from a named engine is a warning
    with pytest.raises(EngineError, match="engine tensorrt does not work here: tensorrt is not installed"):
        select_engine("tensorrt", small_source, "fp16", (32, 32), strict=True)


@pytest.mark.gpu
@needs_cuda
def test_stale_tensorrt_plan_on_a_gpu_falls_back_to_torch_cuda(small_source, monkeypatch, tmp_path, caplog) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt("11.0.0"))
    real = unavailable_reason
    monkeypatch.setattr(select_mod, "unavailable_reason", lambda k: None if k == "tensorrt" else real(k))
    stale = tmp_path / "old.plan"
    stale.write_bytes(b"FAKETRTPLAN\0" + b'{"version": "10.0.0", "shapes": {}}\0')
    opts = {"tensorrt": {"device": "cpu", "gpu": ("Fake", "sm_90"), "plan_path": stale}, **EAGER}
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32), options=opts)
    assert eng.name == "torch-cuda"
    assert "tensorrt: TensorRT plan" in caplog.text and "cannot be loaded on this machine" in caplog.text


@pytest.mark.gpu
@needs_cuda
def test_torch_cuda_out_of_memory_at_warmup_falls_back_to_the_cpu(small_source, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    real_build = select_mod.build_engine

    def build(kind: str, source, precision: str, **options):
        engine = real_build(kind, source, precision, **options)
        if kind == "torch-cuda":

            def no_memory(*args, **kwargs) -> None:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")

            engine.warmup = no_memory
        return engine

    monkeypatch.setattr(select_mod, "build_engine", build)
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32), options=EAGER)
    assert eng.name == "torch-cpu" and eng.precision == "fp32"
    assert "engine torch-cuda skipped: OutOfMemoryError: CUDA out of memory" in caplog.text
