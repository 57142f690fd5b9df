"""Raw SIM readers: TIFF / OME-TIFF / OME-Zarr / zarr v3 / MRC round trips, flat stacks, and helpful errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from imcsr_live.errors import InputDataError
from imcsr_live.io.raw_readers import RawFile, read_raw_stack
from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter

F = 9
EXPECTED = r"\(9, Y, X\) or \(T, 9, Y, X\) angle-major"


def counts(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, size=shape, dtype=np.uint16)


def check(raw: RawFile, expected: np.ndarray, fmt: str) -> None:
    assert raw.source_format == fmt
    assert raw.data.dtype == np.uint16
    np.testing.assert_array_equal(raw.data, expected)


# --- round trips ------------------------------------------------------------------------------------------------


def test_plain_tiff_single_timepoint_and_time_lapse(tmp_path: Path) -> None:
    one = counts((F, 12, 10))
    tifffile.imwrite(tmp_path / "one.tif", one)
    raw = read_raw_stack(tmp_path / "one.tif", F)
    check(raw, one[None], "tiff")
    assert raw.pixel_size_um is None and raw.time_increment_s is None
    many = counts((3, F, 12, 10), seed=1)
    tifffile.imwrite(tmp_path / "many.tiff", many)
    check(read_raw_stack(str(tmp_path / "many.tiff"), F), many, "tiff")


def test_ome_tiff_with_metadata(tmp_path: Path) -> None:
    frames = counts((2, F, 8, 6))
    meta = StackMetadata(axes="TCYX", pixel_size_um=0.0626, time_increment_s=1.5)
    mm = create_timelapse(tmp_path / "raw.ome.tif", frames.shape, np.uint16, meta)
    mm[:] = frames
    mm.flush()
    del mm
    raw = read_raw_stack(tmp_path / "raw.ome.tif", F)
    check(raw, frames, "tiff")
    assert raw.pixel_size_um == pytest.approx(0.0626)
    assert raw.time_increment_s == pytest.approx(1.5)


def _write_raw_zarr(path: Path, frames: np.ndarray, close: bool = True) -> None:
    spec = ImageSpec(
        frame_shape=frames.shape[1:], dtype="uint16", pixel_size_um=0.0626, time_increment_s=2.0,
        channel_names=tuple(f"a{a}p{p}" for a in range(3) for p in range(3)), name="raw",
        attributes={"order": "angle-major"},
    )  # fmt: skip
    writer = OmeZarrWriter(path, spec, expected_timepoints=8)
    for frame in frames:
        writer.append(frame)
    if close:
        writer.close()


def test_ome_zarr_raw_sub_image_and_recording_root(tmp_path: Path) -> None:
    frames = counts((3, F, 8, 6))
    rec = tmp_path / "REC.ome.zarr"
    separated = ImageSpec((3, 16, 12), "float32", 0.0313, 2.0, name="separated", attributes={"app": "imcsr-live"})
    OmeZarrWriter(rec, separated).close()
    _write_raw_zarr(rec / "raw", frames)
    raw = read_raw_stack(rec / "raw", F)
    check(raw, frames, "ome-zarr")
    assert raw.pixel_size_um == pytest.approx(0.0626)
    assert raw.time_increment_s == pytest.approx(2.0)
    check(read_raw_stack(rec, F), frames, "ome-zarr")  # the recording root leads to its raw frames


def test_ome_zarr_honours_progress_of_an_unfinished_recording(tmp_path: Path) -> None:
    frames = counts((2, F, 8, 6))
    _write_raw_zarr(tmp_path / "raw.ome.zarr", frames, close=False)  # time axis still 8 long
    check(read_raw_stack(tmp_path / "raw.ome.zarr", F), frames, "ome-zarr")


def test_plain_zarr_v3_array(tmp_path: Path) -> None:
    import tensorstore as ts

    frames = counts((2, F, 8, 6))
    path = tmp_path / "plain.zarr"
    array = ts.open(
        {
            "driver": "zarr3",
            "kvstore": {"driver": "file", "path": str(path)},
            "metadata": {"shape": list(frames.shape), "data_type": "uint16"},
            "create": True,
        }
    ).result()
    array.write(frames).result()
    raw = read_raw_stack(path, F)
    check(raw, frames, "ome-zarr")
    assert raw.pixel_size_um is None


def test_mrc_biosr_flat_stack_and_voxel_size(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = counts((2, F, 8, 6))
    with mrcfile.new(tmp_path / "RawSIMData_gt.mrc") as mrc:
        mrc.set_data(frames.reshape(2 * F, 8, 6))  # BioSR: 9 frames per timepoint along the first axis
        mrc.voxel_size = 626.0  # Angstrom
    with caplog.at_level(logging.DEBUG, logger="imcsr_live.io.raw_readers"):
        raw = read_raw_stack(tmp_path / "RawSIMData_gt.mrc", F)
    check(raw, frames, "mrc")
    assert raw.pixel_size_um == pytest.approx(0.0626)
    assert raw.time_increment_s is None
    assert "flat stack of 18 frames read as 2 timepoints of 9" in caplog.text


def test_mrc_single_timepoint_int16_without_voxel_size(tmp_path: Path) -> None:
    frames = counts((F, 8, 6)).astype(np.int16)
    with mrcfile.new(tmp_path / "one.mrc") as mrc:
        mrc.set_data(frames)
    raw = read_raw_stack(tmp_path / "one.mrc", F)
    check(raw, frames[None].astype(np.uint16), "mrc")
    assert raw.pixel_size_um is None


def test_flat_tiff_stack_and_singleton_axes(tmp_path: Path) -> None:
    frames = counts((2, F, 8, 6))
    tifffile.imwrite(tmp_path / "flat.tif", frames.reshape(2 * F, 8, 6))
    check(read_raw_stack(tmp_path / "flat.tif", F), frames, "tiff")
    tifffile.imwrite(tmp_path / "hyper.tif", frames[:, None], metadata={"axes": "TZCYX"})
    check(read_raw_stack(tmp_path / "hyper.tif", F), frames, "tiff")


# --- dtypes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.uint32])
def test_integer_types_that_fit_become_uint16(tmp_path: Path, dtype: type) -> None:
    frames = counts((F, 8, 6)) % 200
    tifffile.imwrite(tmp_path / "ints.tif", frames.astype(dtype))
    check(read_raw_stack(tmp_path / "ints.tif", F), frames[None], "tiff")


def test_integral_float_is_converted_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = counts((F, 8, 6))
    tifffile.imwrite(tmp_path / "float.tif", frames.astype(np.float32))
    with caplog.at_level(logging.WARNING, logger="imcsr_live.io.raw_readers"):
        check(read_raw_stack(tmp_path / "float.tif", F), frames[None], "tiff")
    assert "converted to uint16" in caplog.text


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.array([-1, 5], np.int16), r"int16 values span -1\.\.5, outside camera counts"),
        (np.array([0, 70000], np.int32), r"int32 values span 0\.\.70000"),
        (np.array([-0.5, 3.0], np.float32), r"float32 values span -0\.5\.\.3"),
        (np.array([np.nan, 3.0], np.float32), "NaN or infinite"),
        (np.array([1.5, 3.0], np.float32), "not whole numbers"),
        (np.array([True, False]), "bool data cannot hold camera counts"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, values: np.ndarray, match: str) -> None:
    data = np.resize(values, (F, 4, 4))
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with pytest.raises(InputDataError, match=match) as info:
        read_raw_stack(path, F)
    assert str(path) in str(info.value)


# --- shapes and paths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "extra"),
    [
        ((16, 16), ""),  # a single frame
        ((10, 8, 6), ""),  # not a multiple of 9
        ((2, 8, 8, 6), ""),  # wrong frames per timepoint
        ((F, 2, 8, 6), r"it looks like \(9, T, Y, X\)"),  # time axis inside
        ((2, 2, F, 8, 6), ""),  # 5-D without singleton axes
    ],
)
def test_wrong_shapes_name_file_shape_and_expectation(tmp_path: Path, shape: tuple[int, ...], extra: str) -> None:
    path = tmp_path / "shape.tif"
    tifffile.imwrite(path, np.zeros(shape, np.uint16))
    with pytest.raises(InputDataError, match=EXPECTED) as info:
        read_raw_stack(path, F)
    message = str(info.value)
    assert str(path) in message and "check [sim] angles/phases" in message and "\n" not in message
    assert f"shape {shape}" in message
    if extra:
        assert info.match(extra)


def test_zarr_does_not_unflatten(tmp_path: Path) -> None:
    spec = ImageSpec((8, 6), "uint16", 0.1, 1.0, name="raw")
    writer = OmeZarrWriter(tmp_path / "flat.ome.zarr", spec)
    for frame in counts((18, 8, 6)):
        writer.append(frame)
    writer.close()
    with pytest.raises(InputDataError, match=r"shape \(18, 8, 6\); expected .*angle-major;"):
        read_raw_stack(tmp_path / "flat.ome.zarr", F)


def test_empty_inputs(tmp_path: Path) -> None:
    with mrcfile.new(tmp_path / "empty.mrc") as mrc:
        mrc.set_data(np.zeros((0, 8, 6), np.uint16))
    with pytest.raises(InputDataError, match="holds no pixels"):
        read_raw_stack(tmp_path / "empty.mrc", F)
    _write_raw_zarr(tmp_path / "unstarted.ome.zarr", np.zeros((0, F, 8, 6), np.uint16), close=False)
    with pytest.raises(InputDataError, match=r"unstarted\.ome\.zarr holds no pixels"):
        read_raw_stack(tmp_path / "unstarted.ome.zarr", F)


def test_missing_and_unsupported_paths(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"nothere\.tif not found"):
        read_raw_stack(tmp_path / "nothere.tif", F)
    with pytest.raises(InputDataError, match=r"nothere\.ome\.zarr not found"):
        read_raw_stack(tmp_path / "nothere.ome.zarr", F)
    (tmp_path / "frames.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputDataError, match=r"unsupported raw file type \.png"):
        read_raw_stack(tmp_path / "frames.png", F)
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputDataError, match="not a zarr image"):
        read_raw_stack(tmp_path / "folder", F)
    (tmp_path / "broken.zarr").mkdir()
    with pytest.raises(InputDataError, match=r"no zarr\.json"):
        read_raw_stack(tmp_path / "broken.zarr", F)
    (tmp_path / "broken.zarr" / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group"}))
    with pytest.raises(InputDataError, match="not a readable OME-Zarr image"):
        read_raw_stack(tmp_path / "broken.zarr", F)
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputDataError, match="not a readable TIFF"):
        read_raw_stack(tmp_path / "junk.tif", F)
    (tmp_path / "junk.mrc").write_bytes(b"\x00" * 10)
    with pytest.raises(InputDataError, match=r"junk\.mrc is not a readable MRC file"):
        read_raw_stack(tmp_path / "junk.mrc", F)
