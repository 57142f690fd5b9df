"""Timing of the reconstruction stage (9 x N x N raw -> 2N x 2N SR frame), medians per timepoint.

Used by ``imcsr-live benchmark --stage recon`` and ``tools/bench_recon.py``. Rows per device and frame size:
cached parameters (pre-processing + Wiener stage + copy to numpy), the per-frame update (+ parameter update,
guards, filter refresh), the Wiener stage alone (frames already on the device), and the one-off start-up
search. Estimation always runs in numpy on the CPU; ``device`` moves the Wiener stage. No timing asserts
anywhere: these numbers are measurements to report, not pass/fail criteria.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.recon.preprocess import preprocess
from imcsr_live.recon.reconstructor import Reconstructor
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings


@dataclass(frozen=True)
class ReconBenchResult:
    """Median milliseconds of the reconstruction stage for one device and frame size."""

    device: str
    raw_size: int  # raw frames are raw_size x raw_size, the SR frame twice that
    repeats: int
    torch_threads: int
    ms_cached: float  # raw uint16 -> SR numpy with cached parameters
    ms_update: float  # the same with the per-frame parameter update
    ms_wiener: float  # Wiener stage alone, frames on the device, cached filters
    ms_param_update: float  # parameter update alone (numpy, CPU)
    ms_startup_search: float  # full start-up search alone (one-off)
    ms_first_timepoint: float  # first timepoint incl. search and filter build (one-off)

    @property
    def sr_size(self) -> int:
        return 2 * self.raw_size

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"sr_size": self.sr_size}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn`` in ms over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run_recon_benchmark(
    rig: RigConfig,
    raw_size: int = 512,
    *,
    device: str | torch.device = "cpu",
    repeats: int = 15,
    workers: int = 1,
    photons: float = 1000.0,
    seed: int = 0,
) -> ReconBenchResult:
    """Time the reconstruction of synthetic ``(A*P, raw_size, raw_size)`` stacks of ``rig`` on ``device``.

    Four different timepoints are cycled so that the per-frame update sees real (small) parameter changes.
    """
    if raw_size < 64 or raw_size % 2:
        raise InputDataError(f"the raw frame size must be even and >= 64 pixels (got {raw_size})")
    if repeats < 1:
        raise InputDataError(f"repeats must be >= 1 (got {repeats})")
    dev = torch.device(device)
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(raw_size, raw_size), photons=photons, seed=seed))
    stacks = [world.next_timepoint().raw for _ in range(4)]
    rec = Reconstructor(rig, device=dev, workers=workers)
    t0 = time.perf_counter()
    rec.reconstruct(stacks[0])  # start-up: full search + filter build
    first_ms = 1e3 * (time.perf_counter() - t0)
    est, wiener = rec._estimator, rec._wiener
    assert est is not None and wiener is not None
    prep = preprocess(stacks[1], rig.sim.angles, rig.sim.phases, rig.recon.camera_offset_adu)
    frames = torch.as_tensor(prep.frames, device=dev)
    out = torch.empty(wiener.sr_shape, device=dev)
    search_ms = median_ms(lambda: est.estimate(prep.frames), min(3, repeats), dev)
    counter = [0]

    def next_timepoint() -> None:
        counter[0] += 1
        rec.reconstruct(stacks[counter[0] % len(stacks)])

    wiener_ms = median_ms(lambda: wiener.reconstruct(frames, out=out), repeats, dev)
    saved = rec.update
    try:
        rec.update = "fixed"
        cached_ms = median_ms(next_timepoint, repeats, dev)
        rec.update = "per-frame"
        update_ms = median_ms(next_timepoint, repeats, dev)
    finally:
        rec.update = saved
    param_ms = median_ms(lambda: est.estimate(prep.frames, rec.parameters), repeats, dev)
    return ReconBenchResult(
        device=str(dev),
        raw_size=raw_size,
        repeats=repeats,
        torch_threads=torch.get_num_threads(),
        ms_cached=cached_ms,
        ms_update=update_ms,
        ms_wiener=wiener_ms,
        ms_param_update=param_ms,
        ms_startup_search=search_ms,
        ms_first_timepoint=first_ms,
    )


def machine_line() -> str:
    """One line naming the machine the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"torch {torch.__version__}, {os.cpu_count()} CPUs ({cpu}){gpu}"


def format_recon_table(results: list[ReconBenchResult]) -> str:
    """Markdown table of benchmark rows (medians, ms per timepoint)."""
    lines = [
        f"Reconstruction benchmark (medians, ms per timepoint): {machine_line()}",
        "",
        "| device | frame (raw x9 -> SR) | threads | ms cached | ms per-frame update | ms Wiener only "
        "| ms param. update | ms start-up search |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.device} | {r.raw_size}^2 -> {r.sr_size}^2 | {r.torch_threads} | {r.ms_cached:.1f} | "
            f"{r.ms_update:.1f} | {r.ms_wiener:.1f} | {r.ms_param_update:.1f} | {r.ms_startup_search:.0f} |"
        )
    return "\n".join(lines)


def format_stage_table(r: ReconBenchResult) -> str:
    """One result as the per-stage table of ``tools/bench_recon.py``."""
    rows = [
        ("Wiener stage only (frames on device, cached filters)", r.ms_wiener),
        ("cached parameters: raw uint16 -> SR numpy (pre-process + Wiener + copy)", r.ms_cached),
        ("per-frame update: + estimate update, guards, filter refresh", r.ms_update),
        ("  of which: parameter update alone", r.ms_param_update),
        ("start-up full search alone (one-off)", r.ms_startup_search),
        ("first timepoint incl. search + filter build (one-off)", r.ms_first_timepoint),
    ]
    head = (
        f"Reconstruction benchmark: {r.raw_size}x{r.raw_size} x9 -> {r.sr_size}^2, device {r.device}, "
        f"{r.torch_threads} torch thread(s), {machine_line()}, medians of {r.repeats}"
    )
    return "\n".join([head, "", "| stage | median ms |", "|---|---:|", *[f"| {n} | {ms:.1f} |" for n, ms in rows]])


__all__ = ["ReconBenchResult", "format_recon_table", "format_stage_table", "median_ms", "run_recon_benchmark"]
