"""OME-TIFF time-lapses written frame by frame into a pre-allocated file, and a checked reader.

The writer creates the whole OME-TIFF up front (header, OME-XML, contiguous pixel block) and memory-maps it,
so every finished timepoint is on disk in a readable file even if the process dies later. This sidesteps the
tifffile pitfall of per-frame ``write(contiguous=True)`` with ``ome=True`` (SCIENCE.md §7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from imcsr_live.errors import InputDataError


@dataclass(frozen=True)
class StackMetadata:
    """What a microscopist needs to interpret a stack: axes, physical pixel size, time step, channel names."""

    axes: str
    pixel_size_um: float | None = None
    time_increment_s: float | None = None
    channel_names: tuple[str, ...] = ()
    channel_colors: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _ome_metadata(meta: StackMetadata) -> dict[str, Any]:
    ome: dict[str, Any] = {"axes": meta.axes}
    if meta.pixel_size_um is not None:
        ome |= {
            "PhysicalSizeX": meta.pixel_size_um,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": meta.pixel_size_um,
            "PhysicalSizeYUnit": "µm",
        }
    if meta.time_increment_s is not None:
        ome |= {"TimeIncrement": meta.time_increment_s, "TimeIncrementUnit": "s"}
    channel: dict[str, Any] = {}
    if meta.channel_names:
        channel["Name"] = list(meta.channel_names)
    if meta.channel_colors:
        # OME stores colours as signed 32-bit RGBA integers.
        channel["Color"] = [_rgba_int(c) for c in meta.channel_colors]
    if channel:
        ome["Channel"] = channel
    if meta.extra:
        ome["Description"] = json.dumps(meta.extra)
    return ome


def _rgba_int(hex_colour: str) -> int:
    value = (int(hex_colour.lstrip("#"), 16) << 8) | 0xFF
    return value - (1 << 32) if value >= 1 << 31 else value


def create_timelapse(path: str | Path, shape: tuple[int, ...], dtype: np.dtype | str, meta: StackMetadata) -> np.memmap:
    """Create an OME-TIFF of the given shape filled with zeros and return a writable memory map of its pixels.

    Assign whole timepoints (``mm[t] = frame``) and call ``flush()``; the file is valid at every moment.
    """
    if len(meta.axes) != len(shape):
        raise ValueError(f"axes {meta.axes!r} do not match shape {shape}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tifffile.memmap(path, shape=shape, dtype=dtype, ome=True, metadata=_ome_metadata(meta))
    except OSError as exc:
        raise InputDataError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from None


def read_tiff(path: str | Path) -> tuple[np.ndarray, StackMetadata]:
    """Read the first series of a (OME-)TIFF and what it says about itself."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path} not found; check the path")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            axes = series.axes
            meta = _metadata_from_ome(tif.ome_metadata, axes) if tif.is_ome else StackMetadata(axes=axes)
    except (tifffile.TiffFileError, ValueError) as exc:
        raise InputDataError(f"{path} is not a readable TIFF ({exc})") from None
    return data, meta


def _metadata_from_ome(xml: str | None, axes: str) -> StackMetadata:
    if not xml:
        return StackMetadata(axes=axes)
    from xml.etree import ElementTree

    root = ElementTree.fromstring(xml)
    ns = {"ome": root.tag.split("}")[0].strip("{")}
    pixels = root.find(".//ome:Pixels", ns)
    image = root.find(".//ome:Image", ns)
    if pixels is None:
        return StackMetadata(axes=axes)
    size = pixels.get("PhysicalSizeX")
    dt = pixels.get("TimeIncrement")
    channels = pixels.findall("ome:Channel", ns)
    names = tuple(c.get("Name", "") for c in channels if c.get("Name"))
    colours = tuple(
        "#{:06X}".format((int(c.get("Color")) & 0xFFFFFFFF) >> 8) for c in channels if c.get("Color") is not None
    )
    extra: dict[str, Any] = {}
    desc = image.find("ome:Description", ns) if image is not None else None
    if desc is not None and desc.text:
        try:
            extra = json.loads(desc.text)
        except json.JSONDecodeError:
            extra = {"description": desc.text}
    return StackMetadata(
        axes=axes,
        pixel_size_um=float(size) if size else None,
        time_increment_s=float(dt) if dt else None,
        channel_names=names,
        channel_colors=colours,
        extra=extra,
    )
