"""pycromanager backend: its in-process Python backend for real, the Java/ZMQ path with and without Micro-Manager."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from imcsr_live.config import load_rig_config
from imcsr_live.errors import MicroManagerUnavailableError, PixelTypeError
from imcsr_live.hardware.mmcore_backends import PycromanagerBackend
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import save_checkpoint

from .conftest import SIM_DEMO_CFG, SIM_DEMO_TOML

pytest.importorskip("pycromanager")


def demo_camera_rig(tmp_path, pixel_type: str = "16bit"):
    """A rig on the C++ part of sim_demo.cfg: DemoCamera, pattern sequence on hardware MM does not see."""
    cfg = tmp_path / "demo.cfg"
    cfg.write_text(SIM_DEMO_CFG.read_text().replace("DemoCam,PixelType,16bit", f"DemoCam,PixelType,{pixel_type}"))
    rig = load_rig_config(SIM_DEMO_TOML)
    rig.backend.kind = "pycromanager"
    rig.backend.mm_config = cfg
    rig.backend.slm = "external"
    rig.backend.pattern_index_tag = None
    rig.acquisition.exposure_ms = 5.0
    return rig


def test_python_backend_burst_on_test_adapters(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    backend = PycromanagerBackend(demo_camera_rig(tmp_path), python_backend=True)
    with backend:
        assert backend.info()["camera"] == "DemoCam"
        stack = backend.acquire_sim_stack()
        assert backend.core.get_current_config("Channel") == "488"
    assert stack.frames.shape == (9, 512, 512) and stack.frames.dtype == np.uint16
    assert stack.frames.std() > 0 and stack.info["core"] == "pycromanager"
    numbers = [m.image_number for m in stack.meta]
    assert numbers == list(range(numbers[0], numbers[0] + 9))
    assert all(m.camera_time_ms is not None and m.tags["Camera"] == "DemoCam" for m in stack.meta)
    assert stack.pattern_indices == [None] * 9  # this rig cannot report patterns: order proven by counters


def test_python_backend_rejects_8bit_camera(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    with pytest.raises(PixelTypeError, match="'DemoCam' delivers 8-bit"):
        PycromanagerBackend(demo_camera_rig(tmp_path, "8bit"), python_backend=True).open()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # pyjavaz's thread: contained
def test_java_micro_manager_not_running(tmp_path) -> None:
    """The real pycromanager.Core() with nothing on port 4827: one clear error, quickly, process alive."""
    with pytest.raises(MicroManagerUnavailableError, match="cannot reach Micro-Manager over ZMQ") as err:
        PycromanagerBackend(demo_camera_rig(tmp_path), connect_timeout_s=120.0).open()
    message = str(err.value)
    # refused at once by pycromanager itself, not given up on after the connect timeout (the slow path below)
    assert "no answer within" not in message
    assert "Start Micro-Manager" in message and "4827" in message and "\n" not in message
    for thread in threading.enumerate():  # let pyjavaz's bridge thread die here, not in a later test
        if thread.name.startswith("BridgeSocketThread"):
            thread.join(3.0)


def test_a_core_that_never_answers_is_given_up_after_the_connect_timeout(tmp_path) -> None:
    """Micro-Manager busy or hung: open() returns with one clear error once ``connect_timeout_s`` has passed."""
    never = threading.Event()
    entered = threading.Event()

    def hangs():
        entered.set()
        never.wait(60)
        raise AssertionError("not reached in the test")

    backend = PycromanagerBackend(demo_camera_rig(tmp_path), core_factory=hangs, connect_timeout_s=0.2)
    try:
        with pytest.raises(MicroManagerUnavailableError, match=r"no answer within 0\.2 s\. Start Micro-Manager") as err:
            backend.open()
    finally:
        never.set()
    assert entered.is_set() and backend.core is None and "\n" not in str(err.value)


def test_live_without_micro_manager_prints_one_error_line(tmp_path) -> None:
    """pyjavaz's bridge thread fails on its own after Core() did: its traceback must not reach the operator."""
    rig = tmp_path / "pycromanager.toml"
    text = SIM_DEMO_TOML.read_text().replace('kind = "pymmcore-plus"', 'kind = "pycromanager"')
    rig.write_text(text.replace('mm_config = "sim_demo.cfg"', f'mm_config = "{SIM_DEMO_CFG}"'))
    model = tmp_path / "tiny"  # an explicit model: no "model ... (shipped)" note on stderr
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    save_checkpoint(
        model, net, structures=[{"name": s.name, "color": s.color} for s in load_rig_config(rig).structures]
    )
    command = ["live", "-c", str(rig), "--headless", "--frames", "1", "--model", str(model)]
    result = subprocess.run([sys.executable, "-m", "imcsr_live", *command], capture_output=True, text=True, timeout=300)
    assert result.returncode == MicroManagerUnavailableError.exit_code
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach Micro-Manager over ZMQ (port 4827)")
    assert "?." not in lines[0] and "Start Micro-Manager" in lines[0]
    assert "Traceback" not in result.stderr and "BridgeSocketThread" not in result.stderr


# --- a fake at the ZMQ boundary only: MMCoreJ's snake_case API, StrVector lists, TaggedImage with 1-D pix --------
class _StrVector:
    def __init__(self, items):
        self._items = list(items)

    def size(self) -> int:
        return len(self._items)

    def get(self, i: int) -> str:
        return self._items[i]


class FakeZMQCore:
    """Stands in for pycromanager's remote Java core, backed by a real in-process MMCore with the test adapters."""

    def __init__(self, core) -> None:
        self._core = core

    def __getattr__(self, name: str):
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
        camel = camel.replace("Slm", "SLM")
        target = getattr(self._core, camel)

        def call(*args):
            out = target(*args)
            if isinstance(out, tuple) and all(isinstance(x, str) for x in out):
                return _StrVector(out)  # Java returns StrVector objects over ZMQ
            return out

        return call

    def pop_next_tagged_image(self):
        img, md = self._core.popNextImageAndMD()
        return SimpleNamespace(pix=np.asarray(img).ravel(), tags=dict(md))  # ZMQ sends pixels flat

    def get_image(self):
        return np.asarray(self._core.getImage()).ravel()


def test_zmq_call_style_with_fake_core(tmp_path) -> None:
    pytest.importorskip("mm_test_adapters")
    from pymmcore_plus import CMMCorePlus

    from imcsr_live.hardware.adapters import test_adapter_path

    rig = demo_camera_rig(tmp_path)
    core = CMMCorePlus()
    core.setDeviceAdapterSearchPaths([str(test_adapter_path())])
    core.loadSystemConfiguration(str(rig.backend.mm_config))
    try:
        backend = PycromanagerBackend(rig, core_factory=lambda: FakeZMQCore(core))
        with backend:
            stack = backend.acquire_sim_stack()
        assert stack.frames.shape == (9, 512, 512) and stack.frames.dtype == np.uint16
        numbers = [m.image_number for m in stack.meta]
        assert numbers == list(range(numbers[0], numbers[0] + 9))
    finally:
        core.unloadAllDevices()
