"""Micro-Manager Python devices (``pymmcore_plus`` UniMMCore) that form a simulated SIM microscope.

Load them from a .cfg with ``#py pyDevice,<label>,imcsr_live.hardware.mm_devices,<Class>`` lines (see
``hardware_configs/sim_demo.cfg``). They behave like the real parts of a SIM rig, wired as on the bench:

* :class:`SimSLM` - a sequenceable SLM: shows one image, or a loaded running order that advances one pattern
  per camera trigger while the sequence runs.
* :class:`SimLaser` - a state device selecting the excitation line (Off / 488 / 561 / 640).
* :class:`SimShutter` - blanks the excitation.
* :class:`SimXYStage` - a motorised XY stage. There is one simulated cell per position: the camera images another
  specimen at each position (seed from the camera's seed and the position), each with its own clock.
* :class:`SimCamera` - renders the synthetic specimen (``imcsr_live.synth``) under whatever the SLM shows *now*
  (decoded from the SLM image: angle, phase, contrast, brightness), lit only when the shutter is open and a
  laser is on, with sCMOS noise; after each exposure it sends a "trigger" to the SLM (its ``TriggerOut``).

Devices find each other by label through a process-wide registry (the cable on a real bench): the camera's
``SLM``, ``Laser`` and ``Shutter`` properties name the devices it is wired to. Fault injection for tests:
``SimSLM.DropTriggerAt`` (ignore the k-th trigger of the next sequence: a frame slip) and
``SimCamera.StopAfterFrames`` (the camera stops delivering mid-burst: a timeout).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymmcore_plus.experimental.unicore import (
    CameraDevice,
    ShutterDevice,
    SLMDevice,
    StateDevice,
    XYStageDevice,
)

from imcsr_live.config import RigConfig, load_rig_config, parse_rig_config
from imcsr_live.hardware.patterns import PatternDecoder, slm_pixel_um
from imcsr_live.hardware.simulated import position_seed
from imcsr_live.illumination import pattern_params
from imcsr_live.synth.camera import CameraParams, expose
from imcsr_live.synth.forward import SimForwardModel, pattern_frame
from imcsr_live.synth.world import PHOTON_PERCENTILE, WORLDS, make_specimen, optics_params

# Optics and pattern of hardware_configs/simulated.toml: used until the camera's RigConfig property names a TOML.
_DEFAULT_RIG = {
    "optics": {"na": 1.49, "emission_wavelength_nm": 525.0, "pixel_size_um": 0.0626},
    "sim": {"angles": 3, "phases": 3, "angles_deg": [12.0, 72.0, 132.0], "period_um": 0.19575, "modulation": 0.8},
}
LASER_LINES = ("Off", "488", "561", "640")

_registry: dict[str, weakref.ReferenceType[Any]] = {}
_registry_lock = threading.Lock()


def _register(device: Any) -> None:
    label = device.get_label()
    with _registry_lock:
        other = _registry.get(label)
        if other is not None and other() is not None and other() is not device:
            raise RuntimeError(
                f"another simulated device labelled {label!r} is loaded in this process; unload the other core "
                "(core.unloadAllDevices()) or use a different label"
            )
        _registry[label] = weakref.ref(device)


def _unregister(device: Any) -> None:
    with _registry_lock:
        label = device.get_label()
        ref = _registry.get(label)
        if ref is not None and ref() is device:
            del _registry[label]


def wired(label: str, kind: type) -> Any | None:
    """The loaded simulated device with ``label`` if it is of ``kind``, else None (cable not connected)."""
    with _registry_lock:
        ref = _registry.get(label)
    device = ref() if ref is not None else None
    return device if isinstance(device, kind) else None


# --------------------------------------------------------------------------------------------------- SLM
class SimSLM(SLMDevice):
    """Sequenceable 8-bit SLM/DMD that advances its running order on each camera trigger."""

    def __init__(self) -> None:
        super().__init__()
        self._width = 512
        self._height = 512
        self._loaded = np.zeros((self._height, self._width), np.uint8)
        self._shown = np.full((self._height, self._width), 255, np.uint8)  # all-on: uniform illumination
        self._sequence: list[np.ndarray] = []
        self._running = False
        self._position = 0
        self._triggers = 0
        self._exposure_ms = 10.0
        self._drop_at = -1
        self._version = 0  # bumps whenever what is shown changes (lets the camera cache its decoding)
        self._lock_state = threading.Lock()
        self.register_property("Width", getter=SimSLM._get_width, setter=SimSLM._set_width, property_type=int)
        self.register_property("Height", getter=SimSLM._get_height, setter=SimSLM._set_height, property_type=int)
        self.register_property("DropTriggerAt", getter=SimSLM._get_drop, setter=SimSLM._set_drop, property_type=int)
        self.register_property("SequencePosition", getter=SimSLM._get_position, property_type=int, is_read_only=True)

    def initialize(self) -> None:
        _register(self)

    def shutdown(self) -> None:
        _unregister(self)

    def _get_width(self) -> int:
        return self._width

    def _set_width(self, value: Any) -> None:
        self._width = int(value)
        self._reset_images()

    def _get_height(self) -> int:
        return self._height

    def _set_height(self, value: Any) -> None:
        self._height = int(value)
        self._reset_images()

    def _reset_images(self) -> None:
        with self._lock_state:
            self._loaded = np.zeros((self._height, self._width), np.uint8)
            self._shown = np.full((self._height, self._width), 255, np.uint8)
            self._sequence = []
            self._version += 1

    def _get_drop(self) -> int:
        return self._drop_at

    def _set_drop(self, value: Any) -> None:
        self._drop_at = int(value)

    def _get_position(self) -> int:
        return self._position if self._running else -1

    def shape(self) -> tuple[int, int]:
        return (self._height, self._width)

    def dtype(self) -> Any:
        return np.uint8

    def set_image(self, pixels: np.ndarray) -> None:
        self._loaded = np.array(pixels, dtype=np.uint8, copy=True)

    def get_image(self) -> np.ndarray:
        return self.current()[0].copy()

    def display_image(self) -> None:
        with self._lock_state:
            self._shown = self._loaded
            self._version += 1

    def set_exposure(self, interval_ms: float) -> None:
        self._exposure_ms = float(interval_ms)

    def get_exposure(self) -> float:
        return self._exposure_ms

    def get_sequence_max_length(self) -> int:
        return 64

    def send_sequence(self, sequence: Sequence[np.ndarray]) -> None:
        with self._lock_state:
            self._sequence = [np.array(s, dtype=np.uint8, copy=True) for s in sequence]

    def start_sequence(self) -> None:
        if not self._sequence:
            raise RuntimeError(f"SLM {self.get_label()!r}: load a sequence (loadSLMSequence) before starting it")
        with self._lock_state:
            self._running, self._position, self._triggers = True, 0, 0
            self._version += 1

    def stop_sequence(self) -> None:
        with self._lock_state:
            self._running = False
            self._version += 1

    # bench wiring -------------------------------------------------------------------------------------------
    def current(self) -> tuple[np.ndarray, int, int]:
        """``(image shown now, running-order position or -1, version)``."""
        with self._lock_state:
            if self._running:
                return self._sequence[self._position], self._position, self._version
            return self._shown, -1, self._version

    def trigger(self) -> None:
        """A TTL edge from the camera: advance the running order (if it runs), unless this trigger is dropped."""
        with self._lock_state:
            if not self._running:
                return
            self._triggers += 1
            if self._triggers == self._drop_at:
                self._drop_at = -1  # a one-off glitch, as real missed triggers are
                return
            self._position = (self._position + 1) % len(self._sequence)
            self._version += 1


# ------------------------------------------------------------------------------------------ laser, shutter
class SimLaser(StateDevice):
    """Excitation line selector: 0 Off, 1 488 nm, 2 561 nm, 3 640 nm."""

    def __init__(self) -> None:
        super().__init__(dict(enumerate(LASER_LINES)))
        self._state = 1

    def initialize(self) -> None:
        _register(self)

    def shutdown(self) -> None:
        _unregister(self)

    def get_state(self) -> int:
        return self._state

    def set_state(self, position: int) -> None:
        self._state = int(position)


class SimShutter(ShutterDevice):
    """Blanks the excitation (closed = no light on the sample)."""

    def __init__(self) -> None:
        super().__init__()
        self._open = False

    def initialize(self) -> None:
        _register(self)

    def shutdown(self) -> None:
        _unregister(self)

    def get_open(self) -> bool:
        return self._open

    def set_open(self, open: bool) -> None:
        self._open = bool(open)


class SimXYStage(XYStageDevice):
    """Motorised XY stage in micrometres; moves at once (the camera then images the cell at that position)."""

    def __init__(self) -> None:
        super().__init__()
        self._xy = (0.0, 0.0)

    def initialize(self) -> None:
        _register(self)

    def shutdown(self) -> None:
        _unregister(self)

    def set_position_um(self, x: float, y: float) -> None:
        self._xy = (float(x), float(y))

    def get_position_um(self) -> tuple[float, float]:
        return self._xy

    def set_origin_x(self) -> None:
        self._xy = (0.0, self._xy[1])

    def set_origin_y(self) -> None:
        self._xy = (self._xy[0], 0.0)

    def home(self) -> None:
        self._xy = (0.0, 0.0)

    def stop(self) -> None:
        pass


# ------------------------------------------------------------------------------------------------ camera
class _World:
    """Specimen + forward model + noise for one camera geometry; caches the band images per specimen state."""

    def __init__(
        self, rig: RigConfig, shape: tuple[int, int], photons: float, seed: int, world: str = "default"
    ) -> None:
        specimen_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
        self.rig = rig
        self.forward = SimForwardModel(optics_params(rig), pattern_params(rig), shape, oversample=2)
        self.specimen = make_specimen(
            world, rig.structure_names, self.forward.truth_shape, rig.optics.pixel_size_um / 2,
            np.random.default_rng(specimen_seq),
        )  # fmt: skip
        self.noise = np.random.default_rng(noise_seq)
        self.camera = CameraParams()
        self.photons = photons
        self.photon_scale: float | None = None
        self._bands: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def advance(self, dt_s: float) -> None:
        self.specimen.advance(dt_s)
        self._bands.clear()

    def bands(self, channels: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if channels not in self._bands:
            truth = self.specimen.render()
            lit = list(channels)
            background = self.specimen.background()  # unlabelled light: seen under every laser line
            if background is not None:
                truth = np.concatenate([truth, np.asarray(background, np.float32)[None]])
                lit.append(truth.shape[0] - 1)
            if self.photon_scale is None:  # fixed at first light, like an exposure setting
                wf, _ = self.forward.band_images(truth)
                self.photon_scale = self.photons / max(float(np.percentile(wf, PHOTON_PERCENTILE)), 1e-12)
            wf, bands = self.forward.band_images(truth[lit])
            self._bands[channels] = (wf * np.float32(self.photon_scale), bands * np.float32(self.photon_scale))
        return self._bands[channels]


class SimCamera(CameraDevice):
    """16-bit sCMOS-like camera imaging the synthetic specimen through the simulated SIM illumination."""

    def __init__(self) -> None:
        super().__init__()
        self._exposure_ms = 10.0
        self._size = (512, 512)
        self._pixel_type = "16bit"
        self._photons = 300.0
        self._seed = 0
        self._world_kind = "default"  # synthetic world of the cells (imcsr_live.synth.world.WORLDS)
        self._labels = "one-colour"
        self._clock = "frames"
        self._pacing = "real-time"
        self._stop_after = -1
        self._last_pattern = -1
        self._rig_path = ""
        self._rig = parse_rig_config(_DEFAULT_RIG, "SimCamera defaults")
        self._links = {"SLM": "SLM", "Laser": "Laser", "Shutter": "Shutter", "XYStage": "XYStage"}
        self._world: _World | None = None  # the cell under the objective now; None: settings changed
        self._worlds: dict[tuple[float, float], _World] = {}  # one cell per stage position
        self._sim_time_s = 0.0
        self._last_wall = time.monotonic()
        self._decoded: tuple[Any, Any] | None = None  # (key, DecodedPattern)
        self._decoder: tuple[tuple[int, int], PatternDecoder] | None = None
        # pymmcore-plus types the getter/setter argument with a type variable it never binds: take it as Any
        reg: Callable[..., None] = self.register_property
        reg("SensorWidth", getter=lambda s: s._size[1], setter=lambda s, v: s._resize(w=int(v)), property_type=int)
        reg("SensorHeight", getter=lambda s: s._size[0], setter=lambda s, v: s._resize(h=int(v)), property_type=int)
        reg("PixelType", getter=lambda s: s._pixel_type, setter=SimCamera._set_pixel_type,
            allowed_values=("16bit", "8bit"), property_type=str)  # fmt: skip
        reg("Photons", getter=lambda s: s._photons, setter=lambda s, v: s._set_world("_photons", float(v)),
            property_type=float)  # fmt: skip
        reg("Seed", getter=lambda s: s._seed, setter=lambda s, v: s._set_world("_seed", int(v)), property_type=int)
        reg("World", getter=lambda s: s._world_kind, setter=lambda s, v: s._set_world("_world_kind", str(v)),
            allowed_values=tuple(WORLDS), property_type=str)  # fmt: skip
        reg("Labelling", getter=lambda s: s._labels, setter=lambda s, v: setattr(s, "_labels", str(v)),
            allowed_values=("one-colour", "per-laser"), property_type=str)  # fmt: skip
        reg("SpecimenClock", getter=lambda s: s._clock, setter=lambda s, v: setattr(s, "_clock", str(v)),
            allowed_values=("frames", "wall"), property_type=str)  # fmt: skip
        reg("Pacing", getter=lambda s: s._pacing, setter=lambda s, v: setattr(s, "_pacing", str(v)),
            allowed_values=("real-time", "none"), property_type=str)  # fmt: skip
        reg("StopAfterFrames", getter=lambda s: s._stop_after, setter=lambda s, v: setattr(s, "_stop_after", int(v)),
            property_type=int)  # fmt: skip
        reg("RigConfig", getter=lambda s: s._rig_path, setter=SimCamera._set_rig, property_type=str)
        reg("SIM-PatternIndex", getter=lambda s: s._last_pattern, property_type=int, is_read_only=True)
        for name in self._links:
            reg(name, getter=lambda s, n=name: s._links[n], setter=lambda s, v, n=name: s._links.__setitem__(n, str(v)),
                property_type=str)  # fmt: skip

    # properties -------------------------------------------------------------------------------------------
    def _resize(self, h: int | None = None, w: int | None = None) -> None:
        size = (h or self._size[0], w or self._size[1])
        if min(size) < 32 or any(s % 2 for s in size):
            raise ValueError(f"sensor size {size} must be even and at least 32 x 32")
        self._size = size
        self._world = None

    def _set_world(self, attr: str, value: Any) -> None:
        setattr(self, attr, value)
        self._world = None

    def _set_pixel_type(self, value: Any) -> None:
        self._pixel_type = str(value)

    def _set_rig(self, value: Any) -> None:
        path = str(value)
        self._rig = load_rig_config(Path(path)) if path else parse_rig_config(_DEFAULT_RIG, "SimCamera defaults")
        self._rig_path = path
        self._world = None
        self._decoder = None

    def get_exposure(self) -> float:
        return self._exposure_ms

    def set_exposure(self, exposure: float) -> None:
        self._exposure_ms = float(exposure)

    def shape(self) -> tuple[int, int]:
        return self._size

    def dtype(self) -> Any:
        return np.uint16 if self._pixel_type == "16bit" else np.uint8

    # imaging ----------------------------------------------------------------------------------------------
    def _stage_position(self) -> tuple[float, float]:
        stage = wired(self._links["XYStage"], SimXYStage)
        x, y = stage.get_position_um() if stage is not None else (0.0, 0.0)
        return round(x, 3), round(y, 3)

    def _ensure_world(self) -> _World:
        if self._world is None:  # first light, or a setting changed: every position starts afresh
            self._worlds = {}
        key = self._stage_position()
        world = self._worlds.get(key)
        if world is None:
            world = _World(self._rig, self._size, self._photons, position_seed(self._seed, *key), self._world_kind)
            self._worlds[key] = world
            self._sim_time_s = 0.0
        self._world = world
        return world

    def _advance_clock(self) -> None:
        """Move the specimen on: by the exposure per frame ('frames', deterministic) or by wall time."""
        world = self._ensure_world()
        now = time.monotonic()
        dt = self._exposure_ms / 1e3 if self._clock == "frames" else now - self._last_wall
        self._last_wall = now
        self._sim_time_s += dt
        # Re-render the specimen once it has moved for >= 0.25 s: motion within one SIM burst is negligible
        # for the demo, and re-rendering costs ~0.2 s at 512x512.
        if self._sim_time_s >= 0.25:
            world.advance(self._sim_time_s)
            self._sim_time_s = 0.0

    def _illumination(self) -> tuple[Any, int]:
        """Decoded SLM pattern now (or None = uniform full light) and the SLM running-order position."""
        slm = wired(self._links["SLM"], SimSLM)
        if slm is None:
            return None, -1
        image, position, version = slm.current()
        key = (id(slm), version)
        if self._decoded is None or self._decoded[0] != key:
            shape = image.shape[:2]
            if self._decoder is None or self._decoder[0] != shape:
                pix = slm_pixel_um(self._rig, self._size[1], shape[1])
                self._decoder = (shape, PatternDecoder(self._rig, shape, pix))
            self._decoded = (key, self._decoder[1].decode(image, 255.0))
        return self._decoded[1], position

    def _render(self, out: np.ndarray) -> dict[str, str]:
        world = self._ensure_world()
        shutter = wired(self._links["Shutter"], SimShutter)
        laser = wired(self._links["Laser"], SimLaser)
        line = laser.get_state() if laser is not None else 1
        lit = (shutter is None or shutter.get_open()) and line > 0
        channels: tuple[int, ...] = tuple(range(len(self._rig.structures)))
        if self._labels == "per-laser" and lit:
            channels = (line - 1,) if line - 1 < len(channels) else ()
            lit = bool(channels)
        decoded, position = self._illumination()
        meta = {"SLM-SequencePosition": str(position), "Laser": LASER_LINES[line] if lit else "Off"}
        if not lit:
            expected = np.zeros(self._size, np.float32)
            self._last_pattern = -1
        else:
            wf, bands = world.bands(channels)
            if decoded is None:  # no SLM wired: full uniform light
                expected = wf.copy()
                self._last_pattern = -1
            elif decoded.angle_index is None:  # uniform (or dark) SLM image
                expected = wf * np.float32(decoded.brightness)
                self._last_pattern = -1
            else:
                m = self._rig.sim.modulation * decoded.contrast
                expected = pattern_frame(wf, bands[decoded.angle_index], m, decoded.phase_rad)
                expected *= np.float32(decoded.brightness * 2.0)  # a full-range sinusoid averages 1/2 of full on
                self._last_pattern = int(decoded.pattern_index)
                meta["SIM-Phase-deg"] = f"{math.degrees(decoded.phase_rad):.2f}"
                meta["SIM-Angle-index"] = str(decoded.angle_index)
        meta["SIM-PatternIndex"] = str(self._last_pattern)
        raw = expose(expected, world.camera, world.noise)
        if out.dtype == np.uint8:
            out[:] = np.clip(raw >> 4, 0, 255).astype(np.uint8)  # an 8-bit mode: keep the top bits
        else:
            out[:] = raw
        return meta

    def start_sequence(
        self, n: int | None, get_buffer: Callable[[Sequence[int], Any], np.ndarray]
    ) -> Iterator[Mapping]:
        shape, dtype = self.shape(), self.dtype()
        limit = n if n is not None else 2**62
        count = 0
        next_due = time.monotonic()
        while count < limit:
            if 0 <= self._stop_after <= count:
                return  # fault injection: the camera stops delivering (lost triggers, hung camera)
            buf = get_buffer(shape, dtype)
            self._advance_clock()
            meta = self._render(buf)
            if self._pacing == "real-time":
                next_due += self._exposure_ms / 1e3
                delay = next_due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            slm = wired(self._links["SLM"], SimSLM)
            if slm is not None:
                slm.trigger()  # exposure-out TTL: the SLM steps to its next pattern
            count += 1
            yield meta
