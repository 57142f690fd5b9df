#!/usr/bin/env python
"""Benchmark the inference engines; one command, prints tables and writes JSON.

GPU (when CUDA is visible): the paper-size network (TC input, 3 outputs) at 512^2 and 1024^2 on every GPU engine
here (tensorrt, torch-cuda compiled fp16/bf16 and eager+CUDA graphs, onnxruntime CUDA/TensorRT providers), plus
GPU parity (NRMSE of each vs torch fp32 without TF32 on the same GPU).
CPU: the CPU engines on the ``cpu`` preset at 512^2 (threads 1 and all), and a sweep of network sizes at 512^2 that
names the largest one within the demo's budget (--budget-s, default 1.0 s). ``--paper-cpu`` also times the paper
size once on the CPU (20-40 s).

Run: python tools/bench_engine.py [--out out/bench_engine.json] [--mode auto|gpu|cpu] [--frames N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from imcsr_live.engine import load_model, nrmse, random_model, unavailable_reason
from imcsr_live.engine.bench import BenchResult, format_table, run_benchmark
from imcsr_live.model.imcsr_net import IMCSRNetConfig, flops_per_pixel

SWEEP = [
    IMCSRNetConfig(width=8, groups=2, blocks=2, reduction=4),
    IMCSRNetConfig(width=16, groups=2, blocks=2),
    IMCSRNetConfig(width=16, groups=3, blocks=3),
    IMCSRNetConfig(width=16, groups=4, blocks=4),
    IMCSRNetConfig(width=24, groups=2, blocks=3, reduction=4),
    IMCSRNetConfig(width=24, groups=3, blocks=3),
    IMCSRNetConfig(width=32, groups=2, blocks=3),
    IMCSRNetConfig(width=32, groups=3, blocks=4),
]


def synthetic_window(size: int, frames: int) -> np.ndarray:
    """SR-like frames (sum of the synthetic structures) for parity: real content, not uniform noise."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

    rig = load_rig_config(Path(__file__).resolve().parents[1] / "hardware_configs" / "simulated.toml")
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(size // 2, size // 2), seed=1))
    stack = [world.next_timepoint().ground_truth.sum(axis=0) for _ in range(3)]
    return np.stack(stack[1:2] if frames == 1 else stack).astype(np.float32)


def _say(msg: str) -> None:
    print(msg, flush=True)


def gpu_runs(
    frames: int, sizes: list[int], kinds: list[str] | None, model: Path | None, compile_mode: str
) -> tuple[list[BenchResult], dict[str, float]]:
    src = load_model(model) if model is not None else random_model("paper", seed=0)
    runs: list[tuple[str, str, dict]] = []
    if unavailable_reason("tensorrt") is None:
        runs += [("tensorrt", "fp16", {}), ("tensorrt", "bf16", {})]
    compiled = {"compile_mode": compile_mode}
    runs += [
        ("torch-cuda", "fp16", compiled),
        ("torch-cuda", "fp16", {**compiled, "network": "paper-local"}),
        ("torch-cuda", "bf16", compiled),
        ("torch-cuda", "fp16", {"compile": False, "cuda_graphs": True}),
    ]
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            runs.append(("onnxruntime", "fp16", {"device": "cuda"}))
    except ImportError:
        pass
    if kinds:
        runs = [r for r in runs if r[0] in kinds]
    # Parity reference: fp32 on the GPU with TF32 off (TorchEngine turns TF32 on; switch it off after building).
    from imcsr_live.engine.torch_engine import TorchEngine

    ref_engine = TorchEngine(src, "fp32", device="cuda", compile=False, cuda_graphs=False)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    window = synthetic_window(sizes[0], src.cfg.in_frames)
    ref = ref_engine.separate(window).channels
    del ref_engine
    results, parity = [], {}
    for kind, prec, opts in runs:
        opts = dict(opts)
        net = opts.pop("network", "paper")
        if net != "paper" and model is not None:
            continue  # a checkpoint has its own pooling
        run_src = src if net == "paper" else random_model(net, seed=0)
        label = f"{kind} {prec} {opts or ''}".strip()

        def check(engine, label=label) -> None:
            parity[label] = nrmse(engine.separate(window).channels, ref)

        for i, size in enumerate(sizes):
            _say(f"{kind} {prec} {net} {opts or ''} {size}x{size} ...")
            # parity against the fp32 reference on the same warmed-up engine (paper network, first size)
            hook = check if i == 0 and net == "paper" else None
            try:
                r = run_benchmark(kind, run_src, prec, size, frames, network=net, options={kind: opts}, on_engine=hook)
            except Exception as exc:
                _say(f"  failed: {exc}")
                continue
            results.append(r)
    return results, parity


def cpu_runs(frames: int, budget_s: float, paper: bool) -> tuple[list[BenchResult], list[dict], dict | None]:
    src = random_model("cpu", seed=0)
    results = []
    all_threads = torch.get_num_threads()
    for threads in sorted({1, all_threads}):
        torch.set_num_threads(threads)
        for kind in ("torch-cpu", "onnxruntime"):
            if unavailable_reason(kind):
                continue
            opts = {"onnxruntime": {"threads": threads}}
            _say(f"{kind} cpu-preset 512x512, {threads} thread(s) ...")
            r = run_benchmark(kind, src, "fp32", 512, frames, network=f"cpu ({threads} thr)", options=opts)
            results.append(r)
    torch.set_num_threads(all_threads)
    sweep = []
    window = np.random.default_rng(0).random((3, 512, 512), dtype=np.float32)
    from imcsr_live.engine.torch_engine import TorchEngine

    for cfg in SWEEP:
        eng = TorchEngine(random_model(cfg), channels_last=True)
        eng.separate(window)
        times = []
        for _ in range(max(2, frames // 2)):
            t = time.perf_counter()
            eng.separate(window)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        row = {
            "width": cfg.width,
            "groups": cfg.groups,
            "blocks": cfg.blocks,
            "parameters": sum(p.numel() for p in eng.source.net.parameters()),
            "gflop_512": flops_per_pixel(cfg) * 512 * 512 / 1e9,
            "s_per_512_frame": med,
            "within_budget": med <= budget_s,
        }
        _say(f"sweep {row}")
        sweep.append(row)
    paper_row = None
    if paper:
        eng = TorchEngine(random_model("paper"), channels_last=True)
        t = time.perf_counter()
        eng.separate(window)
        paper_row = {"s_per_512_frame_single_run": time.perf_counter() - t}
        _say(f"paper size on the CPU: {paper_row}")
    return results, sweep, paper_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("out/bench_engine.json"))
    ap.add_argument("--mode", choices=["auto", "gpu", "cpu"], default="auto")
    ap.add_argument("--frames", type=int, default=10, help="timed frames per row (median)")
    ap.add_argument("--budget-s", type=float, default=1.0, help="CPU demo budget per 512x512 frame")
    ap.add_argument("--paper-cpu", action="store_true", help="also time the paper-size network once on the CPU")
    ap.add_argument("--size", type=int, action="append", help="GPU frame size(s) (default 512 and 1024)")
    ap.add_argument("--engine", action="append", help="GPU: only these engine kinds (default: all here)")
    ap.add_argument("--model", type=Path, help="GPU: time/check this checkpoint instead of a random paper network")
    ap.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime (default: torch's)")
    ap.add_argument("--compile-mode", default="max-autotune", help="torch.compile mode (max-autotune is slow)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    mode = args.mode if args.mode != "auto" else ("gpu" if torch.cuda.is_available() else "cpu")
    report: dict = {
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "mode": mode,
    }
    if mode == "gpu":
        results, parity = gpu_runs(args.frames, args.size or [512, 1024], args.engine, args.model, args.compile_mode)
        report["parity_nrmse_vs_fp32"] = parity
    else:
        results, sweep, paper = cpu_runs(args.frames, args.budget_s, args.paper_cpu)
        report["cpu_sweep_512"] = sweep
        report["paper_cpu_512"] = paper
        fits = [r for r in sweep if r["within_budget"]]
        if fits:
            best = max(fits, key=lambda r: r["gflop_512"])
            report["largest_within_budget"] = best
    report["results"] = [r.as_dict() for r in results]
    print()
    print(format_table(results))
    if mode == "gpu":
        print(f"\nparity (NRMSE vs fp32 without TF32, synthetic {(args.size or [512])[0]}^2 window):")
        for k, v in report["parity_nrmse_vs_fp32"].items():
            print(f"  {k:<40} {v:.2e}")
    else:
        print(f"\nCPU sweep at 512x512 (torch-cpu, channels_last, {torch.get_num_threads()} threads):")
        for r in report["cpu_sweep_512"]:
            flag = "<= budget" if r["within_budget"] else ""
            print(
                f"  w{r['width']:<3} g{r['groups']} b{r['blocks']}  {r['parameters']:>9,d} params  "
                f"{r['gflop_512']:7.1f} GFLOP  {r['s_per_512_frame']:6.2f} s  {flag}"
            )
        if "largest_within_budget" in report:
            b = report["largest_within_budget"]
            print(f"largest within {args.budget_s} s: width {b['width']}, groups {b['groups']}, blocks {b['blocks']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
