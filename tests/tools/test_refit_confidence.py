"""tools/refit_confidence.py: a card's confidence reference recomputed on its recipe's validation cells equals the
one training wrote; a recipe with other validation cells is refused and leaves the card as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from imcsr_live.model.checkpoint import checkpoint_paths, read_card
from imcsr_live.train.config import load_train_config
from imcsr_live.train.trainer import Trainer
from tests.tools.tool_loader import load_tool
from tests.train.test_confidence_reference import short_config


def _trained(tmp_path: Path) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    recipe = short_config(tmp_path, uncertainty=True)
    cfg = load_train_config(recipe)
    return Trainer(cfg).run().best_path, recipe


def test_refit_restores_the_reference_training_wrote_and_refuses_other_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = load_tool("refit_confidence")
    stem, recipe = _trained(tmp_path)
    card_path = checkpoint_paths(stem)[1]
    trained = read_card(stem)["confidence_reference"]
    stale = {**read_card(stem), "confidence_reference": {**trained, "predicted_error": [9.0, 9.0, 9.0]}}
    card_path.write_text(json.dumps(stale, indent=2) + "\n", encoding="utf-8")

    assert tool.main([str(stem), "-c", str(recipe)]) == 0  # without --write: prints only
    assert read_card(stem)["confidence_reference"]["predicted_error"] == [9.0, 9.0, 9.0]
    assert tool.main([str(stem), "-c", str(recipe), "--write"]) == 0
    refit = read_card(stem)["confidence_reference"]
    assert refit["residual"] == pytest.approx(trained["residual"], rel=1e-5)
    assert refit["predicted_error"] == pytest.approx(trained["predicted_error"], rel=1e-5)
    assert read_card(stem)["weights_sha256"] == stale["weights_sha256"]

    other = tmp_path / "other.toml"  # the same recipe drawing other validation cells
    other.write_text(recipe.read_text().replace("[data]\n", "[data]\nseed = 99\n", 1), encoding="utf-8")
    before = card_path.read_text(encoding="utf-8")
    capsys.readouterr()
    assert tool.main([str(stem), "-c", str(other), "--write"]) == 2
    assert "another uncertainty calibration" in capsys.readouterr().err
    assert card_path.read_text(encoding="utf-8") == before


def test_calibrations_match_within_the_tolerance_only() -> None:
    tool = load_tool("refit_confidence")
    a = [{"scale": 2.0, "offset": 0.01}]
    assert tool.calibration_matches(a, [{"scale": 2.0 * (1 + 1e-4), "offset": 0.01}])
    assert not tool.calibration_matches(a, [{"scale": 2.1, "offset": 0.01}])
    assert not tool.calibration_matches(a, None) and tool.calibration_matches(None, None)
    assert not tool.calibration_matches(a, a * 2)
