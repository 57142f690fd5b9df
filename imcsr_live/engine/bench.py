"""Engine benchmark shared by ``imcsr-live benchmark`` and ``tools/bench_engine.py``: medians, not means.

Each run builds the engine (strictly: no fallback), warms it up on the frame size (compilation, plan build),
then times ``separate()`` on a fixed synthetic window (the timing does not depend on the content) and reports
the median per frame, frames/s, and peak memory: GPU memory allocated by torch (+ the TensorRT engine's device
memory) on CUDA, the process's peak resident memory on the CPU.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imcsr_live.engine.base import BaseEngine, Progress
from imcsr_live.engine.model_source import ModelSource
from imcsr_live.engine.select import AUTO_ORDER, select_engine
from imcsr_live.model.imcsr_net import flops_per_pixel


@dataclass(frozen=True)
class BenchResult:
    engine: str
    precision: str
    network: str
    size: int
    frames: int
    ms_median: float
    ms_min: float
    fps: float
    peak_memory_mb: float | None
    memory_kind: str  # "gpu" or "rss"
    warmup_s: float
    gflop_per_frame: float
    kind: str = ""  # the [engine] kind that built it ("onnxruntime" for "onnxruntime (CPU)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run_benchmark(
    kind: str,
    source: ModelSource,
    precision: str,
    size: int,
    frames: int = 10,
    *,
    network: str | None = None,
    progress: Progress | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    on_engine: Callable[[BaseEngine], None] | None = None,
) -> BenchResult:
    """Time one engine on ``size`` x ``size`` frames; see the module docstring.

    ``on_engine`` is called with the warmed-up engine after timing (e.g. to check its parity).
    """
    t0 = time.perf_counter()
    engine = select_engine(kind, source, precision, (size, size), progress=progress, strict=True, options=options)
    warm = time.perf_counter() - t0
    window = np.random.default_rng(0).random((source.cfg.in_frames, size, size), dtype=np.float32)
    engine.separate(window)  # one more untimed frame: first-call allocations after warm-up
    times = []
    for i in range(frames):
        t = time.perf_counter()
        engine.separate(window)
        times.append(time.perf_counter() - t)
        if progress:
            progress(f"{engine.name} {size}x{size}: frame {i + 1}/{frames}", (i + 1) / frames)
    peak = getattr(engine, "peak_memory_bytes", lambda: None)()
    if on_engine is not None:
        on_engine(engine)
    med = statistics.median(times)
    return BenchResult(
        engine=engine.name,
        precision=engine.precision,
        network=network or source.name,
        size=size,
        frames=frames,
        ms_median=med * 1e3,
        ms_min=min(times) * 1e3,
        fps=1.0 / med,
        peak_memory_mb=peak / 2**20 if peak is not None else _peak_rss_mb(),
        memory_kind="gpu" if peak is not None else "rss",
        warmup_s=warm,
        gflop_per_frame=flops_per_pixel(source.cfg) * size * size / 1e9,
        kind=kind,
    )


def auto_hint(results: list[BenchResult]) -> str | None:
    """What ``[engine] kind = "auto"`` would pick among the measured engines, and the setting for the fastest one
    if that is another (auto takes the first that works in a fixed order; it does not time them)."""
    if not results:
        return None
    size = max(r.size for r in results)
    largest = [r for r in results if r.size == size]
    chosen = next((r for kind in AUTO_ORDER for r in largest if r.kind == kind), None)
    fastest = min(largest, key=lambda r: r.ms_median)
    if chosen is None or fastest.kind == chosen.kind:
        return f'fastest at {size}x{size}: {fastest.kind}, the engine kind = "auto" uses here'
    gain = (1.0 - fastest.ms_median / chosen.ms_median) * 100.0
    return (
        f"fastest at {size}x{size}: {fastest.kind}, {gain:.0f} % faster than {chosen.kind}, which kind = "
        f'"auto" uses here; to use it, set [engine] kind = "{fastest.kind}" in the rig TOML'
    )


def format_table(results: list[BenchResult]) -> str:
    """A plain-text table, one row per result."""
    head = ("engine", "precision", "network", "frame", "ms/frame (median)", "frames/s", "peak memory", "warm-up")
    rows = [
        (
            r.engine,
            r.precision,
            r.network,
            f"{r.size}x{r.size}",
            f"{r.ms_median:.1f}",
            f"{r.fps:.2f}",
            f"{r.peak_memory_mb:.0f} MB {r.memory_kind}" if r.peak_memory_mb is not None else "-",
            f"{r.warmup_s:.1f} s",
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (head, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
