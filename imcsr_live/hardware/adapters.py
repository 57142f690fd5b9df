"""Where Micro-Manager device adapters come from: an explicit folder, mm-test-adapters, or an MM install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from imcsr_live.errors import MicroManagerUnavailableError


def test_adapter_path() -> Path | None:
    """Folder of the ``mm-test-adapters`` demo devices (DemoCamera, Utilities, SequenceTester), if installed."""
    if importlib.util.find_spec("mm_test_adapters") is None:
        return None
    import mm_test_adapters

    return Path(mm_test_adapters.device_adapter_path())


def find_adapter_path(explicit: str | Path | None = None) -> Path:
    """The adapter folder to use: ``explicit``, else a Micro-Manager install pymmcore-plus finds, else the
    test adapters. Raises :class:`MicroManagerUnavailableError` if there is none."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_dir():
            raise MicroManagerUnavailableError(f"Micro-Manager adapter folder {str(path)!r} does not exist")
        return path
    try:
        from pymmcore_plus import find_micromanager

        found = find_micromanager()
    except Exception:
        found = None
    if found:
        return Path(found)
    test = test_adapter_path()
    if test is not None:
        return test
    raise MicroManagerUnavailableError(
        "no Micro-Manager device adapters found: install Micro-Manager (`mmcore install`) or, for the simulated "
        "rig, `pip install mm-test-adapters`"
    )
