"""``imcsr-live evaluate``: paper metrics of a trained model per structure and SNR, against a trivial baseline.

Data: ``"synthetic"`` (fresh synthetic cells, never seen in training, at each photon level through the fast
Wiener-SIM approximation) or a folder of per-structure images ``D/<Structure>/*`` -- or ``D/<level>/<Structure>/*``
for several SNR levels. Each test image is the sum of one full-size image per structure (brightness ratio 1);
the ground truth is the structures. The baseline copies the input to every channel (what you see without
separation; the linear fit of the metrics makes any per-channel scale, e.g. mean brightness ratios, irrelevant).

Writes ``metrics.csv`` (one row per image, structure and method), ``metrics.md`` (medians and IQRs),
``boxplots.png`` (Tukey box plots, whiskers 1.5 IQR, as the paper's Fig. 2A / 3B) and ``montage.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from imcsr_live.config import RigConfig
from imcsr_live.errors import InputDataError
from imcsr_live.model.metrics import evaluate_image
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.checkpoint import load_checkpoint
from imcsr_live.train.config import TrainConfig
from imcsr_live.train.data import SampleSpec, SeparationSampler, StructurePool, folder_pool, synthetic_pool
from imcsr_live.train.degrade import SimDegradeParams, SimReconApproximation

METRICS = ("nrmse", "ssim", "pcc")


@dataclass
class EvalSet:
    """Test images of one SNR level: inputs ``(N, T, H, W)`` normalised, targets ``(N, S, H, W)`` (all structures)."""

    level: str
    inputs: np.ndarray
    targets: np.ndarray


@dataclass
class EvalReport:
    rows: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def median(self, level: str, structure: str, method: str, metric: str) -> float:
        vals = [
            float(r[metric])
            for r in self.rows
            if r["level"] == level and r["structure"] == structure and r["method"] == method
        ]
        return float(np.nanmedian(vals)) if vals else float("nan")


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
    Pipeline levels (``rig`` set): the real synthetic microscope (raw 9-frame SIM stacks with camera noise) and
    the real :class:`~imcsr_live.recon.reconstructor.Reconstructor`, i.e. the live pipeline's input.
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

    def scored(self, img: np.ndarray) -> np.ndarray:
        """The part of ``(..., H, W)`` that metrics and flicker are computed on (the border ``margin`` removed)."""
        m = self.margin
        return img[..., m:-m, m:-m] if m else img

    def images(self, frames: int, images: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Normalised inputs ``(frames, H, W)`` and targets ``(S, H, W)`` (see :func:`iter_test_images`)."""
        if self.rig is not None:
            assert self.photons is not None
            return iter_pipeline_images(self.rig, frames, self.photons, images, seed, self.size)
        assert self.pool is not None
        return iter_test_images(self.pool, frames, self.photons, images, seed, self.degrader)

    def static_scene(self, scene: int, n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """One still scene for the flicker test: ``n`` SR frames ``(n, size, size)`` with independent noise per
        frame, and its per-structure truth ``(S, size, size)`` scaled onto the frames (least squares of the
        summed truth against the frames, so both are in the same units)."""
        from imcsr_live.train.pipeline_data import least_squares_gain

        if self.rig is not None:
            assert self.photons is not None
            mic, rec = _pipeline(self.rig, self.photons, size, seed + 4_000_037 + scene)
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


def _pipeline(rig: RigConfig, photons: float, size: int, seed: int):
    """A synthetic microscope (raw frames of half the SR size) and a fresh reconstructor."""
    from imcsr_live.train.pipeline_data import pipeline_session

    return pipeline_session(rig, photons, size, seed)


def iter_pipeline_images(
    rig: RigConfig, frames: int, photons: float, images: int, seed: int, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Test images through the live pipeline: microscope ``seed + 3_000_003 + i`` (disjoint from training),
    ``frames`` consecutive timepoints reconstructed by the real reconstructor; targets = the middle timepoint's
    per-structure SR ground truth. Inputs and targets are normalised as in :func:`iter_test_images`.
    """
    from imcsr_live.train.pipeline_data import pipeline_sequence

    for i in range(images):
        srs, gts = pipeline_sequence(rig, photons, size, seed + 3_000_003 + i, frames)
        x, scale = normalize_input(srs)
        yield x, (gts[frames // 2] / np.float32(scale)).astype(np.float32)


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
) -> list[EvalLevel]:
    """Test levels for ``data`` = ``"synthetic"`` or a folder (see the module docstring).

    ``pipeline`` (synthetic only) adds one level per photon count whose inputs come from the synthetic
    microscope + the real reconstructor (``rig``: the rig TOML, default ``hardware_configs/simulated.toml``).
    """
    if str(data) == "synthetic":
        from imcsr_live.config import load_rig_config

        rig_path = rig or Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"
        r = load_rig_config(rig_path)
        degrader = SimReconApproximation(SimDegradeParams.from_rig(r))
        cells = max(images, 4)
        # Seeds disjoint from training (seed) and validation (seed + 1_000_003) cells.
        pool = synthetic_pool(
            names, cells=cells, size=size, frames=frames, seed=seed + 2_000_003, sr_pixel_um=r.optics.pixel_size_um / 2
        )
        levels = [EvalLevel(f"{p:g} photons", pool, p, degrader) for p in photons]
        if pipeline:
            if r.structure_names != list(names):
                raise InputDataError(
                    f"{rig_path}: the rig images {r.structure_names} but the models separate {list(names)}; "
                    "use a rig TOML with the models' structures for --pipeline"
                )
            from imcsr_live.train.pipeline_data import EDGE_MARGIN

            if size - 2 * EDGE_MARGIN < 32:
                raise InputDataError(f"--size {size} is too small for --pipeline; use >= {2 * EDGE_MARGIN + 32}")
            levels += [
                EvalLevel(f"pipeline {p:g} photons", None, p, rig=r, size=size, margin=EDGE_MARGIN) for p in photons
            ]
        return levels
    root = Path(data)
    if not root.is_dir():
        raise InputDataError(f"evaluation data {root} not found; pass 'synthetic' or a folder ROOT/<Structure>/*.tif")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs and all(p.name not in names for p in subdirs) and any((p / names[0]).is_dir() for p in subdirs):
        levels = [p for p in subdirs if (p / names[0]).is_dir()]
    else:
        levels = [root]
    return [EvalLevel(lv.name if lv != root else "data", folder_pool(lv, names, frames=frames), None) for lv in levels]


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
) -> list[EvalSet]:
    """Test sets (all images in memory) for ``data`` = ``"synthetic"`` or a folder."""
    levels = load_eval_levels(data, names, frames, photons=photons, images=images, size=size, seed=seed, rig=rig)
    return [EvalSet(lv.level, *map(np.stack, zip(*lv.images(frames, images, seed), strict=True))) for lv in levels]


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
) -> EvalReport:
    """Evaluate a checkpoint and write the report files into ``report_dir``.

    ``pooling`` / ``pool_window`` override the channel-attention pooling at inference (e.g. ``"local"`` with the
    training patch size for frames much larger than the patches).
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
    sets = load_eval_sets(data, all_names, frames, photons=photons, images=images, size=size, seed=seed)
    report = EvalReport()
    preds = []
    for k, s in enumerate(sets):
        pred = predict(model, s.inputs, len(out_names))
        preds.append(pred)
        for i in range(s.inputs.shape[0]):
            mid = s.inputs[i, frames // 2]
            for c, name in enumerate(out_names):
                gt = s.targets[i, all_names.index(name)]
                if not gt.max() > gt.min():
                    continue  # an empty field has no meaningful metric
                for method, img in (("IMC-SR", pred[i, c]), ("baseline", mid)):
                    m = evaluate_image(img, gt)
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
