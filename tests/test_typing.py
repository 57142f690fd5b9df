"""The mypy settings of `make lint` ([tool.mypy] in pyproject.toml) catch what they are there for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SNIPPET = """
def per_angle() -> tuple[float, float, float, float]:
    return 1.0, 2.0, 3.0, 4.0, 5.0


def estimate(frames):  # unannotated: its body is checked all the same
    k0, phase, modulation, overlap, residual = per_angle()
    return k0


def half_annotated(x: int, y):
    return x
"""


def test_mypy_settings_catch_tuple_length_mismatches_and_incomplete_signatures(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "snippet.py").write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--no-incremental",
         "snippet.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Incompatible return value type (got "tuple[float, float, float, float, float]"' in result.stdout
    assert "Need more than 4 values to unpack (5 expected)" in result.stdout
    assert "snippet.py:11: error: Function is missing a type annotation for one or more parameters" in result.stdout
