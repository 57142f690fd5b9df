"""Real Micro-Manager cores for the hardware tests: UniMMCore + mm-test-adapters + our Python devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imcsr_live.config import RigConfig, load_rig_config

REPO = Path(__file__).resolve().parents[2]
SIM_DEMO_TOML = REPO / "hardware_configs" / "sim_demo.toml"
SIM_DEMO_CFG = REPO / "hardware_configs" / "sim_demo.cfg"
SIZE = 128  # small frames keep the suite fast; the benchmark uses 512


@pytest.fixture
def sim_rig() -> RigConfig:
    rig = load_rig_config(SIM_DEMO_TOML)
    rig.acquisition.exposure_ms = 2.0
    return rig


@pytest.fixture
def sim_core() -> Iterator[object]:
    """sim_demo.cfg loaded into a UniMMCore, shrunk to 128x128; unloaded afterwards (frees device labels)."""
    pytest.importorskip("mm_test_adapters")
    from pymmcore_plus.experimental.unicore import UniMMCore

    from imcsr_live.hardware.adapters import test_adapter_path

    core = UniMMCore()
    core.setDeviceAdapterSearchPaths([str(test_adapter_path())])
    core.loadSystemConfiguration(str(SIM_DEMO_CFG))
    for dev, prop in (("SimCam", "SensorWidth"), ("SimCam", "SensorHeight"), ("SLM", "Width"), ("SLM", "Height")):
        core.setProperty(dev, prop, SIZE)
    try:
        yield core
    finally:
        core.unloadAllDevices()
