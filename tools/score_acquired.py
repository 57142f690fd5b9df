"""Score models on the held-out part of an acquired dataset (``imcsr-live acquire-training``), next to the copy
baseline: what fine-tuning on your own cells gained, on cells (positions) it was not trained on.

    python tools/score_acquired.py --data DIR --model shipped=imcsr_cpu_demo_tc \\
        --model tuned=runs/finetune_acquired/imcsr_finetuned [--val-fraction 0.25]

The held-out windows are the ones ``train`` validates on (``[data] val_fraction``: the last positions, or with one
position the last block of timepoints). Input = the per-structure SR images summed as they are (brightness ratio
1), full frame; truth = the images. Every channel is scored as ``imcsr-live evaluate`` scores (percentile
normalisation, linear fit, Pearson); the baseline copies the input into every channel. Prints one Markdown table of
the median PCC per structure (and the number of windows) and writes it to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.engine.model_source import resolve_checkpoint  # noqa: E402
from imcsr_live.errors import ImcsrError  # noqa: E402
from imcsr_live.model.checkpoint import load_checkpoint  # noqa: E402
from imcsr_live.model.metrics import evaluate_image  # noqa: E402
from imcsr_live.train.acquired_data import acquired_samplers  # noqa: E402
from imcsr_live.train.data import SampleSpec  # noqa: E402
from imcsr_live.train.evaluate import predict  # noqa: E402

BASELINE = "copy baseline"


def score(
    data: Path, models: dict[str, str], val_fraction: float
) -> tuple[list[str], dict[str, dict[str, float]], int]:
    """Median PCC per method and structure on the held-out windows, and the number of windows."""
    medians: dict[str, dict[str, float]] = {}
    baseline: dict[str, float] = {}
    names: list[str] = []
    windows = 0
    for label, stem in models.items():
        model, card = load_checkpoint(stem)
        names = [s["name"] for s in card["structures"]]
        frames = int(card["input_frames"])
        _, val, _ = acquired_samplers(data, names, SampleSpec(patch=16, in_frames=frames), val_fraction)
        pccs: dict[str, list[float]] = {n: [] for n in names}
        base: dict[str, list[float]] = {n: [] for n in names}
        windows = 0
        for x, y in val.iter_full():
            pred = predict(model, x[None], len(names))[0]
            for c, name in enumerate(names):
                pccs[name].append(evaluate_image(pred[c], y[c]).pcc)
                base[name].append(evaluate_image(x[frames // 2], y[c]).pcc)
            windows += 1
        medians[label] = {n: float(np.median(v)) for n, v in pccs.items()}
        baseline = {n: float(np.median(v)) for n, v in base.items()}  # the same windows for every model
    return names, {**medians, BASELINE: baseline}, windows


def table(names: list[str], medians: dict[str, dict[str, float]], windows: int) -> str:
    lines = [f"| method (median PCC, {windows} held-out windows) | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for label, row in medians.items():
        lines.append(f"| {label} | " + " | ".join(f"{row[n]:.3f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from acquire-training")
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=STEM",
                        help="a checkpoint (shipped name or path stem), repeatable")  # fmt: skip
    parser.add_argument("--val-fraction", type=float, default=0.25, help="as [data] val_fraction of the training")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    models = dict(spec.split("=", 1) if "=" in spec else (spec, spec) for spec in args.model)
    models = {label: str(resolve_checkpoint(stem)) for label, stem in models.items()}
    try:
        text = table(*score(args.data, models, args.val_fraction))
    except ImcsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
