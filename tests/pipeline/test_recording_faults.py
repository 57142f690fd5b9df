"""Recording faults never end live imaging, and readers see finished timepoints only, real times, the live look.

Full disk and deleted folders (one message, earlier timepoints intact, nothing recreated), sidecars outside the
zarr hierarchy (no ``ZarrUserWarning``), per-timepoint times, display levels and colours in the metadata.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from imcsr_live.io.streams import read_timepoints
from imcsr_live.io.tiff import read_tiff
from imcsr_live.io.zarr import ImageSpec, read_ome_zarr
from imcsr_live.pipeline.recorder import Recorder, RecordingPlan, RecordItem

SEP = ImageSpec((3, 32, 32), "float32", 0.0313, 2.0, ("MT", "ER", "Lyso"), ("#00FF00", "#FF00FF", "#00FFFF"),
                name="separated", attributes={"app": "imcsr-live"})  # fmt: skip
RAW = ImageSpec((9, 16, 16), "uint16", 0.0626, 2.0, name="raw")
SR = ImageSpec((32, 32), "float32", 0.0313, 2.0, name="sr")
FORMATS = ["ome-zarr", "ome-tiff"]
SIMULATED = Path(__file__).resolve().parents[2] / "hardware_configs" / "simulated.toml"


def item(t: int, acquired_s: float | None = None) -> RecordItem:
    return RecordItem(
        index=t,
        separated=np.full((3, 32, 32), (t + 1) / 10, np.float32),
        raw=np.full((9, 16, 16), 100 + t, np.uint16),
        sr=np.full((32, 32), t + 1, np.float32),
        provenance={"modulation": 0.7},
        acquired_s=acquired_s,
    )


def target(tmp_path: Path, fmt: str) -> Path:
    return tmp_path / ("rec.ome.zarr" if fmt == "ome-zarr" else "rec.ome.tif")


def new_recorder(path: Path, fmt: str, spec: ImageSpec = SEP, expected: int = 10) -> Recorder:
    return Recorder(RecordingPlan(path, fmt, spec, RAW, SR, expected_timepoints=expected))  # type: ignore[arg-type]


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.01)


def read_back(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Separated, raw and SR as a user's reader sees them (tifffile / zarr, no help from our metadata)."""
    if fmt == "ome-zarr":
        streams = [zarr.open_group(path / sub, mode="r")["0"][:] for sub in ("", "raw", "sr")]
        return streams[0], streams[1], streams[2]
    stem = path.name.removesuffix(".ome.tif")
    out = []
    for name in (path.name, f"{stem}.raw.ome.tif", f"{stem}.sr.ome.tif"):
        with tifffile.TiffFile(path.with_name(name)) as tif:
            data = tif.series[0].asarray()
        out.append(data)
    return out[0], out[1], out[2]


def fake_free_space(monkeypatch: pytest.MonkeyPatch, free: list[int]) -> None:
    """``shutil.disk_usage`` reports ``free[0]`` bytes free (change it to fill the disk)."""
    real = shutil.disk_usage

    def usage(path: str | Path):  # type: ignore[no-untyped-def]
        actual = real(path)
        return type(actual)(actual.total, actual.used, free[0])

    monkeypatch.setattr(shutil, "disk_usage", usage)


# -- 1: a full disk ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_stops_recording_with_one_message_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    free = [100 * 2**30]
    fake_free_space(monkeypatch, free)
    path = target(tmp_path, fmt)
    recorder = new_recorder(path, fmt)
    for t in range(2):
        assert recorder.put(item(t))
    wait_until(lambda: recorder.written == 2)
    free[0] = 10 * 2**20  # less than the margin (2x a timepoint + 16 MB)
    recorder.put(item(2))
    wait_until(lambda: not recorder.active)
    message = recorder.error
    assert message is not None and message.startswith("recording stopped at timepoint 2: the disk is full")
    assert "free some disk space" in message and "\n" not in message
    assert recorder.put(item(3)) is False
    recorder.stop({"dropped_frames": 0})
    assert recorder.error == message  # one message, not one per stream or per step
    separated, raw, sr = read_back(path, fmt)
    assert separated.shape == (2, 3, 32, 32) and raw.shape == (2, 9, 16, 16) and sr.shape == (2, 32, 32)
    np.testing.assert_allclose(separated[:, 0, 0, 0], [0.1, 0.2], rtol=1e-6)
    assert (raw[1] == 101).all() and (sr[1] == 2).all()  # the last finished timepoint is intact


def _rig_and_pipeline(timepoints: int | None):  # type: ignore[no-untyped-def]
    from imcsr_live.config import load_rig_config
    from imcsr_live.engine.model_source import random_model
    from imcsr_live.engine.torch_engine import TorchEngine
    from imcsr_live.hardware.simulated import SimulatedBackend
    from imcsr_live.model import IMCSRNetConfig
    from imcsr_live.pipeline.live import LivePipeline, PipelineSettings
    from imcsr_live.recon.reconstructor import Reconstructor
    from imcsr_live.synth.world import WorldSettings

    rig = load_rig_config(SIMULATED)
    cfg = IMCSRNetConfig(in_frames=1, out_channels=3, width=8, groups=1, blocks=1, reduction=2)
    pipeline = LivePipeline(
        SimulatedBackend(rig, WorldSettings(raw_shape=(64, 64), seed=2)), Reconstructor(rig),
        TorchEngine(random_model(cfg, seed=0)), PipelineSettings(interval_s=0.0, timepoints=timepoints, in_frames=1),
    )  # fmt: skip
    return rig, pipeline


@pytest.mark.parametrize("fmt", FORMATS)
def test_live_imaging_goes_on_when_the_disk_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    from dataclasses import replace

    from imcsr_live.pipeline.recording import ModelIdentity, record_item, recording_plan

    free = [100 * 2**30]
    fake_free_space(monkeypatch, free)
    rig, pipeline = _rig_and_pipeline(timepoints=None)
    identity = ModelIdentity("tiny", pipeline.engine.source.weights_sha256, pipeline.engine.name, "fp32")
    path = target(tmp_path, fmt)
    plan = replace(recording_plan(rig, path, (64, 64), identity, expected_timepoints=50), format=fmt)
    pipeline.recorder, pipeline.record_item = Recorder(plan), record_item
    recorder = pipeline.recorder
    pipeline.start()
    try:
        wait_until(lambda: recorder.written >= 2, 120)
        free[0] = 2**20
        wait_until(lambda: not recorder.active, 120)
        separated = pipeline.stats.separated
        wait_until(lambda: pipeline.stats.separated >= separated + 3, 120)  # frames keep coming
        assert pipeline.running
    finally:
        pipeline.stop()
    assert recorder.error is not None and "the disk is full" in recorder.error
    assert sum("disk is full" in event for event in pipeline.events) == 1
    # one ERROR line for the user, not one from the recorder and another from the pipeline
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and "disk is full" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    _, raw, _ = read_back(path, fmt)
    assert raw.shape[0] == recorder.written and (raw.reshape(raw.shape[0], -1).min(axis=1) > 0).all()


# -- 3: the folder deleted mid-run ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_recording_deleted_mid_run_is_reported_and_never_recreated(tmp_path: Path, fmt: str) -> None:
    path = target(tmp_path, fmt)
    recorder = new_recorder(path, fmt)
    for t in range(2):
        assert recorder.put(item(t))
    wait_until(lambda: recorder.written == 2)
    if fmt == "ome-zarr":
        shutil.rmtree(path)  # a clean-up script, the user in a file manager
    else:
        path.unlink()
    recorder.put(item(2))
    wait_until(lambda: not recorder.active)
    message = recorder.error
    assert message is not None and message.startswith("recording stopped at timepoint 2:")
    assert "deleted or moved" in message and "start recording again to a new path" in message
    recorder.stop({"dropped_frames": 0})
    assert recorder.error == message and recorder.written == 2
    assert not path.exists()  # nothing half-made that would fail to open later


# -- 4: only finished timepoints, real times, sidecars outside the store ----------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_unclosed_recording_holds_only_finished_timepoints(tmp_path: Path, fmt: str) -> None:
    """What a reader sees while recording (or after a kill): no zero-filled slots for timepoints not yet taken."""
    path = target(tmp_path, fmt)
    recorder = new_recorder(path, fmt, expected=10)
    for t in range(3):
        assert recorder.put(item(t))
    wait_until(lambda: recorder.written == 3)
    separated, raw, sr = read_back(path, fmt)  # not stopped: the files are as a kill would leave them
    assert separated.shape[0] == raw.shape[0] == sr.shape[0] == 3
    assert (raw.reshape(3, -1).min(axis=1) > 0).all()
    recorder.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_dropped_slots_keep_their_real_times(tmp_path: Path, fmt: str) -> None:
    path = target(tmp_path, fmt)
    recorder = new_recorder(path, fmt)
    for t, acquired in ((0, 100.0), (1, 102.0), (4, 108.5)):  # slots 2 and 3 were dropped upstream
        assert recorder.put(item(t, acquired))
        wait_until(lambda: recorder.written == len(read_timepoints(path)))
    recorder.stop({})
    assert [r["index"] for r in read_timepoints(path)] == [0, 1, 4]
    if fmt == "ome-zarr":
        group = zarr.open_group(path, mode="r")
        assert group["0"].shape[0] == 3
        assert dict(group.attrs)["imcsr_live"]["timepoints_s"] == [0.0, 2.0, 8.5]
    else:
        with tifffile.TiffFile(path) as tif:
            pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        assert pixels["SizeT"] == 3
        assert [p["DeltaT"] for p in pixels["Plane"] if p["TheC"] == 0] == [0.0, 2.0, 8.5]
        assert {p["DeltaTUnit"] for p in pixels["Plane"]} == {"s"}


def test_zarr_readers_find_nothing_foreign_in_the_store(tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    recorder = new_recorder(path, "ome-zarr")
    for t in range(2):
        recorder.put(item(t))
    recorder.stop({})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        group = zarr.open_group(path, mode="r")
        names = sorted(name for name, _ in group.members(max_depth=None))
        assert group["0"].shape[0] == 2
    assert names == ["0", "raw", "raw/0", "sr", "sr/0"]
    assert [str(w.message) for w in caught] == []
    assert (tmp_path / "rec.ome.zarr.timepoints.jsonl").is_file()


def test_recordings_from_earlier_versions_still_read(tmp_path: Path) -> None:
    """Old layout: ``timepoints.jsonl`` and ``progress.json`` inside the store, the time axis padded."""
    path = tmp_path / "old.ome.zarr"
    recorder = new_recorder(path, "ome-zarr")
    for t in range(3):
        recorder.put(item(t))
    recorder.stop({})
    (tmp_path / "old.ome.zarr.timepoints.jsonl").rename(path / "timepoints.jsonl")
    (path / "progress.json").write_text(json.dumps({"timepoints_written": 2}))
    data, _ = read_ome_zarr(path)
    assert data.shape[0] == 2
    assert [r["index"] for r in read_timepoints(path)] == [0, 1, 2]


# -- 14: the live look in the files ---------------------------------------------------------------------------------
DISPLAY = {
    "display": {
        "channels": [
            {"name": "MT", "color": "#E69F00", "visible": True, "levels": [0.05, 0.6], "gamma": 0.8, "auto": False},
            {"name": "ER", "color": "#56B4E9", "visible": False, "levels": [0.1, 0.9], "gamma": 0.8, "auto": False},
            {"name": "Lyso", "color": "#009E73", "visible": True, "levels": None, "gamma": 0.8, "auto": True},
        ],
        "palette": "Okabe-Ito",
    }
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_recordings_open_with_the_live_views_levels_and_colours(tmp_path: Path, fmt: str) -> None:
    spec = ImageSpec(SEP.frame_shape, SEP.dtype, SEP.pixel_size_um, SEP.time_increment_s, SEP.channel_names,
                     SEP.channel_colors, "separated", {"app": "imcsr-live"} | DISPLAY)  # fmt: skip
    path = target(tmp_path, fmt)
    recorder = new_recorder(path, fmt, spec)
    recorder.put(item(0))
    recorder.stop({})
    if fmt == "ome-zarr":
        channels = dict(zarr.open_group(path, mode="r").attrs)["ome"]["omero"]["channels"]
        assert [c["color"] for c in channels] == ["E69F00", "56B4E9", "009E73"]
        assert [c["label"] for c in channels] == ["MT", "ER", "Lyso"]
        assert [c["active"] for c in channels] == [True, False, True]
        assert channels[0]["window"] == {"start": 0.05, "end": 0.6, "min": 0.0, "max": 1.0}
        assert channels[2]["window"] == {"start": 0.0, "end": 1.0, "min": 0.0, "max": 1.0}  # not set: full range
    else:
        _, meta = read_tiff(path)
        assert meta.channel_colors == ("#E69F00", "#56B4E9", "#009E73")
        with tifffile.TiffFile(path) as tif:
            channels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]["Channel"]
        assert [(c["Color"] & 0xFFFFFFFF) >> 8 for c in channels] == [0xE69F00, 0x56B4E9, 0x009E73]


_ON_A_SMALL_DISK = """
import json, sys, time
import numpy as np
from pathlib import Path
from imcsr_live.io.zarr import ImageSpec
from imcsr_live.pipeline import recorder as rec
folder, fmt, margin = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rec.FREE_SPACE_MARGIN_BYTES = margin  # negative: no check, the disk really runs out (ENOSPC) mid-timepoint
spec = ImageSpec((3, 256, 256), "float32", 0.03, 1.0, ("a", "b", "c"), name="separated")
path = folder / ("r.ome.zarr" if fmt == "ome-zarr" else "r.ome.tif")
r = rec.Recorder(rec.RecordingPlan(path, fmt, spec, expected_timepoints=4))
rng = np.random.default_rng(0)
for t in range(200):  # 200 x 768 KiB of noise (incompressible) never fits in 24 MB
    r.put(rec.RecordItem(t, (rng.random((3, 256, 256)) + 1).astype(np.float32)))
    while r.active and r.written < t + 1:
        time.sleep(0.001)
    if not r.active:
        break
r.stop({})
print(json.dumps({"error": r.error, "written": r.written}))
"""


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("margin", [16 * 2**20, -(2**40)], ids=["checked", "enospc"])
def test_a_real_small_filesystem(tmp_path: Path, fmt: str, margin: int) -> None:
    """A 24 MB tmpfs in an unprivileged user+mount namespace (skipped where that is not allowed)."""
    import subprocess
    import sys

    mount = tmp_path / "small"
    mount.mkdir()
    out = tmp_path / "copy"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {mount}"],
                           capture_output=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip("no unprivileged mount namespaces here")
    script = tmp_path / "record.py"
    script.write_text(_ON_A_SMALL_DISK)
    shell = (f"mount -t tmpfs -o size=24m tmpfs {mount} && {sys.executable} {script} {mount} {fmt} {margin}; "
             f"rc=$?; cp -r {mount} {out}; exit $rc")  # fmt: skip
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # not 135 (SIGBUS) nor any crash
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] is not None and result["written"] >= 2
    assert "the disk is full" in result["error"]
    path = out / ("r.ome.zarr" if fmt == "ome-zarr" else "r.ome.tif")
    if fmt == "ome-zarr":
        data = zarr.open_group(path, mode="r")["0"][:]
    else:
        with tifffile.TiffFile(path) as tif:
            data = tif.series[0].asarray()
    assert data.shape[0] == result["written"]
    assert (data.reshape(data.shape[0], -1).min(axis=1) >= 1).all()  # every timepoint whole: no zero rows
    assert len(read_timepoints(path)) == result["written"]
