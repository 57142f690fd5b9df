"""Ship a trained checkpoint as an app model: copy it under a new name, rewrite its card, verify it loads.

    python tools/ship_model.py runs/cpu_demo_tc_pipeline/imcsr_cpu_demo_tc_pipeline --name imcsr_cpu_demo_tc \
        --metrics runs/cpu_demo_tc_pipeline/report/metrics.csv --method Pipeline-TC \
        --note "fine-tuned on pipeline reconstructions"

The card keeps the trained one's architecture, structures, normalisation and training block; it gets the new
name, weights file and SHA-256, and, when a model of that name is already shipped, a ``replaces`` entry
(its SHA-256, iterations and training data) so the lineage of a fine-tuned model stays readable; shipping the
same weights again (e.g. with new metrics) keeps that entry.
``--metrics`` adds the per-level, per-structure medians of one method of an ``evaluate --compare`` run; repeat it
for several runs (e.g. the worlds of ``tools/cross_world.py``: their level names differ, so they merge).
A model trained on synthetic data ships only with confidence thresholds fitted on whole frames (the end of a
complete training run does it; a run stopped in slices needs ``tools/refit_confidence.py ... --write``), unless
``--keep-thresholds``: thresholds from validation patches leave the live view's verdict wrong.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.model.card import separation_worlds  # noqa: E402
from imcsr_live.train.checkpoint import checkpoint_paths, load_checkpoint, read_card, sha256_file  # noqa: E402

METRICS = ("nrmse", "ssim", "pcc")


def median_metrics(metrics_csv: Path, method: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{level: {structure: {metric: median}}}`` of one method in an ``evaluate --compare`` metrics.csv."""
    values: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    with open(metrics_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["method"] == method:
                values[(row["level"], row["structure"])].append(row)
    if not values:
        raise SystemExit(f"{metrics_csv}: no rows for method {method!r}")
    out: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (level, structure), rows in values.items():
        out[level][structure] = {m: round(statistics.median(float(r[m]) for r in rows), 4) for m in METRICS}
        out[level][structure]["n"] = len(rows)
    return dict(out)


def unfit_thresholds(src: Path, card: dict) -> str | None:
    """Why a card's confidence thresholds are not fit to ship (fitted on validation patches although its
    separation was trained on a synthetic world whose whole frames can be drawn), else None."""
    training = card.get("training", {})
    data = training.get("separation_data") or training.get("config", {}).get("data")
    worlds = separation_worlds(data) if data else []
    source = str((card.get("confidence_reference") or {}).get("source", ""))
    if not worlds or source.startswith("whole frames"):
        return None
    return (f"{src}: its confidence thresholds come from {source or 'no fit'}, not from whole frames; run "
            f"python tools/refit_confidence.py {src} --world {'+'.join(worlds)} --write first "
            "(or pass --keep-thresholds)")  # fmt: skip


def ship(
    src: Path, name: str, dest: Path, metrics: dict | None, note: str | None, *, keep_thresholds: bool = False
) -> Path:
    src_weights, _ = checkpoint_paths(src)
    card = read_card(src)
    problem = None if keep_thresholds else unfit_thresholds(src, card)
    if problem:
        raise SystemExit(problem)
    weights, card_path = checkpoint_paths(dest / name)
    if card_path.is_file():
        old = read_card(dest / name)
        if old["weights_sha256"] == sha256_file(src_weights):  # the same weights again: only the card changes
            if "replaces" in old.get("training", {}):
                card["training"]["replaces"] = old["training"]["replaces"]
        else:
            card["training"]["replaces"] = {
                "weights_sha256": old["weights_sha256"],
                "created": old.get("created"),
                "iterations": old.get("training", {}).get("iterations"),
                "data": old.get("training", {}).get("data"),
            }
    if note:
        card["training"]["note"] = note
    if metrics is not None:
        card.setdefault("metrics", {})["evaluation_medians"] = metrics
    dest.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(weights.name + ".tmp")
    shutil.copyfile(src_weights, tmp)
    tmp.replace(weights)
    card |= {"name": name, "weights_file": weights.name, "weights_sha256": sha256_file(weights)}
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    load_checkpoint(dest / name)  # the shipped pair must load (hash, architecture)
    return card_path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="trained checkpoint stem (DIR/NAME)")
    ap.add_argument("--name", required=True, help="name to ship it under")
    ap.add_argument("--dest", type=Path, default=REPO / "imcsr_live" / "weights")
    ap.add_argument(
        "--metrics", type=Path, action="append", default=None, help="metrics.csv of an evaluate --compare run (repeat)"
    )
    ap.add_argument("--method", default=None, help="the method label of this model in --metrics")
    ap.add_argument("--note", default=None, help="one line on how this model was made (kept in the card)")
    ap.add_argument("--keep-thresholds", action="store_true",
                    help="ship confidence thresholds fitted on validation patches as they are")  # fmt: skip
    args = ap.parse_args(argv)
    if (args.metrics is None) != (args.method is None):
        raise SystemExit("--metrics and --method go together")
    metrics = None
    for path in args.metrics or []:
        metrics = {**(metrics or {}), **median_metrics(path, args.method)}
    print(ship(args.checkpoint, args.name, args.dest, metrics, args.note, keep_thresholds=args.keep_thresholds))


if __name__ == "__main__":
    main()
