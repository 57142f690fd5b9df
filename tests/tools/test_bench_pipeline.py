"""tools/bench_pipeline.py: a tiny free-running run on the CPU, headless (no Qt, no Micro-Manager imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools.tool_loader import load_tool

REPO = Path(__file__).resolve().parents[2]
GUI_OR_HARDWARE = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "pymmcore_plus", "pycromanager")

# Runs the tool's main() in a fresh interpreter, then prints the GUI/hardware modules it imported.
_SCRIPT = """
import json, sys
from tests.tools.tool_loader import load_tool
rc = load_tool("bench_pipeline").main(sys.argv[1:])
print("IMPORTED " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {gui})))
sys.exit(rc)
"""


def test_tiny_cpu_run_reports_throughput_and_stage_latencies(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--raw-size", "64", "--timepoints", "4", "--warmup", "1", "--recon-device", "cpu"]
    args += ["--engine", "torch-cpu", "--model", "random:tiny", "--unique", "3"]
    args += ["--record", str(tmp_path / "rec"), "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(gui=set(GUI_OR_HARDWARE)), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    imported = json.loads(proc.stdout.split("IMPORTED ", 1)[1])
    assert imported == [], f"the benchmark must run headless, but imported {imported}"
    assert "timepoints/s" in proc.stdout

    result = json.loads(out.read_text())
    assert result["finished"] is True
    assert result["timepoints"] == result["timepoints_requested"] == 4
    assert result["timepoints_total"] == 5 and result["counts"]["separated"] == 5
    assert result["timepoints_per_s"] > 0
    lat = result["latency_ms"]
    for stage in ("acquire", "reconstruct", "separate", "end_to_end", "record", "end_to_end_recorded"):
        assert lat[stage]["n"] == 4, stage
        assert lat[stage]["median_ms"] > 0 and lat[stage]["p90_ms"] > 0, stage
    assert lat["end_to_end"]["median_ms"] >= lat["reconstruct"]["median_ms"]
    assert lat["end_to_end_recorded"]["median_ms"] >= lat["record"]["median_ms"]
    assert result["record"]["written"] == 5 and result["record"]["error"] is None
    assert result["config"]["engine"] == "torch-cpu" and result["config"]["recon_device"] == "cpu"


def test_stage_latencies_from_stamps() -> None:
    tool = load_tool("bench_pipeline")
    stamps = {
        "raw_start": 10.0, "acquired": 10.001, "recon_start": 10.002, "reconstructed": 10.052,
        "separate_start": 10.1, "separated": 10.13, "window_complete": 10.09, "published": 10.131,
    }  # fmt: skip
    lat = tool.stage_latencies_ms(stamps, (10.14, 10.16))
    assert lat["reconstruct"] == pytest.approx(50.0) and lat["separate"] == pytest.approx(30.0)
    assert lat["end_to_end"] == pytest.approx(131.0) and lat["record"] == pytest.approx(20.0)
    assert lat["end_to_end_recorded"] == pytest.approx(160.0)
    assert "record" not in tool.stage_latencies_ms(stamps, None)
