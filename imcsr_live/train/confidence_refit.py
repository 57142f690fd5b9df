"""Confidence thresholds fitted on whole frames of the worlds a separation was trained on.

The in-distribution verdict (:mod:`imcsr_live.model.confidence`) compares a live frame's sum residual and
predicted relative errors with the thresholds in the model card. Fitted on training's validation patches they
are wrong twice over: a 96-px crop holds few structures, so a channel's bright level is low and the predicted
relative error runs higher than on the whole frames the live view judges; and a head trained alone
(``train_only = "uncertainty"``) validates on cells its separation may never have seen. So the thresholds are
fitted here the way the live view computes the values (:meth:`ConfidenceModel.assess`, with the card's
calibration): on whole frames of the separation's own world(s), through the synthetic microscope and the real
reconstructor, at the card's photon levels, per frame size (``by_size``: the live view judges a frame by the
nearest size). The cells are drawn from :data:`DEFAULT_SEED`, apart from the test images (seed 0) of
``evaluate`` and ``tools/cross_world.py``.

The trainer calls :func:`refit_card` on its best checkpoint at the end of a run on synthetic data (``[train]
confidence_frames``); ``tools/refit_confidence.py`` does it for an existing checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.fileio import atomic_write
from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint
from imcsr_live.model.confidence import (
    MAX_FIT_SIZE,
    MIN_FIT_SIZE,
    ConfidenceModel,
    ConfidenceReference,
    check_sizes,
    fit_reference,
)
from imcsr_live.train.evaluate import load_eval_levels, predict

log = logging.getLogger(__name__)

DEFAULT_SEED = 1000
DEFAULT_SIZES = (128, 256, 512)

#: Per frame size: the sum residuals ``(N,)`` and predicted relative errors ``(N, C)`` (None without a head).
FrameValues = dict[int, tuple[np.ndarray, np.ndarray | None]]


def parse_sizes(text: str) -> list[int]:
    """``"128,256,512"`` -> sizes; ValueError with the rule for anything else."""
    try:
        return check_sizes([int(v) for v in text.split(",") if v.strip()])
    except ValueError:
        raise ValueError(
            f"--sizes {text!r}: pass SR frame sizes, multiples of 4 from {MIN_FIT_SIZE} to {MAX_FIT_SIZE}, e.g. 256,512"
        ) from None


def card_photons(card: Mapping[str, Any]) -> list[float]:
    """The photon levels a card's model was trained at (100 / 300 / 1000 when it does not say)."""
    photons = card.get("training", {}).get("config", {}).get("data", {}).get("photons", [])
    return [float(p) for p in photons] or [100.0, 300.0, 1000.0]


def whole_frame_values(
    model: Any,
    card: Mapping[str, Any],
    worlds: Sequence[str],
    images: int,
    sizes: Sequence[int],
    seed: int = DEFAULT_SEED,
    on_size: Callable[[int, int], None] | None = None,
) -> FrameValues:
    """The confidence values of ``model`` on ``images`` whole frames per photon level and world, per frame size.

    ``worlds``: "default" or another synthetic world (pipeline frames only, never the default world's fast
    approximation). ``on_size(size, frames)`` is called after each size.
    """
    outputs = [s["name"] for s in card["structures"]]
    # the frames hold every structure the model was trained with (a single-structure model outputs one of them)
    names = [s["name"] for s in card.get("training", {}).get("config", {}).get("structures", [])] or outputs
    frames = int(card["architecture"].get("in_frames", 1))
    head = bool(card["architecture"].get("uncertainty", False))
    confidence = ConfidenceModel.from_card(dict(card))
    c = len(outputs)
    values: FrameValues = {}
    for size in sizes:
        residuals, errors = [], []
        for world in worlds:
            data = "synthetic" if world == "default" else world
            levels = load_eval_levels(
                data, names, frames, photons=card_photons(card), images=images, size=size, seed=seed, pipeline=True
            )
            for lv in [lv for lv in levels if lv.rig is not None]:
                for x, _targets in lv.images(frames, images, seed):
                    out = predict(model, x[None], 2 * c if head else c)[0]
                    std = np.exp(0.5 * out[c:]) if head else None
                    verdict = confidence.assess(out[:c], std, x[frames // 2])
                    residuals.append(verdict.residual)
                    errors.append(verdict.predicted_error)
        values[size] = (np.array(residuals), np.array(errors) if head else None)
        if on_size is not None:
            on_size(size, len(residuals))
    return values


def fit_by_size(values: FrameValues, where: str) -> ConfidenceReference:
    """Pooled thresholds over every size, with per-size thresholds in ``by_size``; ``where`` names the frames."""

    def fit(res: np.ndarray, err: np.ndarray | None) -> ConfidenceReference:
        ref = fit_reference(res, err)
        return replace(ref, source=ref.source.replace("validation", where))

    res = np.concatenate([r for r, _e in values.values()])
    errs = [e for _r, e in values.values() if e is not None]
    pooled = fit(res, np.concatenate(errs) if errs else None)
    return replace(pooled, by_size=tuple((size, fit(r, e)) for size, (r, e) in values.items()))


def refit_card(
    stem: str | Path,
    worlds: Sequence[str],
    images: int,
    sizes: Sequence[int] = DEFAULT_SIZES,
    seed: int = DEFAULT_SEED,
    *,
    write: bool = True,
) -> tuple[dict[str, Any] | None, ConfidenceReference]:
    """Fit the checkpoint's confidence thresholds on whole frames of ``worlds``; with ``write``, rewrite its card
    atomically (weights untouched). Returns the card's old ``confidence_reference`` and the new one."""
    sizes = check_sizes(sizes)
    start = time.perf_counter()
    model, card = load_checkpoint(stem)

    def on_size(size: int, frames: int) -> None:
        log.info("confidence thresholds: %d whole frames of %d px done (%.0f s)", frames, size,
                 time.perf_counter() - start)  # fmt: skip

    values = whole_frame_values(model, card, worlds, images, sizes, seed, on_size)
    reference = fit_by_size(values, f"whole frames of the {' + '.join(worlds)} world (seed {seed})")
    old = card.get("confidence_reference")
    if write:
        card["confidence_reference"] = reference.to_dict()
        atomic_write(checkpoint_paths(stem)[1], json.dumps(card, indent=2) + "\n")
    return old, reference
