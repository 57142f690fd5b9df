#!/usr/bin/env python
"""Benchmark the SIM reconstruction stage: 9 x N x N raw -> 2N x 2N SR frame, medians per timepoint.

Rows: cached parameters (pre-processing + Wiener stage), per-frame update (+ parameter update, guards,
filter refresh), the one-off start-up search, and the Wiener stage alone. ``--device cuda`` runs the Wiener
stage on the GPU (estimation stays on the CPU, in numpy). Prints a Markdown table (and writes it with --out).
The measuring code lives in ``imcsr_live/synth/recon_bench.py`` (also behind ``imcsr-live benchmark --stage recon``).

Run: python tools/bench_recon.py --size 512 --threads 1 --repeats 15  (and --threads 2 on an idle machine)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from imcsr_live.config import load_rig_config
from imcsr_live.synth.recon_bench import format_stage_table, run_recon_benchmark

REPO = Path(__file__).resolve().parents[1]


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
    rig = load_rig_config(args.config)
    result = run_recon_benchmark(
        rig, args.size, device=args.device, repeats=args.repeats, workers=args.workers, photons=args.photons
    )
    text = format_stage_table(result)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
