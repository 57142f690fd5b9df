"""`imcsr-live evaluate --compare` (several methods on the same images), the flicker metric, Single configs."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.errors import InputDataError
from imcsr_live.model.checkpoint import save_checkpoint
from imcsr_live.model.imcsr_net import IMCSRNet
from imcsr_live.train.compare import flicker, parse_method_specs
from imcsr_live.train.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[2]
NAMES = ["Microtubules", "ER", "Lysosomes"]


def _tiny(tmp: Path, name: str, *, in_frames: int = 1, single: str | None = None, uncertainty: bool = False) -> str:
    """A random (untrained) tiny checkpoint with a real training config in its card."""
    cfg = TrainConfig.model_validate(
        {
            "name": name,
            "variant": "single" if single else "all",
            "single_structure": single,
            "model": {"in_frames": in_frames, "width": 8, "groups": 1, "blocks": 1, "reduction": 4,
                      "uncertainty": uncertainty},
            "data": {"photons": [300.0, 1000.0]},
        }
    )  # fmt: skip
    torch.manual_seed(len(name))
    net = IMCSRNet(cfg.net_config())
    structures = [{"name": s.name, "color": s.color} for s in cfg.output_structures]
    cal = [{"scale": 1.0, "offset": 0.0}] * len(structures) if uncertainty else None
    stem = tmp / name
    save_checkpoint(stem, net, structures=structures, variant=cfg.variant,
                    training={"config": cfg.model_dump(mode="json")}, calibration=cal)  # fmt: skip
    return str(stem)


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from imcsr_live.cli import main

    monkeypatch.setattr(sys, "argv", ["imcsr-live", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_compare_writes_one_row_per_method_structure_level_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    singles = ",".join(_tiny(tmp_path, f"single_{i}", single=s) for i, s in enumerate(NAMES))
    all_ = _tiny(tmp_path, "all")
    tc = _tiny(tmp_path, "all_tc", in_frames=3, uncertainty=True)
    report = tmp_path / "rep"
    code, out, err = _main(
        monkeypatch, capsys, "evaluate", "--data", "synthetic", "--report", str(report),
        "--compare", f"Single={singles}", "--compare", f"All={all_}", "--compare", f"All+TC={tc}",
        "--images", "2", "--size", "128", "--flicker-frames", "3", "--flicker-scenes", "2", "--flicker-size", "128",
        "--photons", "300", "--photons", "1000", "--pipeline", "--pipeline-images", "1",
    )  # fmt: skip
    assert code == 0, err
    for name in ("metrics.csv", "metrics.md", "boxplots.png", "montage.png", "montage_pipeline.png", "flicker.csv",
                 "flicker.md"):  # fmt: skip
        assert (report / name).stat().st_size > 100, name
    assert (report / "calibration.png").is_file()  # the TC model has an uncertainty head
    rows = list(csv.DictReader((report / "metrics.csv").open()))
    keys = {(r["level"], r["image"], r["structure"], r["method"]) for r in rows}
    assert len(keys) == len(rows)  # no duplicates
    expect = {
        (lv, str(i), s, m)
        for lv in ("300 photons", "1000 photons", "pipeline 300 photons", "pipeline 1000 photons")
        for i in range(2)
        for s in NAMES
        for m in ("Single", "All", "All+TC", "baseline")
    }
    # One row per method for every (level, image, structure) with a non-empty truth (an empty field, e.g. a
    # crop without lysosomes, has no metric and is skipped for every method alike).
    fields = {k[:3] for k in keys}
    assert keys == {k for k in expect if k[:3] in fields}
    # Every structure at every fast level; the tiny 64x64-pixel microscope field may hold no lysosome.
    assert {(lv, s) for lv, _, s in fields} >= {(lv, s) for lv, _, s, _ in expect if "pipeline" not in lv}
    assert {(lv, s) for lv, _, s in fields} >= {(lv, s) for lv, _, s, _ in expect if s != "Lysosomes"}
    assert all(0.0 <= float(r["nrmse"]) and -1.0 <= float(r["pcc"]) <= 1.0 for r in rows)
    md = (report / "metrics.md").read_text()
    assert "| NRMSE Single | NRMSE All | NRMSE All+TC | NRMSE baseline |" in md
    assert "| 1000 photons | Lysosomes |" in md
    flick = list(csv.DictReader((report / "flicker.csv").open()))
    assert len(flick) == 4 * 2 * 3 * 4  # levels x scenes x structures x methods
    assert all(float(r["flicker"]) > 0 for r in flick)  # independent noise per frame: nothing is perfectly still
    # truth-referenced: > 0; undefined (NaN) where a structure is absent from the small scene (then for every
    # method alike); the baseline's reference, the summed truth, is never empty
    ft = {(r["level"], r["scene"], r["structure"], r["method"]): float(r["flicker_truth"]) for r in flick}
    empty = {k[:3] for k, v in ft.items() if np.isnan(v)}
    assert all(v > 0 for k, v in ft.items() if k[:3] not in empty or k[3] == "baseline")
    assert len(empty) <= len({k[:3] for k in ft}) // 2
    assert "| 300 photons | ER |" in (report / "flicker.md").read_text()
    assert "flicker" in out.lower()
    assert not (report / "training.md").exists()  # the tiny checkpoints have no training log
    claims = (report / "claims.md").read_text()
    assert "All+TC median PCC >= 0.95 for Microtubules at 1000 photons" in claims
    assert "All beats Single on median NRMSE at pipeline 300 photons" in claims
    assert "TC lowers flicker by >= 30 % at 300 photons" in claims
    # where each structure's signal goes: every method (Single's three models together) and the baseline
    for name in ("routing.csv", "routing.md", "routing.png"):
        assert (report / name).stat().st_size > 100, name
    routed = list(csv.DictReader((report / "routing.csv").open()))
    images = {k[:2] + k[3:] for k in keys}  # (level, image, method) of every scored test image
    assert {(r["level"], r["image"], r["method"]) for r in routed} == images
    assert len(routed) == len(images) * 9  # structure x channel per (level, image, method)
    # the input copied into every channel carries each present structure evenly (the imaging is linear)
    base = [float(r["share"]) for r in routed if r["method"] == "baseline" and "pipeline" not in r["level"]]
    assert np.nanmax(np.abs(np.array(base) - 1 / 3)) < 0.02
    assert "| All+TC | Microtubules |" in (report / "routing.md").read_text()


def test_claims_are_checked_against_known_medians() -> None:
    from imcsr_live.train.compare import CompareReport, check_claims

    rows = []
    for i in range(3):
        for s in NAMES:
            rows += [
                {"level": "1000 photons", "image": i, "structure": s, "method": "All+TC", "nrmse": 0.02,
                 "ssim": 0.9, "pcc": 0.96 if s != "Lysosomes" else 0.91},
                {"level": "1000 photons", "image": i, "structure": s, "method": "All", "nrmse": 0.03 + 0.01 * i,
                 "ssim": 0.9, "pcc": 0.9},
                {"level": "1000 photons", "image": i, "structure": s, "method": "Single",
                 "nrmse": 0.05 if s != "ER" else 0.03, "ssim": 0.9, "pcc": 0.9},
            ]  # fmt: skip
    # truth-referenced: 35 % less; own-mean: 10 % less (the TC channel is sparser) -> the claim uses the first
    flick = [{"level": "1000 photons", "scene": 0, "structure": "ER", "method": m, "flicker": own, "flicker_truth": f}
             for m, f, own in (("All", 0.10, 0.10), ("All+TC", 0.065, 0.09))]  # fmt: skip
    claims = {c.text: c for c in check_claims(CompareReport(rows=rows, methods=["Single", "All", "All+TC"],
                                                            flicker_rows=flick))}  # fmt: skip
    assert all(claims[f"All+TC median PCC >= {t} for {s} at 1000 photons"].holds
               for s, t in (("Microtubules", "0.95"), ("ER", "0.95"), ("Lysosomes", "0.90")))  # fmt: skip
    # ER: All median 0.04 vs Single 0.03 -> All does NOT beat Single at this level.
    assert not claims["All beats Single on median NRMSE at 1000 photons"].holds
    tc = claims["TC lowers flicker by >= 30 % at 1000 photons"]
    assert tc.holds and "reduction 35%" in tc.evidence and "own mean: 10%" in tc.evidence


def test_compare_inputs_are_identical_across_methods(tmp_path: Path) -> None:
    """A 1-frame model gets exactly the middle frame of the TC window: same input, same output as alone."""
    from imcsr_live.train.compare import _method_outputs, load_methods
    from imcsr_live.train.evaluate import iter_test_images, load_eval_levels, predict

    methods, names, _ = load_methods(parse_method_specs([f"All={_tiny(tmp_path, 'a')}"]))
    lv3 = load_eval_levels("synthetic", names, 3, photons=[300.0], images=1, size=64, seed=0)[0]
    x3, _ = next(iter_test_images(lv3.pool, 3, lv3.photons, 1, 0, lv3.degrader))
    got = _method_outputs(methods[0], x3, names)
    alone = predict(methods[0].members[0].model, x3[None, 1:2], 3)[0]
    for c, s in enumerate(names):
        np.testing.assert_array_equal(got[s], alone[c])


def test_flicker_matches_analytic_values() -> None:
    rng = np.random.default_rng(0)
    still = np.repeat(rng.random((1, 16, 16)), 6, axis=0)
    assert flicker(still) == 0.0
    # y_t = a + (-1)^t d (constant images, a > d > 0, even T): |y[t+1] - y[t]| = 2 d, mean(y) = a -> F = 2 d / a.
    a, d = 3.0, 0.5
    alternating = np.stack([np.full((8, 8), a + (d if t % 2 == 0 else -d)) for t in range(6)])
    assert flicker(alternating) == pytest.approx(2 * d / a)
    # A spatial pattern plus an alternating additive pattern p on half the pixels: F = mean|2 p| / mean(base).
    base = 1.0 + rng.random((8, 8))
    pattern = np.zeros((8, 8))
    pattern[:, :4] = 0.2
    frames = np.stack([base + (pattern if t % 2 else -pattern) for t in range(4)])
    assert flicker(frames) == pytest.approx(2 * 0.1 / base.mean())
    # against a given reference (the truth's mean) instead of the frames' own mean: the same change over it
    assert flicker(alternating, reference_mean=2.0) == pytest.approx(2 * d / 2.0)
    assert np.isnan(flicker(alternating, reference_mean=0.0))
    with pytest.raises(ValueError, match="T >= 2"):
        flicker(still[:1])


def test_static_scene_truth_is_in_the_frames_units() -> None:
    """The flicker scenes' truth is scaled onto the frames: the reconstruction's unit differs from the truth's
    photoelectrons (Wiener gain ~0.5), so an unscaled truth would misstate every truth-referenced flicker."""
    from imcsr_live.train.evaluate import load_eval_levels

    levels = load_eval_levels("synthetic", NAMES, 1, photons=[1000.0], images=1, size=128, seed=0, pipeline=True)
    for lv in levels:  # one fast level, one pipeline level
        frames, truth = lv.static_scene(0, 3, 128, 0)
        assert frames.shape == (3, 128, 128) and truth.shape == (3, 128, 128)
        mean_frame, summed = lv.scored(frames.mean(axis=0)), lv.scored(truth.sum(axis=0))
        assert summed.mean() == pytest.approx(mean_frame.mean(), rel=0.05), lv.level
        assert np.corrcoef(summed.ravel(), mean_frame.ravel())[0, 1] > 0.8, lv.level


@pytest.mark.parametrize(
    ("spec", "message"),
    [("All", "LABEL=NAME"), ("All=", "LABEL=NAME"), ("All=a,,b", "LABEL=NAME"), ("baseline=a", "reserved")],
)
def test_bad_compare_specs_are_clear(spec: str, message: str) -> None:
    with pytest.raises(InputDataError, match=message):
        parse_method_specs([spec])
    assert parse_method_specs(["All+TC=a", "Single=b, c"]) == [("All+TC", ["a"]), ("Single", ["b", "c"])]
    with pytest.raises(InputDataError, match="used twice"):
        parse_method_specs(["A=x", "A=y"])


def test_compare_rejects_a_structure_given_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _tiny(tmp_path, "s1", single="ER"), _tiny(tmp_path, "s2", single="ER")
    code, _, err = _main(monkeypatch, capsys, "evaluate", "--data", "synthetic", "--compare", f"Single={a},{b}")
    assert code == 3 and "'ER' is output by two of its models" in " ".join(err.split())
    code, _, err = _main(monkeypatch, capsys, "evaluate", "--data", "synthetic")
    assert code == 3 and "either --model" in err and "Traceback" not in err
    args = ("evaluate", "--data", "synthetic", "--compare", f"S={a}", "--pooling", "local")
    code, _, err = _main(monkeypatch, capsys, *args)
    assert code == 3 and "apply to --model only" in err
    code, _, err = _main(monkeypatch, capsys, "evaluate", "--data", "synthetic", "--model", a, "--pipeline")
    assert code == 3 and "need --compare" in err


def test_single_variant_config_round_trips(tmp_path: Path) -> None:
    """The reproduction's Single TOMLs: one output, the named structure, no summation loss; a card round-trip."""
    for key, structure in (("single_mt", "Microtubules"), ("single_er", "ER"), ("single_lyso", "Lysosomes")):
        cfg = load_train_config(REPO / "hardware_configs" / f"train_repro_{key}.toml")
        assert cfg.variant == "single" and cfg.single_structure == structure
        assert [s.name for s in cfg.output_structures] == [structure]
        assert cfg.net_config().out_channels == 1 and cfg.summation_alpha == 0.0
        again = TrainConfig.model_validate(cfg.model_dump(mode="json"))
        assert again.model_dump() == cfg.model_dump() and again.target_indices == [NAMES.index(structure)]
    repro = [load_train_config(REPO / "hardware_configs" / f"train_repro_{k}.toml")
             for k in ("single_mt", "single_er", "single_lyso", "all", "all_tc")]  # fmt: skip
    # Identical architecture (bar in_frames), data, loss and schedule across the five models.
    for c in repro:
        assert c.model.model_dump(exclude={"in_frames"}) == repro[0].model.model_dump(exclude={"in_frames"})
        assert (c.data, c.train, c.loss) == (repro[0].data, repro[0].train, repro[0].loss)
    assert [c.model.in_frames for c in repro] == [1, 1, 1, 1, 3] and all(c.data.frames == 3 for c in repro)
    bad = tmp_path / "bad.toml"
    bad.write_text('variant = "single"\nsingle_structure = "Golgi"\n')
    with pytest.raises(Exception, match="single_structure = one of"):
        load_train_config(bad)
    bad.write_text("[model]\nin_frames = 3\n[data]\nframes = 2\n")
    with pytest.raises(Exception, match="fewer than"):
        load_train_config(bad)


def test_training_table_from_the_metrics_log(tmp_path: Path) -> None:
    from imcsr_live.train.compare import load_methods, training_table

    stem = _tiny(tmp_path, "all")
    (tmp_path / "all.metrics.csv").write_text(
        "iteration,loss,lr,it_per_s,val_loss,val_nrmse,val_ssim,val_pcc\n50,0.1,0.001,5.0,,,,\n100,0.1,0.001,10.0,,,,\n"
    )
    methods, _, _ = load_methods([("All", [stem])])
    # wall = 50 / 5 + 50 / 10 = 15 s = 0.25 min; median 7.5 it/s; batch 3 (the default) -> 22.5 samples/s.
    assert "| All | all | 100 | 3 | 0.2 | 7.50 | 22.5 |" in training_table(methods)


def test_pipeline_levels_are_scored_without_the_faded_reconstruction_border(tmp_path: Path) -> None:
    """The reconstruction fades to 0 at the frame border while the truth does not: scores leave that band out."""
    from imcsr_live.model.metrics import evaluate_image
    from imcsr_live.train.compare import compare_methods
    from imcsr_live.train.evaluate import load_eval_levels
    from imcsr_live.train.pipeline_data import EDGE_MARGIN

    torch.set_num_threads(1)
    levels = load_eval_levels("synthetic", NAMES, 1, photons=[1000.0], images=1, size=128, seed=0, pipeline=True)
    fast, piped = levels
    assert fast.margin == 0 and piped.margin == EDGE_MARGIN
    x, targets = next(piped.images(1, 1, 0))
    total = targets.sum(axis=0)
    m = EDGE_MARGIN
    band = np.ones(total.shape, bool)
    band[m:-m, m:-m] = False
    # Known truth of the forward model + reconstructor: the band is where the input lost the signal ...
    assert x[0][band].mean() < 0.6 * total[band].mean() * (x[0][~band].mean() / total[~band].mean())
    # ... and inside it the reconstruction matches the summed truth better than over the whole frame.
    assert evaluate_image(piped.scored(x[0]), piped.scored(total)).pcc > evaluate_image(x[0], total).pcc + 0.01
    report = compare_methods([f"All={_tiny(tmp_path, 'a')}"], "synthetic", tmp_path / "r", photons=[1000.0],
                             images=1, size=128, pipeline=True, flicker_timepoints=2, flicker_scenes=1,
                             flicker_size=128)  # fmt: skip
    for si, s in enumerate(NAMES):
        if not targets[si].max() > targets[si].min():
            continue
        row = next(r for r in report.rows if r["level"] == piped.level and r["structure"] == s
                   and r["method"] == "baseline")  # fmt: skip
        want = evaluate_image(piped.scored(x[0]), piped.scored(targets[si]))
        assert row["pcc"] == pytest.approx(want.pcc, abs=1e-6) and row["nrmse"] == pytest.approx(want.nrmse, abs=1e-6)
