#!/usr/bin/env python
"""Training throughput of the IMC-SR network: iterations/s of a full training step (forward, MSE + SSIM +
summation loss, backward, Adam), medians over timed windows. Also times the synthetic data sampler alone.

  python tools/bench_train.py --device cpu --threads 2 --iterations 3            # paper-size net on the CPU
  python tools/bench_train.py --device cuda --amp --channels-last --cuda-graph   # one GPU, all levers

Paper reference: 200k iterations (batch 3, 128x128) in 10 h on two RTX 3090 = 5.6 it/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig, count_parameters
from imcsr_live.model.losses import imcsr_loss
from imcsr_live.train.data import SampleSpec, SeparationSampler, synthetic_pool

PRESETS = {
    "paper": {},
    "cpu-small": {"width": 24, "groups": 2, "blocks": 3, "reduction": 4},
    "tiny": {"width": 8, "groups": 1, "blocks": 2, "reduction": 4},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_steps(args: argparse.Namespace, device: torch.device) -> tuple[float, int]:
    cfg = IMCSRNetConfig(in_frames=args.frames, out_channels=3, **PRESETS[args.network])
    torch.manual_seed(0)
    net = IMCSRNet(cfg).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.rand(args.batch, args.frames, args.size, args.size, device=device).to(memory_format=fmt)
    y = torch.rand(args.batch, 3, args.size, args.size, device=device) * 0.1
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, capturable=args.cuda_graph, fused=device.type == "cuda")
    model = torch.compile(net, mode="max-autotune-no-cudagraphs") if args.compile else net
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp and device.type == "cuda")

    def step() -> torch.Tensor:
        with amp:
            out = model(x)
        loss, _ = imcsr_loss(out.float(), y, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)  # keep .grad buffers: a captured graph reuses them
        return loss

    run = step
    if args.cuda_graph:
        if device.type != "cuda":
            raise SystemExit("--cuda-graph needs --device cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm up outside the graph (allocations, autotuning)
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()

        def run() -> torch.Tensor:
            graph.replay()
            return x

    for _ in range(args.warmup):
        run()
    _sync(device)
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.iterations):
            run()
        _sync(device)
        rates.append(args.iterations / (time.perf_counter() - start))
    return statistics.median(rates), count_parameters(net)


def bench_sampler(args: argparse.Namespace) -> float:
    pool = synthetic_pool(["Microtubules", "ER", "Lysosomes"], cells=4, size=256, frames=args.frames)
    sampler = SeparationSampler(pool, SampleSpec(patch=args.size, in_frames=args.frames))
    rng = np.random.default_rng(0)
    n = 60
    start = time.perf_counter()
    for _ in range(n):
        sampler.sample(rng)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--network", choices=sorted(PRESETS), default="paper")
    p.add_argument("--frames", type=int, choices=(1, 3), default=3, help="input frames (3 = TC)")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=20, help="iterations per timed window")
    p.add_argument("--repeats", type=int, default=3, help="timed windows (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (GPU)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile (max-autotune, no CUDA graphs)")
    p.add_argument("--cuda-graph", action="store_true", help="capture the whole training step in a CUDA graph")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    rate, params = bench_steps(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    print(f"device: {name} ({os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}), torch {torch.__version__}")
    flags = [f for f in ("amp", "channels_last", "compile", "cuda_graph") if getattr(args, f)]
    print(
        f"network {args.network} ({params:,} parameters), TC frames {args.frames}, batch {args.batch}, "
        f"{args.size}x{args.size}, flags {flags or 'none'}"
    )
    print(f"training step: {rate:.3f} it/s (median of {args.repeats} x {args.iterations} iterations)")
    print(f"200k iterations would take {200_000 / rate / 3600:.1f} h")
    print(f"synthetic sampler alone: {bench_sampler(args):.0f} samples/s (one process)")


if __name__ == "__main__":
    main()
