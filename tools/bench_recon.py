#!/usr/bin/env python
"""Benchmark the SIM reconstruction stage: 9 x N x N raw -> 2N x 2N SR frame, medians per timepoint.

Rows: cached parameters (pre-processing + Wiener stage), per-frame update (+ parameter update, guards,
filter refresh), the one-off start-up search, and the Wiener stage alone. ``--device cuda`` runs the Wiener
stage on the GPU (estimation stays on the CPU, in numpy). Prints a Markdown table (and writes it with --out).

Run: python tools/bench_recon.py --size 512 --threads 1 --repeats 15  (and --threads 2 on an idle machine)
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
from imcsr_live.recon.preprocess import preprocess
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

REPO = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, repeats: int, device: torch.device) -> float:
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--config", default=str(REPO / "hardware_configs" / "simulated.toml"))
    ap.add_argument("--size", type=int, default=512, help="raw frame size N (SR output is 2N)")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: robust when other stages share the CPU)"
    )
    ap.add_argument("--workers", type=int, default=1, help="scipy.fft workers of the estimator")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--photons", type=float, default=1000.0)
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rig = load_rig_config(args.config)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(args.size, args.size), photons=args.photons, seed=0))
    stacks = [world.next_timepoint().raw for _ in range(4)]
    n = rig.sim.angles, rig.sim.phases

    rec = Reconstructor(rig, device=device, workers=args.workers)
    t0 = time.perf_counter()
    rec.reconstruct(stacks[0])  # start-up: full search + filter build
    startup_ms = 1e3 * (time.perf_counter() - t0)
    est = rec._estimator
    assert est is not None and rec._wiener is not None
    wiener = rec._wiener
    prep = preprocess(stacks[1], *n, rig.recon.camera_offset_adu)
    frames = torch.as_tensor(prep.frames, device=device)
    out = torch.empty(wiener.sr_shape, device=device)
    full_ms = _median_ms(lambda: est.estimate(prep.frames), 3, device)

    counter = {"i": 0}

    def next_stack() -> np.ndarray:
        counter["i"] += 1
        return stacks[counter["i"] % len(stacks)]

    def per_frame() -> None:
        rec.reconstruct(next_stack())

    rows: list[tuple[str, float]] = []
    rows.append(("Wiener stage only (frames on device, cached filters)", _median_ms(
        lambda: wiener.reconstruct(frames, out=out), args.repeats, device)))
    rec.update = "fixed"
    rows.append(("cached parameters: raw uint16 -> SR numpy (pre-process + Wiener + copy)", _median_ms(
        per_frame, args.repeats, device)))
    rec.update = "per-frame"
    rows.append(("per-frame update: + estimate update, guards, filter refresh", _median_ms(
        per_frame, args.repeats, device)))
    rows.append(("  of which: parameter update alone", _median_ms(
        lambda: est.estimate(prep.frames, rec.parameters), args.repeats, device)))
    rows.append(("start-up full search alone (one-off)", full_ms))
    rows.append(("first timepoint incl. search + filter build (one-off)", startup_ms))

    cpu = platform.processor() or platform.machine()
    lines = [
        f"Reconstruction benchmark: {args.size}x{args.size} x9 -> {2 * args.size}^2, device {device}, torch "
        f"{torch.__version__}, {args.threads} torch thread(s), {os.cpu_count()} CPUs ({cpu}), medians of "
        f"{args.repeats}",
        "",
        "| stage | median ms |",
        "|---|---:|",
        *[f"| {name} | {ms:.1f} |" for name, ms in rows],
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
