"""Micro-Manager backends: pymmcore-plus (CMMCorePlus / UniMMCore) and pycromanager (ZMQ or in-process).

Both hand the same :class:`~imcsr_live.hardware.burst.BurstEngine` a :mod:`~imcsr_live.hardware.mmcalls` view
of their core; only opening/closing the core differs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imcsr_live.config import RigConfig
from imcsr_live.errors import HardwareConfigError, HardwareError, MicroManagerUnavailableError
from imcsr_live.hardware.adapters import find_adapter_path, test_adapter_path
from imcsr_live.hardware.base import BackendBase, RawStack
from imcsr_live.hardware.burst import BurstEngine
from imcsr_live.hardware.mmcalls import CoreCalls, PycromanagerCalls, PymmcorePlusCalls

log = logging.getLogger(__name__)

ZMQ_PORT = 4827


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _config_path(rig: RigConfig, required: bool = True) -> Path | None:
    path = rig.resolved_mm_config()
    if path is None:
        if required:
            raise HardwareConfigError(
                "[backend] mm_config is not set: point it at a Micro-Manager .cfg (e.g. hardware_configs/sim_demo.cfg)"
            )
        return None
    if not path.is_file():
        raise HardwareConfigError(f"Micro-Manager config {str(path)!r} not found: fix [backend] mm_config")
    return path


class _MMBackend(BackendBase):
    """Shared parts: the burst engine, info, abort, presets."""

    kind = "micro-manager"

    def __init__(self, rig: RigConfig) -> None:
        self.rig = rig
        self.engine: BurstEngine | None = None
        self.calls: CoreCalls | None = None

    def _engine(self) -> BurstEngine:
        if self.engine is None:
            raise HardwareError("the microscope backend is not open; call open() (or use it in a with-block) first")
        return self.engine

    def _start_engine(self, calls: CoreCalls) -> None:
        self.calls = calls
        self._sync_simulated_camera(calls)
        engine = BurstEngine(calls, self.rig)
        engine.prepare()
        self.engine = engine

    def _sync_simulated_camera(self, calls: CoreCalls) -> None:
        """Give our simulated camera this rig's optics/pattern so its images match the TOML."""
        cam = calls.camera()
        if cam and self.rig.source_path is not None and calls.has_property(cam, "RigConfig"):
            calls.set_property(cam, "RigConfig", str(self.rig.source_path))

    def acquire_sim_stack(self, timeout_s: float | None = None) -> RawStack:
        """One checked SIM burst; ``timeout_s`` (default ``[backend] timeout_s``) bounds the wait per frame."""
        return self._engine().acquire(self.rig.backend.timeout_s if timeout_s is None else timeout_s)

    def abort(self) -> None:
        if self.engine is not None:
            self.engine.abort()

    def channel_presets(self) -> list[str]:
        return self._engine().channel_presets()

    @property
    def preset(self) -> str | None:
        """The channel preset applied last (None before open)."""
        return self.engine.preset if self.engine is not None else None

    def set_channel_preset(self, preset: str) -> None:
        self._engine().set_channel_preset(preset)

    def move_to(self, x_um: float, y_um: float) -> None:
        """Move the core's XY stage and wait for it; :class:`HardwareConfigError` if the rig has none."""
        calls = self._engine().calls
        if not calls.xy_stage():
            raise HardwareConfigError(
                "this rig's Micro-Manager config has no XY stage (Core XYStage role), so it cannot visit positions; "
                "drop --positions or add a stage to the .cfg"
            )
        try:
            calls.set_xy_position(x_um, y_um)
        except Exception as exc:
            raise HardwareError(f"the XY stage did not move to ({x_um:g}, {y_um:g}) um: {_one_line(exc)}") from None

    def _stop_engine(self) -> None:
        """Abort any burst, stop sequences/shutter, and wait for the camera thread (before devices unload)."""
        if self.engine is not None:
            self.engine.abort()
            self.engine._stop_quietly()
        self.engine = None
        _join_camera_threads()

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "open": self.engine is not None, "burst": self.rig.backend.burst}
        if self.engine is not None:
            e = self.engine
            out.update(camera=e.camera, slm=e.slm or "external", frame_shape=e.shape, preset=e.preset)
            if e.camera and e.calls.has_property(e.camera, "Photons"):  # the simulated camera says its brightness
                out["photons"] = float(e.calls.get_property(e.camera, "Photons"))
        return out


def _join_camera_threads(timeout_s: float = 10.0) -> None:
    """Wait for UniMMCore's sequence thread(s) to finish.

    ``stopSequenceAcquisition`` waits only 2 s for its daemon thread; on a loaded machine a Python camera can
    still be inside MMCore then, and a daemon thread inside C++ code at interpreter exit aborts the process
    ("FATAL: exception not rethrown"). Matched by class name: the class lives in a private pymmcore-plus module.
    """
    deadline = time.monotonic() + timeout_s
    for thread in threading.enumerate():
        if type(thread).__name__ == "AcquisitionThread" and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))


class PymmcorePlusBackend(_MMBackend):
    """Micro-Manager devices in this process through pymmcore-plus ``UniMMCore`` (C++ and Python devices).

    Parameters
    ----------
    rig
        Rig config; ``[backend] mm_config`` names the .cfg.
    adapter_path
        Device-adapter folder; default: an installed Micro-Manager, else ``mm-test-adapters``.
    core
        An already-configured core to use instead of loading ``mm_config`` (it is not unloaded on close).
    """

    kind = "pymmcore-plus"

    def __init__(self, rig: RigConfig, *, adapter_path: str | Path | None = None, core: Any = None) -> None:
        super().__init__(rig)
        self._adapter_path = adapter_path
        self._given_core = core
        self.core: Any = None

    def open(self) -> None:
        if self.engine is not None:
            return
        if self._given_core is not None:
            self.core = self._given_core
        else:
            from pymmcore_plus.experimental.unicore import UniMMCore

            cfg = _config_path(self.rig)
            core = UniMMCore()
            core.setDeviceAdapterSearchPaths([str(find_adapter_path(self._adapter_path))])
            try:
                core.loadSystemConfiguration(str(cfg))
            except Exception as exc:
                core.unloadAllDevices()
                raise HardwareConfigError(
                    f"Micro-Manager config {str(cfg)!r} did not load: {_one_line(exc)}; check the device adapter "
                    "names and labels in that file"
                ) from None
            self.core = core
        try:
            self._start_engine(PymmcorePlusCalls(self.core))
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        self._stop_engine()
        if self.core is not None and self._given_core is None:
            self.core.unloadAllDevices()
        self.core = None


#: pycromanager's ZMQ bridge (pyjavaz) runs its socket in threads of this name; when the connection fails, such a
#: thread ends with an exception of its own (a 19-line traceback on stderr) after ``Core()`` has already failed.
BRIDGE_THREAD_PREFIX = "BridgeSocketThread"


@contextmanager
def quiet_bridge_threads(settle_s: float = 3.0) -> Iterator[None]:
    """Log what pyjavaz's bridge threads raise at DEBUG instead of printing tracebacks (other threads: unchanged).

    Installed around a connection attempt. When the attempt fails (an exception leaves the block), it waits up to
    ``settle_s`` for the bridge threads, which are shutting down, so their exceptions still land here and not on
    the console; a working connection's bridge thread keeps running.
    """
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread
        if thread is not None and thread.name.startswith(BRIDGE_THREAD_PREFIX):
            log.debug("pycromanager bridge thread %s ended: %s", thread.name, args.exc_value, exc_info=args.exc_value)
            return
        previous(args)

    threading.excepthook = hook
    try:
        yield
    except BaseException:
        deadline = time.monotonic() + settle_s
        for thread in threading.enumerate():
            if thread.name.startswith(BRIDGE_THREAD_PREFIX) and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        raise
    finally:
        if threading.excepthook is hook:  # nobody replaced it meanwhile
            threading.excepthook = previous


class PycromanagerBackend(_MMBackend):
    """Micro-Manager through ``pycromanager.Core()``.

    ``python_backend=False`` (default): the Java Micro-Manager app must be running with its ZMQ server on
    (Tools > Options > "Run server on port 4827"); the configuration loaded there is used as is.
    ``python_backend=True``: pycromanager's in-process pymmcore (``start_headless(..., python_backend=True)``)
    loads ``[backend] mm_config`` with the adapters in ``mm_app_path`` (default: ``mm-test-adapters``).
    ``core_factory`` replaces ``pycromanager.Core`` (for tests of the ZMQ call style without Java).
    """

    kind = "pycromanager"

    def __init__(
        self,
        rig: RigConfig,
        *,
        python_backend: bool = False,
        mm_app_path: str | Path | None = None,
        core_factory: Any = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(rig)
        self.python_backend = python_backend
        self._mm_app_path = mm_app_path
        self._core_factory = core_factory
        self._connect_timeout_s = connect_timeout_s
        self._headless = False
        self.core: Any = None

    def _connect(self) -> Any:
        """``Core()`` in a worker thread: a missing Micro-Manager must not hang or kill the app."""
        factory = self._core_factory
        if factory is None:
            from pycromanager import Core

            factory = Core
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["core"] = factory()
            except BaseException as exc:  # pycromanager raises a bare Exception
                result["error"] = exc

        with quiet_bridge_threads():
            worker = threading.Thread(target=run, name="pycromanager-connect", daemon=True)
            worker.start()
            worker.join(self._connect_timeout_s)
            if "core" in result:
                return result["core"]
            why = _one_line(result["error"]) if "error" in result else f"no answer within {self._connect_timeout_s:g} s"
            stop = "" if why.endswith((".", "?", "!")) else "."  # pycromanager's own text ends in "enabled?"
            raise MicroManagerUnavailableError(
                f"cannot reach Micro-Manager over ZMQ (port {ZMQ_PORT}): {why}{stop} Start Micro-Manager, load the "
                "rig's configuration and enable Tools > Options > 'Run server on port 4827'; or drive the devices "
                'without the Java app with [backend] kind = "pymmcore-plus"'
            )

    def open(self) -> None:
        if self.engine is not None:
            return
        if self.python_backend:
            from pycromanager import Core, start_headless

            cfg = _config_path(self.rig)
            app = Path(self._mm_app_path) if self._mm_app_path else test_adapter_path()
            if app is None:
                raise MicroManagerUnavailableError(
                    "pycromanager's Python backend needs a Micro-Manager folder: pass mm_app_path or "
                    "`pip install mm-test-adapters`"
                )
            try:
                start_headless(str(app), str(cfg), python_backend=True)
            except Exception as exc:
                self._stop_headless()
                raise HardwareConfigError(
                    f"Micro-Manager config {str(cfg)!r} did not load in pycromanager's Python backend: "
                    f"{_one_line(exc)}; check the device adapter names in that file"
                ) from None
            self._headless = True
            self.core = Core()
        else:
            self.core = self._connect()
        try:
            self._start_engine(PycromanagerCalls(self.core))
        except Exception:
            self.close()
            raise

    def _stop_headless(self) -> None:
        from pycromanager import stop_headless

        try:
            stop_headless()
        except Exception as exc:  # pragma: no cover - best effort at shutdown
            log.warning("pycromanager stop_headless failed: %s", exc)

    def close(self) -> None:
        self._stop_engine()
        if self._headless:
            self._stop_headless()
            self._headless = False
        self.core = None
