"""Model cards are validated on read (pydantic ModelCard): a bad card is one line naming the key, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imcsr_live.errors import CheckpointError
from imcsr_live.model import IMCSRNet, IMCSRNetConfig
from imcsr_live.model.checkpoint import load_checkpoint, read_card, save_checkpoint

STRUCTURES = [
    {"name": "Microtubules", "color": "#00FF00"},
    {"name": "ER", "color": "#FF00FF"},
    {"name": "Lysosomes", "color": "#00FFFF"},
]


@pytest.fixture
def stem(tmp_path: Path) -> Path:
    net = IMCSRNet(IMCSRNetConfig(in_frames=1, out_channels=3, width=8, groups=1, blocks=1, reduction=2))
    save_checkpoint(tmp_path / "m", net, structures=STRUCTURES)
    return tmp_path / "m"


def _edit(stem: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = stem.with_suffix(".json")
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def _set(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda card: card.__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("structures", ["Microtubules", "ER", "Lysosomes"]), "structures.0"),  # TypeError before
        (_set("architecture", "IMCSRNet"), "architecture"),  # AttributeError before
        (_set("structures", [{"color": "#00FF00"}, *STRUCTURES[1:]]), "structures.0.name"),  # KeyError before
        (_set("structures", []), "structures"),
        (_set("weights_sha256", 42), "weights_sha256"),
        (_set("format", "something-else/2"), "format"),
        (lambda card: card.pop("architecture"), "architecture"),
    ],
)
def test_a_malformed_card_is_one_line_naming_the_key(stem: Path, change, expected: str) -> None:
    _edit(stem, change)
    with pytest.raises(CheckpointError, match=re.escape(expected)) as info:
        load_checkpoint(stem)
    message = str(info.value)
    assert "\n" not in message and expected in message and "m.json" in message


def test_a_card_whose_structures_do_not_match_the_network_outputs_is_refused(stem: Path) -> None:
    _edit(stem, _set("structures", STRUCTURES[:2]))
    with pytest.raises(CheckpointError, match=r"2 structures .* 3 outputs"):
        load_checkpoint(stem)


def test_a_valid_card_keeps_every_key(stem: Path) -> None:
    _edit(stem, _set("my_note", {"anything": [1, 2]}))
    assert read_card(stem)["my_note"] == {"anything": [1, 2]}
    _net, card = load_checkpoint(stem)
    assert [s["name"] for s in card["structures"]] == ["Microtubules", "ER", "Lysosomes"]


def test_the_cli_reports_a_bad_card_without_traceback(stem: Path, tmp_path: Path) -> None:
    _edit(stem, _set("structures", ["Microtubules", "ER", "Lysosomes"]))
    sr = tmp_path / "sr.tif"
    import numpy as np
    import tifffile

    tifffile.imwrite(sr, np.ones((2, 64, 64), np.float32))
    result = subprocess.run(
        [sys.executable, "-m", "imcsr_live", "separate", str(sr), "-m", str(stem), "-o", str(tmp_path / "o.ome.tif")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 3 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "structures.0" in lines[0]
