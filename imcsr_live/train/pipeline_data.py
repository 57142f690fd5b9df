"""Training data through the live pipeline: synthetic microscope raw SIM stacks -> the real Reconstructor.

``[data] kind = "pipeline"``. The fast approximation (:mod:`imcsr_live.train.degrade`) trains quickly but the
shipped models score clearly worse on real reconstructions (docs/REPRODUCTION.md, pipeline levels). This source
renders a pool once: ``cells`` synthetic cells per photon level (each its own seed, all structures of the rig in one
specimen), imaged by :class:`~imcsr_live.synth.world.SyntheticMicroscope` over ``frames`` timepoints, every
timepoint reconstructed by :class:`~imcsr_live.recon.reconstructor.Reconstructor`, stored with the per-structure
SR ground truth of the world. Per-structure brightness ratios come from the world itself
(``SpecimenParams.cell_brightness_range`` = ``[data] brightness_range``, one log-uniform factor per structure and
cell), so they are fixed per rendered cell rather than drawn anew per sample.

The reconstruction's intensity unit differs from the truth's (Wiener filter gain, ~0.5 for simulated.toml), so
the truth of each sequence is multiplied by the least-squares gain that maps the sum of its channels onto the
reconstruction; the separated channels then add up to the input, as the summation loss assumes.

The pool is cached as ``.npz`` under ``$IMCSR_LIVE_CACHE_DIR/train-pipeline/`` keyed by the data settings and the
rig TOML's text, so a resumed or repeated run does not render again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.fileio import atomic_path
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.data import NormalisingSampler, SampleSpec

if TYPE_CHECKING:
    from imcsr_live.recon.reconstructor import Reconstructor
    from imcsr_live.synth.world import SyntheticMicroscope

log = logging.getLogger(__name__)

POOL_VERSION = 4  # bump when the rendering changes, so old cache entries are not reused
# The Wiener reconstruction fades to 0 over ~24 SR pixels at the frame border (the truth does not): samples there
# would teach the network to invent structure in dark input, so the pool keeps only the interior.
EDGE_MARGIN = 24


def pipeline_session(
    rig: RigConfig,
    photons: float,
    size: int,
    seed: int,
    brightness_range: Sequence[float] | None = None,
    world: str = "default",
) -> tuple[SyntheticMicroscope, Reconstructor]:
    """A synthetic microscope (raw frames of half the SR ``size``) and a fresh reconstructor.

    ``brightness_range`` sets the default world's per-structure brightness factors (default: the world's own);
    ``world`` names the synthetic world (:data:`imcsr_live.synth.world.WORLDS`).
    """
    from imcsr_live.recon.reconstructor import Reconstructor
    from imcsr_live.synth.specimen import SpecimenParams
    from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

    specimen = (
        None
        if brightness_range is None
        else SpecimenParams(cell_brightness_range=(brightness_range[0], brightness_range[1]))
    )
    settings = WorldSettings(
        raw_shape=(size // 2, size // 2), photons=photons, seed=seed, specimen=specimen, world=world
    )
    return SyntheticMicroscope(rig, settings), Reconstructor(rig, workers=1)


def pipeline_sequence(
    rig: RigConfig,
    photons: float,
    size: int,
    seed: int,
    frames: int,
    brightness_range: Sequence[float] | None = None,
    world: str = "default",
) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` consecutive timepoints of one synthetic cell through the live pipeline.

    Returns the reconstructions ``(T, size, size)`` and the per-structure SR truth ``(T, C, size, size)``, both
    float32 in their own units (photoelectrons for the truth).
    """
    mic, rec = pipeline_session(rig, photons, size, seed, brightness_range, world)
    srs, gts = [], []
    for _ in range(frames):
        tp = mic.next_timepoint()
        srs.append(rec.reconstruct(tp.raw).sr)
        gts.append(tp.ground_truth)
    return np.stack(srs).astype(np.float32), np.stack(gts).astype(np.float32)


@dataclass
class PipelinePool:
    """Rendered sequences, the frame border cropped (:data:`EDGE_MARGIN`), stored as float16 to halve the memory.

    ``inputs`` ``(N, T, H, W)`` reconstructions; ``truth`` ``(N, T - 2 * pad, C, H, W)`` gain-matched truth of the
    timepoints that can be a window's middle frame (``pad`` = ``in_frames // 2``); ``photons`` ``(N,)``.
    """

    names: list[str]
    inputs: np.ndarray
    truth: np.ndarray
    photons: np.ndarray
    source: str

    @property
    def frames(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def pad(self) -> int:
        return (self.inputs.shape[1] - self.truth.shape[1]) // 2

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.inputs.shape[2]), int(self.inputs.shape[3])

    def describe(self) -> str:
        n, t, h, w = self.inputs.shape
        return f"{self.source} ({n} sequences x {t} frames x {h}x{w})"


def least_squares_gain(sr: np.ndarray, truth: np.ndarray) -> float:
    """Least-squares factor g with ``g * sum_c truth ~ sr`` over a whole sequence (1 if the truth is empty)."""
    s = truth.sum(axis=1, dtype=np.float64)
    den = float((s * s).sum())
    return float((sr * s).sum() / den) if den > 0 else 1.0


def _render_sequence(task: tuple) -> tuple[np.ndarray, np.ndarray]:
    """One pool sequence (a top-level function, so worker processes can run it)."""
    rig, photons, size, seed, frames, brightness_range, world = task
    return pipeline_sequence(rig, photons, size, seed, frames, brightness_range, world)


def render_pipeline_pool(
    rig: RigConfig,
    *,
    photons: Sequence[float],
    cells: int,
    size: int,
    frames: int,
    seed: int,
    in_frames: int = 1,
    brightness_range: tuple[float, float] | None = None,
    world: str = "default",
    mix: Mapping[str, float] | None = None,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> PipelinePool:
    """Render ``cells`` sequences per photon level; sequence ``j`` of level ``i`` uses microscope seed
    ``seed + i * cells + j``. ``in_frames`` = the model's input frames (which truth frames to keep).

    ``mix`` (world -> share, in order): of each level, the first ``round(share * cells)`` cells come from the first
    world named, the next ones from the second, ..., the rest from ``world`` (e.g. ``{"default": 0.25}`` keeps the
    default world's quality while training on another; :meth:`DataTable.other_worlds`).
    ``workers`` > 1 renders in that many processes; every sequence has its own seed, so the pool is the same.
    """
    if size % 4 or size - 2 * EDGE_MARGIN < 32:
        raise InputDataError(f"[data] size must be a multiple of 4 and >= 128 for the pipeline; got {size}")
    if in_frames > frames:
        raise InputDataError(f"{in_frames} input frames requested but [data] frames = {frames}; raise frames")
    n = cells * len(photons)
    c = len(rig.structure_names)
    m, pad = EDGE_MARGIN, in_frames // 2
    inner = size - 2 * m
    inputs = np.empty((n, frames, inner, inner), np.float16)
    truth = np.empty((n, frames - 2 * pad, c, inner, inner), np.float16)
    levels = np.repeat(np.asarray(photons, np.float32), cells)
    cell_worlds = mixed_cell_worlds(world, mix or {}, cells)
    tasks = [
        (rig, float(p), size, seed + i * cells + j, frames, brightness_range, cell_worlds[j])
        for i, p in enumerate(photons)
        for j in range(cells)
    ]
    with _task_map(workers) as run:
        for k, (sr, gt) in enumerate(run(_render_sequence, tasks)):
            g = np.float32(least_squares_gain(sr[:, m:-m, m:-m], gt[:, :, m:-m, m:-m]))
            inputs[k] = sr[:, m:-m, m:-m]
            truth[k] = (gt[pad : frames - pad, :, m:-m, m:-m] * g).astype(np.float16)
            if on_progress is not None:
                on_progress(k + 1, n)
    others = [f"{cell_worlds.count(w)} from the {w} world" for w in (mix or {}) if w in cell_worlds]
    worlds = f"{world} world" + (f", {', '.join(others)}" if others else "")
    src = f"live pipeline (synthetic microscope + Reconstructor, seeds {seed}.., {cells} cells per photon level, " + (
        f"{worlds})"
    )
    return PipelinePool(list(rig.structure_names), inputs, truth, levels, src)


def mixed_cell_worlds(world: str, mix: Mapping[str, float], cells: int) -> list[str]:
    """The world of each of a photon level's ``cells`` cells: ``round(share * cells)`` from each world in ``mix``, in
    its order, then ``world`` for the rest (at least one cell stays with ``world``)."""
    out: list[str] = []
    for name, share in mix.items():
        out += [name] * min(round(share * cells), cells - 1 - len(out))
    return out + [world] * (cells - len(out))


@contextmanager
def _task_map(workers: int) -> Iterator[Callable]:
    """An ordered ``map``: in this process with one torch thread, or over the shared render processes."""
    if workers <= 1:
        with one_torch_thread():
            yield map
        return
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield lambda fn, items: render_pool(workers).map(fn, items, chunksize=1)
    except BrokenProcessPool:
        drop_render_pool(workers)
        raise


def _single_threaded_worker(parent: int) -> None:
    """Render workers share the machine: one torch thread each (16 threads in each of 15 workers thrash).

    They also end with ``parent``, the process that started them: a killed trainer must not leave orphans rendering
    on. Its id comes from the parent itself: a worker still importing torch when the parent dies already sees the
    process it was re-parented to.
    """
    import torch

    torch.set_num_threads(1)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> threading.Thread:
    """A daemon thread that ends this process once ``parent`` is gone (its parent id changes on re-parenting)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Render with one torch thread (the reconstruction's result then does not depend on the thread count)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


_RENDER_POOLS: dict[int, Executor] = {}


def render_pool(workers: int) -> Executor:
    """``workers`` spawned single-threaded render processes, kept for the life of this process (starting them costs
    seconds: each imports torch). A script that uses them needs the ``if __name__ == "__main__":`` guard."""
    pool = _RENDER_POOLS.get(workers)
    if pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch / CUDA state
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_single_threaded_worker, initargs=(os.getpid(),)
        )
        _RENDER_POOLS[workers] = pool
    return pool


def drop_render_pool(workers: int) -> None:
    """Forget a broken pool, so that the next call starts a fresh one."""
    _RENDER_POOLS.pop(workers, None)


def pool_cache_path(fields: dict) -> Path:
    from imcsr_live.engine.cache import cache_dir, cache_key

    return cache_dir() / "train-pipeline" / f"pool-{cache_key({**fields, 'version': POOL_VERSION})}.npz"


def cached_pipeline_pool(
    rig: RigConfig,
    rig_text: str,
    *,
    photons: Sequence[float],
    cells: int,
    size: int,
    frames: int,
    seed: int,
    in_frames: int = 1,
    brightness_range: tuple[float, float] | None = None,
    world: str = "default",
    mix: Mapping[str, float] | None = None,
    workers: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[PipelinePool, Path, bool]:
    """:func:`render_pipeline_pool`, or the cached copy of an identical earlier render.

    Returns the pool, its cache file and whether it came from the cache.
    """
    kw = {"photons": [float(p) for p in photons], "cells": cells, "size": size, "frames": frames, "seed": seed,
          "in_frames": in_frames,
          "brightness_range": None if brightness_range is None else [float(v) for v in brightness_range],
          "world": world}  # fmt: skip
    mix = dict(mix or {})
    key = {**kw, "rig": rig_text, "structures": rig.structure_names}
    if set(mix) == {"default"}:  # keyed as before the general mix, so that earlier caches stay valid
        key["default_fraction"] = float(mix["default"])
    elif mix:
        key["mix"] = [[w, float(share)] for w, share in mix.items()]
    path = pool_cache_path(key)
    if path.is_file():
        try:
            with np.load(path) as z:
                pool = PipelinePool(list(rig.structure_names), z["inputs"], z["truth"], z["photons"], str(z["source"]))
            log.info("pipeline pool from cache %s", path)
            return pool, path, True
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable pipeline pool cache %s (%s); rendering again", path, exc)
    pool = render_pipeline_pool(rig, on_progress=on_progress, workers=workers, mix=mix, **kw)  # type: ignore[arg-type]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # atomic: a crash never leaves a half-written pool
        np.savez(f, inputs=pool.inputs, truth=pool.truth, photons=pool.photons, source=np.array(pool.source))
    return pool, path, False


def _augment_pair(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random 90-degree rotation and flip on the last two axes of input and truth."""
    k = int(rng.integers(4))
    x, y = np.rot90(x, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1))
    if rng.random() < 0.5:
        x, y = x[..., ::-1], y[..., ::-1]
    return x, y


class PipelineSampler(NormalisingSampler):
    """Draw ``(inputs (in_frames, p, p), targets (C, p, p), photons)`` aligned crops of a :class:`PipelinePool`.

    Inputs are normalised like the live engine's (:func:`normalize_input`, the middle frame's percentile) and the
    targets divided by the same scale. Same interface as :class:`~imcsr_live.train.data.SeparationSampler`.
    """

    def __init__(self, pool: PipelinePool, spec: SampleSpec) -> None:
        self._half = max(spec.in_frames // 2, pool.pad)  # window middles must have neighbours and a stored truth
        if pool.frames - 2 * self._half < 1:
            raise InputDataError(
                f"{spec.in_frames} input frames requested but the pipeline pool has {pool.frames}; set [data] frames"
            )
        if spec.patch > min(pool.shape):
            raise InputDataError(f"patch {spec.patch} is larger than the images {pool.shape}; use a smaller patch")
        self.pool = pool
        self.spec = spec

    def crop(
        self, rng: np.random.Generator, *, patch: int | None = None, augment: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Unnormalised aligned crop: input frames ``(T, p, p)``, the middle frame's truth ``(C, p, p)``, photons."""
        s, pool = self.spec, self.pool
        p, nt = patch or s.patch, s.in_frames
        k = int(rng.integers(pool.inputs.shape[0]))
        tm = int(rng.integers(self._half, pool.frames - self._half))  # the window's middle timepoint
        t0 = tm - nt // 2
        h, w = pool.shape
        y0, x0 = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        x = pool.inputs[k, t0 : t0 + nt, y0 : y0 + p, x0 : x0 + p].astype(np.float32)
        y = pool.truth[k, tm - pool.pad, :, y0 : y0 + p, x0 : x0 + p].astype(np.float32)
        if s.augment if augment is None else augment:
            x, y = _augment_pair(x, y, rng)
        return np.ascontiguousarray(x), np.ascontiguousarray(y), float(pool.photons[k])

    def raw_sample(
        self, rng: np.random.Generator, *, patch: int | None = None, augment: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        return self.crop(rng, patch=patch, augment=augment)

    def iter_full(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every sequence's first window, full size, normalised (tests, inspection)."""
        nt, tm = self.spec.in_frames, self._half
        for k in range(self.pool.inputs.shape[0]):
            x, scale = normalize_input(self.pool.inputs[k, tm - nt // 2 : tm + nt // 2 + 1].astype(np.float32))
            yield x, self.pool.truth[k, tm - self.pool.pad].astype(np.float32) / np.float32(scale)
