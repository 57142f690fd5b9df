"""Training and evaluation data: per-structure image pools and the sampler that mixes them.

The paper's recipe (docs/method.md#training): per-structure SR images, augmented (flips, 90-degree rotations,
random crops); the input is the sum of one random patch of each structure, the ground truth the patches. Here
each structure has a *pool* ``(K, T, H, W)`` of K images (cells) with T frames (T = 1, or a short time-lapse for
temporal continuity). A sample takes, per structure, a random cell, a random crop of ``in_frames`` consecutive
frames and a random flip / rotation, scales it by a random brightness ratio (expression levels vary), sums the
structures and -- for synthetic pools -- turns the clean sum into a reconstruction-like SR input at a random
photon level (:mod:`imcsr_live.train.degrade`). Inputs and targets are normalised together
(:mod:`imcsr_live.model.normalization`).

Pools come from the synthetic specimen (:func:`synthetic_pool`) or from folders of per-structure TIFF/MRC
images (:func:`folder_pool`, layout ``ROOT/<Structure>/*.tif|*.mrc``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.degrade import SimReconApproximation

if TYPE_CHECKING:
    from imcsr_live.synth.forward import SimForwardModel

IMAGE_SUFFIXES = (".tif", ".tiff", ".mrc")
NORM_PERCENTILE = 99.9


@dataclass
class StructurePool:
    """Per-structure images: ``images[s]`` is float32 ``(K, T, H, W)``, each image scaled to 99.9 pct = 1."""

    names: list[str]
    images: list[np.ndarray]
    source: str
    synthetic: bool = False

    @property
    def frames(self) -> int:
        return min(im.shape[1] for im in self.images)

    @property
    def shape(self) -> tuple[int, int]:
        return min(im.shape[2] for im in self.images), min(im.shape[3] for im in self.images)

    def describe(self) -> str:
        cells = ", ".join(
            f"{n}: {im.shape[0]} x {im.shape[1]} x {im.shape[2]}x{im.shape[3]}"
            for n, im in zip(self.names, self.images, strict=True)
        )
        return f"{self.source} ({cells})"


def _unit_scale(img: np.ndarray) -> np.ndarray:
    """Divide by the 99.9th percentile over all frames, so every structure starts at comparable brightness."""
    s = float(np.percentile(img, NORM_PERCENTILE))
    return (img / s).astype(np.float32) if s > 0 else img.astype(np.float32)


def synthetic_pool(
    names: Sequence[str],
    *,
    cells: int,
    size: int,
    frames: int = 1,
    interval_s: float = 2.0,
    seed: int = 0,
    sr_pixel_um: float = 0.0313,
    forward: SimForwardModel | None = None,
) -> StructurePool:
    """Render ``cells`` independent synthetic cells per structure on the SR grid, band-limited to the SIM passband.

    Each (structure, cell) is its own :class:`~imcsr_live.synth.specimen.Specimen` (one structure only), so the
    structures of a training sample are unrelated, as in the paper. ``frames > 1`` renders a time-lapse with
    ``interval_s`` between frames (for TC training).
    """
    from imcsr_live.synth.forward import OpticsParams, PatternParams, SimForwardModel
    from imcsr_live.synth.specimen import Specimen

    if size % 2:
        raise InputDataError(f"synthetic image size must be even (got {size})")
    if forward is None:
        forward = SimForwardModel(
            OpticsParams(na=1.49, emission_wavelength_nm=525.0, pixel_size_um=2 * sr_pixel_um),
            PatternParams(angles_deg=(12.0, 72.0, 132.0), period_um=0.19575, modulation=0.8),
            (size // 2, size // 2),
            oversample=2,
        )
    seeds = np.random.SeedSequence(seed).spawn(len(names))
    images = []
    for name, seq in zip(names, seeds, strict=True):
        stack = np.empty((cells, frames, size, size), dtype=np.float32)
        for k, cell_seq in enumerate(seq.spawn(cells)):
            spec = Specimen([name], (size, size), forward.truth_pixel_size_um, seed=np.random.default_rng(cell_seq))
            for t in range(frames):
                stack[k, t] = forward.sr_ground_truth(spec.render())[0]
                spec.advance(interval_s)
            stack[k] = _unit_scale(np.maximum(stack[k], 0))
        images.append(stack)
    return StructurePool(list(names), images, f"synthetic specimen (seed {seed}, {cells} cells per structure)", True)


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() != ".mrc":
        from imcsr_live.io.tiff import read_tiff  # refuses a truncated file as such, with one line

        data = np.asarray(read_tiff(path)[0], dtype=np.float32)
    else:
        import mrcfile

        try:
            with mrcfile.open(path, permissive=True) as mrc:
                data = np.asarray(mrc.data, dtype=np.float32)
        except Exception as exc:
            raise InputDataError(f"{path}: cannot read image ({exc}); is it a valid MRC file?") from None
    data = np.squeeze(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputDataError(f"{path}: image has shape {data.shape}; expected (Y, X) or a time-lapse (T, Y, X)")
    if not np.all(np.isfinite(data)):
        raise InputDataError(f"{path}: image contains NaN or inf values")
    return data


def structure_files(root: Path, name: str) -> list[Path]:
    """Image files of one structure folder (sorted); error naming the folder if it is missing or empty."""
    folder = root / name
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise InputDataError(
            f"{folder}: no folder for structure {name!r} (found {have or 'no folders'}); the layout is "
            "ROOT/<Structure>/*.tif|*.mrc with one folder per structure in the model's order"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputDataError(f"{folder}: structure {name!r} has no images (*.tif, *.tiff, *.mrc); add some")
    return files


def folder_pool(root: str | Path, names: Sequence[str], *, frames: int = 1, min_size: int = 0) -> StructurePool:
    """Load ``ROOT/<Structure>/*`` for each structure. All images must share one (Y, X) shape.

    Single images give T = 1; time-lapse stacks (T, Y, X) are kept whole (TC training needs ``frames`` <= T).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"dataset folder {root} not found; pass a folder with one subfolder per structure")
    images = []
    ref: tuple[tuple[int, int], Path] | None = None
    for name in names:
        stack = []
        for path in structure_files(root, name):
            img = _read_image(path)
            if ref is None:
                ref = (img.shape[1:], path)
            elif img.shape[1:] != ref[0]:
                raise InputDataError(
                    f"{path}: image is {img.shape[1]}x{img.shape[2]} but {ref[1]} is {ref[0][0]}x{ref[0][1]}; "
                    "all images of a dataset must have one size (crop or resample them)"
                )
            if img.shape[0] < frames:
                raise InputDataError(f"{path}: has {img.shape[0]} frame(s); temporal continuity needs >= {frames}")
            if min(img.shape[1:]) < min_size:
                raise InputDataError(f"{path}: image {img.shape[1:]} is smaller than the {min_size}-pixel patch")
            stack.append(_unit_scale(np.maximum(img, 0)))
        t = min(s.shape[0] for s in stack)
        images.append(np.stack([s[:t] for s in stack]))
    return StructurePool(list(names), images, f"folder {root}")


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random 90-degree rotation and flip of the last two axes (the same for every frame)."""
    img = np.rot90(img, k=int(rng.integers(4)), axes=(-2, -1))
    if rng.random() < 0.5:
        img = img[..., ::-1]
    return img


@dataclass
class SampleSpec:
    """How samples are drawn from a pool."""

    patch: int = 128
    in_frames: int = 1
    target: list[int] | None = None  # structure indices to output (None: all) -- Single models use one
    brightness_range: tuple[float, float] = (0.5, 2.0)
    photons: list[float] = field(default_factory=lambda: [100.0, 300.0, 1000.0])
    augment: bool = True


class NormalisingSampler:
    """Shared sampling step: inputs normalised like the live engine's (:func:`normalize_input`), targets divided by
    the same scale, optionally one structure (Single models). Subclasses provide :meth:`raw_sample`."""

    spec: SampleSpec

    def raw_sample(
        self, rng: np.random.Generator, *, patch: int | None = None, augment: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """``(inputs (in_frames, p, p) unnormalised, targets (C, p, p) in the same units, photons)``."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, **kw: Any) -> tuple[np.ndarray, np.ndarray, float]:
        x, targets, photons = self.raw_sample(rng, **kw)
        x, scale = normalize_input(x)
        y = np.clip(targets / np.float32(scale), 0.0, 1.0)
        if self.spec.target is not None:
            y = y[self.spec.target]
        return x.astype(np.float32), y.astype(np.float32), photons

    def fixed_set(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` reproducible samples (validation): inputs ``(n, T, p, p)``, targets ``(n, C, p, p)``."""
        rng = np.random.default_rng(seed)
        xs, ys = zip(*(self.sample(rng)[:2] for _ in range(n)), strict=True)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


class SeparationSampler(NormalisingSampler):
    """Draw ``(inputs (in_frames, p, p), targets (C, p, p), photons)`` samples from a pool."""

    def __init__(self, pool: StructurePool, spec: SampleSpec, degrader: SimReconApproximation | None = None) -> None:
        if spec.in_frames > pool.frames:
            raise InputDataError(
                f"{spec.in_frames} input frames requested but the data has {pool.frames} frame(s) per image; "
                "temporal continuity needs time-lapse data (synthetic: frames = 3)"
            )
        h, w = pool.shape
        if spec.patch > min(h, w):
            raise InputDataError(f"patch {spec.patch} is larger than the images ({h}x{w}); use a smaller patch")
        self.pool = pool
        self.spec = spec
        self.degrader = degrader if pool.synthetic else None
        if pool.synthetic and self.degrader is None:
            self.degrader = SimReconApproximation()

    def clean_sum_and_targets(
        self,
        rng: np.random.Generator,
        *,
        patch: int | None = None,
        cells: Sequence[int] | None = None,
        ratios: Sequence[float] | None = None,
        augment: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clean summed frames ``(T, p, p)`` and per-structure middle frames ``(S, p, p)`` (unit brightness)."""
        s = self.spec
        p = patch or s.patch
        nt = s.in_frames
        aug = s.augment if augment is None else augment
        lo, hi = s.brightness_range
        parts = []
        for i, stack in enumerate(self.pool.images):
            k = int(rng.integers(stack.shape[0])) if cells is None else cells[i]
            t0 = int(rng.integers(stack.shape[1] - nt + 1))
            y = int(rng.integers(stack.shape[2] - p + 1))
            x = int(rng.integers(stack.shape[3] - p + 1))
            crop = stack[k, t0 : t0 + nt, y : y + p, x : x + p]
            if aug:
                crop = _augment(crop, rng)
            r = math.exp(rng.uniform(math.log(lo), math.log(hi))) if ratios is None else ratios[i]
            parts.append(np.ascontiguousarray(crop) * np.float32(r))
        stacked = np.stack(parts)  # (S, T, p, p)
        return stacked.sum(axis=0), stacked[:, nt // 2]

    def make_input(self, clean: np.ndarray, photons: float | None, rng: np.random.Generator) -> np.ndarray:
        """Reconstruction-like SR frames from clean sums (synthetic pools), else the sums themselves."""
        if self.degrader is None or photons is None:
            return clean
        scale = self.degrader.photon_scale(clean[clean.shape[0] // 2], photons)
        return np.stack([self.degrader.degrade(f * np.float32(scale), rng) for f in clean]) / np.float32(scale)

    def raw_sample(
        self, rng: np.random.Generator, *, patch: int | None = None, augment: bool | None = None, **kw: Any
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """As the base class; ``kw``: ``cells`` / ``ratios`` of :meth:`clean_sum_and_targets`."""
        photons = float(rng.choice(self.spec.photons)) if self.degrader is not None else float("nan")
        clean, targets = self.clean_sum_and_targets(rng, patch=patch, augment=augment, **kw)
        return self.make_input(clean, None if math.isnan(photons) else photons, rng), targets, photons


class SampleStream(torch.utils.data.IterableDataset):
    """Endless ``(inputs, targets)`` samples; each DataLoader worker and each DDP rank gets its own stream."""

    def __init__(self, sampler: NormalisingSampler, seed: int, rank: int = 0) -> None:
        super().__init__()
        self.sampler = sampler
        self.seed = seed
        self.rank = rank
        self.epoch = 0  # bumped on resume so a resumed run does not replay the same samples

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, worker, self.epoch])
        while True:
            x, y, _ = self.sampler.sample(rng)
            yield torch.from_numpy(x), torch.from_numpy(y)
