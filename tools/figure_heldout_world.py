"""Figure of the held-out synthetic world: a few cells, each structure alone and as a 3-colour composite.

    python tools/figure_heldout_world.py [--seeds 0,5,8,12] [--size 512] [--out docs/worlds/heldout.png]

One row per seed: microtubules, ER and lysosomes (each scaled to its own 99.8th percentile), then the composite
(microtubules green, ER magenta, lysosomes cyan, on black). Truth grid: 31.3 nm pixels (``--size 512`` = a 16 um
field). Prints each cell's drawn parameters and the render time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.synth.heldout import HeldoutSpecimen  # noqa: E402

PIXEL_UM = 0.0313
STRUCTURES = ["Microtubules", "ER", "Lysosomes"]
# Composite colours (R, G, B) per channel: microtubules green, ER magenta, lysosomes cyan.
COLOURS = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32)


def scaled(channel: np.ndarray) -> np.ndarray:
    """``channel`` / its 99.8th percentile, clipped to [0, 1] (an empty channel stays black)."""
    top = float(np.percentile(channel, 99.8))
    return np.clip(channel / top, 0.0, 1.0) if top > 0 else np.zeros_like(channel)


def composite(truth: np.ndarray) -> np.ndarray:
    """RGB ``(H, W, 3)`` of the scaled channels in their colours, added and clipped."""
    rgb = sum(scaled(c)[..., None] * colour for c, colour in zip(truth, COLOURS, strict=True))
    return np.clip(np.asarray(rgb), 0.0, 1.0)


def describe(seed: int, cell: HeldoutSpecimen, seconds: float) -> str:
    """One line of the cell's drawn parameters."""
    mts, er, lyso = cell.microtubules, cell.er, cell.lysosomes
    assert mts is not None and er is not None and lyso is not None
    ys = (np.arange(cell.shape[0]) + 0.5) * cell.pixel_size_um
    xs = (np.arange(cell.shape[1]) + 0.5) * cell.pixel_size_um
    edge = "edge in field" if (cell.cell.depth(ys[:, None], xs[None]) < 0).any() else "no edge"
    return (
        f"seed {seed}: {mts.count_in_field()} microtubules, ER mesh {er.mesh_um:.2f} um "
        f"(perinuclear sheets: {'yes' if er.perinuclear else 'no'}), {lyso.count_in_field(cell.cytoskeleton_drift, 0)} "
        f"lysosomes ({int((lyso.shell_um > 0).sum())} rings), {edge}; {seconds:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,5,8,12", help="comma-separated cell seeds, one row each")
    ap.add_argument("--size", type=int, default=512, help="truth grid side in 31.3 nm pixels")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "worlds" / "heldout.png")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    fig, axes = plt.subplots(len(seeds), 4, figsize=(16, 4 * len(seeds)), squeeze=False, facecolor="black")
    for row, seed in zip(axes, seeds, strict=True):
        started = time.perf_counter()
        cell = HeldoutSpecimen(STRUCTURES, (args.size, args.size), PIXEL_UM, np.random.default_rng(seed))
        truth = cell.render()
        print(describe(seed, cell, time.perf_counter() - started))
        panels = [*(scaled(c) for c in truth), composite(truth)]
        titles = [*STRUCTURES, f"seed {seed}: composite"]
        for ax, panel, title in zip(row, panels, titles, strict=True):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(title, color="white", fontsize=11)
            ax.axis("off")
    field_um = args.size * PIXEL_UM
    fig.suptitle(
        f"Held-out world (evaluation only): {field_um:.0f} x {field_um:.0f} um fields, 31.3 nm truth pixels",
        color="white",
        fontsize=13,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.97))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=60, facecolor="black")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
