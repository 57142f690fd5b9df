"""The training loop: Adam, lr halved on a validation-NRMSE plateau, bf16 autocast on GPU, checkpoints, resume,
CSV metrics log (+ TensorBoard when installed), and DistributedDataParallel when started by ``torchrun``.

Files in ``output_dir``: ``NAME.safetensors/.json`` (best validation NRMSE), ``NAME_last.safetensors/.json``
+ ``NAME_last.state.pt`` (latest, for resume), ``NAME.metrics.csv``. Once a run on synthetic data reaches its
last iteration, the best checkpoint's confidence thresholds are refitted on whole frames of the training world
(``[train] confidence_frames``, :mod:`imcsr_live.train.confidence_refit`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import distributed as dist

from imcsr_live.errors import CheckpointError, ConfigError, ImcsrError
from imcsr_live.fileio import atomic_path
from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint, read_card, save_checkpoint
from imcsr_live.model.imcsr_net import IMCSRNet
from imcsr_live.model.losses import imcsr_loss
from imcsr_live.model.metrics import evaluate_channels
from imcsr_live.rigs import default_rig
from imcsr_live.train.acquired_data import AcquiredSampler, acquired_samplers, dataset_record
from imcsr_live.train.config import TrainConfig
from imcsr_live.train.data import SampleSpec, SampleStream, SeparationSampler, folder_pool, synthetic_pool
from imcsr_live.train.degrade import SimDegradeParams, SimReconApproximation
from imcsr_live.train.loop_policies import IterationRate, MetricsLog, PlateauPolicy, TimeBudget
from imcsr_live.train.pipeline_data import PipelineSampler, cached_pipeline_pool

log = logging.getLogger("imcsr_live.train")


def _whole_frame_thresholds(stem: Path) -> bool:
    """Whether a checkpoint's confidence thresholds were fitted on whole frames (``train.confidence_refit``)."""
    reference = read_card(str(stem)).get("confidence_reference") or {}
    return str(reference.get("source", "")).startswith("whole frames")


Sampler = SeparationSampler | PipelineSampler | AcquiredSampler


@dataclass
class Progress:
    """What the progress callback receives after every iteration."""

    iteration: int
    total: int
    loss: float
    lr: float
    it_per_s: float
    val_nrmse: float | None = None


@dataclass
class _Setup:
    """What a run trains: the model (and its DDP wrapper), optimiser, data and the resumable loop state."""

    model: IMCSRNet
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    loader: torch.utils.data.DataLoader
    val: tuple[torch.Tensor, torch.Tensor]
    data_desc: str
    state: dict[str, Any]


@dataclass
class TrainResult:
    best_path: Path
    last_path: Path
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_metrics: dict[str, float] = field(default_factory=dict)


def _distributed() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; initialises the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def _device(cfg: TrainConfig) -> torch.device:
    want = cfg.train.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError('[train] device = "cuda" but no CUDA GPU is available; use "auto" or "cpu"')
    if want == "cpu" or (want == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return torch.device("cuda", local)


# Microscope seeds of the pipeline pools, offset from d.seed: disjoint from evaluate's (seed + 3_000_003 + i).
PIPELINE_TRAIN_SEED = 10_000_019
PIPELINE_VAL_SEED = 20_000_029


def _pipeline_samplers(
    cfg: TrainConfig, spec: SampleSpec, on_render: Callable[[str, int, int], None] | None
) -> tuple[PipelineSampler, PipelineSampler, str]:
    """Samplers over pools rendered through the synthetic microscope + real Reconstructor (cached on disk)."""
    from imcsr_live.config import load_rig_config

    d = cfg.data
    rig_path = cfg.resolve(d.rig) or default_rig("simulated")
    rig = load_rig_config(rig_path)
    if rig.structure_names != cfg.structure_names:
        raise ConfigError(
            f"{rig_path}: the rig images {rig.structure_names} but the config separates {cfg.structure_names}; "
            "set [data] rig to a rig TOML with the same structures in the same order"
        )
    text = rig_path.read_text(encoding="utf-8")
    kw: dict[str, Any] = {"photons": list(d.photons), "size": d.size, "frames": d.frames or max(cfg.model.in_frames, 1),
          "in_frames": cfg.model.in_frames,
          "brightness_range": tuple(d.brightness_range), "world": d.world,
          "mix": d.other_worlds()}  # fmt: skip
    pools = []
    for split, cells, seed in (("train", d.cells, PIPELINE_TRAIN_SEED), ("val", d.val_cells, PIPELINE_VAL_SEED)):

        def progress(done: int, total: int, split: str = split) -> None:
            if on_render is not None:
                on_render(split, done, total)

        pool, path, hit = cached_pipeline_pool(
            rig, text, cells=cells, seed=d.seed + seed, on_progress=progress, workers=d.render_workers, **kw
        )
        log.info("%s pipeline pool %s: %s", split, "loaded from cache" if hit else "rendered", path)
        pools.append(pool)
    mix = "".join(f", {share:.0%} of the cells from the {w} world" for w, share in d.other_worlds().items())
    desc = (
        f"{pools[0].describe()}; validation {d.val_cells} other cells per photon level; input = real "
        f"reconstructions of raw SIM stacks at {list(d.photons)} photons (per-structure brightness "
        f"{list(d.brightness_range)} per cell), truth = the world's per-structure SR truth (rig {rig_path.name}, "
        f"world {d.world}{mix})"
    )
    return PipelineSampler(pools[0], spec), PipelineSampler(pools[1], spec), desc


def _render_log(split: str, done: int, total: int) -> None:
    if done == total or done % max(total // 10, 1) == 0:
        log.info("rendering %s pipeline pool: %d / %d sequences", split, done, total)


def build_samplers(
    cfg: TrainConfig, on_render: Callable[[str, int, int], None] | None = _render_log
) -> tuple[Sampler, Sampler, str]:
    """Training and validation samplers for a config, plus a description of the data for the model card.

    ``on_render(split, done, total)`` reports the one-off rendering of pipeline pools.
    """
    d = cfg.data
    names = cfg.structure_names
    frames = cfg.model.in_frames
    spec = SampleSpec(
        patch=d.patch,
        in_frames=frames,
        target=cfg.target_indices,
        brightness_range=d.brightness_range,
        photons=list(d.photons),
    )
    if d.kind == "pipeline":
        return _pipeline_samplers(cfg, spec, on_render)
    if d.kind == "acquired":
        root = cfg.resolve(d.root)
        assert root is not None
        return acquired_samplers(root, names, spec, d.val_fraction)
    if d.kind == "synthetic":
        from imcsr_live.config import load_rig_config

        rig_path = cfg.resolve(d.rig) or default_rig("simulated")
        rig = load_rig_config(rig_path)
        degrader = SimReconApproximation(SimDegradeParams.from_rig(rig))
        kw: dict[str, Any] = {
            "size": d.size,
            "frames": d.frames or max(frames, 1),
            "interval_s": d.interval_s,
            "sr_pixel_um": rig.optics.pixel_size_um / 2,
        }
        train_pool = synthetic_pool(names, cells=d.cells, seed=d.seed, **kw)
        val_pool = synthetic_pool(names, cells=d.val_cells, seed=d.seed + 1_000_003, **kw)  # other cells
        desc = (
            f"{train_pool.describe()}; validation {d.val_cells} other cells; input = sum of per-structure SR truth "
            f"(brightness ratios {list(d.brightness_range)}) through the fast Wiener-SIM approximation at "
            f"{list(d.photons)} photons (rig {rig_path.name})"
        )
        return SeparationSampler(train_pool, spec, degrader), SeparationSampler(val_pool, spec, degrader), desc
    root = cfg.resolve(d.path)
    assert root is not None
    train_pool = folder_pool(root, names, frames=frames, min_size=d.patch)
    val_root = cfg.resolve(d.val_path)
    if val_root is not None:
        val_pool = folder_pool(val_root, names, frames=frames, min_size=d.patch)
    else:
        # Hold out the last image of every structure that has more than one.
        single = [n for n, im in zip(train_pool.names, train_pool.images, strict=True) if im.shape[0] < 2]
        if single:
            log.warning(
                "validation reuses the only training image of %s; set [data] val_path for a clean split", single
            )
        held = [im[-1:] if im.shape[0] > 1 else im for im in train_pool.images]
        train_pool.images = [im[:-1] if im.shape[0] > 1 else im for im in train_pool.images]
        val_pool = type(train_pool)(train_pool.names, held, f"held-out images of {root}")
    desc = f"{train_pool.describe()}; validation {val_pool.describe()}; input = sum of per-structure images"
    return SeparationSampler(train_pool, spec), SeparationSampler(val_pool, spec), desc


class Trainer:
    """One training run of a :class:`TrainConfig`."""

    def __init__(self, cfg: TrainConfig, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.cfg = cfg
        self.on_progress = on_progress
        self.rank, self.world = _distributed()
        self.device = _device(cfg)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        out = cfg.resolve(cfg.output_dir)
        assert out is not None
        self.out_dir = out
        self.best_stem = out / cfg.name
        self.last_stem = out / f"{cfg.name}_last"
        self.state_path = out / f"{cfg.name}_last.state.pt"
        self.csv_path = out / f"{cfg.name}.metrics.csv"
        self.dataset: dict[str, Any] | None = None  # an acquired dataset's record for the model card
        self._separation_data: dict[str, Any] | None = None  # train_only = "uncertainty": the init's [data]
        self._best_saved = False  # this run saved a best checkpoint: its confidence thresholds are refitted

    # --------------------------------------------------------------------------------------------- helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _autocast(self):
        if self.device.type == "cuda" and self.cfg.train.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _structures(self) -> list[dict[str, str]]:
        return [{"name": s.name, "color": s.color} for s in self.cfg.output_structures]

    @torch.no_grad()
    def validate(self, net: torch.nn.Module, val: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """Validation loss and the paper metrics (mean over samples and channels)."""
        net.eval()
        xs, ys = val
        losses, rows = [], []
        c = ys.shape[1]
        bs = max(self.cfg.train.batch_size, 4)
        for i in range(0, xs.shape[0], bs):
            x = xs[i : i + bs].to(self.device)
            y = ys[i : i + bs].to(self.device)
            with self._autocast():
                out = net(x)
            loss, _ = imcsr_loss(
                out.float(),
                y,
                x,
                ssim_weight=self.cfg.loss.ssim_weight,
                summation_alpha=self.cfg.summation_alpha,
                nll_weight=self.cfg.loss.nll_weight,
            )
            losses.append(float(loss) * x.shape[0])
            pred = out[:, :c].float().cpu().numpy()
            for p, g in zip(pred, y.cpu().numpy(), strict=True):
                for m, gt in zip(evaluate_channels(p, g), g, strict=True):
                    if gt.max() > gt.min():  # an empty ground-truth patch has no meaningful metric
                        rows.append((m.nrmse, m.ssim, m.pcc))
        net.train()
        arr = np.array(rows, dtype=np.float64) if rows else np.full((1, 3), np.nan)
        return {
            "val_loss": sum(losses) / xs.shape[0],
            "val_nrmse": float(np.nanmean(arr[:, 0])),
            "val_ssim": float(np.nanmean(arr[:, 1])),
            "val_pcc": float(np.nanmean(arr[:, 2])),
        }

    @torch.no_grad()
    def calibrate(self, net: torch.nn.Module, val: tuple[torch.Tensor, torch.Tensor]) -> list[dict[str, float]] | None:
        """Per-channel uncertainty calibration on the validation set (uncertainty head only)."""
        return self.calibrate_with_reference(net, val)[0]

    @torch.no_grad()
    def calibrate_with_reference(
        self, net: torch.nn.Module, val: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[list[dict[str, float]] | None, dict[str, Any]]:
        """Uncertainty calibration (head only) and the per-frame confidence reference, from one pass over the
        validation set: per image its sum residual and, with a head, its calibrated predicted relative error per
        channel (:mod:`imcsr_live.model.confidence`); the reference is their 95th percentile times 1.5."""
        from imcsr_live.model.calibration import fit_calibration
        from imcsr_live.model.confidence import fit_reference, frame_values

        net.eval()
        xs, ys = val
        with self._autocast():
            out = net(xs.to(self.device)).float().cpu()
        net.train()
        c = ys.shape[1]
        mids = xs[:, xs.shape[1] // 2].float().cpu().numpy()
        chans = out[:, :c].numpy()
        if not self.cfg.model.uncertainty:
            residuals = [frame_values(ch, None, m)[0] for ch, m in zip(chans, mids, strict=True)]
            return None, fit_reference(residuals).to_dict()
        std = torch.exp(0.5 * out[:, c:])
        err = (out[:, :c] - ys).abs()
        cals = [fit_calibration(std[:, i].numpy(), err[:, i].numpy()) for i in range(c)]
        cal_std = np.stack([k.apply(std[:, i].numpy()) for i, k in enumerate(cals)], axis=1)
        values = [frame_values(ch, sd, m) for ch, sd, m in zip(chans, cal_std, mids, strict=True)]
        reference = fit_reference([v[0] for v in values], np.array([v[1] for v in values]))
        return [{"scale": k.scale, "offset": k.offset} for k in cals], reference.to_dict()

    def ssim_weight(self, iteration: int) -> float:
        """SSIM weight at an iteration (0-based): linear warm-up, then ``[loss] ssim_weight``.

        Why a warm-up: with clean synthetic targets the background is exactly 0, and SSIM's luminance term
        rewards an exactly-0 background so strongly that, from the start of training, the fastest way down is
        to push every sigmoid logit far negative, which saturates the output before any structure is learned.
        """
        w, n = self.cfg.loss.ssim_weight, self.cfg.loss.ssim_warmup_iterations
        return w if n == 0 else w * min(1.0, iteration / n)

    # ------------------------------------------------------------------------------------------------ run
    def run(self, resume: bool = False, max_minutes: float | None = None) -> TrainResult:
        """Train to ``[train] iterations``; with ``max_minutes``, stop cleanly once that much wall time has passed
        (checked every ``log_every`` iterations, the same decision on every rank) after saving ``NAME_last`` and
        its optimiser state, so that ``resume=True`` continues (a job time limit, a short GPU lease)."""
        t = self.cfg.train
        budget = TimeBudget(max_minutes, t.log_every, broadcast=self._broadcast)
        setup = self._setup(resume)
        plateau = PlateauPolicy(
            t.lr_factor, t.plateau_iterations, t.min_lr, setup.state["best_nrmse"], setup.state["last_improved"]
        )
        metrics = self._metrics_log(resume)
        it = int(setup.state["iteration"])
        speed = IterationRate(it)
        rate, running = 0.0, 0.0
        val_metrics: dict[str, float] = {}
        setup.net.train()
        batches = iter(setup.loader)
        try:
            while it < t.iterations:
                loss = self._step(setup.net, setup.opt, next(batches), it)
                it += 1
                running = loss if it == 1 or running == 0 else 0.9 * running + 0.1 * loss
                lr = setup.opt.param_groups[0]["lr"]
                last = it == t.iterations
                row: dict[str, float] | None = None
                if it % t.log_every == 0 or it % t.val_every == 0 or last:
                    rate = speed.lap(it)
                    row = {"iteration": it, "loss": running, "lr": lr, "it_per_s": rate}
                if it % t.val_every == 0 or last:
                    val_metrics = self._validation_step(setup, plateau, it)
                    assert row is not None
                    row.update(val_metrics)
                if row is not None:
                    metrics.write(row)
                out_of_time = budget.exhausted(it)
                if (it % t.checkpoint_every == 0 or last or out_of_time) and self.is_main:
                    self._save_last(setup, plateau, it, val_metrics)
                if self.on_progress is not None and self.is_main:
                    self.on_progress(Progress(it, t.iterations, running, lr, rate, val_metrics.get("val_nrmse")))
                if out_of_time:
                    log.info(
                        "stopped after %.1f min at iteration %d of %d (--max-minutes)", max_minutes, it, t.iterations
                    )
                    break
        finally:
            metrics.close()
        self._finish(setup, it, val_metrics, completed=it >= t.iterations)
        return TrainResult(self.best_stem, self.last_stem, it, metrics.history, val_metrics)

    def _setup(self, resume: bool) -> _Setup:
        """Data, model (DDP-wrapped on several ranks), optimiser and the start state (resumed or fine-tuned)."""
        cfg, t = self.cfg, self.cfg.train
        torch.manual_seed(t.seed + self.rank)
        train_sampler, val_sampler, data_desc = build_samplers(cfg)
        if cfg.data.kind == "acquired":
            self.dataset = dataset_record(cfg.resolve(cfg.data.root))  # type: ignore[arg-type]
        val = val_sampler.fixed_set(cfg.data.val_samples, seed=cfg.data.seed + 7)
        model = IMCSRNet(cfg.net_config()).to(self.device)
        if self.world > 1:
            # Same initial weights on every rank (DDP also broadcasts them, but be explicit for clarity).
            torch.manual_seed(t.seed)
            model = IMCSRNet(cfg.net_config()).to(self.device)
            ddp_kw: dict[str, Any] = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
            net: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model, **ddp_kw)
            torch.manual_seed(t.seed + self.rank)
        else:
            net = model
        if t.train_only == "uncertainty":
            # Only the log-variance head learns: the separation (every other weight) stays the init model's.
            for name, param in model.named_parameters():
                param.requires_grad_(name.startswith("logvar."))
        trainable = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
        context = [p for name, p in trainable if f".{name}".count(".context.")]  # DDP prefixes "module."
        groups: list[dict[str, Any]] = [{"params": [p for name, p in trainable if not f".{name}".count(".context.")]}]
        if context:
            groups.append({"params": context, "lr": t.lr * t.context_lr_scale})
        opt = torch.optim.Adam(groups, lr=t.lr)
        state: dict[str, Any] = {"iteration": 0, "best_nrmse": math.inf, "last_improved": 0, "epoch": 0}
        if resume:
            state = self._resume(model, opt)
        elif t.init is not None:
            self._init_from(model)
        stream = SampleStream(train_sampler, seed=t.seed, rank=self.rank)
        stream.epoch = int(state["epoch"])
        loader = torch.utils.data.DataLoader(
            stream,
            batch_size=t.batch_size,
            num_workers=cfg.data.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.data.workers > 0,
        )
        return _Setup(model, net, opt, loader, val, data_desc, state)

    def _metrics_log(self, resume: bool) -> MetricsLog:
        """The metrics CSV (+ TensorBoard) on rank 0; a log that records nothing on the other ranks."""
        if not self.is_main:
            return MetricsLog(None)
        tensorboard = self._tensorboard()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return MetricsLog(self.csv_path, append=resume, tensorboard=tensorboard)

    def _step(
        self, net: torch.nn.Module, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor], it: int
    ) -> float:
        """One optimiser step on a batch at iteration ``it`` (0-based); returns its loss."""
        x, y = batch
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        with self._autocast():
            out = net(x)
        loss, _ = imcsr_loss(
            out.float(),
            y,
            x,
            ssim_weight=self.ssim_weight(it),
            summation_alpha=self.cfg.summation_alpha,
            nll_weight=self.cfg.loss.nll_weight,
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _validation_step(self, setup: _Setup, plateau: PlateauPolicy, it: int) -> dict[str, float]:
        """Validate on rank 0, share its score, save a new best checkpoint or apply the plateau policy."""
        val_metrics = self.validate(setup.net, setup.val) if self.is_main else {}
        # A frozen separation has a constant NRMSE: a head trained alone is judged by its likelihood (val loss).
        key = "val_loss" if self.cfg.train.train_only == "uncertainty" else "val_nrmse"
        score = self._broadcast(val_metrics.get(key, 0.0))
        if plateau.observe(score, it, setup.opt.param_groups) and self.is_main:
            self._save(self.best_stem, setup.model, it, val_metrics, setup.data_desc, setup.val)
        return val_metrics

    def _save_last(self, setup: _Setup, plateau: PlateauPolicy, it: int, val_metrics: dict[str, float]) -> None:
        """``NAME_last`` and the optimiser + loop state that ``resume=True`` continues from."""
        setup.state["iteration"] = it
        setup.state.update(plateau.state())
        self._save(self.last_stem, setup.model, it, val_metrics, setup.data_desc, None)
        self._save_state(setup.opt, setup.state)

    def _finish(self, setup: _Setup, it: int, val_metrics: dict[str, float], *, completed: bool) -> None:
        """Keep the model, make sure a best checkpoint exists, leave the process group together and, once the run
        has reached ``[train] iterations`` (not a ``--max-minutes`` slice: a GPU lease's minutes are too dear), refit
        the best checkpoint's confidence thresholds on whole frames unless that is done already."""
        self.model = setup.model
        if not checkpoint_paths(self.best_stem)[0].exists() and self.is_main:
            self._save(self.best_stem, setup.model, it, val_metrics, setup.data_desc, setup.val)
        if self.world > 1:
            # every rank leaves together and tears the group down: a rank that exits while gloo threads of
            # the group are still alive aborts ("terminate called without an active exception")
            dist.barrier()
            dist.destroy_process_group()
        if self.is_main and completed and (self._best_saved or not _whole_frame_thresholds(self.best_stem)):
            self._refit_confidence()

    def _refit_confidence(self) -> None:
        """Refit the best checkpoint's confidence thresholds on whole frames of the world(s) its separation was
        trained on (validation patches are not the frames the live view judges). A failure keeps the thresholds
        of the validation patches and the trained model: it is logged, never raised."""
        from imcsr_live.model.card import separation_worlds
        from imcsr_live.train.confidence_refit import refit_card

        t = self.cfg.train
        data = self._separation_data if self._separation_data is not None else self.cfg.data.model_dump(mode="json")
        worlds = separation_worlds(data)
        if t.confidence_frames == 0 or not worlds:
            return
        log.info("fitting the confidence thresholds on %d whole frames per photon level and size (%s world, %s px)",
                 t.confidence_frames, " + ".join(worlds), ", ".join(map(str, t.confidence_sizes)))  # fmt: skip
        try:
            _old, reference = refit_card(self.best_stem, worlds, t.confidence_frames, t.confidence_sizes)
        except (ImcsrError, OSError, ValueError) as exc:
            log.warning("confidence thresholds kept from the validation patches: refitting failed (%s)", exc)
            return
        log.info("confidence thresholds fitted on %s", reference.source)

    # ------------------------------------------------------------------------------------------ persistence
    def _broadcast(self, value: float) -> float:
        if self.world <= 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t.item())

    def _save(
        self,
        stem: Path,
        model: IMCSRNet,
        it: int,
        metrics: dict[str, float],
        data_desc: str,
        val: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        training = {
            "iterations": it,
            "data": data_desc,
            "config": self.cfg.model_dump(mode="json"),
            **({"dataset": self.dataset} if self.dataset is not None else {}),
            **({"separation_data": self._separation_data} if self._separation_data is not None else {}),
            "world_size": self.world,
            "device": str(self.device),
        }
        calibration, reference = self.calibrate_with_reference(model, val) if val is not None else (None, None)
        self._best_saved = self._best_saved or stem == self.best_stem
        save_checkpoint(
            stem,
            model,
            structures=self._structures(),
            variant=self.cfg.variant,
            training=training,
            metrics={"validation": metrics},
            calibration=calibration,
            confidence_reference=reference,
        )

    def _save_state(self, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        with atomic_path(self.state_path) as tmp:
            torch.save({"optimizer": opt.state_dict(), "state": state}, tmp)

    def _init_from(self, model: IMCSRNet) -> None:
        """Fine-tuning: start from the weights of ``[train] init`` (same structures and architecture).

        Two parts may differ. The uncertainty head: a checkpoint without it starts a model with one (the head starts
        untrained: the way to add it to a shipped model), and a checkpoint with it starts a model without one (the
        head is left out). The context branch may be added (it starts zero-initialised, so the model starts as the
        checkpoint), never dropped (that would change what the checkpoint separates).
        """
        stem = self.cfg.resolve(self.cfg.train.init)
        names = [s["name"] for s in self._structures()]
        want = self.cfg.net_config()
        loaded, _ = load_checkpoint(str(stem), expect_structures=names)
        have = loaded.cfg
        addable = ("uncertainty", "context_width", "context_dilations")
        same_core = want.model_copy(update={k: getattr(have, k) for k in addable}) == have
        kept_context = have.context_width == 0 or (have.context_width, have.context_dilations) == (
            want.context_width,
            want.context_dilations,
        )
        if not (same_core and kept_context):
            # raises, naming the difference
            load_checkpoint(str(stem), expect_structures=names, expect_architecture=want)
        if self.cfg.train.train_only == "uncertainty":
            # The separation is the init model's: its card says what data trained it (cross_world reads this).
            init_training = read_card(str(stem)).get("training", {})
            self._separation_data = init_training.get("separation_data") or init_training.get("config", {}).get(
                "data", {}
            )
        missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        changes = []
        if have.uncertainty != want.uncertainty:
            changes.append("the uncertainty head " + ("starts untrained" if want.uncertainty else "is left out"))
        if have.context_width != want.context_width:
            changes.append("the context branch starts at zero")
        if any(not k.startswith(("logvar.", "context.")) for k in [*missing, *unexpected]):
            raise CheckpointError(f"{stem}: weights do not fit ({missing=}, {unexpected=})")
        log.info("initialised from %s (fine-tuning%s)", stem, "".join(f"; {c}" for c in changes))

    def _resume(self, model: IMCSRNet, opt: torch.optim.Optimizer) -> dict[str, Any]:
        if not self.state_path.is_file():
            raise CheckpointError(f"cannot resume: {self.state_path} not found (train without --resume first)")
        loaded, _ = load_checkpoint(
            self.last_stem,
            expect_structures=[s["name"] for s in self._structures()],
            expect_architecture=self.cfg.net_config(),
        )
        model.load_state_dict(loaded.state_dict())
        saved = torch.load(self.state_path, map_location=self.device, weights_only=True)
        opt.load_state_dict(saved["optimizer"])
        state = dict(saved["state"])
        state["epoch"] = int(state.get("epoch", 0)) + 1
        log.info("resumed from %s at iteration %d", self.last_stem, state["iteration"])
        return state

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))
