"""Raw SIM stacks from TIFF / OME-TIFF, OME-Zarr (or a plain zarr v3 array) and MRC, checked and shaped alike.

Every reader ends in :class:`RawFile`: uint16 camera counts shaped ``(T, F, Y, X)`` with ``F`` the frames per
timepoint (angles x phases), in the order they are stored (angle-major for files this app writes). Accepted layouts:

- ``(F, Y, X)``: one timepoint;
- ``(T, F, Y, X)``;
- TIFF and MRC only: a flat ``(T*F, Y, X)`` stack, as BioSR stores raw SIM in MRC files.

Anything else, a dtype that cannot hold camera counts, an empty file or a missing path raises
:class:`~imcsr_live.errors.InputDataError` with one line that names the file and says what was expected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imcsr_live.errors import InputDataError

log = logging.getLogger(__name__)

_UINT16_MAX = int(np.iinfo(np.uint16).max)
_ANGSTROM_PER_UM = 1e4


@dataclass(frozen=True)
class RawFile:
    """A raw SIM time-lapse as read from disk."""

    data: np.ndarray  # uint16 (T, frames_per_timepoint, Y, X), angle-major as stored
    pixel_size_um: float | None
    time_increment_s: float | None
    source_format: str  # "tiff" | "ome-zarr" | "mrc"


def read_raw_stack(path: str | Path, frames_per_timepoint: int) -> RawFile:
    """Read a raw SIM stack in any supported format as uint16 ``(T, frames_per_timepoint, Y, X)``."""
    path = Path(path)
    if frames_per_timepoint < 1:
        raise ValueError(f"frames_per_timepoint must be >= 1, got {frames_per_timepoint}")
    if not path.exists():
        raise InputDataError(f"{path} not found; check the path")
    name = path.name.lower()
    if path.is_dir():
        if name.endswith(".zarr") or (path / "zarr.json").is_file():
            data, pixel_um, dt, fmt = _read_zarr(path)
        else:
            raise InputDataError(f"{path} is a folder but not a zarr image (no zarr.json); give a raw file or .zarr")
    elif name.endswith((".tif", ".tiff")):
        data, pixel_um, dt, fmt = _read_tiff(path)
    elif name.endswith(".mrc"):
        data, pixel_um, dt, fmt = _read_mrc(path)
    else:
        raise InputDataError(
            f"{path}: unsupported raw file type {path.suffix or '(none)'}; use .tif/.ome.tif, .ome.zarr or .mrc"
        )
    data = _shape_checked(path, data, frames_per_timepoint, allow_flat=fmt in ("tiff", "mrc"))
    data = _as_uint16(path, data)
    return RawFile(data=data, pixel_size_um=pixel_um, time_increment_s=dt, source_format=fmt)


# --- format readers: (array as stored, pixel size um, time increment s, format name) --------------------------


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None, float | None, str]:
    from imcsr_live.io.tiff import read_tiff

    data, meta = read_tiff(path)
    return data, meta.pixel_size_um, meta.time_increment_s, "tiff"


def _read_zarr(path: Path) -> tuple[np.ndarray, float | None, float | None, str]:
    group_file = path / "zarr.json"
    if not group_file.is_file():
        raise InputDataError(f"{path} is not a zarr v3 image (no zarr.json); check the path")
    try:
        node = json.loads(group_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"{path}/zarr.json cannot be read ({exc})") from None
    if node.get("node_type") == "array":
        return _read_zarr_array(path), None, None, "ome-zarr"
    attributes = node.get("attributes", {})
    raw_child = path / "raw"
    if attributes.get("imcsr_live", {}).get("order") != "angle-major" and (raw_child / "zarr.json").is_file():
        # A recording root holds the separated image; its raw frames are the ``raw`` sub-image.
        log.info("%s is a recording; reading its raw sub-image %s", path, raw_child)
        return _read_zarr(raw_child)
    from imcsr_live.io.zarr import read_ome_zarr

    try:
        data, attributes = read_ome_zarr(path)
    except (ValueError, KeyError, OSError) as exc:  # tensorstore reports a bad/missing array as ValueError
        raise InputDataError(f"{path} is not a readable OME-Zarr image ({exc})") from None
    pixel_um, dt = _ome_zarr_scales(attributes)
    return np.asarray(data), pixel_um, dt, "ome-zarr"


def _read_zarr_array(path: Path) -> np.ndarray:
    import tensorstore as ts

    try:
        array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}).result()
        return np.asarray(array.read().result())
    except ValueError as exc:
        raise InputDataError(f"{path} is not a readable zarr v3 array ({exc})") from None


def _ome_zarr_scales(attributes: dict[str, Any]) -> tuple[float | None, float | None]:
    """Pixel size (x axis, um) and time step (s) from the first multiscale's first dataset, when present."""
    try:
        multiscale = attributes["ome"]["multiscales"][0]
        axes = multiscale["axes"]
        transforms = multiscale["datasets"][0]["coordinateTransformations"]
        scale = next(t["scale"] for t in transforms if t.get("type") == "scale")
    except (KeyError, IndexError, TypeError, StopIteration):
        return None, None
    pixel_um = dt = None
    for axis, value in zip(axes, scale, strict=False):
        if axis.get("name") == "x" and axis.get("unit", "micrometer") == "micrometer":
            pixel_um = float(value)
        elif axis.get("type") == "time" and axis.get("unit", "second") == "second":
            dt = float(value)
    return pixel_um, dt


def _read_mrc(path: Path) -> tuple[np.ndarray, float | None, float | None, str]:
    import mrcfile

    try:
        with mrcfile.open(path, mode="r", permissive=True) as mrc:
            data = None if mrc.data is None else np.array(mrc.data)
            mx, cella_x = int(mrc.header.mx), float(mrc.header.cella.x)  # voxel size = cell length / samples
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{path} is not a readable MRC file ({exc})") from None
    if data is None:
        raise InputDataError(f"{path}: the MRC header is not understood, so no pixel data could be read")
    pixel_um = cella_x / mx / _ANGSTROM_PER_UM if mx > 0 and cella_x > 0 else None
    return data, pixel_um, None, "mrc"


# --- checks -----------------------------------------------------------------------------------------------------


def _shape_checked(path: Path, data: np.ndarray, n: int, *, allow_flat: bool) -> np.ndarray:
    expected = f"({n}, Y, X) or (T, {n}, Y, X) angle-major"
    if allow_flat:
        expected += f" or a flat (T*{n}, Y, X) stack"
    if data.size == 0:
        raise InputDataError(f"{path} holds no pixels (shape {data.shape}); expected {expected}")
    if data.ndim > 4:
        # ImageJ-style hyperstacks carry singleton Z/C axes; drop them, but never Y or X.
        singletons = tuple(i for i in range(data.ndim - 2) if data.shape[i] == 1)
        squeezed = data.squeeze(axis=singletons)
        if squeezed.ndim >= 3:
            log.debug("%s: dropped singleton axes %s of shape %s", path, singletons, data.shape)
            data = squeezed
    if data.ndim == 3 and data.shape[0] == n:
        return data[None]
    if data.ndim == 3 and allow_flat and data.shape[0] % n == 0:
        t = data.shape[0] // n
        log.debug("%s: flat stack of %d frames read as %d timepoints of %d", path, data.shape[0], t, n)
        return data.reshape(t, n, *data.shape[1:])
    if data.ndim == 4 and data.shape[1] == n:
        return data
    hint = "check [sim] angles/phases"
    if data.ndim == 4 and data.shape[0] == n:
        hint = f"it looks like ({n}, T, Y, X): store timepoints first, or " + hint
    raise InputDataError(f"{path}: raw SIM data has shape {data.shape}; expected {expected}; {hint}")


def _as_uint16(path: Path, data: np.ndarray) -> np.ndarray:
    """Camera counts as uint16; lossless conversions only."""
    if data.dtype == np.uint16:
        return data
    kind = data.dtype.kind
    if kind in "ui":
        low, high = int(data.min()), int(data.max())
        if low < 0 or high > _UINT16_MAX:
            raise InputDataError(
                f"{path}: {data.dtype} values span {low}..{high}, outside camera counts 0..{_UINT16_MAX}; "
                "give the raw uint16 frames"
            )
        return data.astype(np.uint16)
    if kind == "f":
        if not np.isfinite(data).all():
            raise InputDataError(f"{path}: {data.dtype} data contains NaN or infinite values; give raw camera counts")
        low_f, high_f = float(data.min()), float(data.max())
        if low_f < 0 or high_f > _UINT16_MAX:
            raise InputDataError(
                f"{path}: {data.dtype} values span {low_f:g}..{high_f:g}, outside camera counts 0..{_UINT16_MAX}; "
                "give the raw uint16 frames (not background-subtracted or normalised data)"
            )
        if not np.array_equal(data, np.round(data)):
            raise InputDataError(
                f"{path}: {data.dtype} values are not whole numbers, so they are not raw camera counts; "
                "give the raw uint16 frames"
            )
        log.warning("%s: %s data holds whole camera counts; converted to uint16", path, data.dtype)
        return data.astype(np.uint16)
    raise InputDataError(f"{path}: {data.dtype} data cannot hold camera counts; give raw uint16 frames")
