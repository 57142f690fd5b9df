"""Write a time-lapse frame by frame in the format its path names: ``.ome.zarr`` (default) or ``.ome.tif``.

Both writers share one small interface (:class:`StreamWriter`) so recorders and offline tools do not care.
OME-TIFF files are pre-allocated, so their frame count must be known up front; OME-Zarr grows as needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter

TIFF_SUFFIXES = (".tif", ".tiff")


class StreamWriter(Protocol):
    def append(self, frame: np.ndarray) -> int: ...
    def update_attributes(self, extra: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class OmeTiffWriter:
    """Pre-allocated OME-TIFF time-lapse with the :class:`StreamWriter` interface."""

    def __init__(self, path: Path, spec: ImageSpec, frames: int) -> None:
        axes = "TCYX" if spec.has_channels else "TYX"
        meta = StackMetadata(
            axes=axes, pixel_size_um=spec.pixel_size_um, time_increment_s=spec.time_increment_s,
            channel_names=spec.channel_names, channel_colors=spec.channel_colors, extra=spec.attributes,
        )  # fmt: skip
        self.path = Path(path)
        self._map = create_timelapse(self.path, (frames, *spec.frame_shape), spec.dtype, meta)
        self.written = 0

    def append(self, frame: np.ndarray) -> int:
        if self.written >= self._map.shape[0]:
            raise OSError(f"the OME-TIFF was created for {self._map.shape[0]} timepoints and is full")
        self._map[self.written] = frame
        self._map.flush()
        self.written += 1
        return self.written - 1

    def update_attributes(self, extra: dict[str, Any]) -> None:
        """OME-TIFF metadata is fixed at creation; dynamic provenance goes to a JSON-lines file beside it."""

    def close(self) -> None:
        del self._map


def is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES


def open_stream(path: Path, spec: ImageSpec, frames: int) -> StreamWriter:
    """An OME-TIFF writer for ``*.tif``/``*.tiff`` paths, an OME-Zarr writer otherwise."""
    if is_tiff(path):
        return OmeTiffWriter(path, spec, frames)
    return OmeZarrWriter(path, spec, expected_timepoints=frames)
