"""tools/ship_model.py: a trained checkpoint shipped under a new name loads, keeps its lineage and metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig
from imcsr_live.train.checkpoint import load_checkpoint, read_card, save_checkpoint
from tests.tools.tool_loader import load_tool

STRUCTURES = [{"name": "Microtubules", "color": "#00FF00"}, {"name": "ER", "color": "#FF00FF"}]


def _tool():
    return load_tool("ship_model")


def _trained(folder: Path, name: str, seed: int, iterations: int) -> Path:
    torch.manual_seed(seed)
    net = IMCSRNet(IMCSRNetConfig(in_frames=1, out_channels=2, width=8, groups=1, blocks=1, reduction=4))
    stem = folder / name
    save_checkpoint(stem, net, structures=STRUCTURES, training={"iterations": iterations, "data": f"data {seed}"})
    return stem


def test_shipping_renames_rehashes_and_records_what_it_replaces(tmp_path: Path) -> None:
    ship = _tool()
    dest = tmp_path / "weights"
    first = ship.ship(_trained(tmp_path / "a", "run_a", 0, 100), "demo", dest, None, None)
    old_sha = read_card(first)["weights_sha256"]
    metrics = tmp_path / "metrics.csv"
    with open(metrics, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["level", "image", "structure", "method", "nrmse", "ssim", "pcc"])
        for i, pcc in enumerate((0.90, 0.80, 0.95)):  # median 0.90
            w.writerow(["1000 photons", i, "ER", "New", 0.1, 0.5, pcc])
            w.writerow(["1000 photons", i, "ER", "Old", 0.2, 0.4, 0.5])
    card_path = ship.ship(
        _trained(tmp_path / "b", "run_b", 1, 250), "demo", dest, ship.median_metrics(metrics, "New"), "fine-tuned"
    )
    card = read_card(card_path)
    net, _card = load_checkpoint(dest / "demo")  # SHA-256 of the copied weights matches the new card
    assert card["name"] == "demo" and card["weights_file"] == "demo.safetensors"
    assert card["weights_sha256"] != old_sha
    assert card["training"]["replaces"] == {
        "weights_sha256": old_sha,
        "created": read_card(tmp_path / "a" / "run_a")["created"],
        "iterations": 100,
        "data": "data 0",
    }
    assert card["training"]["iterations"] == 250 and card["training"]["note"] == "fine-tuned"
    medians = card["metrics"]["evaluation_medians"]["1000 photons"]["ER"]
    assert medians == {"nrmse": 0.1, "ssim": 0.5, "pcc": 0.9, "n": 3}
    again = read_card(ship.ship(tmp_path / "b" / "run_b", "demo", dest, None, "new metrics"))
    assert again["training"]["replaces"] == card["training"]["replaces"]  # re-shipping keeps the lineage
    ref, _ = load_checkpoint(tmp_path / "b" / "run_b")
    for (k, v), (_, r) in zip(net.state_dict().items(), ref.state_dict().items(), strict=True):
        assert torch.equal(v, r), k


def test_shipping_a_method_missing_from_the_metrics_fails_clearly(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("level,image,structure,method,nrmse,ssim,pcc\n1000 photons,0,ER,Old,0.2,0.4,0.5\n")
    with pytest.raises(SystemExit, match="no rows for method 'New'"):
        _tool().median_metrics(metrics, "New")


def test_metrics_of_several_worlds_merge_by_level(tmp_path: Path) -> None:
    ship = _tool()
    paths = []
    for world, pcc in (("randomised", 0.7), ("independent", 0.6)):
        path = tmp_path / f"{world}.csv"
        path.write_text(
            "level,image,structure,method,nrmse,ssim,pcc\n"
            f"{world} 1000 photons,0,ER,New,0.2,0.4,{pcc}\n{world} 1000 photons,0,ER,Old,0.3,0.3,0.1\n"
        )
        paths += ["--metrics", str(path)]
    rc = ship.main([str(_trained(tmp_path / "a", "run", 0, 10)), "--name", "demo", "--dest", str(tmp_path / "w"),
                    *paths, "--method", "New"])  # fmt: skip
    assert rc in (0, None)
    medians = read_card(tmp_path / "w" / "demo")["metrics"]["evaluation_medians"]
    assert {k: v["ER"]["pcc"] for k, v in medians.items()} == {"randomised 1000 photons": 0.7,
                                                               "independent 1000 photons": 0.6}  # fmt: skip


def test_a_synthetic_model_ships_only_with_thresholds_fitted_on_whole_frames(tmp_path: Path) -> None:
    """Thresholds from validation patches leave the live verdict wrong (docs/cross_world/uncertainty.md)."""
    ship = _tool()
    stem = _trained(tmp_path / "a", "run_a", 0, 100)
    card_path = stem.with_suffix(".json")
    card = read_card(stem)
    card["training"]["config"] = {"data": {"kind": "pipeline", "world": "randomised", "default_fraction": 0.25}}
    card["confidence_reference"] = {"residual": 0.1, "predicted_error": None, "source": "validation: 48 images"}
    card_path.write_text(json.dumps(card))
    with pytest.raises(SystemExit, match=r"refit_confidence.py .*run_a --world randomised\+default --write"):
        ship.ship(stem, "demo", tmp_path / "weights", None, None)
    assert not (tmp_path / "weights").exists()  # nothing shipped
    assert read_card(ship.ship(stem, "demo", tmp_path / "weights", None, None, keep_thresholds=True))["name"] == "demo"
    card["confidence_reference"]["source"] = "whole frames of the randomised + default world (seed 1000): 36 images"
    card_path.write_text(json.dumps(card))
    assert read_card(ship.ship(stem, "demo2", tmp_path / "weights", None, None))["name"] == "demo2"
    card["training"]["config"] = {"data": {"kind": "folder", "path": "cells"}}  # a user's data: nothing to draw
    card["confidence_reference"]["source"] = "validation: 48 images"
    card_path.write_text(json.dumps(card))
    assert read_card(ship.ship(stem, "demo3", tmp_path / "weights", None, None))["name"] == "demo3"
