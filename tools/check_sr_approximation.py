#!/usr/bin/env python
"""How well does the fast SR-input approximation (train/degrade.py) match real reconstructions?

For each photon level: simulate raw SIM stacks of synthetic cells (SyntheticMicroscope), reconstruct them with the
live pipeline's Reconstructor (imcsr_live.recon), and compare with the approximation applied to the same cells'
SR ground truth. Printed per level (medians over cells, interior of the field to skip the edge taper):

* PCC and paper NRMSE of the SR image against the summed ground truth (how noisy/blurred the input is),
* noise std: residual after the least-squares fit of the ground truth (recon vs approximation),
* gain = recon noise / approximation noise (set ``noise_gain`` in SimDegradeParams to this to match).

  python tools/check_sr_approximation.py --size 256 --cells 3 --photons 100 300 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from imcsr_live.config import load_rig_config
from imcsr_live.model.metrics import evaluate_image, linear_fit
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings
from imcsr_live.train.degrade import SimDegradeParams, SimReconApproximation

REPO = Path(__file__).resolve().parents[1]


def residual_std(img: np.ndarray, gt: np.ndarray) -> float:
    a, b = linear_fit(gt, img)
    return float(np.std(img - (a * gt + b)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "hardware_configs" / "simulated.toml")
    p.add_argument(
        "--size",
        type=int,
        default=256,
        help="raw frame size (SR is twice that; >= 256 for a reliable start-up parameter search)",
    )
    p.add_argument("--cells", type=int, default=3)
    p.add_argument("--photons", type=float, nargs="+", default=[100.0, 300.0, 1000.0])
    args = p.parse_args()
    from imcsr_live.recon import Reconstructor

    rig = load_rig_config(args.config)
    approx = SimReconApproximation(SimDegradeParams.from_rig(rig))
    m = args.size // 2  # interior: skip the recon's edge taper (16 camera px = 32 SR px)
    inner = (slice(m // 2, -m // 2), slice(m // 2, -m // 2))
    print("| photons | PCC recon | PCC approx | NRMSE recon | NRMSE approx | noise recon | noise approx | gain |")
    print("|---|---|---|---|---|---|---|---|")
    t_rec, t_app = [], []
    for photons in args.photons:
        rows = []
        for seed in range(args.cells):
            world = SyntheticMicroscope(
                rig, WorldSettings(raw_shape=(args.size, args.size), photons=photons, seed=seed)
            )
            tp = world.next_timepoint()
            gt = tp.ground_truth.sum(axis=0)
            t0 = time.perf_counter()
            rec = Reconstructor(rig).reconstruct(tp.raw).sr
            t1 = time.perf_counter()
            app = approx.degrade(gt, np.random.default_rng(seed))
            t2 = time.perf_counter()
            t_rec.append(t1 - t0)
            t_app.append(t2 - t1)
            g, r, a = gt[inner], rec[inner], app[inner]
            mr, ma = evaluate_image(r, g), evaluate_image(a, g)
            rows.append((mr.pcc, ma.pcc, mr.nrmse, ma.nrmse, residual_std(r, g), residual_std(a, g)))
        med = [statistics.median(c) for c in zip(*rows, strict=True)]
        print(
            f"| {photons:g} | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.3f} | {med[4]:.2f} | "
            f"{med[5]:.2f} | {med[4] / med[5]:.2f} |"
        )
    print(
        f"\nmedian time per {2 * args.size}^2 SR frame: reconstruction (incl. parameter search) "
        f"{statistics.median(t_rec) * 1e3:.0f} ms, approximation {statistics.median(t_app) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
