"""Training data acquired at the scope: ``[data] kind = "acquired"``, ``root = "DIR"`` from ``acquire-training``.

The paper's recipe on a lab's own cells: each structure was imaged alone (its own colour) and reconstructed; a
sample's input is the sum of the structures' SR images, each scaled by a random brightness ratio (``[data]
brightness_range``, log-uniform: expression levels vary), and its targets are the scaled images themselves. The
structures of one sample come from the same cell, position and timepoints (co-registered crops, one random flip /
rotation for all). TC models (``in_frames = 3``) get three consecutive timepoints of one position, never across
an interruption: a resumed acquisition starts a new *session*, and windows stay inside one session.

Each structure's images at one position are scaled together (their 99.9th percentile = 1), so every structure
starts at comparable brightness and the time-lapse keeps its own brightness changes. The Wiener reconstruction's
fade at the frame border is cropped (:data:`~imcsr_live.train.pipeline_data.EDGE_MARGIN`).

Validation is held out by position (the last ``val_fraction`` of them), or with one position by a block of the
last timepoints; never by crop, so validation never sees a cell it was trained on (one position) or a moment
it was trained on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.errors import InputDataError
from imcsr_live.fileio import file_sha256
from imcsr_live.io.training_dataset import MANIFEST, DatasetManifest, read_manifest, read_sr
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.data import NORM_PERCENTILE, NormalisingSampler, SampleSpec, _augment
from imcsr_live.train.pipeline_data import EDGE_MARGIN


@dataclass
class Run:
    """Consecutive timepoints of one position taken in one session: float16 ``(T, S, H, W)``."""

    position: int
    session: int
    timepoints: list[int]
    images: np.ndarray


def read_dataset(root: Path, names: list[str]) -> DatasetManifest:
    """The manifest of an acquired dataset for a model separating ``names`` (in this order), or one error line."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"[data] root {root} not found; make a dataset with imcsr-live acquire-training -o DIR")
    manifest = read_manifest(root)
    if manifest is None:
        raise InputDataError(f"{root} holds no {MANIFEST}; it is not a dataset made by imcsr-live acquire-training")
    if manifest.structure_names != names:
        raise InputDataError(
            f"{root} holds {manifest.structure_names} but the config separates {names}; list the dataset's "
            "structures, in its order, under [[structures]]"
        )
    return manifest


def load_runs(root: Path, manifest: DatasetManifest) -> list[Run]:
    """Every finished timepoint's SR images, grouped into runs (position, session, consecutive timepoints)."""
    names = manifest.structure_names
    runs: list[Run] = []
    groups: list[list[tuple[int, int]]] = []  # (timepoint, session) runs, the same at every position
    for tp in sorted(manifest.timepoints, key=lambda tp: tp.index):
        last = groups[-1][-1] if groups else None
        if last is not None and last[1] == tp.session and last[0] == tp.index - 1:
            groups[-1].append((tp.index, tp.session))
        else:
            groups.append([(tp.index, tp.session)])
    for p in range(manifest.n_positions):
        stacks = []
        for group in groups:
            images = np.stack([np.stack([read_sr(root, p, t, n) for n in names]) for t, _ in group])
            m = EDGE_MARGIN
            stacks.append(images[..., m:-m, m:-m] if min(images.shape[-2:]) > 4 * m else images)
        scale = [_percentile(np.concatenate([s[:, c] for s in stacks])) for c in range(len(names))]
        for group, stack in zip(groups, stacks, strict=True):
            scaled = stack / np.asarray(scale, np.float32)[None, :, None, None]
            runs.append(Run(p, group[0][1], [t for t, _ in group], scaled.astype(np.float16)))
    return runs


def _percentile(images: np.ndarray) -> float:
    value = float(np.percentile(images, NORM_PERCENTILE))
    return value if value > 0 else 1.0


def split_runs(
    root: Path, manifest: DatasetManifest, runs: list[Run], in_frames: int, val_fraction: float
) -> tuple[list[Run], list[Run], str]:
    """Training and validation runs (by position, or by a block of the last timepoints with one position) and a
    description of the split; one error line if the dataset is too small to split."""
    positions = manifest.n_positions
    if positions >= 2:
        n_val = min(positions - 1, max(1, round(positions * val_fraction)))
        held = set(range(positions - n_val, positions))
        train = [r for r in runs if r.position not in held]
        val = [r for r in runs if r.position in held]
        how = f"positions {sorted(held)} of {positions} held out"
    else:
        indices = sorted(manifest.finished)
        n_val = max(in_frames, round(len(indices) * val_fraction))
        first_val = indices[-n_val] if n_val < len(indices) else indices[0]
        train, val = [], []
        for run in runs:
            cut = sum(t < first_val for t in run.timepoints)
            if cut:
                train.append(Run(run.position, run.session, run.timepoints[:cut], run.images[:cut]))
            if cut < len(run.timepoints):
                val.append(Run(run.position, run.session, run.timepoints[cut:], run.images[cut:]))
        how = f"one position: timepoints {first_val + 1}..{indices[-1] + 1} of {len(indices)} held out"
    for split, chosen in (("training", train), ("validation", val)):
        if not any(len(r.timepoints) >= in_frames for r in chosen):
            raise InputDataError(
                f"{root}: {len(manifest.timepoints)} timepoint(s) x {positions} position(s) are too few to split "
                f"into training and validation ({split} gets no run of {in_frames} consecutive timepoint(s)); "
                "acquire more timepoints (acquire-training --timepoints N resumes the folder) or use --positions"
            )
    return train, val, how


class AcquiredSampler(NormalisingSampler):
    """Samples of acquired runs: sum of brightness-scaled co-registered crops in, the scaled crops out.

    Same interface as :class:`~imcsr_live.train.data.SeparationSampler`.
    """

    def __init__(self, runs: list[Run], spec: SampleSpec, photons: float | None) -> None:
        nt = spec.in_frames
        self.windows = [(k, t) for k, r in enumerate(runs) for t in range(len(r.timepoints) - nt + 1)]
        h, w = runs[0].images.shape[-2:]
        if spec.patch > min(h, w):
            raise InputDataError(
                f"[data] patch {spec.patch} is larger than the acquired SR images ({h}x{w} after the "
                f"{EDGE_MARGIN}-pixel border); use a smaller patch"
            )
        self.runs = runs
        self.spec = spec
        self.photons = float("nan") if photons is None else float(photons)

    def raw_sample(
        self, rng: np.random.Generator, *, patch: int | None = None, augment: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        s = self.spec
        p, nt = patch or s.patch, s.in_frames
        k, t0 = self.windows[int(rng.integers(len(self.windows)))]
        images = self.runs[k].images
        y, x = int(rng.integers(images.shape[-2] - p + 1)), int(rng.integers(images.shape[-1] - p + 1))
        crop = np.moveaxis(images[t0 : t0 + nt, :, y : y + p, x : x + p].astype(np.float32), 0, 1)  # (S, T, p, p)
        if s.augment if augment is None else augment:
            crop = _augment(crop, rng)
        lo, hi = s.brightness_range
        ratios = np.exp(rng.uniform(math.log(lo), math.log(hi), size=crop.shape[0])).astype(np.float32)
        scaled = crop * ratios[:, None, None, None]
        return np.ascontiguousarray(scaled.sum(axis=0)), np.ascontiguousarray(scaled[:, nt // 2]), self.photons

    def iter_full(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every window full size, the structures summed as they are (ratio 1), normalised: ``(inputs (T, H, W),
        targets (S, H, W))`` in the same units (evaluation)."""
        nt = self.spec.in_frames
        for k, t0 in self.windows:
            images = self.runs[k].images[t0 : t0 + nt].astype(np.float32)  # (T, S, H, W)
            x, scale = normalize_input(images.sum(axis=1))
            yield x, images[nt // 2] / np.float32(scale)


def dataset_record(root: Path) -> dict[str, Any]:
    """What the model card keeps of the dataset: its folder, the SHA-256 of its ``dataset.json``, what it holds."""
    manifest = read_manifest(root)
    assert manifest is not None
    return {
        "path": str(Path(root).resolve()),
        "dataset_json_sha256": file_sha256(Path(root) / MANIFEST),
        "rig": manifest.rig_name,
        "rig_sha256": manifest.rig_sha256,
        "timepoints": len(manifest.timepoints),
        "positions": manifest.n_positions,
        "presets": {s.name: s.preset for s in manifest.structures},
        "photons": manifest.photons,
    }


def acquired_samplers(
    root: Path, names: list[str], spec: SampleSpec, val_fraction: float
) -> tuple[AcquiredSampler, AcquiredSampler, str]:
    """Training and validation samplers of an acquired dataset, and its description for the model card."""
    manifest = read_dataset(root, names)
    runs = load_runs(root, manifest)
    train, val, how = split_runs(root, manifest, runs, spec.in_frames, val_fraction)
    h, w = runs[0].images.shape[-2:]
    sha = file_sha256(Path(root) / MANIFEST)
    desc = (
        f"acquired dataset {Path(root).resolve()} (dataset.json sha256 {sha[:16]}..., rig {manifest.rig_name}, "
        f"{len(manifest.timepoints)} timepoints x {manifest.n_positions} position(s), {h}x{w} SR pixels; presets "
        f"{', '.join(f'{s.name} <- {s.preset}' for s in manifest.structures)}); validation: {how}; input = sum of "
        f"the per-structure SR images (brightness ratios {list(spec.brightness_range)}), truth = those images"
    )
    trains = [r for r in train if len(r.timepoints) >= spec.in_frames]
    vals = [r for r in val if len(r.timepoints) >= spec.in_frames]
    return AcquiredSampler(trains, spec, manifest.photons), AcquiredSampler(vals, spec, manifest.photons), desc
