"""`imcsr-live benchmark --stage recon` and the benchmark core behind it (tiny frames; no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imcsr_live.cli import app
from imcsr_live.config import load_rig_config
from imcsr_live.errors import InputDataError
from imcsr_live.synth.recon_bench import format_recon_table, format_stage_table, run_recon_benchmark
from tests.conftest import SIMULATED_TOML


def test_benchmark_stage_recon_prints_a_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "recon.json"
    res = CliRunner().invoke(
        app, ["benchmark", "--stage", "recon", "--size", "128", "--frames", "2", "--threads", "1", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    header = next(line for line in lines if line.startswith("| device"))
    for col in ("device", "frame", "ms cached", "ms per-frame update", "ms Wiener only"):
        assert col in header
    row = next(line for line in lines if line.startswith("| cpu"))
    assert "64^2 -> 128^2" in row
    rows = json.loads(out.read_text())
    assert rows[0]["device"] == "cpu" and rows[0]["raw_size"] == 64 and rows[0]["sr_size"] == 128
    assert all(rows[0][k] > 0 for k in ("ms_cached", "ms_update", "ms_wiener", "ms_param_update"))
    assert rows[0]["repeats"] == 2 and rows[0]["torch_threads"] == 1


def test_benchmark_stage_rejects_unknown_stage_and_odd_sizes() -> None:
    res = CliRunner().invoke(app, ["benchmark", "--stage", "train"])
    assert res.exit_code != 0 and "--stage must be engine or recon" in str(res.exception)
    res = CliRunner().invoke(app, ["benchmark", "--stage", "recon", "--size", "130"])
    assert res.exit_code != 0 and "multiple of 4" in str(res.exception)


def test_benchmark_core_formats_both_tables() -> None:
    rig = load_rig_config(SIMULATED_TOML)
    r = run_recon_benchmark(rig, 64, repeats=1)
    assert r.sr_size == 128 and r.ms_startup_search > 0 and r.ms_first_timepoint > 0
    assert "| cpu | 64^2 -> 128^2 |" in format_recon_table([r])
    assert "per-frame update" in format_stage_table(r)
    with pytest.raises(InputDataError, match="even and >= 64"):
        run_recon_benchmark(rig, 63)
