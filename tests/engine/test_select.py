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

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choices")


def test_auto_picks_a_working_cpu_engine_and_says_why(small_source, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="imcsr_live.engine"):
        eng = select_engine("auto", small_source, "fp16", (32, 32))
    assert eng.name == "torch-cpu" and eng.precision == "fp32"  # no fast fp16 on the CPU
    text = caplog.text
    assert "tensorrt: " in text and "torch-cuda: no CUDA GPU" in text
    assert "using torch-cpu fp32 for 32x32 frames" in text and "fp16 -> fp32 on this device" in text
    assert eng.separate(np.ones((3, 32, 32), np.float32)).channels.shape == (3, 32, 32)


def test_named_engine_is_used(small_source) -> None:
    pytest.importorskip("onnxruntime")
    eng = select_engine("onnxruntime", small_source, "fp32", (32, 32))
    assert eng.name == "onnxruntime (CPU)"


def test_unavailable_named_engine_falls_back_with_warning(small_source, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        eng = select_engine("torch-cuda", small_source, "fp16", (32, 32))
    assert eng.name != "torch-cuda"
    assert "engine torch-cuda does not work here" in caplog.text and "falling back" in caplog.text
    with pytest.raises(EngineError, match="engine torch-cuda does not work here"):
        select_engine("torch-cuda", small_source, "fp16", (32, 32), strict=True)


def test_broken_tensorrt_plan_falls_back(small_source, monkeypatch, tmp_path, caplog) -> None:
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
