"""OME-TIFF time-lapses written frame by frame, and a checked reader.

Two writers, neither through a memory map (a page fault on a full disk kills the process with SIGBUS):

* :class:`OmeTiffAppender` (recordings) appends one page per plane as each timepoint finishes, then rewrites the
  OME-XML in place (reserved space in the first page's description) to say how many timepoints exist. A reader
  never sees an unfinished or zero-filled timepoint, even after a kill; ``Plane DeltaT`` holds the real times.
* :func:`create_timelapse` (offline tools, frame count known) pre-allocates the file and writes timepoints into
  its contiguous pixel block with plain ``pwrite`` calls.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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


class TimelapseFile:
    """Pixels of a pre-allocated OME-TIFF, written one timepoint at a time with plain writes (never mapped)."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> None:
        self.path, self.shape, self.dtype, self._offset = path, shape, dtype, offset
        self._frame_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        self._fd: int | None = os.open(path, os.O_WRONLY)

    def __setitem__(self, t: int | slice, value: np.ndarray | float) -> None:
        if isinstance(t, slice):
            values = np.broadcast_to(
                np.asarray(value, dtype=self.dtype), (len(range(*t.indices(self.shape[0]))), *self.shape[1:])
            )
            for i, index in enumerate(range(*t.indices(self.shape[0]))):
                self[index] = values[i]
            return
        if not 0 <= t < self.shape[0]:
            raise IndexError(f"timepoint {t} outside 0..{self.shape[0] - 1}")
        data = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=self.dtype), self.shape[1:]))
        buffer, position = memoryview(data.data).cast("B"), self._offset + t * self._frame_bytes
        assert self._fd is not None, "file closed"
        while buffer:  # a full disk raises OSError (ENOSPC) here instead of SIGBUS
            done = os.pwrite(self._fd, buffer, position)
            buffer, position = buffer[done:], position + done

    def flush(self) -> None:
        """Writes are unbuffered; kept for the memory-map-like interface."""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


def create_timelapse(
    path: str | Path, shape: tuple[int, ...], dtype: npt.DTypeLike, meta: StackMetadata
) -> TimelapseFile:
    """Create an OME-TIFF of the given shape filled with zeros and return a writer for its pixels.

    Assign whole timepoints (``out[t] = frame``); the file is valid at every moment.
    """
    if len(meta.axes) != len(shape):
        raise ValueError(f"axes {meta.axes!r} do not match shape {shape}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mapped = tifffile.memmap(path, shape=shape, dtype=dtype, ome=True, metadata=_ome_metadata(meta))
        offset = int(mapped.offset)  # only where the pixels start: nothing is written through the map
        del mapped
        return TimelapseFile(path, tuple(shape), np.dtype(dtype), offset)
    except OSError as exc:
        raise InputDataError(f"cannot write {path}: {exc.strerror or exc}; choose a writable folder") from None


class FileGoneError(OSError):
    """The file being written was deleted or moved."""


_PLANE_BYTES = 96  # room reserved per <Plane .../> element in the OME-XML
_MAX_RESERVED_PLANES = 4096  # beyond this many planes, DeltaT is written at close (description moved to the end)


class OmeTiffAppender:
    """A (T, [C,] Y, X) OME-TIFF that grows by one timepoint per :meth:`append`; readable at every moment.

    Pages are appended with plain writes and flushed; only then does the OME-XML (rewritten in place) count the
    new timepoint, so the file never describes a timepoint that is not complete. Not thread-safe.
    """

    def __init__(self, path: str | Path, frame_shape: tuple[int, ...], dtype: str, meta: StackMetadata,
                 expected_timepoints: int = 100) -> None:  # fmt: skip
        if len(meta.axes) != len(frame_shape) + 1:
            raise ValueError(f"axes {meta.axes!r} do not match frame shape {frame_shape}")
        self.path = Path(path)
        self.frame_shape = tuple(frame_shape)
        self.dtype = np.dtype(dtype)
        self.meta = meta
        self.written = 0
        self.times_s: list[float] = []
        self._planes = frame_shape[0] if len(frame_shape) == 3 else 1
        self._damaged = False  # a write failed part-way: the IFD chain is cut after the last whole timepoint
        self._description: tuple[int, int] | None = None  # (offset, bytes available) of the OME-XML
        self._description_tag = (0, "<")  # where its IFD entry is, and the file's byte order
        planes = min(max(1, expected_timepoints) * self._planes, _MAX_RESERVED_PLANES)
        self._reserved = len(self._xml(max(1, expected_timepoints), with_planes=False)) + 512 + planes * _PLANE_BYTES
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer: tifffile.TiffWriter | None = tifffile.TiffWriter(self.path, bigtiff=True)
        except OSError as exc:
            raise InputDataError(f"cannot write {self.path}: {exc.strerror or exc}; choose a writable folder") from None

    def _xml(self, count: int, with_planes: bool) -> bytes:
        metadata = _ome_metadata(self.meta)
        axes = metadata.pop("axes")
        if with_planes and self.times_s:
            delta_t = [round(t, 6) for t in self.times_s[:count] for _ in range(self._planes)]
            metadata["Plane"] = {"DeltaT": delta_t, "DeltaTUnit": ["s"] * len(delta_t)}
        y, x = self.frame_shape[-2:]
        omexml = tifffile.OmeXml()
        omexml.addimage(self.dtype, (count, *self.frame_shape), (count * self._planes, 1, 1, y, x, 1), axes=axes,
                        **metadata)  # fmt: skip
        return omexml.tostring(declaration=True).encode()

    def _fitted_xml(self, size: int) -> bytes | None:
        """The OME-XML for the timepoints written, padded to ``size`` bytes; without planes if those do not fit."""
        for with_planes in (True, False):
            xml = self._xml(self.written, with_planes)
            if len(xml) <= size:
                head, _, tail = xml.rpartition(b"</OME>")
                return head + b" " * (size - len(xml)) + b"</OME>" + tail
        return None

    def check_present(self) -> None:
        """Raise :class:`FileGoneError` if the file vanished (writing on would lose every timepoint unseen)."""
        if not self.path.is_file():
            raise FileGoneError(f"{self.path} was deleted or moved while recording")

    def append(self, frame: np.ndarray, time_s: float | None = None) -> int:
        """Write the next timepoint; it is on disk and counted in the OME-XML when this returns. Returns its index.

        ``time_s``: when it was acquired, in seconds from the first timepoint (default: index x time increment).
        """
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match the recording's {self.frame_shape}")
        if self._writer is None or self._damaged:
            raise OSError("the OME-TIFF writer is closed after an earlier failure")
        self.check_present()
        t = self.written
        step = self.meta.time_increment_s or 0.0
        self.times_s.append(float(t * step if time_s is None else time_s))
        planes = np.asarray(frame, dtype=self.dtype).reshape(self._planes, *self.frame_shape[-2:])
        try:
            for i, plane in enumerate(planes):
                description = None
                if t == 0 and i == 0:
                    self.written = 1  # the first page's description is the OME-XML for one timepoint
                    description = self._fitted_xml(self._reserved)
                    self.written = 0
                self._writer.write(plane, photometric="minisblack", metadata=None, description=description)
            self._writer.filehandle.flush()
        except BaseException:
            self.times_s.pop()
            self._damaged = True
            raise
        self.written = t + 1
        if self._description is None:
            with tifffile.TiffFile(self.path) as tif:
                tag = tif.pages.first.tags["ImageDescription"]
                self._description = (tag.valueoffset, tag.count - 1)  # the value ends with a NUL: keep it
                self._description_tag = (tag.offset, tif.tiff.byteorder)
        else:
            self._rewrite_description()
        return t

    def _rewrite_description(self) -> None:
        assert self._description is not None
        offset, size = self._description
        xml = self._fitted_xml(size)
        if xml is None:  # cannot happen with the space reserved; the file stays as it was
            return
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, xml, offset)  # in place: no new disk blocks needed, even on a full disk
        finally:
            os.close(fd)

    def update_metadata(self, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into the JSON provenance in the OME-XML ``Description`` (written at the next timepoint)."""
        self.meta = StackMetadata(**{**self.meta.__dict__, "extra": {**self.meta.extra, **extra}})

    def close(self) -> None:
        """Close the file and write the final OME-XML: the real timepoint count, every plane's ``DeltaT``."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except OSError:
            self._damaged = True
        if self.written == 0 or self._description is None:
            return
        self.check_present()
        if self._damaged:
            self._cut_after_last_timepoint()
        self._rewrite_description()  # the real count, fits in place (and DeltaT when that fits too)
        full = self._xml(self.written, with_planes=True) + b"\0"
        if len(full) - 1 > self._description[1]:
            self._move_description(full)

    def _move_description(self, value: bytes) -> None:
        """Write a longer OME-XML at the end of the file, then point the tag at it (a full disk leaves it as is)."""
        import struct

        entry, byteorder = self._description_tag
        fd = os.open(self.path, os.O_WRONLY)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            end += end % 2  # TIFF values start on a word boundary
            if os.pwrite(fd, value, end) != len(value):
                return  # out of space: the in-place description (real count, no DeltaT) stays
            os.fsync(fd)
            os.pwrite(fd, struct.pack(byteorder + "QQ", len(value), end), entry + 4)  # BigTIFF: count, offset
        except OSError:
            return
        finally:
            os.close(fd)

    def _cut_after_last_timepoint(self) -> None:
        """After a failed write, end the page chain at the last whole timepoint (pages past it are garbage)."""
        with tifffile.TiffFile(self.path) as tif:
            last = tif.pages[self.written * self._planes - 1]
            assert isinstance(last, tifffile.TiffPage)  # pages, not frames: TiffFile's default
            pointer = last.offset + tif.tiff.tagnosize + len(last.tags) * tif.tiff.tagsize
            pointer_size = tif.tiff.offsetsize
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(pointer_size), pointer)
        finally:
            os.close(fd)


def read_tiff(path: str | Path) -> tuple[np.ndarray, StackMetadata]:
    """Read the first series of a (OME-)TIFF and what it says about itself.

    A file cut short (an interrupted copy or download) is refused as truncated or damaged, never read as a
    smaller stack of another shape: tifffile's complaints about offsets past the end, and pixel data that ends
    past the end of the file, both count.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path} not found; check the path")
    past_end = None
    with _tifffile_complaints() as complaints:
        try:
            with tifffile.TiffFile(path) as tif:
                past_end = _data_past_end(tif.pages, path.stat().st_size)
                if tif.series and not past_end:
                    series = tif.series[0]
                    data = series.asarray()
                    axes = series.axes
                    meta = _metadata_from_ome(tif.ome_metadata, axes) if tif.is_ome else StackMetadata(axes=axes)
        except (tifffile.TiffFileError, ValueError) as exc:
            if "not a TIFF file" in str(exc):
                raise InputDataError(f"{path} is not a readable TIFF ({exc})") from None
            complaints.append(str(exc))
    if complaints or past_end:
        reason = past_end or re.sub(r"<[^>]*>\s*", "", complaints[0])  # drop tifffile's object reprs
        raise InputDataError(f"{path} is truncated or damaged: {reason}; re-copy it from its source")
    if not tif.series:
        raise InputDataError(f"{path} holds no image; give a TIFF with pixel data")
    return data, meta


@contextmanager
def _tifffile_complaints() -> Iterator[list[str]]:
    """Collect what tifffile logs while reading (it logs, not raises, most damage) instead of printing it."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("tifffile")
    handler = _Collect(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _data_past_end(pages: Any, file_size: int) -> str | None:
    """Where a page's pixel data would end past the end of the file, say so."""
    for page in pages:
        ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False) if n]
        if ends and max(ends) > file_size:
            return f"page {page.index} needs {max(ends)} bytes, the file has {file_size}"
    return None


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
        f"#{(int(colour) & 0xFFFFFFFF) >> 8:06X}" for c in channels if (colour := c.get("Color")) is not None
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
