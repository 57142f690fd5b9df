#!/usr/bin/env python
"""Benchmark SIM bursts through the real Micro-Manager core (pymmcore-plus UniMMCore, hardware_configs/sim_demo.cfg).

Cases (medians over --bursts bursts of 9 frames, after one warm-up burst; camera pacing off, 1 ms exposure):
  sim-camera triggered  - Python SIM camera renders each frame (pattern decode + noise) under the sequencing SLM
  sim-camera software   - set SLM image, snap, x9
  demo-camera (C++)     - DemoCamera sequence through the same burst engine (transport reference, no rendering)
Run: python tools/bench_hardware.py --help
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from pathlib import Path

from pymmcore_plus.experimental.unicore import UniMMCore

from imcsr_live.config import load_rig_config
from imcsr_live.hardware.adapters import test_adapter_path
from imcsr_live.hardware.mmcore_backends import PymmcorePlusBackend

REPO = Path(__file__).resolve().parents[1]


def run_case(size: int, bursts: int, burst: str, camera: str) -> tuple[float, float]:
    """Median burst time (s) and frames/s for one case."""
    rig = load_rig_config(REPO / "hardware_configs" / "sim_demo.toml")
    rig.acquisition.exposure_ms = 1.0
    rig.backend.burst = burst  # type: ignore[assignment]
    core = UniMMCore()
    core.setDeviceAdapterSearchPaths([str(test_adapter_path())])
    core.loadSystemConfiguration(str(REPO / "hardware_configs" / "sim_demo.cfg"))
    for dev, prop in (("SimCam", "SensorWidth"), ("SimCam", "SensorHeight"), ("SLM", "Width"), ("SLM", "Height")):
        core.setProperty(dev, prop, size)
    core.setProperty("SimCam", "Pacing", "none")
    if camera == "demo":
        core.setCameraDevice("DemoCam")
        core.setProperty("DemoCam", "OnCameraCCDXSize", size)
        core.setProperty("DemoCam", "OnCameraCCDYSize", size)
        rig.backend.slm = "external"
        rig.backend.pattern_index_tag = None
    try:
        with PymmcorePlusBackend(rig, core=core) as backend:
            backend.acquire_sim_stack()  # warm-up: specimen render, pattern decoders, buffers
            times = []
            for _ in range(bursts):
                stack = backend.acquire_sim_stack()
                times.append(stack.duration_s)
    finally:
        core.unloadAllDevices()
    med = statistics.median(times)
    return med, 9 / med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="frame size in pixels (square)")
    parser.add_argument("--bursts", type=int, default=15, help="timed bursts per case")
    args = parser.parse_args()
    print(f"SIM bursts through UniMMCore, {args.size}x{args.size} uint16, medians of {args.bursts}; "
          f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    print("\n| case | burst (9 frames) | frames/s |\n|---|---|---|")
    for label, burst, camera in (
        ("sim-camera triggered", "triggered", "sim"),
        ("sim-camera software", "software", "sim"),
        ("demo-camera (C++) triggered", "triggered", "demo"),
    ):
        med, fps = run_case(args.size, args.bursts, burst, camera)
        print(f"| {label} | {med * 1e3:.1f} ms | {fps:.0f} |")


if __name__ == "__main__":
    main()
