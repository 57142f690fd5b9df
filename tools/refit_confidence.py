"""Refit a checkpoint's per-frame confidence reference on whole frames of the world its separation knows.

    python tools/refit_confidence.py imcsr_live/weights/imcsr_cpu_demo_tc --world default [--images 8] [--write] \
        [--check default --check independent]

The card's ``confidence_reference`` holds the thresholds of the in-distribution verdict: the 95th percentile of
the per-frame values (:mod:`imcsr_live.model.confidence`), times 1.5. Training fits them on its validation
patches. Three cases need them refitted:

* the definition of a value changed, so a card written before holds thresholds on the old scale;
* a head trained alone (``[train] train_only = "uncertainty"``) on other cells than its separation: its
  validation cells include cells the separation never saw, and the thresholds accept them;
* patches are not frames: on a 96-px crop with few structures a channel's bright level is low, so the predicted
  relative error runs far higher than on the whole frames the live view judges.

This refits them as the live view computes them (:meth:`ConfidenceModel.assess`, the card's calibration as it
is) on whole frames of ``--world`` through the synthetic microscope and the real reconstructor, at the card's
photon levels, per frame size of ``--sizes`` (``by_size``: the values depend on the field of view, a small one
holds few lysosomes; the live view judges a frame by the nearest size, older readers take the pooled thresholds).
The cells are drawn with ``--seed`` (default 1000, apart from the test images of ``tools/cross_world.py`` and
``evaluate``, seed 0). Without ``--write`` it prints the old and the new reference;
with it, it rewrites the card atomically (weights and SHA-256 untouched). ``--check WORLD`` (repeatable) then
judges the test frames (seed 0) of each world against the new reference and prints the share flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.errors import ImcsrError  # noqa: E402
from imcsr_live.fileio import atomic_write  # noqa: E402
from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint  # noqa: E402
from imcsr_live.model.confidence import ConfidenceModel, ConfidenceReference, fit_reference, judge  # noqa: E402
from imcsr_live.train.evaluate import eval_worlds, load_eval_levels, predict  # noqa: E402

DEFAULT_SEED = 1000


def frame_values(
    stem: Path, world: str, images: int, sizes: list[int], seed: int
) -> tuple[dict, dict[int, tuple[np.ndarray, np.ndarray | None]]]:
    """``(card, {size: (residuals (N,), predicted errors (N, C) or None)})`` of the model on ``images`` whole frames
    per photon level of ``world``, per frame size."""
    model, card = load_checkpoint(stem)
    names = [s["name"] for s in card["structures"]]
    frames = int(card["architecture"].get("in_frames", 1))
    head = bool(card["architecture"].get("uncertainty", False))
    photons = [float(p) for p in card.get("training", {}).get("config", {}).get("data", {}).get("photons", [])]
    photons = photons or [100.0, 300.0, 1000.0]
    data = "synthetic" if world == "default" else world
    confidence = ConfidenceModel.from_card(card)
    c = len(names)
    values: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
    for size in sizes:
        levels = load_eval_levels(
            data, names, frames, photons=photons, images=images, size=size, seed=seed, pipeline=True
        )
        residuals, errors = [], []
        for lv in [lv for lv in levels if lv.rig is not None]:  # not the default world's fast approximation
            for x, _targets in lv.images(frames, images, seed):
                out = predict(model, x[None], 2 * c if head else c)[0]
                std = np.exp(0.5 * out[c:]) if head else None
                verdict = confidence.assess(out[:c], std, x[frames // 2])
                residuals.append(verdict.residual)
                errors.append(verdict.predicted_error)
        values[size] = (np.array(residuals), np.array(errors) if head else None)
    return card, values


def fit_by_size(values: dict[int, tuple[np.ndarray, np.ndarray | None]], where: str) -> ConfidenceReference:
    """Pooled thresholds over every size, with per-size thresholds in ``by_size``; ``where`` names the frames."""

    def fit(res: np.ndarray, err: np.ndarray | None) -> ConfidenceReference:
        ref = fit_reference(res, err)
        return replace(ref, source=ref.source.replace("validation", where))

    res = np.concatenate([r for r, _e in values.values()])
    errs = [e for _r, e in values.values() if e is not None]
    pooled = fit(res, np.concatenate(errs) if errs else None)
    return replace(pooled, by_size=tuple((size, fit(r, e)) for size, (r, e) in values.items()))


def parse_sizes(text: str) -> list[int]:
    """``"128,256,512"`` -> sizes; ValueError with the rule for anything else."""
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(not (128 <= v <= 2048 and v % 4 == 0) for v in sizes):
        raise ValueError(f"--sizes {text!r}: pass SR frame sizes, multiples of 4 from 128 to 2048, e.g. 256,512")
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="checkpoint stem (NAME for NAME.safetensors + NAME.json)")
    ap.add_argument("--world", required=True, help="the world the separation was trained on (default, randomised)")
    ap.add_argument("--images", type=int, default=8, help="whole frames per photon level (default 8)")
    ap.add_argument("--sizes", default="128,256,512", help="SR frame sizes (default 128,256,512)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"cell seed (default {DEFAULT_SEED})")
    ap.add_argument("--write", action="store_true", help="rewrite the card's confidence_reference")
    ap.add_argument("--check", action="append", default=[], metavar="WORLD", help="report flagged test frames")
    args = ap.parse_args(argv)
    worlds = ["default", *eval_worlds()]
    for world in [args.world, *args.check]:
        if world not in worlds:
            print(f"error: world {world!r}: pass one of {', '.join(worlds)}", file=sys.stderr)
            return 2
    if not 1 <= args.images <= 100:
        print(f"error: --images {args.images}: pass 1 to 100 frames per photon level", file=sys.stderr)
        return 2
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        card, values = frame_values(args.checkpoint, args.world, args.images, sizes, args.seed)
    except (ImcsrError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ref = fit_by_size(values, f"whole frames of the {args.world} world (seed {args.seed})")
    reference = ref.to_dict()
    print(f"old: {json.dumps(card.get('confidence_reference'))}")
    print(f"new: {json.dumps(reference)}")
    if args.write:
        card["confidence_reference"] = reference
        card_path = checkpoint_paths(args.checkpoint)[1]
        atomic_write(card_path, json.dumps(card, indent=2) + "\n")
        print(f"wrote {card_path}")
    for world in args.check:
        _card, checked = frame_values(args.checkpoint, world, args.images, sizes, 0)
        for size, (res, err) in checked.items():
            per_frame = [None] * len(res) if err is None else [tuple(e) for e in err]
            flagged = [not judge(r, e, ref.at(size)).in_distribution for r, e in zip(res, per_frame, strict=True)]
            print(f"{world} world, {len(res)} test frames of {size} px (seed 0): {np.mean(flagged):.0%} flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
