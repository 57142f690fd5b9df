"""``imcsr-live evaluate --compare``: several methods (Single / All / All+TC ...) on the SAME test images.

A *method* is a label and one or more checkpoints (``LABEL=NAME[,NAME...]``). A method's checkpoints together
must cover each structure at most once: an All model covers every structure itself; the Single method is three
one-output models, each contributing the channel of its structure. All checkpoints must be trained on the same
structure list. Every test image is made once, with as many frames as the method needing most (3 for TC); a
1-frame model gets the middle frame (the input normalisation divides by the middle frame's percentile, so the
slice is exactly what that model would get on its own), a TC model the three frames.

Writes into the report folder: ``metrics.csv`` (one row per level x image x structure x method, the baseline =
input copied to every channel included), ``metrics.md`` (median [IQR]), ``boxplots.png`` (Tukey, methods side by
side), ``montage.png``, ``flicker.csv`` / ``flicker.md`` (temporal stability, :func:`flicker`), and
``calibration.png`` when a model has a trained uncertainty head, and then also ``uncertainty.csv`` /
``uncertainty.md`` / ``uncertainty_vs_error.png`` (predicted vs real error per image, Spearman rank correlation
over all levels: :mod:`imcsr_live.train.uncertainty_report`). ``routing.csv`` / ``routing.md`` / ``routing.png``:
where each structure's signal goes, per method that outputs every structure and for the baseline
(:mod:`imcsr_live.train.routing_report`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.model.checkpoint import load_checkpoint
from imcsr_live.model.metrics import evaluate_image
from imcsr_live.model.normalization import normalize_input
from imcsr_live.train.config import TrainConfig
from imcsr_live.train.evaluate import EvalLevel, EvalReport, load_eval_levels, predict

BASELINE = "baseline"
_SPEC = re.compile(r"^([^=,\s]+)=(.+)$")


@dataclass
class Member:
    """One checkpoint of a method."""

    path: str
    model: torch.nn.Module
    card: dict[str, Any]

    @property
    def frames(self) -> int:
        return int(self.card["input_frames"])

    @property
    def outputs(self) -> list[str]:
        return [s["name"] for s in self.card["structures"]]

    @property
    def uncertainty(self) -> bool:
        return bool(self.card["architecture"].get("uncertainty", False))


@dataclass
class Method:
    label: str
    members: list[Member]
    # structure -> (member index, output channel)
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return max(m.frames for m in self.members)


def parse_method_specs(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``["Single=a,b,c", "All=d"]`` -> ``[("Single", ["a", "b", "c"]), ("All", ["d"])]`` (labels unique)."""
    out: list[tuple[str, list[str]]] = []
    for spec in specs:
        m = _SPEC.match(spec.strip())
        if not m or not all(p.strip() for p in m.group(2).split(",")):
            raise InputDataError(
                f"--compare {spec!r}: expected LABEL=NAME[,NAME...], e.g. All+TC=runs/repro/all_tc/repro_all_tc"
            )
        label = m.group(1)
        if label == BASELINE or label in (lab for lab, _ in out):
            raise InputDataError(f"--compare: method label {label!r} is used twice or reserved; pick another")
        out.append((label, [p.strip() for p in m.group(2).split(",")]))
    if not out:
        raise InputDataError("--compare needs at least one LABEL=NAME[,NAME...]")
    return out


def _all_structures(card: dict[str, Any]) -> list[str]:
    """The structure list a checkpoint was trained on (its training config), else its outputs."""
    cfg = card.get("training", {}).get("config")
    if cfg:
        return TrainConfig.model_validate(cfg).structure_names
    return [s["name"] for s in card["structures"]]


def load_methods(specs: list[tuple[str, list[str]]]) -> tuple[list[Method], list[str], dict[str, str]]:
    """Load every checkpoint; returns the methods, the common structure list and structure colours."""
    methods: list[Method] = []
    names: list[str] | None = None
    colours: dict[str, str] = {}
    for label, paths in specs:
        method = Method(label, [])
        for path in paths:
            model, card = load_checkpoint(path)
            if torch.cuda.is_available():  # the paper-size network needs seconds per image on a CPU
                model = model.to("cuda")
            member = Member(path, model, card)
            trained_on = _all_structures(card)
            if names is None:
                names = trained_on
            elif trained_on != names:
                raise InputDataError(
                    f"{path}: trained on structures {trained_on}, the first model on {names}; "
                    "compare only models of one structure set"
                )
            for c, s in enumerate(card["structures"]):
                if s["name"] in method.channels:
                    raise InputDataError(
                        f"--compare {label}: structure {s['name']!r} is output by two of its models; give each "
                        "structure to one model only"
                    )
                method.channels[s["name"]] = (len(method.members), c)
                colours.setdefault(s["name"], s.get("color", "#FFFFFF"))
            method.members.append(member)
        methods.append(method)
    assert names is not None
    return methods, names, colours


def frame_change(frames: np.ndarray) -> float:
    """``mean_t( mean_px |y[t+1] - y[t]| )`` of ``frames`` = ``(T, H, W)``, T >= 2: the mean absolute change
    between consecutive frames (0 for identical frames; a static specimen should give 0)."""
    y = np.asarray(frames, dtype=np.float64)
    if y.ndim != 3 or y.shape[0] < 2:
        raise ValueError(f"flicker needs (T >= 2, H, W) frames, got shape {y.shape}")
    return float(np.abs(np.diff(y, axis=0)).mean())


def flicker(frames: np.ndarray, reference_mean: float | None = None) -> float:
    """Frame-to-frame flicker of one channel of a static scene, ``frames`` = ``(T, H, W)`` with T >= 2.

    ``F = frame_change(y) / reference``. The reference is the channel's own mean ``mean_{t,px}(y)`` unless
    ``reference_mean`` is given -- the mean of the channel's truth in the same units, which does not depend on
    the model: dividing by a model's own mean would count the same absolute change as more flicker for a model
    that puts less false mass into a sparse channel.
    """
    return flicker_pair(frames, reference_mean)[0 if reference_mean is None else 1]


def flicker_pair(frames: np.ndarray, reference_mean: float | None) -> tuple[float, float]:
    """:func:`flicker` relative to the frames' own mean and relative to ``reference_mean`` (NaN if not given)."""
    change = frame_change(frames)
    own = float(np.asarray(frames, dtype=np.float64).mean())
    ref = float("nan") if reference_mean is None else float(reference_mean)
    return (change / own if own > 0 else float("nan")), (change / ref if ref > 0 else float("nan"))


def _method_outputs(method: Method, window: np.ndarray, structures: list[str]) -> dict[str, np.ndarray]:
    """Separated channels of one input window ``(F, H, W)`` (F = the largest input frames), by structure."""
    mid = window.shape[0] // 2
    outs: dict[int, np.ndarray] = {}
    result = {}
    for s in structures:
        if s not in method.channels:
            continue
        k, c = method.channels[s]
        if k not in outs:
            member = method.members[k]
            half = member.frames // 2
            x = window[mid - half : mid + half + 1]
            outs[k] = predict(member.model, x[None], len(member.outputs) * (2 if member.uncertainty else 1))[0]
        result[s] = outs[k][c]
    return result


def _routing(
    outs: dict[str, dict[str, np.ndarray]],
    mid: np.ndarray,
    targets: np.ndarray,
    names: list[str],
    lv: EvalLevel,
    image: int,
) -> list[dict[str, object]]:
    """Routing rows (:mod:`imcsr_live.train.routing_report`) of every method that outputs every structure, and of
    the copy baseline, on one test image's scored part."""
    from imcsr_live.train.routing_report import routing_rows

    truth = lv.scored(targets)
    rows: list[dict[str, object]] = []
    for label, o in [*outs.items(), (BASELINE, dict.fromkeys(names, mid))]:
        if all(s in o for s in names):
            rows += routing_rows(lv.level, image, label, np.stack([lv.scored(o[s]) for s in names]), truth, names)
    return rows


@dataclass
class CompareReport(EvalReport):
    methods: list[str] = field(default_factory=list)
    flicker_rows: list[dict[str, object]] = field(default_factory=list)
    routing_rows: list[dict[str, object]] = field(default_factory=list)  # where each structure's signal goes


def _flicker_row(
    level: str, scene: int, structure: str, method: str, imgs: np.ndarray, ref: float
) -> dict[str, object]:
    own, vs_truth = flicker_pair(imgs, ref)
    return {"level": level, "scene": scene, "structure": structure, "method": method,
            "flicker": own, "flicker_truth": vs_truth}  # fmt: skip


def _flicker_rows(
    methods: list[Method],
    names: list[str],
    levels: list[EvalLevel],
    frames: int,
    *,
    timepoints: int,
    scenes: int,
    size: int,
    seed: int,
) -> list[dict[str, object]]:
    """Flicker of every method and the input on static scenes with independent noise per timepoint.

    Scene ``j`` is held still (:meth:`EvalLevel.static_scene`); ``timepoints + frames - 1`` noisy SR frames are
    made so that every timepoint has its TC neighbours. Each row has both flickers (:func:`flicker`): relative
    to the channel's own mean (``flicker``) and to its truth's mean (``flicker_truth``).
    """
    rows: list[dict[str, object]] = []
    pad = frames // 2
    for lv in levels:
        for j in range(scenes):
            raw, truth = lv.static_scene(j, timepoints + 2 * pad, size, seed)
            per: dict[str, dict[str, list[np.ndarray]]] = {m.label: {} for m in methods}
            inputs, scales = [], []
            for t in range(pad, pad + timepoints):
                window, scale = normalize_input(raw[t - pad : t + pad + 1])
                inputs.append(lv.scored(window[pad]))
                scales.append(scale)
                for m in methods:
                    for s, img in _method_outputs(m, window, names).items():
                        per[m.label].setdefault(s, []).append(lv.scored(img))
            # the truth in the normalised inputs' units (their mean scale over the timepoints)
            truth_mean = {s: float(lv.scored(truth[c]).mean()) / float(np.mean(scales)) for c, s in enumerate(names)}
            x = np.stack(inputs)

            for m in methods:
                rows += [
                    _flicker_row(lv.level, j, s, m.label, np.stack(imgs), truth_mean[s])
                    for s, imgs in per[m.label].items()
                ]
            # the input holds every structure: its reference is the summed truth
            rows += [_flicker_row(lv.level, j, s, BASELINE, x, sum(truth_mean.values())) for s in names]
    return rows


def compare_methods(
    specs: list[str],
    data: str | Path,
    report_dir: str | Path,
    *,
    photons: list[float] | None = None,
    images: int = 8,
    size: int = 256,
    seed: int = 0,
    flicker_timepoints: int = 8,
    flicker_scenes: int = 4,
    flicker_size: int = 256,
    pipeline: bool = False,
    pipeline_images: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> CompareReport:
    """Evaluate every method on the same test images and write the report files into ``report_dir``.

    ``data``: as :func:`~imcsr_live.train.evaluate.load_eval_levels` (a world name: that world's pipeline levels,
    ``pipeline_images`` images each); ``workers``: processes rendering the pipeline test images.
    """
    methods, names, colours = load_methods(parse_method_specs(specs))
    frames = max(m.frames for m in methods)
    card0 = methods[0].members[0].card
    cfg = card0.get("training", {}).get("config")
    photons = photons or (list(TrainConfig.model_validate(cfg).data.photons) if cfg else [100.0, 300.0, 1000.0])
    levels = load_eval_levels(
        data, names, frames, photons=photons, images=images, size=size, seed=seed, pipeline=pipeline, workers=workers
    )
    report = CompareReport(methods=[m.label for m in methods] + [BASELINE])
    counts = [images if lv.rig is None else (pipeline_images or images) for lv in levels]
    total = sum(counts) + len(levels)
    done = 0
    examples: dict[str, dict[str, Any]] = {}
    # Montages: the highest fast level (montage.png) and the highest pipeline level (montage_pipeline.png).
    fast = [lv for lv in levels if lv.rig is None]
    shown = {id(fast[-1]) if fast else id(levels[-1]): "montage.png"}
    piped = [lv for lv in levels if lv.rig is not None]
    if piped and fast:  # (only pipeline levels, e.g. a world: montage.png)
        shown[id(piped[-1])] = "montage_pipeline.png"
    calib: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    unc_rows: list[dict[str, object]] = []  # predicted vs real error per image (uncertainty heads)
    for lv, n in zip(levels, counts, strict=True):
        for i, (x, targets) in enumerate(lv.images(frames, n, seed)):
            mid = x[frames // 2]
            outs = {m.label: _method_outputs(m, x, names) for m in methods}
            for si, s in enumerate(names):
                gt = lv.scored(targets[si])
                if not gt.max() > gt.min():
                    continue  # an empty field has no meaningful metric
                for label, img in [*((lab, o[s]) for lab, o in outs.items() if s in o), (BASELINE, mid)]:
                    row = {"level": lv.level, "image": i, "structure": s, "method": label}
                    report.rows.append({**row, **evaluate_image(lv.scored(img), gt).as_dict()})
            report.routing_rows += _routing(outs, mid, targets, names, lv, i)
            _collect_calibration(methods, x, targets, names, calib, lv.scored, rows=unc_rows, level=lv.level, image=i)
            if id(lv) in shown and i == 0:
                examples[shown[id(lv)]] = {"input": mid, "targets": targets, "outputs": outs, "level": lv.level}
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    report.flicker_rows = _flicker_rows(
        methods,
        names,
        levels,
        frames,
        timepoints=flicker_timepoints,
        scenes=flicker_scenes,
        size=min(flicker_size, size),
        seed=seed,
    )
    if on_progress is not None:
        on_progress(total, total)
    from imcsr_live.train.report import write_boxplots, write_compare_montage, write_flicker, write_tables

    labels = report.methods
    desc = ", ".join(f"{m.label} = {' + '.join(Path(p.path).name for p in m.members)}" for m in methods)
    note = (
        f"Methods: {desc}. All methods see the same {images} test images per level "
        + (f"({pipeline_images} per pipeline level) " if piped and pipeline_images else "")
        + f"({size}x{size}, seeds disjoint from training)."
    )
    report.files += write_tables(report, out, {"name": " vs ".join(labels[:-1])}, methods=labels, note=note)
    report.files.append(write_boxplots(report, out / "boxplots.png", methods=labels))
    for fname, example in examples.items():
        report.files.append(write_compare_montage(example, names, colours, out / fname))
    report.files += write_flicker(report.flicker_rows, out, labels, flicker_timepoints)
    if calib:
        from imcsr_live.train.report import write_calibration

        report.files.append(write_calibration(calib, out / "calibration.png"))
    if report.routing_rows:
        from imcsr_live.train.routing_report import write_routing

        report.files += write_routing(report.routing_rows, out, names, shown=[m.label for m in methods])
    if unc_rows:
        from imcsr_live.train.uncertainty_report import write_uncertainty

        report.files += write_uncertainty(unc_rows, out, calib)
    training = training_table(methods)
    if training:
        path = out / "training.md"
        path.write_text(training, encoding="utf-8")
        report.files.append(path)
    claims = check_claims(report)
    if claims:
        path = out / "claims.md"
        path.write_text(format_claims(claims), encoding="utf-8")
        report.files.append(path)
    return report


@dataclass
class Claim:
    text: str
    holds: bool
    evidence: str


def _median(rows: list[dict[str, object]], key: str, **match: object) -> float:
    v = [float(r[key]) for r in rows if all(r[k] == want for k, want in match.items())]  # type: ignore[arg-type]
    return float(np.nanmedian(v)) if v else float("nan")


def check_claims(report: CompareReport) -> list[Claim]:
    """The paper's claims to reproduce for methods labelled ``Single``, ``All`` and ``All+TC``.

    PCC thresholds at every fast (non-pipeline) level above the lowest; All vs Single on median NRMSE at every level and
    structure; TC flicker reduction = 1 - median(All+TC) / median(All) of the truth-referenced flicker over all flicker
    scenes x structures per level, required >= 30 % at every level.
    """
    rows, methods = report.rows, report.methods
    levels = list(dict.fromkeys(str(r["level"]) for r in rows))
    structures = list(dict.fromkeys(str(r["structure"]) for r in rows))
    fast = [lv for lv in levels if not lv.startswith("pipeline")] or levels
    claims = []
    if "All+TC" in methods:
        # "High SNR": every fast level from the second lowest up (300 = "high", 1000 = "very high" photons).
        for lv in fast[1:] or fast:
            for s in structures:
                need = 0.90 if s == "Lysosomes" else 0.95
                v = _median(rows, "pcc", level=lv, structure=s, method="All+TC")
                claims.append(Claim(f"All+TC median PCC >= {need:.2f} for {s} at {lv}", v >= need, f"{v:.3f}"))
    if "All" in methods and "Single" in methods:
        for lv in levels:
            parts, ok = [], True
            for s in structures:
                a = _median(rows, "nrmse", level=lv, structure=s, method="All")
                b = _median(rows, "nrmse", level=lv, structure=s, method="Single")
                ok &= a < b
                parts.append(f"{s} {a:.4f} vs {b:.4f}")
            claims.append(Claim(f"All beats Single on median NRMSE at {lv}", ok, "; ".join(parts)))
    if "All" in methods and "All+TC" in methods:
        for lv in dict.fromkeys(str(r["level"]) for r in report.flicker_rows):

            def reduction(key: str, lv: str = lv) -> tuple[float, float, float]:
                a = _median(report.flicker_rows, key, level=lv, method="All")
                t = _median(report.flicker_rows, key, level=lv, method="All+TC")
                return a, t, (1 - t / a if a > 0 else float("nan"))

            a, t, cut = reduction("flicker_truth")
            own = reduction("flicker")[2]
            claims.append(
                Claim(
                    f"TC lowers flicker by >= 30 % at {lv}",
                    cut >= 0.30,
                    f"All {a:.4f}, All+TC {t:.4f}: reduction {cut:.0%} (relative to own mean: {own:.0%})",
                )
            )
    return claims


def format_claims(claims: list[Claim]) -> str:
    lines = ["# Paper claims", "", "| claim | holds | evidence (medians) |", "|---|---|---|"]
    lines += [f"| {c.text} | {'yes' if c.holds else 'NO'} | {c.evidence} |" for c in claims]
    return "\n".join(lines) + "\n"


def _collect_calibration(
    methods: list[Method],
    x: np.ndarray,
    targets: np.ndarray,
    names: list[str],
    calib: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    scored: Callable[[np.ndarray], np.ndarray] = lambda img: img,
    *,
    rows: list[dict[str, object]] | None = None,
    level: str = "",
    image: int = 0,
) -> None:
    """(predicted std, absolute error) pairs of members with an uncertainty head (calibration curve), taken on
    the scored part of the frame (``scored``, see :meth:`EvalLevel.scored`).

    With ``rows``: also one row per channel of the image (``level``, ``image``) with the per-frame confidence's
    predicted relative error (:func:`~imcsr_live.model.confidence.frame_values`) and the real error (the paper's
    NRMSE and 1 - PCC), plus the sum residual and the verdict against the model card's reference."""
    from imcsr_live.model.calibration import ChannelCalibration
    from imcsr_live.model.confidence import ConfidenceModel, frame_values, judge

    for m in methods:
        for k, member in enumerate(m.members):
            if not member.uncertainty:
                continue
            half = member.frames // 2
            mid = x.shape[0] // 2
            c = len(member.outputs)
            raw = predict(member.model, x[None, mid - half : mid + half + 1], 2 * c)[0]
            cals = member.card.get("uncertainty_calibration") or [{"scale": 1.0, "offset": 0.0}] * c
            stds = np.stack([ChannelCalibration(**cals[ch]).apply(np.exp(0.5 * raw[c + ch])) for ch in range(c)])
            label = m.label if len(m.members) == 1 else f"{m.label}[{k}]"
            for ch, s in enumerate(member.outputs):
                err = scored(np.abs(raw[ch] - targets[names.index(s)]))
                calib.setdefault(f"{label} {s}", []).append((scored(stds[ch]).ravel()[::16], err.ravel()[::16]))
            if rows is None:
                continue
            residual, predicted = frame_values(scored(raw[:c]), scored(stds), scored(x[mid]))
            assert predicted is not None
            verdict = judge(residual, predicted, ConfidenceModel.from_card(member.card).reference, member.outputs)
            for ch, s in enumerate(member.outputs):
                gt = scored(targets[names.index(s)])
                if not gt.max() > gt.min():
                    continue  # an empty field has no meaningful metric (as in metrics.csv)
                real = evaluate_image(scored(raw[ch]), gt)
                rows.append({"level": level, "image": image, "method": label, "structure": s,
                             "predicted_error": predicted[ch], "nrmse": real.nrmse, "one_minus_pcc": 1.0 - real.pcc,
                             "residual": residual, "in_distribution": verdict.in_distribution})  # fmt: skip


def training_table(methods: list[Method]) -> str:
    """Training wall time and throughput per checkpoint, from its ``NAME.metrics.csv`` (when next to it).

    Wall time = sum over the logged intervals of (iterations in the interval / their it/s): the training loop
    including validation, excluding the one-off data rendering at start-up.
    """
    lines = [
        "# Training time and throughput",
        "",
        "| method | checkpoint | iterations | batch | wall time (min) | median it/s | samples/s | device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    any_row = False
    for m in methods:
        for member in m.members:
            stem = Path(member.path)
            csv_path = stem.with_name(stem.name.removesuffix(".json").removesuffix(".safetensors") + ".metrics.csv")
            if not csv_path.is_file():
                continue
            with open(csv_path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("it_per_s")]
            if not rows:
                continue
            its = np.array([float(r["iteration"]) for r in rows])
            rate = np.array([float(r["it_per_s"]) for r in rows])
            wall = float(np.sum(np.diff(np.concatenate([[0.0], its])) / np.maximum(rate, 1e-9)))
            training = member.card.get("training", {})
            batch = int(training.get("config", {}).get("train", {}).get("batch_size", 1))
            med = float(np.median(rate))
            lines.append(
                f"| {m.label} | {stem.name} | {int(its[-1])} | {batch} | {wall / 60:.1f} | {med:.2f} | "
                f"{med * batch:.1f} | {training.get('device', '?')} |"
            )
            any_row = True
    return "\n".join(lines) + "\n" if any_row else ""
