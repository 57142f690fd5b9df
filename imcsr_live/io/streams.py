"""Write a time-lapse frame by frame in the format its path names: ``.ome.zarr`` (default) or ``.ome.tif``.

Both writers share one small interface (:class:`StreamWriter`) so recorders and offline tools do not care.
Both grow by one timepoint per ``append`` and hold finished timepoints only; ``frames`` is a hint.
Channel colours and display windows follow the live view's settings when ``spec.attributes["display"]`` has them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imcsr_live.io.tiff import OmeTiffAppender, StackMetadata
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter, channel_looks

TIFF_SUFFIXES = (".tif", ".tiff")


class StreamWriter(Protocol):
    @property
    def written(self) -> int: ...

    def append(self, frame: np.ndarray, time_s: float | None = None) -> int: ...
    def check_present(self) -> None: ...
    def update_attributes(self, extra: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class OmeTiffWriter:
    """OME-TIFF time-lapse with the :class:`StreamWriter` interface (pages appended per finished timepoint)."""

    def __init__(self, path: Path, spec: ImageSpec, frames: int) -> None:
        axes = "TCYX" if spec.has_channels else "TYX"
        colours = tuple("#" + look.color for look in channel_looks(spec)) if spec.has_channels else ()
        meta = StackMetadata(
            axes=axes, pixel_size_um=spec.pixel_size_um, time_increment_s=spec.time_increment_s,
            channel_names=spec.channel_names, channel_colors=colours, extra=spec.attributes,
        )  # fmt: skip
        self.path = Path(path)
        self._file = OmeTiffAppender(self.path, spec.frame_shape, spec.dtype, meta, expected_timepoints=frames)

    @property
    def written(self) -> int:
        return self._file.written

    def append(self, frame: np.ndarray, time_s: float | None = None) -> int:
        return self._file.append(frame, time_s)

    def check_present(self) -> None:
        self._file.check_present()

    def update_attributes(self, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into the provenance JSON in the OME-XML ``Description`` (final at :meth:`close`)."""
        self._file.update_metadata(extra)

    def close(self) -> None:
        self._file.close()


TIMEPOINTS_SUFFIX = ".timepoints.jsonl"


def tiff_stem(path: Path) -> str:
    """``rec`` for ``rec.ome.tif`` / ``rec.tiff`` / ``rec``."""
    return path.name.removesuffix(".tiff").removesuffix(".tif").removesuffix(".ome")


def timepoints_file(path: Path, fmt: str | None = None) -> Path:
    """Where a recording at ``path`` keeps its per-timepoint JSON lines: always beside it, never inside a store.

    OME-Zarr ``rec.ome.zarr`` -> ``rec.ome.zarr.timepoints.jsonl``; OME-TIFF ``rec.ome.tif`` -> ``rec.timepoints.jsonl``
    (``fmt``, ``"ome-zarr"`` or ``"ome-tiff"``, defaults to what the path looks like).
    """
    if fmt == "ome-tiff" or (fmt is None and is_tiff(path)):
        return path.with_name(tiff_stem(path) + TIMEPOINTS_SUFFIX)
    return path.with_name(path.name + TIMEPOINTS_SUFFIX)


def find_timepoints_file(path: Path) -> Path | None:
    """The per-timepoint JSON lines of an existing recording, also where earlier versions put them.

    Recordings made before the sidecars moved out of the store kept ``rec.ome.zarr/timepoints.jsonl``.
    """
    for candidate in (timepoints_file(path), path / "timepoints.jsonl", timepoints_file(path, "ome-tiff")):
        if candidate.is_file():
            return candidate
    return None


def is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES


def open_stream(path: Path, spec: ImageSpec, frames: int) -> StreamWriter:
    """An OME-TIFF writer for ``*.tif``/``*.tiff`` paths, an OME-Zarr writer otherwise."""
    if is_tiff(path):
        return OmeTiffWriter(path, spec, frames)
    return OmeZarrWriter(path, spec, expected_timepoints=frames)


def read_timepoints(path: Path) -> list[dict[str, Any]]:
    """Every per-timepoint record of the recording at ``path`` (new or old sidecar place); [] if there is none.

    A last line cut short by a kill or a full disk is skipped.
    """
    found = find_timepoints_file(Path(path))
    if found is None:
        return []
    records = []
    for line in found.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
