"""A trained model's card carries the per-frame confidence reference: fitted on its validation set (per-channel
predicted-error thresholds with an uncertainty head, residual only without one) or, on synthetic data, refitted at
the end of the run on whole frames of the training world per frame size; the live side reads it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.model.checkpoint import read_card
from imcsr_live.model.confidence import ConfidenceModel, ConfidenceReference, fit_reference, frame_values
from imcsr_live.train.config import load_train_config
from imcsr_live.train.trainer import Trainer

TINY = Path(__file__).resolve().parents[2] / "hardware_configs" / "train_tiny.toml"


def short_config(tmp_path: Path, uncertainty: bool) -> Path:
    text = TINY.read_text().replace('output_dir = "../runs/tiny"', f'output_dir = "{tmp_path / "run"}"')
    for key, value in {"iterations": 2, "val_every": 2, "checkpoint_every": 2}.items():
        text = "\n".join(ln for ln in text.splitlines() if ln.split("=")[0].strip() != key) + "\n"
        text = text.replace("[train]\n", f"[train]\n{key} = {value}\n", 1)
    if uncertainty:
        text = text.replace("in_frames = 1", "in_frames = 1\nuncertainty = true")
    path = tmp_path / "train.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("uncertainty", [True, False], ids=["head", "no-head"])
def test_trained_card_holds_the_validation_confidence_reference(tmp_path: Path, uncertainty: bool) -> None:
    torch.set_num_threads(1)
    cfg = load_train_config(short_config(tmp_path, uncertainty))
    cfg.data.val_samples = 4
    cfg.train.confidence_frames = 0  # keep the validation-patch thresholds
    trainer = Trainer(cfg)
    result = trainer.run()
    card = read_card(result.best_path)
    ref = ConfidenceReference.from_dict(card["confidence_reference"])
    assert ref.source.startswith("validation: 4 images")
    assert np.isfinite(ref.residual) and ref.residual > 0
    if uncertainty:
        assert ref.predicted_error is not None and len(ref.predicted_error) == 3
        assert all(np.isfinite(v) and v > 0 for v in ref.predicted_error)
        assert len(card["uncertainty_calibration"]) == 3
    else:
        assert ref.predicted_error is None and card["uncertainty_calibration"] is None
    # the reference is the P95 x 1.5 of the validation images' own values (recomputed here)
    from imcsr_live.train.trainer import build_samplers

    _, val_sampler, _ = build_samplers(cfg)
    xs, _ys = val_sampler.fixed_set(cfg.data.val_samples, seed=cfg.data.seed + 7)
    trainer.model.eval()
    out = trainer.model(xs).float().detach().numpy()
    residuals = [frame_values(o[:3], None, x[x.shape[0] // 2])[0] for o, x in zip(out, xs.numpy(), strict=True)]
    assert ref.residual == pytest.approx(fit_reference(residuals).residual, rel=1e-3)
    live = ConfidenceModel.from_card(card)
    assert live.reference == ref and (live.calibration is not None) == uncertainty


def test_synthetic_run_refits_the_thresholds_on_whole_frames_of_its_world(tmp_path: Path) -> None:
    from imcsr_live.model.checkpoint import load_checkpoint
    from imcsr_live.train.confidence_refit import DEFAULT_SEED, fit_by_size, whole_frame_values

    torch.set_num_threads(1)
    cfg = load_train_config(short_config(tmp_path, uncertainty=True))
    assert (cfg.train.confidence_frames, cfg.train.confidence_sizes) == (1, [128])  # the tiny recipe's
    result = Trainer(cfg).run()
    card = read_card(result.best_path)
    ref = ConfidenceReference.from_dict(card["confidence_reference"])
    # one whole 128-px pipeline frame per photon level of the default world, not the validation patches
    assert ref.source.startswith(f"whole frames of the default world (seed {DEFAULT_SEED}): 3 images")
    assert [size for size, _r in ref.by_size] == [128]
    # the thresholds are those of the saved model on those frames, as the live view computes the values
    model, loaded = load_checkpoint(result.best_path)
    again = fit_by_size(whole_frame_values(model, loaded, ["default"], 1, [128]), "x")
    assert ref.residual == pytest.approx(again.residual, rel=1e-4)
    assert ref.predicted_error == pytest.approx(again.predicted_error, rel=1e-4)
    assert ConfidenceModel.from_card(card).reference == ref


@pytest.mark.parametrize(
    ("data", "worlds"),
    [
        ({"kind": "synthetic"}, ["default"]),
        ({"kind": "pipeline", "world": "randomised"}, ["randomised"]),
        ({"kind": "pipeline", "world": "randomised", "default_fraction": 0.3}, ["randomised", "default"]),
        ({"kind": "pipeline", "world": "default", "default_fraction": 0.0}, ["default"]),
        (
            {"kind": "pipeline", "world": "randomised", "mix": {"independent": 0.25, "default": 0.25}},
            ["randomised", "default", "independent"],
        ),
        (
            {"kind": "pipeline", "world": "randomised", "default_fraction": 0.2, "mix": {"independent": 0.3}},
            ["randomised", "default", "independent"],
        ),
        ({"kind": "folder", "path": "cells"}, []),
        ({"kind": "acquired", "root": "ds"}, []),
    ],
)
def test_worlds_of_the_training_data(data: dict[str, object], worlds: list[str]) -> None:
    from imcsr_live.model.card import separation_worlds

    assert separation_worlds(data) == worlds


def test_bad_fitting_sizes_are_refused_at_load(tmp_path: Path) -> None:
    from imcsr_live.errors import ConfigError

    path = short_config(tmp_path, uncertainty=False)
    path.write_text(path.read_text().replace("confidence_sizes = [128]", "confidence_sizes = [100]"))
    with pytest.raises(ConfigError, match="multiples of 4 from 128 to 2048"):
        load_train_config(path)
