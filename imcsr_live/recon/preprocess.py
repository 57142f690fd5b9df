"""Checks and pre-processing of raw SIM stacks before parameter estimation and reconstruction.

Steps: validate (frame count, dtype, finite, not empty), subtract the camera offset and clip at 0, and taper the
edges with a cos^2 ramp so the periodic FFT sees no edge jump (the "edge cross").

The frames are *not* rescaled here. Lamp / laser fluctuations between the phase frames of an angle would leak
band 0 into the side bands, but equalising the frame means (what this step used to do) is wrong as well: a
frame's mean holds the specimen's own content at k0, ``m Re(e^{i phi} S(-k0))``, so on a flat-spectrum
specimen (bead slide) the means legitimately differ by up to ~2 % and equalising them applies a
specimen-dependent gain per frame. The per-frame gains are estimated from the band overlap instead
(``estimate.py``) and divided out where the bands are separated (``wiener.py``). :func:`mean_gains` (the old
frame-mean estimate) is only the start of that fit and the fall-back where it cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcsr_live.errors import InputDataError

DEFAULT_TAPER_PX = 16
SATURATED_FRACTION = 1e-3  # flag a frame when more than 0.1 % of its pixels sit at the maximum value
MIN_RAW_SIDE = 64  # the edge taper (16 px a side) and the pattern estimation need at least this many pixels
#: Camera bit depths whose full-scale value (2**bits - 1) marks saturation, also in data stored as wider integers
#: (a 12-bit camera in a uint16 file) or converted to float.
SENSOR_BITS = (8, 10, 11, 12, 14, 15, 16)


@dataclass
class Prepared:
    """Pre-processed frames ready for estimation and reconstruction."""

    frames: np.ndarray  # float32 (A*P, Y, X), offset-subtracted, clipped at 0, tapered (not rescaled)
    widefield: np.ndarray  # float32 (Y, X): mean of the raw frames, offset-subtracted, not tapered
    mean_gains: np.ndarray  # float64 (A, P): frame means over their angle's mean (see mean_gains())
    warnings: tuple[str, ...] = ()


def check_raw_shape(raw: np.ndarray, n_frames: int) -> np.ndarray:
    """Validate the layout of one raw stack ``(n_frames, Y, X)`` (cheap: no pass over the pixels).

    Raises :class:`InputDataError` naming the problem: wrong frame count or rank, unsupported dtype, frames
    smaller than 64 x 64 or of odd size.
    """
    arr = np.asarray(raw)
    if arr.ndim != 3 or arr.shape[0] != n_frames:
        raise InputDataError(
            f"a raw SIM stack must have shape ({n_frames}, Y, X) (angles x phases frames, angle-major); got "
            f"{arr.shape}. Check [sim] angles/phases in the rig config and the file's frame order"
        )
    if arr.dtype.kind not in "uif" or arr.dtype == np.float16:
        raise InputDataError(f"raw frames must be unsigned/signed integers or float32/64 (got dtype {arr.dtype})")
    if min(arr.shape[1:]) < MIN_RAW_SIDE or any(s % 2 for s in arr.shape[1:]):
        raise InputDataError(
            f"raw frames must be even-sized and at least {MIN_RAW_SIDE} x {MIN_RAW_SIDE} pixels (got "
            f"{arr.shape[1]} x {arr.shape[2]}); crop the data to an even size"
        )
    return arr


def check_raw(raw: np.ndarray, n_frames: int) -> np.ndarray:
    """Validate one raw stack ``(n_frames, Y, X)``; return it as an array.

    Raises :class:`InputDataError` naming the problem: wrong frame count or rank, unsupported dtype, frame size,
    NaN/inf, an all-zero frame.
    """
    arr = check_raw_shape(raw, n_frames)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = sorted({int(i) for i in np.nonzero(~np.isfinite(arr).all(axis=(1, 2)))[0]})
        raise InputDataError(f"raw frames {bad} contain NaN or inf; the acquisition is corrupt, re-acquire it")
    empty = np.nonzero(arr.reshape(n_frames, -1).max(axis=1) <= 0)[0]
    if empty.size:
        raise InputDataError(
            f"raw frame(s) {empty.tolist()} are all zero; check that the camera, shutter and laser are on"
        )
    return arr


def saturation_level(arr: np.ndarray) -> float | None:
    """The value at which the camera saturated, if the stack reaches one: its dtype's maximum, or the
    full-scale value ``2**bits - 1`` of a common sensor bit depth that is also the stack's maximum."""
    top = float(arr.max())
    if arr.dtype.kind in "ui" and top >= np.iinfo(arr.dtype).max:
        return top
    if any(top == 2.0**bits - 1 for bits in SENSOR_BITS):
        return top
    return None


def saturation_warnings(arr: np.ndarray) -> tuple[str, ...]:
    """Frames with more than 0.1 % of their pixels at the camera's saturation level (see saturation_level)."""
    if arr.dtype.kind not in "uif":
        return ()
    level = saturation_level(arr)
    if level is None:
        return ()
    top = int(level) if float(level).is_integer() else level
    frac = (arr.reshape(arr.shape[0], -1) >= level).mean(axis=1)
    bad = np.nonzero(frac > SATURATED_FRACTION)[0]
    if not bad.size:
        return ()
    return (f"frames {bad.tolist()} are saturated ({100 * frac.max():.1f} % of pixels at {top}); reduce exposure",)


def mean_gains(frames: np.ndarray, n_angles: int, n_phases: int) -> np.ndarray:
    """Each frame's mean over the mean of its angle's frames, ``(A, P)`` float64 (1 where an angle is dark).

    Biased by the specimen's content at k0 (module docstring): a start value and fall-back, not the gains.
    """
    means = np.asarray(frames).reshape(n_angles * n_phases, -1).mean(axis=1, dtype=np.float64)
    per_angle = means.reshape(n_angles, n_phases)
    ref = per_angle.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = per_angle / ref
    return np.where(np.isfinite(out) & (out > 0), out, 1.0)


def edge_taper(shape: tuple[int, int], width_px: int = DEFAULT_TAPER_PX) -> np.ndarray:
    """Separable cos^2 window (float32): 0 -> 1 over ``width_px`` pixels at every edge, 1 inside."""
    out = []
    for n in shape:
        w = np.ones(n, dtype=np.float64)
        if width_px > 0:
            ramp = np.sin(0.5 * np.pi * (np.arange(width_px) + 0.5) / width_px) ** 2
            w[:width_px] = ramp
            w[n - width_px :] = ramp[::-1]
        out.append(w)
    return (out[0][:, None] * out[1][None, :]).astype(np.float32)


def preprocess(
    raw: np.ndarray,
    n_angles: int,
    n_phases: int,
    offset_adu: float,
    *,
    taper: np.ndarray | None = None,
) -> Prepared:
    """Validate and pre-process one raw stack ``(A*P, Y, X)`` (angle-major)."""
    n = n_angles * n_phases
    arr = check_raw(raw, n)
    warnings = saturation_warnings(arr)
    frames = arr.astype(np.float32)
    frames -= np.float32(offset_adu)
    np.clip(frames, 0.0, None, out=frames)
    means = frames.reshape(n, -1).mean(axis=1, dtype=np.float64)
    if np.any(means <= 0):
        dark = np.nonzero(means <= 0)[0].tolist()
        raise InputDataError(
            f"raw frame(s) {dark} hold no signal above the camera offset ({offset_adu:g} ADU); check the "
            "illumination or [recon] camera_offset_adu"
        )
    widefield = frames.mean(axis=0)
    per_angle = means.reshape(n_angles, n_phases)
    gains = per_angle / per_angle.mean(axis=1, keepdims=True)
    if taper is None:
        taper = edge_taper(frames.shape[1:])
    frames *= taper
    return Prepared(frames=frames, widefield=widefield, mean_gains=gains, warnings=warnings)
