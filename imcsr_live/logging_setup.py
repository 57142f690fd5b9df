"""Logging for the app: a rotating log file (everything at DEBUG) plus console output set by -v / -q."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from platformdirs import user_log_dir

LOG_DIR_ENV = "IMCSR_LIVE_LOG_DIR"
_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def log_dir() -> Path:
    """Folder of the rotating log file (``$IMCSR_LIVE_LOG_DIR`` overrides the per-user default)."""
    return Path(os.environ.get(LOG_DIR_ENV) or user_log_dir("imcsr-live", appauthor=False))


def console_level(verbose: int, quiet: bool) -> int:
    """WARNING by default, INFO with -v, DEBUG with -vv, ERROR with -q."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def setup_logging(verbose: int = 0, quiet: bool = False, directory: Path | None = None) -> Path | None:
    """Configure the ``imcsr_live`` logger; return the log file path (None if it could not be opened).

    A log folder that cannot be created only costs the file log, never the run: the console still works.
    """
    logger = logging.getLogger("imcsr_live")
    logger.setLevel(logging.DEBUG)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False

    console = logging.StreamHandler()
    console.setLevel(console_level(verbose, quiet))
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(console)

    path = (directory or log_dir()) / "imcsr-live.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    except OSError as exc:
        logger.warning("cannot write the log file %s (%s); logging to the console only", path, exc)
        return None
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    logger.addHandler(file_handler)
    return path
