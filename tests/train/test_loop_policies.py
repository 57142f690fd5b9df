"""Unit tests of the training loop's policies: lr plateau, wall-time budget, iteration rate, metrics log."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from imcsr_live.train.loop_policies import CSV_FIELDS, IterationRate, MetricsLog, PlateauPolicy, TimeBudget


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plateau_halves_the_lr_after_patience_iterations_without_improvement() -> None:
    groups = [{"lr": 1e-3}, {"lr": 4e-3}]
    policy = PlateauPolicy(factor=0.5, patience=10, min_lr=0.0)
    assert policy.observe(0.5, 5, groups)  # first value: a new best
    assert not policy.observe(0.6, 10, groups)  # 5 iterations since the best: wait
    assert [g["lr"] for g in groups] == [1e-3, 4e-3]
    assert not policy.observe(0.5, 15, groups)  # 10 without (an equal value is no improvement): halve
    assert [g["lr"] for g in groups] == [5e-4, 2e-3]
    assert not policy.observe(0.6, 20, groups)  # the patience counts again from the halving
    assert [g["lr"] for g in groups] == [5e-4, 2e-3]
    assert not policy.observe(0.6, 25, groups)
    assert [g["lr"] for g in groups] == [2.5e-4, 1e-3]
    assert policy.observe(0.4, 30, groups)  # an improvement resets the count and keeps the lr
    assert policy.state() == {"best_nrmse": 0.4, "last_improved": 30}
    assert [g["lr"] for g in groups] == [2.5e-4, 1e-3]


def test_plateau_respects_min_lr_and_never_raises_the_lr() -> None:
    groups = [{"lr": 3e-6}, {"lr": 1e-7}]  # the second one is already below min_lr
    policy = PlateauPolicy(factor=0.5, patience=1, min_lr=1e-6, best_nrmse=0.1, last_improved=0)
    policy.observe(0.2, 1, groups)
    assert groups[0]["lr"] == pytest.approx(1.5e-6) and groups[1]["lr"] == 1e-7
    policy.observe(0.2, 2, groups)
    assert groups[0]["lr"] == 1e-6 and groups[1]["lr"] == 1e-7  # floored at min_lr; the small one kept
    policy.observe(0.2, 3, groups)
    assert groups[0]["lr"] == 1e-6 and groups[1]["lr"] == 1e-7


def test_plateau_needs_more_than_a_tiny_improvement() -> None:
    policy = PlateauPolicy(factor=0.5, patience=100, min_lr=0.0, best_nrmse=0.3)
    assert not policy.observe(0.3 - 1e-7, 1, [])
    assert policy.observe(0.3 - 1e-5, 2, [])


def test_time_budget_stops_at_the_next_log_step() -> None:
    clock = FakeClock()
    asked: list[float] = []

    def broadcast(value: float) -> float:
        asked.append(value)
        return value

    budget = TimeBudget(1.0, log_every=10, broadcast=broadcast, clock=clock)
    assert not budget.exhausted(10)  # a log step within the budget
    clock.now += 61.0
    assert [budget.exhausted(it) for it in range(11, 20)] == [False] * 9  # spent, but not a log step
    assert asked == [0.0]  # off log steps nothing is broadcast (every rank must make the same calls)
    assert budget.exhausted(20)
    assert asked == [0.0, 1.0]


def test_time_budget_follows_rank_zero_and_none_is_no_limit() -> None:
    clock = FakeClock()
    clock.now += 1e6
    assert not TimeBudget(None, log_every=1, clock=clock).exhausted(5)
    assert not TimeBudget(0.0, log_every=1, broadcast=lambda _: 0.0, clock=clock).exhausted(5)  # rank 0 says go on
    assert TimeBudget(0.0, log_every=1, clock=clock).exhausted(1)  # a zero budget: the first log step


def test_iteration_rate_between_laps() -> None:
    clock = FakeClock()
    rate = IterationRate(20, clock=clock)
    clock.now += 2.0
    assert rate.lap(30) == pytest.approx(5.0)
    clock.now += 1.0
    assert rate.lap(40) == pytest.approx(10.0)


def test_metrics_log_writes_csv_rows_and_appends_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "run.metrics.csv"
    first = MetricsLog(path)
    first.write({"iteration": 10, "loss": 0.5, "lr": 1e-3, "it_per_s": 2.0})
    first.close()
    again = MetricsLog(path, append=True)
    again.write({"iteration": 20, "loss": 0.4, "lr": 1e-3, "it_per_s": 2.0, "val_nrmse": 0.3})
    again.close()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_FIELDS
    assert [r["iteration"] for r in rows] == ["10", "20"] and rows[0]["val_nrmse"] == "" and rows[1]["val_nrmse"]
    assert [h["iteration"] for h in again.history] == [20]
    fresh = MetricsLog(path, append=False)  # not resuming: a new file
    fresh.close()
    assert path.read_text().strip() == ",".join(CSV_FIELDS)


def test_metrics_log_without_a_path_records_nothing() -> None:
    quiet = MetricsLog(None)
    quiet.write({"iteration": 1, "loss": 0.1})
    quiet.close()
    assert quiet.history == []
