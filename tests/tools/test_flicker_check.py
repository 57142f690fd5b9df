"""tools/flicker_check.py: the two flicker normalisations on analytic frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools.tool_loader import load_tool


def _tool():
    return load_tool("flicker_check")


def test_alternating_frames_give_2d_over_each_mean() -> None:
    a, d, truth_mean = 0.5, 0.05, 0.25
    frames = np.stack([np.full((8, 8), a + (d if t % 2 else -d)) for t in range(6)])
    own, vs_truth = _tool().flicker_pair(frames, truth_mean)
    assert own == pytest.approx(2 * d / a) and vs_truth == pytest.approx(2 * d / truth_mean)


def test_less_false_mass_raises_only_the_own_mean_flicker() -> None:
    """Same absolute change, half the (false) mass: own-mean flicker doubles, truth-mean flicker stays."""
    rng = np.random.default_rng(0)
    change = rng.normal(0, 0.01, (6, 16, 16))
    change -= change.mean()
    heavy, light = 0.4 + change, 0.2 + change
    tool = _tool()
    own_h, truth_h = tool.flicker_pair(heavy, 0.2)
    own_l, truth_l = tool.flicker_pair(light, 0.2)
    assert own_l == pytest.approx(2 * own_h, rel=1e-6) and truth_l == pytest.approx(truth_h, rel=1e-9)
