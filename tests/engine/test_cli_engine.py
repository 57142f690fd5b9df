"""`imcsr-live export` and `imcsr-live benchmark` as a user runs them (subprocess, real checkpoint files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imcsr_live.engine import load_model, nrmse, random_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.model.checkpoint import save_checkpoint

STRUCTURES = [{"name": n, "color": c} for n, c in (("Microtubules", "#00FF00"), ("ER", "#FF00FF"), ("Lyso", "#00FFFF"))]


def run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMCSR_LIVE_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stem = tmp_path_factory.mktemp("ckpt") / "tiny-model"
    save_checkpoint(stem, random_model("tiny", seed=5).net, structures=STRUCTURES)
    return stem


def test_load_model_keeps_identity(checkpoint) -> None:
    src = load_model(checkpoint)
    assert src.name == "tiny-model" and len(src.weights_sha256) == 64
    assert src.card["structures"][0]["name"] == "Microtubules"


def test_export_onnx_writes_a_checked_graph(checkpoint, engine_cache, tmp_path, sr_window) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    res = run_cli("export", "--model", str(checkpoint), "--engine", "onnx", "--precision", "fp32", "-o", str(out),
                  cache=engine_cache)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout and "NRMSE" in res.stdout
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    src = load_model(checkpoint)
    x = sr_window[None] / sr_window[1].max()
    ref = TorchEngine(src)._infer(x)
    assert nrmse(sess.run(None, {"window": x})[0], ref) <= 1e-4


def test_export_tensorrt_without_tensorrt_is_one_clear_line(checkpoint, engine_cache) -> None:
    pytest.importorskip("onnxruntime")
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    res = run_cli("export", "--model", str(checkpoint), "--engine", "tensorrt", cache=engine_cache)
    assert res.returncode == 6
    assert "TensorRT is not installed" in res.stderr and "imcsr-live[tensorrt]" in res.stderr
    assert "Traceback" not in res.stderr


def test_export_rejects_unknown_engine_and_missing_model(checkpoint, engine_cache, tmp_path) -> None:
    res = run_cli("export", "--model", str(checkpoint), "--engine", "coreml", cache=engine_cache)
    assert res.returncode == 6 and "onnx, tensorrt" in res.stderr
    res = run_cli("export", "--model", str(tmp_path / "nope"), cache=engine_cache)
    assert res.returncode == 3 and "not found" in res.stderr and "Traceback" not in res.stderr


def test_benchmark_prints_table_and_json(engine_cache, tmp_path) -> None:
    out = tmp_path / "bench.json"
    res = run_cli("benchmark", "--engine", "torch-cpu", "--network", "tiny", "--size", "32", "--size", "48",
                  "--frames", "2", "--precision", "fp32", "--json", str(out), cache=engine_cache)  # fmt: skip
    assert res.returncode == 0, res.stderr
    header = res.stdout.splitlines()[0]
    for col in ("engine", "precision", "frame", "ms/frame (median)", "frames/s", "peak memory"):
        assert col in header
    rows = json.loads(out.read_text())
    assert [r["size"] for r in rows] == [32, 48]
    assert all(r["engine"] == "torch-cpu" and r["ms_median"] > 0 and r["fps"] > 0 for r in rows)
    assert "32x32" in res.stdout and "48x48" in res.stdout


def test_benchmark_of_every_engine_says_which_one_auto_uses_and_how_to_pick_the_fastest(engine_cache, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "bench.json"
    res = run_cli("benchmark", "--network", "tiny", "--size", "32", "--frames", "2", "--precision", "fp32",
                  "--json", str(out), cache=engine_cache)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = {r["kind"]: r["ms_median"] for r in json.loads(out.read_text())}
    assert {"torch-cpu", "onnxruntime"} <= set(rows)
    fastest = min(rows, key=rows.__getitem__)  # the measured medians
    hint = next(line for line in res.stdout.splitlines() if line.startswith("fastest at 32x32: "))
    assert hint.startswith(f"fastest at 32x32: {fastest},")
    auto = "torch-cuda" if "torch-cuda" in rows else "torch-cpu"  # auto's first working kind in its fixed order
    if fastest == auto:
        assert hint.endswith('the engine kind = "auto" uses here')
    else:
        assert f'than {auto}, which kind = "auto" uses here' in hint
        assert hint.endswith(f'set [engine] kind = "{fastest}" in the rig TOML')
