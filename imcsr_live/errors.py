"""One exception hierarchy for the whole app.

Every message is meant for a person at the microscope: it says what is wrong and what to do next.
The CLI prints ``str(error)`` as one line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class ImcsrError(Exception):
    """Base class of every error the app raises on purpose."""

    exit_code: int = 1


class ConfigError(ImcsrError):
    """A TOML file is missing, unreadable or does not match the schema."""

    exit_code = 2


class InputDataError(ImcsrError):
    """An input file has the wrong shape, dtype or layout, or cannot be read."""

    exit_code = 3


class CheckpointError(InputDataError):
    """A model checkpoint is missing, corrupt, or does not match the configuration it is used with."""


class SynthError(ImcsrError):
    """The synthetic specimen or forward model was asked for something it cannot make."""

    exit_code = 4


class HardwareError(ImcsrError):
    """Base class of microscope/backend problems (Micro-Manager unreachable, timeouts, frame slips)."""

    exit_code = 5


class EngineError(ImcsrError):
    """An inference engine could not be built, loaded or run."""

    exit_code = 6


class EnginePlanError(EngineError):
    """A serialized engine (TensorRT plan) does not fit this machine (other TensorRT version or GPU) or is damaged."""


class MicroManagerUnavailableError(HardwareError):
    """Micro-Manager (its Java app, its ZMQ server or the device adapters) cannot be reached or started."""


class HardwareConfigError(HardwareError):
    """A Micro-Manager .cfg file is missing, does not load, or lacks a device/role/preset the rig needs."""


class DeviceMissingError(HardwareConfigError):
    """The rig needs a device (camera, SLM, shutter, preset) that the loaded .cfg does not define."""


class PixelTypeError(HardwareError):
    """The camera delivers pixels the SIM pipeline cannot use (it needs 16-bit greyscale)."""


class CameraTimeoutError(HardwareError):
    """The camera stopped delivering frames in the middle of a burst."""


class FrameSlipError(HardwareError):
    """Camera frames and SLM patterns stayed out of step after re-synchronising."""


class AcquisitionAbortedError(HardwareError):
    """The acquisition was aborted on request (``backend.abort()``)."""
