"""Report files for ``imcsr-live evaluate``: metric tables (CSV + Markdown), Tukey box plots, example montage."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from imcsr_live.train.evaluate import EvalReport

METRICS = ("nrmse", "ssim", "pcc")
METHODS = ("IMC-SR", "baseline")


def _groups(report: EvalReport) -> tuple[list[str], list[str]]:
    levels = list(dict.fromkeys(str(r["level"]) for r in report.rows))
    structures = list(dict.fromkeys(str(r["structure"]) for r in report.rows))
    return levels, structures


def _values(report: EvalReport, level: str, structure: str, method: str, metric: str) -> np.ndarray:
    return np.array(
        [
            float(r[metric])
            for r in report.rows
            if r["level"] == level and r["structure"] == structure and r["method"] == method
        ]
    )


def write_tables(report: EvalReport, out: Path, card: dict[str, Any]) -> list[Path]:
    """``metrics.csv`` (every image) and ``metrics.md`` (median [IQR] per structure, level and method)."""
    csv_path = out / "metrics.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["level", "image", "structure", "method", *METRICS])
        w.writeheader()
        w.writerows(report.rows)
    levels, structures = _groups(report)
    lines = [
        f"# Evaluation of `{card.get('name', '?')}`",
        "",
        "Paper metrics (percentile normalisation 0.1/99.9 %, least-squares linear fit; NRMSE lower is better, "
        "SSIM and PCC higher). Baseline = the input copied to every channel. Median [25th-75th percentile].",
        "",
        "| level | structure | n | NRMSE IMC-SR | NRMSE baseline | SSIM IMC-SR | SSIM baseline "
        "| PCC IMC-SR | PCC baseline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level in levels:
        for s in structures:
            cells = []
            n = 0
            for metric in METRICS:
                for method in METHODS:
                    v = _values(report, level, s, method, metric)
                    n = max(n, v.size)
                    q = np.nanpercentile(v, [25, 50, 75]) if v.size else [np.nan] * 3
                    cells.append(f"{q[1]:.3f} [{q[0]:.3f}-{q[2]:.3f}]")
            lines.append(f"| {level} | {s} | {n} | " + " | ".join(cells) + " |")
    md = out / "metrics.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md]


def write_boxplots(report: EvalReport, path: Path) -> Path:
    """One panel per metric; boxes per structure x level, IMC-SR next to the baseline (Tukey, whiskers 1.5 IQR)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    levels, structures = _groups(report)
    groups = [(lv, s) for s in structures for lv in levels]
    fig, axes = plt.subplots(1, 3, figsize=(max(9.0, 1.6 * len(groups)), 4.5), constrained_layout=True)
    colors = {"IMC-SR": "#4C72B0", "baseline": "#BBBBBB"}
    for ax, metric in zip(axes, METRICS, strict=True):
        data, pos, cols = [], [], []
        for g, (lv, s) in enumerate(groups):
            for m, method in enumerate(METHODS):
                v = _values(report, lv, s, method, metric)
                data.append(v[np.isfinite(v)])
                pos.append(g * 3 + m)
                cols.append(colors[method])
        bp = ax.boxplot(data, positions=pos, whis=1.5, widths=0.8, patch_artist=True, showfliers=True)
        for patch, c in zip(bp["boxes"], cols, strict=True):
            patch.set_facecolor(c)
        ax.set_xticks([g * 3 + 0.5 for g in range(len(groups))])
        ax.set_xticklabels([f"{s}\n{lv}" for lv, s in groups], fontsize=7, rotation=45, ha="right")
        ax.set_title(metric.upper())
    axes[0].legend([plt.Rectangle((0, 0), 1, 1, fc=colors[m]) for m in METHODS], METHODS, fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rgb(hex_colour: str) -> np.ndarray:
    h = hex_colour.lstrip("#")
    return np.array([int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)])


def composite(channels: np.ndarray, colours: list[str]) -> np.ndarray:
    """Additive colour composite of ``(C, H, W)`` images, each scaled to its 99.9th percentile: ``(H, W, 3)``."""
    out = np.zeros((*channels.shape[1:], 3))
    for img, col in zip(channels, colours, strict=True):
        hi = np.percentile(img, 99.9)
        out += np.clip(img / hi if hi > 0 else img, 0, 1)[..., None] * _rgb(col)
    return np.clip(out, 0, 1)


def write_montage(
    inp: np.ndarray,
    targets: np.ndarray,
    pred: np.ndarray,
    all_names: list[str],
    out_names: list[str],
    colours: dict[str, str],
    path: Path,
    title: str = "",
) -> Path:
    """Input, then per output channel ground truth / output, then the two composites."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(out_names)
    fig, axes = plt.subplots(2, n + 2, figsize=(2.6 * (n + 2), 5.4), constrained_layout=True)
    gts = np.stack([targets[all_names.index(name)] for name in out_names])
    cols = [colours.get(name, "#FFFFFF") for name in out_names]
    axes[0, 0].imshow(inp, cmap="gray")
    axes[0, 0].set_title("input (SR)")
    axes[1, 0].axis("off")
    for c, name in enumerate(out_names):
        for row, (img, what) in enumerate(((gts[c], "GT"), (pred[c], "IMC-SR"))):
            axes[row, c + 1].imshow(img, cmap="gray", vmin=0, vmax=max(np.percentile(img, 99.9), 1e-9))
            axes[row, c + 1].set_title(f"{name} {what}", fontsize=9)
    axes[0, n + 1].imshow(composite(gts, cols))
    axes[0, n + 1].set_title("GT composite")
    axes[1, n + 1].imshow(composite(pred, cols))
    axes[1, n + 1].set_title("IMC-SR composite")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
