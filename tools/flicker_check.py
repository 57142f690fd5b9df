"""Frame-to-frame flicker of TC models on static scenes through the live pipeline, normalised two ways.

`evaluate --compare` divides a channel's mean |y[t+1] - y[t]| by the channel's *own* mean intensity, so a model
that puts less false mass into a sparse channel (lysosomes) scores a higher flicker for the same absolute change.
This check also divides it by the mean of the channel's *truth* in the same units (the normalised input's), which
does not depend on the model:

    python tools/flicker_check.py OLD=runs/previous_shipped/imcsr_cpu_demo_tc NEW=imcsr_live/weights/imcsr_cpu_demo_tc \
        --photons 100,300,1000 --scenes 3 --size 512

Scenes: the synthetic microscope of `hardware_configs/simulated.toml` held still (dt = 0), new camera noise and
pattern jitter per frame, each frame reconstructed; the same seeds as evaluate's pipeline flicker scenes. The
reconstruction's faded border is left out, as in evaluate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.config import load_rig_config  # noqa: E402
from imcsr_live.model.normalization import normalize_input  # noqa: E402
from imcsr_live.train.checkpoint import load_checkpoint  # noqa: E402
from imcsr_live.train.evaluate import _pipeline, predict  # noqa: E402
from imcsr_live.train.pipeline_data import EDGE_MARGIN  # noqa: E402


def scene(rig, photons: float, size: int, seed: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` reconstructions ``(T, size, size)`` of one still scene and its per-structure truth ``(C, ...)``."""
    mic, rec = _pipeline(rig, photons, size, seed)
    srs, truth = [], None
    for _ in range(frames):
        tp = mic.next_timepoint(dt_s=0.0)
        srs.append(rec.reconstruct(tp.raw).sr)
        truth = tp.ground_truth
    return np.stack(srs), truth


def flicker_pair(outputs: np.ndarray, truth_mean: float) -> tuple[float, float]:
    """Mean |y[t+1] - y[t]| of ``(T, H, W)`` over the outputs' own mean and over the truth's mean."""
    change = float(np.abs(np.diff(outputs.astype(np.float64), axis=0)).mean())
    own = float(outputs.mean())
    return change / own if own > 0 else float("nan"), change / truth_mean if truth_mean > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="LABEL=CHECKPOINT (3-frame models)")
    ap.add_argument("--photons", default="100,300,1000")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--timepoints", type=int, default=8)
    ap.add_argument("--size", type=int, default=512, help="SR frame size (raw = half)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rig = load_rig_config(REPO / "hardware_configs" / "simulated.toml")
    models = {}
    for spec in args.models:
        label, _, path = spec.partition("=")
        net, card = load_checkpoint(path)
        if card["input_frames"] != 3:
            raise SystemExit(f"{path}: a 3-frame (TC) model is needed")
        models[label] = (net, [s["name"] for s in card["structures"]])
    m = EDGE_MARGIN
    print("| photons | scene | structure | " + " | ".join(f"{k} own-mean | {k} truth-mean" for k in models) + " |")
    print("|---|---|---|" + "---|---|" * len(models))
    for photons in (float(p) for p in args.photons.split(",")):
        for j in range(args.scenes):
            srs, truth = scene(rig, photons, args.size, args.seed + 4_000_037 + j, args.timepoints + 2)
            windows = [normalize_input(srs[t - 1 : t + 2]) for t in range(1, args.timepoints + 1)]
            scale = np.mean([s for _, s in windows])
            outs = {
                k: np.stack([predict(net, w[None], len(names))[0] for w, _ in windows])
                for k, (net, names) in models.items()
            }
            for c, name in enumerate(rig.structure_names):
                truth_mean = float((truth[c, m:-m, m:-m] / scale).mean())
                cells = []
                for k, (_, names) in models.items():
                    own, vs_truth = flicker_pair(outs[k][:, names.index(name), m:-m, m:-m], truth_mean)
                    cells.append(f"{own:.3f} | {vs_truth:.3f}")
                print(f"| {photons:g} | {j} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
