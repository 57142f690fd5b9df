"""Refit a checkpoint's per-frame confidence reference on whole frames of the world its separation knows.

    python tools/refit_confidence.py imcsr_live/weights/imcsr_cpu_demo_tc --world default [--images 8] [--write] \
        [--check default --check independent]

The card's ``confidence_reference`` holds the thresholds of the in-distribution verdict: the 95th percentile of
the per-frame values (:mod:`imcsr_live.model.confidence`), times 1.5. A training run on synthetic data fits them
on whole frames when it reaches its last iteration (:mod:`imcsr_live.train.confidence_refit`, which this tool
runs); before that, and on a user's data, they come from the validation patches. Cases for this tool:

* a run stopped in ``--max-minutes`` slices, whose best checkpoint is shipped before the run's end;
* the definition of a value changed, so a card written before holds thresholds on the old scale;
* an older card whose thresholds came from validation patches: on a 96-px crop with few structures a channel's
  bright level is low, so the predicted relative error runs far higher than on the whole frames the live view
  judges; a head trained alone also validated on cells its separation never saw.

It refits them as the live view computes them (:meth:`ConfidenceModel.assess`, the card's calibration as it is) on
whole frames of ``--world`` (``A+B``: of both, pooled) through the synthetic microscope and the real
reconstructor, at the card's photon levels, per frame size of ``--sizes`` (``by_size``: the values depend on the
field of view, a small one holds few lysosomes; the live view judges a frame by the nearest size, older readers
take the pooled thresholds). The cells are drawn with ``--seed`` (default 1000, apart from the test images of
``tools/cross_world.py`` and ``evaluate``, seed 0). Without ``--write`` it prints the old and the new reference;
with it, it rewrites the card atomically (weights and SHA-256 untouched). ``--check WORLD`` (repeatable) then
judges the test frames (seed 0) of each world against the new reference and prints the share flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.errors import ImcsrError  # noqa: E402
from imcsr_live.model.checkpoint import load_checkpoint  # noqa: E402
from imcsr_live.model.confidence import judge  # noqa: E402
from imcsr_live.train.confidence_refit import DEFAULT_SEED, parse_sizes, refit_card, whole_frame_values  # noqa: E402
from imcsr_live.train.evaluate import eval_worlds  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="checkpoint stem (NAME for NAME.safetensors + NAME.json)")
    ap.add_argument("--world", required=True,
                    help="the world(s) the separation was trained on: default, randomised, or e.g. randomised+default "
                         "(frames of each, pooled)")  # fmt: skip
    ap.add_argument("--images", type=int, default=8, help="whole frames per photon level (default 8)")
    ap.add_argument("--sizes", default="128,256,512", help="SR frame sizes (default 128,256,512)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"cell seed (default {DEFAULT_SEED})")
    ap.add_argument("--write", action="store_true", help="rewrite the card's confidence_reference")
    ap.add_argument("--check", action="append", default=[], metavar="WORLD", help="report flagged test frames")
    args = ap.parse_args(argv)
    worlds = ["default", *eval_worlds()]
    trained = args.world.split("+")
    for world in [*trained, *args.check]:
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
        old, ref = refit_card(args.checkpoint, trained, args.images, sizes, args.seed, write=args.write)
    except (ImcsrError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"old: {json.dumps(old)}")
    print(f"new: {json.dumps(ref.to_dict())}")
    if args.write:
        print(f"wrote the card of {args.checkpoint}")
    model, card = load_checkpoint(args.checkpoint) if args.check else (None, {})
    for world in args.check:
        checked = whole_frame_values(model, card, [world], args.images, sizes, seed=0)
        for size, (res, err) in checked.items():
            per_frame = [None] * len(res) if err is None else [tuple(e) for e in err]
            flagged = [not judge(r, e, ref.at(size)).in_distribution for r, e in zip(res, per_frame, strict=True)]
            print(f"{world} world, {len(res)} test frames of {size} px (seed 0): {np.mean(flagged):.0%} flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
