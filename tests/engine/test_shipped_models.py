"""Shipped models: found by name from any folder, listed by `info`/`models`, and the default picked for the GPU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

import imcsr_live.engine.model_source as model_source
from imcsr_live.cli import app
from imcsr_live.engine.model_source import choose_default_model, resolve_checkpoint, shipped_models

SHIPPED = model_source.WEIGHTS_DIR / "imcsr_cpu_demo_tc"
STRUCTURES = ["Microtubules", "ER", "Lysosomes"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcsr_live", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights folder with the CPU model and a fake paper-size model (card + 5 MB of weights) for the same rig."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(SHIPPED.with_suffix(suffix), folder / f"imcsr_cpu_demo_tc{suffix}")
    card = json.loads(SHIPPED.with_suffix(".json").read_text())
    card["name"] = "imcsr_paper_tc"
    (folder / "imcsr_paper_tc.json").write_text(json.dumps(card))
    (folder / "imcsr_paper_tc.safetensors").write_bytes(b"\0" * (5 << 20))  # > 1 M fp32 parameters
    monkeypatch.setattr(model_source, "WEIGHTS_DIR", folder)
    return folder


def test_a_shipped_model_resolves_by_name_from_any_folder(tmp_path: Path) -> None:
    assert resolve_checkpoint("imcsr_cpu_demo_tc") == SHIPPED
    assert resolve_checkpoint("imcsr_cpu_demo_tc.safetensors") == SHIPPED
    (tmp_path / "mine.json").write_text("{}")
    assert resolve_checkpoint(tmp_path / "mine") == tmp_path / "mine"  # a path still wins
    sr = tmp_path / "sr.tif"
    tifffile.imwrite(sr, np.random.default_rng(0).random((2, 64, 64), dtype=np.float32))
    result = run_cli("separate", "sr.tif", "--model", "imcsr_cpu_demo_tc", "-o", "out.ome.tif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.ome.tif").is_file()


def test_separate_without_model_uses_the_shipped_one(tmp_path: Path) -> None:
    sr = tmp_path / "sr.tif"
    tifffile.imwrite(sr, np.random.default_rng(0).random((1, 64, 64), dtype=np.float32))
    result = run_cli("separate", "sr.tif", "-o", "out.ome.zarr", "--engine", "torch-cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "model imcsr_cpu_demo_tc" in result.stderr


def test_without_cuda_the_cpu_model_is_chosen_and_the_reason_given(weights, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    stem, reason = choose_default_model(STRUCTURES, "auto")
    assert stem == weights / "imcsr_cpu_demo_tc"
    assert "no CUDA GPU" in reason and "imcsr_paper_tc needs one" in reason


def test_with_cuda_the_paper_model_is_chosen_unless_the_engine_runs_on_the_cpu(weights, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_default_model(STRUCTURES, "auto")[0] == weights / "imcsr_paper_tc"
    assert choose_default_model(STRUCTURES, "torch-cuda")[0] == weights / "imcsr_paper_tc"
    stem, reason = choose_default_model(STRUCTURES, "torch-cpu")
    assert stem == weights / "imcsr_cpu_demo_tc" and "torch-cpu runs on the CPU" in reason


def test_runs_on_in_the_card_wins_over_the_size(weights, monkeypatch) -> None:
    card = json.loads((weights / "imcsr_paper_tc.json").read_text())
    card["runs_on"] = "cpu"
    (weights / "imcsr_paper_tc.json").write_text(json.dumps(card))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert {m.name: m.runs_on for m in shipped_models()} == {"imcsr_cpu_demo_tc": "cpu", "imcsr_paper_tc": "cpu"}
    assert choose_default_model(STRUCTURES, "auto")[0] == weights / "imcsr_cpu_demo_tc"  # the smaller CPU model


def test_no_shipped_model_for_other_structures(weights) -> None:
    stem, reason = choose_default_model(["Mitochondria"], "auto")
    assert stem is None and "Mitochondria" in reason


def test_info_and_models_list_the_shipped_models(weights) -> None:
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = {m["name"]: m for m in json.loads(result.output)}
    assert listed["imcsr_cpu_demo_tc"]["structures"] == STRUCTURES
    assert listed["imcsr_cpu_demo_tc"]["runs_on"] == "cpu" and listed["imcsr_paper_tc"]["runs_on"] == "gpu"
    assert listed["imcsr_cpu_demo_tc"]["uncertainty"] is True  # the calibrated head (train_only = "uncertainty")
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0 and "imcsr_paper_tc" in result.output


@pytest.mark.parametrize(
    ("training", "world"),
    [
        (
            {
                "config": {
                    "data": {"kind": "pipeline", "world": "randomised", "mix": {"independent": 0.25, "default": 0.25}}
                }
            },
            "randomised+default+independent",
        ),
        (
            {"config": {"data": {"kind": "pipeline", "world": "randomised", "default_fraction": 0.25}}},
            "randomised+default",
        ),
        ({"config": {"data": {"kind": "synthetic"}}}, "default"),
        ({"config": {"data": {"kind": "acquired", "root": "ds"}}}, "acquired"),
        # a head trained alone sits on its init's separation
        (
            {"config": {"data": {"kind": "synthetic"}}, "separation_data": {"kind": "pipeline", "world": "randomised"}},
            "randomised",
        ),
        ({}, "default"),
    ],
)
def test_models_names_every_world_the_separation_trained_on(
    weights: Path, training: dict[str, object], world: str
) -> None:
    """Before, the listing read ``training.config.world``, which the trainer never writes: every model said default."""
    card_path = weights / "imcsr_cpu_demo_tc.json"
    card = json.loads(card_path.read_text())
    card["training"] = training
    card_path.write_text(json.dumps(card))
    listed = {m.name: m.summary() for m in shipped_models()}
    assert listed["imcsr_cpu_demo_tc"]["world"] == world


def test_the_shipped_card_lists_its_three_training_worlds() -> None:
    [shipped] = [m for m in shipped_models() if m.name == "imcsr_cpu_demo_tc"]
    assert shipped.world == "randomised+default+independent"
