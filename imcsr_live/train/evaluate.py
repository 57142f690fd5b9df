"""``imcsr-live evaluate``: paper metrics of a trained model per structure and SNR, against a trivial baseline.

Data: ``"synthetic"`` (fresh synthetic cells, never seen in training, at each photon level through the fast
Wiener-SIM approximation; with ``pipeline`` also through the synthetic microscope + the real reconstructor), a
named synthetic world other than the default (:func:`eval_worlds`, e.g. ``"independent"``: cells of that world
through the synthetic microscope + the real reconstructor, levels ``"<world> <p> photons"``, cell seeds from
:data:`WORLD_EVAL_SEED_BASE` on) or a folder of per-structure images ``D/<Structure>/*`` -- or
``D/<level>/<Structure>/*`` for several SNR levels. World names take precedence over folders of the same name
(write ``./independent`` for such a folder). Each fast or folder test image is the sum of one full-size image per
structure (brightness ratio 1); the ground truth is the structures. The baseline copies the input to every
channel (what you see without separation; the linear fit of the metrics makes any per-channel scale, e.g. mean
brightness ratios, irrelevant).

Writes ``metrics.csv`` (one row per image, structure and method), ``metrics.md`` (medians and IQRs),
``boxplots.png`` (Tukey box plots, whiskers 1.5 IQR, as the paper's Fig. 2A / 3B) and ``montage.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.model.checkpoint import load_checkpoint
from imcsr_live.model.metrics import evaluate_image
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.config import TrainConfig
from imcsr_live.train.data import SampleSpec, SeparationSampler, StructurePool, folder_pool, synthetic_pool
from imcsr_live.train.degrade import SimDegradeParams, SimReconApproximation
from imcsr_live.train.eval_report import EvalReport
from imcsr_live.train.pipeline_data import drop_render_pool, one_torch_thread, render_pool

if TYPE_CHECKING:
    from imcsr_live.recon.reconstructor import Reconstructor
    from imcsr_live.synth.world import SyntheticMicroscope

# Cell seeds of the named worlds' test data start here: far above every training and validation seed (training
# renders seeds from 0 up to ~10^7), so an evaluation never images a cell a model was trained on. Test image i
# uses WORLD_EVAL_SEED_BASE + seed + PIPELINE_IMAGE_OFFSET + i, static (flicker) scene j
# WORLD_EVAL_SEED_BASE + seed + STATIC_SCENE_OFFSET + j. The default world keeps base 0 (the --pipeline levels
# of earlier reports stay reproducible).
WORLD_EVAL_SEED_BASE = 900_000_000
PIPELINE_IMAGE_OFFSET = 3_000_003
STATIC_SCENE_OFFSET = 4_000_037


def eval_worlds() -> list[str]:
    """The synthetic worlds ``--data`` accepts by name (every world but "default", which is ``"synthetic"``)."""
    from imcsr_live.synth.world import WORLDS

    return [w for w in WORLDS if w != "default"]


def world_seed_base(world: str) -> int:
    """First cell seed of a world's test data (see :data:`WORLD_EVAL_SEED_BASE`)."""
    return 0 if world == "default" else WORLD_EVAL_SEED_BASE


def pipeline_level_name(world: str, photons: float) -> str:
    """Level name of pipeline test images: ``"pipeline 300 photons"`` (default world), ``"independent 300 photons"``."""
    return f"{'pipeline' if world == 'default' else world} {photons:g} photons"


def crop_margin(img: np.ndarray, margin: int) -> np.ndarray:
    """``img`` ``(..., H, W)`` without ``margin`` pixels at each border."""
    return img[..., margin:-margin, margin:-margin] if margin else img


@dataclass
class EvalSet:
    """Test images of one SNR level: inputs ``(N, T, H, W)`` normalised, targets ``(N, S, H, W)`` (all structures)."""

    level: str
    inputs: np.ndarray
    targets: np.ndarray
    margin: int = 0  # border left out of the scores (see EvalLevel.margin)


def iter_test_images(
    pool: StructurePool,
    frames: int,
    photons: float | None,
    images: int,
    seed: int,
    degrader: SimReconApproximation | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Test images one by one: normalised input ``(frames, H, W)`` and targets ``(S, H, W)`` of the middle frame.

    Image ``i`` sums cell ``(i + 3 s) mod K`` of structure ``s`` (brightness ratio 1), full size, no augmentation;
    the same ``seed`` gives the same images and noise, so methods compared on it see identical inputs.
    """
    size = min(pool.shape)
    spec = SampleSpec(patch=size, in_frames=frames, brightness_range=(1.0, 1.0), augment=False)
    sampler = SeparationSampler(pool, spec, degrader)
    rng = np.random.default_rng(seed)
    for i in range(images):
        cells = [(i + 3 * s) % im.shape[0] for s, im in enumerate(pool.images)]
        clean, targets = sampler.clean_sum_and_targets(rng, cells=cells, ratios=[1.0] * len(cells))
        x = sampler.make_input(clean, photons, rng)
        x, scale = normalize_input(x)
        yield x, targets / np.float32(scale)


@dataclass
class EvalLevel:
    """One SNR level of a test set and how its inputs are made.

    Fast levels: a pool of clean per-structure images, summed and degraded by the Wiener-SIM approximation.
    Pipeline levels (``rig`` set): the real synthetic microscope (raw 9-frame SIM stacks with camera noise) of the
    synthetic ``world`` and the real :class:`~imcsr_live.recon.reconstructor.Reconstructor`, i.e. the live
    pipeline's input; ``workers`` processes render the test images (the images do not depend on it).
    """

    level: str
    pool: StructurePool | None
    photons: float | None
    degrader: SimReconApproximation | None = None
    rig: RigConfig | None = None
    size: int = 0  # SR image size of a pipeline level
    # SR pixels at each border left out of the scores: the reconstruction fades to 0 there (raw-frame edge taper)
    # while the truth does not, so no model can be right there (pipeline levels: EDGE_MARGIN).
    margin: int = 0
    world: str = "default"  # synthetic world of a pipeline level (imcsr_live.synth.world.WORLDS)
    workers: int = 1

    def scored(self, img: np.ndarray) -> np.ndarray:
        """The part of ``(..., H, W)`` that metrics and flicker are computed on (the border ``margin`` removed)."""
        return crop_margin(img, self.margin)

    def images(self, frames: int, images: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Normalised inputs ``(frames, H, W)`` and targets ``(S, H, W)`` (see :func:`iter_test_images`)."""
        if self.rig is not None:
            assert self.photons is not None
            return iter_pipeline_images(
                self.rig, frames, self.photons, images, seed, self.size, world=self.world, workers=self.workers
            )
        assert self.pool is not None
        return iter_test_images(self.pool, frames, self.photons, images, seed, self.degrader)

    def static_scene(self, scene: int, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """One still scene for the flicker test: ``n`` SR frames ``(n, size, size)`` with independent noise per
        frame, and its per-structure truth ``(S, size, size)`` scaled onto the frames (least squares of the
        summed truth against the frames, so both are in the same units)."""
        from imcsr_live.train.pipeline_data import least_squares_gain

        if self.rig is not None:
            assert self.photons is not None
            scene_seed = world_seed_base(self.world) + seed + STATIC_SCENE_OFFSET + scene
            mic, rec = _pipeline(self.rig, self.photons, size, scene_seed, self.world)
            srs, truth = [], None
            for _ in range(n):
                tp = mic.next_timepoint(dt_s=0.0)
                srs.append(rec.reconstruct(tp.raw).sr)
                truth = tp.ground_truth
            frames = np.stack(srs).astype(np.float32)
            truth = np.asarray(truth, np.float32)
        else:
            assert self.pool is not None
            ims = self.pool.images
            truth = np.stack(
                [im[(scene + 3 * s) % im.shape[0], im.shape[1] // 2, :size, :size] for s, im in enumerate(ims)]
            ).astype(np.float32)
            clean = truth.sum(axis=0)
            if self.degrader is None or self.photons is None:  # folder data: no noise model, the scene stays noise-free
                frames = np.stack([clean] * n)
            else:
                rng = np.random.default_rng([seed, 31, scene])
                k = np.float32(self.degrader.photon_scale(clean, self.photons))
                frames = np.stack([self.degrader.degrade(clean * k, rng) / k for _ in range(n)])
        inner = self.scored(frames), self.scored(np.broadcast_to(truth, (n, *truth.shape)))
        return frames, truth * np.float32(least_squares_gain(*inner))


def _pipeline(
    rig: RigConfig, photons: float, size: int, seed: int, world: str = "default"
) -> tuple[SyntheticMicroscope, Reconstructor]:
    """A synthetic microscope of ``world`` (raw frames of half the SR size) and a fresh reconstructor."""
    from imcsr_live.train.pipeline_data import pipeline_session

    return pipeline_session(rig, photons, size, seed, world=world)


def pipeline_test_seed(world: str, seed: int, image: int) -> int:
    """Microscope seed of pipeline test image ``image`` (disjoint from training; see :data:`WORLD_EVAL_SEED_BASE`)."""
    return world_seed_base(world) + seed + PIPELINE_IMAGE_OFFSET + image


def _render_pipeline_image(
    micro_seed: int, *, rig: RigConfig, frames: int, photons: float, size: int, world: str
) -> tuple[np.ndarray, np.ndarray]:
    """One normalised pipeline test image ``(frames, H, W)`` and its middle timepoint's targets ``(S, H, W)``."""
    from imcsr_live.train.pipeline_data import pipeline_sequence

    srs, gts = pipeline_sequence(rig, photons, size, micro_seed, frames, world=world)
    x, scale = normalize_input(srs)
    return x, (gts[frames // 2] / np.float32(scale)).astype(np.float32)


def iter_pipeline_images(
    rig: RigConfig,
    frames: int,
    photons: float,
    images: int,
    seed: int,
    size: int,
    *,
    world: str = "default",
    workers: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Test images through the live pipeline: a microscope of ``world`` per image (seed
    :func:`pipeline_test_seed`, disjoint from training), ``frames`` consecutive timepoints reconstructed by the real
    reconstructor; targets = the middle timepoint's per-structure SR ground truth. Inputs and targets are
    normalised as in :func:`iter_test_images`.

    ``workers`` > 1 renders the images in that many processes (spawned once per process and kept, so a script
    using it needs the ``if __name__ == "__main__":`` guard); they come back in order and are the same whatever the
    number of workers (each image is its own seeded microscope, rendered with one torch thread).
    """
    render = partial(_render_pipeline_image, rig=rig, frames=frames, photons=photons, size=size, world=world)
    seeds = [pipeline_test_seed(world, seed, i) for i in range(images)]
    if workers <= 1 or images <= 1:
        for micro_seed in seeds:
            with one_torch_thread():  # as in the workers: multi-threaded reductions round differently
                image = render(micro_seed)
            yield image
        return
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield from render_pool(workers).map(render, seeds)
    except BrokenProcessPool:
        drop_render_pool(workers)  # a later call starts a fresh pool
        raise


def load_eval_levels(
    data: str | Path,
    names: list[str],
    frames: int,
    *,
    photons: list[float],
    images: int,
    size: int,
    seed: int,
    rig: Path | None = None,
    pipeline: bool = False,
    workers: int = 1,
) -> list[EvalLevel]:
    """Test levels for ``data`` = ``"synthetic"``, a world of :func:`eval_worlds` or a folder (module docstring).

    ``pipeline`` (synthetic only) adds one level per photon count whose inputs come from the synthetic
    microscope + the real reconstructor (``rig``: the rig TOML, default ``hardware_configs/simulated.toml``); a
    world name gives only such levels, of that world. ``workers``: processes rendering the pipeline images.
    """
    worlds = eval_worlds()
    if str(data) in worlds:
        r, rig_path = _eval_rig(rig)
        return _pipeline_levels(r, rig_path, names, photons, size, str(data), workers)
    if str(data) == "synthetic":
        r, rig_path = _eval_rig(rig)
        degrader = SimReconApproximation(SimDegradeParams.from_rig(r))
        cells = max(images, 4)
        # Seeds disjoint from training (seed) and validation (seed + 1_000_003) cells.
        pool = synthetic_pool(
            names, cells=cells, size=size, frames=frames, seed=seed + 2_000_003, sr_pixel_um=r.optics.pixel_size_um / 2
        )
        levels = [EvalLevel(f"{p:g} photons", pool, p, degrader) for p in photons]
        if pipeline:
            levels += _pipeline_levels(r, rig_path, names, photons, size, "default", workers)
        return levels
    choices = f"'synthetic', a synthetic world ({', '.join(worlds)}) or a folder ROOT/<Structure>/*.tif"
    if str(data) == "default":
        raise InputDataError(f"--data default: the default world is --data synthetic (--pipeline for pipeline levels); "
                             f"pass {choices}")  # fmt: skip
    root = Path(data)
    if not root.is_dir():
        raise InputDataError(f"evaluation data {root} not found; pass {choices}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs and all(p.name not in names for p in subdirs) and any((p / names[0]).is_dir() for p in subdirs):
        folders = [p for p in subdirs if (p / names[0]).is_dir()]
    else:
        folders = [root]
    return [EvalLevel(f.name if f != root else "data", folder_pool(f, names, frames=frames), None) for f in folders]


def _eval_rig(rig: Path | None) -> tuple[RigConfig, Path]:
    """The rig of synthetic test data (default: the shipped simulated rig) and its path."""
    from imcsr_live.config import load_rig_config
    from imcsr_live.rigs import default_rig

    rig_path = rig or default_rig("simulated")
    return load_rig_config(rig_path), rig_path


def _pipeline_levels(
    rig: RigConfig, rig_path: Path, names: list[str], photons: list[float], size: int, world: str, workers: int
) -> list[EvalLevel]:
    """One pipeline level of ``world`` per photon count (the rig must image the models' structures)."""
    from imcsr_live.train.pipeline_data import EDGE_MARGIN

    option = "--pipeline" if world == "default" else f"--data {world}"
    if rig.structure_names != list(names):
        raise InputDataError(
            f"{rig_path}: the rig images {rig.structure_names} but the models separate {list(names)}; "
            f"use a rig TOML with the models' structures for {option}"
        )
    from imcsr_live.recon.preprocess import MIN_RAW_SIDE

    smallest = max(2 * MIN_RAW_SIDE, 2 * EDGE_MARGIN + 32)  # raw frames of half the size; a scored interior
    if size % 4 or size < smallest:
        raise InputDataError(f"--size {size} does not fit {option}; use a multiple of 4, >= {smallest}")
    check_world_available(world)
    return [
        EvalLevel(
            pipeline_level_name(world, p), None, p, rig=rig, size=size, margin=EDGE_MARGIN, world=world, workers=workers
        )
        for p in photons
    ]


def check_world_available(world: str) -> None:
    """A clear error when a world's generator module (``imcsr_live.synth.<world>``) is missing in this install."""
    if world == "default":
        return
    import importlib

    try:
        importlib.import_module(f"imcsr_live.synth.{world}")
    except ModuleNotFoundError as exc:
        if exc.name != f"imcsr_live.synth.{world}":
            raise
        raise InputDataError(f"synthetic world {world!r} is not available in this install ({exc})") from None


def load_eval_sets(
    data: str | Path,
    names: list[str],
    frames: int,
    *,
    photons: list[float],
    images: int,
    size: int,
    seed: int,
    rig: Path | None = None,
    workers: int = 1,
) -> list[EvalSet]:
    """Test sets (all images in memory) for ``data`` = ``"synthetic"``, a world or a folder."""
    levels = load_eval_levels(
        data, names, frames, photons=photons, images=images, size=size, seed=seed, rig=rig, workers=workers
    )
    sets = []
    for lv in levels:
        inputs, targets = map(np.stack, zip(*lv.images(frames, images, seed), strict=True))
        sets.append(EvalSet(lv.level, inputs, targets, margin=lv.margin))
    return sets


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: np.ndarray, out_channels: int, batch: int = 2) -> np.ndarray:
    """Separated images ``(N, C, H, W)`` for normalised inputs ``(N, T, H, W)`` (CPU or the model's device)."""
    device = next(model.parameters()).device
    model.eval()
    outs = []
    for i in range(0, inputs.shape[0], batch):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch])).to(device)
        outs.append(model(x)[:, :out_channels].float().cpu().numpy())
    return np.concatenate(outs)


def evaluate_model(
    model_path: str | Path,
    data: str | Path,
    report_dir: str | Path,
    *,
    photons: list[float] | None = None,
    images: int = 8,
    size: int = 256,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    pooling: str | None = None,
    pool_window: int | None = None,
    workers: int = 1,
) -> EvalReport:
    """Evaluate a checkpoint and write the report files into ``report_dir``.

    ``pooling`` / ``pool_window`` override the channel-attention pooling at inference (e.g. ``"local"`` with the
    training patch size for frames much larger than the patches). ``workers``: processes rendering pipeline images.
    """
    if pooling not in (None, "global", "local"):
        raise InputDataError(f"pooling must be 'global' or 'local' (got {pooling!r})")
    model, card = load_checkpoint(model_path)
    if pooling is not None:
        from imcsr_live.model.imcsr_net import set_pooling

        window = pool_window or int(card.get("training", {}).get("config", {}).get("data", {}).get("patch", 128))
        set_pooling(model, pooling, window)  # type: ignore[arg-type]
        card = {**card, "name": f"{card['name']} ({pooling} pooling, window {window})"}
    out_names = [s["name"] for s in card["structures"]]
    cfg_dict = card.get("training", {}).get("config")
    train_cfg = TrainConfig.model_validate(cfg_dict) if cfg_dict else None
    all_names = train_cfg.structure_names if train_cfg else out_names
    colors = (
        {s.name: s.color for s in train_cfg.structures}
        if train_cfg
        else {s["name"]: s["color"] for s in card["structures"]}
    )
    photons = photons or (list(train_cfg.data.photons) if train_cfg else [100.0, 300.0, 1000.0])
    frames = int(card["input_frames"])
    sets = load_eval_sets(
        data, all_names, frames, photons=photons, images=images, size=size, seed=seed, workers=workers
    )
    report = EvalReport()
    preds = []
    for k, s in enumerate(sets):
        pred = predict(model, s.inputs, len(out_names))
        preds.append(pred)
        for i in range(s.inputs.shape[0]):
            mid = s.inputs[i, frames // 2]
            for c, name in enumerate(out_names):
                gt = crop_margin(s.targets[i, all_names.index(name)], s.margin)
                if not gt.max() > gt.min():
                    continue  # an empty field has no meaningful metric
                for method, img in (("IMC-SR", pred[i, c]), ("baseline", mid)):
                    m = evaluate_image(crop_margin(img, s.margin), gt)
                    report.rows.append(
                        {"level": s.level, "image": i, "structure": name, "method": method, **m.as_dict()}
                    )
        if on_progress is not None:
            on_progress(k + 1, len(sets))
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    from imcsr_live.train.report import write_boxplots, write_montage, write_tables

    report.files += write_tables(report, out, card)
    report.files.append(write_boxplots(report, out / "boxplots.png"))
    s0 = sets[-1]
    report.files.append(
        write_montage(
            s0.inputs[0, frames // 2],
            s0.targets[0],
            preds[-1][0],
            all_names,
            out_names,
            colors,
            out / "montage.png",
            title=f"{card['name']} - {s0.level}",
        )
    )
    return report
