#!/usr/bin/env python
"""Render the README's napari screenshot: the synthetic sample cell, separated by the "IMC-SR separate" widget.

Opens napari with the plugin's sample data, reconstructs and separates the raw SIM stack with the shipped CPU model
through the widget (as a user would), shows the three structures over each other and saves the whole window.
Needs an OpenGL-capable display; headless, run it under Xvfb with the xcb platform (offscreen Qt draws no canvas):

    QT_QPA_PLATFORM=xcb xvfb-run -a python tools/napari_screenshot.py [--out docs/napari.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/napari.png"), help="PNG to write")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="give up if separation takes longer")
    args = parser.parse_args()

    import napari
    from imageio import imwrite  # napari's own dependency

    from imcsr_live.napari.widget import SeparateWidget

    viewer = napari.Viewer(title="imcsr-live in napari")
    viewer.window.resize(1400, 850)
    viewer.open_sample("imcsr-live", "synthetic_cell")
    widget = SeparateWidget(viewer)
    viewer.window.add_dock_widget(widget, name="IMC-SR separate", area="right")
    raw_name = "raw SIM (synthetic cell)"
    widget.layer.value = raw_name
    widget.raw_sim.value = True
    widget.engine.value = "torch-cpu"
    if widget.start() is None:
        raise SystemExit(f"the widget refused to start: {widget.status.value}")
    deadline = time.monotonic() + args.timeout_s
    while widget.worker is not None:  # let the worker's signals reach the widget
        napari.qt.get_qapp().processEvents()
        time.sleep(0.05)
        if time.monotonic() > deadline:
            raise SystemExit("separation did not finish in time")
    viewer.layers[raw_name].visible = False  # the separated overlay is the point of the picture
    viewer.reset_view()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    imwrite(args.out, viewer.screenshot(canvas_only=False, flash=False))
    print(f"{args.out} ({widget.status.value})")
    viewer.close()


if __name__ == "__main__":
    main()
