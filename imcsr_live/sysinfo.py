"""What `imcsr-live info` reports: versions, Qt binding, torch devices, engines, Micro-Manager adapters."""

from __future__ import annotations

import importlib
import importlib.util
import platform
from importlib.metadata import PackageNotFoundError, version

import imcsr_live

_PACKAGES = (
    "numpy",
    "scipy",
    "torch",
    "pydantic",
    "tifffile",
    "pymmcore",
    "pymmcore-plus",
    "pycromanager",
    "mm-test-adapters",
    "qtpy",
    "pyqtgraph",
    "onnxruntime",
    "tensorrt",
)


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def qt_binding() -> str:
    """The Qt binding qtpy picks, e.g. 'PySide6 6.12.0', or why there is none."""
    try:
        qtpy = importlib.import_module("qtpy")
    except Exception as exc:  # qtpy raises its own error class when no binding is installed
        return f"none ({exc.__class__.__name__}: {exc})"
    return f"{qtpy.API_NAME} {qtpy.QT_VERSION}"


def torch_devices() -> list[str]:
    """Compute devices torch can use here."""
    import torch

    devices = [f"cpu ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append(
                f"cuda:{i} {props.name} ({props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor})"
            )
    return devices


def available_engines() -> list[str]:
    """Inference engines whose runtime is importable and has a device here (fastest first)."""
    import torch

    engines = []
    cuda = torch.cuda.is_available()
    if cuda and tensorrt_status().startswith("loads"):
        engines.append("tensorrt")
    if cuda:
        engines.append("torch-cuda")
    if importlib.util.find_spec("onnxruntime") is not None:
        engines.append("onnxruntime")
    engines.append("torch-cpu")
    return engines


def tensorrt_status() -> str:
    """'loads (TensorRT 10.16.1)', 'not installed', or why an installed ``tensorrt`` does not load (one line)."""
    try:
        if importlib.util.find_spec("tensorrt") is None:
            return "not installed"
    except (ImportError, ValueError):
        return "not installed"
    from imcsr_live.engine.tensorrt_engine import import_tensorrt
    from imcsr_live.errors import EngineError

    try:
        trt = import_tensorrt()
    except EngineError as exc:
        return str(exc)
    return f"loads (TensorRT {getattr(trt, '__version__', '?')})"


def micromanager_adapters() -> list[str]:
    """Micro-Manager installations / device-adapter folders pymmcore-plus can find."""
    try:
        from pymmcore_plus import find_micromanager
    except Exception as exc:
        return [f"pymmcore-plus unavailable ({exc})"]
    found = find_micromanager(return_first=False) or []
    return [str(p) for p in found]


def collect_info() -> dict[str, object]:
    """Everything `imcsr-live info` prints, as plain data."""
    return {
        "imcsr-live": imcsr_live.__version__,
        "python": f"{platform.python_version()} ({platform.system()} {platform.machine()})",
        "packages": {name: package_version(name) for name in _PACKAGES},
        "qt": qt_binding(),
        "torch devices": torch_devices(),
        "engines": available_engines(),
        "tensorrt": tensorrt_status(),
        "micro-manager": micromanager_adapters(),
    }
