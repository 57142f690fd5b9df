"""Viewer settings kept between runs: channel colours/visibility/levels/gamma, palette, window geometry.

One JSON file in the per-user config folder (``$IMCSR_LIVE_CONFIG_DIR`` overrides it, e.g. for tests). A missing
or damaged file means defaults (with a warning), never a failed start.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from platformdirs import user_config_dir

from imcsr_live.fileio import atomic_write
from imcsr_live.ui.lut import ChannelDisplay

log = logging.getLogger(__name__)

CONFIG_DIR_ENV = "IMCSR_LIVE_CONFIG_DIR"
SETTINGS_FILE = "viewer.json"
VERSION = 1


def config_dir() -> Path:
    """``$IMCSR_LIVE_CONFIG_DIR`` or the per-user config folder of imcsr-live."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or user_config_dir("imcsr-live", appauthor=False))


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> dict[str, Any]:
    """The saved settings, or {} when there are none (or they cannot be read)."""
    path = path or settings_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("viewer settings %s unreadable (%s); using defaults", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        log.warning("viewer settings %s are from another version; using defaults", path)
        return {}
    return data


def save_settings(data: dict[str, Any], path: Path | None = None) -> Path | None:
    """Write atomically; returns the path, or None if it could not be written (logged, not raised)."""
    path = path or settings_path()
    try:
        atomic_write(path, json.dumps({"version": VERSION, **data}, indent=1))
    except OSError as exc:
        log.warning("cannot save the viewer settings to %s (%s); set %s to a writable folder", path, exc,
                    CONFIG_DIR_ENV)  # fmt: skip
        return None
    return path


def channel_displays(names: list[str], colours: list[str], gamma: float, saved: dict[str, Any]) -> list[ChannelDisplay]:
    """One display per channel: saved values for channels of the same name, rig defaults otherwise.

    A damaged entry (hand-edited file, other version) gives that channel its defaults and one warning.
    """
    stored = saved.get("channels", {}) if isinstance(saved.get("channels"), dict) else {}
    displays, damaged = [], []
    for name, colour in zip(names, colours, strict=True):
        entry = stored.get(name)
        display = ChannelDisplay(name=name, color=colour, gamma=gamma)
        if isinstance(entry, dict):
            try:
                display = ChannelDisplay.from_dict(entry, name, colour, gamma)
            except ValueError as exc:
                damaged.append(f"{name}: {exc}")
        displays.append(display)
    if damaged:
        log.warning("viewer settings %s: %s; using the defaults for these channels", settings_path(),
                    "; ".join(damaged))  # fmt: skip
    return displays
