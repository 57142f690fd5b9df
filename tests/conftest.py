"""Shared test set-up: offscreen Qt, a private log folder, paths to shipped configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SIMULATED_TOML = REPO / "hardware_configs" / "simulated.toml"


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not write into the user's real log folder.
    monkeypatch.setenv("IMCSR_LIVE_LOG_DIR", str(tmp_path_factory.getbasetemp() / "logs"))
    # ... nor into the user's engine cache (ONNX files, TensorRT plans)
    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "engine-cache"))
    monkeypatch.setenv("IMCSR_LIVE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))  # viewer settings, per test


@pytest.fixture
def simulated_toml() -> Path:
    return SIMULATED_TOML
