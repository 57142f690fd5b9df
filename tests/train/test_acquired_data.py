"""``[data] kind = "acquired"``: datasets written by the real acquisition (simulated microscope, real reconstructor,
real files), read back, split by position or timepoint block, sampled, and a tiny fine-tune of the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imcsr_live.config import load_rig_config
from imcsr_live.errors import InputDataError
from imcsr_live.fileio import file_sha256
from imcsr_live.hardware.simulated import SimulatedBackend
from imcsr_live.io.training_dataset import StagePosition, read_manifest, structure_files
from imcsr_live.model.checkpoint import load_checkpoint
from imcsr_live.pipeline.training_data import TrainingRequest, acquire_training_dataset
from imcsr_live.synth.world import WorldSettings
from imcsr_live.train.acquired_data import acquired_samplers, load_runs
from imcsr_live.train.config import load_train_config
from imcsr_live.train.data import SampleSpec
from imcsr_live.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "imcsr_live" / "weights" / "imcsr_cpu_demo_tc"
NAMES = ["Microtubules", "ER", "Lysosomes"]
RAW = 64  # camera pixels: SR 128, 80 after the 24-pixel border


def acquire(root: Path, timepoints: int, positions: int = 1) -> Path:
    """A dataset of the simulated microscope (presets = the structure names) at 64 x 64 camera pixels."""
    rig = load_rig_config(REPO / "hardware_configs" / "simulated.toml")
    backend = SimulatedBackend(rig, WorldSettings(raw_shape=(RAW, RAW), photons=1000.0, seed=3))
    places = [StagePosition(x_um=100.0 * p, y_um=0.0) for p in range(positions)] if positions > 1 else None
    acquire_training_dataset(rig, TrainingRequest(root, timepoints, 0.001, None, places), backend=backend)
    return root


def spec(in_frames: int = 3) -> SampleSpec:
    return SampleSpec(patch=64, in_frames=in_frames, brightness_range=(0.5, 2.0))


def test_split_by_position_and_samples_sum_to_their_targets(tmp_path) -> None:
    root = acquire(tmp_path / "data", 4, positions=4)
    train, val, desc = acquired_samplers(root, NAMES, spec(), 0.25)
    assert {r.position for r in train.runs} == {0, 1, 2} and {r.position for r in val.runs} == {3}
    assert "positions [3] of 4 held out" in desc and file_sha256(root / "dataset.json")[:16] in desc
    assert len(train.windows) == 3 * 2  # 4 timepoints: 2 windows of 3 per position
    x, y, photons = train.raw_sample(np.random.default_rng(0), augment=False)
    assert x.shape == (3, 64, 64) and y.shape == (3, 64, 64) and photons == 1000.0
    np.testing.assert_allclose(x[1], y.sum(axis=0), rtol=1e-5, atol=1e-5)  # middle frame = sum of the targets
    # brightness ratios differ between samples; the structures stay co-registered crops of one position
    ratios = []
    for seed in range(2):
        _, y, _ = train.raw_sample(np.random.default_rng([seed, 7]), augment=False)
        ratios.append(y.reshape(3, -1).max(axis=1))
    assert not np.allclose(ratios[0] / ratios[0][0], ratios[1] / ratios[1][0])


def test_one_position_splits_by_timepoint_block_and_windows_stay_in_one_session(tmp_path) -> None:
    root = acquire(tmp_path / "data", 5)
    acquire(root, 8)  # resumed: timepoints 5..7 are another session
    manifest = read_manifest(root)
    assert manifest is not None and [t.session for t in manifest.timepoints] == [0] * 5 + [1] * 3
    runs = load_runs(root, manifest)
    assert [r.timepoints for r in runs] == [[0, 1, 2, 3, 4], [5, 6, 7]]
    train, val, desc = acquired_samplers(root, NAMES, spec(), 0.25)
    assert "timepoints 6..8 of 8 held out" in desc
    assert [r.timepoints for r in train.runs] == [[0, 1, 2, 3, 4]] and [r.timepoints for r in val.runs] == [[5, 6, 7]]


def test_too_small_to_split_and_wrong_structures_are_one_line(tmp_path) -> None:
    root = acquire(tmp_path / "data", 4)
    with pytest.raises(InputDataError, match=r"4 timepoint\(s\) x 1 position\(s\) are too few to split") as exc:
        acquired_samplers(root, NAMES, spec(), 0.25)
    assert "\n" not in str(exc.value)
    with pytest.raises(InputDataError, match=r"holds \['Microtubules', 'ER', 'Lysosomes'\] but the config separates"):
        acquired_samplers(root, ["ER", "Microtubules", "Lysosomes"], spec(), 0.25)
    with pytest.raises(InputDataError, match=r"holds no dataset\.json"):
        acquired_samplers(tmp_path, NAMES, spec(), 0.25)


def test_a_cut_off_sr_image_is_refused_as_truncated(tmp_path) -> None:
    root = acquire(tmp_path / "data", 2)
    manifest = read_manifest(root)
    assert manifest is not None
    sr = structure_files(root, 0, 1, "ER")["sr"]
    sr.write_bytes(sr.read_bytes()[: sr.stat().st_size // 2])  # an interrupted copy of the dataset
    with pytest.raises(InputDataError, match=r"ER\.sr\.tif is truncated or damaged: .*; re-copy it") as exc:
        load_runs(root, manifest)
    assert "\n" not in str(exc.value)


def test_tiny_finetune_of_the_shipped_model_changes_its_weights_and_records_the_dataset(tmp_path) -> None:
    root = acquire(tmp_path / "data", 3, positions=2)
    text = (REPO / "hardware_configs" / "finetune_acquired.toml").read_text()
    text = text.replace('root = "../training_data"', f'root = "{root}"')
    text = text.replace('output_dir = "../runs/finetune_acquired"', f'output_dir = "{tmp_path / "run"}"')
    text = text.replace('init = "../imcsr_live/weights/imcsr_cpu_demo_tc"', f'init = "{SHIPPED}"')
    text = text.replace("patch = 96 ", "patch = 64 ").replace("iterations = 1800", "iterations = 3")
    text = text.replace("val_samples = 24", "val_samples = 2").replace("val_every = 200", "val_every = 3")
    path = tmp_path / "finetune.toml"
    path.write_text(text)
    result = Trainer(load_train_config(path)).run()
    tuned, card = load_checkpoint(result.last_path)
    shipped, _ = load_checkpoint(SHIPPED)
    before, after = shipped.state_dict(), tuned.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    dataset = card["training"]["dataset"]
    assert dataset["dataset_json_sha256"] == file_sha256(root / "dataset.json")
    assert dataset["path"] == str(root.resolve()) and dataset["positions"] == 2 and dataset["timepoints"] == 3
    assert card["training"]["config"]["data"]["kind"] == "acquired"
    assert np.isfinite(card["metrics"]["validation"]["val_nrmse"])
