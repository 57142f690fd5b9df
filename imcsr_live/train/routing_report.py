"""Where each structure's signal goes (``routing.csv`` / ``routing.md`` / ``routing.png`` of
``imcsr-live evaluate --compare`` and ``tools/cross_world.py``).

For every method that outputs every structure, every test image: the routing shares of
:mod:`imcsr_live.model.routing` (of structure ``j``'s signal, the fraction each channel carries), one row per
(structure, channel). The tables give the median over a level's images; the figure shows them as matrices, one per
method, next to the copy baseline's (``1 / S`` everywhere: no separation at all).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.model.routing import routing_gains, routing_shares

FIELDS = ["level", "image", "method", "structure", "channel", "share"]


def routing_rows(
    level: str, image: int, method: str, outputs: np.ndarray, truth: np.ndarray, names: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per (truth structure, output channel) of one image: ``outputs`` ``(S, H, W)`` in ``names`` order."""
    shares = routing_shares(routing_gains(outputs, truth))
    return [
        {"level": level, "image": image, "method": method, "structure": s, "channel": c, "share": float(shares[k, j])}
        for j, s in enumerate(names)
        for k, c in enumerate(names)
    ]


def median_shares(rows: Sequence[dict[str, Any]], level: str, method: str, names: Sequence[str]) -> np.ndarray:
    """``(channels, structures)`` median shares of ``method`` over the images of ``level`` (NaN: none scored)."""
    values: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["level"] == level and r["method"] == method and np.isfinite(float(r["share"])):
            values.setdefault((str(r["structure"]), str(r["channel"])), []).append(float(r["share"]))
    out = np.full((len(names), len(names)), np.nan)
    for j, s in enumerate(names):
        for k, c in enumerate(names):
            if (s, c) in values:
                out[k, j] = float(np.median(values[s, c]))
    return out


def format_routing(rows: Sequence[dict[str, Any]], names: Sequence[str], title: str = "") -> str:
    """Markdown: per level, one row per method and structure with the median share in each channel."""
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    lines = [
        f"# Where each structure's signal goes{title}",
        "",
        "Of each structure's signal (row), the median fraction found in each output channel (column): least-squares "
        "gains of every channel on every structure's truth, both blurred to a common resolution, normalised per "
        f"structure. A perfect separation puts 1 on the diagonal; the input copied into every channel gives "
        f"{1 / len(names):.2f} everywhere.",
    ]
    for level in levels:
        lines += ["", f"## {level}", "", "| method | structure | " + " | ".join(f"in {c}" for c in names) + " |",
                  "|---|---|" + "---|" * len(names)]  # fmt: skip
        for method in methods:
            med = median_shares(rows, level, method, names)
            for j, s in enumerate(names):
                cells = ["n/a" if np.isnan(v) else f"{v:.2f}" for v in med[:, j]]
                lines.append(f"| {method} | {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_routing(panels: Sequence[tuple[str, np.ndarray]], names: Sequence[str], path: Path, title: str) -> Path:
    """One share matrix per panel (``(label, (channels, structures))``), rows = structures, columns = channels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(n, 4)
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(2.9 * cols, 2.9 * rows_ + 0.4), squeeze=False)
    for ax, (label, med) in zip(axes.flat, panels, strict=False):
        ax.imshow(med.T, vmin=0, vmax=1, cmap="viridis")
        for j in range(len(names)):
            for k in range(len(names)):
                v = med[k, j]
                ax.text(k, j, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if v > 0.6 else "white")  # fmt: skip
        ax.set_xticks(range(len(names)), list(names), fontsize=7)
        ax.set_yticks(range(len(names)), list(names), fontsize=7)
        ax.set_xlabel("found in channel", fontsize=7)
        ax.set_ylabel("structure (truth)", fontsize=7)
        ax.set_title(label, fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_routing(
    rows: Sequence[dict[str, Any]], out: Path, names: Sequence[str], shown: Sequence[str] | None = None
) -> list[Path]:
    """``routing.csv`` (per image), ``routing.md`` (medians per level) and ``routing.png`` (the last level's
    matrices, one per method of ``shown``, default all: leave out the copy baseline, ``1 / S`` by construction)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "routing.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    md_path = out / "routing.md"
    md_path.write_text(format_routing(rows, names), encoding="utf-8")
    level = str(rows[-1]["level"])
    methods = [m for m in dict.fromkeys(str(r["method"]) for r in rows) if shown is None or m in shown]
    panels = [(m, median_shares(rows, level, m, names)) for m in methods]
    png = plot_routing(panels, names, out / "routing.png", f"Where each structure's signal goes ({level}, median)")
    return [md_path, csv_path, png]
