"""npe2 reader: an imcsr-live recording (OME-Zarr or OME-TIFF) as napari layers.

The separated image gives one additive layer per structure, in its colour, with the saved display levels
(``omero.window`` / the live view's saved levels) as contrast limits, and the µm pixel size and time step as scale.
The side streams of the recording (``sr``, ``raw``, ``validation``, ``uncertainty``) come as further layers, hidden;
with the SR stream and the per-timepoint input scale, the sum residual (SR minus the sum of the channels, in SR
units) comes too. Opening a stream on its own (``rec.ome.zarr/sr``, ``rec.sr.ome.tif``) works as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.errors import ImcsrError, InputDataError
from imcsr_live.io.streams import read_timepoints, tiff_stem
from imcsr_live.io.tiff import read_tiff
from imcsr_live.io.zarr import ChannelLook, ImageSpec, channel_looks, read_ome_zarr
from imcsr_live.napari.layers import LayerData, grey_layer, spatial_layer_kwargs, structure_layer

#: Side streams of a recording, in the order their layers are added (below the separated channels).
SIDE_STREAMS = ("sr", "raw", "validation", "uncertainty")
_OME_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff")

ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]


@dataclass(frozen=True)
class StoredImage:
    """One image of a recording as read: ``(T, [C,] Y, X)`` data, its OME axes, scale and channel looks."""

    data: np.ndarray
    axes: str  # "tcyx" or "tyx"
    scale: tuple[float, ...]
    looks: list[ChannelLook]
    name: str


def get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """The reader for ``path`` if it is an OME-Zarr image or an OME-TIFF (else None: another reader may take it)."""
    if not isinstance(path, str):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if p.is_dir() and _is_ome_zarr(p):
        return read_recording
    if p.is_file() and p.name.lower().endswith(_OME_TIFF_SUFFIXES):
        return read_recording
    return None


def _is_ome_zarr(path: Path) -> bool:
    try:
        attributes = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return isinstance(attributes.get("ome"), dict) and "multiscales" in attributes["ome"]


def read_recording(path: str | Sequence[str]) -> list[LayerData]:
    """Every layer of the recording at ``path``: the separated channels, then the side streams present.

    An unreadable recording raises :class:`InputDataError` with one line (napari shows it as a notification).
    """
    if not isinstance(path, str):
        path = path[0]
    p = Path(path)
    try:
        main = _read_image(p)
        side = {name: image for name, found in _side_paths(p).items() if (image := _read_image(found)) is not None}
    except ImcsrError:
        raise
    except (OSError, ValueError, KeyError, IndexError) as exc:  # a damaged store: one line, not a traceback
        raise InputDataError(f"{p} is not a readable imcsr-live recording ({exc}); check the path") from None
    if main is None:
        raise InputDataError(f"{p} is not an OME-Zarr image or OME-TIFF; open a recording")
    layers = _image_layers(main, prefix="", visible=True)
    for name in SIDE_STREAMS:
        if name in side:
            layers += _image_layers(side[name], prefix=f"{name}: ", visible=False)
    residual = _sum_residual(p, main, side.get("sr"))
    if residual is not None:
        layers.append(residual)
    return layers


def _side_paths(path: Path) -> dict[str, Path]:
    """Where the recorder puts each side stream of the recording at ``path`` (imcsr_live.pipeline.recorder)."""
    if path.is_dir():
        return {name: path / name for name in SIDE_STREAMS if (path / name / "zarr.json").is_file()}
    stem = tiff_stem(path)
    found = {name: path.with_name(f"{stem}.{name}.ome.tif") for name in SIDE_STREAMS}
    return {name: f for name, f in found.items() if f.is_file() and f != path}


def _read_image(path: Path) -> StoredImage | None:
    if path.is_dir():
        return _read_zarr_image(path) if _is_ome_zarr(path) else None
    if path.name.lower().endswith(_OME_TIFF_SUFFIXES):
        return _read_tiff_image(path)
    return None


def _read_zarr_image(path: Path) -> StoredImage:
    data, attributes = read_ome_zarr(path)
    multiscale = attributes["ome"]["multiscales"][0]
    axes = "".join(a["name"] for a in multiscale["axes"])
    scale = tuple(float(s) for s in multiscale["datasets"][0]["coordinateTransformations"][0]["scale"])
    looks = []
    for i, channel in enumerate(attributes["ome"].get("omero", {}).get("channels", [])):
        window = channel.get("window", {})
        looks.append(
            ChannelLook(str(channel.get("label", f"channel {i}")), str(channel.get("color", "FFFFFF")),
                        float(window.get("start", 0.0)), float(window.get("end", 1.0)),
                        bool(channel.get("active", True)))
        )  # fmt: skip
    return StoredImage(data, axes, scale, looks, str(multiscale.get("name") or path.name))


def _read_tiff_image(path: Path) -> StoredImage:
    data, meta = read_tiff(path)
    axes = meta.axes.lower()
    if axes not in ("tcyx", "tyx", "cyx", "yx"):
        raise InputDataError(f"{path} has axes {meta.axes}; a recording is (T, [C,] Y, X)")
    if "t" not in axes:  # one timepoint written without a time axis
        data, axes = data[None], "t" + axes
    pixel = meta.pixel_size_um or 1.0
    dt = meta.time_increment_s or 1.0
    scale = (dt, 1.0, pixel, pixel) if axes == "tcyx" else (dt, pixel, pixel)
    # The OME-TIFF writer keeps the live view's levels in the provenance JSON; channel_looks reads them back.
    spec = ImageSpec(
        frame_shape=data.shape[1:], dtype=str(data.dtype), pixel_size_um=pixel, time_increment_s=dt,
        channel_names=meta.channel_names, channel_colors=meta.channel_colors, attributes=meta.extra,
    )  # fmt: skip
    looks = channel_looks(spec) if axes == "tcyx" else []
    return StoredImage(data, axes, scale, looks, tiff_stem(path))


def _is_raw(image: StoredImage) -> bool:
    """The raw SIM stream (``raw`` in OME-Zarr, ``STEM.raw.ome.tif``): its channels are SIM frames, not structures."""
    return image.name == "raw" or image.name.endswith(".raw")


def _image_layers(image: StoredImage, prefix: str, visible: bool) -> list[LayerData]:
    """Channels of a coloured image as structure layers; raw frames and grey images as one layer each."""
    if image.axes == "tcyx" and not _is_raw(image) and image.looks and len(image.looks) == image.data.shape[1]:
        geometry = spatial_layer_kwargs("tyx", (image.scale[0], *image.scale[2:]))
        return [
            structure_layer(
                image.data[:, c],
                prefix + look.label,
                look.color,
                geometry,
                (look.start, look.end),
                visible=visible and look.visible,
            )
            for c, look in enumerate(image.looks)
        ]
    if image.axes == "tcyx":  # raw SIM frames: the frame axis leads, so time lines up with the other layers
        data = np.moveaxis(image.data, 1, 0)
        geometry = spatial_layer_kwargs("ctyx", (1.0, image.scale[0], *image.scale[2:]))
        return [grey_layer(data, prefix.rstrip(": ") or image.name, geometry, visible=visible)]
    geometry = spatial_layer_kwargs(image.axes, image.scale)
    return [grey_layer(image.data, prefix.rstrip(": ") or image.name, geometry, visible=visible)]


def _sum_residual(path: Path, separated: StoredImage, sr: StoredImage | None) -> LayerData | None:
    """SR minus the sum of the separated channels (in SR units), where the recording has what it takes.

    Channels are stored relative to the engine's input normalisation; each timepoint's divisor (``input_scale``)
    is in the per-timepoint JSON lines, so ``sum(channels) * input_scale`` is back in SR units.
    """
    if sr is None or separated.axes != "tcyx" or sr.data.shape[1:] != separated.data.shape[2:]:
        return None
    scales = [record.get("input_scale") for record in read_timepoints(path)]  # one line per timepoint, in order
    n = min(len(sr.data), len(separated.data))
    if len(scales) < n or not all(isinstance(s, int | float) for s in scales[:n]):
        return None
    factors = np.asarray(scales[:n], dtype=np.float32)[:, None, None]
    residual = sr.data[:n].astype(np.float32) - separated.data[:n].sum(axis=1, dtype=np.float32) * factors
    geometry: dict[str, Any] = spatial_layer_kwargs("tyx", sr.scale)
    return grey_layer(residual, "sum residual", geometry)
