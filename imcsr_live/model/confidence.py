"""Per-frame confidence: does the model know what it is doing on this frame? (pure numpy)

Two numbers summarise one separated frame, both in the units of the normalised input (the network sees the SR
frame divided by its 99.9th percentile, so the input's high percentile is ~1):

* **predicted relative error** per channel (uncertainty head only):
  ``P99 over the frame of the calibrated std / max(P99.9 of the channel, FLOOR)``. The calibrated std
  (:mod:`imcsr_live.model.calibration`) is the expected absolute error per pixel; dividing by the channel's bright
  level makes it comparable to the paper's NRMSE (computed after normalising each channel by its own
  percentiles). Why the 99th percentile and not the RMS over the frame: the error sits on the structures, and a
  sparse channel (lysosomes) is mostly empty background whose small std dilutes an RMS. Over the default and the
  independent world's pipeline images (shipped model, 72 images) the P99 ranks the real per-image NRMSE with
  Spearman 0.88 / 0.80 / 0.73 (MT / ER / lysosomes) against 0.71 / 0.63 / 0.41 for the RMS (the percentile was
  chosen on other images: docs/cross_world/uncertainty.md). ``FLOOR`` (5 % of the input's high percentile) keeps
  an almost empty channel from dividing by ~0.
* **sum residual**: ``RMS(input - sum of channels) / P99.9(input)``. The channels are trained to add up to the
  input, so structure the network cannot place in any channel (a new structure, a reconstruction artefact, a
  different specimen) shows up here, with or without an uncertainty head.

A frame is *in distribution* when every number is at most its threshold in a :class:`ConfidenceReference`: the
95th percentile of the validation images' values times a margin of 1.5 (stored in the model card under
``confidence_reference``), or the generous defaults (:func:`default_reference`) for a model card without one.
A reference may hold thresholds per frame size (``by_size``; a frame is judged by the nearest size).
Large frames are subsampled on a regular grid (:data:`MAX_PIXELS`) so a frame costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imcsr_live.model.calibration import ChannelCalibration

HIGH_PERCENTILE = 99.9
#: Percentile of the calibrated std over the frame that the predicted relative error reports.
STD_PERCENTILE = 99.0
#: Smallest denominator of the predicted relative error (fraction of the normalised input's high percentile).
FLOOR = 0.05
#: Pixels used per frame at most (regular subsampling beyond): ~2 ms per 1024x1024 frame.
MAX_PIXELS = 256 * 256
#: Reference = this percentile of the per-image validation values ...
REFERENCE_PERCENTILE = 95.0
#: ... times this margin.
REFERENCE_MARGIN = 1.5
#: Defaults without a fitted reference: generous, so that only gross failures are flagged.
DEFAULT_RESIDUAL = 0.15
DEFAULT_PREDICTED_ERROR = 0.25
#: SR frame sizes (side, px) that thresholds may be fitted at.
MIN_FIT_SIZE, MAX_FIT_SIZE = 128, 2048


@dataclass(frozen=True)
class ConfidenceReference:
    """Thresholds of the in-distribution verdict.

    Attributes
    ----------
    residual
        Largest acceptable sum residual.
    predicted_error
        Largest acceptable predicted relative error per channel (model order), or None (residual only).
    source
        Where the numbers come from (``"validation ..."`` or ``"default"``).
    """

    residual: float
    predicted_error: tuple[float, ...] | None = None
    source: str = "default"
    #: Thresholds fitted per SR frame size (the side, in pixels): the values depend on the field of view (a small
    #: one holds few lysosomes, so a channel's bright level is lower). Empty: these thresholds for every size.
    by_size: tuple[tuple[int, ConfidenceReference], ...] = ()

    def at(self, side: int) -> ConfidenceReference:
        """The thresholds for frames of ``side`` SR pixels: the fitted size nearest on a log scale, else these."""
        if not self.by_size:
            return self
        return min(self.by_size, key=lambda entry: abs(np.log(entry[0] / max(side, 1))))[1]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "residual": float(self.residual),
            "predicted_error": None if self.predicted_error is None else [float(v) for v in self.predicted_error],
            "source": self.source,
        }
        if self.by_size:
            d["by_size"] = [{"size": side, **ref.to_dict()} for side, ref in self.by_size]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfidenceReference:
        pe = d.get("predicted_error")
        sizes = tuple(
            (int(e["size"]), cls.from_dict({k: v for k, v in e.items() if k != "size"})) for e in d.get("by_size", [])
        )
        return cls(
            float(d["residual"]), None if pe is None else tuple(float(v) for v in pe), str(d.get("source", "")), sizes
        )


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """The fitting sizes as a list; ValueError with the rule unless each is a multiple of 4 from 128 to 2048."""
    out = [int(v) for v in sizes]
    if not out or any(not (MIN_FIT_SIZE <= v <= MAX_FIT_SIZE and v % 4 == 0) for v in out):
        raise ValueError(
            f"frame sizes {out}: pass SR frame sizes, multiples of 4 from {MIN_FIT_SIZE} to {MAX_FIT_SIZE}, "
            "e.g. 256,512"
        )
    return out


def default_reference(channels: int | None) -> ConfidenceReference:
    """:data:`DEFAULT_REFERENCE` for ``channels`` channels with an uncertainty head; residual only for None."""
    pe = None if channels is None else (DEFAULT_PREDICTED_ERROR,) * channels
    return ConfidenceReference(DEFAULT_RESIDUAL, pe, "default")


def fit_reference(
    residuals: Sequence[float] | np.ndarray,
    predicted_errors: np.ndarray | None = None,
    percentile: float = REFERENCE_PERCENTILE,
    margin: float = REFERENCE_MARGIN,
) -> ConfidenceReference:
    """Thresholds from per-image validation values: ``percentile`` of each, times ``margin``.

    Parameters
    ----------
    residuals
        ``(N,)`` sum residuals of N validation images.
    predicted_errors
        ``(N, C)`` predicted relative errors, or None without an uncertainty head.
    """
    r = np.asarray(residuals, dtype=np.float64).ravel()
    r = r[np.isfinite(r)]
    if r.size == 0:
        raise ValueError("need at least one finite residual to fit a confidence reference")
    residual = float(np.percentile(r, percentile)) * margin
    pe = None
    if predicted_errors is not None:
        e = np.asarray(predicted_errors, dtype=np.float64)
        pe = tuple(float(np.nanpercentile(e[:, c], percentile)) * margin for c in range(e.shape[1]))
    source = f"validation: {r.size} images, P{percentile:g} x {margin:g}"
    return ConfidenceReference(residual, pe, source)


@dataclass(frozen=True)
class FrameConfidence:
    """Confidence summary of one separated frame (see the module docstring for the definitions)."""

    residual: float
    predicted_error: tuple[float, ...] | None
    in_distribution: bool
    reason: str  # "" when in distribution; else what exceeded which threshold
    channel_names: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``"ok"`` or ``"LOW (reason)"``."""
        return "ok" if self.in_distribution else f"LOW ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"in_distribution": self.in_distribution, "residual": round(self.residual, 5)}
        if self.predicted_error is not None:
            names = self.channel_names or tuple(f"channel {i}" for i in range(len(self.predicted_error)))
            d["predicted_error"] = {n: round(v, 5) for n, v in zip(names, self.predicted_error, strict=True)}
        if self.reason:
            d["reason"] = self.reason
        return d


def _subsample(shape: tuple[int, ...], max_pixels: int) -> int:
    """Stride that keeps at most ~``max_pixels`` of an ``(..., H, W)`` image."""
    h, w = shape[-2:]
    return max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))


def _high(img: np.ndarray) -> float:
    return float(np.percentile(img, HIGH_PERCENTILE))


def frame_values(
    channels: np.ndarray, std: np.ndarray | None, input_mid: np.ndarray, max_pixels: int = MAX_PIXELS
) -> tuple[float, tuple[float, ...] | None]:
    """``(sum residual, predicted relative errors or None)`` of one frame.

    Parameters
    ----------
    channels
        ``(C, H, W)`` separated channels (normalised input units).
    std
        ``(C, H, W)`` calibrated standard deviation, or None.
    input_mid
        ``(H, W)`` normalised input (the middle frame of the window).
    """
    s = _subsample(np.shape(input_mid), max_pixels)
    ch = np.asarray(channels, dtype=np.float32)[:, ::s, ::s]
    x = np.maximum(np.asarray(input_mid, dtype=np.float32)[::s, ::s], 0)
    diff = x - ch.sum(axis=0)
    residual = float(np.sqrt(np.mean(np.square(diff, dtype=np.float64)))) / max(_high(x), 1e-12)
    if std is None:
        return residual, None
    sd = np.asarray(std, dtype=np.float32)[:, ::s, ::s]
    pe = tuple(float(np.percentile(sd[c], STD_PERCENTILE)) / max(_high(ch[c]), FLOOR) for c in range(ch.shape[0]))
    return residual, pe


def judge(
    residual: float,
    predicted_error: tuple[float, ...] | None,
    reference: ConfidenceReference,
    channel_names: Sequence[str] = (),
) -> FrameConfidence:
    """The verdict for given values against ``reference`` (every exceeded threshold is named in the reason)."""
    names = tuple(channel_names) or tuple(f"channel {i}" for i in range(len(predicted_error or ())))
    reasons = []
    if not residual <= reference.residual:  # NaN counts as out of distribution
        reasons.append(f"sum residual {residual:.3f} > {reference.residual:.3f}")
    if predicted_error is not None and reference.predicted_error is not None:
        for name, v, limit in zip(names, predicted_error, reference.predicted_error, strict=True):
            if not v <= limit:
                reasons.append(f"{name} predicted error {v:.3f} > {limit:.3f}")
    return FrameConfidence(residual, predicted_error, not reasons, "; ".join(reasons), names)


@dataclass
class ConfidenceModel:
    """What a model card says about confidence: calibration, reference and channel names; judges frames."""

    reference: ConfidenceReference
    calibration: tuple[ChannelCalibration, ...] | None = None
    channel_names: tuple[str, ...] = ()
    max_pixels: int = MAX_PIXELS

    @classmethod
    def from_card(
        cls, card: dict[str, Any] | None, channels: int | None = None, uncertainty: bool | None = None
    ) -> ConfidenceModel:
        """From a model card (``confidence_reference``, ``uncertainty_calibration``, ``structures``).

        ``channels`` / ``uncertainty``: the model's channel count and head when the card does not say (e.g. a
        random model without a card).
        """
        card = card or {}
        names = tuple(s["name"] if isinstance(s, dict) else str(s) for s in card.get("structures", []))
        head = bool(card.get("architecture", {}).get("uncertainty", uncertainty or False))
        cals = card.get("uncertainty_calibration")
        calibration = tuple(ChannelCalibration(**c) for c in cals) if cals else None
        stored = card.get("confidence_reference")
        if stored:
            reference = ConfidenceReference.from_dict(stored)
        else:
            n = len(names) or channels
            reference = default_reference(n if head and n else None)
        return cls(reference, calibration, names)

    def assess(
        self, channels: np.ndarray, raw_std: np.ndarray | None, input_mid: np.ndarray, input_scale: float = 1.0
    ) -> FrameConfidence:
        """The :class:`FrameConfidence` of one frame.

        Parameters
        ----------
        channels, raw_std
            ``(C, H, W)`` separated channels and the head's std *before* calibration (or None), as an engine
            returns them (:class:`imcsr_live.engine.base.Separated`).
        input_mid, input_scale
            ``(H, W)`` middle frame of the input window and the divisor it is normalised with (1 if it already is).
        """
        s = _subsample(np.shape(input_mid), self.max_pixels)  # views first: only the subsample is computed on
        ch = np.asarray(channels)[:, ::s, ::s]
        x = np.maximum(np.asarray(input_mid, dtype=np.float32)[::s, ::s], 0) / np.float32(input_scale)
        std = None if raw_std is None else np.asarray(raw_std)[:, ::s, ::s]
        if std is not None and self.calibration is not None:
            std = np.stack([k.apply(std[c]) for c, k in enumerate(self.calibration)])
        residual, pe = frame_values(ch, std, x, max_pixels=ch.shape[-2] * ch.shape[-1])
        names = self.channel_names or tuple(f"channel {i}" for i in range(ch.shape[0]))
        return judge(residual, pe, self.reference.at(min(np.shape(input_mid)[-2:])), names)
