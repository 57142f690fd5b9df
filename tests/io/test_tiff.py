"""OME-TIFF time-lapse files: written frame by frame, read back with their metadata, readable mid-way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imcsr_live.errors import InputDataError
from imcsr_live.io.tiff import StackMetadata, create_timelapse, read_tiff


def test_round_trip_with_metadata(tmp_path: Path) -> None:
    meta = StackMetadata(
        axes="TCYX",
        pixel_size_um=0.0313,
        time_increment_s=2.0,
        channel_names=("MT", "ER", "Lyso"),
        channel_colors=("#00FF00", "#FF00FF", "#00FFFF"),
        extra={"photons": 300, "seed": 4},
    )
    rng = np.random.default_rng(0)
    frames = rng.random((3, 3, 16, 20)).astype(np.float32)
    mm = create_timelapse(tmp_path / "x.ome.tif", frames.shape, np.float32, meta)
    for t in range(3):
        mm[t] = frames[t]
        mm.flush()
    del mm
    data, back = read_tiff(tmp_path / "x.ome.tif")
    np.testing.assert_array_equal(data, frames)
    assert back == meta


def test_file_is_readable_before_it_is_finished(tmp_path: Path) -> None:
    path = tmp_path / "partial.tif"
    mm = create_timelapse(path, (4, 9, 8, 8), np.uint16, StackMetadata(axes="TCYX"))
    mm[0] = 7
    mm.flush()
    data, _ = read_tiff(path)  # the writer still holds the file open
    assert data.shape == (4, 9, 8, 8)
    assert (data[0] == 7).all() and (data[1:] == 0).all()
    del mm


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not found"):
        read_tiff(tmp_path / "nope.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(InputDataError, match="not a readable TIFF"):
        read_tiff(junk)


@pytest.mark.parametrize("ome", [False, True])
def test_a_truncated_tiff_is_refused_as_truncated_at_every_cut(tmp_path: Path, ome: bool, capfd) -> None:
    import tifffile

    whole = tmp_path / "whole.tif"
    data = np.arange(2 * 9 * 16 * 16, dtype=np.uint16).reshape(2, 9, 16, 16)
    tifffile.imwrite(whole, data, ome=ome, metadata={"axes": "TCYX"})
    content = whole.read_bytes()
    cut = tmp_path / "cut.tif"
    pixels_end = len(content) - 200  # past the header, into or after the pixel data
    for size in range(16, pixels_end, max(1, pixels_end // 40)):
        cut.write_bytes(content[:size])
        with pytest.raises(InputDataError, match=r"cut\.tif is truncated or damaged: .*; re-copy it"):
            read_tiff(cut)
    assert capfd.readouterr().err == ""  # tifffile's own complaints are not printed
    assert (read_tiff(whole)[0] == data).all()


def test_appender_grows_past_its_estimate_and_keeps_every_deltat(tmp_path: Path) -> None:
    import tifffile

    from imcsr_live.io.tiff import OmeTiffAppender

    path = tmp_path / "grow.ome.tif"
    meta = StackMetadata(axes="TCYX", pixel_size_um=0.03, time_increment_s=1.0, channel_names=("a", "b", "c"))
    writer = OmeTiffAppender(path, (3, 8, 8), "uint16", meta, expected_timepoints=1)  # far too few reserved
    for t in range(40):
        writer.append(np.full((3, 8, 8), t + 1, np.uint16), time_s=0.5 * t)
        assert read_tiff(path)[0].shape[0] == t + 1 if t else True  # readable, and exact, at every step
    writer.close()
    data, back = read_tiff(path)
    assert data.shape == (40, 3, 8, 8) and (data[:, 0, 0, 0] == np.arange(1, 41)).all()
    assert back.channel_names == ("a", "b", "c")
    with tifffile.TiffFile(path) as tif:
        planes = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]["Plane"]
    assert [p["DeltaT"] for p in planes if p["TheC"] == 0] == [0.5 * t for t in range(40)]
