"""The "IMC-SR separate" dock widget: separate an image layer (SR, or raw SIM reconstructed first) in napari.

The work runs in a napari worker thread (:func:`imcsr_live.napari.separation.run_separation`); the widget only
collects the settings, shows progress, cancels, and adds one additive layer per structure when it is done.
Problems appear as napari notifications with the app's one-line messages, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import napari
from magicgui.types import FileDialogMode
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, LineEdit, ProgressBar, PushButton
from napari.qt.threading import GeneratorWorker
from napari.utils.notifications import show_error, show_info

from imcsr_live.config import load_rig_config
from imcsr_live.engine import KINDS
from imcsr_live.engine.base import PRECISIONS
from imcsr_live.engine.model_source import shipped_models
from imcsr_live.errors import ImcsrError, InputDataError
from imcsr_live.napari.layers import structure_layer
from imcsr_live.napari.separation import Progress, SeparationJob, SeparationResult, check_layer, run_separation
from imcsr_live.rigs import default_rig

if TYPE_CHECKING:
    from napari.layers import Image

#: The model choice that switches to the checkpoint file field.
CHECKPOINT_CHOICE = "checkpoint file…"


def failure_message(error: BaseException) -> str:
    """One line for a failed run: our own messages as they are, anything else named with its type."""
    if isinstance(error, ImcsrError):
        return str(error)
    text = str(error).splitlines()[0] if str(error) else ""
    return f"separation failed: {type(error).__name__}{': ' + text if text else ''}"


class SeparateWidget(Container):
    """Pick a layer, a model, the engine and precision (and a rig for raw SIM), then separate in the background."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: GeneratorWorker | None = None
        self.layer = ComboBox(label="image layer", choices=self._image_layer_names)
        self.model = ComboBox(label="model", choices=[*(m.name for m in shipped_models()), CHECKPOINT_CHOICE])
        existing = FileDialogMode.EXISTING_FILE
        self.checkpoint = FileEdit(label="checkpoint", mode=existing, filter="*.json *.safetensors", visible=False)
        self.engine = ComboBox(label="engine", choices=["auto", *KINDS], value="auto")
        self.precision = ComboBox(label="precision", choices=list(PRECISIONS), value="fp32")
        self.raw_sim = CheckBox(text="raw SIM layer: reconstruct first", value=False)
        # default: the shipped simulated rig, the one the sample data is simulated with
        self.rig = FileEdit(label="rig TOML", mode=existing, filter="*.toml", value=default_rig(), visible=False)
        self.run_button = PushButton(text="Separate")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, visible=False)
        self.status = LineEdit(label="status", value="")  # a field, not a label: it keeps the dock's width
        self.status.native.setReadOnly(True)
        self.extend([self.layer, self.model, self.checkpoint, self.engine, self.precision, self.raw_sim, self.rig,
                     self.run_button, self.cancel_button, self.progress, self.status])  # fmt: skip
        self.model.changed.connect(lambda value: setattr(self.checkpoint, "visible", value == CHECKPOINT_CHOICE))
        self.raw_sim.changed.connect(lambda value: setattr(self.rig, "visible", bool(value)))
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda _: self.layer.reset_choices())

    def _image_layer_names(self, _widget: object = None) -> list[str]:
        return [layer.name for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)]

    def _model_choice(self) -> str:
        if self.model.value == CHECKPOINT_CHOICE:
            return str(self.checkpoint.value)
        return str(self.model.value)

    def job(self) -> SeparationJob:
        """The settings as a job; a layer the network cannot take is refused here (InputDataError)."""
        if not self.layer.value:
            raise InputDataError("no image layer: open an SR image (or raw SIM with 'reconstruct first') in napari")
        layer: Image = self.viewer.layers[self.layer.value]
        rig_path = Path(str(self.rig.value)) if self.raw_sim.value else None
        raw_frames = load_rig_config(rig_path).sim.frames_per_timepoint if rig_path is not None else None
        check_layer(tuple(layer.data.shape), bool(layer.rgb), layer.name, raw_frames)
        return SeparationJob(
            image=layer.data, layer_name=layer.name, scale=tuple(float(s) for s in layer.scale),
            model=self._model_choice(), engine_kind=str(self.engine.value), precision=str(self.precision.value),
            rig_path=rig_path, units=tuple(str(u) for u in layer.units),
        )  # fmt: skip

    def start(self) -> GeneratorWorker | None:
        """Start separating in a worker thread; returns the worker (None when the settings were refused)."""
        if self.worker is not None:
            return self.worker
        try:
            job = self.job()
        except ImcsrError as exc:
            self._fail(exc)
            return None
        # The worker class itself, not napari's create_worker: that one also wires the window's task-status
        # display, whose ``errored`` handler (napari 0.9.2) itself fails on the exception it is given.
        worker = GeneratorWorker(run_separation, job)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda result: self._add_layers(result, job.layer_name))
        worker.errored.connect(self._fail)
        worker.aborted.connect(lambda: self._set_status("cancelled"))
        worker.finished.connect(self._finished)
        self.worker = worker
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.progress.visible = True
        self.progress.value = 0
        self._set_status(f"separating {job.layer_name}…")
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop after the frame in progress (no layers are added)."""
        if self.worker is not None:
            self.worker.quit()
            self._set_status("cancelling…")

    def _on_progress(self, progress: Progress) -> None:
        self.progress.max = max(progress.total, 1)
        self.progress.value = progress.done
        self._set_status(progress.stage)

    def _add_layers(self, result: SeparationResult, source_name: str) -> None:
        for structure in result.structures:
            geometry = {"scale": structure.scale, "units": structure.units}
            data, kwargs, _ = structure_layer(structure.data, f"{structure.name} ({source_name})", structure.colour,
                                              geometry)  # fmt: skip
            kwargs["contrast_limits"] = (0.0, max(float(data.max()), 1e-6))
            self.viewer.add_image(data, **kwargs)
        done = f"done ({result.engine}, {result.precision})"
        self._set_status(done)  # short: the dock is narrow; the notification says which layer
        show_info(f"separated {source_name} with {result.model} on {result.engine} ({result.precision})")

    def _fail(self, error: BaseException) -> None:
        message = failure_message(error)
        self._set_status(message)
        show_error(message)

    def _finished(self) -> None:
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.progress.visible = False

    def _set_status(self, text: str) -> None:
        self.status.value = text
        self.status.tooltip = text
