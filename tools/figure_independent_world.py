#!/usr/bin/env python
"""Montage of the independent evaluation world: a few seeds, each structure in its own colour and the sum.

    python tools/figure_independent_world.py [-o docs/worlds/independent.png] [--seeds 0 1 2 3] [--size 512]

One row per seed: microtubules (green), ER (magenta), lysosomes (cyan), the three-colour composite, and the
sum of the channels plus the unlabelled background (what a one-colour image of the cell would show, before
the optics). Truth grid 31.3 nm, so --size 512 is a 16 um field.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

STRUCTURES = ["Microtubules", "ER", "Lysosomes"]
COLOURS = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
PIXEL_UM = 0.0313


def _stretch(img: np.ndarray, pct: float = 99.7) -> np.ndarray:
    hi = float(np.percentile(img, pct)) or 1.0
    return np.clip(img / hi, 0.0, 1.0) ** 0.8


def _tint(img: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return _stretch(img)[..., None] * colour


def render_seed(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Truth ``(3, H, W)``, background ``(H, W)`` and a one-line description of one cell."""
    from imcsr_live.synth.independent import IndependentSpecimen

    spec = IndependentSpecimen(STRUCTURES, (size, size), PIXEL_UM, seed=np.random.default_rng(seed))
    truth = spec.render()
    lyso = spec.lysosomes
    label = (
        f"seed {seed}: {int(spec.microtubules.in_field(spec.width_um, spec.height_um).sum())} MTs, "
        f"ER mesh {spec.er.mesh_um:.2f} um, {len(spec.er.sheets)} sheets, {lyso.count} lysosomes"
        + (", cell edge" if spec.cell.has_edge else "")
    )
    return truth, spec.background(), label


def montage(seeds: list[int], size: int) -> tuple[object, list[str]]:
    """The matplotlib figure and the row labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = [*STRUCTURES, "composite", "sum + background"]
    fig, axes = plt.subplots(len(seeds), 5, figsize=(15, 3.1 * len(seeds)), squeeze=False)
    labels = []
    for row, seed in enumerate(seeds):
        truth, bg, label = render_seed(seed, size)
        labels.append(label)
        panels = [_tint(c, COLOURS[i]) for i, c in enumerate(truth)]
        panels.append(np.clip(sum(panels), 0.0, 1.0))
        panels.append(_stretch(truth.sum(axis=0) + bg, 99.9))
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=10)
        axes[row, 0].set_ylabel(label.split(":")[0], fontsize=10)
        axes[row, 2].set_xlabel(label.split(": ")[1], fontsize=8)
    fig.suptitle(f"independent evaluation world, {size * PIXEL_UM:.1f} um fields, 31.3 nm truth grid", fontsize=11)
    fig.tight_layout()
    return fig, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/worlds/independent.png"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="one row per seed")
    ap.add_argument("--size", type=int, default=512, help="truth pixels per side (31.3 nm)")
    ap.add_argument("--dpi", type=int, default=80)
    args = ap.parse_args(argv)
    fig, labels = montage(args.seeds, args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    for label in labels:
        print(label)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
