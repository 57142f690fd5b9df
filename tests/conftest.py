"""Shared test set-up: offscreen Qt, a private log folder, paths to shipped configs."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SIMULATED_TOML = REPO / "hardware_configs" / "simulated.toml"
NAPARI_TESTS = REPO / "tests" / "napari"


def _collects(config: pytest.Config, folder: Path) -> bool:
    """Whether this run's paths include ``folder`` (or lie inside it)."""
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == folder or folder in path.parents or path in folder.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    # napari's pytest plugin (make_napari_viewer) costs about 10 s in every session: its autouse fixtures import
    # napari's Qt window. pyproject's addopts block it (-p no:napari); it is loaded only when tests/napari run.
    if _collects(config, NAPARI_TESTS) and importlib.util.find_spec("napari") is not None:
        config.pluginmanager.import_plugin("napari.utils._testsupport")


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not write into the user's real log folder.
    monkeypatch.setenv("IMCSR_LIVE_LOG_DIR", str(tmp_path_factory.getbasetemp() / "logs"))
    # ... nor into the user's engine cache (ONNX files, TensorRT plans)
    monkeypatch.setenv("IMCSR_LIVE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "engine-cache"))
    monkeypatch.setenv("IMCSR_LIVE_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))  # viewer settings, per test


@pytest.fixture(autouse=True)
def _restore_app_logger() -> Iterator[None]:
    # A test that runs the CLI in-process calls setup_logging, whose console handler holds that test's captured
    # stderr. Left behind, it makes every later log record from a worker thread print "--- Logging error ---"
    # (the stream is closed). Each test gets the logger back as it found it.
    logger = logging.getLogger("imcsr_live")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in [h for h in logger.handlers if h not in handlers]:
        logger.removeHandler(handler)
        handler.close()
    for handler in handlers:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def simulated_toml() -> Path:
    return SIMULATED_TOML
