"""The few Micro-Manager core calls the burst engine needs, in two call styles.

``PymmcorePlusCalls`` wraps ``pymmcore_plus.CMMCorePlus`` / ``UniMMCore`` (camelCase, 2-D images, metadata
objects). ``PycromanagerCalls`` wraps ``pycromanager.Core()``: the Java MMCoreJ over ZMQ or pycromanager's
in-process pymmcore (snake_case; popped images come as ``TaggedImage`` with ``pix`` (1-D over ZMQ) and ``tags``;
string lists as Java ``StrVector`` objects with ``size()``/``get(i)``). Everything above this module is shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np


class CoreCalls(Protocol):
    """Call-style-neutral view of an MMCore."""

    style: str

    def loaded_devices(self) -> list[str]: ...
    def camera(self) -> str: ...
    def slm(self) -> str: ...
    def shutter(self) -> str: ...
    def xy_stage(self) -> str: ...
    def set_xy_position(self, x_um: float, y_um: float) -> None: ...
    def has_property(self, device: str, prop: str) -> bool: ...
    def get_property(self, device: str, prop: str) -> str: ...
    def set_property(self, device: str, prop: str, value: Any) -> None: ...
    def config_groups(self) -> list[str]: ...
    def presets(self, group: str) -> list[str]: ...
    def set_config(self, group: str, preset: str) -> None: ...
    def set_exposure(self, ms: float) -> None: ...
    def image_format(self) -> tuple[int, int, int, int]: ...
    def set_shutter_open(self, is_open: bool) -> None: ...
    def set_auto_shutter(self, on: bool) -> None: ...
    def start_sequence(self, n: int) -> None: ...
    def stop_sequence(self) -> None: ...
    def is_sequence_running(self) -> bool: ...
    def remaining(self) -> int: ...
    def pop(self) -> tuple[np.ndarray, dict[str, str]]: ...
    def snap(self) -> np.ndarray: ...
    def slm_shape(self, slm: str) -> tuple[int, int]: ...
    def slm_set_image(self, slm: str, image: np.ndarray) -> None: ...
    def slm_display(self, slm: str) -> None: ...
    def slm_load_sequence(self, slm: str, images: Sequence[np.ndarray]) -> None: ...
    def slm_start_sequence(self, slm: str) -> None: ...
    def slm_stop_sequence(self, slm: str) -> None: ...


def strings(value: Iterable[Any] | Any) -> list[str]:
    """A Python list from a tuple/list or a Java ``StrVector`` (``size()`` + ``get(i)``) as ZMQ returns it."""
    if hasattr(value, "size") and hasattr(value, "get") and not isinstance(value, np.ndarray):
        return [str(value.get(i)) for i in range(int(value.size()))]
    return [str(v) for v in value]


class PymmcorePlusCalls:
    """:class:`CoreCalls` on a ``CMMCorePlus`` or ``UniMMCore``."""

    style = "pymmcore-plus"

    def __init__(self, core: Any) -> None:
        self.core = core

    def loaded_devices(self) -> list[str]:
        return strings(self.core.getLoadedDevices())

    def camera(self) -> str:
        return str(self.core.getCameraDevice())

    def slm(self) -> str:
        return str(self.core.getSLMDevice())

    def shutter(self) -> str:
        return str(self.core.getShutterDevice())

    def xy_stage(self) -> str:
        return str(self.core.getXYStageDevice())

    def set_xy_position(self, x_um: float, y_um: float) -> None:
        self.core.setXYPosition(float(x_um), float(y_um))
        self.core.waitForDevice(self.xy_stage())

    def has_property(self, device: str, prop: str) -> bool:
        return bool(self.core.hasProperty(device, prop))

    def get_property(self, device: str, prop: str) -> str:
        return str(self.core.getProperty(device, prop))

    def set_property(self, device: str, prop: str, value: Any) -> None:
        self.core.setProperty(device, prop, value)

    def config_groups(self) -> list[str]:
        return strings(self.core.getAvailableConfigGroups())

    def presets(self, group: str) -> list[str]:
        return strings(self.core.getAvailableConfigs(group))

    def set_config(self, group: str, preset: str) -> None:
        self.core.setConfig(group, preset)
        self.core.waitForConfig(group, preset)

    def set_exposure(self, ms: float) -> None:
        self.core.setExposure(float(ms))

    def image_format(self) -> tuple[int, int, int, int]:
        c = self.core
        return (
            int(c.getImageHeight()),
            int(c.getImageWidth()),
            int(c.getBytesPerPixel()),
            int(c.getNumberOfComponents()),
        )

    def set_shutter_open(self, is_open: bool) -> None:
        if self.shutter():
            self.core.setShutterOpen(bool(is_open))

    def set_auto_shutter(self, on: bool) -> None:
        self.core.setAutoShutter(bool(on))

    def start_sequence(self, n: int) -> None:
        self.core.startSequenceAcquisition(int(n), 0.0, True)

    def stop_sequence(self) -> None:
        if self.core.isSequenceRunning():
            self.core.stopSequenceAcquisition()

    def is_sequence_running(self) -> bool:
        return bool(self.core.isSequenceRunning())

    def remaining(self) -> int:
        return int(self.core.getRemainingImageCount())

    def pop(self) -> tuple[np.ndarray, dict[str, str]]:
        img, md = self.core.popNextImageAndMD()
        return np.asarray(img), {str(k): str(v) for k, v in dict(md).items()}

    def snap(self) -> np.ndarray:
        self.core.snapImage()
        return np.asarray(self.core.getImage())

    def slm_shape(self, slm: str) -> tuple[int, int]:
        return int(self.core.getSLMHeight(slm)), int(self.core.getSLMWidth(slm))

    def slm_set_image(self, slm: str, image: np.ndarray) -> None:
        self.core.setSLMImage(slm, image)

    def slm_display(self, slm: str) -> None:
        self.core.displaySLMImage(slm)

    def slm_load_sequence(self, slm: str, images: Sequence[np.ndarray]) -> None:
        self.core.loadSLMSequence(slm, list(images))

    def slm_start_sequence(self, slm: str) -> None:
        self.core.startSLMSequence(slm)

    def slm_stop_sequence(self, slm: str) -> None:
        self.core.stopSLMSequence(slm)


class PycromanagerCalls:
    """:class:`CoreCalls` on ``pycromanager.Core()`` (Java over ZMQ, or the in-process Python backend)."""

    style = "pycromanager"

    def __init__(self, core: Any) -> None:
        self.core = core
        self._shape: tuple[int, int] | None = None

    def loaded_devices(self) -> list[str]:
        return strings(self.core.get_loaded_devices())

    def camera(self) -> str:
        return str(self.core.get_camera_device())

    def slm(self) -> str:
        return str(self.core.get_slm_device())

    def shutter(self) -> str:
        return str(self.core.get_shutter_device())

    def xy_stage(self) -> str:
        return str(self.core.get_xy_stage_device())

    def set_xy_position(self, x_um: float, y_um: float) -> None:
        self.core.set_xy_position(float(x_um), float(y_um))
        self.core.wait_for_device(self.xy_stage())

    def has_property(self, device: str, prop: str) -> bool:
        return bool(self.core.has_property(device, prop))

    def get_property(self, device: str, prop: str) -> str:
        return str(self.core.get_property(device, prop))

    def set_property(self, device: str, prop: str, value: Any) -> None:
        self.core.set_property(device, prop, str(value))

    def config_groups(self) -> list[str]:
        return strings(self.core.get_available_config_groups())

    def presets(self, group: str) -> list[str]:
        return strings(self.core.get_available_configs(group))

    def set_config(self, group: str, preset: str) -> None:
        self.core.set_config(group, preset)
        self.core.wait_for_config(group, preset)

    def set_exposure(self, ms: float) -> None:
        self.core.set_exposure(float(ms))

    def image_format(self) -> tuple[int, int, int, int]:
        c = self.core
        h, w = int(c.get_image_height()), int(c.get_image_width())
        self._shape = (h, w)
        return h, w, int(c.get_bytes_per_pixel()), int(c.get_number_of_components())

    def set_shutter_open(self, is_open: bool) -> None:
        if self.shutter():
            self.core.set_shutter_open(bool(is_open))

    def set_auto_shutter(self, on: bool) -> None:
        self.core.set_auto_shutter(bool(on))

    def start_sequence(self, n: int) -> None:
        self.core.start_sequence_acquisition(int(n), 0.0, True)

    def stop_sequence(self) -> None:
        if self.core.is_sequence_running():
            self.core.stop_sequence_acquisition()

    def is_sequence_running(self) -> bool:
        return bool(self.core.is_sequence_running())

    def remaining(self) -> int:
        return int(self.core.get_remaining_image_count())

    def _as_2d(self, pix: Any) -> np.ndarray:
        arr = np.asarray(pix)
        if arr.ndim == 1:  # MMCoreJ over ZMQ sends the pixels flat
            if self._shape is None:
                self.image_format()
            assert self._shape is not None
            arr = arr.reshape(self._shape)
        return arr

    def pop(self) -> tuple[np.ndarray, dict[str, str]]:
        tagged = self.core.pop_next_tagged_image()
        tags = tagged.tags
        items = tags.items() if hasattr(tags, "items") else []
        return self._as_2d(tagged.pix), {str(k): str(v) for k, v in items}

    def snap(self) -> np.ndarray:
        self.core.snap_image()
        return self._as_2d(self.core.get_image())

    def slm_shape(self, slm: str) -> tuple[int, int]:
        return int(self.core.get_slm_height(slm)), int(self.core.get_slm_width(slm))

    def slm_set_image(self, slm: str, image: np.ndarray) -> None:
        self.core.set_slm_image(slm, np.ascontiguousarray(image).ravel())

    def slm_display(self, slm: str) -> None:
        self.core.display_slm_image(slm)

    def slm_load_sequence(self, slm: str, images: Sequence[np.ndarray]) -> None:
        self.core.load_slm_sequence(slm, [np.ascontiguousarray(i).ravel() for i in images])

    def slm_start_sequence(self, slm: str) -> None:
        self.core.start_slm_sequence(slm)

    def slm_stop_sequence(self, slm: str) -> None:
        self.core.stop_slm_sequence(slm)
