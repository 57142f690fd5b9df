"""Does the predicted error track the real error? (``uncertainty.csv`` / ``uncertainty.md`` /
``uncertainty_vs_error.png`` of ``imcsr-live evaluate --compare``)

For every model with an uncertainty head, every test image and every channel, one row: the *predicted* relative
error of the per-frame confidence (:mod:`imcsr_live.model.confidence`: P99 of the calibrated std over the channel's
99.9th percentile) next to the *real* error of that image, the paper's NRMSE and 1 - PCC (after the paper's
percentile normalisation, :func:`imcsr_live.model.metrics.evaluate_image`). Across all images of all levels
together (in- and out-of-distribution worlds alike), the Spearman rank correlation per model and channel says
whether a larger predicted error means a larger real one (1 = the ranking is perfect; it ignores the scale, which
the calibration handles).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FIELDS = ["level", "image", "method", "structure", "predicted_error", "nrmse", "one_minus_pcc", "residual",
          "in_distribution"]  # fmt: skip


def spearman_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (method, structure): image count, Spearman rho (and p-value) of predicted error vs NRMSE and vs
    1 - PCC over all images of all levels; NaN with fewer than 3 finite pairs or constant values."""
    from scipy.stats import spearmanr

    out = []
    keys = list(dict.fromkeys((str(r["method"]), str(r["structure"])) for r in rows))
    for method, structure in keys:
        sel = [r for r in rows if r["method"] == method and r["structure"] == structure]
        pred = np.array([float(r["predicted_error"]) for r in sel])
        entry: dict[str, Any] = {"method": method, "structure": structure, "images": len(sel)}
        for real in ("nrmse", "one_minus_pcc"):
            y = np.array([float(r[real]) for r in sel])
            ok = np.isfinite(pred) & np.isfinite(y)
            rho, p = float("nan"), float("nan")
            if ok.sum() >= 3 and np.ptp(pred[ok]) > 0 and np.ptp(y[ok]) > 0:
                res = spearmanr(pred[ok], y[ok])
                rho, p = float(res.statistic), float(res.pvalue)
            entry[f"spearman_{real}"] = rho
            entry[f"p_{real}"] = p
        out.append(entry)
    return out


def format_spearman(table: list[dict[str, Any]], levels: Sequence[str]) -> str:
    lines = [
        "# Predicted vs real error per image",
        "",
        "Predicted error: P99 of the calibrated std over the channel's 99.9th percentile (per-frame confidence). "
        "Real error: the paper's NRMSE and 1 - PCC after percentile normalisation. Spearman rank correlation over "
        f"all images of all levels together ({', '.join(levels)}); 1 = a larger predicted error always means a "
        "larger real one.",
        "",
        "| method | structure | images | Spearman vs NRMSE (p) | Spearman vs 1 - PCC (p) |",
        "|---|---|---|---|---|",
    ]
    for e in table:
        lines.append(
            f"| {e['method']} | {e['structure']} | {e['images']} | {e['spearman_nrmse']:.3f} ({e['p_nrmse']:.2g}) | "
            f"{e['spearman_one_minus_pcc']:.3f} ({e['p_one_minus_pcc']:.2g}) |"
        )
    return "\n".join(lines) + "\n"


def write_uncertainty(
    rows: Sequence[dict[str, Any]],
    out: Path,
    calib: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = None,
    bins: int = 20,
) -> list[Path]:
    """Write ``uncertainty.csv`` (one row per image x channel x model), ``uncertainty.md`` (Spearman table) and
    ``uncertainty_vs_error.png`` (per channel: predicted vs real error, and the calibration curve from ``calib``,
    the (calibrated std, absolute error) pixel pairs keyed ``"METHOD STRUCTURE"``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "uncertainty.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    table = spearman_rows(rows)
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    md = out / "uncertainty.md"
    md.write_text(format_spearman(table, levels), encoding="utf-8")
    png = _plot(rows, table, calib or {}, out / "uncertainty_vs_error.png", bins)
    return [csv_path, md, png]


def _plot(
    rows: Sequence[dict[str, Any]],
    table: list[dict[str, Any]],
    calib: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    path: Path,
    bins: int,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    structures = list(dict.fromkeys(str(r["structure"]) for r in rows))
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    markers = "osD^v<>ph*"
    n = max(len(structures), 1)
    # Pixel pairs exist only where the images were separated here; a pooled table (cross_world) has none, and an
    # empty row of axes would read as a failed calibration.
    with_calibration = any(calib.values())
    # One row of scatter plots per method (several methods on one panel hide each other), plus the calibration row.
    n_rows = len(methods) + (1 if with_calibration else 0)
    fig, axes = plt.subplots(n_rows, n, figsize=(4.2 * n, 3.6 * n_rows), constrained_layout=True, squeeze=False)
    rho = {(e["method"], e["structure"]): e["spearman_nrmse"] for e in table}
    for mi, m in enumerate(methods):
        for j, s in enumerate(structures):
            ax = axes[mi, j]
            for li, lv in enumerate(levels):
                sel = [r for r in rows if r["structure"] == s and r["method"] == m and r["level"] == lv]
                if not sel:
                    continue
                ax.scatter(
                    [float(r["predicted_error"]) for r in sel],
                    [float(r["nrmse"]) for r in sel],
                    s=14,
                    marker=markers[li % len(markers)],
                    color=f"C{li % 10}",
                    alpha=0.8,
                    label=lv,
                )
            ax.set_title(f"{m}, {s}: Spearman {rho.get((m, s), float('nan')):.2f}", fontsize=9)
            ax.set_xlabel("predicted relative error")
            ax.set_ylabel("real NRMSE (paper)")
            if j == 0:  # the levels are the same in every panel: one legend per row
                ax.legend(fontsize=6)
    for j, s in enumerate(structures if with_calibration else []):
        ax = axes[-1, j]
        top = 0.0
        for label, chunks in calib.items():
            if not label.endswith(f" {s}") or not chunks:
                continue
            std = np.concatenate([c[0] for c in chunks]).astype(np.float64)
            err = np.concatenate([c[1] for c in chunks]).astype(np.float64)
            parts = [b for b in np.array_split(np.argsort(std), bins) if b.size]
            xs = [std[b].mean() for b in parts]
            ys = [np.sqrt(np.mean(err[b] ** 2)) for b in parts]
            ax.plot(xs, ys, "o-", ms=3, label=label.removesuffix(f" {s}"))
            top = max(top, *xs, *ys)
        if top > 0:
            ax.plot([0, top], [0, top], "k--", lw=0.8, label="ideal")
            ax.legend(fontsize=6)
        ax.set_title(f"{s}: calibration (pixels)", fontsize=9)
        ax.set_xlabel("predicted std (calibrated)")
        ax.set_ylabel("observed RMSE")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
