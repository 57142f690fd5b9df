"""Predicted vs real error in the compare report: the Spearman table on a constructed case, and the rows a real
(untrained, tiny) model with an uncertainty head produces in ``evaluate --compare``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.model.imcsr_net import IMCSRNet
from imcsr_live.train.config import TrainConfig
from imcsr_live.train.uncertainty_report import spearman_rows, write_uncertainty


def test_monotone_predicted_error_gives_spearman_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for level in ("300 photons", "1000 photons", "world randomised"):  # in- and out-of-distribution together
        for i in range(5):
            for s in ("ER", "Lysosomes"):
                real = float(rng.uniform(0.02, 0.4))
                rows.append({"level": level, "image": i, "method": "All+TC", "structure": s, "predicted_error":
                             np.log(real) + 3 * real**2, "nrmse": real, "one_minus_pcc": 1 - real,
                             "residual": 0.01, "in_distribution": True})  # fmt: skip
    files = write_uncertainty(rows, tmp_path, {"All+TC ER": [(rng.random(50), rng.random(50))]})
    assert [f.name for f in files] == ["uncertainty.csv", "uncertainty.md", "uncertainty_vs_error.png"]
    table = {e["structure"]: e for e in spearman_rows(rows)}
    assert table["ER"]["images"] == 15 and table["ER"]["spearman_nrmse"] == pytest.approx(1.0)
    assert table["Lysosomes"]["spearman_one_minus_pcc"] == pytest.approx(-1.0)  # decreasing: -1
    md = (tmp_path / "uncertainty.md").read_text()
    assert "| All+TC | ER | 15 | 1.000 (" in md and "world randomised" in md
    back = list(csv.DictReader((tmp_path / "uncertainty.csv").open()))
    assert len(back) == 30 and float(back[0]["predicted_error"]) == pytest.approx(rows[0]["predicted_error"])
    assert (tmp_path / "uncertainty_vs_error.png").stat().st_size > 10_000


def test_without_pixel_pairs_the_plot_has_no_empty_calibration_row(tmp_path: Path) -> None:
    """cross_world pools per-image rows only: its plot is the scatter row alone, half the height of a full one."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rows = [{"level": "l", "image": i, "method": "m", "structure": "ER", "predicted_error": float(rng.random()),
             "nrmse": float(rng.random()), "one_minus_pcc": 0.5} for i in range(6)]  # fmt: skip
    pooled = write_uncertainty(rows, tmp_path / "pooled")[2]
    full = write_uncertainty(rows, tmp_path / "full", {"m ER": [(rng.random(50), rng.random(50))]})[2]
    h_pooled, h_full = Image.open(pooled).size[1], Image.open(full).size[1]
    assert h_pooled == pytest.approx(h_full / 2, rel=0.05)


def test_each_model_gets_its_own_row_of_scatter_plots(tmp_path: Path) -> None:
    """Several models on one panel hide each other (cross_world compares four): one row per model."""
    from PIL import Image

    rng = np.random.default_rng(2)
    rows = [{"level": "l", "image": i, "method": m, "structure": "ER", "predicted_error": float(rng.random()),
             "nrmse": float(rng.random()), "one_minus_pcc": 0.5}
            for m in ("a", "b", "c") for i in range(6)]  # fmt: skip
    three = write_uncertainty(rows, tmp_path / "three")[2]
    one = write_uncertainty([r for r in rows if r["method"] == "a"], tmp_path / "one")[2]
    assert Image.open(three).size[1] == pytest.approx(3 * Image.open(one).size[1], rel=0.05)


def test_constant_values_give_nan_not_an_error() -> None:
    rows = [{"method": "m", "structure": "ER", "level": "l", "predicted_error": 0.1, "nrmse": float(v),
             "one_minus_pcc": 0.5} for v in range(4)]  # fmt: skip
    (entry,) = spearman_rows(rows)
    assert np.isnan(entry["spearman_nrmse"]) and entry["images"] == 4


def _tiny_head(tmp: Path) -> str:
    cfg = TrainConfig.model_validate(
        {"name": "all_tc", "model": {"in_frames": 3, "width": 8, "groups": 1, "blocks": 1, "reduction": 4,
                                     "uncertainty": True}, "data": {"photons": [300.0, 1000.0]}}
    )  # fmt: skip
    torch.manual_seed(3)
    net = IMCSRNet(cfg.net_config())
    structures = [{"name": s.name, "color": s.color} for s in cfg.output_structures]
    stem = tmp / "all_tc"
    save_checkpoint(stem, net, structures=structures, training={"config": cfg.model_dump(mode="json")},
                    calibration=[{"scale": 1.0, "offset": 0.0}] * 3)  # fmt: skip
    return str(stem)


def test_compare_reports_predicted_vs_real_error_per_image(tmp_path: Path) -> None:
    from imcsr_live.train.compare import compare_methods

    torch.set_num_threads(1)
    report = compare_methods([f"All+TC={_tiny_head(tmp_path)}"], "synthetic", tmp_path / "rep", photons=[300.0, 1000.0],
                             images=3, size=64, flicker_timepoints=2, flicker_scenes=1, flicker_size=64)  # fmt: skip
    out = tmp_path / "rep"
    assert {"uncertainty.csv", "uncertainty.md", "uncertainty_vs_error.png"} <= {f.name for f in report.files}
    rows = list(csv.DictReader((out / "uncertainty.csv").open()))
    metrics = [r for r in csv.DictReader((out / "metrics.csv").open()) if r["method"] == "All+TC"]
    # one row per level x image x structure with a non-empty truth, and the real error is metrics.csv's NRMSE
    assert len(rows) == len(metrics) > 0
    by_key = {(r["level"], r["image"], r["structure"]): float(r["nrmse"]) for r in metrics}
    for r in rows:
        assert float(r["nrmse"]) == pytest.approx(by_key[(r["level"], r["image"], r["structure"])], rel=1e-6)
        assert float(r["predicted_error"]) > 0
    assert {r["level"] for r in rows} == {"300 photons", "1000 photons"}
    er = [r for r in rows if r["structure"] == "ER"]
    rho = spearmanr([float(r["predicted_error"]) for r in er], [float(r["nrmse"]) for r in er]).statistic
    assert f"| All+TC | ER | {len(er)} | {rho:.3f} (" in (out / "uncertainty.md").read_text()
