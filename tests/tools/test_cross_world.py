"""tools/cross_world.py: every model on every world, next to the copy baseline of the same images."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.synth.world import WORLDS
from tests.tools.tool_loader import load_tool

REPO = Path(__file__).resolve().parents[2]
SHIPPED = "imcsr_live/weights/imcsr_cpu_demo_tc"
NAMES = ["Microtubules", "ER", "Lysosomes"]


def _available_worlds() -> list[str]:
    """ "default" plus every other world whose generator already works (they are written in parallel)."""
    worlds = ["default"]
    for world in (w for w in WORLDS if w != "default"):
        try:
            WORLDS[world](NAMES, (128, 128), 0.03, np.random.default_rng(0))
        except ImportError:
            continue
        worlds.append(world)
    return worlds


def _median(values: list[float]) -> float:
    return float(np.nanmedian(values)) if values and not all(map(math.isnan, values)) else float("nan")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


def test_table_of_every_model_on_every_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    monkeypatch.chdir(REPO)
    tool = load_tool("cross_world")
    worlds = _available_worlds()
    out = tmp_path / "cw"
    rc = tool.main(["--model", f"A={SHIPPED}", "--worlds", ",".join(worlds), "--images", "2", "--size", "128",
                    "--photons", "1000", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "[default] " in captured.err  # progress lines
    with open(out / "cross_world.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["world"]) for r in rows] == [("A", w) for w in worlds]
    md = (out / "cross_world.md").read_text()
    # the shipped model's card names the worlds it was trained on (randomised + default cells)
    trained_on = tool.card_world(str(SHIPPED))
    assert set(tool.trained_worlds(trained_on)) >= {"default"}
    for r in rows:
        seen = "in-world" if r["world"] in tool.trained_worlds(trained_on) else "unseen"
        assert r["trained_on"] == trained_on and r["seen"] == seen
        assert f"| A | {trained_on} | {r['world']} | {r['seen']} |" in md
        # baseline and model medians = those of the per-image rows that evaluate --compare wrote for the world
        with open(out / r["world"] / "metrics.csv", newline="") as f:
            per_image = list(csv.DictReader(f))
        level = "pipeline 1000 photons" if r["world"] == "default" else f"{r['world']} 1000 photons"
        wins = []
        for s in NAMES:
            for method, column in (("baseline", f"baseline pcc {s} 1000"), ("A", f"pcc {s} 1000")):
                pcc = [
                    float(p["pcc"])
                    for p in per_image
                    if (p["level"], p["structure"], p["method"]) == (level, s, method)
                ]
                assert _same(float(r[column]), _median(pcc)), (r["world"], s, method)
            wins.append(float(r[f"pcc {s} 1000"]) > float(r[f"baseline pcc {s} 1000"]))
        assert r["beats baseline on every structure"] == ("yes" if all(wins) else "no")
        assert f"| {r['beats baseline on every structure']} |" in md
    assert f"| A | {trained_on} | default | in-world |" in captured.out  # the table is printed
    # where each structure's signal goes: the section's shares are the medians of each world's routing.csv
    assert "## Where each structure's signal goes (1000 photons" in md and (out / "routing.png").stat().st_size > 1000
    for world in worlds:
        level = "pipeline 1000 photons" if world == "default" else f"{world} 1000 photons"
        with open(out / world / "routing.csv", newline="") as f:
            routed = [r for r in csv.DictReader(f) if r["level"] == level and r["method"] == "A"]
        cells = []
        for s in NAMES:
            shares = [_median([float(r["share"]) for r in routed if (r["structure"], r["channel"]) == (s, c)])
                      for c in NAMES]  # fmt: skip
            cells.append(" / ".join("n/a" if np.isnan(v) else f"{v:.2f}" for v in shares))
        assert f"| A | {world} | " + " | ".join(cells) + " |" in md, world


def test_trained_on_comes_from_the_option_or_the_card(tmp_path: Path) -> None:
    tool = load_tool("cross_world")
    stem = REPO / SHIPPED
    # the shipped model was fine-tuned on randomised cells with a quarter each from the default and independent worlds
    card = json.loads(stem.with_suffix(".json").read_text())
    assert card["training"]["config"]["data"]["world"] == "randomised"
    assert tool.card_world(str(stem)) == "randomised+default+independent"
    # a head trained alone (train_only = "uncertainty") on those cells sits on a separation trained on the default
    # world: the card's separation_data is what counts
    card["training"]["separation_data"] = {"kind": "pipeline", "world": "default"}
    (tmp_path / "head.json").write_text(json.dumps(card))
    assert tool.card_world(str(tmp_path / "head")) == "default"
    card["training"].pop("separation_data")
    card["training"]["config"]["data"]["default_fraction"] = 0.0
    card["training"]["config"]["data"]["mix"] = {}
    card.setdefault("training", {}).setdefault("config", {}).setdefault("data", {})["world"] = "randomised"
    (tmp_path / "m.json").write_text(json.dumps(card))
    assert tool.card_world(str(tmp_path / "m")) == "randomised"
    models = tool.load_models([f"A={stem}", f"B={tmp_path / 'm'}"], ["A=independent"])
    assert [(m.label, m.trained_on) for m in models] == [("A", "independent"), ("B", "randomised")]
    # a mix ([data] default_fraction) was trained on both worlds: both rows are in-world, only the third is unseen
    card["training"]["config"]["data"]["default_fraction"] = 0.25
    (tmp_path / "m.json").write_text(json.dumps(card))
    assert tool.card_world(str(tmp_path / "m")) == "randomised+default"
    mixed = tool.load_models([f"B={tmp_path / 'm'}"], [])[0]
    seen = {w: tool.summarise([mixed], w, [], [], [])[0]["seen"] for w in ("default", "randomised", "independent")}
    assert seen == {"default": "in-world", "randomised": "in-world", "independent": "unseen"}
    assert tool.parse_trained_on(["B=randomised+default"], ["B"]) == {"B": "randomised+default"}
    # a three-world mix ([data] mix): the independent rows are in-world too, only the held-out world stays unseen
    card["training"]["config"]["data"].update(default_fraction=0.0, mix={"default": 0.25, "independent": 0.25})
    (tmp_path / "m.json").write_text(json.dumps(card))
    three = tool.load_models([f"B={tmp_path / 'm'}"], [])[0]
    seen = {w: tool.summarise([three], w, [], [], [])[0]["seen"] for w in ("default", "independent", "heldout")}
    assert seen == {"default": "in-world", "independent": "in-world", "heldout": "unseen"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worlds", "default,nowhere"], "--worlds"),
        (["--trained-on", "Z=default"], "no --model labelled 'Z'"),
        (["--trained-on", "A=nowhere"], "unknown world"),
        (["--trained-on", "A=randomised+nowhere"], "unknown world"),
        (["--photons", "1000,x"], "--photons"),
    ],
)
def test_bad_options_are_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = load_tool("cross_world").main(["--model", f"A={REPO / SHIPPED}", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "cross_world.md").exists()


def test_parsers() -> None:
    tool = load_tool("cross_world")
    assert tool.parse_photons(None) == [100.0, 300.0, 1000.0]
    assert tool.parse_photons(["100,300", "1000"]) == [100.0, 300.0, 1000.0]
    assert tool.parse_worlds("default, independent,default") == ["default", "independent"]
    assert tool.parse_worlds("default,heldout") == ["default", "heldout"]
    with pytest.raises(InputDataError, match="expected positive photon counts"):
        tool.parse_photons(["-1"])
    assert tool.world_data("default") == ("synthetic", True) and tool.world_data("independent") == (
        "independent",
        False,
    )


def test_help_runs_as_a_script() -> None:
    res = subprocess.run([sys.executable, str(REPO / "tools" / "cross_world.py"), "--help"],
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert res.returncode == 0 and "--trained-on" in res.stdout and "unseen" in res.stdout


def test_uncertainty_is_pooled_over_the_worlds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model with an uncertainty head: predicted vs real error over every world's pipeline images together,
    and only those (the default world's fast-approximation levels are left out, as in the table)."""
    from imcsr_live.model.checkpoint import save_checkpoint
    from imcsr_live.model.imcsr_net import IMCSRNet, IMCSRNetConfig

    torch.set_num_threads(1)
    monkeypatch.chdir(REPO)
    torch.manual_seed(0)
    net = IMCSRNet(IMCSRNetConfig(in_frames=3, out_channels=3, width=8, groups=1, blocks=1, reduction=4,
                                  uncertainty=True))  # fmt: skip
    colours = ["#00FF00", "#FF00FF", "#00FFFF"]
    save_checkpoint(
        tmp_path / "head", net, structures=[{"name": n, "color": c} for n, c in zip(NAMES, colours, strict=True)]
    )
    tool = load_tool("cross_world")
    worlds = _available_worlds()[:2]
    out = tmp_path / "cw"
    rc = tool.main(["--model", f"U={tmp_path / 'head'}", "--worlds", ",".join(worlds), "--images", "3", "--size",
                    "128", "--photons", "1000", "--out", str(out)])  # fmt: skip
    assert rc == 0
    with open(out / "uncertainty" / "uncertainty.csv", newline="") as f:
        pooled = list(csv.DictReader(f))
    per_world = 0
    for w in worlds:
        with open(out / w / "uncertainty.csv", newline="") as f:
            per_world += sum(1 for r in csv.DictReader(f) if not (w == "default" and not r["level"].startswith("pipe")))
    assert len(pooled) == per_world >= 2 * len(worlds)  # (an image's empty channel has no row)
    assert {r["level"].split(":")[0].split(" ")[0] for r in pooled} == set(worlds)
    assert "Spearman" in (out / "uncertainty" / "uncertainty.md").read_text()
