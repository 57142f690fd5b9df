"""The reader opens recordings written by the project's own recorder, in napari, with names, colours, levels,
µm scale and time step; side streams come as hidden layers and the sum residual is derived where possible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.errors import InputDataError
from imcsr_live.io.tiff import StackMetadata, create_timelapse
from imcsr_live.io.zarr import ImageSpec, OmeZarrWriter
from imcsr_live.napari.reader import get_reader, read_recording
from imcsr_live.pipeline.recorder import Recorder, RecordingPlan, RecordItem

NAMES = ("Microtubules", "ER", "Lysosomes")
COLOURS = ("#00FF00", "#FF00FF", "#00FFFF")
LEVELS = ([0.0, 0.5], [0.1, 0.9], [0.0, 0.25])  # what the live view saved; the reader must give them back
DISPLAY = {"channels": [{"name": n, "color": c, "levels": lv, "visible": True}
                        for n, c, lv in zip(NAMES, COLOURS, LEVELS, strict=True)]}  # fmt: skip
SEPARATED = ImageSpec((3, 32, 32), "float32", 0.0313, 2.0, NAMES, COLOURS, name="separated",
                      attributes={"app": "imcsr-live", "display": DISPLAY})  # fmt: skip
RAW = ImageSpec((9, 16, 16), "uint16", 0.0626, 2.0, name="raw")
SR = ImageSpec((32, 32), "float32", 0.0313, 2.0, name="sr")
INPUT_SCALES = (200.0, 250.0, 300.0)


def _item(t: int) -> RecordItem:
    rng = np.random.default_rng(t)
    channels = rng.uniform(0, 0.3, (3, 32, 32)).astype(np.float32)
    sr = (channels.sum(axis=0) * INPUT_SCALES[t] + 5.0).astype(np.float32)  # residual: 5 everywhere
    raw = np.full((9, 16, 16), 100 + t, np.uint16)
    return RecordItem(index=t, separated=channels, raw=raw, sr=sr, provenance={"input_scale": INPUT_SCALES[t]})


def _record(path: Path, fmt: str) -> list[RecordItem]:
    items = [_item(t) for t in range(3)]
    recorder = Recorder(RecordingPlan(path, fmt, SEPARATED, RAW, SR, expected_timepoints=3))  # type: ignore[arg-type]
    for item in items:
        assert recorder.put(item)
    recorder.stop()
    assert recorder.error is None and recorder.written == 3
    return items


@pytest.mark.parametrize("fmt", ["ome-zarr", "ome-tiff"])
def test_viewer_opens_a_recording_with_names_colours_levels_and_scale(make_napari_viewer, tmp_path, fmt) -> None:
    path = tmp_path / ("rec.ome.zarr" if fmt == "ome-zarr" else "rec.ome.tif")
    items = _record(path, fmt)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="imcsr-live")

    assert [layer.name for layer in viewer.layers] == [*NAMES, "sr", "raw", "sum residual"]
    for c, (name, colour, levels) in enumerate(zip(NAMES, COLOURS, LEVELS, strict=True)):
        layer = viewer.layers[name]
        expected_rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        np.testing.assert_allclose(layer.colormap.colors[-1][:3], expected_rgb)
        assert layer.blending == "additive" and layer.visible
        assert tuple(layer.contrast_limits) == pytest.approx(levels)
        assert tuple(layer.scale) == pytest.approx((2.0, 0.0313, 0.0313))  # time step (s), µm per SR pixel
        assert [str(u) for u in layer.units] == ["second", "micrometer", "micrometer"]
        np.testing.assert_array_equal(layer.data, np.stack([i.separated[c] for i in items]))
    assert not viewer.layers["sr"].visible and not viewer.layers["raw"].visible  # side streams start hidden
    raw = viewer.layers["raw"]
    assert raw.data.shape == (9, 3, 16, 16)  # frame axis first, so time lines up with the channel layers
    assert tuple(raw.scale) == pytest.approx((1.0, 2.0, 0.0626, 0.0626))
    assert raw.data[0, 2, 0, 0] == 102
    np.testing.assert_allclose(viewer.layers["sum residual"].data, 5.0, atol=1e-3)


def test_uncertainty_stream_is_offered_as_hidden_layers(make_napari_viewer, tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    _record(path, "ome-zarr")
    sigma = OmeZarrWriter(path / "uncertainty", ImageSpec((3, 32, 32), "float32", 0.0313, 2.0, NAMES, COLOURS,
                                                           name="uncertainty"))  # fmt: skip
    for t in range(3):
        sigma.append(np.full((3, 32, 32), 0.01 * (t + 1), np.float32))
    sigma.close()
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="imcsr-live")
    names = [layer.name for layer in viewer.layers]
    assert names[-4:] == [f"uncertainty: {n}" for n in NAMES] + ["sum residual"]
    layer = viewer.layers["uncertainty: ER"]
    assert not layer.visible and layer.data.shape == (3, 32, 32) and layer.data[2, 0, 0] == pytest.approx(0.03)


def test_a_stream_opens_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    _record(path, "ome-zarr")
    [(data, kwargs, kind)] = read_recording(str(path / "sr"))
    assert kind == "image" and data.shape == (3, 32, 32) and kwargs["name"] == "sr"
    assert kwargs["scale"] == pytest.approx((2.0, 0.0313, 0.0313))


def test_the_reader_leaves_other_files_to_other_readers(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    create_timelapse(plain, (2, 8, 8), np.uint16, StackMetadata(axes="TYX")).close()
    folder = tmp_path / "folder.zarr"
    folder.mkdir()
    (folder / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    assert get_reader(str(plain)) is None
    assert get_reader(str(folder)) is None  # a zarr group that is no OME image
    assert get_reader([str(plain), str(folder)]) is None


def test_a_damaged_recording_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.ome.zarr"
    _record(path, "ome-zarr")
    (path / "0" / "zarr.json").unlink()  # the array's metadata is gone
    assert get_reader(str(path)) is read_recording
    with pytest.raises(InputDataError) as caught:
        read_recording(str(path))
    assert "rec.ome.zarr" in str(caught.value) and "\n" not in str(caught.value)
