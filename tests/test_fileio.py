"""The shared small helpers: atomic writes, file SHA-256 (imcsr_live/fileio.py) and the hex-colour check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from imcsr_live.colours import is_hex_colour
from imcsr_live.fileio import atomic_path, atomic_write, file_sha256


def test_atomic_write_creates_the_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    assert atomic_write(target, "ü") == target
    assert target.read_text(encoding="utf-8") == "ü"
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # more than one 1 MiB chunk
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("value", "strict", "optional"),
    [
        ("#00FF7f", True, True),
        ("00FF7F", False, True),
        ("#00FF7", False, False),
        ("#00FF7G", False, False),
        ("##00FF7F", False, False),
        ("#00FF7F\n", False, False),
        (None, False, False),
        (0x00FF7F, False, False),
    ],
)
def test_is_hex_colour(value: object, strict: bool, optional: bool) -> None:
    assert is_hex_colour(value) is strict
    assert is_hex_colour(value, hash_optional=True) is optional
