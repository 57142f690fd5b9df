"""The work behind the "IMC-SR separate" widget, without Qt: check a layer, reconstruct it if it is raw SIM,
separate it with the project's engines, and say how far it got after every frame (so a worker can stop there).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imcsr_live.config import load_rig_config
from imcsr_live.engine import load_model, select_engine
from imcsr_live.errors import InputDataError
from imcsr_live.pipeline.offline import separate_frames
from imcsr_live.recon.reconstructor import Reconstructor


@dataclass(frozen=True)
class SeparationJob:
    """What to separate and how. ``rig_path`` set: ``image`` is raw SIM, reconstructed with that rig first."""

    image: np.ndarray
    layer_name: str
    scale: tuple[float, ...]
    model: str  # a shipped model's name or a checkpoint path
    units: tuple[str, ...] = ()  # the layer's axis units (napari), kept on the result
    engine_kind: str = "auto"
    precision: str = "fp32"
    rig_path: Path | None = None


@dataclass(frozen=True)
class Progress:
    """Frames done of all frames to do (reconstruction, then separation), and what is happening."""

    done: int
    total: int
    stage: str


@dataclass(frozen=True)
class StructureImage:
    """One separated structure: ``(Y, X)`` or ``(T, Y, X)`` float32 in [0, 1], its colour and layer scale."""

    name: str
    colour: str
    data: np.ndarray
    scale: tuple[float, ...]
    units: tuple[str, ...]


@dataclass(frozen=True)
class SeparationResult:
    structures: list[StructureImage]
    model: str
    engine: str
    precision: str


def check_layer(shape: tuple[int, ...], rgb: bool, name: str, raw_frames: int | None = None) -> None:
    """Refuse a layer the network cannot take, with one line. ``raw_frames``: the layer must be raw SIM."""
    if rgb:
        raise InputDataError(f"layer {name!r} is RGB; pick a single-colour SR image (Y, X) or time-lapse (T, Y, X)")
    if raw_frames is None:
        if len(shape) not in (2, 3):
            raise InputDataError(
                f"layer {name!r} has shape {shape}; pick a single-colour SR frame (Y, X) or time-lapse (T, Y, X)"
            )
        return
    if not (len(shape) == 3 and shape[0] == raw_frames) and not (len(shape) == 4 and shape[1] == raw_frames):
        raise InputDataError(
            f"layer {name!r} has shape {shape}; raw SIM must be ({raw_frames}, Y, X) or (T, {raw_frames}, Y, X) "
            "for this rig (untick 'raw SIM' for an SR image)"
        )


def _as_float_frames(image: np.ndarray, name: str) -> np.ndarray:
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputDataError(f"layer {name!r} holds {image.dtype} values; pick an image of numbers")
    frames = np.asarray(image, dtype=np.float32)
    if not np.isfinite(frames).all():
        raise InputDataError(f"layer {name!r} contains NaN or infinite values; reconstruct it again")
    return frames


def run_separation(job: SeparationJob) -> Generator[Progress, None, SeparationResult]:
    """Yield :class:`Progress` after each frame; return the separated structures.

    A caller that stops iterating stops the work at the next frame.
    """
    image = np.asarray(job.image)
    rig = load_rig_config(job.rig_path) if job.rig_path is not None else None
    raw_frames = rig.sim.frames_per_timepoint if rig is not None else None
    check_layer(image.shape, False, job.layer_name, raw_frames)
    single = image.ndim == (3 if rig is not None else 2)  # one timepoint: the result has no time axis either
    if single:
        image = image[None]
    n_t = image.shape[0]
    total = 2 * n_t if rig is not None else n_t
    yield Progress(0, total, f"loading model {job.model}")
    source = load_model(job.model)
    if rig is not None:
        reconstructor = Reconstructor(rig)
        raw = _raw_checked(image, job)
        sr_frames = []
        for t in range(n_t):
            sr_frames.append(reconstructor.reconstruct(raw[t], index=t).sr)
            yield Progress(t + 1, total, f"reconstructed {t + 1}/{n_t}")
        sr = np.stack(sr_frames).astype(np.float32)
        # SR pixels are half the camera's: from the layer's own scale when it has one, else from the rig.
        pixel = job.scale[-1] / 2 if job.scale[-1] != 1.0 else rig.optics.pixel_size_um / 2
        scale: tuple[float, ...] = (pixel, pixel) if single else (job.scale[0], pixel, pixel)
        space = ("micrometer", "micrometer")
        units: tuple[str, ...] = space if single else (job.units[0] if job.units else "second", *space)
    else:
        sr = _as_float_frames(image, job.layer_name)
        scale = tuple(job.scale)
        units = job.units or ("pixel",) * len(scale)
    done = total - n_t
    engine = select_engine(job.engine_kind, source, job.precision, sr.shape[1:])
    channels = []
    for separated in separate_frames(sr, engine, source.cfg.in_frames):
        channels.append(separated.channels)
        done += 1
        yield Progress(done, total, f"separated {len(channels)}/{n_t} with {engine.name}")
    stack = np.stack(channels)  # (T, C, Y, X)
    structures = source.card.get("structures") or [
        {"name": f"channel {i}", "color": "#FFFFFF"} for i in range(source.cfg.out_channels)
    ]
    images = [
        StructureImage(str(s["name"]), str(s["color"]), stack[0, c] if single else stack[:, c], scale, units)
        for c, s in enumerate(structures)
    ]
    return SeparationResult(images, source.name, engine.name, engine.precision)


def _raw_checked(image: np.ndarray, job: SeparationJob) -> np.ndarray:
    """Raw SIM as uint16 camera counts (a float layer is accepted when its values are counts)."""
    frames = _as_float_frames(image, job.layer_name)
    if frames.min() < 0 or frames.max() > np.iinfo(np.uint16).max:
        raise InputDataError(f"layer {job.layer_name!r} is not raw camera counts (values outside 0..65535)")
    return np.rint(frames).astype(np.uint16)
