"""Can a Qt window open here? Asked before the window is built, because Qt aborts the process when it cannot.

On Linux, Qt's ``xcb`` platform plugin needs a set of X11 client libraries. When one is missing, or there is no
display to connect to, Qt prints a long message (often blaming the wrong library) and aborts with exit 134. So the
check (1) runs ``ldd`` on the platform plugin and names the libraries that are not installed, with the Debian /
Ubuntu packages that provide them, and (2) opens a ``QApplication`` in a child process, where an abort costs
nothing. ``imcsr-live info`` reports the result; ``demo`` and ``live`` fall back to headless with it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Platforms that need no screen: nothing to check.
NO_SCREEN_PLATFORMS = ("offscreen", "minimal", "minimalegl", "vnc")

_PROBE = """
import sys
from qtpy import QtWidgets
app = QtWidgets.QApplication(sys.argv[:1])
print(app.platformName(), flush=True)
"""


@dataclass(frozen=True)
class WindowCheck:
    """The Qt platform a window would use and, when it cannot open, why (one line that says what to do)."""

    platform: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        return f"opens ({self.platform})" if self.ok else f"cannot open: {self.problem}"


def qt_platform(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The platform plugin Qt would load: ``QT_QPA_PLATFORM`` (first entry, no options), else Qt's own default."""
    requested = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested:
        return requested
    if sys.platform.startswith("linux"):
        wayland = environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland"
        return "wayland" if wayland else "xcb"
    return {"darwin": "cocoa", "win32": "windows"}.get(sys.platform, sys.platform)


def debian_package(soname: str) -> str:
    """Debian's package name for a shared library (its policy): ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``,
    ``libxkbcommon-x11.so.0`` -> ``libxkbcommon-x11-0`` (a hyphen when the name ends in a digit)."""
    match = re.fullmatch(r"(.+?)\.so\.(\d+)(?:\..*)?", soname)
    if match is None:
        return soname.lower()
    name, major = match.groups()
    return f"{name}{'-' if name[-1].isdigit() else ''}{major}".lower()


def missing_libraries(binary: Path) -> list[str]:
    """Shared libraries ``binary`` needs (directly or through its dependencies) that the loader cannot find."""
    ldd = shutil.which("ldd")
    if ldd is None or not binary.is_file():
        return []
    try:
        out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = re.findall(r"^\s*(\S+)\s+=>\s+not found", out, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def missing_libraries_problem(platform: str, missing: list[str]) -> str:
    packages = " ".join(debian_package(lib) for lib in missing)
    return (
        f"Qt's {platform} platform needs {', '.join(missing)}, not installed here; "
        f"install them (Debian/Ubuntu: sudo apt install {packages})"
    )


def platform_plugin(platform: str) -> Path:
    """The file of Qt's platform plugin ``platform`` (it may not exist)."""
    from qtpy import QtCore  # no platform plugin is loaded until a QGuiApplication exists

    info = QtCore.QLibraryInfo
    if hasattr(info, "path"):
        plugins = info.path(info.LibraryPath.PluginsPath)
    else:  # Qt 5
        plugins = info.location(info.PluginsPath)  # type: ignore[attr-defined]
    return Path(plugins) / "platforms" / f"libq{platform}.so"


def check_window(timeout_s: float = 60.0) -> WindowCheck:
    """Whether a Qt window can open with the platform Qt would use here, and if not, why."""
    platform = qt_platform()
    if platform in NO_SCREEN_PLATFORMS:
        return WindowCheck(platform)
    if sys.platform.startswith("linux"):
        missing = missing_libraries(platform_plugin(platform))
        if missing:
            return WindowCheck(platform, missing_libraries_problem(platform, missing))
        variable = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}.get(platform)
        if variable is not None and not os.environ.get(variable):
            return WindowCheck(platform, f"no screen found ({variable} unset)")
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return WindowCheck(platform, f"Qt did not open a window within {timeout_s:g} s")
    if probe.returncode == 0:
        return WindowCheck(platform)
    return WindowCheck(platform, f"Qt's {platform} platform failed ({_qt_reason(probe.stderr, probe.returncode)})")


def _qt_reason(stderr: str, returncode: int) -> str:
    """The most telling line of Qt's error output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for key in ("could not connect to display", "Could not load the Qt platform plugin", "cannot open display"):
        for line in lines:
            if key.lower() in line.lower():
                return line.rstrip(".")
    return lines[0].rstrip(".") if lines else f"exit status {returncode}"
