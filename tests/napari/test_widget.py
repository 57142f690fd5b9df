"""The "IMC-SR separate" widget in a real napari viewer, with the shipped CPU model on small frames."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from imcsr_live.napari.sample import synthetic_cell
from imcsr_live.napari.widget import CHECKPOINT_CHOICE, SeparateWidget

MODEL = "imcsr_cpu_demo_tc"
STRUCTURES = ("Microtubules", "ER", "Lysosomes")
COLOURS = {"Microtubules": (0, 1, 0), "ER": (1, 0, 1), "Lysosomes": (0, 1, 1)}
WAIT_MS = 120_000  # generous: the 2-core CI machine may be busy; no timing is asserted


@cache
def _cell() -> list:
    return synthetic_cell(seed=1, raw_side=64)


def _sr_frame() -> np.ndarray:
    """A 128 x 128 single-colour SR-like frame: the sum of the synthetic cell's structures."""
    return np.sum([data for data, kwargs, _ in _cell()[1:]], axis=0).astype(np.float32)


def _widget(make_napari_viewer) -> tuple[object, SeparateWidget]:
    viewer = make_napari_viewer()
    widget = SeparateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IMC-SR separate")
    widget.model.value = MODEL
    widget.engine.value = "torch-cpu"
    return viewer, widget


def _run(qtbot, widget: SeparateWidget) -> None:
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)


def _check_structure_layers(viewer, source: str, shape: tuple[int, ...], scale: tuple[float, ...]) -> None:
    for name in STRUCTURES:
        layer = viewer.layers[f"{name} ({source})"]
        assert layer.data.shape == shape and layer.data.dtype == np.float32
        assert 0.0 <= float(layer.data.min()) and float(layer.data.max()) <= 1.0 and float(layer.data.max()) > 0
        np.testing.assert_allclose(layer.colormap.colors[-1][:3], COLOURS[name])
        assert layer.blending == "additive"
        assert tuple(layer.scale) == pytest.approx(scale)


def test_separates_a_single_sr_frame(make_napari_viewer, qtbot, notifications) -> None:
    viewer, widget = _widget(make_napari_viewer)
    viewer.add_image(_sr_frame(), name="sr frame", scale=(0.0313, 0.0313), units=("micrometer", "micrometer"))
    widget.layer.value = "sr frame"
    _run(qtbot, widget)
    assert len(viewer.layers) == 4
    _check_structure_layers(viewer, "sr frame", (128, 128), (0.0313, 0.0313))
    assert [str(u) for u in viewer.layers["ER (sr frame)"].units] == ["micrometer", "micrometer"]
    assert widget.status.value == "done (torch-cpu, fp32)"
    assert notifications == [f"separated sr frame with {MODEL} on torch-cpu (fp32)"]


def test_separates_a_three_frame_time_lapse(make_napari_viewer, qtbot) -> None:
    viewer, widget = _widget(make_napari_viewer)
    frame = _sr_frame()
    movie = np.stack([frame, np.roll(frame, 2, axis=1), np.roll(frame, 4, axis=1)])
    viewer.add_image(movie, name="movie", scale=(2.0, 0.0313, 0.0313))
    widget.layer.value = "movie"
    progress: list[int] = []
    widget.progress.changed.connect(progress.append)
    _run(qtbot, widget)
    _check_structure_layers(viewer, "movie", (3, 128, 128), (2.0, 0.0313, 0.0313))
    assert progress[-1] == 3 and widget.progress.max == 3
    er = viewer.layers["ER (movie)"].data
    assert not np.allclose(er[0], er[2])  # every timepoint separated on its own


def test_reconstructs_raw_sim_first(make_napari_viewer, qtbot) -> None:
    viewer, widget = _widget(make_napari_viewer)
    raw, kwargs, _ = _cell()[0]
    viewer.add_image(raw, **kwargs)  # as the sample data gives it: (9, 64, 64) uint16, camera µm scale
    widget.layer.value = kwargs["name"]
    widget.raw_sim.value = True  # the shipped simulated rig, the one the sample was simulated with
    _run(qtbot, widget)
    _check_structure_layers(viewer, kwargs["name"], (128, 128), (0.0313, 0.0313))


def test_cancel_stops_the_worker_and_adds_nothing(make_napari_viewer, qtbot) -> None:
    viewer, widget = _widget(make_napari_viewer)
    viewer.add_image(np.repeat(_sr_frame()[None], 40, axis=0), name="long movie")
    widget.layer.value = "long movie"
    done: list[int] = []
    worker = widget.start()
    assert worker is not None
    worker.yielded.connect(lambda p: (done.append(p.done), widget.cancel()))  # cancel at the first progress
    aborted: list[bool] = []
    worker.aborted.connect(lambda: aborted.append(True))
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert aborted == [True]
    assert max(done) < 40  # it stopped before the end
    assert [layer.name for layer in viewer.layers] == ["long movie"]
    assert widget.status.value == "cancelled" and widget.run_button.enabled


@pytest.mark.parametrize(
    ("data", "rgb", "expected"),
    [
        (np.zeros((32, 32, 3), np.uint8), True, "is RGB"),
        (np.zeros((2, 3, 32, 32), np.float32), False, "has shape (2, 3, 32, 32)"),
    ],
)
def test_a_bad_layer_gets_a_notification_not_a_traceback(make_napari_viewer, notifications, data, rgb, expected):
    viewer, widget = _widget(make_napari_viewer)
    viewer.add_image(data, name="bad", rgb=rgb)
    widget.layer.value = "bad"
    assert widget.start() is None  # refused before any thread starts
    [message] = notifications
    assert expected in message and "\n" not in message and "Traceback" not in message
    assert widget.status.value == message and len(viewer.layers) == 1


def test_a_missing_checkpoint_fails_in_the_worker_with_one_line(make_napari_viewer, qtbot, notifications, tmp_path):
    viewer, widget = _widget(make_napari_viewer)
    viewer.add_image(_sr_frame(), name="sr frame")
    widget.layer.value = "sr frame"
    widget.model.value = CHECKPOINT_CHOICE
    widget.checkpoint.value = tmp_path / "nothing_here.json"
    _run(qtbot, widget)
    assert len(viewer.layers) == 1
    [message] = notifications
    assert "nothing_here" in message and "\n" not in message
    assert widget.status.value == message


def test_sample_data_opens_a_synthetic_cell(make_napari_viewer) -> None:
    viewer = make_napari_viewer()
    viewer.open_sample("imcsr-live", "synthetic_cell")
    names = [layer.name for layer in viewer.layers]
    assert names == ["raw SIM (synthetic cell)"] + [f"ground truth: {s}" for s in STRUCTURES]
    raw = viewer.layers["raw SIM (synthetic cell)"]
    assert raw.data.shape == (9, 128, 128) and raw.data.dtype == np.uint16 and raw.data.max() > 0
    truth = viewer.layers["ground truth: Lysosomes"]
    assert truth.data.shape == (256, 256) and tuple(truth.scale) == pytest.approx((0.0313, 0.0313))
    np.testing.assert_allclose(truth.colormap.colors[-1][:3], COLOURS["Lysosomes"])


def test_widget_lists_only_image_layers_and_follows_the_viewer(make_napari_viewer) -> None:
    viewer, widget = _widget(make_napari_viewer)
    viewer.add_image(np.zeros((8, 8), np.float32), name="an image")
    viewer.add_points(np.zeros((1, 2)), name="some points")
    assert list(widget.layer.choices) == ["an image"]
    del viewer.layers["an image"]
    assert list(widget.layer.choices) == []
    assert Path(widget.rig.value).name == "simulated.toml"
