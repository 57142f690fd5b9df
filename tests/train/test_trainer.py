from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.errors import CheckpointError, ConfigError
from imcsr_live.model.checkpoint import load_checkpoint, read_card
from imcsr_live.model.imcsr_net import IMCSRNetConfig
from imcsr_live.train.config import load_train_config
from imcsr_live.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "hardware_configs" / "train_tiny.toml"


def tiny_config(tmp_path: Path, extra: str = "", **train: object) -> Path:
    """The shipped tiny config, writing into tmp_path, with [train] overrides."""
    text = TINY.read_text().replace('output_dir = "../runs/tiny"', f'output_dir = "{tmp_path / "run"}"')
    for key, value in train.items():
        text = text.replace("[train]\n", f"[train]\n{key} = {value}\n", 1)
        # drop the shipped value of the same key (the first one wins in our text otherwise duplicates error)
        lines = text.splitlines()
        seen = False
        out = []
        for line in lines:
            if line.split("=")[0].strip() == key:
                if seen:
                    continue
                seen = True
            out.append(line)
        text = "\n".join(out) + "\n"
    path = tmp_path / "train.toml"
    path.write_text(text + extra)
    return path


def test_tiny_training_reduces_validation_loss_and_writes_checkpoints(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = load_train_config(tiny_config(tmp_path))
    seen = []
    result = Trainer(cfg, on_progress=seen.append).run()
    vals = [h["val_loss"] for h in result.history if "val_loss" in h]
    assert len(vals) == 3
    assert vals[-1] < 0.85 * vals[0], vals
    assert [p.iteration for p in seen] == list(range(1, 61)) and seen[-1].lr == pytest.approx(2e-3)
    # Checkpoint = safetensors + model card that rebuilds the network.
    model, card = load_checkpoint(result.best_path, expect_structures=["Microtubules", "ER", "Lysosomes"])
    assert card["architecture"]["width"] == 8 and card["input_frames"] == 1 and card["variant"] == "all"
    assert card["structures"][1] == {"name": "ER", "color": "#FF00FF"}
    assert card["normalization"]["percentile"] == 99.9 and "synthetic" in card["training"]["data"]
    assert card["metrics"]["validation"]["val_nrmse"] > 0
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    with open(tmp_path / "run" / "imcsr_tiny.metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [10, 20, 30, 40, 50, 60]
    assert rows[1]["val_nrmse"] and not rows[0]["val_nrmse"]

    # Resume continues from the last checkpoint's iteration.
    cfg2 = load_train_config(tiny_config(tmp_path, iterations=80))
    resumed = Trainer(cfg2).run(resume=True)
    assert resumed.iterations == 80 and [h["iteration"] for h in resumed.history] == [70, 80]
    assert read_card(resumed.last_path)["training"]["iterations"] == 80


def test_max_minutes_stops_with_a_resumable_checkpoint(tmp_path: Path) -> None:
    """A time limit (job limit, short GPU lease) ends the run at the next log step with NAME_last + optimiser
    state written, and --resume goes on from there to the configured end."""
    torch.set_num_threads(1)
    cfg = load_train_config(tiny_config(tmp_path))
    cfg.data.val_samples = 2
    stopped = Trainer(cfg).run(max_minutes=0.0)
    assert stopped.iterations == 10  # the first log_every boundary
    assert read_card(stopped.last_path)["training"]["iterations"] == 10
    assert (tmp_path / "run" / "imcsr_tiny_last.state.pt").is_file()
    assert (tmp_path / "run" / "imcsr_tiny.safetensors").is_file()  # a best checkpoint even before validation
    # a slice keeps the validation thresholds: the whole-frame refit waits for the run's end
    assert read_card(stopped.best_path)["confidence_reference"]["source"].startswith("validation")
    again = load_train_config(tiny_config(tmp_path))
    again.data.val_samples = 2
    resumed = Trainer(again).run(resume=True, max_minutes=60.0)  # a limit not reached changes nothing
    assert resumed.iterations == 60 and resumed.history[0]["iteration"] == 20
    assert read_card(resumed.last_path)["training"]["iterations"] == 60
    assert read_card(resumed.best_path)["confidence_reference"]["source"].startswith("whole frames of the default")


def test_lr_halves_on_plateau(tmp_path: Path) -> None:
    cfg = load_train_config(
        tiny_config(tmp_path, iterations=40, val_every=5, plateau_iterations=5, lr=1e-8, min_lr=0.0)
    )
    cfg.data.val_samples = 2
    result = Trainer(cfg).run()
    lrs = [h["lr"] for h in result.history]
    assert (
        lrs[0] == 1e-8 and min(lrs) <= 0.25e-8 and lrs == sorted(lrs, reverse=True)
    )  # a lr this small cannot improve validation, so it must have been halved


def test_checkpoint_mismatches_are_clear_errors(tmp_path: Path) -> None:
    cfg = load_train_config(tiny_config(tmp_path, iterations=2, val_every=2))
    cfg.data.val_samples = 2
    best = Trainer(cfg).run().best_path
    card = best.with_name(best.name + ".json")
    with pytest.raises(CheckpointError, match=r"imcsr_tiny\.json: the model separates .* asks for \['ER'\]"):
        load_checkpoint(best, expect_structures=["ER"])
    with pytest.raises(CheckpointError, match=r"imcsr_tiny\.json: architecture .*width: checkpoint 8 vs config 64"):
        load_checkpoint(best, expect_architecture=IMCSRNetConfig(in_frames=1))
    weights = best.with_name(best.name + ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-8] + b"00000000")
    with pytest.raises(CheckpointError, match=r"imcsr_tiny\.safetensors: SHA-256 differs"):
        load_checkpoint(best)
    data = json.loads(card.read_text())
    data["architecture"]["width"] = 16
    card.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"imcsr_tiny\.safetensors: weights do not fit"):
        load_checkpoint(best, verify_hash=False)
    # Resuming with a config whose architecture differs from the saved run names the checkpoint.
    changed = load_train_config(tiny_config(tmp_path, iterations=4))
    changed.model.width = 12
    with pytest.raises(CheckpointError, match=r"imcsr_tiny_last\.json: architecture"):
        Trainer(changed).run(resume=True)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tiny_config(tmp_path, extra="\n[loss]\nssim_wieght = 0.2\n")
    with pytest.raises(ConfigError, match=r"loss\.ssim_wieght: unknown key"):
        load_train_config(bad)
    path = tmp_path / "single.toml"
    path.write_text('variant = "single"\nsingle_structure = "Golgi"\n')
    with pytest.raises(ConfigError, match="single_structure = one of"):
        load_train_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "missing.toml")


DDP_SCRIPT = """
import sys, torch
from imcsr_live.train.config import load_train_config
from imcsr_live.train.trainer import Trainer
torch.set_num_threads(1)
cfg = load_train_config(sys.argv[1])
trainer = Trainer(cfg)
trainer.run()
total = float(sum(p.detach().double().sum() for p in trainer.model.parameters()))
with open(f"{sys.argv[1]}.rank{trainer.rank}", "w") as f:  # files: stdout lines of two ranks interleave
    f.write(f"RANK {trainer.rank} WORLD {trainer.world} SUM {total!r}")
"""


def test_distributed_training_with_two_cpu_processes(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, iterations=6, val_every=3, checkpoint_every=3, log_every=3)
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [Path(f"{cfg}.rank{r}").read_text() for r in (0, 1)]
    assert [line.split()[1] for line in lines] == ["0", "1"] and all("WORLD 2" in line for line in lines)
    # DDP keeps the replicas identical: both ranks end with the same weights (each saw different samples).
    assert lines[0].split()[-1] == lines[1].split()[-1]
    card = read_card(tmp_path / "run" / "imcsr_tiny_last")
    assert card["training"]["world_size"] == 2 and card["training"]["iterations"] == 6


def test_single_tc_uncertainty_variant_trains_and_calibrates(tmp_path: Path) -> None:
    path = tiny_config(tmp_path, iterations=4, val_every=4, checkpoint_every=4)
    text = path.read_text().replace('variant = "all"', 'variant = "single"\nsingle_structure = "ER"')
    text = text.replace("in_frames = 1", "in_frames = 3\nuncertainty = true")
    path.write_text(text)
    cfg = load_train_config(path)
    cfg.data.val_samples = 2
    result = Trainer(cfg).run()
    model, card = load_checkpoint(result.best_path, expect_structures=["ER"])
    assert card["variant"] == "single" and card["input_frames"] == 3
    assert model.cfg.uncertainty and model(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    (cal,) = card["uncertainty_calibration"]
    assert np.isfinite(cal["scale"]) and np.isfinite(cal["offset"])
    assert np.isfinite(result.history[-1]["val_loss"])


@pytest.mark.parametrize("path", sorted((REPO / "hardware_configs").glob("train_*.toml")), ids=lambda p: p.name)
def test_shipped_training_configs_are_valid(path: Path) -> None:
    cfg = load_train_config(path)
    net = cfg.net_config()
    assert net.out_channels == len(cfg.output_structures) == (1 if cfg.variant == "single" else 3)
    if path.name == "train_paper.toml":  # the paper's setup (docs/method.md#training)
        assert (net.width, net.groups, net.blocks, net.in_frames) == (64, 5, 10, 3)
        assert (cfg.train.batch_size, cfg.train.lr, cfg.data.patch) == (3, 1e-4, 128)
        assert (cfg.loss.ssim_weight, cfg.loss.summation_alpha, cfg.train.plateau_iterations) == (0.1, 0.02, 10_000)


def test_train_only_uncertainty_keeps_the_separation_bit_identical_and_trains_the_head(tmp_path: Path) -> None:
    """Adding a calibrated head to a shipped model without touching what it separates: every weight but the
    log-variance head equals the init model's, the separated channels are the same numbers, and the head
    learns (a likelihood no untrained head reaches; the best checkpoint is chosen by it, not by the frozen NRMSE)."""
    torch.set_num_threads(1)
    for sub in ("base", "head"):
        (tmp_path / sub).mkdir()
    base_cfg = load_train_config(tiny_config(tmp_path / "base", iterations=20, val_every=20, checkpoint_every=20))
    base_cfg.data.val_samples = 4
    base = Trainer(base_cfg).run()
    base_model, _ = load_checkpoint(base.best_path)

    path = tiny_config(
        tmp_path / "head", iterations=40, val_every=10, checkpoint_every=10, lr=3e-3,
        init=f'"{base.best_path}"', train_only='"uncertainty"',
    )  # fmt: skip
    path.write_text(path.read_text().replace("reduction = 4", "reduction = 4\nuncertainty = true"))
    cfg = load_train_config(path)
    cfg.data.val_samples = 4
    result = Trainer(cfg).run()
    model, card = load_checkpoint(result.best_path)
    trained = model.state_dict()
    for name, tensor in base_model.state_dict().items():
        assert torch.equal(trained[name], tensor), name
    assert not torch.equal(trained["logvar.weight"], torch.zeros_like(trained["logvar.weight"]))
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x)[:, :3], base_model(x))
    losses = [h["val_loss"] for h in result.history if "val_loss" in h]
    # With log-variance 0 (an untrained head) the Gaussian NLL alone is >= 0.5 log(2 pi) = 0.92 per pixel; the
    # trained head predicts the frozen separation's small errors, so its likelihood is far better than that.
    assert min(losses) < 0.0, losses
    assert card["metrics"]["validation"]["val_loss"] == pytest.approx(min(losses))
    assert len(card["uncertainty_calibration"]) == 3
    # the card says what trained the separation: the init's data, not the head's
    assert card["training"]["separation_data"] == base_cfg.model_dump(mode="json")["data"]


def test_train_only_uncertainty_needs_a_head_and_an_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train_only = 'uncertainty' needs"):
        load_train_config(tiny_config(tmp_path, train_only='"uncertainty"'))


def test_init_adds_an_uncertainty_head_to_a_checkpoint_without_one(tmp_path: Path) -> None:
    """Fine-tuning a shipped model (no head) into one with the head: the body starts from the checkpoint, the
    log-variance head from scratch; any other difference is still refused."""
    torch.set_num_threads(1)
    for sub in ("base", "head", "wide"):
        (tmp_path / sub).mkdir()
    base_cfg = load_train_config(tiny_config(tmp_path / "base", iterations=4, val_every=4, checkpoint_every=4))
    base_cfg.data.val_samples = 2
    base = Trainer(base_cfg).run()
    base_model, _ = load_checkpoint(base.best_path)

    path = tiny_config(tmp_path / "head", iterations=1, val_every=1, checkpoint_every=1, init=f'"{base.best_path}"')
    path.write_text(path.read_text().replace("reduction = 4", "reduction = 4\nuncertainty = true"))
    cfg = load_train_config(path)
    cfg.data.val_samples = 2
    trainer = Trainer(cfg)
    from imcsr_live.model.imcsr_net import IMCSRNet

    model = IMCSRNet(cfg.net_config())
    trainer._init_from(model)
    for name, tensor in base_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor)
    assert any(k.startswith("logvar.") for k in model.state_dict())
    result = trainer.run()
    model, card = load_checkpoint(result.best_path)
    assert model.cfg.uncertainty and len(card["uncertainty_calibration"]) == 3

    # and back: a model with the head starts one without it (the head is left out, the rest is loaded)
    plain = load_train_config(tiny_config(tmp_path / "base", iterations=1, init=f'"{result.best_path}"'))
    without = IMCSRNet(plain.net_config())
    Trainer(plain)._init_from(without)
    assert not any(k.startswith("logvar.") for k in without.state_dict())
    for name, tensor in without.state_dict().items():
        torch.testing.assert_close(tensor, model.state_dict()[name])

    wider = tiny_config(tmp_path / "wide", iterations=1, init=f'"{base.best_path}"')
    wider.write_text(
        wider.read_text()
        .replace("width = 8", "width = 12")
        .replace("reduction = 4", "reduction = 4\nuncertainty = true")
    )
    with pytest.raises(CheckpointError, match="width"):
        Trainer(load_train_config(wider))._init_from(IMCSRNet(load_train_config(wider).net_config()))


def test_init_adds_a_context_branch_and_starts_from_the_checkpoints_output(tmp_path: Path) -> None:
    """Fine-tuning a trained model into one with the context branch: every checkpoint weight is loaded, the branch
    starts at zero (same separation to the bit), and a checkpoint with the branch cannot start one without it."""
    from imcsr_live.model.imcsr_net import IMCSRNet

    torch.set_num_threads(1)
    for sub in ("base", "ctx"):
        (tmp_path / sub).mkdir()
    base_cfg = load_train_config(tiny_config(tmp_path / "base", iterations=2, val_every=2, checkpoint_every=2))
    base_cfg.data.val_samples = 2
    base = Trainer(base_cfg).run()
    base_model, _ = load_checkpoint(base.best_path)

    path = tiny_config(tmp_path / "ctx", iterations=2, val_every=2, checkpoint_every=2, init=f'"{base.best_path}"')
    path.write_text(path.read_text().replace("reduction = 4", "reduction = 4\ncontext_width = 4"))
    cfg = load_train_config(path)
    cfg.data.val_samples = 2
    model = IMCSRNet(cfg.net_config())
    Trainer(cfg)._init_from(model)
    x = torch.rand(1, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(x), base_model(x))
    result = Trainer(cfg).run()
    trained, card = load_checkpoint(result.best_path)
    assert trained.cfg.context_width == 4 and card["architecture"]["context_width"] == 4

    # context_lr_scale: Adam moves each weight by about its lr per step, so the branch's projection leaves zero
    # about 30x further at 30x the lr, while the rest of the network takes the same-sized steps
    (tmp_path / "fast").mkdir()
    fast_path = tmp_path / "fast" / path.name
    fast_path.write_text(
        path.read_text()
        .replace(str(tmp_path / "ctx"), str(tmp_path / "fast"))
        .replace("[train]", "[train]\ncontext_lr_scale = 30")
    )
    fast_cfg = load_train_config(fast_path)
    fast_cfg.data.val_samples = 2
    fast, _ = load_checkpoint(Trainer(fast_cfg).run().best_path)
    moved = float(trained.state_dict()["context.fuse.weight"].abs().mean())
    moved_fast = float(fast.state_dict()["context.fuse.weight"].abs().mean())
    assert moved > 0 and moved_fast > 10 * moved, (moved, moved_fast)
    head_step = (trained.state_dict()["head.weight"] - base_model.state_dict()["head.weight"]).abs().mean()
    head_step_fast = (fast.state_dict()["head.weight"] - base_model.state_dict()["head.weight"]).abs().mean()
    assert float(head_step_fast) < 3 * float(head_step)

    back = load_train_config(tiny_config(tmp_path / "base", iterations=1, init=f'"{result.best_path}"'))
    with pytest.raises(CheckpointError, match="context_width: checkpoint 4 vs config 0"):
        Trainer(back)._init_from(IMCSRNet(back.net_config()))
