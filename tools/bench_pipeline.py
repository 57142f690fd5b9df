#!/usr/bin/env python
"""Free-running live-pipeline throughput: timepoints/s and latency per stage, headless.

The simulated microscope renders on the CPU (0.1-1 s per 512^2 stack) and would be the bottleneck, so raw stacks
are rendered once up front (``--unique`` of them, cycled to make up the run; ``--cache`` keeps them in a .npy
for the next run) and played back through the REAL live pipeline (``LivePipeline`` assembled as
``session.build_live_pipeline`` does, with the replay backend and interval 0: the free-running mode, in which a
stage waits for the one behind it instead of dropping). Chosen here: the reconstructor's device
(``--recon-device``), the torch-cuda compile mode, and with ``--record`` a recorder that also times its writes.
In free-running mode the queues stay full, so end-to-end latency includes queueing behind the slowest stage;
reconstruct and separate are the stages' own service times.

Measured per timepoint from the stamps every ``LiveFrame`` carries (after ``--warmup`` timepoints):
acquire (replay hand-out: no camera), queue waits, reconstruct, separate (+ per-frame confidence), end-to-end
(start of the raw stack -> published to the display bus), and with ``--record`` the recorder's write time and
raw start -> written. Throughput = measured timepoints / (last publish - publish of the last warm-up timepoint).

Run: python tools/bench_pipeline.py [--raw-size 512] [--timepoints 200] [--warmup 10] [--recon-device cuda]
     [--engine auto] [--precision fp16] [--model NAME|random:paper] [--record DIR] [--json OUT]
CPU dry run: python tools/bench_pipeline.py --raw-size 128 --timepoints 12 --warmup 2 --recon-device cpu
     --engine torch-cpu
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcsr_live.config import RigConfig, load_rig_config
from imcsr_live.engine import PRESETS, ModelSource, load_model, random_model
from imcsr_live.engine.select import KINDS, engine_options, select_engine
from imcsr_live.hardware.replay import ReplayBackend
from imcsr_live.pipeline.live import LiveFrame, LivePipeline, PipelineSettings
from imcsr_live.pipeline.recorder import Recorder, RecordItem
from imcsr_live.pipeline.recording import ModelIdentity, record_item, recording_plan
from imcsr_live.pipeline.session import WEIGHTS_DIR, default_model, recording_format
from imcsr_live.recon.reconstructor import Reconstructor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RIG = ROOT / "hardware_configs" / "simulated.toml"
TARGET_TPS = 20.0  # the live target: >= 20 timepoints/s at 512x512 raw -> 1024x1024 SR
# (table label, JSON key) in display order; keys missing from a run (no --record) are left out
STAGES = [
    ("acquire", "acquire"),
    ("wait for recon", "wait_reconstruct"),
    ("reconstruct", "reconstruct"),
    ("wait for window", "wait_separate"),
    ("separate", "separate"),
    ("end-to-end", "end_to_end"),
    ("last raw->display", "last_raw_to_display"),
    ("record (write)", "record"),
    ("raw->recorded", "end_to_end_recorded"),
]

log = logging.getLogger("bench_pipeline")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw-size", type=int, default=512, help="raw camera frame side (SR is twice that); default 512")
    p.add_argument("--timepoints", type=int, default=200, help="measured timepoints (after warm-up); default 200")
    p.add_argument("--warmup", type=int, default=10, help="timepoints run first and not measured; default 10")
    p.add_argument(
        "--recon-device", choices=["cpu", "cuda"], default="cuda" if cuda else "cpu",
        help="device of the reconstruction's Wiener stage; default cuda if available",
    )  # fmt: skip
    p.add_argument("--engine", choices=["auto", *KINDS], default="auto", help="separation engine; default auto")
    p.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default="fp16", help="engine precision")
    p.add_argument(
        "--model", default=None,
        help="checkpoint (path or stem of a shipped one) or random:PRESET "
        f"({', '.join(PRESETS)}); default: the shipped model for the rig, else random:paper",
    )  # fmt: skip
    p.add_argument(
        "--compile-mode", choices=["max-autotune", "reduce-overhead", "default", "off"], default=None,
        help="torch-cuda only: torch.compile mode, or off (eager + CUDA graphs); default: as live (max-autotune)",
    )  # fmt: skip
    p.add_argument("--record", type=Path, default=None, help="also record into a new recording in this folder")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--config", type=Path, default=DEFAULT_RIG, help="rig TOML (default: the simulated rig)")
    p.add_argument("--unique", type=int, default=32, help="distinct raw stacks rendered, cycled (0 = all); 32")
    p.add_argument("--cache", type=Path, default=None, help=".npy of raw stacks: used if the size fits, else written")
    p.add_argument("--prepare-only", action="store_true", help="only render (and --cache) the raw stacks, then exit")
    p.add_argument("--photons", type=float, default=1000.0, help="synthetic world brightness; default 1000")
    p.add_argument("--seed", type=int, default=0, help="synthetic world seed; default 0")
    p.add_argument("--timeout", type=float, default=900.0, help="stop the run after this many seconds (partial report)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO (engine choice, warm-up)")
    args = p.parse_args(argv)
    if args.timepoints < 1 or args.warmup < 0 or args.unique < 0:
        p.error("--timepoints must be >= 1, --warmup and --unique >= 0")
    if args.recon_device == "cuda" and not cuda:
        p.error("--recon-device cuda: no CUDA GPU visible to torch")
    return args


# -- input ----------------------------------------------------------------------------------------------------
def render_stacks(rig: RigConfig, raw_size: int, count: int, photons: float, seed: int) -> np.ndarray:
    """``count`` consecutive raw SIM stacks ``(count, A*P, R, R)`` uint16 from the synthetic microscope."""
    from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(raw_size, raw_size), photons=photons, seed=seed))
    t0 = time.perf_counter()
    stacks = []
    for i in range(count):
        stacks.append(world.next_timepoint().raw)
        if i == 0 or (i + 1) % 8 == 0 or i + 1 == count:
            _say(f"rendered {i + 1}/{count} raw stacks ({time.perf_counter() - t0:.1f} s)")
    return np.stack(stacks)


def raw_input(args: argparse.Namespace, rig: RigConfig, total: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``(total, A*P, R, R)`` replay array: ``--unique`` rendered (or cached) stacks, cycled."""
    unique = min(args.unique or total, total)
    shape = (unique, rig.sim.frames_per_timepoint, args.raw_size, args.raw_size)
    stacks = None
    if args.cache is not None and args.cache.exists():
        cached = np.load(args.cache, mmap_mode="r")
        if cached.dtype == np.uint16 and cached.shape[1:] == shape[1:]:  # the cache's count wins over --unique
            unique = min(int(cached.shape[0]), total)
            stacks = np.asarray(cached[:unique])
            _say(f"loaded {unique} raw stacks from {args.cache}")
    t0 = time.perf_counter()
    rendered = stacks is None
    if stacks is None:
        stacks = render_stacks(rig, args.raw_size, unique, args.photons, args.seed)
        if args.cache is not None:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(args.cache, stacks)
    info = {"unique_stacks": unique, "rendered": rendered, "prepare_s": round(time.perf_counter() - t0, 2)}
    return stacks[np.arange(total) % unique], info


def resolve_source(rig: RigConfig, model: str | None) -> ModelSource:
    """``--model``: a checkpoint path or shipped stem, ``random:PRESET``, or by default the rig's shipped model."""
    if model is None:
        shipped = default_model(rig.structure_names)
        return load_model(shipped, expect_structures=rig.structure_names) if shipped else random_model("paper")
    if model.startswith("random:"):
        return random_model(model.removeprefix("random:"))
    path = Path(model)
    if not path.with_suffix(".json").exists() and (WEIGHTS_DIR / f"{path.name}.json").exists():
        path = WEIGHTS_DIR / path.name
    return load_model(path, expect_structures=rig.structure_names)


# -- measurement ----------------------------------------------------------------------------------------------
class TimedRecorder(Recorder):
    """A :class:`Recorder` that notes when each timepoint's write started and ended (monotonic seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.write_times: dict[int, tuple[float, float]] = {}
        super().__init__(*args, **kwargs)

    def _write(self, item: RecordItem) -> None:
        start = time.monotonic()
        super()._write(item)
        self.write_times[item.index] = (start, time.monotonic())


class FrameLog:
    """Stamps of every published :class:`LiveFrame`, collected on the publishing thread (frames are not kept)."""

    def __init__(self, pipeline: LivePipeline) -> None:
        self.pipeline = pipeline
        self.frames: list[dict[str, float]] = []
        self._lock = threading.Lock()

    def __call__(self) -> None:
        frame, _ = self.pipeline.display.latest()
        if isinstance(frame, LiveFrame):
            with self._lock:
                self.frames.append({"index": frame.index, "raw_start": frame.raw.t_start_s, **frame.stamps})


def stage_latencies_ms(stamps: dict[str, float], written: tuple[float, float] | None) -> dict[str, float]:
    """Per-stage latencies of one timepoint (ms) from its stamps (+ recorder write start/end)."""
    s = stamps
    out = {
        "acquire": s["acquired"] - s["raw_start"],
        "wait_reconstruct": s["recon_start"] - s["acquired"],
        "reconstruct": s["reconstructed"] - s["recon_start"],
        "wait_separate": s["separate_start"] - s["reconstructed"],
        "separate": s["separated"] - s["separate_start"],
        "end_to_end": s["published"] - s["raw_start"],
        "last_raw_to_display": s["published"] - s["window_complete"],
    }
    if written is not None:
        out["record"] = written[1] - written[0]
        out["end_to_end_recorded"] = written[1] - s["raw_start"]
    return {k: v * 1e3 for k, v in out.items()}


def summarise(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "max_ms": float(a.max()),
        "n": int(a.size),
    }


def gpu_info() -> dict[str, Any] | None:
    if not torch.cuda.is_available():
        return None
    return {
        "name": torch.cuda.get_device_name(0),
        "count": torch.cuda.device_count(),
        "peak_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
    }


# -- run --------------------------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Build the live pipeline on replayed synthetic stacks, run it free-running, return the measurements.

    Assembled as ``session.build_live_pipeline`` does (same engine selection, settings, record items), composed
    here so that the reconstructor's device, the engine's compile options and a timed recorder can be chosen.
    """
    rig = load_rig_config(args.config)
    rig.engine.kind = args.engine
    rig.engine.precision = args.precision
    total = args.warmup + args.timepoints
    raw, input_info = raw_input(args, rig, total)
    source = resolve_source(rig, args.model)
    shape = (2 * args.raw_size, 2 * args.raw_size)
    _say(f"model {source.name}; building the {args.engine} engine for {shape[0]}^2 SR frames (warm-up)")
    t0 = time.perf_counter()
    options = engine_options(rig.engine.max_tile_pixels) or {}
    if args.compile_mode is not None:
        off = {"compile": False, "cuda_graphs": True}
        cuda_opts = off if args.compile_mode == "off" else {"compile_mode": args.compile_mode}
        options["torch-cuda"] = {**options.get("torch-cuda", {}), **cuda_opts}
    engine = select_engine(rig.engine.kind, source, rig.engine.precision, shape, options=options or None)
    engine_build_s = time.perf_counter() - t0
    recorder: TimedRecorder | None = None
    if args.record is not None:
        args.record.mkdir(parents=True, exist_ok=True)
        path = args.record / f"bench_pipeline_{args.raw_size}_{time.strftime('%Y%m%d-%H%M%S')}.zarr"
        identity = ModelIdentity(source.name, source.weights_sha256, engine.name, engine.precision)
        plan = recording_plan(rig, path, (args.raw_size, args.raw_size), identity, total, 0.0)
        plan = replace(plan, format=recording_format(path, rig.recording.format))  # as RecorderFactory does
        recorder = TimedRecorder(plan)
    settings = PipelineSettings(
        interval_s=0.0,  # free-running: each stage waits for the next one instead of dropping
        timepoints=total,
        acquisition_timeout_s=rig.backend.timeout_s,
        in_frames=source.cfg.in_frames,
    )
    backend = ReplayBackend(raw, rig.sim.frames_per_timepoint)
    reconstructor = Reconstructor(rig, device=args.recon_device)
    pipeline = LivePipeline(backend, reconstructor, engine, settings, recorder, record_item)
    log_ = FrameLog(pipeline)
    pipeline.display.subscribe(log_)
    _say(f"engine {engine.name} {getattr(engine, 'precision', '?')} ready in {engine_build_s:.1f} s; running {total}")
    started = time.monotonic()
    pipeline.start()
    try:
        finished = pipeline.wait(args.timeout)
    except KeyboardInterrupt:  # e.g. `timeout --signal=INT`: stop, and still report what was measured
        _say("interrupted: stopping the pipeline, reporting the timepoints done so far")
        finished = False
    run_s = time.monotonic() - started
    pipeline.stop()
    return collect(args, pipeline, log_, recorder, finished, run_s, engine_build_s, input_info, source)


def collect(
    args: argparse.Namespace,
    pipeline: LivePipeline,
    frame_log: FrameLog,
    recorder: TimedRecorder | None,
    finished: bool,
    run_s: float,
    engine_build_s: float,
    input_info: dict[str, Any],
    source: ModelSource,
) -> dict[str, Any]:
    """The JSON result: counts, throughput after warm-up, per-stage latency summaries, environment."""
    frames = sorted(frame_log.frames, key=lambda f: f["index"])
    measured = [f for f in frames if f["index"] >= args.warmup]
    warm = [f for f in frames if f["index"] < args.warmup]
    t_from = max(f["published"] for f in warm) if warm else (pipeline.started_s or 0.0)
    span = (measured[-1]["published"] - t_from) if measured else 0.0
    tps = len(measured) / span if span > 0 else 0.0
    writes = recorder.write_times if recorder is not None else {}
    per_stage: dict[str, list[float]] = {}
    for f in measured:
        for key, value in stage_latencies_ms(f, writes.get(int(f["index"]))).items():
            per_stage.setdefault(key, []).append(value)
    stats = pipeline.stats
    record_info = None
    if recorder is not None:
        record_info = {
            "path": str(recorder.plan.path),
            "written": recorder.written,
            "dropped": recorder.dropped,
            "bytes_written": recorder.bytes_written,
            "error": recorder.error,
        }
    engine = pipeline.engine
    return {
        "tool": "bench_pipeline",
        "finished": finished,
        "raw_shape": [args.raw_size, args.raw_size],
        "sr_shape": [2 * args.raw_size, 2 * args.raw_size],
        "timepoints_requested": args.timepoints,
        "warmup": args.warmup,
        "timepoints": len(measured),
        "timepoints_total": len(frames),
        "timepoints_per_s": tps,
        "target_timepoints_per_s": TARGET_TPS,
        "meets_target": tps >= TARGET_TPS,
        "measured_span_s": span,
        "run_s": run_s,
        "engine_build_s": engine_build_s,
        "counts": {
            "acquired": stats.acquired,
            "reconstructed": stats.reconstructed,
            "separated": stats.separated,
            "skipped_slots": stats.skipped_slots,
            "dropped": dict(stats.dropped),
            "errors": stats.errors,
        },
        "latency_ms": {key: summarise(values) for key, values in per_stage.items()},
        "events_tail": list(pipeline.events)[-10:],
        "record": record_info,
        "input": input_info,
        "config": {
            "recon_device": args.recon_device,
            "engine_requested": args.engine,
            "engine": engine.name,
            "precision_requested": args.precision,
            "precision": getattr(engine, "precision", None),
            "model": source.name,
            "network": source.cfg.model_dump(),
            "compile_mode": args.compile_mode,
            "rig": str(args.config),
        },
        "env": {
            "gpu": gpu_info(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "host": platform.node(),
        },
    }


def format_table(result: dict[str, Any]) -> str:
    """A plain-text summary: throughput, counts, and one row per stage."""
    c, cfg = result["counts"], result["config"]
    gpu = result["env"]["gpu"]
    lines = [
        f"{result['raw_shape'][0]}^2 raw -> {result['sr_shape'][0]}^2 SR | recon {cfg['recon_device']} | engine "
        f"{cfg['engine']} {cfg['precision']} | model {cfg['model']} | {gpu['name'] if gpu else 'no GPU'}",
        f"throughput: {result['timepoints_per_s']:.2f} timepoints/s over {result['timepoints']} timepoints "
        f"(after {result['warmup']} warm-up; target >= {TARGET_TPS:g}: "
        f"{'met' if result['meets_target'] else 'NOT met'})",
        f"acquired {c['acquired']}, reconstructed {c['reconstructed']}, separated {c['separated']}, dropped "
        + ", ".join(f"{k} {v}" for k, v in c["dropped"].items())
        + f", skipped slots {c['skipped_slots']}, errors {c['errors']}"
        + ("" if result["finished"] else "  [STOPPED EARLY]"),
    ]
    head = ("stage", "median ms", "p90 ms", "max ms")
    rows = [
        (label, f"{s['median_ms']:.1f}", f"{s['p90_ms']:.1f}", f"{s['max_ms']:.1f}")
        for label, key in STAGES
        if (s := result["latency_ms"].get(key)) is not None
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths, strict=True)))

    lines += ["", fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]
    return "\n".join(lines)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.prepare_only:
        if args.cache is None:
            raise SystemExit("--prepare-only needs --cache FILE.npy")
        raw_input(args, load_rig_config(args.config), args.warmup + args.timepoints)
        return 0
    result = run_bench(args)
    print(format_table(result), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
        _say(f"wrote {args.json}")
    return 0 if result["finished"] and result["timepoints"] == args.timepoints else 1


if __name__ == "__main__":
    sys.exit(main())
