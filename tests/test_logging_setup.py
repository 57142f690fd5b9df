"""Logging: everything goes to the rotating file; the console follows -v / -q."""

from __future__ import annotations

import logging
from pathlib import Path

from imcsr_live.logging_setup import console_level, setup_logging


def test_file_gets_debug_and_console_follows_verbosity(tmp_path: Path) -> None:
    path = setup_logging(verbose=0, quiet=False, directory=tmp_path)
    assert path == tmp_path / "imcsr-live.log"
    logger = logging.getLogger("imcsr_live.test")
    logger.debug("a debug detail")
    logger.warning("a warning")
    for handler in logging.getLogger("imcsr_live").handlers:
        handler.flush()
    text = path.read_text()
    assert "a debug detail" in text and "a warning" in text
    assert console_level(0, False) == logging.WARNING
    assert console_level(1, False) == logging.INFO
    assert console_level(2, False) == logging.DEBUG
    assert console_level(2, True) == logging.ERROR


def test_unwritable_log_folder_keeps_console_logging(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where the folder should be
    assert setup_logging(directory=blocker / "logs") is None
    handlers = logging.getLogger("imcsr_live").handlers
    assert len(handlers) == 1 and isinstance(handlers[0], logging.StreamHandler)


def test_setup_twice_does_not_duplicate_handlers(tmp_path: Path) -> None:
    setup_logging(directory=tmp_path)
    setup_logging(directory=tmp_path)
    assert len(logging.getLogger("imcsr_live").handlers) == 2
