"""The model shipped in imcsr_live/weights/ loads, matches the simulated rig, and separates known structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imcsr_live.config import load_rig_config
from imcsr_live.engine import load_model
from imcsr_live.engine.torch_engine import TorchEngine
from imcsr_live.model.metrics import pcc
from imcsr_live.pipeline.session import default_model, shipped_models
from imcsr_live.synth.world import SyntheticMicroscope, WorldSettings

SIMULATED = Path(__file__).resolve().parents[1] / "hardware_configs" / "simulated.toml"


def test_a_model_is_shipped_for_the_demo_rig_and_its_card_is_honest() -> None:
    rig = load_rig_config(SIMULATED)
    path = default_model(rig.structure_names)
    assert path is not None and path in shipped_models()
    source = load_model(path, expect_structures=rig.structure_names)  # checks the SHA-256 in the card
    card = source.card
    assert card["input_frames"] == source.cfg.in_frames == 3
    assert [s["color"] for s in card["structures"]] == [s.color for s in rig.structures]
    assert card["training"]["iterations"] > 0
    assert path.with_suffix(".safetensors").stat().st_size < 2_000_000  # small enough for the repository


def test_shipped_model_separates_the_synthetic_ground_truth() -> None:
    """Per structure, the separated channel correlates with its own truth better than with the others."""
    rig = load_rig_config(SIMULATED)
    source = load_model(default_model(rig.structure_names), expect_structures=rig.structure_names)  # type: ignore[arg-type]
    world = SyntheticMicroscope(rig, WorldSettings(raw_shape=(128, 128), photons=1000.0, seed=3))
    points = [world.next_timepoint() for _ in range(3)]
    # SR input: the sum of the structures' SIM-resolution truth (what an ideal reconstruction shows)
    window = np.stack([p.ground_truth.sum(axis=0) for p in points]).astype(np.float32)
    out = TorchEngine(source).separate(window).channels
    truth = points[1].ground_truth
    assert (truth.reshape(3, -1).max(axis=1) > 0).all()  # every structure is in the field
    for c in range(3):
        own = pcc(out[c], truth[c])
        others = [pcc(out[c], truth[o]) for o in range(3) if o != c]
        assert own > 0.6 and own > max(others) + 0.2, (c, own, others)
