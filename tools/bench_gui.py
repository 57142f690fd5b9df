"""GUI-side cost of one display update: upload + paint of the main window's views, offscreen.

What the GUI thread does per new timepoint (``MainWindow.show_frame``: channel rows/histograms, three stacked
uint16 ImageItems with colour LUTs and levels, grey and widefield views), then the event loop's paint of the
whole window (the benchmark checks that every image item really renders on every update). The preparation on
the worker thread (``make_layer``: uint16 downcast, percentiles, histogram) is timed separately: not GUI time.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/bench_gui.py --size 1024 --repeats 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]


class StaticSource:
    """A display source that hands out prepared frames on request (no threads; the benchmark drives it)."""

    def __init__(self, frames: list, names: list[str], colours: list[str], pixel_size_um: float) -> None:
        from imcsr_live.pipeline.views import RunStatus, SourceInfo

        self.frames = frames
        self.channel_names = names
        self.channel_colors = colours
        self.title = "bench_gui: synthetic channels"
        self._info = SourceInfo(engine="none", pixel_size_um=pixel_size_um)
        self._status = RunStatus(True, False, 0, 0.0, {}, {}, 0, {}, 0)
        self.running = True

    def start(self) -> None: ...

    def stop(self) -> None:
        self.running = False

    def wait(self, timeout_s: float | None = None) -> bool:
        return True

    def newest(self):
        return None  # the benchmark calls show_frame itself

    def info(self):
        return self._info

    def status(self):
        return self._status

    def error_events(self) -> list:
        return []

    def set_grey_kind(self, kind: str) -> None: ...

    def set_display_settings(self, settings: dict) -> None: ...

    def validation_state(self) -> None:
        return None

    def set_validate_every(self, every: int | None) -> None: ...

    def restart(self) -> None: ...

    def acquire_training(self, request, on_timepoint=None, stop=None):
        from imcsr_live.errors import InputDataError

        raise InputDataError("bench_gui shows synthetic channels; it has no microscope for training data")


def synthetic_frames(size: int, channels: int, count: int, seed: int = 0) -> tuple[list, float]:
    """``count`` different frames of ``channels`` random-blob images; returns them and the median prepare ms."""
    from scipy.ndimage import gaussian_filter

    from imcsr_live.pipeline.views import DisplayFrame, make_layer

    rng = np.random.default_rng(seed)
    frames, prepare_ms = [], []
    for index in range(count):
        images = [gaussian_filter(rng.random((size, size), dtype=np.float32) ** 8, 2.0) for _ in range(channels)]
        widefield = gaussian_filter(sum(images)[::2, ::2], 2.0)
        start = time.perf_counter()
        layers = tuple(make_layer(image) for image in images)
        grey = make_layer(sum(images))
        wf = make_layer(widefield)
        prepare_ms.append((time.perf_counter() - start) * 1e3)
        frames.append(DisplayFrame(index, float(index), layers, grey, wf, 2.0))
    return frames, statistics.median(prepare_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="channel image size (square, SR pixels)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30, help="timed updates (median reported)")
    parser.add_argument("--window", default="1500x860", help="window size WxH")
    args = parser.parse_args(argv)

    from qtpy import QtWidgets

    from imcsr_live.config import load_rig_config
    from imcsr_live.ui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    rig = load_rig_config(REPO / "hardware_configs" / "simulated.toml")
    names = [f"channel {i + 1}" for i in range(args.channels)]
    colours = ["#00FF00", "#FF00FF", "#00FFFF", "#FFFF00", "#FF8000", "#0080FF"][: args.channels]
    frames, prepare_ms = synthetic_frames(args.size, args.channels, 4)
    source = StaticSource(frames, names, colours, rig.optics.pixel_size_um / 2)
    window = MainWindow(rig, source, persist=False)  # type: ignore[arg-type]
    window.timer.stop()
    width, height = (int(v) for v in args.window.split("x"))
    window.resize(width, height)
    window.show()
    app.processEvents()
    for row in window.channels.rows:
        row.auto_box.setChecked(True)  # continuous auto: the most work per frame

    def update(frame) -> tuple[float, float]:
        start = time.perf_counter()
        window.show_frame(frame)
        uploaded = time.perf_counter()
        app.processEvents()  # what the event loop does next: scene updates and the paint of the window
        return (uploaded - start) * 1e3, (time.perf_counter() - start) * 1e3

    def overlay_only(frame) -> float:
        start = time.perf_counter()
        window.overlay.show_layers(frame.channels)
        window.overlay.viewport().repaint()
        return (time.perf_counter() - start) * 1e3

    renders = {"n": 0}  # proof that every update really re-renders every image item
    items = [*window.overlay.items, window.grey_panel.item, window.widefield_panel.item]
    for item in items:
        original = item.render

        def counted(original=original) -> None:
            renders["n"] += 1
            original()

        item.render = counted
    for frame in frames:  # warm-up
        update(frame)
    renders["n"] = 0
    upload, total, overlay = [], [], []
    for i in range(args.repeats):
        u, t = update(frames[i % len(frames)])
        upload.append(u)
        total.append(t)
    rendered_per_update = renders["n"] / args.repeats
    for i in range(args.repeats):
        overlay.append(overlay_only(frames[i % len(frames)]))
    shown = window.overlay.viewport().size()
    window.close()
    window.deleteLater()
    app.processEvents()
    print(f"GUI cost per update, {args.size}x{args.size}, {args.channels} channels, window {args.window} "
          f"(overlay viewport {shown.width()}x{shown.height()}), median of {args.repeats}:")  # fmt: skip
    print(
        f"  whole window (show_frame + event loop paint):       {statistics.median(total):6.1f} ms"
        f"   ({rendered_per_update:.1f} image items rendered per update)"
    )
    print(f"    of which show_frame (uploads, histograms, levels): {statistics.median(upload):6.1f} ms")
    print(f"  overlay only (3 stacked ImageItems + repaint):       {statistics.median(overlay):6.1f} ms")
    print(f"  worker-side preparation (uint16 layers), not GUI:    {prepare_ms:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
