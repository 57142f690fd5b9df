"""Report files for ``imcsr-live evaluate``: metric tables (CSV + Markdown), Tukey box plots, example montage."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.train.eval_report import METRICS, EvalReport

METHODS = ("IMC-SR", "baseline")


def _groups(report: EvalReport) -> tuple[list[str], list[str]]:
    levels = list(dict.fromkeys(str(r["level"]) for r in report.rows))
    structures = list(dict.fromkeys(str(r["structure"]) for r in report.rows))
    return levels, structures


def _methods(report: EvalReport) -> list[str]:
    """Methods in the order they first appear (the order they were given)."""
    return list(dict.fromkeys(str(r["method"]) for r in report.rows))


# Box colours of compared methods (the baseline is always grey).
_PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def method_colours(methods: list[str]) -> dict[str, str]:
    other = [m for m in methods if m != "baseline"]
    colours = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(other)}
    colours["baseline"] = "#BBBBBB"
    return colours


def _values(report: EvalReport, level: str, structure: str, method: str, metric: str) -> np.ndarray:
    return np.array(
        [
            float(r[metric])
            for r in report.rows
            if r["level"] == level and r["structure"] == structure and r["method"] == method
        ]
    )


def write_tables(
    report: EvalReport, out: Path, card: dict[str, Any], methods: list[str] | None = None, note: str = ""
) -> list[Path]:
    """``metrics.csv`` (every image) and ``metrics.md`` (median [IQR] per structure, level and method)."""
    methods = methods or list(METHODS)
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
        *([note] if note else []),
        "",
        "| level | structure | n | " + " | ".join(f"{m.upper()} {k}" for m in METRICS for k in methods) + " |",
        "|---|---|---|" + "---|" * (len(METRICS) * len(methods)),
    ]
    for level in levels:
        for s in structures:
            cells = []
            n = 0
            for metric in METRICS:
                for method in methods:
                    v = _values(report, level, s, method, metric)
                    n = max(n, v.size)
                    q = np.nanpercentile(v, [25, 50, 75]) if v.size else [np.nan] * 3
                    cells.append(f"{q[1]:.3f} [{q[0]:.3f}-{q[2]:.3f}]")
            lines.append(f"| {level} | {s} | {n} | " + " | ".join(cells) + " |")
    md = out / "metrics.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md]


def write_boxplots(report: EvalReport, path: Path, methods: list[str] | None = None) -> Path:
    """One panel per metric; boxes per structure x level, methods side by side (Tukey, whiskers 1.5 IQR)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    levels, structures = _groups(report)
    methods = methods or list(METHODS)
    groups = [(lv, s) for s in structures for lv in levels]
    step = len(methods) + 1  # one empty slot between groups
    wide = len(groups) * step > 12
    fig, axes = plt.subplots(
        3 if wide else 1,
        1 if wide else 3,
        figsize=(max(9.0, 0.32 * len(groups) * step), 11.0) if wide else (max(9.0, 1.6 * len(groups)), 4.5),
        constrained_layout=True,
    )
    colors = method_colours(methods)
    for ax, metric in zip(axes, METRICS, strict=True):
        data, pos, cols = [], [], []
        for g, (lv, s) in enumerate(groups):
            for m, method in enumerate(methods):
                v = _values(report, lv, s, method, metric)
                data.append(v[np.isfinite(v)])
                pos.append(g * step + m)
                cols.append(colors[method])
        bp = ax.boxplot(data, positions=pos, whis=1.5, widths=0.8, patch_artist=True, showfliers=True)
        for patch, c in zip(bp["boxes"], cols, strict=True):
            patch.set_facecolor(c)
        ax.set_xticks([g * step + (len(methods) - 1) / 2 for g in range(len(groups))])
        ax.set_xticklabels([f"{s}\n{lv}" for lv, s in groups], fontsize=7, rotation=0 if wide else 45,
                           ha="center" if wide else "right")  # fmt: skip
        ax.set_title(metric.upper())
    axes[0].legend([plt.Rectangle((0, 0), 1, 1, fc=colors[m]) for m in methods], methods, fontsize=8)
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


def write_compare_montage(example: dict[str, Any], names: list[str], colours: dict[str, str], path: Path) -> Path:
    """One test image: input and composites on top, then one row per structure: ground truth, each method."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    outs: dict[str, dict[str, np.ndarray]] = example["outputs"]
    labels = list(outs)
    targets = example["targets"]
    ncol = len(labels) + 1
    fig, axes = plt.subplots(len(names) + 1, ncol, figsize=(2.4 * ncol, 2.4 * (len(names) + 1)),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    cols = [colours.get(n, "#FFFFFF") for n in names]
    axes[0, 0].imshow(example["input"], cmap="gray")
    axes[0, 0].set_title("input (SR)", fontsize=9)
    for j, label in enumerate(labels, start=1):
        have = [n for n in names if n in outs[label]]
        comp = np.stack([outs[label].get(n, np.zeros_like(targets[0])) for n in names])
        axes[0, j].imshow(composite(comp, cols))
        axes[0, j].set_title(f"{label} composite" + ("" if len(have) == len(names) else " (partial)"), fontsize=9)
    for i, name in enumerate(names, start=1):
        gt = targets[i - 1]
        axes[i, 0].imshow(gt, cmap="gray", vmin=0, vmax=max(np.percentile(gt, 99.9), 1e-9))
        axes[i, 0].set_title(f"{name} GT", fontsize=9)
        for j, label in enumerate(labels, start=1):
            img = outs[label].get(name)
            if img is None:
                axes[i, j].axis("off")
                continue
            axes[i, j].imshow(img, cmap="gray", vmin=0, vmax=max(np.percentile(img, 99.9), 1e-9))
            axes[i, j].set_title(f"{name} {label}", fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Same test image for every method - {example.get('level', '')}")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_flicker(rows: list[dict[str, Any]], out: Path, methods: list[str], timepoints: int) -> list[Path]:
    """``flicker.csv`` (every scene) and ``flicker.md`` (median over scenes per level x structure x method, for
    both references: the channel's truth -- what the claims use -- and the channel's own mean)."""
    csv_path = out / "flicker.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["level", "scene", "structure", "method", "flicker", "flicker_truth"])
        w.writeheader()
        w.writerows(rows)
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    structures = list(dict.fromkeys(str(r["structure"]) for r in rows))
    scenes = len({r["scene"] for r in rows})

    def med(key: str, level: str, s: str, m: str) -> float:
        v = [float(r[key]) for r in rows if r["level"] == level and r["structure"] == s and r["method"] == m]
        return float(np.nanmedian(v)) if v else float("nan")

    def table(key: str) -> list[str]:
        lines = ["| level | structure | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
        for level in levels:
            for s in structures:
                lines.append(f"| {level} | {s} | " + " | ".join(f"{med(key, level, s, m):.4f}" for m in methods) + " |")
        return lines

    lines = [
        "# Temporal stability (flicker)",
        "",
        f"Static specimen, {timepoints} timepoints with independent noise per frame, {scenes} scenes per level. "
        "Flicker of a channel = mean over consecutive frame pairs of mean |y[t+1] - y[t]| (0 = perfectly stable; "
        "the truth is static, so its flicker is 0), divided by the mean of the channel's truth in the same units "
        "(a reference that does not depend on the model). Median over scenes; baseline = the input itself "
        "(divided by the mean of the summed truth).",
        "",
        *table("flicker_truth"),
        "",
        "The same change divided by the channel's own mean intensity instead (a model that puts less false mass "
        "into a sparse channel scores higher here for the same absolute change):",
        "",
        *table("flicker"),
    ]
    md = out / "flicker.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [csv_path, md]


def write_calibration(pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]], path: Path, bins: int = 20) -> Path:
    """Calibration curves: observed RMSE vs (calibrated) predicted std in quantile bins; the diagonal is ideal."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 5.0), constrained_layout=True)
    top = 0.0
    for label, chunks in pairs.items():
        std = np.concatenate([c[0] for c in chunks]).astype(np.float64)
        err = np.concatenate([c[1] for c in chunks]).astype(np.float64)
        order = np.argsort(std)
        xs = [std[b].mean() for b in np.array_split(order, bins) if b.size]
        ys = [np.sqrt(np.mean(err[b] ** 2)) for b in np.array_split(order, bins) if b.size]
        ax.plot(xs, ys, "o-", ms=3, label=label)
        top = max(top, *xs, *ys)
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("predicted std (calibrated)")
    ax.set_ylabel("observed RMSE")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
