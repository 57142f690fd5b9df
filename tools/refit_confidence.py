"""Refit a checkpoint's per-frame confidence reference on its recipe's validation cells.

    python tools/refit_confidence.py imcsr_live/weights/imcsr_cpu_demo_tc \
        -c hardware_configs/train_cpu_demo_tc_uncertainty.toml [--write]

Why: the thresholds in the card's ``confidence_reference`` are percentiles of the per-frame values
(:mod:`imcsr_live.model.confidence`) on validation cells. When the definition of a value changes, a card written
before holds thresholds on the old scale. This recomputes them exactly as training does
(:meth:`Trainer.calibrate_with_reference`) on the recipe's validation set (rendered or read from the pool cache).
The uncertainty calibration is recomputed too and must match the card's: if it does not, the recipe's validation
cells are not the ones the model was calibrated on, and nothing is written. Without ``--write`` it only prints the
old and new reference; with it, it rewrites the card (atomically; the weights and their SHA-256 are untouched).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.errors import CheckpointError, ImcsrError  # noqa: E402
from imcsr_live.fileio import atomic_write  # noqa: E402
from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint  # noqa: E402
from imcsr_live.train.config import load_train_config  # noqa: E402
from imcsr_live.train.trainer import Trainer, build_samplers  # noqa: E402

#: Largest relative difference between the card's calibration scales and the refit ones.
CALIBRATION_TOLERANCE = 1e-3


def calibration_matches(stored: list[dict[str, float]] | None, refit: list[dict[str, float]] | None) -> bool:
    """Whether two per-channel calibrations agree within :data:`CALIBRATION_TOLERANCE` (both absent counts)."""
    if stored is None or refit is None:
        return stored is None and refit is None
    if len(stored) != len(refit):
        return False
    for a, b in zip(stored, refit, strict=True):
        for key in ("scale", "offset"):
            if abs(a[key] - b[key]) > CALIBRATION_TOLERANCE * max(abs(a[key]), abs(b[key]), 1e-6):
                return False
    return True


def refit(stem: Path, recipe: Path) -> tuple[dict, dict]:
    """``(card, new reference)`` of checkpoint ``stem`` on ``recipe``'s validation set."""
    cfg = load_train_config(recipe)
    model, card = load_checkpoint(stem, expect_structures=cfg.structure_names)
    _, val_sampler, _ = build_samplers(cfg)
    val = val_sampler.fixed_set(cfg.data.val_samples, seed=cfg.data.seed + 7)  # as Trainer._setup
    calibration, reference = Trainer(cfg).calibrate_with_reference(model, val)
    if not calibration_matches(card.get("uncertainty_calibration"), calibration):
        raise CheckpointError(
            f"{recipe.name}: its validation cells give another uncertainty calibration than the card of {stem.name} "
            f"({calibration} vs {card.get('uncertainty_calibration')}); pass the recipe the model was trained with"
        )
    return card, reference


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="checkpoint stem (NAME for NAME.safetensors + NAME.json)")
    ap.add_argument("-c", "--config", type=Path, required=True, help="the training recipe of the checkpoint")
    ap.add_argument("--write", action="store_true", help="rewrite the card's confidence_reference")
    args = ap.parse_args(argv)
    try:
        card, reference = refit(args.checkpoint, args.config)
    except (ImcsrError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"old: {json.dumps(card.get('confidence_reference'))}")
    print(f"new: {json.dumps(reference)}")
    if args.write:
        card["confidence_reference"] = reference
        card_path = checkpoint_paths(args.checkpoint)[1]
        atomic_write(card_path, json.dumps(card, indent=2) + "\n")
        print(f"wrote {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
