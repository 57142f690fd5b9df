"""tools/refit_confidence.py: the shipped model's confidence reference refitted on whole frames of its world, per
frame size; without --write the card stays as it was; bad input is one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imcsr_live.model.checkpoint import checkpoint_paths, load_checkpoint, read_card
from imcsr_live.model.confidence import ConfidenceModel, ConfidenceReference
from tests.tools.tool_loader import load_tool

SHIPPED = Path(__file__).resolve().parents[2] / "imcsr_live" / "weights" / "imcsr_cpu_demo_tc"


def _stale_copy(tmp_path: Path) -> Path:
    """The shipped model with a card whose thresholds are on another scale."""
    for path in checkpoint_paths(SHIPPED):
        shutil.copy(path, tmp_path / path.name)
    stem = tmp_path / SHIPPED.name
    card = read_card(stem)
    card["confidence_reference"] = {"residual": 9.0, "predicted_error": [9.0, 9.0, 9.0], "source": "stale"}
    checkpoint_paths(stem)[1].write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return stem


def test_refit_writes_per_size_thresholds_from_whole_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = load_tool("refit_confidence")
    stem = _stale_copy(tmp_path)
    card_path = checkpoint_paths(stem)[1]
    args = [str(stem), "--world", "default", "--images", "1", "--sizes", "128,256"]
    stale = card_path.read_text(encoding="utf-8")
    assert tool.main(args) == 0
    assert card_path.read_text(encoding="utf-8") == stale  # without --write: printed only
    assert tool.main([*args, "--write", "--check", "independent"]) == 0
    out = capsys.readouterr().out
    assert "independent world, 3 test frames of 128 px (seed 0):" in out and "of 256 px" in out
    ref = ConfidenceReference.from_dict(read_card(stem)["confidence_reference"])
    assert [size for size, _r in ref.by_size] == [128, 256]
    assert ref.source.startswith("whole frames of the default world (seed 1000): 6 images")
    for _size, sized in ref.by_size:
        assert sized.source.endswith("3 images, P95 x 1.5")
        assert sized.predicted_error is not None and all(0 < v < 9 for v in sized.predicted_error)
        assert 0 < sized.residual < 9
    _net, card = load_checkpoint(stem)  # weights and their SHA-256 untouched
    assert ConfidenceModel.from_card(card).reference == ref


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--world", "mars"], "error: world 'mars'"), (["--world", "default", "--sizes", "100"], "error: --sizes")],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    tool = load_tool("refit_confidence")
    assert tool.main([str(tmp_path / "nothing"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
