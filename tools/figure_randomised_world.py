"""Picture of the domain-randomised training world: one example cell per morphology family and structure.

    python tools/figure_randomised_world.py [-o docs/worlds/randomised.png] [--size 512]

Row per structure (its families side by side, the structure's own channel), a row of whole cells
(three-colour composites: microtubules green, ER magenta, lysosomes cyan, as in the live view), and a last row
with one "open" ER network drawn slack (tension 0) and taut (tension 1).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

STRUCTURES = ["Microtubules", "ER", "Lysosomes"]
COLOURS = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])


def _stretch(img: np.ndarray) -> np.ndarray:
    hi = float(np.percentile(img, 99.7)) or 1.0
    return np.clip(img / hi, 0.0, 1.0) ** 0.8


def composite(truth: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> RGB ``(H, W, 3)``, each channel stretched on its own."""
    rgb = sum(_stretch(c)[..., None] * COLOURS[i] for i, c in enumerate(truth))
    return np.clip(rgb, 0.0, 1.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/worlds/randomised.png"))
    ap.add_argument("--size", type=int, default=512, help="SR pixels per side (31.3 nm)")
    ap.add_argument("--cells", type=int, default=4, help="whole cells in the last row")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imcsr_live.synth.randomised import (
        ER_FAMILIES,
        LYSOSOME_FAMILIES,
        MICROTUBULE_FAMILIES,
        RandomisedSpecimen,
        StyledER,
        family_example,
    )
    from imcsr_live.synth.render import Grid

    px = 0.0313
    shape = (args.size, args.size)
    field = Grid(shape, px).field
    rows = [("microtubules", MICROTUBULE_FAMILIES), ("er", ER_FAMILIES), ("lysosomes", LYSOSOME_FAMILIES)]
    ncol = max(max(len(f) for _, f in rows), args.cells)
    fig, axes = plt.subplots(5, ncol, figsize=(3 * ncol, 15.5), facecolor="black")
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, (kind, families) in enumerate(rows):
        for c, family in enumerate(families):
            seed = family_example(kind, family, field)
            spec = RandomisedSpecimen(STRUCTURES, shape, px, seed)
            ch = spec.kinds.index(kind)
            axes[r, c].imshow(_stretch(spec.render()[ch]), cmap="gray")
            axes[r, c].set_title(f"{STRUCTURES[ch]}: {family} (seed {seed})", color="white", fontsize=9)
    for c in range(args.cells):
        spec = RandomisedSpecimen(STRUCTURES, shape, px, 100 + c)
        axes[3, c].imshow(composite(spec.render()))
        fam = spec.families
        axes[3, c].set_title(
            f"cell {100 + c}: {fam['microtubules']} / {fam['er']} / {fam['lysosomes']}", color="white", fontsize=9
        )
    seed = family_example("er", "open", field)
    er_params = RandomisedSpecimen(STRUCTURES, shape, px, seed).cell.params.er
    for c, tension in enumerate((0.0, 1.0)):
        er = StyledER(field, replace(er_params, tension=tension, junction_drift_um=0.0), np.random.default_rng(seed))
        axes[4, c].imshow(_stretch(er.render(Grid(shape, px))), cmap="gray")
        axes[4, c].set_title(f"ER: open (seed {seed}), tension {tension:g}", color="white", fontsize=9)
    fig.suptitle(
        f"Randomised training world, {args.size * px:.0f} um fields (truth on the SR grid)", color="white", fontsize=12
    )
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # room for the title
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70, facecolor="black")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
