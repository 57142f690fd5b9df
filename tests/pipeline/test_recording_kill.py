"""A live recording killed with SIGKILL opens with every finished timepoint, using the libraries a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import zarr

from imcsr_live.config import load_rig_config
from imcsr_live.io.streams import read_timepoints
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint

SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def tiny_model(folder: Path) -> Path:
    rig = load_rig_config(SIMULATED)
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    save_checkpoint(folder / "tiny", net, structures=[{"name": s.name, "color": s.color} for s in rig.structures])
    return folder / "tiny"


def start_demo(record: Path, model: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "imcsr_live", "demo", "--headless", "--frames", "500", "--interval", "0",
           "--size", "64", "--model", str(model), "--record", str(record)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after(proc: subprocess.Popen[bytes], done: callable, timeout_s: float = 120) -> None:  # type: ignore[valid-type]
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)
        assert done(), "the recording did not get going"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_killed_ome_zarr_recording_opens_with_zarr(tmp_path: Path) -> None:
    record = tmp_path / "rec.ome.zarr"
    array_meta = record / "0" / "zarr.json"  # the time axis counts finished timepoints only

    def written() -> int:
        try:
            return json.loads(array_meta.read_text())["shape"][0]
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    kill_after(start_demo(record, tiny_model(tmp_path)), lambda: written() >= 3)
    finished = written()
    group = zarr.open_group(record, mode="r")
    ome = dict(group.attrs)["ome"]
    assert ome["version"] == "0.5"
    assert [c["label"] for c in ome["omero"]["channels"]] == ["Microtubules", "ER", "Lysosomes"]
    assert dict(group.attrs)["imcsr_live"]["model"]["name"] == "tiny"
    separated = group["0"][:]  # all of it: no zero-filled slots for timepoints that never came
    raw = zarr.open_group(record / "raw", mode="r")["0"][:]
    assert separated.shape[0] == finished and raw.shape[0] >= finished
    assert separated.shape[1:] == (3, 128, 128) and np.isfinite(separated).all()
    assert (raw.reshape(raw.shape[0], -1).min(axis=1) > 0).all()  # every timepoint in the array is complete
    assert finished <= len(read_timepoints(record)) <= finished + 1  # a line is written just before its image


def test_killed_ome_tiff_recording_opens_with_tifffile(tmp_path: Path) -> None:
    record = tmp_path / "rec.ome.tif"
    lines_file = tmp_path / "rec.timepoints.jsonl"

    def written() -> int:
        return len(lines_file.read_text().splitlines()) if lines_file.exists() else 0

    kill_after(start_demo(record, tiny_model(tmp_path)), lambda: written() >= 3)
    finished = written()
    with tifffile.TiffFile(record) as tif:
        assert tif.is_ome
        separated = tif.series[0].asarray()
        names = [c.get("Name") for c in tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]["Channel"]]
    assert names == ["Microtubules", "ER", "Lysosomes"]
    assert separated.shape[1:] == (3, 128, 128)
    assert finished - 1 <= separated.shape[0] <= finished  # the OME-XML counts finished timepoints, not 500;
    # each timepoint's line goes down just before its image, so the lines may be one ahead, never behind
    assert all(separated[t].max() > 0 for t in range(separated.shape[0]))
