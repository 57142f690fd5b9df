"""OME-Zarr v0.5 time-lapse writer: valid metadata, round trip, growth, and readable after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaozarrs

from imcsr_live.errors import InputDataError
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter, channel_names, read_ome_zarr


def spec(**extra: object) -> ImageSpec:
    return ImageSpec(
        frame_shape=(3, 16, 24), dtype="float32", pixel_size_um=0.0313, time_increment_s=2.0,
        channel_names=("Microtubules", "ER", "Lysosomes"), channel_colors=("#00FF00", "#FF00FF", "#00FFFF"),
        name="separated", attributes=dict(extra),
    )  # fmt: skip


def test_round_trip_growth_and_valid_ome_metadata(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = rng.random((5, 3, 16, 24)).astype(np.float32)
    writer = OmeZarrWriter(tmp_path / "rec.ome.zarr", spec(app="imcsr-live"), expected_timepoints=2)
    for frame in frames:  # more timepoints than expected: the time axis grows
        writer.append(frame)
    writer.update_attributes({"dropped_frames": 0})
    writer.close()
    data, attributes = read_ome_zarr(tmp_path / "rec.ome.zarr")
    np.testing.assert_array_equal(data, frames)
    assert channel_names(attributes) == ["Microtubules", "ER", "Lysosomes"]
    assert attributes["imcsr_live"] == {"app": "imcsr-live", "dropped_frames": 0, "timepoints_s": [0, 2, 4, 6, 8]}
    group = (tmp_path / "rec.ome.zarr" / "zarr.json").read_text()
    model = yaozarrs.validate_ome_json(group)  # raises if not OME-Zarr v0.5
    scale = json.loads(group)["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    assert scale["scale"] == [2.0, 1.0, 0.0313, 0.0313]
    assert model is not None


def test_frame_shape_is_checked(tmp_path: Path) -> None:
    writer = OmeZarrWriter(tmp_path / "x.ome.zarr", spec())
    with pytest.raises(ValueError, match="does not match"):
        writer.append(np.zeros((2, 16, 24), np.float32))


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not an OME-Zarr image"):
        read_ome_zarr(tmp_path / "nothing.ome.zarr")


def test_killed_writer_leaves_finished_timepoints(tmp_path: Path) -> None:
    path = tmp_path / "killed.ome.zarr"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter
        w = OmeZarrWriter({str(path)!r}, ImageSpec((2, 64, 64), "uint16", 0.03, 1.0), expected_timepoints=4)
        t = 0
        while True:
            w.append(np.full((2, 64, 64), t + 1, np.uint16))
            t += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            array_meta = path / "0" / "zarr.json"  # the time axis counts finished timepoints only
            if array_meta.exists() and json.loads(array_meta.read_text())["shape"][0] >= 20:
                break
            time.sleep(0.02)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    data, _ = read_ome_zarr(path)
    assert data.shape[0] >= 20
    for t in range(data.shape[0]):  # every listed timepoint is complete and in order
        assert (data[t] == t + 1).all()
