#!/usr/bin/env python
"""Benchmark the synthetic world: specimen render + advance, forward model, one whole timepoint.

Prints a Markdown table of medians (and writes it with --out). Run: python tools/bench_synth.py --help
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from imcsr_live.config import load_rig_config
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

REPO = Path(__file__).resolve().parents[1]


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(size: int, repeats: int, config: Path) -> dict[str, float]:
    rig = load_rig_config(config)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(size, size), photons=1000.0, seed=1))
    world.next_timepoint()  # warm-up: photon calibration, cached filters
    truth = world.specimen.render()
    rng = np.random.default_rng(0)
    return {
        "render": _median_s(world.specimen.render, repeats),
        "advance": _median_s(lambda: world.specimen.advance(rig.acquisition.interval_s), repeats),
        "forward": _median_s(lambda: world.forward.simulate(truth, 1.0, rng), repeats),
        "gt": _median_s(lambda: world.forward.sr_ground_truth(truth), repeats),
        "timepoint": _median_s(world.next_timepoint, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="raw camera frame sizes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--config", type=Path, default=REPO / "hardware_configs" / "simulated.toml")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()

    lines = [
        f"Synthetic world, medians of {args.repeats} runs; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "",
        "| raw size | SR size | specimen render | advance 2 s | forward model (9 raw) | SR ground truth "
        "| whole timepoint |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        r = bench(size, args.repeats, args.config)
        lines.append(
            f"| {size}x{size} | {2 * size}x{2 * size} | {r['render'] * 1e3:.0f} ms | {r['advance'] * 1e3:.0f} ms | "
            f"{r['forward'] * 1e3:.0f} ms | {r['gt'] * 1e3:.0f} ms | {r['timepoint'] * 1e3:.0f} ms |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
