"""OME-Zarr v0.5 time-lapses (zarr v3 via tensorstore), written one timepoint at a time and readable mid-way.

Layout of one image (a zarr v3 group)::

    NAME.ome.zarr/zarr.json     group: attributes.ome (version 0.5, multiscales, omero channels) + our metadata
    NAME.ome.zarr/0/            the (T, [C,] Y, X) array, one chunk per timepoint and channel

The array holds finished timepoints only: each timepoint's chunks are written first (through a second handle
that assumes the metadata), then the time axis grows by one in ``0/zarr.json`` (an atomic rename). A process
killed at any moment leaves an array whose every timepoint is complete; no reader sees a zero-filled slot.
The real time of each timepoint goes to ``attributes.imcsr_live.timepoints_s`` when the writer closes.
Nothing else lives inside the hierarchy (zarr warns about foreign files); recordings written by earlier versions kept
a ``progress.json`` inside it, which :func:`read_ome_zarr` still honours.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.colours import is_hex_colour
from imcsr_live.errors import InputDataError

LEGACY_PROGRESS_FILE = "progress.json"  # inside the store: only read, never written
OME_ZARR_VERSION = "0.5"
_GROW_STEP = 16  # default expected_timepoints (a hint only)
_STAGING_T = 1 << 40  # the time axis the chunk-writing handle assumes


@dataclass(frozen=True)
class ImageSpec:
    """Shape and meaning of one time-lapse image: per-timepoint frame shape, dtype, physical scales, channels."""

    frame_shape: tuple[int, ...]  # (C, Y, X) or (Y, X)
    dtype: str
    pixel_size_um: float
    time_increment_s: float
    channel_names: tuple[str, ...] = ()
    channel_colors: tuple[str, ...] = ()
    name: str = "image"
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def has_channels(self) -> bool:
        return len(self.frame_shape) == 3


@dataclass(frozen=True)
class ChannelLook:
    """How one channel is shown: label, colour (``RRGGBB``), display window and visibility."""

    label: str
    color: str
    start: float
    end: float
    visible: bool = True


def channel_looks(spec: ImageSpec) -> list[ChannelLook]:
    """Per-channel label, colour and window: the live view's display settings when the recording carries them.

    ``spec.attributes["display"]["channels"]`` (the GUI's settings at the start: ``name``, ``color``, ``levels``,
    ``visible``) wins over the structure colours and the dtype's full range.
    """
    n = spec.frame_shape[0] if spec.has_channels else 1
    names = spec.channel_names or tuple(f"channel {i}" for i in range(n))
    colours = spec.channel_colors or ("FFFFFF",) * n
    full = (0.0, 1.0) if spec.dtype.startswith("float") else (0.0, float(np.iinfo(spec.dtype).max))
    block = spec.attributes.get("display")
    shown = block.get("channels") if isinstance(block, dict) else None
    if not isinstance(shown, list) or len(shown) != n:
        shown = [{}] * n
    looks = []
    for label, colour, display in zip(names, colours, shown, strict=True):
        display = display if isinstance(display, dict) else {}
        levels = display.get("levels")
        ok = isinstance(levels, list | tuple) and len(levels) == 2 and all(isinstance(v, int | float) for v in levels)
        start, end = (float(levels[0]), float(levels[1])) if ok and levels else full
        if start >= end:
            start, end = full
        saved_colour = display.get("color")
        colour = str(saved_colour) if is_hex_colour(saved_colour, hash_optional=True) else colour
        looks.append(
            ChannelLook(str(display.get("name") or label), str(colour).lstrip("#").upper(), start, end,
                        bool(display.get("visible", True)))
        )  # fmt: skip
    return looks


def _ome_attributes(spec: ImageSpec) -> dict[str, Any]:
    axes: list[dict[str, str]] = [{"name": "t", "type": "time", "unit": "second"}]
    scale = [spec.time_increment_s]
    if spec.has_channels:
        axes.append({"name": "c", "type": "channel"})
        scale.append(1.0)
    axes += [{"name": "y", "type": "space", "unit": "micrometer"}, {"name": "x", "type": "space", "unit": "micrometer"}]
    scale += [spec.pixel_size_um, spec.pixel_size_um]
    ome: dict[str, Any] = {
        "version": OME_ZARR_VERSION,
        "multiscales": [
            {
                "name": spec.name,
                "axes": axes,
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
            }
        ],
    }
    if spec.has_channels:
        full = (0.0, 1.0) if spec.dtype.startswith("float") else (0.0, float(np.iinfo(spec.dtype).max))
        ome["omero"] = {
            "channels": [
                {
                    "label": look.label,
                    "color": look.color,
                    "active": look.visible,
                    "window": {
                        "min": min(full[0], look.start),
                        "max": max(full[1], look.end),
                        "start": look.start,
                        "end": look.end,
                    },
                }
                for look in channel_looks(spec)
            ],
            "rdefs": {"model": "color"},
        }
    return ome


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(data, indent=1))
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)  # a full disk must not leave a stray half-written file behind
        raise


class StoreGoneError(OSError):
    """The image's folder (or its ``zarr.json``) vanished while it was being written."""


class OmeZarrWriter:
    """Append timepoints to a new OME-Zarr v0.5 image. Not thread-safe: one writer thread owns it."""

    def __init__(self, path: str | Path, spec: ImageSpec, expected_timepoints: int = _GROW_STEP) -> None:
        """``expected_timepoints`` is a hint only: the time axis holds exactly the timepoints written."""
        import tensorstore as ts

        self.path = Path(path)
        self.spec = spec
        self.written = 0
        self.times_s: list[float] = []
        dims = ["t", "c", "y", "x"] if spec.has_channels else ["t", "y", "x"]
        chunk = [1, 1, *spec.frame_shape[1:]] if spec.has_channels else [1, *spec.frame_shape]
        metadata = {
            "shape": [0, *spec.frame_shape],
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
            "data_type": spec.dtype,
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "zstd", "configuration": {"level": 1}},
            ],
            "dimension_names": dims,
            "fill_value": 0,
        }
        kvstore = {"driver": "file", "path": str(self.path / "0")}
        try:
            if self.path.exists():  # only ever an explicit --overwrite (callers refuse existing outputs)
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            self._array = ts.open(
                {"driver": "zarr3", "kvstore": kvstore, "metadata": metadata, "create": True}
            ).result()
            # Chunks go in through a handle that assumes a huge time axis and never touches the metadata, so a
            # timepoint is complete on disk before the real time axis (0/zarr.json) grows to include it.
            staging = metadata | {"shape": [_STAGING_T, *spec.frame_shape]}
            self._staging = ts.open(
                {"driver": "zarr3", "kvstore": kvstore, "metadata": staging, "assume_metadata": True,
                 "open": True, "create": True}
            ).result()  # fmt: skip
            self._write_group_metadata()
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputDataError(f"cannot create {self.path}: {reason}; choose a writable folder") from None

    def _write_group_metadata(self) -> None:
        attributes = dict(self.spec.attributes)
        if self.times_s:
            attributes["timepoints_s"] = [round(t, 6) for t in self.times_s]
        group = {"zarr_format": 3, "node_type": "group", "attributes": {"ome": _ome_attributes(self.spec),
                                                                         "imcsr_live": attributes}}  # fmt: skip
        _write_json_atomic(self.path / "zarr.json", group)

    def check_present(self) -> None:
        """Raise :class:`StoreGoneError` if the image's folder or metadata vanished (never recreated)."""
        for required in (self.path / "zarr.json", self.path / "0" / "zarr.json"):
            if not required.is_file():
                raise StoreGoneError(f"{self.path} was deleted or moved while recording (no {required.name})")

    def append(self, frame: np.ndarray, time_s: float | None = None) -> int:
        """Write the next timepoint; it is on disk, and in the array, when this returns. Returns its index.

        ``time_s``: when it was acquired, in seconds from the first timepoint (default: index x time increment).
        """
        if frame.shape != self.spec.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match the recording's {self.spec.frame_shape}")
        self.check_present()  # writing would silently recreate a deleted folder
        t = self.written
        self._staging[t].write(np.asarray(frame, dtype=self.spec.dtype)).result()
        self._array = self._array.resize(
            exclusive_max=[t + 1, *self.spec.frame_shape], expand_only=True, resize_metadata_only=True
        ).result()
        self.written = t + 1
        self.times_s.append(float(t * self.spec.time_increment_s if time_s is None else time_s))
        return t

    def update_attributes(self, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into the ``imcsr_live`` attributes (e.g. provenance known only at the end)."""
        self.spec.attributes.update(extra)
        self.check_present()
        self._write_group_metadata()

    def close(self) -> None:
        """Write the per-timepoint times into the group metadata (the array itself is always final)."""
        if self.times_s:
            self.check_present()
            self._write_group_metadata()


def read_ome_zarr(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read every finished timepoint of an image written by :class:`OmeZarrWriter` and its group attributes."""
    import tensorstore as ts

    path = Path(path)
    group_file = path / "zarr.json"
    if not group_file.is_file():
        raise InputDataError(f"{path} is not an OME-Zarr image (no zarr.json); check the path")
    attributes = json.loads(group_file.read_text())["attributes"]
    legacy_progress = path / LEGACY_PROGRESS_FILE  # recordings from before the time axis grew per timepoint
    array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "0")}}).result()
    count = array.shape[0]
    if legacy_progress.exists():
        count = min(count, json.loads(legacy_progress.read_text())["timepoints_written"])
    return array[:count].read().result(), attributes


def channel_names(attributes: dict[str, Any]) -> Sequence[str]:
    """Channel labels from OME-Zarr group attributes."""
    return [c["label"] for c in attributes.get("ome", {}).get("omero", {}).get("channels", [])]
