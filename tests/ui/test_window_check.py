"""Whether a Qt window can open: missing system libraries are named with their packages, and demo goes headless
instead of letting Qt abort the process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imcsr_live.ui import window_check
from imcsr_live.ui.window_check import check_window, debian_package, missing_libraries, qt_platform

needs_toolchain = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and shutil.which("gcc") and shutil.which("ldd")), reason="needs gcc and ldd"
)


@pytest.fixture
def plugin_missing_a_library(tmp_path: Path) -> Path:
    """A real shared library linked against libimcsrfake-x11.so.3, which is then removed, as a platform plugin
    whose X11 dependency is not installed."""
    (tmp_path / "fake.c").write_text("int imcsr_fake(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int imcsr_fake(void);\nint plugin(void) { return imcsr_fake(); }\n")
    fake = tmp_path / "libimcsrfake-x11.so.3"
    cc = ["gcc", "-shared", "-fPIC"]
    subprocess.run([*cc, "-Wl,-soname,libimcsrfake-x11.so.3", "-o", str(fake), str(tmp_path / "fake.c")], check=True)
    plugin = tmp_path / "libqxcb.so"
    subprocess.run([*cc, "-o", str(plugin), str(tmp_path / "plugin.c"), str(fake)], check=True)
    fake.unlink()
    return plugin


@needs_toolchain
def test_missing_libraries_of_a_plugin_are_named_with_their_debian_packages(
    plugin_missing_a_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert missing_libraries(plugin_missing_a_library) == ["libimcsrfake-x11.so.3"]
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(window_check, "platform_plugin", lambda platform: plugin_missing_a_library)
    result = check_window()
    assert not result.ok
    assert result.problem == (
        "Qt's xcb platform needs libimcsrfake-x11.so.3, not installed here; "
        "install them (Debian/Ubuntu: sudo apt install libimcsrfake-x11-3)"
    )


def test_a_present_library_set_is_not_reported(tmp_path: Path) -> None:
    assert missing_libraries(Path(sys.executable).resolve()) == []
    assert missing_libraries(tmp_path / "no-such-plugin.so") == []


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libEGL.so.1", "libegl1"),
        ("libdbus-1.so.3", "libdbus-1-3"),
    ],
)
def test_debian_package_of_a_soname(soname: str, package: str) -> None:
    assert debian_package(soname) == package


def test_the_platform_qt_would_use() -> None:
    assert qt_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert qt_platform({"QT_QPA_PLATFORM": "xcb;wayland"}) == "xcb"
    assert qt_platform({"QT_QPA_PLATFORM": "vnc:size=800x600"}) == "vnc"
    if sys.platform.startswith("linux"):
        assert qt_platform({}) == "xcb"
        assert qt_platform({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}) == "wayland"


def test_offscreen_needs_no_screen_and_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert check_window().describe() == "opens (offscreen)"


def test_a_platform_that_fails_in_qt_is_reported_not_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "nosuchplatform")  # Qt aborts the child process that tries it
    result = check_window()
    assert result.problem is not None
    assert 'Could not find the Qt platform plugin "nosuchplatform"' in result.problem


def _run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, timeout=300, env=environ | env
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 platform")
def test_demo_with_an_unusable_display_goes_headless_with_the_reason(tmp_path: Path) -> None:
    # No X server at :99 here, and maybe missing xcb libraries: Qt would abort the process (exit 134).
    result = _run_cli("demo", "--frames", "2", QT_QPA_PLATFORM="xcb", DISPLAY=":99", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("the window cannot open: ")]
    assert len(said) == 1 and said[0].endswith("with --screenshot renders the window anyway)"), result.stderr
    assert "running headless" in said[0] and "xcb" in said[0]
    assert "timepoint 2/2" in result.stdout


def test_info_says_whether_the_window_opens() -> None:
    result = _run_cli("info", "--json", QT_QPA_PLATFORM="nosuchplatform")
    assert result.returncode == 0, result.stderr
    window = json.loads(result.stdout)["window"]
    assert window.startswith("cannot open: Qt's nosuchplatform platform failed")
    result = _run_cli("info", "--json", QT_QPA_PLATFORM="offscreen")
    assert json.loads(result.stdout)["window"] == "opens (offscreen)"
