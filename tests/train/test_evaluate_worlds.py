"""`imcsr-live evaluate --data WORLD`: pipeline test levels of a named synthetic world, on seeds no training uses."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.synth.world import WORLDS

REPO = Path(__file__).resolve().parents[2]
NAMES = ["Microtubules", "ER", "Lysosomes"]
SHIPPED = str(REPO / "imcsr_live" / "weights" / "imcsr_cpu_demo_tc")


def require_world(world: str) -> None:
    """Skip unless the world's generator is importable (worlds are written in parallel with this test)."""
    if world == "default":
        return
    pytest.importorskip(f"imcsr_live.synth.{world}")
    try:
        WORLDS[world](NAMES, (128, 128), 0.03, np.random.default_rng(0))
    except ImportError as exc:
        pytest.skip(f"world {world!r} not complete yet: {exc}")


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from imcsr_live.cli import main

    monkeypatch.setattr(sys, "argv", ["imcsr-live", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out + out.err


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("world", ["randomised", "independent", "heldout"])
def test_evaluate_data_world_writes_the_worlds_levels(
    world: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_world(world)
    torch.set_num_threads(1)
    report = tmp_path / "model"
    code, text = _main(
        monkeypatch, capsys, "evaluate", "--model", SHIPPED, "--data", world, "--report", str(report),
        "--images", "1", "--size", "128", "--photons", "1000",
    )  # fmt: skip
    assert code == 0, text
    assert f"| {world} 1000 photons |" in text
    rows = _csv_rows(report / "metrics.csv")
    assert {r["level"] for r in rows} == {f"{world} 1000 photons"}
    assert {r["method"] for r in rows} == {"IMC-SR", "baseline"}

    report = tmp_path / "compare"
    code, text = _main(
        monkeypatch, capsys, "evaluate", "--compare", f"TC={SHIPPED}", "--data", world, "--report", str(report),
        "--images", "1", "--size", "128", "--photons", "300", "--flicker-scenes", "1", "--flicker-frames", "2",
        "--flicker-size", "128",
    )  # fmt: skip
    assert code == 0, text
    assert {r["level"] for r in _csv_rows(report / "metrics.csv")} == {f"{world} 300 photons"}
    assert {r["level"] for r in _csv_rows(report / "flicker.csv")} == {f"{world} 300 photons"}
    assert (report / "montage.png").stat().st_size > 100  # only pipeline levels: the one montage


@pytest.mark.parametrize("data", ["no_such_world", "default"])
def test_unknown_data_is_one_clear_line(
    data: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = _main(monkeypatch, capsys, "evaluate", "--model", SHIPPED, "--data", data, "--images", "1")
    assert code != 0
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in text, text
    for choice in ("'synthetic'", *(w for w in WORLDS if w != "default"), "folder"):
        assert choice in errors[0], errors[0]


def test_world_levels_check_the_rig_and_size() -> None:
    from imcsr_live.train.evaluate import load_eval_levels

    kw = {"photons": [1000.0], "images": 1, "seed": 0}
    with pytest.raises(InputDataError, match="--data randomised"):
        load_eval_levels("randomised", ["Microtubules", "ER"], 1, size=128, **kw)
    for size in (130, 96):
        with pytest.raises(InputDataError, match="multiple of 4, >= 128"):
            load_eval_levels("randomised", NAMES, 1, size=size, **kw)
    levels = load_eval_levels("randomised", NAMES, 3, size=128, **kw)
    assert [(lv.level, lv.world, lv.margin > 0) for lv in levels] == [("randomised 1000 photons", "randomised", True)]


@pytest.mark.parametrize("world", ["default", "randomised", "independent"])
def test_test_cells_are_not_training_cells(world: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first test cell differs from the first cell of a training pool of the same world (seed 0 up); with the
    test seeds moved onto the training seeds (positive control) the two are the same cell."""
    require_world(world)
    from imcsr_live.config import load_rig_config
    from imcsr_live.train import evaluate
    from imcsr_live.train.pipeline_data import EDGE_MARGIN, render_pipeline_pool

    torch.set_num_threads(1)
    assert evaluate.pipeline_test_seed(world, 0, 0) >= (900_000_000 if world != "default" else 3_000_003)
    rig = load_rig_config(REPO / "hardware_configs" / "simulated.toml")
    pool = render_pipeline_pool(rig, photons=[1000.0], cells=1, size=128, frames=1, seed=0, world=world)
    train_cell = pool.truth[0, 0].astype(np.float32).sum(axis=0)

    def first_test_cell() -> np.ndarray:
        data, pipeline = ("synthetic", True) if world == "default" else (world, False)
        kw = {"photons": [1000.0], "images": 1, "size": 128, "seed": 0, "pipeline": pipeline}
        level = evaluate.load_eval_levels(data, NAMES, 1, **kw)[-1]
        _, targets = next(level.images(1, 1, 0))
        return targets[:, EDGE_MARGIN:-EDGE_MARGIN, EDGE_MARGIN:-EDGE_MARGIN].sum(axis=0)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert corr(first_test_cell(), train_cell) < 0.5
    monkeypatch.setattr(evaluate, "pipeline_test_seed", lambda world, seed, image: seed + image)
    assert corr(first_test_cell(), train_cell) > 0.99


def test_parallel_rendering_gives_the_same_images() -> None:
    from imcsr_live.train.evaluate import load_eval_levels

    kw = {"photons": [300.0], "images": 2, "size": 128, "seed": 5}
    one = load_eval_levels("synthetic", NAMES, 3, pipeline=True, **kw)[-1]
    two = load_eval_levels("synthetic", NAMES, 3, pipeline=True, workers=2, **kw)[-1]
    assert one.rig is not None and two.workers == 2
    for (x1, y1), (x2, y2) in zip(one.images(3, 2, 5), two.images(3, 2, 5), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
