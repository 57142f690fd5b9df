"""Output files of the offline commands (``reconstruct``, ``separate``, ``process``): never lost, never half-written.

An existing output is refused unless the operator passed ``--overwrite``. Every run writes into a hidden staging
folder beside each output (same file system, same file names) and moves the finished files into place only when
the run succeeded; a failed or interrupted run removes its staging folder and leaves every file that was there
before untouched, so no all-zero pre-allocated file is ever left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imcsr_live.errors import InputDataError

log = logging.getLogger(__name__)


def refuse_existing(targets: list[Path], overwrite: bool, option: str = "-o") -> None:
    """Raise :class:`InputDataError` when one of ``targets`` exists and ``overwrite`` is False."""
    if overwrite:
        return
    taken = [p for p in targets if p.exists() or p.is_symlink()]
    if taken:
        raise InputDataError(
            f"{taken[0]} already exists; choose another {option} path or pass --overwrite to replace it "
            "(nothing is overwritten)"
        )


def refuse_input_as_output(output: Path, inputs: list[Path]) -> None:
    """Raise :class:`InputDataError` when ``output`` is an input or a folder holding one (even with --overwrite)."""
    out = output.resolve()
    for path in inputs:
        src = path.resolve()
        if src == out or out in src.parents:
            raise InputDataError(f"the output {output} would replace the input {path}; choose another -o path")


@contextmanager
def staged(*outputs: Path) -> Iterator[list[Path]]:
    """Staging paths for ``outputs``: write there; on success the written files replace the real ones.

    Each output gets ``PARENT/.NAME.partial-XXXX/NAME``; files a writer puts beside it (e.g. ``OUT.raw.ome.tif``
    next to ``OUT.ome.tif``) are moved along. On an exception the staging folders are removed and the exception
    propagates; nothing that existed before is touched.
    """
    folders: list[Path] = []
    paths: list[Path] = []
    try:
        for out in outputs:
            out.parent.mkdir(parents=True, exist_ok=True)
            folder = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
            folder.mkdir()
            folders.append(folder)
            paths.append(folder / out.name)
        yield paths
        for folder, out in zip(folders, outputs, strict=True):
            for item in sorted(folder.iterdir()):
                _replace(item, out.parent / item.name)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _replace(new: Path, dest: Path) -> None:
    """Move ``new`` to ``dest``, replacing a file or folder there (the old one is removed only after the move)."""
    if dest.is_dir() and not dest.is_symlink():
        backup = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dest, backup)
        try:
            os.replace(new, dest)
        except BaseException:
            os.replace(backup, dest)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    elif new.is_dir() and dest.exists():
        dest.unlink()
        os.replace(new, dest)
    else:
        os.replace(new, dest)
    log.debug("wrote %s", dest)
