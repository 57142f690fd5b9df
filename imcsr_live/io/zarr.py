"""OME-Zarr v0.5 time-lapses (zarr v3 via tensorstore), written one timepoint at a time and readable mid-way.

Layout of one image (a zarr v3 group)::

    NAME.ome.zarr/zarr.json     group: attributes.ome (version 0.5, multiscales, omero channels) + our metadata
    NAME.ome.zarr/0/            the (T, [C,] Y, X) array, one chunk per timepoint and channel
    NAME.ome.zarr/progress.json timepoints finished so far, rewritten atomically after each one

Each timepoint is written synchronously (chunk files complete) before ``progress.json`` says it exists, so a
process killed at any moment leaves every finished timepoint readable. The time axis grows as needed.
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

from imcsr_live.errors import InputDataError

PROGRESS_FILE = "progress.json"
OME_ZARR_VERSION = "0.5"
_GROW_STEP = 16  # timepoints added to the time axis at once when it is full


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
        n = spec.frame_shape[0]
        names = spec.channel_names or tuple(f"channel {i}" for i in range(n))
        colours = spec.channel_colors or ("FFFFFF",) * n
        limits = (0.0, 1.0) if spec.dtype.startswith("float") else (0.0, float(np.iinfo(spec.dtype).max))
        ome["omero"] = {
            "channels": [
                {
                    "label": label,
                    "color": colour.lstrip("#").upper(),
                    "active": True,
                    "window": {"min": limits[0], "max": limits[1], "start": limits[0], "end": limits[1]},
                }
                for label, colour in zip(names, colours, strict=True)
            ],
            "rdefs": {"model": "color"},
        }
    return ome


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


class OmeZarrWriter:
    """Append timepoints to a new OME-Zarr v0.5 image. Not thread-safe: one writer thread owns it."""

    def __init__(self, path: str | Path, spec: ImageSpec, expected_timepoints: int = _GROW_STEP) -> None:
        import tensorstore as ts

        self.path = Path(path)
        self.spec = spec
        self.written = 0
        try:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True)
            dims = ["t", "c", "y", "x"] if spec.has_channels else ["t", "y", "x"]
            chunk = [1, 1, *spec.frame_shape[1:]] if spec.has_channels else [1, *spec.frame_shape]
            self._array = ts.open(
                {
                    "driver": "zarr3",
                    "kvstore": {"driver": "file", "path": str(self.path / "0")},
                    "metadata": {
                        "shape": [max(1, expected_timepoints), *spec.frame_shape],
                        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
                        "data_type": spec.dtype,
                        "codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "zstd", "configuration": {"level": 1}},
                        ],
                        "dimension_names": dims,
                        "fill_value": 0,
                    },
                    "create": True,
                },
            ).result()
            self._write_group_metadata()
            _write_json_atomic(self.path / PROGRESS_FILE, {"timepoints_written": 0})
        except OSError as exc:
            reason = exc.strerror or exc
            raise InputDataError(f"cannot create {self.path}: {reason}; choose a writable folder") from None

    def _write_group_metadata(self) -> None:
        group = {
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {"ome": _ome_attributes(self.spec), "imcsr_live": self.spec.attributes},
        }
        _write_json_atomic(self.path / "zarr.json", group)

    def append(self, frame: np.ndarray) -> int:
        """Write the next timepoint; it is on disk when this returns. Returns its index."""
        if frame.shape != self.spec.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match the recording's {self.spec.frame_shape}")
        t = self.written
        if t >= self._array.shape[0]:
            new_shape = [t + _GROW_STEP, *self.spec.frame_shape]
            self._array = self._array.resize(exclusive_max=new_shape).result()
        self._array[t].write(np.asarray(frame, dtype=self.spec.dtype)).result()
        self.written = t + 1
        _write_json_atomic(self.path / PROGRESS_FILE, {"timepoints_written": self.written})
        return t

    def update_attributes(self, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into the ``imcsr_live`` attributes (e.g. provenance known only at the end)."""
        self.spec.attributes.update(extra)
        self._write_group_metadata()

    def close(self) -> None:
        """Trim the time axis to the timepoints written."""
        if self.written and self._array.shape[0] != self.written:
            self._array = self._array.resize(
                exclusive_max=[self.written, *self.spec.frame_shape], shrink_only=True
            ).result()


def read_ome_zarr(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read every finished timepoint of an image written by :class:`OmeZarrWriter` and its group attributes."""
    import tensorstore as ts

    path = Path(path)
    group_file = path / "zarr.json"
    if not group_file.is_file():
        raise InputDataError(f"{path} is not an OME-Zarr image (no zarr.json); check the path")
    attributes = json.loads(group_file.read_text())["attributes"]
    progress = path / PROGRESS_FILE
    array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path / "0")}}).result()
    count = json.loads(progress.read_text())["timepoints_written"] if progress.exists() else array.shape[0]
    return array[:count].read().result(), attributes


def channel_names(attributes: dict[str, Any]) -> Sequence[str]:
    """Channel labels from OME-Zarr group attributes."""
    return [c["label"] for c in attributes.get("ome", {}).get("omero", {}).get("channels", [])]
