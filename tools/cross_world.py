"""Cross-world evaluation: every model on every synthetic world, next to the copy-to-every-channel baseline.

A model scored on the world it was trained on proves little about separation: it may have learned that world's
way of drawing cells. This tool evaluates every model on the pipeline test images (synthetic microscope of the
world + the real reconstructor) of every world given, and marks each row "in-world" (the world the model was
trained on) or "unseen". Separation claims belong to the unseen rows, read next to the baseline = the input
copied into every channel (what you see without separation):

    python tools/cross_world.py --model A=runs/a/imcsr_a --model B=runs/b/imcsr_b --trained-on B=randomised \\
        --worlds default,randomised,independent,heldout --images 8 --size 256 --workers 12 --out runs/cross_world

Per world, all models go through one ``evaluate --compare`` run (:func:`imcsr_live.train.compare.compare_methods`)
so that they and the baseline see the same images; its full report (metrics.csv/.md, box plots, montage) is kept
in ``OUT/<world>/``. World "default" = ``--data synthetic --pipeline`` (its "pipeline <p> photons" levels; the fast
Wiener-approximation levels it adds are left out of the table), any other world = ``--data <world>`` (test cells
seeded from 900_000_000 on, disjoint from every training seed). The world a model was trained on: ``--trained-on
LABEL=WORLD[+WORLD]``, else its model card's ``training.config.data.world`` (plus "+default" when
``default_fraction`` mixed default-world cells in, "+WORLD" for each world in ``mix``: those rows are then
in-world), else "default".

Writes ``OUT/cross_world.md`` and ``OUT/cross_world.csv``: one row per model x world; per photon level and
structure the model's median PCC and the baseline's median PCC on the same images (n/a: no image of that
structure, e.g. no lysosome in a small field); "beats baseline on every structure" = yes when the model's median
PCC is above the baseline's for every structure at every photon level (n/a counts as no).
All models must be trained on one structure list (the rig's, ``hardware_configs/simulated.toml``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imcsr_live.errors import ImcsrError, InputDataError  # noqa: E402
from imcsr_live.model.card import separation_data, separation_worlds  # noqa: E402
from imcsr_live.model.checkpoint import read_card  # noqa: E402
from imcsr_live.synth.world import WORLDS  # noqa: E402
from imcsr_live.train.compare import BASELINE, CompareReport, compare_methods, parse_method_specs  # noqa: E402
from imcsr_live.train.evaluate import check_world_available, pipeline_level_name  # noqa: E402
from imcsr_live.train.routing_report import median_shares, plot_routing  # noqa: E402


class ModelSpec(NamedTuple):
    """One model of the table: its label, checkpoint stem(s) and the world it was trained on."""

    label: str
    checkpoints: list[str]
    trained_on: str

    @property
    def spec(self) -> str:
        """``LABEL=NAME[,NAME...]`` as ``evaluate --compare`` takes it."""
        return f"{self.label}={','.join(self.checkpoints)}"


def card_world(stem: str) -> str:
    """The world(s) a checkpoint's separation was trained on (:func:`imcsr_live.model.card.separation_data`):
    ``world``, else "default"; ``world+default+...`` when ``default_fraction`` / ``mix`` mixed other worlds' cells
    in."""
    data = separation_data(read_card(stem))
    return "+".join(separation_worlds(data)) or "default"  # a user's data counts as the default world


def trained_worlds(trained_on: str) -> list[str]:
    """``"randomised+default"`` -> ``["randomised", "default"]``."""
    return trained_on.split("+")


def parse_trained_on(specs: list[str], labels: list[str]) -> dict[str, str]:
    """``["B=randomised+default"]`` -> ``{"B": "randomised+default"}`` (labels must be models, worlds known)."""
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, worlds = spec.partition("=")
        if not sep or not label or not worlds:
            raise InputDataError(f"--trained-on {spec!r}: expected LABEL=WORLD[+WORLD], e.g. B=randomised+default")
        if label not in labels:
            raise InputDataError(f"--trained-on {spec!r}: no --model labelled {label!r} (models: {', '.join(labels)})")
        if any(w not in WORLDS for w in trained_worlds(worlds)):
            raise InputDataError(f"--trained-on {spec!r}: unknown world; choose from {', '.join(WORLDS)}, joined by +")
        out[label] = worlds
    return out


def parse_worlds(text: str) -> list[str]:
    """``"default,independent"`` -> the world names (known, each once)."""
    worlds = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in worlds if w not in WORLDS]
    if unknown or not worlds:
        raise InputDataError(f"--worlds {text!r}: choose from {', '.join(WORLDS)} (comma-separated)")
    return list(dict.fromkeys(worlds))


def parse_photons(values: list[str] | None) -> list[float]:
    """``--photons 100,300 --photons 1000`` -> ``[100.0, 300.0, 1000.0]`` (default 100, 300, 1000)."""
    if not values:
        return [100.0, 300.0, 1000.0]
    try:
        photons = [float(p) for v in values for p in v.split(",") if p.strip()]
    except ValueError:
        raise InputDataError(f"--photons {values}: expected numbers, e.g. 100,300,1000") from None
    if not photons or any(p <= 0 for p in photons):
        raise InputDataError(f"--photons {values}: expected positive photon counts, e.g. 100,300,1000")
    return photons


def load_models(model_specs: list[str], trained_on_specs: list[str]) -> list[ModelSpec]:
    """The models to evaluate, each with the world it was trained on."""
    parsed = parse_method_specs(model_specs)
    given = parse_trained_on(trained_on_specs, [label for label, _ in parsed])
    return [ModelSpec(label, paths, given.get(label) or card_world(paths[0])) for label, paths in parsed]


def world_data(world: str) -> tuple[str, bool]:
    """``(data, pipeline)`` of ``compare_methods`` for a world's pipeline test levels."""
    return ("synthetic", True) if world == "default" else (world, False)


def median(values: list[float]) -> float:
    """Median ignoring NaN (NaN when nothing is left)."""
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return float("nan")
    mid = len(finite) // 2
    return finite[mid] if len(finite) % 2 else 0.5 * (finite[mid - 1] + finite[mid])


def median_pcc(rows: list[dict[str, object]], level: str, structure: str, method: str) -> float:
    """Median PCC of ``method`` over the images of one level and structure."""
    return median(
        [
            float(r["pcc"])  # type: ignore[arg-type]
            for r in rows
            if r["level"] == level and r["structure"] == structure and r["method"] == method
        ]
    )


def summarise(
    models: list[ModelSpec], world: str, photons: list[float], rows: list[dict[str, object]], structures: list[str]
) -> list[dict[str, object]]:
    """One table row per model on ``world`` from the per-image metric rows of its compare run."""
    out = []
    for m in models:
        row: dict[str, object] = {
            "model": m.label,
            "checkpoint": ",".join(Path(c).name for c in m.checkpoints),
            "trained_on": m.trained_on,
            "world": world,
            "seen": "in-world" if world in trained_worlds(m.trained_on) else "unseen",
        }
        beats = True
        for p in photons:
            level = pipeline_level_name(world, p)
            for s in structures:
                model_pcc = median_pcc(rows, level, s, m.label)
                base_pcc = median_pcc(rows, level, s, BASELINE)
                row[f"pcc {s} {p:g}"] = model_pcc
                row[f"baseline pcc {s} {p:g}"] = base_pcc
                beats &= model_pcc > base_pcc  # NaN compares False: no evidence is no win
        row["beats baseline on every structure"] = "yes" if beats else "no"
        out.append(row)
    return out


def _fmt(value: object) -> str:
    """A median PCC for the markdown table ("n/a": no scored image, e.g. the structure is absent)."""
    v = float(value)  # type: ignore[arg-type]
    return "n/a" if math.isnan(v) else f"{v:.3f}"


def write_table(
    rows: list[dict[str, object]], out: Path, photons: list[float], structures: list[str], note: str
) -> list[Path]:
    """``cross_world.csv`` (numbers as computed) and ``cross_world.md`` (model median PCC with the baseline's)."""
    csv_path = out / "cross_world.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cols = [(p, s) for p in photons for s in structures]
    lines = [
        "# Cross-world evaluation: median PCC (baseline = input copied to every channel, same images)",
        "",
        note,
        "",
        "| model | trained on | world | seen | " + " | ".join(f"{s} {p:g} ph" for p, s in cols)
        + " | beats baseline on every structure |",
        "|---|---|---|---|" + "---|" * len(cols) + "---|",
    ]  # fmt: skip
    for r in rows:
        cells = [f"{_fmt(r[f'pcc {s} {p:g}'])} ({_fmt(r[f'baseline pcc {s} {p:g}'])})" for p, s in cols]
        lines.append(
            f"| {r['model']} | {r['trained_on']} | {r['world']} | {r['seen']} | " + " | ".join(cells)
            + f" | {r['beats baseline on every structure']} |"
        )  # fmt: skip
    md_path = out / "cross_world.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [md_path, csv_path]


def progress_printer(world: str, started: float) -> Callable[[int, int], None]:
    """Progress lines ``[world] done/total images (elapsed)`` on stderr, one per change."""
    last = [-1]

    def show(done: int, total: int) -> None:
        if done != last[0]:
            last[0] = done
            print(f"[{world}] {done}/{total} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    return show


def cross_world(
    models: list[ModelSpec],
    worlds: list[str],
    out: Path,
    *,
    photons: list[float],
    images: int,
    size: int,
    seed: int = 0,
    workers: int = 1,
    flicker_scenes: int = 0,
    on_world: Callable[[str], Callable[[int, int], None] | None] = lambda world: None,
) -> list[dict[str, object]]:
    """Evaluate every model on every world (one compare run per world, report in ``out/<world>``) and write
    ``cross_world.md`` / ``.csv`` into ``out``. Returns the table rows."""
    for world in worlds:
        check_world_available(world)  # fail before hours of rendering, not after
    out.mkdir(parents=True, exist_ok=True)
    table: list[dict[str, object]] = []
    structures: list[str] = []
    routing: dict[str, list[dict[str, object]]] = {}
    for world in worlds:
        data, pipeline = world_data(world)
        report: CompareReport = compare_methods(
            [m.spec for m in models],
            data,
            out / world,
            photons=photons,
            images=images,
            size=size,
            seed=seed,
            pipeline=pipeline,
            pipeline_images=images,
            flicker_scenes=flicker_scenes,
            flicker_timepoints=4,
            flicker_size=size,
            workers=workers,
            on_progress=on_world(world),
        )
        structures = list(dict.fromkeys(str(r["structure"]) for r in report.rows)) or structures
        table += summarise(models, world, photons, report.rows, structures)
        routing[world] = report.routing_rows
    table.sort(key=lambda r: ([m.label for m in models].index(str(r["model"])), worlds.index(str(r["world"]))))
    note = (
        f"{images} test images of {size}x{size} SR pixels per world and photon level through the synthetic "
        f"microscope + the real reconstructor (seed {seed}); each cell: model median PCC (baseline median PCC). "
        "Per-image metrics and plots: <world>/metrics.csv. Separation claims rest on the unseen rows."
    )
    write_table(table, out, photons, structures, note)
    write_routing_summary(routing, out, [m.label for m in models], max(photons), structures)
    pool_uncertainty(out, worlds)
    return table


def write_routing_summary(
    routing: dict[str, list[dict[str, object]]], out: Path, labels: list[str], photons: float, structures: list[str]
) -> list[Path]:
    """Where each structure's signal goes, per model (and the baseline) and world at ``photons``: a section
    appended to ``cross_world.md`` and ``routing.png`` (one matrix per model x world). Per-level tables are in
    ``<world>/routing.md``."""
    short = " / ".join(s[:4] for s in structures)
    lines = [
        "",
        f"## Where each structure's signal goes ({photons:g} photons, median over the images)",
        "",
        f"Of each structure's signal, the fraction found in the {short} channels "
        "(imcsr_live/model/routing.py; a perfect separation: 1 in its own channel, the baseline: "
        f"{1 / len(structures):.2f} in each).",
        "",
        "| model | world | " + " | ".join(f"{s} -> {short}" for s in structures) + " |",
        "|---|---|" + "---|" * len(structures),
    ]
    panels = []
    for world, rows in routing.items():
        level = pipeline_level_name(world, photons)
        for label in labels:  # (the baseline's shares are 1 / S by construction)
            med = median_shares(rows, level, label, structures)
            if np.isnan(med).all():
                continue
            panels.append((f"{label}, {world} world", med))
            cells = [" / ".join("n/a" if np.isnan(v) else f"{v:.2f}" for v in column) for column in med.T]
            lines.append(f"| {label} | {world} | " + " | ".join(cells) + " |")
    if not panels:
        return []
    md_path = out / "cross_world.md"
    with open(md_path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    png = plot_routing(panels, structures, out / "routing.png",
                       f"Where each structure's signal goes ({photons:g} photons)")  # fmt: skip
    return [md_path, png]


def pool_uncertainty(out: Path, worlds: list[str]) -> list[Path]:
    """Predicted vs real error over every world's pipeline images together (in- and out-of-distribution alike):
    ``out/uncertainty/`` (Spearman per model and channel, plot). Nothing when no model has an uncertainty head."""
    import csv

    from imcsr_live.train.uncertainty_report import write_uncertainty

    rows: list[dict[str, object]] = []
    for world in worlds:
        path = out / world / "uncertainty.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                level = str(row["level"])
                if world_data(world)[1] and not level.startswith("pipeline "):
                    continue  # the default world's fast-approximation levels are not in the table either
                rows.append({**row, "level": level if level.startswith(world) else f"{world}: {level}"})
    return write_uncertainty(rows, out / "uncertainty") if rows else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="LABEL=NAME",
                    help="checkpoint stem (NAME.safetensors + NAME.json); repeat for several models")  # fmt: skip
    ap.add_argument("--trained-on", action="append", default=[], metavar="LABEL=WORLD[+WORLD]",
                    help="the world(s) a model was trained on, e.g. B=randomised+default (default: its model card, "
                         "else 'default')")  # fmt: skip
    ap.add_argument("--worlds", default="default,randomised,independent",
                    help=f"comma-separated worlds to test on, of {', '.join(WORLDS)}")  # fmt: skip
    ap.add_argument("--photons", action="append", metavar="P[,P...]", help="photon levels (default 100,300,1000)")
    ap.add_argument("--images", type=int, default=8, help="test images per world and photon level")
    ap.add_argument("--size", type=int, default=256, help="SR image size (multiple of 4, >= 128)")
    ap.add_argument("--seed", type=int, default=0, help="test-set seed (offset of the test cells' seeds)")
    ap.add_argument("--workers", type=int, default=1, help="processes rendering the test images (12+ on 16 cores)")
    ap.add_argument("--flicker-scenes", type=int, default=0,
                    help="static flicker scenes per level in each world's report (not in the table)")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    args = ap.parse_args(argv)
    try:
        if args.images < 1 or args.workers < 1 or args.flicker_scenes < 0:
            raise InputDataError("--images and --workers must be >= 1, --flicker-scenes >= 0")
        models = load_models(args.model, args.trained_on)
        worlds = parse_worlds(args.worlds)
        photons = parse_photons(args.photons)
        started = time.monotonic()
        cross_world(
            models,
            worlds,
            args.out,
            photons=photons,
            images=args.images,
            size=args.size,
            seed=args.seed,
            workers=args.workers,
            flicker_scenes=args.flicker_scenes,
            on_world=lambda world: progress_printer(world, started),
        )
    except ImcsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "cross_world.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
