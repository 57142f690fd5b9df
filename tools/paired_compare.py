"""Paired comparison of two methods in an `imcsr-live evaluate --compare` metrics.csv, image by image.

Medians of two methods can differ while neither is better on most images (or the other way round). This pairs
the two methods' scores on the same test image (same level, image and structure) and reports, per level and
structure: both medians, on how many images A is better than B, and the median paired difference A - B:

    python tools/paired_compare.py docs/reproduction/metrics.csv All-wide Single --metric nrmse

NRMSE: lower is better; SSIM and PCC: higher is better.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

LOWER_IS_BETTER = {"nrmse": True, "ssim": False, "pcc": False}


def paired_table(rows: list[dict[str, str]], a: str, b: str, metric: str = "nrmse") -> str:
    """Markdown table of method ``a`` against ``b`` on ``metric``, one line per level x structure."""
    if metric not in LOWER_IS_BETTER:
        raise SystemExit(f"unknown metric {metric!r}; use one of {', '.join(LOWER_IS_BETTER)}")
    methods = {r["method"] for r in rows}
    for m in (a, b):
        if m not in methods:
            raise SystemExit(f"method {m!r} is not in the metrics file (it has: {', '.join(sorted(methods))})")
    score = {(r["level"], r["image"], r["structure"], r["method"]): float(r[metric]) for r in rows}
    keys = list(dict.fromkeys((r["level"], r["structure"]) for r in rows))
    lower = LOWER_IS_BETTER[metric]
    lines = [
        f"| level | structure | n | {metric.upper()} {a} | {metric.upper()} {b} | {a} better (images) | "
        f"median paired difference {a} - {b} |",
        "|---|---|---|---|---|---|---|",
    ]
    for level, s in keys:
        images = sorted({k[1] for k in score if k[0] == level and k[2] == s})
        pairs = [
            (score[(level, i, s, a)], score[(level, i, s, b)])
            for i in images
            if (level, i, s, a) in score and (level, i, s, b) in score
        ]
        if not pairs:
            continue
        va, vb = np.array(pairs).T
        better = int(np.sum(va < vb) if lower else np.sum(va > vb))
        lines.append(
            f"| {level} | {s} | {len(pairs)} | {np.median(va):.4f} | {np.median(vb):.4f} | {better} / {len(pairs)} | "
            f"{np.median(va - vb):+.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", type=Path, help="metrics.csv written by imcsr-live evaluate --compare")
    ap.add_argument("a", help="method label A")
    ap.add_argument("b", help="method label B")
    ap.add_argument("--metric", default="nrmse", choices=sorted(LOWER_IS_BETTER))
    args = ap.parse_args()
    if not args.metrics.is_file():
        raise SystemExit(f"{args.metrics} not found; pass the metrics.csv of an evaluate --compare report")
    with open(args.metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    print(paired_table(rows, args.a, args.b, args.metric), end="")


if __name__ == "__main__":
    main()
