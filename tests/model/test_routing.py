"""Signal routing against known mixings: a channel that carries a known blend of the structures gives that blend
back (the blur to a common resolution is linear, so it is exact); the copy baseline spreads every structure evenly;
an absent structure is NaN, not a number."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from imcsr_live.model.routing import routing_gains, routing_shares


def _structures(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """Three different sparse images: lines, a mesh of dots, blobs."""
    lines = np.zeros((size, size))
    for _ in range(6):
        r0, c0 = rng.integers(0, size, 2)
        t = np.linspace(0, 1, 200)
        ang = rng.uniform(0, np.pi)
        rr = np.clip((r0 + t * size * np.sin(ang)).astype(int), 0, size - 1)
        cc = np.clip((c0 + t * size * np.cos(ang)).astype(int), 0, size - 1)
        lines[rr, cc] = 1.0
    dots = (rng.random((size, size)) < 0.02).astype(float)
    blobs = ndimage.gaussian_filter((rng.random((size, size)) < 0.002).astype(float), 3) * 30
    return np.stack([lines, dots, blobs])


def test_a_known_mixing_is_recovered() -> None:
    truth = _structures(np.random.default_rng(1))
    mixing = np.array([[0.7, 0.1, 0.0], [0.3, 0.6, 0.2], [0.0, 0.3, 0.8]])  # channel k = sum_j M[k, j] truth_j
    outputs = np.einsum("kj,jhw->khw", mixing, truth) + 0.05  # an offset does not count
    gains = routing_gains(outputs, truth)
    np.testing.assert_allclose(gains, mixing, atol=1e-8)
    np.testing.assert_allclose(routing_shares(gains), mixing / mixing.sum(axis=0), atol=1e-8)


def test_perfect_separation_is_the_identity_even_when_smoother_than_the_truth() -> None:
    truth = _structures(np.random.default_rng(2))
    smoother = np.stack([ndimage.gaussian_filter(t, 1.0) for t in truth]) * 0.5
    shares = routing_shares(routing_gains(smoother, truth))
    np.testing.assert_allclose(shares, np.eye(3), atol=0.05)


def test_the_copy_baseline_spreads_every_structure_evenly() -> None:
    truth = _structures(np.random.default_rng(3))
    copy = np.stack([truth.sum(axis=0)] * 3)
    np.testing.assert_allclose(routing_shares(routing_gains(copy, truth)), np.full((3, 3), 1 / 3), atol=1e-8)


def test_negative_gains_count_as_none() -> None:
    gains = np.array([[1.0, 0.5], [-0.5, 0.5]])
    np.testing.assert_allclose(routing_shares(gains), [[1.0, 0.5], [0.0, 0.5]])


def test_an_absent_structure_is_nan() -> None:
    truth = _structures(np.random.default_rng(4))
    truth[2] = 0.0
    outputs = truth + 0.1 * truth[::-1]
    shares = routing_shares(routing_gains(outputs, truth))
    assert np.isnan(shares[:, 2]).all() and np.isfinite(shares[:, :2]).all()


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="must be"):
        routing_gains(np.zeros((3, 8, 8)), np.zeros((3, 8, 9)))
