"""Frame-to-frame flicker of TC models on static scenes through the live pipeline, normalised two ways.

A channel's mean |y[t+1] - y[t]| divided by the channel's *own* mean intensity counts the same absolute change as
more flicker for a model that puts less false mass into a sparse channel (lysosomes). This check prints it next
to the change divided by the mean of the channel's *truth* in the same units (the normalised input's), which does
not depend on the model -- what `evaluate --compare` uses for its claims since 2026-12-02, on the same scenes (this
tool: the live 512x512 size, TC models only). Before that date the tool divided by the truth in photoelectrons
instead of the reconstruction's unit, so its truth-mean values were about half as large (model comparisons
unchanged):

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

from imcsr_live.model.checkpoint import load_checkpoint  # noqa: E402
from imcsr_live.model.normalization import normalize_input  # noqa: E402
from imcsr_live.train.compare import flicker_pair  # noqa: E402
from imcsr_live.train.evaluate import load_eval_levels, predict  # noqa: E402


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
    models = {}
    for spec in args.models:
        label, _, path = spec.partition("=")
        net, card = load_checkpoint(path)
        if card["input_frames"] != 3:
            raise SystemExit(f"{path}: a 3-frame (TC) model is needed")
        models[label] = (net, [s["name"] for s in card["structures"]])
    names = next(iter(models.values()))[1]
    photons = [float(p) for p in args.photons.split(",")]
    levels = load_eval_levels(
        "synthetic", names, 3, photons=photons, images=1, size=args.size, seed=args.seed, pipeline=True
    )
    print("| photons | scene | structure | " + " | ".join(f"{k} own-mean | {k} truth-mean" for k in models) + " |")
    print("|---|---|---|" + "---|---|" * len(models))
    for lv in (lv for lv in levels if lv.rig is not None):  # evaluate's pipeline flicker scenes, the same seeds
        for j in range(args.scenes):
            srs, truth = lv.static_scene(j, args.timepoints + 2, args.size, args.seed)
            windows = [normalize_input(srs[t - 1 : t + 2]) for t in range(1, args.timepoints + 1)]
            scale = np.mean([s for _, s in windows])
            outs = {
                k: np.stack([predict(net, w[None], len(names))[0] for w, _ in windows])
                for k, (net, names) in models.items()
            }
            for c, name in enumerate(names):
                truth_mean = float(lv.scored(truth[c]).mean()) / scale
                cells = []
                for k, (_, own_names) in models.items():
                    own, vs_truth = flicker_pair(lv.scored(outs[k][:, own_names.index(name)]), truth_mean)
                    cells.append(f"{own:.3f} | {vs_truth:.3f}")
                print(f"| {lv.photons:g} | {j} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
